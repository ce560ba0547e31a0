//! Which gateways a cluster has, and whether the artifact `leannodes gateway render` writes for each is
//! applied. Each Kubernetes gateway's driver says what to look for (its [`Detection`], next to its
//! renderer); this runs them. Read-only: `list` on CRDs and IngressClasses, `get` on the gateways'
//! resources ([`RBAC_RULES`]).

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use leannodes_config::{Flow, GatewayKind};
use serde::Serialize;

use super::k8s::ResourceType;
use super::{Target, driver};

/// What a gateway leaves in a cluster, and where its rendered artifact would be.
#[derive(Debug)]
pub struct Detection {
    /// What shows the gateway is installed.
    pub evidence: Evidence,
    /// The rendered artifact's main resource (the one looked for).
    pub artifact: ResourceType,
    /// Where the renderer puts the artifact's main object, and its name.
    pub placement: Placement,
    /// Whether an object of that name is the rendered artifact (e.g. carries the callout annotation).
    pub(super) applied: fn(&DynamicObject) -> bool,
}

/// Where a renderer puts an artifact's main object (what detection looks for).
#[derive(Debug, Clone, Copy)]
pub enum Placement {
    /// This name, in the flows' namespace (`--namespace`).
    AppNamespace(&'static str),
    /// This name, in LeanNodes' namespace.
    LeanNodesNamespace(&'static str),
    /// This namespace and name.
    Fixed(&'static str, &'static str),
    /// In the flows' namespace, one per flow: this prefix and the first flow's name.
    PerFlow(&'static str),
}

impl Placement {
    /// The namespace and name of the object for `flows`, rendered for `target`.
    pub fn object(self, flows: &[&Flow], target: &Target) -> (String, String) {
        match self {
            Placement::AppNamespace(name) => (target.namespace.clone(), name.into()),
            Placement::LeanNodesNamespace(name) => (target.leannodes_namespace.clone(), name.into()),
            Placement::Fixed(namespace, name) => (namespace.into(), name.into()),
            Placement::PerFlow(prefix) => {
                (target.namespace.clone(), format!("{prefix}{}", flows.first().map_or("flow", |f| f.name.as_str())))
            }
        }
    }
}

/// What shows that a cluster runs a gateway.
#[derive(Debug, Clone, Copy)]
pub enum Evidence {
    /// The CustomResourceDefinition of the artifact's resource.
    ArtifactCrd,
    /// An IngressClass of this controller.
    IngressClass(&'static str),
}

/// Permissions detection needs (kept equal to `deploy/rbac.yaml` by a test, with the driver's, and to
/// the drivers' [`Detection`]s by a unit test).
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
    pub kind: GatewayKind,
    /// What shows it is there (a CRD or an IngressClass), when it is.
    pub evidence: Option<String>,
    /// Whether the rendered artifact exists (`None`: the gateway is not there, or it could not be read).
    pub applied: Option<bool>,
}

/// Finds the Kubernetes gateways installed in the cluster and whether their artifacts for `flows` are
/// applied (named as `target` would have them rendered).
pub async fn detect(client: &kube::Client, flows: &[&Flow], target: &Target) -> Result<Vec<Detected>, kube::Error> {
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
    let classes = Api::<DynamicObject>::all_with(client.clone(), &classes).list(&ListParams::default()).await?.items;
    let mut out = Vec::new();
    for kind in GatewayKind::ALL {
        let Some(detection) = &driver(kind).detection else { continue };
        let evidence = match detection.evidence {
            Evidence::ArtifactCrd => {
                let crd = detection.artifact.crd_name();
                names.contains(&crd).then(|| format!("CustomResourceDefinition {crd}"))
            }
            Evidence::IngressClass(controller) => classes
                .iter()
                .find(|c| c.data["spec"]["controller"] == controller)
                .and_then(|c| c.metadata.name.as_ref())
                .map(|c| format!("IngressClass {c} ({controller})")),
        };
        let applied = match &evidence {
            None => None,
            Some(_) => {
                let resource = detection.artifact.api_resource();
                let (namespace, name) = detection.placement.object(flows, target);
                let found = Api::<DynamicObject>::namespaced_with(client.clone(), &namespace, &resource).get_opt(&name).await;
                match found {
                    Ok(object) => Some(object.is_some_and(|o| (detection.applied)(&o))),
                    Err(e) => {
                        tracing::warn!(gateway = kind.as_str(), "cannot read {} {namespace}/{name}: {e}", detection.artifact.kind);
                        None
                    }
                }
            }
        };
        out.push(Detected { kind, evidence, applied });
    }
    Ok(out)
}

/// [`Detection::applied`] for artifacts whose object is theirs by name alone.
fn exists(_: &DynamicObject) -> bool {
    true
}

impl Detection {
    /// A gateway found by the CustomResourceDefinition of its artifact's resource, applied when the
    /// object of that resource exists where the renderer puts it.
    pub(super) const fn crd(artifact: ResourceType, placement: Placement) -> Detection {
        Detection { evidence: Evidence::ArtifactCrd, artifact, placement, applied: exists }
    }
}
