//! Gateway artifacts: the native configuration that makes an existing gateway call LeanNodes before it
//! proxies a flow's hosts (callout mode). Every artifact sets the timeout that bounds the hold to the
//! flow's `hold_timeout` plus a margin, because gateway defaults are far shorter (Envoy gRPC: 200 ms).
//! Gateways that cannot wait that long (Traefik: 30 s, APISIX: 60 s) get no artifact but the reason and
//! the alternative. `docs/gateways.md` explains each one; `tests/gateways.rs` runs the plain ones in
//! real gateway binaries and validates the Kubernetes ones against the upstream schemas.

use std::fmt::Write as _;
use std::time::Duration;

use leannodes_config::{Flow, Upstream, WorkloadSpec};

/// The gateways LeanNodes renders for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Istio,
    EnvoyGateway,
    Envoy,
    EnvoyGrpc,
    IngressNginx,
    Nginx,
    Traefik,
    Contour,
    Emissary,
    Kgateway,
    Haproxy,
    Apisix,
    Kong,
    Caddy,
    Skipper,
}

impl Kind {
    pub(crate) const ALL: [Kind; 15] = [
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

    pub(crate) fn as_str(self) -> &'static str {
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

    pub(crate) fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The longest a gateway can wait for a callout, when it has a hard limit.
    pub(crate) fn cap(self) -> Option<Duration> {
        match self {
            // forward.go: http.Client{Timeout: 30 * time.Second}, not configurable.
            Kind::Traefik => Some(Duration::from_secs(30)),
            // forward-auth's schema: timeout maximum 60000 ms.
            Kind::Apisix => Some(Duration::from_secs(60)),
            _ => None,
        }
    }

    /// Whether the artifact is Kubernetes resources (validated against upstream CRD schemas).
    pub(crate) fn is_kubernetes(self) -> bool {
        !matches!(self, Kind::Envoy | Kind::EnvoyGrpc | Kind::Nginx | Kind::Haproxy | Kind::Caddy | Kind::Skipper)
    }
}

/// Where the gateway reaches LeanNodes and where the artifacts go.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The forward-auth URL (`…/check`).
    pub(crate) check_url: String,
    /// The `ext_authz` gRPC address (`host:port`).
    pub(crate) grpc: String,
    /// Namespace of the flow's application resources (routes, policies).
    pub(crate) namespace: String,
    /// Namespace LeanNodes runs in.
    pub(crate) leannodes_namespace: String,
}

impl Default for Target {
    fn default() -> Self {
        Target {
            check_url: "http://leannodes.leannodes.svc.cluster.local:9090/check".into(),
            grpc: "leannodes.leannodes.svc.cluster.local:9191".into(),
            namespace: "default".into(),
            leannodes_namespace: "leannodes".into(),
        }
    }
}

/// One file of an artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct File {
    pub(crate) name: String,
    pub(crate) content: String,
}

/// A rendered artifact.
#[derive(Debug, Clone)]
pub(crate) struct Artifact {
    pub(crate) kind: Kind,
    /// The timeout the artifact gives the callout.
    pub(crate) timeout: Duration,
    pub(crate) files: Vec<File>,
}

