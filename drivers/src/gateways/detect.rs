//! Which gateways a cluster has (their CustomResourceDefinitions, or an IngressClass for
//! ingress-nginx), and whether the artifact `leannodes gateway render` writes for each is applied.
//! Read-only: `list` on CRDs and IngressClasses, `get` on the gateways' resources ([`RBAC_RULES`]).

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use serde::Serialize;

/// What a gateway leaves in a cluster.
#[derive(Debug, Clone, Copy)]
pub struct GatewayProbe {
    /// Gateway kind, as `leannodes gateway render` names it.
    pub kind: &'static str,
    /// The CRD whose presence shows the gateway (`None`: found by IngressClass controller instead).
    pub crd: Option<&'static str>,
    /// Group, version, kind and plural of the rendered artifact's main resource.
    pub artifact: (&'static str, &'static str, &'static str, &'static str),
}

/// Every gateway that can be detected in a cluster.
pub const GATEWAY_PROBES: &[GatewayProbe] = &[
    GatewayProbe {
        kind: "istio",
        crd: Some("authorizationpolicies.security.istio.io"),
        artifact: ("security.istio.io", "v1", "AuthorizationPolicy", "authorizationpolicies"),
    },
    GatewayProbe {
        kind: "envoy-gateway",
        crd: Some("securitypolicies.gateway.envoyproxy.io"),
        artifact: ("gateway.envoyproxy.io", "v1alpha1", "SecurityPolicy", "securitypolicies"),
    },
    GatewayProbe {
        kind: "contour",
        crd: Some("extensionservices.projectcontour.io"),
        artifact: ("projectcontour.io", "v1alpha1", "ExtensionService", "extensionservices"),
    },
    GatewayProbe {
        kind: "emissary",
        crd: Some("authservices.getambassador.io"),
        artifact: ("getambassador.io", "v3alpha1", "AuthService", "authservices"),
    },
    GatewayProbe {
        kind: "kgateway",
        crd: Some("gatewayextensions.gateway.kgateway.dev"),
        artifact: ("gateway.kgateway.dev", "v1alpha1", "GatewayExtension", "gatewayextensions"),
    },
    GatewayProbe {
        kind: "traefik",
        crd: Some("middlewares.traefik.io"),
        artifact: ("traefik.io", "v1alpha1", "Middleware", "middlewares"),
    },
    GatewayProbe {
        kind: "apisix",
        crd: Some("apisixpluginconfigs.apisix.apache.org"),
        artifact: ("apisix.apache.org", "v2", "ApisixPluginConfig", "apisixpluginconfigs"),
    },
    GatewayProbe {
        kind: "kong",
        crd: Some("kongplugins.configuration.konghq.com"),
        artifact: ("configuration.konghq.com", "v1", "KongPlugin", "kongplugins"),
    },
    GatewayProbe { kind: "ingress-nginx", crd: None, artifact: ("networking.k8s.io", "v1", "Ingress", "ingresses") },
];

/// The IngressClass controller of ingress-nginx.
const INGRESS_NGINX_CONTROLLER: &str = "k8s.io/ingress-nginx";

/// Permissions detection needs (kept equal to `deploy/rbac.yaml` by a test, with the driver's).
pub const RBAC_RULES: &[(&str, &str, &[&str])] = &[
    ("apiextensions.k8s.io", "customresourcedefinitions", &["list"]),
    ("networking.k8s.io", "ingressclasses", &["list"]),
    ("networking.k8s.io", "ingresses", &["get"]),
    ("security.istio.io", "authorizationpolicies", &["get"]),
    ("gateway.envoyproxy.io", "securitypolicies", &["get"]),
    ("projectcontour.io", "extensionservices", &["get"]),
    ("getambassador.io", "authservices", &["get"]),
    ("gateway.kgateway.dev", "gatewayextensions", &["get"]),
    ("traefik.io", "middlewares", &["get"]),
    ("apisix.apache.org", "apisixpluginconfigs", &["get"]),
    ("configuration.konghq.com", "kongplugins", &["get"]),
];

/// One gateway as found in a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Detected {
    /// Gateway kind.
    pub kind: String,
    /// What shows it is there (a CRD or an IngressClass), when it is.
    pub evidence: Option<String>,
    /// Whether the rendered artifact exists (`None`: the gateway is not there, or it could not be read).
    pub applied: Option<bool>,
}

/// Finds the gateways in the cluster. `artifact(kind)` gives the namespace and name of the object the
/// renderer writes for that gateway.
pub async fn detect_gateways(client: &kube::Client, artifact: impl Fn(&str) -> (String, String)) -> Result<Vec<Detected>, kube::Error> {
    let crds = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
        "customresourcedefinitions",
    );
    let names: Vec<String> = Api::<DynamicObject>::all_with(client.clone(), &crds)
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    let classes = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("networking.k8s.io", "v1", "IngressClass"), "ingressclasses");
    let nginx_class = Api::<DynamicObject>::all_with(client.clone(), &classes)
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .find(|c| c.data["spec"]["controller"] == INGRESS_NGINX_CONTROLLER)
        .and_then(|c| c.metadata.name);
    let mut out = Vec::new();
    for probe in GATEWAY_PROBES {
        let evidence = match probe.crd {
            Some(crd) => names.iter().any(|n| n == crd).then(|| format!("CustomResourceDefinition {crd}")),
            None => nginx_class.as_ref().map(|c| format!("IngressClass {c} ({INGRESS_NGINX_CONTROLLER})")),
        };
        let applied = match &evidence {
            None => None,
            Some(_) => {
                let (group, version, kind, plural) = probe.artifact;
                let resource = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
                let (namespace, name) = artifact(probe.kind);
                let found = Api::<DynamicObject>::namespaced_with(client.clone(), &namespace, &resource).get_opt(&name).await;
                match found {
                    Ok(object) => Some(object.is_some_and(|o| probe.kind != "ingress-nginx" || has_auth_url(&o))),
                    Err(e) => {
                        tracing::warn!(gateway = probe.kind, "cannot read {kind} {namespace}/{name}: {e}");
                        None
                    }
                }
            }
        };
        out.push(Detected { kind: probe.kind.to_string(), evidence, applied });
    }
    Ok(out)
}

/// Whether an Ingress carries the ingress-nginx auth annotation.
fn has_auth_url(ingress: &DynamicObject) -> bool {
    ingress.metadata.annotations.as_ref().is_some_and(|a| a.contains_key("nginx.ingress.kubernetes.io/auth-url"))
}
