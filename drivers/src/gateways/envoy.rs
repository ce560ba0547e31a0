//! Plain Envoy (`envoy`, HTTP `ext_authz`) and `envoy-grpc` (gRPC `ext_authz`): a whole static bootstrap,
//! built from typed Envoy configuration (a virtual host per site, a route per path to the flow's
//! cluster) and serialized to YAML.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{ANSWER_HEADERS, CHECK_TOKEN_HEADER, CLIENT_HEADERS, Context, Driver, File, RenderError, Site, split_url, upstream};

/// Envoy with the HTTP `ext_authz` service (a plain config file: no detection).
pub(super) const HTTP: Driver = Driver::plain(render_http);
/// Envoy with the gRPC `ext_authz` service.
pub(super) const GRPC: Driver = Driver::plain(render_grpc);

fn render_http(ctx: &Context<'_>) -> Result<Vec<File>, RenderError> {
    render(ctx, false)
}

fn render_grpc(ctx: &Context<'_>) -> Result<Vec<File>, RenderError> {
    render(ctx, true)
}

/// `static_resources` of a bootstrap.
#[derive(Debug, Serialize)]
struct Bootstrap {
    static_resources: StaticResources,
}

#[derive(Debug, Serialize)]
struct StaticResources {
    listeners: Vec<Listener>,
    clusters: Vec<Cluster>,
}

#[derive(Debug, Serialize)]
struct Listener {
    name: &'static str,
    address: Address,
    filter_chains: Vec<FilterChain>,
}

#[derive(Debug, Serialize)]
struct Address {
    socket_address: SocketAddress,
}

#[derive(Debug, Serialize)]
struct SocketAddress {
    address: String,
    port_value: u16,
}

#[derive(Debug, Serialize)]
struct FilterChain {
    filters: Vec<Typed<HttpConnectionManager>>,
}

/// A named extension with its `typed_config`.
#[derive(Debug, Serialize)]
struct Typed<C> {
    name: &'static str,
    typed_config: C,
}

#[derive(Debug, Serialize)]
struct HttpConnectionManager {
    #[serde(rename = "@type")]
    ty: &'static str,
    stat_prefix: &'static str,
    route_config: RouteConfiguration,
    http_filters: Vec<Typed<HttpFilter>>,
}

#[derive(Debug, Serialize)]
struct RouteConfiguration {
    virtual_hosts: Vec<VirtualHost>,
}

#[derive(Debug, Serialize)]
struct VirtualHost {
    name: String,
    domains: Vec<String>,
    routes: Vec<Route>,
}

#[derive(Debug, Serialize)]
struct Route {
    #[serde(rename = "match")]
    matcher: RouteMatch,
    route: RouteAction,
}

/// How a route matches the path.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum RouteMatch {
    /// Any path starting with this.
    Prefix { prefix: String },
    /// This path and the paths below it (`/api`: `/api`, `/api/x`, not `/apix`), like the proxy's prefixes.
    PathSeparatedPrefix { path_separated_prefix: String },
}

#[derive(Debug, Serialize)]
struct RouteAction {
    cluster: String,
    timeout: &'static str,
}

/// The filters of the HTTP connection manager.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum HttpFilter {
    ExtAuthz(Box<ExtAuthz>),
    Router {
        #[serde(rename = "@type")]
        ty: &'static str,
    },
}

#[derive(Debug, Serialize)]
struct ExtAuthz {
    #[serde(rename = "@type")]
    ty: &'static str,
    transport_api_version: &'static str,
    failure_mode_allow: bool,
    #[serde(flatten)]
    service: AuthzService,
}

/// The gRPC or the HTTP authorization service.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum AuthzService {
    Grpc {
        grpc_service: GrpcService,
    },
    Http {
        allowed_headers: Patterns,
        http_service: HttpService,
        /// Envoy's HTTP mode turns a 5xx from the check into this status (its body is lost; the gRPC mode
        /// keeps it).
        status_on_error: StatusOnError,
    },
}

#[derive(Debug, Serialize)]
struct GrpcService {
    envoy_grpc: EnvoyGrpc,
    timeout: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    initial_metadata: Vec<HeaderValue>,
}

#[derive(Debug, Serialize)]
struct EnvoyGrpc {
    cluster_name: &'static str,
}

