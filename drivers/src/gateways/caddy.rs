//! Caddy: a site per group of hosts with `forward_auth`, and a `handle` per route proxying to its flow's
//! upstream.

use super::conf::{Conf, Directive, Syntax};
use super::{CHECK_TOKEN_HEADER, Context, Driver, File, PathMatch, RenderError, Site, split_url, upstream};

/// Caddy's driver (a plain config file: no detection).
pub(super) const DRIVER: Driver = Driver::plain(render);

fn render(ctx: &Context<'_>) -> Result<Vec<File>, RenderError> {
    let t = ctx.timeout;
    let conf = Conf {
        syntax: Syntax::Caddyfile,
        comment: format!(
            "Rendered by `leannodes gateway render caddy`: Caddy asks LeanNodes (forward_auth) before proxying.\n\
             The check may hold while the flow wakes: its response timeout ({t}s) covers the flows' hold_timeout."
        ),
        directives: ctx.sites().iter().map(|site| site_block(ctx, site)).collect(),
    };
    Ok(vec![File::new("Caddyfile", conf.to_string())])
}

/// The site block of one site.
fn site_block(ctx: &Context<'_>, site: &Site<'_>) -> Directive {
    let (check_host, check_port, check_path) = split_url(&ctx.target.check_url);
    let mut auth = vec![Directive::new("uri", [check_path])];
    if let Some(token) = ctx.token() {
        auth.push(Directive::new("header_up", [CHECK_TOKEN_HEADER, token]));
    }
    let timeout = Directive::new("response_header_timeout", [format!("{}s", ctx.timeout)]);
    auth.push(Directive::block("transport", ["http"], vec![timeout]));
    let mut block = vec![Directive::block("forward_auth", [format!("{check_host}:{check_port}")], auth)];
    // Routes longest path first; Caddy keeps named-matcher `handle`s in that order, the root one last.
    for (i, route) in site.routes.iter().enumerate() {
        let (host, port) = upstream(route.flow);
        let proxy = vec![Directive::new("reverse_proxy", [format!("{host}:{port}")])];
        if route.path == "/" {
            block.push(Directive::block("handle", Vec::<String>::new(), proxy));
            continue;
        }
        let matcher = format!("@route{i}");
        let paths = PathMatch::of(route.path).into_iter().map(PathMatch::glob);
        block.push(Directive::new(&matcher, std::iter::once("path".to_string()).chain(paths)));
        block.push(Directive::block("handle", [matcher], proxy));
    }
    if site.routes.iter().all(|r| r.path != "/") {
        // Paths no flow serves: not found (Caddy would answer an empty 200).
        block.push(Directive::block("handle", Vec::<String>::new(), vec![Directive::new("respond", ["404"])]));
    }
    let mut addresses = site.hosts.iter().map(|h| format!("http://{h}:8080"));
    let first = addresses.next().unwrap_or_default();
    Directive::block(&first, addresses, block)
}
