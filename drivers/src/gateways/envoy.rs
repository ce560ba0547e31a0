//! Plain Envoy (`envoy`, HTTP `ext_authz`) and `envoy-grpc` (gRPC `ext_authz`): a whole static bootstrap.

use std::fmt::Write as _;

use super::*;

/// An Envoy cluster with one endpoint.
pub(super) fn envoy_cluster(name: &str, host: &str, port: impl std::fmt::Display, extra: &str) -> String {
    let ty = if host.parse::<std::net::IpAddr>().is_ok() { "STATIC" } else { "STRICT_DNS" };
    format!(
        "  - name: {name}\n    type: {ty}\n    connect_timeout: 2s\n{extra}    load_assignment:\n      cluster_name: {name}\n      endpoints: [{{lb_endpoints: [{{endpoint: {{address: {{socket_address: {{address: {host}, port_value: {port}}}}}}}}}]}}]\n"
    )
}

pub(super) fn envoy(flows: &[&Flow], target: &Target, t: u64, grpc: bool) -> String {
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
        if let Some(token) = &target.check_token {
            let _ = writeln!(out, "                initial_metadata: [{{key: {CHECK_TOKEN_HEADER}, value: \"{token}\"}}]");
        }
    } else {
        let headers = CLIENT_HEADERS.iter().map(|h| format!("{{exact: {h}}}")).collect::<Vec<_>>().join(", ");
        let answer = ANSWER_HEADERS.iter().map(|h| format!("{{exact: {h}}}")).collect::<Vec<_>>().join(", ");
        let _ = write!(
            out,
            "              allowed_headers:\n                patterns: [{headers}]\n              http_service:\n                server_uri: {{uri: \"{url}\", cluster: leannodes_check, timeout: {t}s}}\n                path_prefix: {check_path}\n{token}                authorization_response:\n                  allowed_client_headers:\n                    patterns: [{answer}]\n              # Envoy's HTTP mode turns a 5xx from the check into this status (its body is lost; the gRPC mode keeps it).\n              status_on_error: {{code: ServiceUnavailable}}\n",
            url = target.check_url,
            token = target.check_token.as_ref().map_or_else(String::new, |token| format!(
                "                authorization_request:\n                  headers_to_add: [{{key: {CHECK_TOKEN_HEADER}, value: \"{token}\"}}]\n"
            )),
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
