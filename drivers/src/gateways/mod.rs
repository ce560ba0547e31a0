//! Gateway drivers: the native configuration that makes an existing gateway call LeanNodes before it
//! proxies a flow's hosts (callout mode), and detection of the gateways a cluster runs. One file per
//! gateway holds its [`Driver`]: the renderer, its hard limit and how a cluster shows it; [`driver`] maps
//! every [`GatewayKind`] (the one list of gateways, shared with the configuration) to its driver.
//!
//! Every artifact sets the timeout that bounds the hold to the flow's `hold_timeout` plus a margin,
//! because gateway defaults are far shorter (Envoy gRPC: 200 ms). Gateways that cannot wait that long
//! (Traefik: 30 s, APISIX: 60 s) get no artifact but the reason and the alternative. Artifacts that route
//! send each flow's hosts and paths to that flow's own upstream, with the proxy's precedence (`sites`).
//! Artifacts are built from typed structures: serde types serialized to YAML (the Kubernetes objects of
//! `k8s.rs`, Envoy's bootstrap), and the directive tree of `conf.rs` for nginx, the Caddyfile and
//! HAProxy. `docs/gateways.md` explains each gateway; `tests/gateways.rs` runs the plain ones in real
//! gateway binaries and validates the Kubernetes ones against the upstream schemas.

mod apisix;
mod caddy;
mod conf;
mod contour;
mod detect;
mod emissary;
mod envoy;
mod envoy_gateway;
mod haproxy;
mod ingress_nginx;
mod istio;
mod k8s;
mod kgateway;
mod kong;
mod nginx;
mod skipper;
mod traefik;

use std::time::Duration;

use leannodes_config::binding::prefix_matches;
use leannodes_config::{Flow, HostPattern, Upstream, WorkloadSpec};

pub use detect::{Detected, Detection, Evidence, Placement, RBAC_RULES, detect};
pub use k8s::ResourceType;
pub use leannodes_config::{GatewayKind, UnknownGateway};

/// The name of the objects an artifact holds once for all flows (a Middleware, a plugin, …).
const NAME: &str = "leannodes";

/// The header a gateway sends with the shared secret of `[server] check_token`.
pub const CHECK_TOKEN_HEADER: &str = "x-leannodes-check-token";

/// What one gateway driver provides; each gateway's file defines its own.
#[derive(Debug)]
pub struct Driver {
    /// The longest the gateway can wait for a callout, when it has a hard limit.
    pub cap: Option<Duration>,
    /// How a cluster shows the gateway and the applied artifact: `Some` exactly for the gateways whose
    /// artifact is Kubernetes resources (validated against the upstream CRD schemas).
    pub detection: Option<Detection>,
    /// Renders the artifact's files.
    render: Render,
}

/// A renderer: the artifact's files.
type Render = fn(&Context<'_>) -> Result<Vec<File>, RenderError>;

impl Driver {
    /// A gateway configured by a plain file (no cluster detection, no hard limit).
    const fn plain(render: Render) -> Driver {
        Driver { cap: None, detection: None, render }
    }

    /// A gateway configured by Kubernetes resources, found as `detection` says.
    const fn kubernetes(detection: Detection, render: Render) -> Driver {
        Driver { cap: None, detection: Some(detection), render }
    }

    /// The same driver, for a gateway that cannot wait longer than `cap` for a callout.
    const fn capped(self, cap: Duration) -> Driver {
        Driver { cap: Some(cap), ..self }
    }

    /// Whether the artifact is Kubernetes resources.
    pub fn is_kubernetes(&self) -> bool {
        self.detection.is_some()
    }
}

/// The driver of a gateway.
pub fn driver(kind: GatewayKind) -> &'static Driver {
    match kind {
        GatewayKind::Istio => &istio::DRIVER,
        GatewayKind::EnvoyGateway => &envoy_gateway::DRIVER,
        GatewayKind::Envoy => &envoy::HTTP,
        GatewayKind::EnvoyGrpc => &envoy::GRPC,
        GatewayKind::IngressNginx => &ingress_nginx::DRIVER,
        GatewayKind::Nginx => &nginx::DRIVER,
        GatewayKind::Traefik => &traefik::DRIVER,
        GatewayKind::Contour => &contour::DRIVER,
        GatewayKind::Emissary => &emissary::DRIVER,
        GatewayKind::Kgateway => &kgateway::DRIVER,
        GatewayKind::Haproxy => &haproxy::DRIVER,
        GatewayKind::Apisix => &apisix::DRIVER,
        GatewayKind::Kong => &kong::DRIVER,
        GatewayKind::Caddy => &caddy::DRIVER,
        GatewayKind::Skipper => &skipper::DRIVER,
    }
}

