//! Contour: a gRPC `ExtensionService` and an `HTTPProxy` per host with `authorization`.

use std::fmt::Write as _;

use super::*;

pub(super) fn contour(flows: &[&Flow], target: &Target, t: u64) -> String {
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
    let token = target
        .check_token
        .as_ref()
        .map_or_else(String::new, |t| format!("      authPolicy:\n        context:\n          {CHECK_TOKEN_HEADER}: \"{t}\"\n"));
    for host in hosts(flows) {
        let name = host.replace('*', "wildcard").replace('.', "-");
        let _ = write!(
            out,
            "---\n# Authorization needs a TLS virtual host: set the secret of {host}.\napiVersion: projectcontour.io/v1\nkind: HTTPProxy\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  virtualhost:\n    fqdn: \"{host}\"\n    tls:\n      secretName: {name}-tls\n    authorization:\n      extensionRef:\n        name: leannodes\n        namespace: {lns}\n      responseTimeout: {t}s\n      failOpen: false\n{token}  routes:\n  - services:\n    - name: {app}\n      port: {app_port}\n",
            ns = target.namespace,
            lns = target.leannodes_namespace,
        );
    }
    out
}
