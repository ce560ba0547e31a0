//! nginx: a `server` block per site with `auth_request` to an internal check location, and a `location`
//! per route proxying to its flow's upstream.

use super::conf::{Conf, Directive, Syntax};
use super::{CHECK_TOKEN_HEADER, Context, Driver, File, PathMatch, RenderError, Site, upstream};

/// nginx's driver (a plain config file: no detection).
pub(super) const DRIVER: Driver = Driver::plain(render);

/// The internal location that asks LeanNodes.
const CHECK_LOCATION: &str = "/_leannodes_check";

fn render(ctx: &Context<'_>) -> Result<Vec<File>, RenderError> {
    let t = ctx.timeout;
    let conf = Conf {
        syntax: Syntax::Nginx,
        comment: format!(
            "Rendered by `leannodes gateway render nginx`: include inside `http {{ }}`.\n\
             nginx asks LeanNodes (auth_request) before proxying; the check may hold while the flow wakes,\n\
             so its proxy_read_timeout ({t}s) covers the flows' hold_timeout (nginx's default is 60s).\n\
             nginx passes 401/403 from the check and turns any other refusal (503 while waking) into 500."
        ),
        directives: ctx.sites().iter().map(|site| server(ctx, site)).collect(),
    };
    Ok(vec![File::new("leannodes.conf", conf.to_string())])
}

/// The `server` block of one site.
fn server(ctx: &Context<'_>, site: &Site<'_>) -> Directive {
    let t = ctx.timeout;
    let mut block = vec![Directive::new("listen", ["8080"]), Directive::new("server_name", site.hosts.iter().map(|h| h.to_string()))];
    for route in &site.routes {
        let (host, port) = upstream(route.flow);
        let body = vec![
            Directive::new("auth_request", [CHECK_LOCATION]),
            Directive::new("proxy_pass", [format!("http://{host}:{port}")]),
            Directive::new("proxy_set_header", ["Host", "$host"]),
        ];
        // `/api` is `location = /api` and `location /api/` (the proxy's prefixes end on a segment).
        for m in PathMatch::of(route.path) {
            let args = match m {
                PathMatch::Exact(p) => vec!["=".to_string(), p],
                PathMatch::Prefix(p) => vec![p],
            };
            block.push(Directive::block("location", args, body.clone()));
        }
    }
    let mut check = vec![
        Directive::new("internal", Vec::<String>::new()),
        Directive::new("proxy_pass", [ctx.target.check_url.as_str()]),
        Directive::new("proxy_pass_request_body", ["off"]),
        Directive::new("proxy_set_header", ["Content-Length", ""]),
        Directive::new("proxy_set_header", ["X-Forwarded-Host", "$host"]),
        Directive::new("proxy_set_header", ["X-Forwarded-Uri", "$request_uri"]),
        Directive::new("proxy_set_header", ["X-Forwarded-Method", "$request_method"]),
    ];
    if let Some(token) = ctx.token() {
        check.push(Directive::new("proxy_set_header", [CHECK_TOKEN_HEADER, token]));
    }
    check.extend([
        Directive::new("proxy_connect_timeout", ["5s"]),
        Directive::new("proxy_read_timeout", [format!("{t}s")]),
        Directive::new("proxy_send_timeout", [format!("{t}s")]),
    ]);
    block.push(Directive::block("location", ["=", CHECK_LOCATION], check));
    Directive::block("server", Vec::<String>::new(), block)
}
