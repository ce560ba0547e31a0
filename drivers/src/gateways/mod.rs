//! Gateway artifacts: the native configuration that makes an existing gateway call LeanNodes before it
//! proxies a flow's hosts (callout mode). Every artifact sets the timeout that bounds the hold to the
//! flow's `hold_timeout` plus a margin, because gateway defaults are far shorter (Envoy gRPC: 200 ms).
//! Gateways that cannot wait that long (Traefik: 30 s, APISIX: 60 s) get no artifact but the reason and
//! the alternative. `docs/gateways.md` explains each one; `tests/gateways.rs` runs the plain ones in
//! real gateway binaries and validates the Kubernetes ones against the upstream schemas.

mod apisix;
mod caddy;
mod contour;
mod detect;
mod emissary;
mod envoy;
mod envoy_gateway;
mod haproxy;
mod ingress_nginx;
mod istio;
mod kgateway;
mod kong;
mod nginx;
mod skipper;
mod traefik;

use std::time::Duration;

use leannodes_config::{Flow, Upstream, WorkloadSpec};

pub use detect::{Detected, GATEWAY_PROBES, GatewayProbe, RBAC_RULES, detect_gateways};

/// The header a gateway sends with the shared secret of `[server] check_token`.
pub const CHECK_TOKEN_HEADER: &str = "x-leannodes-check-token";

/// The gateways LeanNodes renders for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Istio (CUSTOM `AuthorizationPolicy`, gRPC).
    Istio,
    /// Envoy Gateway (`SecurityPolicy`, gRPC).
    EnvoyGateway,
    /// Plain Envoy, HTTP `ext_authz`.
    Envoy,
    /// Plain Envoy, gRPC `ext_authz`.
    EnvoyGrpc,
    /// ingress-nginx (`auth-url`).
    IngressNginx,
    /// nginx (`auth_request`).
    Nginx,
    /// Traefik (`forwardAuth`).
    Traefik,
    /// Contour (`ExtensionService`).
    Contour,
    /// Emissary-ingress (`AuthService`).
    Emissary,
    /// kgateway (`GatewayExtension`).
    Kgateway,
    /// HAProxy (Lua callout).
    Haproxy,
    /// APISIX (`forward-auth`).
    Apisix,
    /// Kong (`pre-function`).
    Kong,
    /// Caddy (`forward_auth`).
    Caddy,
    /// Skipper (`webhook`).
    Skipper,
}

impl Kind {
    /// Every gateway, in the order they are listed.
    pub const ALL: [Kind; 15] = [
        Kind::Istio,
        Kind::EnvoyGateway,
        Kind::Envoy,
        Kind::EnvoyGrpc,
        Kind::IngressNginx,
        Kind::Nginx,
        Kind::Traefik,
        Kind::Contour,
        Kind::Emissary,
        Kind::Kgateway,
        Kind::Haproxy,
        Kind::Apisix,
        Kind::Kong,
        Kind::Caddy,
        Kind::Skipper,
    ];

    /// The name `leannodes gateway render` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Istio => "istio",
            Kind::EnvoyGateway => "envoy-gateway",
            Kind::Envoy => "envoy",
            Kind::EnvoyGrpc => "envoy-grpc",
            Kind::IngressNginx => "ingress-nginx",
            Kind::Nginx => "nginx",
            Kind::Traefik => "traefik",
            Kind::Contour => "contour",
            Kind::Emissary => "emissary",
            Kind::Kgateway => "kgateway",
            Kind::Haproxy => "haproxy",
            Kind::Apisix => "apisix",
            Kind::Kong => "kong",
            Kind::Caddy => "caddy",
            Kind::Skipper => "skipper",
        }
    }

    /// The gateway with this name.
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The longest a gateway can wait for a callout, when it has a hard limit.
    pub fn cap(self) -> Option<Duration> {
        match self {
            // forward.go: http.Client{Timeout: 30 * time.Second}, not configurable.
            Kind::Traefik => Some(Duration::from_secs(30)),
            // forward-auth's schema: timeout maximum 60000 ms.
            Kind::Apisix => Some(Duration::from_secs(60)),
            _ => None,
        }
    }

    /// Whether the artifact is Kubernetes resources (validated against upstream CRD schemas).
    pub fn is_kubernetes(self) -> bool {
        !matches!(self, Kind::Envoy | Kind::EnvoyGrpc | Kind::Nginx | Kind::Haproxy | Kind::Caddy | Kind::Skipper)
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

/// A rendered artifact.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// The gateway.
    pub kind: Kind,
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
        kind: &'static str,
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
    #[error("unknown gateway `{0}`; use one of: {list}", list = Kind::ALL.map(Kind::as_str).join(", "))]
    /// Not a gateway LeanNodes renders for.
    UnknownKind(String),
}

/// The margin a gateway gets on top of the hold (its own round trip, the answer).
const MARGIN: Duration = Duration::from_secs(10);

fn secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

fn hosts(flows: &[&Flow]) -> Vec<String> {
    let mut out: Vec<String> = flows.iter().flat_map(|f| f.bindings.iter().map(|b| b.host.to_string())).collect();
    out.sort();
    out.dedup();
    out
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

fn split_host_port(address: &str) -> (&str, &str) {
    address.rsplit_once(':').unwrap_or((address, "80"))
}

/// Splits `http://host:port/path` into (host, port, path).
fn split_url(url: &str) -> (String, u16, String) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let (authority, path) = rest.find('/').map_or((rest, "/"), |i| rest.split_at(i));
    let (host, port) = authority.rsplit_once(':').map_or((authority, 80), |(h, p)| (h, p.parse().unwrap_or(80)));
    (host.to_string(), port, path.to_string())
}

