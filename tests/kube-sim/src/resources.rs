//! The resources the simulator serves.

/// One API resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource {
    /// API group (`""` for core).
    pub group: &'static str,
    /// Version.
    pub version: &'static str,
    /// Plural name in URLs.
    pub plural: &'static str,
    /// Kind.
    pub kind: &'static str,
    /// Namespaced or cluster-wide.
    pub namespaced: bool,
    /// Has a `/scale` subresource.
    pub scale: bool,
    /// Has a `/status` subresource.
    pub status: bool,
}

impl Resource {
    /// `apiVersion` of its objects.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.to_string() } else { format!("{}/{}", self.group, self.version) }
    }

    /// Stable key: `group/version/plural`.
    pub fn key(&self) -> String {
        format!("{}/{}/{}", self.group, self.version, self.plural)
    }
}

const fn r(
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    scale: bool,
    status: bool,
) -> Resource {
    Resource { group, version, plural, kind, namespaced, scale, status }
}

/// Everything served.
pub const RESOURCES: &[Resource] = &[
    r("", "v1", "namespaces", "Namespace", false, false, true),
    r("", "v1", "pods", "Pod", true, false, true),
    r("", "v1", "services", "Service", true, false, true),
    r("", "v1", "events", "Event", true, false, false),
    r("apps", "v1", "deployments", "Deployment", true, true, true),
    r("apps", "v1", "statefulsets", "StatefulSet", true, true, true),
    r("batch", "v1", "jobs", "Job", true, false, true),
    r("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", true, false, false),
    r("coordination.k8s.io", "v1", "leases", "Lease", true, false, false),
    r("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", true, false, true),
    r("leannodes.io", "v1alpha1", "flows", "Flow", true, false, true),
    r("keda.sh", "v1alpha1", "scaledobjects", "ScaledObject", true, false, true),
    r("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", false, false, true),
    r("networking.k8s.io", "v1", "ingressclasses", "IngressClass", false, false, false),
    r("networking.k8s.io", "v1", "ingresses", "Ingress", true, false, true),
    // Gateways' resources, stored as they are (callout-mode detection reads them).
    r("security.istio.io", "v1", "authorizationpolicies", "AuthorizationPolicy", true, false, true),
    r("gateway.envoyproxy.io", "v1alpha1", "securitypolicies", "SecurityPolicy", true, false, true),
    r("projectcontour.io", "v1alpha1", "extensionservices", "ExtensionService", true, false, true),
    r("getambassador.io", "v3alpha1", "authservices", "AuthService", true, false, false),
    r("gateway.kgateway.dev", "v1alpha1", "gatewayextensions", "GatewayExtension", true, false, true),
    r("traefik.io", "v1alpha1", "middlewares", "Middleware", true, false, false),
    r("apisix.apache.org", "v2", "apisixpluginconfigs", "ApisixPluginConfig", true, false, true),
    r("configuration.konghq.com", "v1", "kongplugins", "KongPlugin", true, false, false),
];

/// The resource served at `group/version/plural`.
pub(crate) fn find(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
    RESOURCES.iter().find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The resource of an object's `apiVersion` and `kind`.
pub(crate) fn of_kind(api_version: &str, kind: &str) -> Option<&'static Resource> {
    RESOURCES.iter().find(|r| r.api_version() == api_version && r.kind == kind)
}