#[derive(Debug, Serialize)]
struct HeaderValue {
    key: &'static str,
    value: String,
}

#[derive(Debug, Serialize)]
struct Patterns {
    patterns: Vec<Exact>,
}

impl Patterns {
    fn exact(names: &[&'static str]) -> Patterns {
        Patterns { patterns: names.iter().map(|&exact| Exact { exact }).collect() }
    }
}

#[derive(Debug, Serialize)]
struct Exact {
    exact: &'static str,
}

#[derive(Debug, Serialize)]
struct HttpService {
    server_uri: ServerUri,
    path_prefix: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    authorization_request: Option<AuthorizationRequest>,
    authorization_response: AuthorizationResponse,
}

#[derive(Debug, Serialize)]
struct ServerUri {
    uri: String,
    cluster: &'static str,
    timeout: String,
}

#[derive(Debug, Serialize)]
struct AuthorizationRequest {
    headers_to_add: Vec<HeaderValue>,
}

#[derive(Debug, Serialize)]
struct AuthorizationResponse {
    allowed_client_headers: Patterns,
}

#[derive(Debug, Serialize)]
struct StatusOnError {
    code: &'static str,
}

#[derive(Debug, Serialize)]
struct Cluster {
    name: String,
    #[serde(rename = "type")]
    ty: &'static str,
    connect_timeout: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    circuit_breakers: Option<CircuitBreakers>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    typed_extension_protocol_options: BTreeMap<&'static str, HttpProtocolOptions>,
    load_assignment: LoadAssignment,
}

impl Cluster {
    /// A cluster with one endpoint.
    fn new(name: String, host: &str, port: u16) -> Cluster {
        let ty = if host.parse::<std::net::IpAddr>().is_ok() { "STATIC" } else { "STRICT_DNS" };
        let endpoint = LbEndpoint {
            endpoint: Endpoint { address: Address { socket_address: SocketAddress { address: host.into(), port_value: port } } },
        };
        Cluster {
            load_assignment: LoadAssignment {
                cluster_name: name.clone(),
                endpoints: vec![LocalityEndpoints { lb_endpoints: vec![endpoint] }],
            },
            name,
            ty,
            connect_timeout: "2s",
            circuit_breakers: None,
            typed_extension_protocol_options: BTreeMap::new(),
        }
    }

