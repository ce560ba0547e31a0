//! Istio: a mesh `extensionProviders` entry and a CUSTOM `AuthorizationPolicy` on the ingress gateway
//! covering each flow's hosts and paths.

use std::collections::BTreeMap;

use leannodes_config::Flow;
use serde::Serialize;

use super::k8s::{ResourceType, Spec};
use super::{Context, Detection, Driver, File, PathMatch, Placement, RenderError, hosts};

/// Istio's driver: found by its AuthorizationPolicy CRD; applied when the policy exists.
pub(super) const DRIVER: Driver = Driver::kubernetes(Detection::crd(POLICY, Placement::Fixed(POLICY_NAMESPACE, POLICY_NAME)), render);

const POLICY: ResourceType =
    ResourceType { group: "security.istio.io", version: "v1", kind: "AuthorizationPolicy", plural: "authorizationpolicies" };
/// Where the policy goes: the ingress gateway's namespace.
const POLICY_NAMESPACE: &str = "istio-system";
const POLICY_NAME: &str = "leannodes-wake";
/// The extension provider's name in the mesh config.
const PROVIDER: &str = "leannodes";

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct MeshConfigFragment {
    mesh_config: MeshConfig,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct MeshConfig {
    extension_providers: Vec<ExtensionProvider>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ExtensionProvider {
    name: &'static str,
    envoy_ext_authz_grpc: ExtAuthzGrpc,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ExtAuthzGrpc {
    service: String,
    port: u16,
    timeout: String,
    fail_open: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PolicySpec {
    selector: Selector,
    action: &'static str,
    provider: Provider,
    rules: Vec<Rule>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Selector {
    match_labels: BTreeMap<&'static str, &'static str>,
}

#[derive(Debug, Serialize)]
struct Provider {
    name: &'static str,
}

#[derive(Debug, Serialize)]
struct Rule {
    to: Vec<To>,
}

#[derive(Debug, Serialize)]
struct To {
    operation: Operation,
}

/// Requests to these hosts (and, unless a flow serves `/`, these paths) are checked.
#[derive(Debug, Serialize)]
struct Operation {
    hosts: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    paths: Vec<String>,
}

/// The policy's rule for one flow: its hosts and its paths (`/api` is `/api` and `/api/*`).
fn rule(flow: &Flow) -> Rule {
    let hosts = hosts(&[flow]);
    let mut paths: Vec<&str> = flow.bindings.iter().map(|b| b.path.as_str()).collect();
    paths.sort();
    paths.dedup();
    let paths = if paths.contains(&"/") { Vec::new() } else { paths.iter().flat_map(|p| PathMatch::of(p)).map(PathMatch::glob).collect() };
    Rule { to: vec![To { operation: Operation { hosts, paths } }] }
}

fn render(ctx: &Context<'_>) -> Result<Vec<File>, RenderError> {
    let t = ctx.timeout;
    let (grpc_host, grpc_port) = ctx.grpc()?;
    let mesh = MeshConfigFragment {
        mesh_config: MeshConfig {
            extension_providers: vec![ExtensionProvider {
                name: PROVIDER,
                envoy_ext_authz_grpc: ExtAuthzGrpc {
                    service: grpc_host.into(),
                    port: grpc_port,
                    timeout: format!("{t}s"),
                    fail_open: false,
                },
            }],
        },
    };
    let mesh = ctx
        .yaml()
        .doc(
            &format!(
                "Rendered by `leannodes gateway render istio`: merge into the mesh config (IstioOperator\n\
                 spec.meshConfig, or the istiod Helm value meshConfig). gRPC keeps LeanNodes' status, headers and\n\
                 body on a refusal; the timeout ({t}s) covers the flows' hold_timeout."
            ),
            &mesh,
        )?
        .finish();
    let spec = PolicySpec {
        selector: Selector { match_labels: BTreeMap::from([("istio", "ingressgateway")]) },
        action: "CUSTOM",
        provider: Provider { name: PROVIDER },
        rules: ctx.flows.iter().map(|f| rule(f)).collect(),
    };
    let policy = ctx
        .yaml()
        .doc(
            "Rendered by `leannodes gateway render istio`: on the ingress gateway (a policy on the scaled\n\
             workload's sidecar would never run while it has zero pods).",
            &POLICY.object(POLICY_NAMESPACE, POLICY_NAME, Spec { spec }),
        )?
        .finish();
    Ok(vec![File::new("meshconfig.yaml", mesh), File::new("authorizationpolicy.yaml", policy)])
}
