//! Workloads: every workload the flows use (with the flows that use each, whether it runs, and
//! autoscaler conflicts), and with the Kubernetes driver the Deployments, StatefulSets and Jobs the
//! cluster has that no flow uses yet.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, ListParams};
use leannodes_control::Controller;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::routes;

use super::Registrar;
use crate::authz::{Permission, Rule};
use crate::extract::Authed;
use crate::state::Instance;

pub(super) fn routes(r: Registrar) -> Registrar {
    r.add(Rule::Global(Permission::FlowsRead), routes!(list))
}

/// One workload.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Workload {
    /// Identity (`deployment/shop/web`, `process/db`, `external/shop/payments`).
    id: String,
    /// `process`, `deployment`, `statefulset`, `job` or `external`.
    kind: String,
    /// The flows (and their node names) that use it.
    used_by: Vec<String>,
    /// Whether it runs now (for workloads the flows use).
    running: Option<bool>,
    /// Replicas wanted and ready (Kubernetes kinds, as the cluster reports them).
    replicas: Option<i32>,
    /// Ready replicas.
    ready_replicas: Option<i32>,
    /// Things to know: an HPA or a KEDA ScaledObject that also scales it, …
    warnings: Vec<String>,
}

/// Workloads in use and, with a cluster, the ones that could be.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Workloads {
    /// By identity.
    workloads: Vec<Workload>,
    /// Why the cluster could not be listed, when it could not.
    cluster_error: Option<String>,
}

/// Workloads the flows use and the ones the cluster has.
#[utoipa::path(get, path = "/api/v1/workloads", tag = "flows", responses((status = 200, body = Workloads)))]
async fn list(Authed(_, _): Authed, State(controller): State<Arc<Controller>>, State(instance): State<Arc<Instance>>) -> Json<Workloads> {
    let mut by_id: BTreeMap<String, Workload> = BTreeMap::new();
    for view in controller.views() {
        for node in view.nodes {
            let entry = by_id.entry(node.workload.clone()).or_insert_with(|| Workload {
                id: node.workload.clone(),
                kind: node.kind.to_string(),
                used_by: vec![],
                running: Some(node.running),
                replicas: None,
                ready_replicas: None,
                warnings: node.warnings.clone(),
            });
            entry.used_by.push(format!("{}/{}", view.name, node.name));
        }
    }
    let mut cluster_error = None;
    if let Some(client) = &instance.kube {
        match tokio::time::timeout(Duration::from_secs(5), cluster(client)).await {
            Ok(Ok(found)) => {
                for (id, kind, replicas, ready) in found {
                    let entry = by_id.entry(id.clone()).or_insert_with(|| Workload {
                        id,
                        kind: kind.to_string(),
                        used_by: vec![],
                        running: None,
                        replicas: None,
                        ready_replicas: None,
                        warnings: vec![],
                    });
                    entry.replicas = replicas;
                    entry.ready_replicas = ready;
                }
            }
            Ok(Err(e)) => cluster_error = Some(e.to_string()),
            Err(_) => cluster_error = Some("the cluster did not answer within 5s".into()),
        }
    }
    Json(Workloads { workloads: by_id.into_values().collect(), cluster_error })
}

type Found = Vec<(String, &'static str, Option<i32>, Option<i32>)>;

async fn cluster(client: &kube::Client) -> Result<Found, kube::Error> {
    let params = ListParams::default();
    let mut out = Vec::new();
    for d in Api::<Deployment>::all(client.clone()).list(&params).await?.items {
        let (ns, name) = (d.metadata.namespace.unwrap_or_default(), d.metadata.name.unwrap_or_default());
        let (spec, status) = (d.spec.and_then(|s| s.replicas), d.status.and_then(|s| s.ready_replicas));
        out.push((format!("deployment/{ns}/{name}"), "deployment", spec, Some(status.unwrap_or(0))));
    }
    for s in Api::<StatefulSet>::all(client.clone()).list(&params).await?.items {
        let (ns, name) = (s.metadata.namespace.unwrap_or_default(), s.metadata.name.unwrap_or_default());
        let (spec, status) = (s.spec.and_then(|s| s.replicas), s.status.and_then(|s| s.ready_replicas));
        out.push((format!("statefulset/{ns}/{name}"), "statefulset", spec, Some(status.unwrap_or(0))));
    }
    for j in Api::<Job>::all(client.clone()).list(&params).await?.items {
        let (ns, name) = (j.metadata.namespace.unwrap_or_default(), j.metadata.name.unwrap_or_default());
        out.push((format!("job/{ns}/{name}"), "job", None, None));
    }
    Ok(out)
}
