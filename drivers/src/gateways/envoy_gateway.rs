//! Envoy Gateway: a `SecurityPolicy` with gRPC `extAuth` per flow, attached to the flow's HTTPRoute
//! (named after the flow), which keeps routing to the flow's backend.

use leannodes_config::Flow;
use serde::Serialize;

use super::k8s::{ResourceType, Spec};
use super::{CHECK_TOKEN_HEADER, CLIENT_HEADERS, Context, Detection, Driver, File, Placement, RenderError, first_label};

/// Envoy Gateway's driver: found by its SecurityPolicy CRD; applied when the first flow's policy exists.
pub(super) const DRIVER: Driver = Driver::kubernetes(Detection::crd(POLICY, Placement::PerFlow(POLICY_PREFIX)), render);

const POLICY: ResourceType =
    ResourceType { group: "gateway.envoyproxy.io", version: "v1alpha1", kind: "SecurityPolicy", plural: "securitypolicies" };

/// A flow's policy is this and the flow's name.
const POLICY_PREFIX: &str = "leannodes-";

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PolicySpec {
    target_refs: Vec<TargetRef>,
    ext_auth: ExtAuth,
}

/// A Gateway API object a policy attaches to.
#[derive(Debug, Serialize)]
pub(super) struct TargetRef {
    pub(super) group: &'static str,
    pub(super) kind: &'static str,
    pub(super) name: String,
}

impl TargetRef {
    /// The HTTPRoute of a flow (named after it).
    pub(super) fn route(flow: &Flow) -> TargetRef {
        TargetRef { group: "gateway.networking.k8s.io", kind: "HTTPRoute", name: flow.name.clone() }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ExtAuth {
    timeout: String,
    fail_open: bool,
    headers_to_ext_auth: [&'static str; 3],
    grpc: Grpc,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    context_extensions: Vec<ContextExtension>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Grpc {
    backend_refs: Vec<BackendRef>,
}

/// A Service in another namespace.
#[derive(Debug, Serialize)]
pub(super) struct BackendRef {
    pub(super) name: String,
    pub(super) namespace: String,
    pub(super) port: u16,
}

#[derive(Debug, Serialize)]
struct ContextExtension {
    name: &'static str,
    #[serde(rename = "type")]
    ty: &'static str,
    value: String,
}

fn render(ctx: &Context<'_>) -> Result<Vec<File>, RenderError> {
    let t = ctx.timeout;
    let (grpc_host, grpc_port) = ctx.grpc()?;
    let mut stream = ctx.yaml();
    for flow in ctx.flows {
        let name = &flow.name;
        let spec = PolicySpec {
            target_refs: vec![TargetRef::route(flow)],
            ext_auth: ExtAuth {
                timeout: format!("{t}s"),
                fail_open: false,
                headers_to_ext_auth: CLIENT_HEADERS,
                grpc: Grpc {
                    backend_refs: vec![BackendRef {
                        name: first_label(grpc_host).into(),
                        namespace: ctx.target.leannodes_namespace.clone(),
                        port: grpc_port,
                    }],
                },
                context_extensions: ctx
                    .token()
                    .map(|t| ContextExtension { name: CHECK_TOKEN_HEADER, ty: "Value", value: t.into() })
                    .into_iter()
                    .collect(),
            },
        };
        stream = stream.doc(
            &format!(
                "Rendered by `leannodes gateway render envoy-gateway`: the HTTPRoute `{name}` (the flow's route)\n\
                 asks LeanNodes over gRPC; the timeout ({t}s) covers hold_timeout (Envoy Gateway's default: 10s).\n\
                 A backendRef to another namespace needs a ReferenceGrant there."
            ),
            &POLICY.object(&ctx.target.namespace, &format!("{POLICY_PREFIX}{name}"), Spec { spec }),
        )?;
    }
    Ok(vec![File::new("securitypolicy.yaml", stream.finish())])
}
