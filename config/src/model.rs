//! The validated internal model every other crate works with.
//!
//! Everything here has been checked: durations are [`Duration`]s, addresses are parsed, node references are
//! indexes, the DAG is acyclic and the nodes are stored in a topological order.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use crate::file::{AuthMode, DriverKind, NodeKind, OnFailure, PublicStatus, SmtpTls};

/// A validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Server-wide settings.
    pub server: Server,
    /// The flows, in file order.
    pub flows: Vec<Arc<Flow>>,
    /// Notification routes from the file.
    pub notifications: Vec<Arc<NotificationRoute>>,
}

/// A validated `[[notification]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct NotificationRoute {
    /// Unique name.
    pub name: String,
    /// Slack, Teams or a webhook.
    pub kind: crate::file::NotificationKind,
    /// The payload shape (`Generic` for Slack and Teams, which have their own).
    pub format: crate::file::WebhookFormat,
    /// Where to POST (secret).
    pub url: Secret,
    /// Extra headers (values secret).
    pub headers: Vec<(String, Secret)>,
    /// PagerDuty's routing key.
    pub routing_key: Option<Secret>,
    /// Events it receives; empty: all.
    pub events: Vec<crate::file::NoticeKind>,
    /// Flows it receives events of; empty: all.
    pub flows: Vec<String>,
}

impl NotificationRoute {
    /// Whether a notice of `kind` about `flow` goes to this route (`test` always does).
    pub fn wants(&self, kind: crate::file::NoticeKind, flow: Option<&str>) -> bool {
        if kind == crate::file::NoticeKind::Test {
            return true;
        }
        let event = self.events.is_empty() || self.events.contains(&kind);
        let flow = match flow {
            Some(f) => self.flows.is_empty() || self.flows.iter().any(|x| x == f),
            None => true,
        };
        event && flow
    }
}

impl Config {
    /// Total number of nodes over all flows (a shared workload counts once per flow).
    pub fn node_count(&self) -> usize {
        self.flows.iter().map(|f| f.nodes.len()).sum()
    }

    /// The flow with this name.
    pub fn flow(&self, name: &str) -> Option<&Arc<Flow>> {
        self.flows.iter().find(|f| f.name == name)
    }
}

/// Server-wide settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    /// Proxy listeners.
    pub listen: Vec<SocketAddr>,
    /// Admin listener.
    pub admin_listen: SocketAddr,
    /// Listener serving only `/check`, when set.
    pub check_listen: Option<SocketAddr>,
    /// Envoy `ext_authz` gRPC listener, when served.
    pub ext_authz_listen: Option<SocketAddr>,
    /// Whether callouts allow requests that no flow serves.
    pub check_allows_unmatched: bool,
    /// Store location.
    pub store: StoreUrl,
    /// Platform for Kubernetes kinds.
    pub driver: DriverKind,
    /// Pass-through target for unmatched hosts.
    pub default_upstream: Option<HostPort>,
    /// Proxy worker threads (`None`: one per core).
    pub threads: Option<usize>,
    /// Time in-flight requests get to finish at shutdown.
    pub shutdown_grace: Duration,
    /// Time a proxy connection's first request head may take to arrive.
    pub request_head_timeout: Duration,
    /// Whether flows come from `Flow` resources (as well as, or instead of, the file).
    pub flows_from_crd: bool,
    /// Whether the file's `[[flow]]` tables are used.
    pub flows_from_file: bool,
    /// This replica's name (`None`: the host name, resolved at start).
    pub replica_id: Option<String>,
    /// Time to live of leases (cold-start claims, drain leadership).
    pub claim_ttl: Duration,
    /// Interval of activity flushes to the store.
    pub activity_flush: Duration,
    /// The shared secret callouts must carry, when set.
    pub check_token: Option<Secret>,
    /// The gateway of callout mode whose limits every flow must fit.
    pub callout_gateway: Option<GatewayKind>,
    /// What public status surfaces show.
    pub public_status: PublicStatus,
    /// Authentication of the management API.
    pub auth: Auth,
    /// Outgoing mail, when configured.
    pub smtp: Option<Smtp>,
    /// The cost model of the savings estimate.
    pub savings: Savings,
    /// Where traces go, when on.
    pub tracing: Option<Tracing>,
    /// TLS proxy listeners.
    pub tls: Vec<TlsListener>,
}

