//! Emissary-ingress: a gRPC v3 `AuthService`.

use super::*;

pub(super) fn emissary(target: &Target, t: u64) -> String {
    format!(
        "# Rendered by `leannodes gateway render emissary`: Emissary-ingress asks LeanNodes over gRPC (v3) for\n\
         # every Mapping; the timeout ({t}s) covers the flows' hold_timeout (Emissary's default: 5s).\n\
         apiVersion: getambassador.io/v3alpha1\nkind: AuthService\nmetadata:\n  name: leannodes\n  namespace: {lns}\nspec:\n  auth_service: \"{grpc}\"\n  proto: grpc\n  protocol_version: v3\n  timeout_ms: {ms}\n  failure_mode_allow: false\n  status_on_error:\n    code: 503\n{token}",
        lns = target.leannodes_namespace,
        grpc = target.grpc,
        ms = t * 1000,
        token =
            target.check_token.as_ref().map_or_else(String::new, |t| format!("  add_auth_headers:\n    {CHECK_TOKEN_HEADER}: \"{t}\"\n")),
    )
}
