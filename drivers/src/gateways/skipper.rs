//! Skipper: an eskip route per host and path with the `webhook` filter, to the route's flow's upstream.
//! Routes are typed (`EskipRoute`: predicates, filters, backend) and printed in eskip syntax.

use std::fmt;

use leannodes_config::HostPattern;

use super::{CHECK_TOKEN_HEADER, Context, Driver, File, RenderError, comment_lines, upstream};

/// Skipper's driver (eskip routes: no detection).
pub(super) const DRIVER: Driver = Driver::plain(render);

/// A call in eskip: a predicate or a filter, `name("arg", 2, …)`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Call {
    /// Predicate or filter name.
    name: &'static str,
    /// Arguments.
    args: Vec<Arg>,
}

/// An argument of a [`Call`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum Arg {
    /// A string, written quoted.
    Str(String),
    /// A number.
    Num(usize),
}

impl Call {
    /// A call with string arguments.
    fn new<S: Into<String>>(name: &'static str, args: impl IntoIterator<Item = S>) -> Call {
        Call { name, args: args.into_iter().map(|a| Arg::Str(a.into())).collect() }
    }
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let args: Vec<String> = self
            .args
            .iter()
            .map(|a| match a {
                Arg::Str(s) => format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")),
                Arg::Num(n) => n.to_string(),
            })
            .collect();
        write!(f, "{}({})", self.name, args.join(", "))
    }
}

/// One eskip route: `id: predicates -> filters -> "backend";`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct EskipRoute {
    /// Route id.
    id: String,
    /// Predicates (all must match).
    predicates: Vec<Call>,
    /// Filters, in order.
    filters: Vec<Call>,
    /// Backend URL.
    backend: String,
}

impl fmt::Display for EskipRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let predicates: Vec<String> = self.predicates.iter().map(Call::to_string).collect();
        writeln!(f, "{}: {}", self.id, predicates.join(" && "))?;
        for filter in &self.filters {
            writeln!(f, "  -> {filter}")?;
        }
        writeln!(f, "  -> \"{}\";", self.backend)
    }
}

/// Skipper's `Host()` regular expression for a host pattern (`*.` covers any subdomain).
fn host_regex(host: &HostPattern) -> String {
    match host {
        HostPattern::Exact(h) => format!("^{}$", h.replace('.', "[.]")),
        HostPattern::Wildcard(s) => format!("^.*[.]{}$", s.replace('.', "[.]")),
    }
}

/// The route's `Weight()`: where routes of one path match a host by several patterns, the most specific
/// pattern wins (an exact host has more labels than any wildcard suffix covering it; a longer suffix
/// beats a shorter one).
fn weight(host: &HostPattern) -> Call {
    let labels = match host {
        HostPattern::Exact(h) => h.split('.').count(),
        HostPattern::Wildcard(s) => s.split('.').count(),
    };
    Call { name: "Weight", args: vec![Arg::Num(labels)] }
}

fn render(ctx: &Context<'_>) -> Result<Vec<File>, RenderError> {
    let t = ctx.timeout;
    let check = ctx.target.check_url.as_str();
    let mut filters = vec![
        Call::new("setRequestHeader", ["X-Forwarded-Uri", "${request.path}"]),
        Call::new("setRequestHeader", ["X-Forwarded-Method", "${request.method}"]),
        Call::new("xforward", Vec::<String>::new()),
    ];
    if let Some(token) = ctx.token() {
        filters.push(Call::new("setRequestHeader", [CHECK_TOKEN_HEADER, token]));
    }
    filters.push(Call::new("webhook", [check]));
    if ctx.token().is_some() {
        filters.push(Call::new("dropRequestHeader", [CHECK_TOKEN_HEADER]));
    }
    let mut routes = Vec::new();
    for site in ctx.sites() {
        for host in &site.hosts {
            for route in &site.routes {
                let (app_host, app_port) = upstream(route.flow);
                // PathSubtree("/api") covers /api and what is below it, like the proxy's prefixes; the
                // most specific subtree wins, then the heaviest route.
                routes.push(EskipRoute {
                    id: format!("leannodes_{}", routes.len()),
                    predicates: vec![
                        Call::new("Host", [host_regex(host)]),
                        Call::new("PathSubtree", [route.path.to_string()]),
                        weight(host),
                    ],
                    filters: filters.clone(),
                    backend: format!("http://{app_host}:{app_port}"),
                });
            }
        }
    }
    let comment = comment_lines(
        "//",
        &format!(
            "Rendered by `leannodes gateway render skipper`. Skipper's webhook timeout is a global flag: start\n\
             skipper with -webhook-timeout={t}s -write-timeout-server={t}s (defaults 2s and 60s), or wakes fail.\n\
             Skipper turns refusals other than 403 into its own 401 (LeanNodes' body is not passed on)."
        ),
    );
    let text = routes.iter().fold(comment, |mut out, r| {
        out.push_str(&r.to_string());
        out
    });
    Ok(vec![File::new("skipper.eskip", text)])
}
