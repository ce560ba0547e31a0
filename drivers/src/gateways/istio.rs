//! Istio: a mesh `extensionProviders` entry and a CUSTOM `AuthorizationPolicy` on the ingress gateway.

use super::*;

pub(super) fn istio(flows: &[&Flow], target: &Target, t: u64) -> Vec<File> {
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