/// Where the gateway reaches LeanNodes and where the artifacts go.
#[derive(Debug, Clone)]
pub struct Target {
    /// The forward-auth URL (`…/check`).
    pub check_url: String,
    /// The `ext_authz` gRPC address (`host:port`).
    pub grpc: String,
    /// Namespace of the flow's application resources (routes, policies).
    pub namespace: String,
    /// Namespace LeanNodes runs in.
    pub leannodes_namespace: String,
    /// The shared secret of `[server] check_token`, sent in [`CHECK_TOKEN_HEADER`] where the gateway can
    /// add a header to its callout (see `docs/gateways.md` for the ones that cannot).
    pub check_token: Option<String>,
}

impl Default for Target {
    fn default() -> Self {
        Target {
            check_url: "http://leannodes.leannodes.svc.cluster.local:9090/check".into(),
            grpc: "leannodes.leannodes.svc.cluster.local:9191".into(),
            namespace: "default".into(),
            leannodes_namespace: "leannodes".into(),
            check_token: None,
        }
    }
}

/// One file of an artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    /// File name (e.g. `envoy.yaml`).
    pub name: String,
    /// Its text.
    pub content: String,
}

impl File {
    fn new(name: &str, content: impl Into<String>) -> File {
        File { name: name.into(), content: content.into() }
    }
}

/// A rendered artifact.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// The gateway.
    pub kind: GatewayKind,
    /// The timeout the artifact gives the callout.
    pub timeout: Duration,
    /// Its files.
    pub files: Vec<File>,
}

/// Why nothing was rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(
        "{kind} cannot hold a request longer than {cap}s (a hard limit of the gateway), but flow `{flow}` may hold for {hold}s \
         (hold_timeout); a wake slower than {cap}s would fail. Route {hosts} through the LeanNodes proxy tier instead \
         (point the gateway's route at the leannodes Service), or lower the flow's hold_timeout to {max}s or less"
    )]
    /// The gateway cannot wait as long as a flow may hold.
    TooLong {
        /// The gateway.
        kind: GatewayKind,
        /// Its limit (seconds).
        cap: u64,
        /// The flow that may hold longer.
        flow: String,
        /// That flow's hold (seconds).
        hold: u64,
        /// The hosts to route through the proxy tier instead.
        hosts: String,
        /// The longest `hold_timeout` the gateway can serve (seconds).
        max: u64,
    },
    #[error("no flow to render for{}", .0.as_deref().map(|f| format!(": no flow named `{f}`")).unwrap_or_default())]
    /// No flow (or no flow of the given name) to render for.
    NoFlow(Option<String>),
    #[error("the ext_authz address `{0}` is not host:port")]
    /// `--grpc` (LeanNodes' `ext_authz` address) is not `host:port`.
    GrpcAddress(String),
    #[error("cannot write the {kind} artifact as YAML: {source}")]
    /// A typed artifact could not be serialized.
    Yaml {
        /// The gateway.
        kind: GatewayKind,
        /// What the serializer said.
        #[source]
        source: serde_norway::Error,
    },
}

/// The margin a gateway gets on top of the hold (its own round trip, the answer).
const MARGIN: Duration = Duration::from_secs(10);

fn secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// What a renderer works from.
struct Context<'a> {
    /// The gateway being rendered for.
    kind: GatewayKind,
    /// The flows, in file order.
    flows: &'a [&'a Flow],
    /// Where LeanNodes is and where the artifacts go.
    target: &'a Target,
    /// The callout timeout, in whole seconds.
    timeout: u64,
}

impl Context<'_> {
    /// The hosts of all flows, sorted, each once.
    fn hosts(&self) -> Vec<String> {
        hosts(self.flows)
    }

    /// The routing table, by groups of hosts that route alike.
    fn sites(&self) -> Vec<Site<'_>> {
        sites(self.flows)
    }

    /// An empty YAML stream for this artifact's documents.
    fn yaml(&self) -> k8s::YamlStream {
        k8s::YamlStream::new(self.kind)
    }

    /// The host and port of LeanNodes' `ext_authz` listener.
    fn grpc(&self) -> Result<(&str, u16), RenderError> {
        let address = self.target.grpc.as_str();
        address
            .rsplit_once(':')
            .and_then(|(host, port)| Some((host, port.parse().ok()?)))
            .ok_or_else(|| RenderError::GrpcAddress(address.to_string()))
    }

    /// The check token as the artifact writes it, when one is set.
    fn token(&self) -> Option<&str> {
        self.target.check_token.as_deref()
    }
}

