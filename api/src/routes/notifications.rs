//! Notification routes: those of the configuration file and those made here (kept in the store), with
//! their delivery counters and last result, never a URL, header value or key (write-only secrets); create,
//! change and delete the API's routes; and "Send Test".

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use leannodes_config::file::{NoticeKind, NotificationKind, NotificationSpec, WebhookFormat};
use leannodes_control::Controller;
use leannodes_notify::{Notifier, Source};
use leannodes_store::{NotificationRecord, Store};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;

use super::{Registrar, word};
use crate::audit::Audit;
use crate::authz::{Permission, Rule};
use crate::error::ApiError;
use crate::extract::{Authed, Body};

pub(super) fn routes(r: Registrar) -> Registrar {
    let manage = Rule::Global(Permission::NotificationsManage);
    r.add(manage, routes!(list, create)).add(manage, routes!(update, remove)).add(manage, routes!(send_test))
}

/// A route to create, or its new state (`PUT`): as `[[notification]]` writes it. Secrets are taken as
/// written (never `env:` or `file:` references). On `PUT`, a secret left out keeps its stored value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RouteInput {
    /// Name (on `POST`; on `PUT` the path's).
    #[serde(default)]
    name: Option<String>,
    /// `slack`, `teams` or `webhook`.
    #[schema(value_type = String)]
    kind: NotificationKind,
    /// For webhooks: `generic`, `pagerduty`, `opsgenie`, … (default `generic`).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    format: Option<WebhookFormat>,
    /// Where to POST (write-only).
    #[serde(default)]
    url: Option<String>,
    /// Extra headers (values write-only); on `PUT`, left out keeps the stored ones.
    #[serde(default)]
    headers: Option<BTreeMap<String, String>>,
    /// PagerDuty's routing key (write-only).
    #[serde(default)]
    routing_key: Option<String>,
    /// Events it receives (default all).
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    events: Option<Vec<NoticeKind>>,
    /// Flows it receives events of (default all).
    #[serde(default)]
    flows: Option<Vec<String>>,
}

/// One problem of a route.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RouteProblem {
    /// JSON pointer into the route (`/url`, `/headers/Authorization`).
    path: String,
    /// What is wrong.
    message: String,
    /// How to fix it.
    help: String,
}

/// `422 invalid_route` with every problem; the messages never repeat a secret.
fn check(spec: &NotificationSpec) -> Result<(), ApiError> {
    leannodes_config::notification_from_api(spec).map(|_| ()).map_err(|problems| {
        let list: Vec<RouteProblem> = problems
            .iter()
            .map(|d| RouteProblem {
                path: if d.pointer.is_empty() { "/".into() } else { d.pointer.clone() },
                message: d.message.clone(),
                help: d.help.clone(),
            })
            .collect();
        let summary: Vec<String> = list.iter().map(|p| format!("{}: {}", p.path, p.message)).collect();
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_route", format!("the route is not valid: {}", summary.join("; ")))
            .with_details(serde_json::json!({ "fields": list }))
    })
}

/// What the audit log keeps of a route: everything but its secrets.
fn summary(spec: &NotificationSpec) -> serde_json::Value {
    serde_json::json!({
        "kind": spec.kind,
        "format": spec.format,
        "host": leannodes_notify::host_of(&spec.url),
        "headers": spec.headers.keys().collect::<Vec<_>>(),
        "routing_key": spec.routing_key.as_ref().map(|_| "set"),
        "events": spec.events,
        "flows": spec.flows,
    })
}

/// Refuses names the configuration file holds: those routes are edited in the file.
fn not_in_file(notifier: &Notifier, name: &str) -> Result<(), ApiError> {
    if notifier.source_of(name) == Some(Source::File) {
        return Err(ApiError::conflict(
            "route_in_file",
            format!("route `{name}` is defined in the configuration file ([[notification]]); change it there"),
        ));
    }
    Ok(())
}

/// Creates a route (`201`); `409` when the name is taken.
#[utoipa::path(post, path = "/api/v1/notifications", tag = "notifications", request_body = RouteInput,
    responses((status = 201, body = RouteView), (status = 422, description = "The route is not valid")))]
