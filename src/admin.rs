//! The admin listener: health, status, flows and operations, execution history, live events and
//! metrics. It binds loopback by default and has no authentication yet: do not expose it.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use futures::{Stream, StreamExt};
use leannodes_control::{Controller, ExecutionEvent, Trigger, WakeError};
use leannodes_proxy::ProxyState;
use leannodes_proxy::metrics::{self, Histogram};
use leannodes_store::Page;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The result of the last configuration (re)load.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ReloadStatus {
    /// Whether it was applied.
    pub(crate) ok: bool,
    /// Unix milliseconds.
    pub(crate) at_ms: i64,
    /// Problems, one per line (`PATH:LINE:COL: error: …`).
    pub(crate) errors: Vec<String>,
}

/// Everything the admin API reads.
pub(crate) struct Admin {
    pub(crate) controller: Arc<Controller>,
    pub(crate) proxy: Arc<ProxyState>,
    pub(crate) config_path: String,
    pub(crate) last_reload: Mutex<ReloadStatus>,
    pub(crate) started_ms: i64,
    /// `Flow` resources, when `flows_from` includes `"crd"`.
    pub(crate) crd: Option<Arc<crate::crd_flows::CrdFlows>>,
    /// Whether callouts allow hosts no flow serves (`[server] check_unmatched`).
    pub(crate) check_allows_unmatched: bool,
    /// The cluster, when the Kubernetes driver is on (gateway detection).
    pub(crate) kube: Option<kube::Client>,
    wake_durations: Mutex<BTreeMap<(String, String), Arc<Histogram>>>,
    /// Failed node wakes by (flow, node, reason).
    wake_failures: Mutex<BTreeMap<(String, String, String), u64>>,
}

impl Admin {
    pub(crate) fn new(
        controller: Arc<Controller>,
        proxy: Arc<ProxyState>,
        config_path: String,
        crd: Option<Arc<crate::crd_flows::CrdFlows>>,
        check_allows_unmatched: bool,
        kube: Option<kube::Client>,
    ) -> Arc<Admin> {
        let now = crate::unix_ms();
        let admin = Arc::new(Admin {
            controller,
            proxy,
            config_path,
            last_reload: Mutex::new(ReloadStatus { ok: true, at_ms: now, errors: vec![] }),
            started_ms: now,
            crd,
            check_allows_unmatched,
            kube,
            wake_durations: Mutex::new(BTreeMap::new()),
            wake_failures: Mutex::new(BTreeMap::new()),
        });
        tokio::spawn(record_wake_metrics(Arc::downgrade(&admin)));
        admin
    }

    pub(crate) fn set_reload(&self, status: ReloadStatus) {
        *self.last_reload.lock().unwrap_or_else(PoisonError::into_inner) = status;
    }

    fn observe_wake(&self, flow: &str, node: &str, ms: u64) {
        let histogram = self
            .wake_durations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((flow.to_string(), node.to_string()))
            .or_default()
            .clone();
        histogram.observe(Duration::from_millis(ms));
    }
}

/// Feeds the wake-duration histograms (node = `*` for the whole execution) and the failure counters from
/// the event bus.
async fn record_wake_metrics(admin: std::sync::Weak<Admin>) {
    let Some(events) = admin.upgrade().map(|a| a.controller.events().subscribe()) else { return };
    let mut events = tokio_stream::wrappers::BroadcastStream::new(events);
    while let Some(event) = events.next().await {
        let Some(admin) = admin.upgrade() else { return };
        match event {
            Ok(ExecutionEvent::NodeReady { flow, node, elapsed_ms, .. }) => admin.observe_wake(&flow, &node, elapsed_ms),
            Ok(ExecutionEvent::ExecutionFinished { flow, elapsed_ms, outcome, .. }) if outcome == "succeeded" => {
                admin.observe_wake(&flow, "*", elapsed_ms)
            }
            Ok(ExecutionEvent::NodeFailed { flow, node, label, .. }) => {
                *admin.wake_failures.lock().unwrap_or_else(PoisonError::into_inner).entry((flow, node, label)).or_default() += 1;
            }
            _ => {}
        }
    }
}

/// The routes of `[server] check_listen`: forward-auth only.
pub(crate) fn check_router(admin: Arc<Admin>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/check", any(crate::callout::check))
        .route("/check/{*rest}", any(crate::callout::check))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "this listener only serves /check") })
        .with_state(admin)
}

/// The admin routes.
pub(crate) fn router(admin: Arc<Admin>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/api/v1/status", get(status))
        .route("/api/v1/flows", get(flows))
        .route("/api/v1/flows/{name}/{action}", post(flow_action))
        .route("/api/v1/executions", get(executions))
        .route("/api/v1/events", get(events))
        .route("/metrics", get(prometheus))
        .route("/api/v1/gateways", get(gateways))
        .route("/api/v1/gateways/{kind}/artifacts", get(gateway_artifacts))
        .route("/check", any(crate::callout::check))
        .route("/check/{*rest}", any(crate::callout::check))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint") })
        .with_state(admin)
}

