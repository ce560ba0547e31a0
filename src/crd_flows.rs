//! Flows from `Flow` resources (`[server] flows_from = ["crd"]`): one watch on the resources feeds the
//! same validation and reload as the configuration file; each resource's status reports whether it was
//! applied (condition `Valid`, with the problems when not) and its flow's state.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use leannodes_config::crd::{Flow, FlowCondition, FlowResourceStatus};
use leannodes_config::file::FlowSpec;

use crate::admin::Admin;

/// The `Flow` resources seen in the cluster.
pub(crate) struct CrdFlows {
    client: kube::Client,
    /// By `namespace/name`: (namespace, object name, spec with its flow name filled in).
    specs: Mutex<BTreeMap<String, (String, String, FlowSpec)>>,
    /// Validation problems of resources that were not applied, by `namespace/name`.
    problems: Mutex<BTreeMap<String, Vec<String>>>,
}

impl CrdFlows {
    pub(crate) fn new(client: kube::Client) -> Arc<CrdFlows> {
        Arc::new(CrdFlows { client, specs: Mutex::default(), problems: Mutex::default() })
    }

    /// The flows to validate with the file's, with their keys.
    pub(crate) fn specs(&self) -> Vec<(String, FlowSpec)> {
        self.specs.lock().unwrap_or_else(PoisonError::into_inner).iter().map(|(k, (_, _, spec))| (k.clone(), spec.clone())).collect()
    }

    /// Records which resources were rejected, and why.
    pub(crate) fn set_problems(&self, problems: BTreeMap<String, Vec<String>>) {
        *self.problems.lock().unwrap_or_else(PoisonError::into_inner) = problems;
    }

    fn upsert(&self, flow: &Flow) {
        let namespace = flow.metadata.namespace.clone().unwrap_or_default();
        let name = flow.metadata.name.clone().unwrap_or_default();
        let mut spec = flow.spec.0.clone();
        if spec.name.is_empty() {
            spec.name = name.clone();
        }
        self.specs.lock().unwrap_or_else(PoisonError::into_inner).insert(format!("{namespace}/{name}"), (namespace, name, spec));
    }

    fn remove(&self, flow: &Flow) {
        let key = format!("{}/{}", flow.metadata.namespace.clone().unwrap_or_default(), flow.metadata.name.clone().unwrap_or_default());
        self.specs.lock().unwrap_or_else(PoisonError::into_inner).remove(&key);
    }

    /// Follows the resources; reloads after the initial list and after every change.
    pub(crate) async fn watch(self: Arc<Self>, admin: Arc<Admin>) {
        let api = Api::<Flow>::all(self.client.clone());
        let mut events = std::pin::pin!(watcher(api, watcher::Config::default()).default_backoff());
        let mut listing = false;
        while let Some(event) = events.next().await {
            let changed = match event {
                Ok(watcher::Event::Init) => {
                    listing = true;
                    self.specs.lock().unwrap_or_else(PoisonError::into_inner).clear();
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
                crate::serve::reload(&admin).await;
            }
        }
    }

    /// Keeps each resource's status current (only changes are written).
    pub(crate) async fn report_status(self: Arc<Self>, admin: Arc<Admin>) {
        let mut sent: BTreeMap<String, FlowResourceStatus> = BTreeMap::new();
        loop {
            let specs = self.specs.lock().unwrap_or_else(PoisonError::into_inner).clone();
            let problems = self.problems.lock().unwrap_or_else(PoisonError::into_inner).clone();
            for (key, (namespace, name, spec)) in &specs {
                let status = match problems.get(key) {
                    Some(errors) => FlowResourceStatus {
                        state: None,
                        last_wake: None,
                        last_error: errors.first().cloned(),
                        conditions: vec![FlowCondition {
                            type_: "Valid".into(),
                            status: "False".into(),
                            reason: "Invalid".into(),
                            message: errors.join("\n"),
                        }],
                    },
                    None => {
                        let flow = admin.controller.flow(&spec.name);
                        let status = flow.as_ref().map(|f| f.status());
                        let last_wake = status
                            .as_ref()
                            .and_then(|s| s.last_wake_ms)
                            .and_then(|ms| u64::try_from(ms).ok())
                            .map(|ms| humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_millis(ms)).to_string());
                        FlowResourceStatus {
                            state: status.as_ref().map(|s| s.state.as_str().to_string()),
                            last_wake,
                            last_error: status.and_then(|s| s.failure).map(|f| f.message),
                            conditions: vec![FlowCondition {
                                type_: "Valid".into(),
                                status: "True".into(),
                                reason: "Accepted".into(),
                                message: String::new(),
                            }],
                        }
                    }
                };
                if sent.get(key) != Some(&status) {
                    let api = Api::<Flow>::namespaced(self.client.clone(), namespace);
                    let patch = Patch::Merge(serde_json::json!({ "status": status }));
                    match api.patch_status(name, &PatchParams::default(), &patch).await {
                        Ok(_) => {
                            sent.insert(key.clone(), status);
                        }
                        Err(e) => tracing::warn!(flow = %key, "cannot update Flow status: {e}"),
                    }
                }
            }
            sent.retain(|k, _| specs.contains_key(k));
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}