async fn create(
    State(notifier): State<Arc<Notifier>>,
    State(store): State<Arc<dyn Store>>,
    State(audit): State<Audit>,
    Authed(_, caller): Authed,
    Body(input): Body<RouteInput>,
) -> Result<(StatusCode, Json<RouteView>), ApiError> {
    let name = input.name.clone().ok_or_else(|| ApiError::invalid_field("/name", "give the route a name"))?;
    not_in_file(&notifier, &name)?;
    let spec = NotificationSpec {
        name: name.clone(),
        kind: input.kind,
        format: input.format,
        url: input.url.unwrap_or_default(),
        headers: input.headers.unwrap_or_default(),
        routing_key: input.routing_key,
        events: input.events,
        flows: input.flows,
    };
    check(&spec)?;
    let record = NotificationRecord { spec, updated_by: caller.actor() };
    store.records::<NotificationRecord>().create(&record).await.map_err(|e| match e {
        leannodes_store::StoreError::Conflict { .. } => {
            ApiError::conflict("route_exists", format!("a route named `{name}` exists; PUT changes it"))
        }
        e => e.into(),
    })?;
    notifier.load_api_routes(&*store).await?;
    audit.by(&caller, "notification.create", format!("notification/{name}"), serde_json::json!({ "after": summary(&record.spec) })).await;
    Ok((StatusCode::CREATED, Json(view(&notifier, &name)?)))
}

/// Changes a route made through the API; secrets left out keep their stored values.
#[utoipa::path(put, path = "/api/v1/notifications/{name}", tag = "notifications", request_body = RouteInput,
    params(("name" = String, Path, description = "Route name")), responses((status = 200, body = RouteView)))]
async fn update(
    State(notifier): State<Arc<Notifier>>,
    State(store): State<Arc<dyn Store>>,
    State(audit): State<Audit>,
    Authed(_, caller): Authed,
    Path(name): Path<String>,
    Body(input): Body<RouteInput>,
) -> Result<Json<RouteView>, ApiError> {
    not_in_file(&notifier, &name)?;
    if input.name.as_ref().is_some_and(|n| *n != name) {
        return Err(ApiError::invalid_field("/name", format!("the route is `{name}`; a route cannot be renamed (create another)")));
    }
    let records = store.records::<NotificationRecord>();
    let stored =
        records.get(&name).await?.ok_or_else(|| ApiError::not_found("unknown_route", format!("no notification route `{name}`")))?;
    let before = &stored.value.spec;
    let spec = NotificationSpec {
        name: name.clone(),
        kind: input.kind,
        format: input.format,
        url: input.url.unwrap_or_else(|| before.url.clone()),
        headers: input.headers.unwrap_or_else(|| before.headers.clone()),
        routing_key: input.routing_key.or_else(|| before.routing_key.clone()),
        events: input.events,
        flows: input.flows,
    };
    check(&spec)?;
    let detail = serde_json::json!({ "before": summary(before), "after": summary(&spec) });
    records.update(&NotificationRecord { spec, updated_by: caller.actor() }, stored.version).await?;
    notifier.load_api_routes(&*store).await?;
    audit.by(&caller, "notification.update", format!("notification/{name}"), detail).await;
    Ok(Json(view(&notifier, &name)?))
}

/// Deletes a route made through the API.
#[utoipa::path(delete, path = "/api/v1/notifications/{name}", tag = "notifications",
    params(("name" = String, Path, description = "Route name")), responses((status = 204)))]
async fn remove(
    State(notifier): State<Arc<Notifier>>,
    State(store): State<Arc<dyn Store>>,
    State(audit): State<Audit>,
    Authed(_, caller): Authed,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    not_in_file(&notifier, &name)?;
    let records = store.records::<NotificationRecord>();
    let stored =
        records.get(&name).await?.ok_or_else(|| ApiError::not_found("unknown_route", format!("no notification route `{name}`")))?;
    records.delete(&name, Some(stored.version)).await?;
    notifier.load_api_routes(&*store).await?;
    audit
        .by(&caller, "notification.delete", format!("notification/{name}"), serde_json::json!({ "before": summary(&stored.value.spec) }))
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// The route as listed.
fn view(notifier: &Notifier, name: &str) -> Result<RouteView, ApiError> {
    notifier
        .routes()
        .into_iter()
        .find(|r| r.name == name)
        .map(RouteView::from)
        .ok_or_else(|| ApiError::internal(format!("route `{name}` was saved but does not load; see the log")))
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
    /// `file` (`[[notification]]`, read-only here) or `api` (made through this API).
    source: String,
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

impl From<leannodes_notify::RouteView> for RouteView {
    fn from(r: leannodes_notify::RouteView) -> RouteView {
        RouteView {
            name: r.name,
            source: word(&r.source),
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
        }
    }
}

/// The routes.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RouteList {
    /// From `[[notification]]` (in file order), then those made through the API.
    routes: Vec<RouteView>,
    /// Every event a route may filter on.
    events: Vec<String>,
}

/// Notification routes with their delivery counters and last result.
#[utoipa::path(get, path = "/api/v1/notifications", tag = "notifications", responses((status = 200, body = RouteList)))]
async fn list(State(notifier): State<Arc<Notifier>>) -> Json<RouteList> {
    let routes = notifier.routes().into_iter().map(RouteView::from).collect();
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