/// A `[[server.tls]]` listener, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsListener {
    /// Where it listens.
    pub listen: SocketAddr,
    /// Certificate and key files (absolute, or relative to the working directory); the first is the default.
    pub certs: Vec<CertificatePaths>,
}

/// A certificate chain file and its key file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificatePaths {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// `[server.tracing]`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Tracing {
    /// `{otlp}/v1/traces`.
    pub endpoint: String,
    /// Extra headers (values secret).
    pub headers: Vec<(String, Secret)>,
    /// `service.name`.
    pub service_name: String,
}

/// `[server.savings]`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Savings {
    /// Cost of one node-hour.
    pub node_hourly_cost: f64,
    /// Cores per node (> 0).
    pub node_cpu: f64,
    /// The currency of `node_hourly_cost`.
    pub currency: String,
}

impl Default for Savings {
    fn default() -> Savings {
        Savings { node_hourly_cost: 0.0, node_cpu: 4.0, currency: "USD".into() }
    }
}

/// A secret read from the configuration (`"env:NAME"`, `"file:PATH"` or the value). Its `Debug` output
/// hides the value, so it never reaches a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Authentication settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Auth {
    /// Password (users, sessions, tokens, SSO) or none (loopback only).
    pub mode: AuthMode,
    /// Lifetime of a sign-in.
    pub session_ttl: Duration,
    /// The admin listener's URL as users reach it, without a trailing slash.
    pub external_url: String,
    /// Lifetime of an invitation link.
    pub invitation_ttl: Duration,
    /// OpenID Connect providers.
    pub oidc: Vec<OidcProvider>,
    /// The SAML identity provider, when configured.
    pub saml: Option<Saml>,
}

/// One OpenID Connect provider.
#[derive(Debug, Clone, PartialEq)]
pub struct OidcProvider {
    /// Short name (in URLs).
    pub name: String,
    /// Button text.
    pub label: String,
    /// Issuer URL.
    pub issuer: String,
    /// Client id.
    pub client_id: String,
    /// Client secret.
    pub client_secret: Secret,
    /// ID-token claim with the groups.
    pub groups_claim: String,
    /// Scopes to ask for (`None`: the default set).
    pub scopes: Option<Vec<String>>,
    /// Group → role.
    pub role_map: BTreeMap<String, String>,
}

/// The SAML identity provider.
#[derive(Debug, Clone, PartialEq)]
pub struct Saml {
    /// The IdP metadata file.
    pub idp_metadata: PathBuf,
    /// This service provider's entity id.
    pub entity_id: String,
    /// Button text.
    pub label: String,
    /// Attribute with the groups.
    pub groups_attribute: String,
    /// Attribute with the e-mail address (`None`: the NameID, else `email`).
    pub email_attribute: Option<String>,
    /// Group → role.
    pub role_map: BTreeMap<String, String>,
}

/// Outgoing mail.
#[derive(Debug, Clone, PartialEq)]
pub struct Smtp {
    /// Server host.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Transport security.
    pub tls: SmtpTls,
    /// User name and password, when the server wants them.
    pub credentials: Option<(String, Secret)>,
    /// Sender.
    pub from: String,
}

/// Where the store lives, parsed from `server.store`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// An SQLite database file (already resolved against the config file's folder).
    Sqlite(PathBuf),
    /// A Postgres connection URL.
    Postgres(String),
    /// A DynamoDB table URL.
    DynamoDb(String),
}

impl StoreUrl {
    /// Parses a store URL; relative SQLite paths are resolved against `base_dir`. `None` when the
    /// scheme is not one of `sqlite://`, `postgres://` (or `postgresql://`), `dynamodb://`.
    pub fn parse(url: &str, base_dir: &std::path::Path) -> Option<StoreUrl> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            let path = std::path::Path::new(path);
            if path.as_os_str().is_empty() {
                return None;
            }
            return Some(StoreUrl::Sqlite(if path.is_absolute() { path.to_path_buf() } else { base_dir.join(path) }));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Some(StoreUrl::Postgres(url.to_string()));
        }
        if url.strip_prefix("dynamodb://").is_some_and(|rest| !rest.is_empty()) {
            return Some(StoreUrl::DynamoDb(url.to_string()));
        }
        None
    }
}

/// A `host:port` pair. The host is kept as written; it is resolved off the request path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// Host name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') { write!(f, "[{}]:{}", self.host, self.port) } else { write!(f, "{}:{}", self.host, self.port) }
    }
}

