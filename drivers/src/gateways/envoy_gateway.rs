//! Envoy Gateway: a `SecurityPolicy` with gRPC `extAuth` per flow's HTTPRoute.

use std::fmt::Write as _;

use super::*;

pub(super) fn envoy_gateway(flows: &[&Flow], target: &Target, t: u64) -> String {
    let (grpc_host, grpc_port) = split_host_port(&target.grpc);
    let service = grpc_host.split('.').next().unwrap_or("leannodes");
    let mut out = String::new();
    let token = target.check_token.as_ref().map_or_else(String::new, |t| {
        format!("    contextExtensions:\n    - name: {CHECK_TOKEN_HEADER}\n      type: Value\n      value: \"{t}\"\n")
    });
    for flow in flows {
        let _ = write!(
            out,
            "# Rendered by `leannodes gateway render envoy-gateway`: the HTTPRoute `{name}` (the flow's route)\n\
             # asks LeanNodes over gRPC; the timeout ({t}s) covers hold_timeout (Envoy Gateway's default: 10s).\n\
             # A backendRef to another namespace needs a ReferenceGrant there.\n\
             apiVersion: gateway.envoyproxy.io/v1alpha1\nkind: SecurityPolicy\nmetadata:\n  name: leannodes-{name}\n  namespace: {ns}\nspec:\n  targetRefs:\n  - group: gateway.networking.k8s.io\n    kind: HTTPRoute\n    name: {name}\n  extAuth:\n    timeout: {t}s\n    failOpen: false\n    headersToExtAuth: [accept, content-type, user-agent]\n    grpc:\n      backendRefs:\n      - name: {service}\n        namespace: {lns}\n        port: {grpc_port}\n{token}---\n",
            name = flow.name,
            ns = target.namespace,
            lns = target.leannodes_namespace,
        );
    }
    out.trim_end_matches("---\n").to_string()
}