/// An API error with a stable JSON shape: `{"error": code, "message": text}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into() }
    }
}

impl From<WakeError> for ApiError {
    fn from(e: WakeError) -> ApiError {
        match e {
            WakeError::UnknownFlow(_) => ApiError::new(StatusCode::NOT_FOUND, "unknown_flow", e.to_string()),
            WakeError::Disabled(_) => ApiError::new(StatusCode::CONFLICT, "flow_disabled", e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.code, "message": self.message }))).into_response()
    }
}

async fn readyz(State(admin): State<Arc<Admin>>) -> Response {
    if *admin.proxy.shutdown.borrow() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response()
    } else {
        "ready\n".into_response()
    }
}

async fn status(State(admin): State<Arc<Admin>>) -> Json<serde_json::Value> {
    let reload = admin.last_reload.lock().unwrap_or_else(PoisonError::into_inner).clone();
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "config_path": admin.config_path,
        "started_ms": admin.started_ms,
        "flows": admin.controller.flow_names().len(),
        "in_flight": admin.proxy.in_flight(),
        "shutting_down": *admin.proxy.shutdown.borrow(),
        "last_reload": reload,
        "replica": { "id": admin.controller.replica_id(), "leader": admin.controller.is_leader() },
    }))
}

async fn flows(State(admin): State<Arc<Admin>>) -> Json<serde_json::Value> {
    let routes = admin.proxy.routes.load();
    let now = crate::unix_ms();
    let flows: Vec<serde_json::Value> = admin
        .controller
        .views()
        .into_iter()
        .map(|view| {
            let held = routes.flow(&view.name).map_or(0, |r| r.metrics.held());
            let last_activity_ms = now - i64::try_from(view.idle_ms).unwrap_or(i64::MAX);
            let mut value = serde_json::to_value(&view).unwrap_or_default();
            if let Some(map) = value.as_object_mut() {
                map.insert("held".into(), held.into());
                map.insert("last_activity_ms".into(), last_activity_ms.into());
            }
            value
        })
        .collect();
    Json(json!({ "flows": flows }))
}

async fn flow_action(
    State(admin): State<Arc<Admin>>,
    Path((name, action)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let c = &admin.controller;
    match action.as_str() {
        "warm" => {
            c.wake(&name, Trigger::Manual)?;
        }
        "drain" => c.drain(&name).await?,
        "pin" => c.set_pinned(&name, true).await?,
        "unpin" => c.set_pinned(&name, false).await?,
        "disable" => c.set_disabled(&name, true).await?,
        "enable" => c.set_disabled(&name, false).await?,
        other => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_action",
                format!("unknown action `{other}`; use warm, drain, pin, unpin, disable or enable"),
            ));
        }
    }
    let flow = c.flow(&name).ok_or_else(|| ApiError::from(WakeError::UnknownFlow(name.clone())))?;
    Ok(Json(json!({ "flow": name, "action": action, "state": flow.state(), "pinned": flow.is_pinned(), "disabled": flow.is_disabled() })))
}

#[derive(Debug, Deserialize)]
struct DetectQuery {
    namespace: Option<String>,
    leannodes_namespace: Option<String>,
}

/// `GET /api/v1/gateways`: the gateways LeanNodes renders for and their limits; with the Kubernetes
/// driver, which of them the cluster has and whether their artifact is applied.
async fn gateways(State(admin): State<Arc<Admin>>, Query(q): Query<DetectQuery>) -> Json<serde_json::Value> {
    use crate::gateways::{Kind, Target};
    let kinds: Vec<_> = Kind::ALL
        .iter()
        .map(|k| json!({ "kind": k.as_str(), "kubernetes": k.is_kubernetes(), "max_hold_s": k.cap().map(|c| c.as_secs()) }))
        .collect();
    let detected = match &admin.kube {
        None => json!(null),
        Some(client) => {
            let specs: Vec<_> =
                admin.controller.flow_names().iter().filter_map(|n| admin.controller.flow(n)).map(|f| f.spec.clone()).collect();
            let flows: Vec<&leannodes_config::Flow> = specs.iter().map(|f| &**f).collect();
            let defaults = Target::default();
            let target = Target {
                namespace: q.namespace.unwrap_or(defaults.namespace),
                leannodes_namespace: q.leannodes_namespace.unwrap_or(defaults.leannodes_namespace),
                ..Target::default()
            };
            match crate::gateways::detect(client, &flows, &target).await {
                Ok(found) => json!(found),
                Err(e) => json!({ "error": e.to_string() }),
            }
        }
    };
    Json(json!({ "gateways": kinds, "detected": detected }))
}

