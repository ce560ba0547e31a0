//! Kubernetes objects as typed values: an object is its [`ResourceType`], its metadata and a serde body
//! of the gateway's own types, written out as a YAML stream whose documents may carry comments.

use std::collections::BTreeMap;

use kube::api::{ApiResource, GroupVersionKind};
use leannodes_config::GatewayKind;
use serde::Serialize;

use super::{RenderError, comment_lines};

/// A Kubernetes resource type: its API group, version, kind and plural.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceType {
    /// API group (`security.istio.io`).
    pub group: &'static str,
    /// API version (`v1`).
    pub version: &'static str,
    /// Kind (`AuthorizationPolicy`).
    pub kind: &'static str,
    /// Plural (`authorizationpolicies`).
    pub plural: &'static str,
}

impl ResourceType {
    /// `group/version`.
    pub fn api_version(&self) -> String {
        format!("{}/{}", self.group, self.version)
    }

    /// The name of its CustomResourceDefinition.
    pub fn crd_name(&self) -> String {
        format!("{}.{}", self.plural, self.group)
    }

    /// For the dynamic API client.
    pub(super) fn api_resource(&self) -> ApiResource {
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(self.group, self.version, self.kind), self.plural)
    }

    /// An object of this type in `namespace`, with `body` (`spec: …`, or top-level fields) after its
    /// metadata.
    pub(super) fn object<B: Serialize>(&self, namespace: &str, name: &str, body: B) -> Object<B> {
        Object {
            api_version: self.api_version(),
            kind: self.kind,
            metadata: Metadata { name: name.to_string(), namespace: namespace.to_string(), annotations: BTreeMap::new() },
            body,
        }
    }
}

/// A Kubernetes object.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Object<B> {
    pub(super) api_version: String,
    pub(super) kind: &'static str,
    pub(super) metadata: Metadata,
    #[serde(flatten)]
    pub(super) body: B,
}

/// An object's metadata.
#[derive(Debug, Serialize)]
pub(super) struct Metadata {
    pub(super) name: String,
    pub(super) namespace: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(super) annotations: BTreeMap<String, String>,
}

/// The body of most objects: `spec: …`.
#[derive(Debug, Serialize)]
pub(super) struct Spec<S> {
    pub(super) spec: S,
}

/// A YAML stream: documents separated by `---`, each headed by its comment lines.
#[derive(Debug)]
pub(super) struct YamlStream {
    kind: GatewayKind,
    out: String,
}

impl YamlStream {
    /// An empty stream for `kind`'s artifact.
    pub(super) fn new(kind: GatewayKind) -> YamlStream {
        YamlStream { kind, out: String::new() }
    }

    /// Appends `value`, after `comment` (each line written as a `# ` comment; empty: none).
    pub(super) fn doc(mut self, comment: &str, value: &impl Serialize) -> Result<YamlStream, RenderError> {
        let yaml = serde_norway::to_string(value).map_err(|source| RenderError::Yaml { kind: self.kind, source })?;
        if !self.out.is_empty() {
            self.out.push_str("---\n");
        }
        self.out.push_str(&comment_lines("#", comment));
        self.out.push_str(&yaml);
        Ok(self)
    }

    /// The text.
    pub(super) fn finish(self) -> String {
        self.out
    }
}