/// `text` as comment lines starting with `marker` (`#`, `//`).
fn comment_lines(marker: &str, text: &str) -> String {
    text.lines().map(|l| if l.is_empty() { format!("{marker}\n") } else { format!("{marker} {l}\n") }).collect()
}

fn hosts(flows: &[&Flow]) -> Vec<String> {
    let mut out: Vec<String> = flows.iter().flat_map(|f| f.bindings.iter().map(|b| b.host.to_string())).collect();
    out.sort();
    out.dedup();
    out
}

/// One route of a [`Site`]: requests under `path` (a prefix on segment boundaries) go to `flow`.
#[derive(Debug, Clone, Copy)]
struct Route<'a> {
    /// The path prefix.
    path: &'a str,
    /// The flow it belongs to.
    flow: &'a Flow,
}

/// Host patterns that route alike, with their routes longest path first: what a gateway's server block,
/// virtual host or site holds.
#[derive(Debug)]
struct Site<'a> {
    /// The host patterns.
    hosts: Vec<&'a HostPattern>,
    /// Their routes, longest path first (the first that covers a path wins).
    routes: Vec<Route<'a>>,
}

/// The flows' routing table with the proxy's precedence, in the shape gateways pick a server by host
/// first and never fall back to another: an exact host beats a wildcard and the longest wildcard wins,
/// and a host's table also holds the routes of the wildcards covering it (as the proxy falls back to
/// them when no path of the more specific host matches), except where one of its own prefixes covers
/// them. Host patterns with equal tables share a site, in the order the flows name them.
fn sites<'a>(flows: &[&'a Flow]) -> Vec<Site<'a>> {
    let mut own: Vec<(&'a HostPattern, Vec<Route<'a>>)> = Vec::new();
    for &flow in flows {
        for b in &flow.bindings {
            let route = Route { path: &b.path, flow };
            match own.iter_mut().find(|(h, _)| *h == &b.host) {
                Some((_, routes)) => routes.push(route),
                None => own.push((&b.host, vec![route])),
            }
        }
    }
    let mut sites: Vec<Site<'a>> = Vec::new();
    for (host, routes) in &own {
        let mut table = routes.clone();
        // The wildcards covering this host, most specific first.
        let mut covering: Vec<&(&HostPattern, Vec<Route<'a>>)> = own.iter().filter(|(w, _)| covers(w, host)).collect();
        covering.sort_by_key(|(w, _)| std::cmp::Reverse(w.to_string().len()));
        for (_, fallback) in covering {
            let before = table.len();
            let shadowed = |path: &str| table[..before].iter().any(|r| prefix_matches(r.path, path));
            let added: Vec<Route<'a>> = fallback.iter().filter(|r| !shadowed(r.path)).copied().collect();
            table.extend(added);
        }
        table.sort_by_key(|r| std::cmp::Reverse(r.path.len()));
        let same = |s: &Site<'a>| {
            s.routes.len() == table.len() && s.routes.iter().zip(&table).all(|(a, b)| a.path == b.path && a.flow.name == b.flow.name)
        };
        match sites.iter_mut().find(|s| same(s)) {
            Some(site) => site.hosts.push(host),
            None => sites.push(Site { hosts: vec![host], routes: table }),
        }
    }
    sites
}

/// Whether the wildcard `outer` covers every host of `inner` (and is not `inner` itself).
fn covers(outer: &HostPattern, inner: &HostPattern) -> bool {
    let HostPattern::Wildcard(suffix) = outer else { return false };
    let host = match inner {
        HostPattern::Exact(h) => h,
        HostPattern::Wildcard(s) => s,
    };
    host.strip_suffix(suffix.as_str()).is_some_and(|rest| rest.ends_with('.'))
}

/// How a gateway with exact and prefix path matches expresses one of the proxy's path prefixes (which
/// match on segment boundaries: `/api` covers `/api` and `/api/x`, not `/apix`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum PathMatch {
    /// The path itself.
    Exact(String),
    /// Any path starting with this string (ends with `/`).
    Prefix(String),
}

