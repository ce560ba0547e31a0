//! `Flow` resources (`leannodes.io/v1alpha1`) in the cluster, for `[server] flows_from = ["crd"]`: one
//! watch keeps the current set (with each object's namespace and creation time, which the tenancy rules
//! and conflict resolution need) and signals every change; status is written back per resource. What
//! the resources mean (validation, tenancy, reload) belongs to the control plane.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use leannodes_config::crd::{Flow, FlowResourceStatus};
use leannodes_config::file::FlowSpec;
use parking_lot::Mutex;
use tokio::sync::watch;

/// One `Flow` resource as last seen.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceFlow {
    /// Namespace of the object.
    pub namespace: String,
    /// Object name.
    pub name: String,
    /// Creation time (RFC 3339; sorts in time order), when the server set it.
    pub created: Option<String>,
    /// The spec, with the flow name defaulted to the object's name.
    pub spec: FlowSpec,
}

impl ResourceFlow {
    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// The `Flow` resources of a cluster.
pub struct FlowResources {
    client: kube::Client,
    flows: Mutex<BTreeMap<String, ResourceFlow>>,
    changed: watch::Sender<u64>,
}

impl std::fmt::Debug for FlowResources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowResources").field("flows", &self.flows.lock().len()).finish()
    }
}

impl FlowResources {
    /// Resources of this cluster; nothing is read until [`FlowResources::watch`] runs.
    pub fn new(client: kube::Client) -> Arc<FlowResources> {
        Arc::new(FlowResources { client, flows: Mutex::default(), changed: watch::channel(0).0 })
    }

    /// The resources seen, by `namespace/name`.
    pub fn flows(&self) -> Vec<ResourceFlow> {
        self.flows.lock().values().cloned().collect()
    }

    /// A counter that grows after the initial listing and after every change.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn upsert(&self, flow: &Flow) {
        let namespace = flow.metadata.namespace.clone().unwrap_or_default();
        let name = flow.metadata.name.clone().unwrap_or_default();
        let mut spec = flow.spec.0.clone();
        if spec.name.is_empty() {
            spec.name = name.clone();
        }
        let created = flow.metadata.creation_timestamp.as_ref().map(|t| t.0.to_string());
        let entry = ResourceFlow { namespace, name, created, spec };
        self.flows.lock().insert(entry.key(), entry);
    }

    fn remove(&self, flow: &Flow) {
        let key = format!("{}/{}", flow.metadata.namespace.clone().unwrap_or_default(), flow.metadata.name.clone().unwrap_or_default());
        self.flows.lock().remove(&key);
    }

    /// Follows the resources until the task is dropped; signals after the initial listing and after
    /// every change.
    pub async fn watch(self: Arc<Self>) {
        let api = Api::<Flow>::all(self.client.clone());
        let mut events = std::pin::pin!(watcher(api, watcher::Config::default()).default_backoff());
        let mut listing = false;
        while let Some(event) = events.next().await {
            let changed = match event {
                Ok(watcher::Event::Init) => {
                    listing = true;
                    self.flows.lock().clear();
                    false
                }
                Ok(watcher::Event::InitApply(flow)) => {
                    self.upsert(&flow);
                    false
                }
                Ok(watcher::Event::InitDone) => {
                    listing = false;
                    true
                }
                Ok(watcher::Event::Apply(flow)) => {
                    self.upsert(&flow);
                    !listing
                }
                Ok(watcher::Event::Delete(flow)) => {
                    self.remove(&flow);
                    !listing
                }
                Err(e) => {
                    tracing::warn!("watching Flow resources: {e}");
                    false
                }
            };
            if changed {
                self.changed.send_modify(|n| *n += 1);
            }
        }
    }

    /// Writes a resource's status (the `status` subresource).
    pub async fn patch_status(&self, namespace: &str, name: &str, status: &FlowResourceStatus) -> Result<(), kube::Error> {
        let api = Api::<Flow>::namespaced(self.client.clone(), namespace);
        let patch = Patch::Merge(serde_json::json!({ "status": status }));
        api.patch_status(name, &PatchParams::default(), &patch).await.map(|_| ())
    }
}