    /// A wake storm holds many checks at once: raise Envoy's default limits (1024).
    fn for_callouts(mut self) -> Cluster {
        let many = 100_000;
        self.circuit_breakers = Some(CircuitBreakers {
            thresholds: vec![Thresholds { max_connections: many, max_pending_requests: many, max_requests: many }],
        });
        self
    }
}

#[derive(Debug, Serialize)]
struct CircuitBreakers {
    thresholds: Vec<Thresholds>,
}

#[derive(Debug, Serialize)]
struct Thresholds {
    max_connections: u32,
    max_pending_requests: u32,
    max_requests: u32,
}

#[derive(Debug, Serialize)]
struct HttpProtocolOptions {
    #[serde(rename = "@type")]
    ty: &'static str,
    explicit_http_config: ExplicitHttpConfig,
}

#[derive(Debug, Serialize)]
struct ExplicitHttpConfig {
    http2_protocol_options: Empty,
}

/// `{}`: a message with every field at its default.
#[derive(Debug, Serialize)]
struct Empty {}

#[derive(Debug, Serialize)]
struct LoadAssignment {
    cluster_name: String,
    endpoints: Vec<LocalityEndpoints>,
}

#[derive(Debug, Serialize)]
struct LocalityEndpoints {
    lb_endpoints: Vec<LbEndpoint>,
}

#[derive(Debug, Serialize)]
struct LbEndpoint {
    endpoint: Endpoint,
}

#[derive(Debug, Serialize)]
struct Endpoint {
    address: Address,
}

/// The cluster of a flow's upstream.
fn flow_cluster(flow: &str) -> String {
    format!("flow_{flow}")
}

/// The virtual host of a site.
fn virtual_host(site: &Site<'_>) -> VirtualHost {
    let routes = site
        .routes
        .iter()
        .map(|r| {
            let path = r.path.to_string();
            let matcher = if path.ends_with('/') {
                RouteMatch::Prefix { prefix: path }
            } else {
                RouteMatch::PathSeparatedPrefix { path_separated_prefix: path }
            };
            Route { matcher, route: RouteAction { cluster: flow_cluster(&r.flow.name), timeout: "60s" } }
        })
        .collect();
    let domains: Vec<String> = site.hosts.iter().map(|h| h.to_string()).collect();
    VirtualHost { name: domains[0].clone(), domains, routes }
}

fn render(ctx: &Context<'_>, grpc: bool) -> Result<Vec<File>, RenderError> {
    let (t, target) = (ctx.timeout, ctx.target);
    let token = ctx.token().map(|value| vec![HeaderValue { key: CHECK_TOKEN_HEADER, value: value.to_string() }]).unwrap_or_default();
    let (service, authz_cluster) = if grpc {
        let (host, port) = ctx.grpc()?;
        let service = AuthzService::Grpc {
            grpc_service: GrpcService {
                envoy_grpc: EnvoyGrpc { cluster_name: "leannodes_ext_authz" },
                timeout: format!("{t}s"),
                initial_metadata: token,
            },
        };
        let mut cluster = Cluster::new("leannodes_ext_authz".into(), host, port).for_callouts();
        cluster.typed_extension_protocol_options.insert(
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            HttpProtocolOptions {
                ty: "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                explicit_http_config: ExplicitHttpConfig { http2_protocol_options: Empty {} },
            },
        );
        (service, cluster)
    } else {
        let (host, port, path) = split_url(&target.check_url);
        let service = AuthzService::Http {
            allowed_headers: Patterns::exact(&CLIENT_HEADERS),
            http_service: HttpService {
                server_uri: ServerUri { uri: target.check_url.clone(), cluster: "leannodes_check", timeout: format!("{t}s") },
                path_prefix: path,
                authorization_request: (!token.is_empty()).then_some(AuthorizationRequest { headers_to_add: token }),
                authorization_response: AuthorizationResponse { allowed_client_headers: Patterns::exact(&ANSWER_HEADERS) },
            },
            status_on_error: StatusOnError { code: "ServiceUnavailable" },
        };
        (service, Cluster::new("leannodes_check".into(), &host, port).for_callouts())
    };
    let ext_authz = ExtAuthz {
        ty: "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
        transport_api_version: "V3",
        failure_mode_allow: false,
        service,
    };
    let hcm = HttpConnectionManager {
        ty: "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        stat_prefix: "ingress",
        route_config: RouteConfiguration { virtual_hosts: ctx.sites().iter().map(virtual_host).collect() },
        http_filters: vec![
            Typed { name: "envoy.filters.http.ext_authz", typed_config: HttpFilter::ExtAuthz(Box::new(ext_authz)) },
            Typed {
                name: "envoy.filters.http.router",
                typed_config: HttpFilter::Router { ty: "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" },
            },
        ],
    };
    let mut clusters: Vec<Cluster> = ctx
        .flows
        .iter()
        .map(|flow| {
            let (host, port) = upstream(flow);
            Cluster::new(flow_cluster(&flow.name), &host, port)
        })
        .collect();
    clusters.push(authz_cluster);
    let bootstrap = Bootstrap {
        static_resources: StaticResources {
            listeners: vec![Listener {
                name: "ingress",
                address: Address { socket_address: SocketAddress { address: "0.0.0.0".into(), port_value: 8080 } },
                filter_chains: vec![FilterChain {
                    filters: vec![Typed { name: "envoy.filters.network.http_connection_manager", typed_config: hcm }],
                }],
            }],
            clusters,
        },
    };
    let kind = ctx.kind;
    let comment = format!(
        "Rendered by `leannodes gateway render {kind}`: Envoy asks LeanNodes before proxying {domains}.\n\
         The ext_authz timeout ({t}s) covers the flows' hold_timeout; Envoy's default would be {default}.{http}",
        domains = ctx.hosts().join(", "),
        default = if grpc { "200 ms" } else { "required, none" },
        http = if grpc {
            ""
        } else {
            "\nEnvoy's HTTP mode turns a 5xx from the check into status_on_error (503): its body is lost (gRPC keeps it)."
        },
    );
    let text = ctx.yaml().doc(&comment, &bootstrap)?.finish();
    Ok(vec![File::new("envoy.yaml", text)])
}
