//! Emissary-ingress: a gRPC v3 `AuthService`, which Emissary applies to every Mapping (the flows' routes
//! stay as they are).

use std::collections::BTreeMap;

use serde::Serialize;

use super::k8s::{ResourceType, Spec};
use super::{CHECK_TOKEN_HEADER, Context, Detection, Driver, File, NAME, Placement, RenderError};

/// Emissary's driver: found by its AuthService CRD; applied when the AuthService exists.
pub(super) const DRIVER: Driver = Driver::kubernetes(Detection::crd(AUTH_SERVICE, Placement::LeanNodesNamespace(NAME)), render);

const AUTH_SERVICE: ResourceType =
    ResourceType { group: "getambassador.io", version: "v3alpha1", kind: "AuthService", plural: "authservices" };

#[derive(Debug, Serialize)]
struct AuthServiceSpec {
    auth_service: String,
    proto: &'static str,
    protocol_version: &'static str,
    timeout_ms: u64,
    failure_mode_allow: bool,
    status_on_error: StatusOnError,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    add_auth_headers: BTreeMap<&'static str, String>,
}

#[derive(Debug, Serialize)]
struct StatusOnError {
    code: u16,
}

fn render(ctx: &Context<'_>) -> Result<Vec<File>, RenderError> {
    let t = ctx.timeout;
    let spec = AuthServiceSpec {
        auth_service: ctx.target.grpc.clone(),
        proto: "grpc",
        protocol_version: "v3",
        timeout_ms: t * 1000,
        failure_mode_allow: false,
        status_on_error: StatusOnError { code: 503 },
        add_auth_headers: ctx.token().map(|t| (CHECK_TOKEN_HEADER, t.to_string())).into_iter().collect(),
    };
    let text = ctx
        .yaml()
        .doc(
            &format!(
                "Rendered by `leannodes gateway render emissary`: Emissary-ingress asks LeanNodes over gRPC (v3) for\n\
                 every Mapping; the timeout ({t}s) covers the flows' hold_timeout (Emissary's default: 5s)."
            ),
            &AUTH_SERVICE.object(&ctx.target.leannodes_namespace, NAME, Spec { spec }),
        )?
        .finish();
    Ok(vec![File::new("authservice.yaml", text)])
}