/// Why nothing was rendered.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RenderError {
    #[error(
        "{kind} cannot hold a request longer than {cap}s (a hard limit of the gateway), but flow `{flow}` may hold for {hold}s \
         (hold_timeout); a wake slower than {cap}s would fail. Route {hosts} through the LeanNodes proxy tier instead \
         (point the gateway's route at the leannodes Service), or lower the flow's hold_timeout to {max}s or less"
    )]
    TooLong { kind: &'static str, cap: u64, flow: String, hold: u64, hosts: String, max: u64 },
    #[error("no flow to render for{}", .0.as_deref().map(|f| format!(": no flow named `{f}`")).unwrap_or_default())]
    NoFlow(Option<String>),
    #[error("unknown gateway `{0}`; use one of: {list}", list = Kind::ALL.map(Kind::as_str).join(", "))]
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
pub(crate) fn render(kind: Kind, flows: &[&Flow], target: &Target) -> Result<Artifact, RenderError> {
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
        Kind::Envoy => vec![file("envoy.yaml", envoy(flows, target, t, false))],
        Kind::EnvoyGrpc => vec![file("envoy.yaml", envoy(flows, target, t, true))],
        Kind::Nginx => vec![file("leannodes.conf", nginx(flows, target, t))],
        Kind::Caddy => vec![file("Caddyfile", caddy(flows, target, t))],
        Kind::Haproxy => vec![file("haproxy.cfg", haproxy(flows, target, t)), file("leannodes.lua", HAPROXY_LUA.to_string())],
        Kind::Istio => istio(flows, target, t),
        Kind::EnvoyGateway => vec![file("securitypolicy.yaml", envoy_gateway(flows, target, t))],
        Kind::IngressNginx => vec![file("ingress-nginx.yaml", ingress_nginx(flows, target, t))],
        Kind::Traefik => vec![file("middleware.yaml", traefik(target))],
        Kind::Contour => vec![file("contour.yaml", contour(flows, target, t))],
        Kind::Emissary => vec![file("authservice.yaml", emissary(target, t))],
        Kind::Kgateway => vec![file("kgateway.yaml", kgateway(flows, target, t))],
        Kind::Apisix => vec![file("apisix.yaml", apisix(flows, target, t))],
        Kind::Kong => vec![file("kongplugin.yaml", kong(target, t))],
        Kind::Skipper => vec![file("skipper.eskip", skipper(flows, target))],
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

/// An Envoy cluster with one endpoint.
fn envoy_cluster(name: &str, host: &str, port: impl std::fmt::Display, extra: &str) -> String {
    let ty = if host.parse::<std::net::IpAddr>().is_ok() { "STATIC" } else { "STRICT_DNS" };
    format!(
        "  - name: {name}\n    type: {ty}\n    connect_timeout: 2s\n{extra}    load_assignment:\n      cluster_name: {name}\n      endpoints: [{{lb_endpoints: [{{endpoint: {{address: {{socket_address: {{address: {host}, port_value: {port}}}}}}}}}]}}]\n"
    )
}

fn envoy(flows: &[&Flow], target: &Target, t: u64, grpc: bool) -> String {
    let (check_host, check_port, check_path) = split_url(&target.check_url);
    let (grpc_host, grpc_port) = split_host_port(&target.grpc);
    let mut out = format!(
        "# Rendered by `leannodes gateway render {kind}`: Envoy asks LeanNodes before proxying {domains}.\n\
         # The ext_authz timeout ({t}s) covers the flows' hold_timeout; Envoy's default would be {default}.\n\
         static_resources:\n  listeners:\n  - name: ingress\n    address: {{socket_address: {{address: 0.0.0.0, port_value: 8080}}}}\n    filter_chains:\n    - filters:\n      - name: envoy.filters.network.http_connection_manager\n        typed_config:\n          \"@type\": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager\n          stat_prefix: ingress\n          route_config:\n            virtual_hosts:\n",
        kind = if grpc { "envoy-grpc" } else { "envoy" },
        domains = hosts(flows).join(", "),
        default = if grpc { "200 ms" } else { "required, none" },
    );
    for flow in flows {
        let domains = quoted(&hosts(&[flow]));
        let _ = write!(
            out,
            "            - name: {name}\n              domains: [{domains}]\n              routes:\n              - match: {{prefix: \"/\"}}\n                route: {{cluster: flow_{name}, timeout: 60s}}\n",
            name = flow.name
        );
    }
    out.push_str("          http_filters:\n          - name: envoy.filters.http.ext_authz\n            typed_config:\n              \"@type\": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz\n              transport_api_version: V3\n              failure_mode_allow: false\n");
    if grpc {
        let _ = write!(
            out,
            "              grpc_service:\n                envoy_grpc: {{cluster_name: leannodes_ext_authz}}\n                timeout: {t}s\n"
        );
    } else {
        let headers = CLIENT_HEADERS.iter().map(|h| format!("{{exact: {h}}}")).collect::<Vec<_>>().join(", ");
        let answer = ANSWER_HEADERS.iter().map(|h| format!("{{exact: {h}}}")).collect::<Vec<_>>().join(", ");
        let _ = write!(
            out,
            "              allowed_headers:\n                patterns: [{headers}]\n              http_service:\n                server_uri: {{uri: \"{url}\", cluster: leannodes_check, timeout: {t}s}}\n                path_prefix: {check_path}\n                authorization_response:\n                  allowed_client_headers:\n                    patterns: [{answer}]\n              # Envoy's HTTP mode turns a 5xx from the check into this status (its body is lost; the gRPC mode keeps it).\n              status_on_error: {{code: ServiceUnavailable}}\n",
            url = target.check_url,
        );
    }
    out.push_str("          - name: envoy.filters.http.router\n            typed_config:\n              \"@type\": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router\n  clusters:\n");
    for flow in flows {
        let (host, port) = upstream(flow);
        out.push_str(&envoy_cluster(&format!("flow_{}", flow.name), &host, port, ""));
    }
    // A wake storm holds many checks at once: raise Envoy's default limits (1024).
    let breakers =
        "    circuit_breakers:\n      thresholds: [{max_connections: 100000, max_pending_requests: 100000, max_requests: 100000}]\n";
    if grpc {
        let h2 = "    typed_extension_protocol_options:\n      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:\n        \"@type\": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions\n        explicit_http_config: {http2_protocol_options: {}}\n";
        out.push_str(&envoy_cluster("leannodes_ext_authz", grpc_host, grpc_port, &format!("{breakers}{h2}")));
    } else {
        out.push_str(&envoy_cluster("leannodes_check", &check_host, check_port, breakers));
    }
    out
}

fn nginx_server_names(flows: &[&Flow]) -> String {
    hosts(flows).iter().map(|h| if let Some(s) = h.strip_prefix("*.") { format!(".{s}") } else { h.clone() }).collect::<Vec<_>>().join(" ")
}

fn nginx(flows: &[&Flow], target: &Target, t: u64) -> String {
    let mut out = format!(
        "# Rendered by `leannodes gateway render nginx`: include inside `http {{ }}`.\n\
         # nginx asks LeanNodes (auth_request) before proxying; the check may hold while the flow wakes,\n\
         # so its proxy_read_timeout ({t}s) covers the flows' hold_timeout (nginx's default is 60s).\n\
         # nginx passes 401/403 from the check and turns any other refusal (503 while waking) into 500.\n"
    );
    for flow in flows {
        let (app_host, app_port) = upstream(flow);
        let _ = write!(
            out,
            "server {{\n    listen 8080;\n    server_name {names};\n\n    location / {{\n        auth_request /_leannodes_check;\n        proxy_pass http://{app_host}:{app_port};\n        proxy_set_header Host $host;\n    }}\n\n    location = /_leannodes_check {{\n        internal;\n        proxy_pass {check};\n        proxy_pass_request_body off;\n        proxy_set_header Content-Length \"\";\n        proxy_set_header X-Forwarded-Host $host;\n        proxy_set_header X-Forwarded-Uri $request_uri;\n        proxy_set_header X-Forwarded-Method $request_method;\n        proxy_connect_timeout 5s;\n        proxy_read_timeout {t}s;\n        proxy_send_timeout {t}s;\n    }}\n}}\n",
            names = nginx_server_names(&[flow]),
            check = target.check_url,
        );
    }
    out
}

fn caddy(flows: &[&Flow], target: &Target, t: u64) -> String {
    let (check_host, check_port, check_path) = split_url(&target.check_url);
    let mut out = format!(
        "# Rendered by `leannodes gateway render caddy`: Caddy asks LeanNodes (forward_auth) before proxying.\n\
         # The check may hold while the flow wakes: its response timeout ({t}s) covers the flows' hold_timeout.\n"
    );
    for flow in flows {
        let (app_host, app_port) = upstream(flow);
        let sites = hosts(&[flow]).iter().map(|h| format!("http://{h}:8080")).collect::<Vec<_>>().join(", ");
        let _ = write!(
            out,
            "{sites} {{\n\tforward_auth {check_host}:{check_port} {{\n\t\turi {check_path}\n\t\ttransport http {{\n\t\t\tresponse_header_timeout {t}s\n\t\t}}\n\t}}\n\treverse_proxy {app_host}:{app_port}\n}}\n"
        );
    }
    out
}

fn haproxy(flows: &[&Flow], target: &Target, t: u64) -> String {
    let mut acls = String::new();
    let mut routes = String::new();
    let mut backends = String::new();
    for flow in flows {
        for h in hosts(&[flow]) {
            let matcher = if let Some(s) = h.strip_prefix("*.") {
                format!("hdr_dom(host) -m end .{s}")
            } else {
                format!("hdr(host),field(1,:) -m str {h}")
            };
            let _ = writeln!(acls, "    acl leannodes_flow {matcher}\n    acl flow_{name} {matcher}", name = flow.name);
        }
        let _ = writeln!(routes, "    use_backend flow_{name} if flow_{name}", name = flow.name);
        let (app_host, app_port) = upstream(flow);
        let _ = write!(backends, "\nbackend flow_{name}\n    server app1 {app_host}:{app_port}\n", name = flow.name);
    }
    format!(
        "# Rendered by `leannodes gateway render haproxy` (HAProxy >= 2.5 with Lua): HAProxy asks LeanNodes\n\
         # before proxying. The Lua callout waits up to {t}s (the flows' hold_timeout and a margin); HAProxy's\n\
         # client and http-request timers do not run while it waits. A refusal (503 while waking, the JSON\n\
         # body, Retry-After) is returned to the client as LeanNodes wrote it.\n\
         global\n    lua-load leannodes.lua\n\ndefaults\n    mode http\n    timeout connect 5s\n    timeout client {t}s\n    timeout server {t}s\n\nfrontend leannodes_flows\n    bind :8080\n{acls}    http-request lua.leannodes_check {check} {ms} if leannodes_flow\n    http-request return status 503 content-type application/json string '{{\"error\":\"check_failed\",\"message\":\"LeanNodes did not answer\"}}' if leannodes_flow !{{ var(txn.leannodes_status) -m found }}\n    http-request use-service lua.leannodes_deny if leannodes_flow !{{ var(txn.leannodes_status) -m int 200 }}\n{routes}{backends}",
        check = target.check_url,
        ms = t * 1000,
    )
}

/// The HAProxy Lua callout (`core.httpclient`, HAProxy >= 2.5).
const HAPROXY_LUA: &str = r#"-- Rendered by `leannodes gateway render haproxy`: asks LeanNodes' /check and keeps its answer.
core.register_action("leannodes_check", { "http-req" }, function(txn, url, timeout_ms)
  local hc = core.httpclient()
  local res = hc:get{
    url = url,
    timeout = tonumber(timeout_ms),
    headers = {
      ["x-forwarded-method"] = { txn.sf:method() },
      ["x-forwarded-uri"] = { txn.sf:pathq() },
      ["x-forwarded-host"] = { txn.sf:req_fhdr("host") or "" },
      ["accept"] = { txn.sf:req_fhdr("accept") or "" },
      ["content-type"] = { txn.sf:req_fhdr("content-type") or "" },
      ["user-agent"] = { txn.sf:req_fhdr("user-agent") or "" },
    },
  }
  if not res or not res.status then return end
  txn:set_var("txn.leannodes_status", res.status)
  txn:set_var("txn.leannodes_body", res.body or "")
  local function header(name)
    local h = res.headers and res.headers[name]
    return h and h[0] or ""
  end
  txn:set_var("txn.leannodes_content_type", header("content-type"))
  txn:set_var("txn.leannodes_retry_after", header("retry-after"))
end, 2)

-- Returns LeanNodes' refusal to the client as it was written.
core.register_service("leannodes_deny", "http", function(applet)
  local body = applet:get_var("txn.leannodes_body") or ""
  applet:set_status(tonumber(applet:get_var("txn.leannodes_status")) or 503)
  local content_type = applet:get_var("txn.leannodes_content_type")
  if content_type and content_type ~= "" then applet:add_header("content-type", content_type) end
  local retry_after = applet:get_var("txn.leannodes_retry_after")
  if retry_after and retry_after ~= "" then applet:add_header("retry-after", retry_after) end
  applet:add_header("cache-control", "no-store")
  applet:add_header("content-length", tostring(#body))
  applet:start_response()
  applet:send(body)
end)
"#;

fn istio(flows: &[&Flow], target: &Target, t: u64) -> Vec<File> {
    let (grpc_host, grpc_port) = split_host_port(&target.grpc);
    let mesh = format!(
        "# Rendered by `leannodes gateway render istio`: merge into the mesh config (IstioOperator\n\
         # spec.meshConfig, or the istiod Helm value meshConfig). gRPC keeps LeanNodes' status, headers and\n\
         # body on a refusal; the timeout ({t}s) covers the flows' hold_timeout.\n\
         meshConfig:\n  extensionProviders:\n  - name: leannodes\n    envoyExtAuthzGrpc:\n      service: {grpc_host}\n      port: {grpc_port}\n      timeout: {t}s\n      failOpen: false\n"
    );
    let hosts = hosts(flows).iter().map(|h| format!("\"{h}\"")).collect::<Vec<_>>().join(", ");
    let policy = format!(
        "# Rendered by `leannodes gateway render istio`: on the ingress gateway (a policy on the scaled\n\
         # workload's sidecar would never run while it has zero pods).\n\
         apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: leannodes-wake\n  namespace: istio-system\nspec:\n  selector:\n    matchLabels:\n      istio: ingressgateway\n  action: CUSTOM\n  provider:\n    name: leannodes\n  rules:\n  - to:\n    - operation:\n        hosts: [{hosts}]\n"
    );
    vec![file("meshconfig.yaml", mesh), file("authorizationpolicy.yaml", policy)]
}

fn envoy_gateway(flows: &[&Flow], target: &Target, t: u64) -> String {
    let (grpc_host, grpc_port) = split_host_port(&target.grpc);
    let service = grpc_host.split('.').next().unwrap_or("leannodes");
    let mut out = String::new();
    for flow in flows {
        let _ = write!(
            out,
            "# Rendered by `leannodes gateway render envoy-gateway`: the HTTPRoute `{name}` (the flow's route)\n\
             # asks LeanNodes over gRPC; the timeout ({t}s) covers hold_timeout (Envoy Gateway's default: 10s).\n\
             # A backendRef to another namespace needs a ReferenceGrant there.\n\
             apiVersion: gateway.envoyproxy.io/v1alpha1\nkind: SecurityPolicy\nmetadata:\n  name: leannodes-{name}\n  namespace: {ns}\nspec:\n  targetRefs:\n  - group: gateway.networking.k8s.io\n    kind: HTTPRoute\n    name: {name}\n  extAuth:\n    timeout: {t}s\n    failOpen: false\n    headersToExtAuth: [accept, content-type, user-agent]\n    grpc:\n      backendRefs:\n      - name: {service}\n        namespace: {lns}\n        port: {grpc_port}\n---\n",
            name = flow.name,
            ns = target.namespace,
            lns = target.leannodes_namespace,
        );
    }
    out.trim_end_matches("---\n").to_string()
}

fn ingress_nginx(flows: &[&Flow], target: &Target, t: u64) -> String {
    let (app_host, app_port) = upstream(flows[0]);
    let service = app_host.split('.').next().unwrap_or("app");
    let rules = hosts(flows)
        .iter()
        .map(|h| {
            format!(
                "  - host: \"{h}\"\n    http:\n      paths:\n      - path: /\n        pathType: Prefix\n        backend:\n          service:\n            name: {service}\n            port:\n              number: {app_port}\n"
            )
        })
        .collect::<String>();
    format!(
        "# Rendered by `leannodes gateway render ingress-nginx`. ingress-nginx gives the auth subrequest nginx's\n\
         # built-in 60s read timeout; only a snippet raises it. The auth-snippet annotation needs the controller\n\
         # ConfigMap keys allow-snippet-annotations: \"true\" and annotations-risk-level: Critical; without\n\
         # them, put `proxy_read_timeout {t}s;` in the ConfigMap's http-snippet, or wakes longer than 60s fail.\n\
         # ingress-nginx passes 401/403 and turns a 503 (still waking) into 500.\n\
         apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: {name}\n  namespace: {ns}\n  annotations:\n    nginx.ingress.kubernetes.io/auth-url: \"{check}\"\n    nginx.ingress.kubernetes.io/auth-response-headers: \"\"\n    nginx.ingress.kubernetes.io/auth-snippet: |\n      proxy_read_timeout {t}s;\n      proxy_send_timeout {t}s;\nspec:\n  ingressClassName: nginx\n  rules:\n{rules}",
        name = flows[0].name,
        ns = target.namespace,
        check = target.check_url,
    )
}

fn traefik(target: &Target) -> String {
    format!(
        "# Rendered by `leannodes gateway render traefik`. Traefik's forwardAuth waits at most 30s (hard-coded),\n\
         # which covers these flows' hold_timeout. Attach it to the flows' routers (IngressRoute middlewares, or\n\
         # the annotation traefik.ingress.kubernetes.io/router.middlewares: {ns}-leannodes@kubernetescrd).\n\
         apiVersion: traefik.io/v1alpha1\nkind: Middleware\nmetadata:\n  name: leannodes\n  namespace: {ns}\nspec:\n  forwardAuth:\n    address: \"{check}\"\n    preserveRequestMethod: false\n    authResponseHeaders: []\n",
        ns = target.namespace,
        check = target.check_url,
    )
}

fn contour(flows: &[&Flow], target: &Target, t: u64) -> String {
    let (grpc_host, grpc_port) = split_host_port(&target.grpc);
    let service = grpc_host.split('.').next().unwrap_or("leannodes");
    let (app_host, app_port) = upstream(flows[0]);
    let app = app_host.split('.').next().unwrap_or("app");
    let mut out = format!(
        "# Rendered by `leannodes gateway render contour`: Contour asks LeanNodes over gRPC (h2c). Without a\n\
         # timeout Contour leaves Envoy's 200 ms; this one ({t}s) covers the flows' hold_timeout.\n\
         apiVersion: projectcontour.io/v1alpha1\nkind: ExtensionService\nmetadata:\n  name: leannodes\n  namespace: {lns}\nspec:\n  protocol: h2c\n  services:\n  - name: {service}\n    port: {grpc_port}\n  timeoutPolicy:\n    response: {t}s\n",
        lns = target.leannodes_namespace,
    );
    for host in hosts(flows) {
        let name = host.replace('*', "wildcard").replace('.', "-");
        let _ = write!(
            out,
            "---\n# Authorization needs a TLS virtual host: set the secret of {host}.\napiVersion: projectcontour.io/v1\nkind: HTTPProxy\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  virtualhost:\n    fqdn: \"{host}\"\n    tls:\n      secretName: {name}-tls\n    authorization:\n      extensionRef:\n        name: leannodes\n        namespace: {lns}\n      responseTimeout: {t}s\n      failOpen: false\n  routes:\n  - services:\n    - name: {app}\n      port: {app_port}\n",
            ns = target.namespace,
            lns = target.leannodes_namespace,
        );
    }
    out
}

fn emissary(target: &Target, t: u64) -> String {
    format!(
        "# Rendered by `leannodes gateway render emissary`: Emissary-ingress asks LeanNodes over gRPC (v3) for\n\
         # every Mapping; the timeout ({t}s) covers the flows' hold_timeout (Emissary's default: 5s).\n\
         apiVersion: getambassador.io/v3alpha1\nkind: AuthService\nmetadata:\n  name: leannodes\n  namespace: {lns}\nspec:\n  auth_service: \"{grpc}\"\n  proto: grpc\n  protocol_version: v3\n  timeout_ms: {ms}\n  failure_mode_allow: false\n  status_on_error:\n    code: 503\n",
        lns = target.leannodes_namespace,
        grpc = target.grpc,
        ms = t * 1000,
    )
}

fn kgateway(flows: &[&Flow], target: &Target, t: u64) -> String {
    let (grpc_host, grpc_port) = split_host_port(&target.grpc);
    let service = grpc_host.split('.').next().unwrap_or("leannodes");
    let mut out = format!(
        "# Rendered by `leannodes gateway render kgateway`: a gRPC ext_authz extension, attached to the flows'\n\
         # HTTPRoutes; the request timeout ({t}s) covers the flows' hold_timeout.\n\
         apiVersion: gateway.kgateway.dev/v1alpha1\nkind: GatewayExtension\nmetadata:\n  name: leannodes\n  namespace: {ns}\nspec:\n  type: ExtAuth\n  extAuth:\n    grpcService:\n      backendRef:\n        name: {service}\n        namespace: {lns}\n        port: {grpc_port}\n      requestTimeout: {t}s\n",
        ns = target.namespace,
        lns = target.leannodes_namespace,
    );
    let _ = write!(
        out,
        "---\napiVersion: gateway.kgateway.dev/v1alpha1\nkind: TrafficPolicy\nmetadata:\n  name: leannodes\n  namespace: {ns}\nspec:\n  targetRefs:\n{refs}  extAuth:\n    extensionRef:\n      name: leannodes\n",
        ns = target.namespace,
        refs = flows
            .iter()
            .map(|f| format!("  - group: gateway.networking.k8s.io\n    kind: HTTPRoute\n    name: {}\n", f.name))
            .collect::<String>(),
    );
    out
}

fn apisix(flows: &[&Flow], target: &Target, t: u64) -> String {
    let mut out = format!(
        "# Rendered by `leannodes gateway render apisix`: APISIX's forward-auth waits at most 60s (schema\n\
         # maximum); {t}s covers these flows' hold_timeout. Each flow's ApisixRoute uses the plugin config.\n\
         apiVersion: apisix.apache.org/v2\nkind: ApisixPluginConfig\nmetadata:\n  name: leannodes\n  namespace: {ns}\nspec:\n  plugins:\n  - name: forward-auth\n    enable: true\n    config:\n      uri: \"{check}\"\n      timeout: {ms}\n      request_headers: [Accept, Content-Type, User-Agent]\n      client_headers: [Retry-After, Cache-Control, Content-Type]\n",
        ns = target.namespace,
        check = target.check_url,
        ms = t * 1000,
    );
    for flow in flows {
        let (app_host, app_port) = upstream(flow);
        let _ = write!(
            out,
            "---\napiVersion: apisix.apache.org/v2\nkind: ApisixRoute\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  http:\n  - name: {name}\n    match:\n      hosts: [{hosts}]\n      paths: [\"/*\"]\n    backends:\n    - serviceName: {service}\n      servicePort: {app_port}\n    plugin_config_name: leannodes\n",
            name = flow.name,
            ns = target.namespace,
            hosts = quoted(&hosts(&[flow])),
            service = app_host.split('.').next().unwrap_or("app"),
        );
    }
    out
}

fn kong(target: &Target, t: u64) -> String {
    let lua = format!(
        "local http = require \"resty.http\"\nlocal httpc = http.new()\nhttpc:set_timeouts(5000, 5000, {ms})\nlocal res, err = httpc:request_uri(\"{check}\", {{\n  method = \"GET\",\n  headers = {{\n    [\"X-Forwarded-Host\"] = kong.request.get_host(),\n    [\"X-Forwarded-Uri\"] = kong.request.get_path_with_query(),\n    [\"X-Forwarded-Method\"] = kong.request.get_method(),\n    [\"Accept\"] = kong.request.get_header(\"accept\"),\n    [\"Content-Type\"] = kong.request.get_header(\"content-type\"),\n    [\"User-Agent\"] = kong.request.get_header(\"user-agent\"),\n  }},\n}})\nif not res then\n  return kong.response.exit(503, {{ error = \"check_failed\", message = err }})\nend\nif res.status ~= 200 then\n  return kong.response.exit(res.status, res.body, {{\n    [\"Content-Type\"] = res.headers[\"Content-Type\"],\n    [\"Retry-After\"] = res.headers[\"Retry-After\"],\n    [\"Cache-Control\"] = \"no-store\",\n  }})\nend\n",
        ms = t * 1000,
        check = target.check_url,
    );
    let indented = lua.lines().map(|l| format!("      {l}\n")).collect::<String>();
    format!(
        "# Rendered by `leannodes gateway render kong`: Kong OSS has no forward-auth plugin, so a pre-function\n\
         # calls LeanNodes with resty.http (kong.conf: untrusted_lua_sandbox_requires = resty.http). The read\n\
         # timeout ({t}s) covers the flows' hold_timeout (Lua sockets default to 60s). Attach with the\n\
         # annotation konghq.com/plugins: leannodes on the flows' Ingresses or Services.\n\
         apiVersion: configuration.konghq.com/v1\nkind: KongPlugin\nmetadata:\n  name: leannodes\n  namespace: {ns}\nplugin: pre-function\nconfig:\n  access:\n  - |\n{indented}",
        ns = target.namespace,
    )
}

fn skipper(flows: &[&Flow], target: &Target) -> String {
    let (app_host, app_port) = upstream(flows[0]);
    let routes = hosts(flows)
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = if let Some(s) = h.strip_prefix("*.") { format!("^.*[.]{}$", s.replace('.', "[.]")) } else { format!("^{}$", h.replace('.', "[.]")) };
            format!(
                "leannodes_{i}: Host(\"{host}\")\n  -> setRequestHeader(\"X-Forwarded-Uri\", \"${{request.path}}\")\n  -> setRequestHeader(\"X-Forwarded-Method\", \"${{request.method}}\")\n  -> xforward()\n  -> webhook(\"{check}\")\n  -> \"http://{app_host}:{app_port}\";\n",
                check = target.check_url,
            )
        })
        .collect::<String>();
    format!(
        "// Rendered by `leannodes gateway render skipper`. Skipper's webhook timeout is a global flag: start\n\
         // skipper with -webhook-timeout={t}s -write-timeout-server={t}s (defaults 2s and 60s), or wakes fail.\n\
         // Skipper turns refusals other than 403 into its own 401 (LeanNodes' body is not passed on).\n\
         {routes}",
        t = secs(flows.iter().map(|f| f.hold_timeout).max().unwrap_or_default() + MARGIN),
    )
}

/// The namespace and name of the object whose presence shows that the artifact of `kind` is applied
/// (what [`leannodes_drivers::gateways::detect_gateways`] looks for).
pub(crate) fn artifact_object(kind: &str, flows: &[&Flow], target: &Target) -> (String, String) {
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
pub(crate) async fn detect(
    client: &kube::Client,
    flows: &[&Flow],
    target: &Target,
) -> Result<Vec<leannodes_drivers::gateways::Detected>, kube::Error> {
    leannodes_drivers::gateways::detect_gateways(client, |kind| artifact_object(kind, flows, target)).await
}

/// Flows selected by `--flow` (all when `None`).
pub(crate) fn select<'a>(flows: &'a [std::sync::Arc<Flow>], name: Option<&str>) -> Result<Vec<&'a Flow>, RenderError> {
    let selected: Vec<&Flow> = flows.iter().map(|f| &**f).filter(|f| name.is_none_or(|n| f.name == n)).collect();
    if selected.is_empty() {
        return Err(RenderError::NoFlow(name.map(str::to_string)));
    }
    Ok(selected)
}

/// What `validate --gateway KIND` says about the configuration: one line per flow a gateway cannot hold.
pub(crate) fn hold_problems(kind: Kind, flows: &[std::sync::Arc<Flow>]) -> Vec<String> {
    flows.iter().filter_map(|f| render(kind, &[&**f], &Target::default()).err().map(|e| format!("flow `{}`: {e}", f.name))).collect()
}
