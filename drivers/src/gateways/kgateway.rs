//! kgateway: a gRPC `ext_authz` `GatewayExtension` and a `TrafficPolicy` on the flows' HTTPRoutes.

use std::fmt::Write as _;

use super::*;

pub(super) fn kgateway(flows: &[&Flow], target: &Target, t: u64) -> String {
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
        "---\napiVersion: gateway.kgateway.dev/v1alpha1\nkind: TrafficPolicy\nmetadata:\n  name: leannodes\n  namespace: {ns}\nspec:\n  targetRefs:\n{refs}  extAuth:\n    extensionRef:\n      name: leannodes\n{token}",
        ns = target.namespace,
        refs = flows
            .iter()
            .map(|f| format!("  - group: gateway.networking.k8s.io\n    kind: HTTPRoute\n    name: {}\n", f.name))
            .collect::<String>(),
        token = target
            .check_token
            .as_ref()
            .map_or_else(String::new, |t| format!("    contextExtensions:\n      {CHECK_TOKEN_HEADER}: \"{t}\"\n")),
    );
    out
}