impl PathMatch {
    /// The matches that together cover exactly what the prefix `path` covers.
    fn of(path: &str) -> Vec<PathMatch> {
        if path.ends_with('/') {
            vec![PathMatch::Prefix(path.to_string())]
        } else {
            vec![PathMatch::Exact(path.to_string()), PathMatch::Prefix(format!("{path}/"))]
        }
    }

    /// As a path pattern where a trailing `*` matches anything (Caddy, Istio, APISIX).
    fn glob(self) -> String {
        match self {
            PathMatch::Exact(p) => p,
            PathMatch::Prefix(p) => format!("{p}*"),
        }
    }
}

/// The address a gateway proxies a flow to: its upstream node's Service or port, or its literal address.
fn upstream(flow: &Flow) -> (String, u16) {
    match &flow.upstream {
        Upstream::Address(hp) => (hp.host.clone(), hp.port),
        Upstream::Node(i) => {
            let w = &flow.nodes[*i].workload;
            let port = w.port.unwrap_or(80);
            match &w.spec {
                WorkloadSpec::Kubernetes { namespace, name, .. } => (format!("{name}.{namespace}.svc.cluster.local"), port),
                _ => ("127.0.0.1".into(), port),
            }
        }
    }
}

/// The Service (name, port) a Kubernetes route sends a flow to, in the route's namespace.
fn service(flow: &Flow) -> (String, u16) {
    let (host, port) = upstream(flow);
    (first_label(&host).to_string(), port)
}

fn first_label(host: &str) -> &str {
    host.split('.').next().unwrap_or(host)
}

/// Splits `http://host:port/path` into (host, port, path).
fn split_url(url: &str) -> (String, u16, String) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let (authority, path) = rest.find('/').map_or((rest, "/"), |i| rest.split_at(i));
    let (host, port) = authority.rsplit_once(':').map_or((authority, 80), |(h, p)| (h, p.parse().unwrap_or(80)));
    (host.to_string(), port, path.to_string())
}

/// Renders the artifact of `kind` for `flows` (all, or the one `--flow` names).
pub fn render(kind: GatewayKind, flows: &[&Flow], target: &Target) -> Result<Artifact, RenderError> {
    let Some(longest) = flows.iter().max_by_key(|f| f.hold_timeout) else { return Err(RenderError::NoFlow(None)) };
    let hold = longest.hold_timeout;
    let driver = driver(kind);
    if let Some(cap) = driver.cap {
        if hold + MARGIN > cap {
            return Err(RenderError::TooLong {
                kind,
                cap: cap.as_secs(),
                flow: longest.name.clone(),
                hold: secs(hold),
                hosts: hosts(flows).join(", "),
                max: (cap - MARGIN).as_secs(),
            });
        }
    }
    let timeout = (hold + MARGIN).min(driver.cap.unwrap_or(Duration::MAX));
    let files = (driver.render)(&Context { kind, flows, target, timeout: secs(timeout) })?;
    Ok(Artifact { kind, timeout, files })
}

/// Headers a callout needs to classify the client like the proxy does.
const CLIENT_HEADERS: [&str; 3] = ["accept", "content-type", "user-agent"];
/// Headers of LeanNodes' answers that must reach the client.
const ANSWER_HEADERS: [&str; 4] = ["retry-after", "cache-control", "content-type", "grpc-status"];

/// Flows selected by `--flow` (all when `None`).
pub fn select<'a>(flows: &'a [std::sync::Arc<Flow>], name: Option<&str>) -> Result<Vec<&'a Flow>, RenderError> {
    let selected: Vec<&Flow> = flows.iter().map(|f| &**f).filter(|f| name.is_none_or(|n| f.name == n)).collect();
    if selected.is_empty() {
        return Err(RenderError::NoFlow(name.map(str::to_string)));
    }
    Ok(selected)
}

/// What `validate --gateway KIND` says about the configuration: one line per flow a gateway cannot hold.
pub fn hold_problems(kind: GatewayKind, flows: &[std::sync::Arc<Flow>]) -> Vec<String> {
    flows.iter().filter_map(|f| render(kind, &[&**f], &Target::default()).err().map(|e| format!("flow `{}`: {e}", f.name))).collect()
}

#[cfg(test)]
mod tests;
