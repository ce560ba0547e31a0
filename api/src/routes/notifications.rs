//! Notification routes: the configured routes with their delivery counters and last result (never a
//! URL, header value or key: those are write-only secrets), and "Send Test".

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use leannodes_control::Controller;
use leannodes_notify::Notifier;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::routes;

use super::Registrar;
use crate::audit::Audit;
use crate::authz::{Permission, Rule};
use crate::error::ApiError;
use crate::extract::Authed;

pub(super) fn routes(r: Registrar) -> Registrar {
    let manage = Rule::Global(Permission::NotificationsManage);
    r.add(manage, routes!(list)).add(manage, routes!(send_test))
}

/// How one delivery went.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeliveryView {
    /// The event (`wake_failed`, …, `test`).
    event: String,
    /// Its flow.
    flow: Option<String>,
    /// When the delivery ended (Unix milliseconds).
    at_ms: i64,
    /// Whether the endpoint accepted it.
    ok: bool,
    /// The endpoint's last HTTP status, if it answered.
    status: Option<u16>,
    /// Why it failed.
    error: Option<String>,
    /// Attempts made.
    attempts: u32,
    /// From the first attempt to the end (milliseconds).
    took_ms: u64,
}

impl From<leannodes_notify::Delivery> for DeliveryView {
    fn from(d: leannodes_notify::Delivery) -> DeliveryView {
        DeliveryView {
            event: d.event.as_str().into(),
            flow: d.flow,
            at_ms: d.at_ms,
            ok: d.ok,
            status: d.status,
            error: d.error,
            attempts: d.attempts,
            took_ms: d.took_ms,
        }
    }
}

/// One route.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RouteView {
    /// Name.
    name: String,
    /// `slack`, `teams` or `webhook`.
    kind: String,
    /// The webhook payload shape (`generic`, `pagerduty`, …).
    format: String,
    /// The endpoint's host; the URL is a secret and never shown.
    host: String,
    /// Names of the extra headers; their values are secrets.
    headers: Vec<String>,
    /// Events it receives; empty: all.
    events: Vec<String>,
    /// Flows it receives events of; empty: all.
    flows: Vec<String>,
    /// Notices delivered.
    delivered: u64,
    /// Notices given up on.
    failed: u64,
    /// Notices dropped because its queue was full.
    dropped: u64,
    /// Notices waiting now.
    queued: u64,
    /// The last delivery.
    last: Option<DeliveryView>,
}

/// The routes.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RouteList {
    /// From `[[notification]]`, in file order.
    routes: Vec<RouteView>,
    /// Every event a route may filter on.
    events: Vec<String>,
}

/// The word serde writes for a value.
fn word<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

/// Notification routes with their delivery counters and last result.
#[utoipa::path(get, path = "/api/v1/notifications", tag = "notifications", responses((status = 200, body = RouteList)))]
async fn list(State(notifier): State<Arc<Notifier>>) -> Json<RouteList> {
    let routes = notifier
        .routes()
        .into_iter()
        .map(|r| RouteView {
            name: r.name,
            kind: word(&r.kind),
            format: word(&r.format),
            host: r.host,
            headers: r.headers,
            events: r.events.iter().map(|e| e.as_str().to_string()).collect(),
            flows: r.flows,
            delivered: r.status.delivered,
            failed: r.status.failed,
            dropped: r.status.dropped,
            queued: r.status.queued,
            last: r.status.last.map(DeliveryView::from),
        })
        .collect();
    let events = leannodes_control::NoticeKind::ALL
        .iter()
        .filter(|k| **k != leannodes_control::NoticeKind::Test)
        .map(|k| k.as_str().to_string())
        .collect();
    Json(RouteList { routes, events })
}

/// Send Test: posts a `test` notice to the route now (one attempt, whatever its filters) and tells
/// how it went. A failed delivery is still `200`: the answer says why.
#[utoipa::path(post, path = "/api/v1/notifications/{name}/test", tag = "notifications",
    params(("name" = String, Path, description = "Route name")), responses((status = 200, body = DeliveryView)))]
async fn send_test(
    State(notifier): State<Arc<Notifier>>,
    State(controller): State<Arc<Controller>>,
    State(audit): State<Audit>,
    Authed(_, caller): Authed,
    Path(name): Path<String>,
) -> Result<Json<DeliveryView>, ApiError> {
    let delivery = notifier
        .send_test(&name, controller.replica_id())
        .await
        .ok_or_else(|| ApiError::not_found("unknown_route", format!("no notification route `{name}`")))?;
    audit
        .by(
            &caller,
            "notification.test",
            format!("notification/{name}"),
            serde_json::json!({ "ok": delivery.ok, "status": delivery.status }),
        )
        .await;
    Ok(Json(delivery.into()))
}