/// Renders the artifact of `kind` for `flows` (all, or the one `--flow` names).
pub fn render(kind: Kind, flows: &[&Flow], target: &Target) -> Result<Artifact, RenderError> {
    let Some(longest) = flows.iter().max_by_key(|f| f.hold_timeout) else { return Err(RenderError::NoFlow(None)) };
    let hold = longest.hold_timeout;
    if let Some(cap) = kind.cap() {
        if hold + MARGIN > cap {
            return Err(RenderError::TooLong {
                kind: kind.as_str(),
                cap: cap.as_secs(),
                flow: longest.name.clone(),
                hold: secs(hold),
                hosts: hosts(flows).join(", "),
                max: (cap - MARGIN).as_secs(),
            });
        }
    }
    let timeout = (hold + MARGIN).min(kind.cap().unwrap_or(Duration::MAX));
    let t = secs(timeout);
    let files = match kind {
        Kind::Envoy => vec![file("envoy.yaml", envoy::envoy(flows, target, t, false))],
        Kind::EnvoyGrpc => vec![file("envoy.yaml", envoy::envoy(flows, target, t, true))],
        Kind::Nginx => vec![file("leannodes.conf", nginx::nginx(flows, target, t))],
        Kind::Caddy => vec![file("Caddyfile", caddy::caddy(flows, target, t))],
        Kind::Haproxy => {
            vec![file("haproxy.cfg", haproxy::haproxy(flows, target, t)), file("leannodes.lua", haproxy::HAPROXY_LUA.to_string())]
        }
        Kind::Istio => istio::istio(flows, target, t),
        Kind::EnvoyGateway => vec![file("securitypolicy.yaml", envoy_gateway::envoy_gateway(flows, target, t))],
        Kind::IngressNginx => vec![file("ingress-nginx.yaml", ingress_nginx::ingress_nginx(flows, target, t))],
        Kind::Traefik => vec![file("middleware.yaml", traefik::traefik(target))],
        Kind::Contour => vec![file("contour.yaml", contour::contour(flows, target, t))],
        Kind::Emissary => vec![file("authservice.yaml", emissary::emissary(target, t))],
        Kind::Kgateway => vec![file("kgateway.yaml", kgateway::kgateway(flows, target, t))],
        Kind::Apisix => vec![file("apisix.yaml", apisix::apisix(flows, target, t))],
        Kind::Kong => vec![file("kongplugin.yaml", kong::kong(target, t))],
        Kind::Skipper => vec![file("skipper.eskip", skipper::skipper(flows, target))],
    };
    Ok(Artifact { kind, timeout, files })
}

fn file(name: &str, content: String) -> File {
    File { name: name.into(), content }
}

/// Headers a callout needs to classify the client like the proxy does.
const CLIENT_HEADERS: [&str; 3] = ["accept", "content-type", "user-agent"];
/// Headers of LeanNodes' answers that must reach the client.
const ANSWER_HEADERS: [&str; 4] = ["retry-after", "cache-control", "content-type", "grpc-status"];

fn quoted(items: &[String]) -> String {
    items.iter().map(|h| format!("\"{h}\"")).collect::<Vec<_>>().join(", ")
}

/// The namespace and name of the object whose presence shows that the artifact of `kind` is applied
/// (what [`detect_gateways`] looks for).
pub fn artifact_object(kind: &str, flows: &[&Flow], target: &Target) -> (String, String) {
    let first = flows.first().map_or("flow", |f| f.name.as_str());
    match kind {
        "istio" => ("istio-system".into(), "leannodes-wake".into()),
        "envoy-gateway" => (target.namespace.clone(), format!("leannodes-{first}")),
        "ingress-nginx" => (target.namespace.clone(), first.to_string()),
        "contour" | "emissary" => (target.leannodes_namespace.clone(), "leannodes".into()),
        _ => (target.namespace.clone(), "leannodes".into()),
    }
}

/// Finds the gateways installed in the cluster and whether their artifacts are applied.
pub async fn detect(client: &kube::Client, flows: &[&Flow], target: &Target) -> Result<Vec<Detected>, kube::Error> {
    detect_gateways(client, |kind| artifact_object(kind, flows, target)).await
}

/// Flows selected by `--flow` (all when `None`).
pub fn select<'a>(flows: &'a [std::sync::Arc<Flow>], name: Option<&str>) -> Result<Vec<&'a Flow>, RenderError> {
    let selected: Vec<&Flow> = flows.iter().map(|f| &**f).filter(|f| name.is_none_or(|n| f.name == n)).collect();
    if selected.is_empty() {
        return Err(RenderError::NoFlow(name.map(str::to_string)));
    }
    Ok(selected)
}

/// What `validate --gateway KIND` says about the configuration: one line per flow a gateway cannot hold.
pub fn hold_problems(kind: Kind, flows: &[std::sync::Arc<Flow>]) -> Vec<String> {
    flows.iter().filter_map(|f| render(kind, &[&**f], &Target::default()).err().map(|e| format!("flow `{}`: {e}", f.name))).collect()
}

#[cfg(test)]
mod tests;