#[derive(Debug, Deserialize)]
struct ArtifactQuery {
    flow: Option<String>,
    namespace: Option<String>,
    leannodes_namespace: Option<String>,
    check_url: Option<String>,
    grpc: Option<String>,
}

/// `GET /api/v1/gateways/{kind}/artifacts`: the artifact `leannodes gateway render` prints, for the
/// flows being served now.
async fn gateway_artifacts(
    State(admin): State<Arc<Admin>>,
    Path(kind): Path<String>,
    Query(q): Query<ArtifactQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    use crate::gateways::{self, Kind, RenderError, Target};
    let kind = Kind::parse(&kind)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "unknown_gateway", RenderError::UnknownKind(kind.clone()).to_string()))?;
    let flows: Vec<_> = admin.controller.flow_names().iter().filter_map(|n| admin.controller.flow(n)).map(|f| f.spec.clone()).collect();
    let selected =
        gateways::select(&flows, q.flow.as_deref()).map_err(|e| ApiError::new(StatusCode::NOT_FOUND, "unknown_flow", e.to_string()))?;
    let defaults = Target::default();
    let target = Target {
        check_url: q.check_url.unwrap_or(defaults.check_url),
        grpc: q.grpc.unwrap_or(defaults.grpc),
        namespace: q.namespace.unwrap_or(defaults.namespace),
        leannodes_namespace: q.leannodes_namespace.unwrap_or(defaults.leannodes_namespace),
    };
    let artifact = gateways::render(kind, &selected, &target)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "gateway_cannot_hold", e.to_string()))?;
    let files: Vec<_> = artifact.files.iter().map(|f| json!({ "name": f.name, "content": f.content })).collect();
    Ok(Json(json!({
        "kind": artifact.kind.as_str(),
        "kubernetes": artifact.kind.is_kubernetes(),
        "timeout_s": artifact.timeout.as_secs(),
        "files": files,
    })))
}

#[derive(Debug, Deserialize)]
struct ExecutionQuery {
    flow: Option<String>,
    limit: Option<u32>,
    after: Option<String>,
}

async fn executions(State(admin): State<Arc<Admin>>, Query(q): Query<ExecutionQuery>) -> Result<Json<serde_json::Value>, ApiError> {
    let page = Page { after: q.after, limit: q.limit.unwrap_or(50).clamp(1, 500) };
    let listing = admin
        .controller
        .executions(q.flow.as_deref(), &page)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "store_error", e.to_string()))?;
    Ok(Json(json!({ "executions": listing.items, "next": listing.next })))
}

async fn events(State(admin): State<Arc<Admin>>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = tokio_stream::wrappers::BroadcastStream::new(admin.controller.events().subscribe()).filter_map(|event| async move {
        let event = event.ok()?;
        let kind = serde_json::to_value(&event).ok()?.get("type")?.as_str()?.to_string();
        Some(Ok(Event::default().event(kind).json_data(&event).ok()?))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

async fn prometheus(State(admin): State<Arc<Admin>>) -> Response {
    let routes = admin.proxy.routes.load();
    let mut out = String::new();
    metrics::render(&mut out, routes.routes().map(|r| (r.flow.name(), &*r.metrics)), &admin.proxy.unmatched);
    out.push_str("# HELP leannodes_wake_duration_seconds Time from a node's wake request to ready (node=\"*\": the whole execution).\n# TYPE leannodes_wake_duration_seconds histogram\n");
    for ((flow, node), h) in admin.wake_durations.lock().unwrap_or_else(PoisonError::into_inner).iter() {
        h.render(
            &mut out,
            "leannodes_wake_duration_seconds",
            &format!("flow=\"{}\",node=\"{}\"", metrics::escape(flow), metrics::escape(node)),
        );
    }
    out.push_str("# HELP leannodes_wake_failures_total Node wakes that failed, by flow, node and reason.\n# TYPE leannodes_wake_failures_total counter\n");
    for ((flow, node, reason), n) in admin.wake_failures.lock().unwrap_or_else(PoisonError::into_inner).iter() {
        let (flow, node, reason) = (metrics::escape(flow), metrics::escape(node), metrics::escape(reason));
        let _ = writeln!(out, "leannodes_wake_failures_total{{flow=\"{flow}\",node=\"{node}\",reason=\"{reason}\"}} {n}");
    }
    out.push_str(
        "# HELP leannodes_flow_state Flow state: 0 asleep, 1 waking, 2 awake, 3 draining, 4 failed.\n# TYPE leannodes_flow_state gauge\n",
    );
    for view in admin.controller.views() {
        let _ = writeln!(out, "leannodes_flow_state{{flow=\"{}\"}} {}", metrics::escape(&view.name), view.state.gauge_value());
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
