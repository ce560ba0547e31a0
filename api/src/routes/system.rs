//! Health, readiness, the instance's status, Prometheus metrics and the OpenAPI document.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use leannodes_control::{Controller, ReloadStatus, TrafficView};
use leannodes_store::Store;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::routes;

use super::Registrar;
use crate::authz::{Permission, Rule};
use crate::state::Instance;

pub(super) fn routes(r: Registrar) -> Registrar {
    r.add(Rule::Public, routes!(healthz))
        .add(Rule::Public, routes!(readyz))
        .add(Rule::Public, routes!(openapi_json))
        .add(Rule::Authenticated, routes!(status))
        .add(Rule::Global(Permission::FlowsRead), routes!(metrics))
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "system", responses((status = 200, description = "Alive", body = String, content_type = "text/plain")))]
async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: `503` once a graceful shutdown has begun.
#[utoipa::path(get, path = "/readyz", tag = "system", responses(
    (status = 200, description = "Ready", body = String, content_type = "text/plain"),
    (status = 503, description = "Shutting down", body = String, content_type = "text/plain"),
))]
async fn readyz(State(traffic): State<Arc<dyn TrafficView>>) -> Response {
    if traffic.shutting_down() { (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response() } else { "ready\n".into_response() }
}

/// The OpenAPI 3.1 document of this API.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "system", responses((status = 200, description = "The document", body = Object)))]
async fn openapi_json() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], crate::openapi_json()).into_response()
}

/// This replica within a group sharing a store.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ReplicaStatus {
    /// Replica id.
    id: String,
    /// Whether it holds the drain leadership.
    leader: bool,
}

/// The status of this instance.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Status {
    /// LeanNodes version.
    version: &'static str,
    /// The configuration file.
    config_path: String,
    /// When this process started (Unix milliseconds).
    started_ms: i64,
    /// Number of flows.
    flows: usize,
    /// Requests being handled now.
    in_flight: u64,
    /// Whether a graceful shutdown has begun.
    shutting_down: bool,
    /// The last configuration (re)load.
    #[schema(value_type = Object)]
    last_reload: ReloadStatus,
    /// This replica.
    replica: ReplicaStatus,
    /// Store backend (`sqlite`, `postgres`, `dynamodb`).
    store: &'static str,
    /// Platform driver (`process` or `kubernetes`).
    driver: &'static str,
    /// Whether a Kubernetes cluster is connected.
    cluster: bool,
    /// Authentication mode.
    auth_mode: &'static str,
}

/// Version, flows, reload result, replica and leadership, store and driver.
#[utoipa::path(get, path = "/api/v1/status", tag = "system", responses((status = 200, body = Status)))]
async fn status(
    State(instance): State<Arc<Instance>>,
    State(controller): State<Arc<Controller>>,
    State(traffic): State<Arc<dyn TrafficView>>,
    State(store): State<Arc<dyn Store>>,
) -> Json<Status> {
    Json(Status {
        version: env!("CARGO_PKG_VERSION"),
        config_path: instance.config_path.display().to_string(),
        started_ms: instance.started_ms,
        flows: controller.flow_names().len(),
        in_flight: traffic.in_flight(),
        shutting_down: traffic.shutting_down(),
        last_reload: instance.reloader.status(),
        replica: ReplicaStatus { id: controller.replica_id().to_string(), leader: controller.is_leader() },
        store: store.backend(),
        driver: match instance.driver {
            leannodes_config::DriverKind::Process => "process",
            leannodes_config::DriverKind::Kubernetes => "kubernetes",
        },
        cluster: instance.kube.is_some(),
        auth_mode: match instance.server.auth.mode {
            leannodes_config::AuthMode::Password => "password",
            leannodes_config::AuthMode::None => "none",
        },
    })
}

/// Prometheus metrics of the data plane and the control plane.
#[utoipa::path(get, path = "/metrics", tag = "system", responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
async fn metrics(
    State(traffic): State<Arc<dyn TrafficView>>,
    State(controller): State<Arc<Controller>>,
    State(instance): State<Arc<Instance>>,
    State(notifier): State<Arc<leannodes_notify::Notifier>>,
) -> Response {
    let mut out = String::with_capacity(16 * 1024);
    traffic.render_metrics(&mut out);
    controller.render_metrics(&mut out);
    instance.reloader.render_metrics(&mut out);
    notifier.render_metrics(&mut out);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