impl HostPort {
    /// Parses `host:port` (or `[v6]:port`); `None` when it is not of that shape.
    pub fn parse(s: &str) -> Option<HostPort> {
        if let Ok(addr) = s.parse::<SocketAddr>() {
            return Some(HostPort { host: addr.ip().to_string(), port: addr.port() });
        }
        let (host, port) = s.rsplit_once(':')?;
        let port = port.parse::<u16>().ok().filter(|p| *p != 0)?;
        let valid_host = !host.is_empty()
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !label.starts_with('-')
            });
        valid_host.then(|| HostPort { host: host.to_ascii_lowercase(), port })
    }

    /// The address when the host is a literal IP.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        let ip = self.host.parse().ok()?;
        Some(SocketAddr::new(ip, self.port))
    }
}

/// The gateways LeanNodes renders callout artifacts for — the one list of them: `[server]
/// callout_gateway`, `leannodes gateway render KIND`, `validate --gateway` and the management API all
/// take these names, and the drivers crate has one driver (renderer and detection) per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GatewayKind {
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

impl GatewayKind {
    /// Every gateway, in the order they are listed.
    pub const ALL: [GatewayKind; 15] = [
        GatewayKind::Istio,
        GatewayKind::EnvoyGateway,
        GatewayKind::Envoy,
        GatewayKind::EnvoyGrpc,
        GatewayKind::IngressNginx,
        GatewayKind::Nginx,
        GatewayKind::Traefik,
        GatewayKind::Contour,
        GatewayKind::Emissary,
        GatewayKind::Kgateway,
        GatewayKind::Haproxy,
        GatewayKind::Apisix,
        GatewayKind::Kong,
        GatewayKind::Caddy,
        GatewayKind::Skipper,
    ];

    /// Its name (`envoy-grpc`, `ingress-nginx`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            GatewayKind::Istio => "istio",
            GatewayKind::EnvoyGateway => "envoy-gateway",
            GatewayKind::Envoy => "envoy",
            GatewayKind::EnvoyGrpc => "envoy-grpc",
            GatewayKind::IngressNginx => "ingress-nginx",
            GatewayKind::Nginx => "nginx",
            GatewayKind::Traefik => "traefik",
            GatewayKind::Contour => "contour",
            GatewayKind::Emissary => "emissary",
            GatewayKind::Kgateway => "kgateway",
            GatewayKind::Haproxy => "haproxy",
            GatewayKind::Apisix => "apisix",
            GatewayKind::Kong => "kong",
            GatewayKind::Caddy => "caddy",
            GatewayKind::Skipper => "skipper",
        }
    }

    /// Every name, comma-separated (for messages that list the choices).
    pub fn names() -> String {
        GatewayKind::ALL.map(GatewayKind::as_str).join(", ")
    }
}

impl fmt::Display for GatewayKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A name that is not one of the [`GatewayKind`]s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown gateway `{0}`; use one of: {list}", list = GatewayKind::names())]
pub struct UnknownGateway(pub String);

impl std::str::FromStr for GatewayKind {
    type Err = UnknownGateway;

    fn from_str(s: &str) -> Result<GatewayKind, UnknownGateway> {
        GatewayKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| UnknownGateway(s.to_string()))
    }
}

/// Where a flow was defined.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FlowOrigin {
    /// The configuration file.
    File,
    /// A `Flow` resource in this namespace.
    Resource {
        /// The resource's namespace.
        namespace: String,
    },
    /// The store: managed through the API (drafts, versions, activation).
    Store {
        /// The active version.
        version: u64,
    },
    /// A test session: a version of a store-managed flow served on a test host (and to requests for the
    /// flow that ask for the version with `X-LeanNodes-Version`) until it expires. Its flow is named
    /// [`FlowOrigin::session_name`].
    TestSession {
        /// The store-managed flow.
        flow: String,
        /// The version it serves.
        version: u64,
        /// When it ends (Unix milliseconds).
        expires_ms: i64,
    },
}

impl FlowOrigin {
    /// `file`, `resource`, `store` or `test_session`.
    pub fn as_str(&self) -> &'static str {
        match self {
            FlowOrigin::File => "file",
            FlowOrigin::Resource { .. } => "resource",
            FlowOrigin::Store { .. } => "store",
            FlowOrigin::TestSession { .. } => "test_session",
        }
    }

    /// The name of the flow of a test session of `flow` at `version` (`shop~v3`; `~` cannot appear in
    /// the name of any other flow).
    pub fn session_name(flow: &str, version: u64) -> String {
        format!("{flow}~v{version}")
    }

    /// The namespace a tenant flow is confined to (`Flow` resources only).
    pub fn tenant(&self) -> Option<&str> {
        match self {
            FlowOrigin::Resource { namespace } => Some(namespace),
            FlowOrigin::File | FlowOrigin::Store { .. } | FlowOrigin::TestSession { .. } => None,
        }
    }
}

