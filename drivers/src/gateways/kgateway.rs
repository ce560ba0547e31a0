//! kgateway: a gRPC `ext_authz` `GatewayExtension` and a `TrafficPolicy` attaching it to each flow's
//! HTTPRoute (named after the flow), which keeps routing to the flow's backend.

use std::collections::BTreeMap;

use serde::Serialize;

use super::envoy_gateway::{BackendRef, TargetRef};
use super::k8s::{ResourceType, Spec};
use super::{CHECK_TOKEN_HEADER, Context, Detection, Driver, File, NAME, Placement, RenderError, first_label};

/// kgateway's driver: found by its GatewayExtension CRD; applied when the extension exists.
pub(super) const DRIVER: Driver = Driver::kubernetes(Detection::crd(EXTENSION, Placement::AppNamespace(NAME)), render);

const EXTENSION: ResourceType =
    ResourceType { group: "gateway.kgateway.dev", version: "v1alpha1", kind: "GatewayExtension", plural: "gatewayextensions" };
const TRAFFIC_POLICY: ResourceType =
    ResourceType { group: "gateway.kgateway.dev", version: "v1alpha1", kind: "TrafficPolicy", plural: "trafficpolicies" };

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ExtensionSpec {
    #[serde(rename = "type")]
    ty: &'static str,
    ext_auth: ExtensionExtAuth,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ExtensionExtAuth {
    grpc_service: GrpcService,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct GrpcService {
    backend_ref: BackendRef,
    request_timeout: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct TrafficPolicySpec {
    target_refs: Vec<TargetRef>,
    ext_auth: PolicyExtAuth,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PolicyExtAuth {
    extension_ref: ExtensionRef,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    context_extensions: BTreeMap<&'static str, String>,
}

#[derive(Debug, Serialize)]
struct ExtensionRef {
    name: &'static str,
}

fn render(ctx: &Context<'_>) -> Result<Vec<File>, RenderError> {
    let t = ctx.timeout;
    let (grpc_host, grpc_port) = ctx.grpc()?;
    let ns = &ctx.target.namespace;
    let extension = ExtensionSpec {
        ty: "ExtAuth",
        ext_auth: ExtensionExtAuth {
            grpc_service: GrpcService {
                backend_ref: BackendRef {
                    name: first_label(grpc_host).into(),
                    namespace: ctx.target.leannodes_namespace.clone(),
                    port: grpc_port,
                },
                request_timeout: format!("{t}s"),
            },
        },
    };
    let policy = TrafficPolicySpec {
        target_refs: ctx.flows.iter().map(|f| TargetRef::route(f)).collect(),
        ext_auth: PolicyExtAuth {
            extension_ref: ExtensionRef { name: NAME },
            context_extensions: ctx.token().map(|t| (CHECK_TOKEN_HEADER, t.to_string())).into_iter().collect(),
        },
    };
    let text = ctx
        .yaml()
        .doc(
            &format!(
                "Rendered by `leannodes gateway render kgateway`: a gRPC ext_authz extension, attached to the flows'\n\
                 HTTPRoutes; the request timeout ({t}s) covers the flows' hold_timeout."
            ),
            &EXTENSION.object(ns, NAME, Spec { spec: extension }),
        )?
        .doc("", &TRAFFIC_POLICY.object(ns, NAME, Spec { spec: policy }))?
        .finish();
    Ok(vec![File::new("kgateway.yaml", text)])
}
