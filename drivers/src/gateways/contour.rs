//! Contour: a gRPC `ExtensionService` and an `HTTPProxy` per host with `authorization`, whose routes send
//! each path to its flow's Service.

use std::collections::BTreeMap;

use serde::Serialize;

use super::k8s::{ResourceType, Spec};
use super::{CHECK_TOKEN_HEADER, Context, Detection, Driver, File, NAME, PathMatch, Placement, RenderError, Route, first_label, service};

/// Contour's driver: found by its ExtensionService CRD; applied when the extension service exists.
pub(super) const DRIVER: Driver = Driver::kubernetes(Detection::crd(EXTENSION_SERVICE, Placement::LeanNodesNamespace(NAME)), render);

const EXTENSION_SERVICE: ResourceType =
    ResourceType { group: "projectcontour.io", version: "v1alpha1", kind: "ExtensionService", plural: "extensionservices" };
const HTTP_PROXY: ResourceType = ResourceType { group: "projectcontour.io", version: "v1", kind: "HTTPProxy", plural: "httpproxies" };

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ExtensionServiceSpec {
    protocol: &'static str,
    services: Vec<ServiceRef>,
    timeout_policy: TimeoutPolicy,
}

#[derive(Debug, Serialize)]
struct ServiceRef {
    name: String,
    port: u16,
}

#[derive(Debug, Serialize)]
struct TimeoutPolicy {
    response: String,
}

#[derive(Debug, Serialize)]
struct HttpProxySpec {
    virtualhost: VirtualHost,
    routes: Vec<ProxyRoute>,
}

#[derive(Debug, Serialize)]
struct VirtualHost {
    fqdn: String,
    tls: Tls,
    authorization: Authorization,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Tls {
    secret_name: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Authorization {
    extension_ref: ExtensionRef,
    response_timeout: String,
    fail_open: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_policy: Option<AuthPolicy>,
}

#[derive(Debug, Serialize)]
struct ExtensionRef {
    name: &'static str,
    namespace: String,
}

#[derive(Debug, Serialize)]
struct AuthPolicy {
    context: BTreeMap<&'static str, String>,
}

#[derive(Debug, Serialize)]
struct ProxyRoute {
    conditions: Vec<Condition>,
    services: Vec<ServiceRef>,
}

/// A path condition.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Condition {
    Exact { exact: String },
    Prefix { prefix: String },
}

/// The HTTPProxy routes of one route of a site (`/api`: exactly `/api`, and below `/api/`).
fn proxy_routes(route: &Route<'_>) -> impl Iterator<Item = ProxyRoute> {
    let (name, port) = service(route.flow);
    PathMatch::of(route.path).into_iter().map(move |m| ProxyRoute {
        conditions: vec![match m {
            PathMatch::Exact(exact) => Condition::Exact { exact },
            PathMatch::Prefix(prefix) => Condition::Prefix { prefix },
        }],
        services: vec![ServiceRef { name: name.clone(), port }],
    })
}

fn render(ctx: &Context<'_>) -> Result<Vec<File>, RenderError> {
    let t = ctx.timeout;
    let (grpc_host, grpc_port) = ctx.grpc()?;
    let lns = &ctx.target.leannodes_namespace;
    let extension = ExtensionServiceSpec {
        protocol: "h2c",
        services: vec![ServiceRef { name: first_label(grpc_host).into(), port: grpc_port }],
        timeout_policy: TimeoutPolicy { response: format!("{t}s") },
    };
    let mut stream = ctx.yaml().doc(
        &format!(
            "Rendered by `leannodes gateway render contour`: Contour asks LeanNodes over gRPC (h2c). Without a\n\
             timeout Contour leaves Envoy's 200 ms; this one ({t}s) covers the flows' hold_timeout."
        ),
        &EXTENSION_SERVICE.object(lns, NAME, Spec { spec: extension }),
    )?;
    for site in ctx.sites() {
        for host in &site.hosts {
            let fqdn = host.to_string();
            let name = fqdn.replace('*', "wildcard").replace('.', "-");
            let spec = HttpProxySpec {
                virtualhost: VirtualHost {
                    fqdn: fqdn.clone(),
                    tls: Tls { secret_name: format!("{name}-tls") },
                    authorization: Authorization {
                        extension_ref: ExtensionRef { name: NAME, namespace: lns.clone() },
                        response_timeout: format!("{t}s"),
                        fail_open: false,
                        auth_policy: ctx.token().map(|t| AuthPolicy { context: BTreeMap::from([(CHECK_TOKEN_HEADER, t.to_string())]) }),
                    },
                },
                routes: site.routes.iter().flat_map(proxy_routes).collect(),
            };
            stream = stream.doc(
                &format!("Authorization needs a TLS virtual host: set the secret of {fqdn}."),
                &HTTP_PROXY.object(&ctx.target.namespace, &name, Spec { spec }),
            )?;
        }
    }
    Ok(vec![File::new("contour.yaml", stream.finish())])
}