/// One flow: bindings, settings and a DAG of nodes.
#[derive(Debug, Clone, PartialEq)]
pub struct Flow {
    /// Unique name.
    pub name: String,
    /// Where it was defined.
    pub origin: FlowOrigin,
    /// Host patterns × path prefixes this flow answers.
    pub bindings: Vec<Binding>,
    /// Where requests go once awake.
    pub upstream: Upstream,
    /// Sliding idle window before a drain.
    pub idle_after: Duration,
    /// Longest hold.
    pub hold_timeout: Duration,
    /// Hold after which browsers get the warm-up page.
    pub fast_hold: Duration,
    /// Held requests per replica.
    pub max_held: NonZeroUsize,
    /// What a failed wake leaves behind.
    pub on_failure: OnFailure,
    /// Never drained.
    pub pinned: bool,
    /// Answers `flow_disabled`, wakes nothing.
    pub disabled: bool,
    /// Requests that never wake and never count as activity.
    pub ignore: IgnoreRules,
    /// Windows in which the flow is woken ahead and kept awake.
    pub keep_warm: Vec<crate::schedule::KeepWarm>,
    /// How requests reach the upstream.
    pub upstream_protocol: crate::file::UpstreamProtocol,
    /// How a TLS upstream is verified (set exactly when `upstream_protocol` is a TLS protocol).
    pub upstream_tls: Option<UpstreamTls>,
    /// Nodes in a topological order: every node comes after all of its `after` nodes.
    pub nodes: Vec<Node>,
}

impl Flow {
    /// The index of the node with this name.
    pub fn node_index(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }
}

/// A host pattern and a path prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Binding {
    /// Which hosts.
    pub host: HostPattern,
    /// Path prefix, starting with `/`.
    pub path: String,
}

/// A host pattern, lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostPattern {
    /// Exactly this host.
    Exact(String),
    /// Any host ending in `.{suffix}` (written `*.{suffix}`).
    Wildcard(String),
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Exact(h) => f.write_str(h),
            HostPattern::Wildcard(s) => write!(f, "*.{s}"),
        }
    }
}

/// Where requests of an awake flow are sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// A node of the flow, by index into [`Flow::nodes`].
    Node(usize),
    /// A literal address.
    Address(HostPort),
}

/// How a TLS upstream's certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamTls {
    /// The name sent as SNI and verified against the certificate (a DNS name or an IP address); `None`:
    /// the host of the address connected to.
    pub sni: Option<String>,
    /// Trusted authorities (DER certificates) instead of the system's, when given.
    pub ca: Option<Arc<Vec<Vec<u8>>>>,
}

/// Requests a flow ignores.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IgnoreRules {
    /// `User-Agent` glob patterns.
    pub user_agents: Vec<Glob>,
    /// Path glob patterns.
    pub paths: Vec<Glob>,
}

impl IgnoreRules {
    /// Whether a request with this user agent and path is ignored.
    pub fn matches(&self, user_agent: Option<&str>, path: &str) -> bool {
        self.paths.iter().any(|g| g.matches(path)) || user_agent.is_some_and(|ua| self.user_agents.iter().any(|g| g.matches(ua)))
    }

    /// Whether there are no rules at all.
    pub fn is_empty(&self) -> bool {
        self.user_agents.is_empty() && self.paths.is_empty()
    }
}

/// A pattern where `*` matches any run of characters and everything else matches itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob(String);

