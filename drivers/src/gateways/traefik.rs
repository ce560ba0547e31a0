//! Traefik: a `forwardAuth` `Middleware` (only for flows whose hold fits Traefik's 30 s), which the
//! operator attaches to the flows' routers (their routes stay as they are).

use std::time::Duration;

use serde::Serialize;

use super::k8s::{ResourceType, Spec};
use super::{Context, Detection, Driver, File, NAME, Placement, RenderError};

/// Traefik's driver: forwardAuth waits at most 30 s (`forward.go`: `http.Client{Timeout: 30 *
/// time.Second}`, not configurable); found by its Middleware CRD.
pub(super) const DRIVER: Driver =
    Driver::kubernetes(Detection::crd(MIDDLEWARE, Placement::AppNamespace(NAME)), render).capped(Duration::from_secs(30));

const MIDDLEWARE: ResourceType = ResourceType { group: "traefik.io", version: "v1alpha1", kind: "Middleware", plural: "middlewares" };

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct MiddlewareSpec {
    forward_auth: ForwardAuth,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ForwardAuth {
    address: String,
    preserve_request_method: bool,
    auth_response_headers: Vec<String>,
}

fn render(ctx: &Context<'_>) -> Result<Vec<File>, RenderError> {
    let ns = &ctx.target.namespace;
    let spec = MiddlewareSpec {
        forward_auth: ForwardAuth {
            address: ctx.target.check_url.clone(),
            preserve_request_method: false,
            auth_response_headers: Vec::new(),
        },
    };
    let text = ctx
        .yaml()
        .doc(
            &format!(
                "Rendered by `leannodes gateway render traefik`. Traefik's forwardAuth waits at most 30s (hard-coded),\n\
                 which covers these flows' hold_timeout. Attach it to the flows' routers (IngressRoute middlewares, or\n\
                 the annotation traefik.ingress.kubernetes.io/router.middlewares: {ns}-{NAME}@kubernetescrd)."
            ),
            &MIDDLEWARE.object(ns, NAME, Spec { spec }),
        )?
        .finish();
    Ok(vec![File::new("middleware.yaml", text)])
}