impl Glob {
    /// Wraps a pattern.
    pub fn new(pattern: impl Into<String>) -> Glob {
        Glob(pattern.into())
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `text` matches.
    pub fn matches(&self, text: &str) -> bool {
        let mut parts = self.0.split('*');
        let first = parts.next().unwrap_or_default();
        let Some(mut rest) = text.strip_prefix(first) else { return false };
        let parts: Vec<&str> = parts.collect();
        let Some((last, middle)) = parts.split_last() else { return rest.is_empty() };
        for part in middle {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
        rest.len() >= last.len() && rest.ends_with(last)
    }
}

/// One node of a flow.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Name, unique within the flow.
    pub name: String,
    /// The workload this node stands for; nodes of different flows with equal workloads are one workload.
    pub workload: Arc<Workload>,
    /// Indexes (into [`Flow::nodes`]) of the nodes that must be ready first; all smaller than this node's.
    pub after: Vec<usize>,
    /// Wake budget.
    pub timeout: Duration,
    /// CPU cores it uses while awake, when declared (for savings).
    pub cpu: Option<f64>,
    /// As the upstream: the most requests one endpoint gets at once.
    pub max_concurrency: Option<NonZeroUsize>,
}

/// A workload: something that can be woken, observed and drained.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Workload {
    /// Identity shared across flows.
    pub id: WorkloadId,
    /// What it is and how to run it.
    pub spec: WorkloadSpec,
    /// Serving port (process: on 127.0.0.1; Kubernetes: service port).
    pub port: Option<u16>,
    /// How readiness is observed (`None` for Kubernetes kinds, which use the platform's own signals).
    pub probe: Option<Probe>,
}

impl Workload {
    /// The kind word of this workload.
    pub fn kind(&self) -> NodeKind {
        match &self.spec {
            WorkloadSpec::Process(_) => NodeKind::Process,
            WorkloadSpec::External => NodeKind::External,
            WorkloadSpec::Kubernetes { kind, .. } => *kind,
        }
    }
}

/// Identity of a workload: node name for processes and external nodes, kind + ref for Kubernetes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkloadId(String);

impl WorkloadId {
    /// Identity of a process node.
    pub fn process(name: &str) -> WorkloadId {
        WorkloadId(format!("process/{name}"))
    }

    /// Identity of an external node (flow-scoped: external nodes are never started, so sharing is moot).
    pub fn external(flow: &str, name: &str) -> WorkloadId {
        WorkloadId(format!("external/{flow}/{name}"))
    }

    /// Identity of a Kubernetes workload.
    pub fn kubernetes(kind: NodeKind, namespace: &str, name: &str) -> WorkloadId {
        WorkloadId(format!("{}/{namespace}/{name}", kind.as_str()))
    }

    /// The identity as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WorkloadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a workload is run.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum WorkloadSpec {
    /// A local process.
    Process(ProcessSpec),
    /// Probe only.
    External,
    /// A Kubernetes workload.
    Kubernetes {
        /// Deployment, StatefulSet or Job.
        kind: NodeKind,
        /// Namespace.
        namespace: String,
        /// Object name.
        name: String,
        /// Replicas when woken.
        replicas: Option<u32>,
    },
}

/// A local process.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProcessSpec {
    /// Program and arguments (non-empty).
    pub command: Vec<String>,
    /// Extra environment.
    pub env: BTreeMap<String, String>,
    /// Working directory (the config file's folder unless set); `None` inherits LeanNodes's own.
    pub cwd: Option<PathBuf>,
}

/// A readiness probe.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Probe {
    /// TCP connect.
    Tcp(HostPort),
    /// HTTP GET expecting 2xx/3xx.
    Http(String),
    /// Command expecting exit status 0.
    Exec(Vec<String>),
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Probe::Tcp(hp) => write!(f, "tcp {hp}"),
            Probe::Http(url) => write!(f, "http {url}"),
            Probe::Exec(cmd) => write!(f, "exec {}", cmd.join(" ")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matching() {
        assert!(Glob::new("kube-probe/*").matches("kube-probe/1.29"));
        assert!(!Glob::new("kube-probe/*").matches("curl/8"));
        assert!(Glob::new("/healthz").matches("/healthz"));
        assert!(!Glob::new("/healthz").matches("/healthz/x"));
        assert!(Glob::new("*bot*").matches("Googlebot/2.1"));
        assert!(Glob::new("a*b*c").matches("a-b-c"));
        assert!(!Glob::new("a*b*c").matches("a-c"));
        assert!(!Glob::new("ab*ba").matches("aba"));
    }

    #[test]
    fn host_port_parsing() {
        assert_eq!(HostPort::parse("127.0.0.1:80").and_then(|h| h.socket_addr()), Some(([127, 0, 0, 1], 80).into()));
        assert_eq!(HostPort::parse("Web.Local:8080").map(|h| h.host), Some("web.local".into()));
        assert!(HostPort::parse("[::1]:80").is_some());
        assert!(HostPort::parse("web").is_none());
        assert!(HostPort::parse("web:0").is_none());
        assert!(HostPort::parse("we b:80").is_none());
        assert!(HostPort::parse("web:99999").is_none());
    }
}
