//! Flows: the inventory (filtered by what the caller may read), one flow in detail, the operations
//! (warm, drain, pin, unpin, disable, enable — one route each), and execution history.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use leannodes_config::{Flow, Probe, Upstream, WorkloadSpec};
use leannodes_control::{Controller, FlowView, TrafficView, Trigger};
use leannodes_store::ExecutionRecord;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

use super::{Registrar, word};
use crate::audit::Audit;
use crate::authz::{Permission, Principal, Rule};
use crate::error::ApiError;
use crate::extract::{Authed, Paging, Path, Query};

pub(super) fn routes(r: Registrar) -> Registrar {
    let operate = Rule::Flow(Permission::FlowsOperate);
    r.add(Rule::Authenticated, routes!(list))
        .add(Rule::Flow(Permission::FlowsRead), routes!(get_flow))
        .add(operate, routes!(warm))
        .add(operate, routes!(drain))
        .add(operate, routes!(pin))
        .add(operate, routes!(unpin))
        .add(operate, routes!(disable))
        .add(operate, routes!(enable))
        .add(Rule::Flow(Permission::FlowsRead), routes!(executions))
        .add(Rule::Flow(Permission::FlowsRead), routes!(explain))
        .add(Rule::Authenticated, routes!(execution))
}

/// A node of a flow, as the list shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct NodeSummary {
    /// Name.
    name: String,
    /// `process`, `deployment`, `statefulset`, `job` or `external`.
    kind: String,
    /// Workload identity (`deployment/shop/web`, `process/db`).
    workload: String,
    /// `asleep`, `pending`, `starting`, `ready`, `failed`, `stopping` or `kept`.
    #[schema(value_type = String)]
    state: leannodes_control::NodeState,
    /// What the last readiness check saw, or why it failed.
    detail: Option<String>,
    /// Whether the workload runs now.
    running: bool,
    /// Nodes it waits for.
    after: Vec<String>,
    /// Things to know (e.g. an autoscaler also scales it).
    warnings: Vec<String>,
}

/// Why the last wake failed.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FailureSummary {
    /// The node that failed.
    node: String,
    /// Stable reason (`exited`, `timeout`, `ImagePullBackOff`, …).
    reason: String,
    /// In words.
    message: String,
}

/// A flow in the inventory.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FlowSummary {
    /// Name.
    name: String,
    /// `file` (the config file) or `resource` (a `Flow` resource), both read-only here; or `store`
    /// (managed through this API: drafts, versions, activation).
    source: &'static str,
    /// The namespace of a `Flow` resource.
    namespace: Option<String>,
    /// The active version of a store-managed flow.
    version: Option<u64>,
    /// `asleep`, `waking`, `awake`, `draining` or `failed`.
    #[schema(value_type = String)]
    state: leannodes_control::FlowState,
    /// Never drained.
    pinned: bool,
    /// Refuses requests and wakes nothing.
    disabled: bool,
    /// Hosts it answers.
    hosts: Vec<String>,
    /// Milliseconds since the last activity.
    idle_ms: u64,
    /// Drained after this much idleness.
    idle_after_ms: u64,
    /// When the last activity was (Unix milliseconds).
    last_activity_ms: i64,
    /// Requests held right now.
    held: u64,
    /// The running or last execution.
    execution: Option<String>,
    /// Why the last wake failed.
    failure: Option<FailureSummary>,
    /// Milliseconds until a retry is allowed, while backing off.
    retry_in_ms: Option<u64>,
    /// Nodes in start order.
    nodes: Vec<NodeSummary>,
    /// What the caller may do with this flow.
    permissions: Vec<Permission>,
}

impl FlowSummary {
    fn of(view: FlowView, flow: &Flow, traffic: &dyn TrafficView, principal: &Principal) -> FlowSummary {
        let now = crate::unix_ms();
        let mut hosts: Vec<String> = flow.bindings.iter().map(|b| b.host.to_string()).collect();
        hosts.dedup();
        FlowSummary {
            held: traffic.held(&view.name),
            last_activity_ms: now - i64::try_from(view.idle_ms).unwrap_or(i64::MAX),
            permissions: principal.on(&view.name).iter().filter(|p| p.is_flow_scoped()).collect(),
            source: flow.origin.as_str(),
            namespace: flow.origin.tenant().map(str::to_string),
            version: match flow.origin {
                leannodes_config::FlowOrigin::Store { version } => Some(version),
                _ => None,
            },
            hosts,
            name: view.name,
            state: view.state,
            pinned: view.pinned,
            disabled: view.disabled,
            idle_ms: view.idle_ms,
            idle_after_ms: view.idle_after_ms,
            execution: view.execution,
            failure: view.failure.map(|f| FailureSummary { node: f.node, reason: f.reason, message: f.message }),
            retry_in_ms: view.retry_in_ms,
            nodes: view
                .nodes
                .into_iter()
                .map(|n| NodeSummary {
                    name: n.name,
                    kind: n.kind.to_string(),
                    workload: n.workload,
                    state: n.state,
                    detail: n.detail,
                    running: n.running,
                    after: n.after,
                    warnings: n.warnings,
                })
                .collect(),
        }
    }
}

/// A flow state to filter by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum StateFilter {
    /// Asleep.
    Asleep,
    /// Waking.
    Waking,
    /// Awake.
    Awake,
    /// Draining.
    Draining,
    /// Failed.
    Failed,
}

impl StateFilter {
    fn matches(self, state: leannodes_control::FlowState) -> bool {
        use leannodes_control::FlowState as S;
        matches!(
            (self, state),
            (StateFilter::Asleep, S::Asleep)
                | (StateFilter::Waking, S::Waking)
                | (StateFilter::Awake, S::Awake)
                | (StateFilter::Draining, S::Draining)
                | (StateFilter::Failed, S::Failed)
        )
    }
}

/// A flow source to filter by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SourceFilter {
    /// The config file.
    File,
    /// `Flow` resources.
    Resource,
    /// Managed through the API.
    Store,
}

/// `?q=&state=&source=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct FlowFilter {
    /// Part of the name or of a host.
    q: Option<String>,
    /// Only flows in this state.
    state: Option<StateFilter>,
    /// Only flows from this source.
    source: Option<SourceFilter>,
}

/// The flows the caller may read.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FlowList {
    /// The flows that serve, by name.
    flows: Vec<FlowSummary>,
    /// Store-managed flows no version of which is active yet (nothing serves them), by name. Left out
    /// when filtering by `state`, or by a `source` other than `store`.
    inactive: Vec<super::lifecycle::ManagedFlow>,
}

/// Every flow the caller may read, with state, nodes and what the caller may do.
#[utoipa::path(get, path = "/api/v1/flows", tag = "flows", params(FlowFilter), responses((status = 200, body = FlowList)))]
async fn list(
    Authed(principal, _): Authed,
    State(controller): State<Arc<Controller>>,
    State(traffic): State<Arc<dyn TrafficView>>,
    State(store): State<Arc<dyn leannodes_store::Store>>,
    Query(filter): Query<FlowFilter>,
) -> Result<Json<FlowList>, ApiError> {
    let q = filter.q.as_deref().map(str::to_lowercase).filter(|q| !q.is_empty());
    let mut flows = Vec::new();
    for view in controller.views() {
        if !principal.can_on(Permission::FlowsRead, &view.name) {
            continue;
        }
        let Some(handle) = controller.flow(&view.name) else { continue };
        let spec = &handle.spec;
        let source = match spec.origin {
            leannodes_config::FlowOrigin::File => SourceFilter::File,
            leannodes_config::FlowOrigin::Resource { .. } => SourceFilter::Resource,
            leannodes_config::FlowOrigin::Store { .. } => SourceFilter::Store,
            // Listed under their flow (`GET /flows/{name}/test-sessions`).
            leannodes_config::FlowOrigin::TestSession { .. } => continue,
        };
        if filter.state.is_some_and(|s| !s.matches(view.state))
            || filter.source.is_some_and(|s| s != source)
            || q.as_deref()
                .is_some_and(|q| !view.name.to_lowercase().contains(q) && !spec.bindings.iter().any(|b| b.host.to_string().contains(q)))
        {
            continue;
        }
        flows.push(FlowSummary::of(view, spec, &*traffic, &principal));
    }
    let mut inactive = Vec::new();
    if filter.state.is_none() && filter.source.is_none_or(|s| s == SourceFilter::Store) {
        for doc in super::lifecycle::managed_flows(&*store).await? {
            if doc.active.is_none()
                && principal.can_on(Permission::FlowsRead, &doc.name)
                && q.as_deref().is_none_or(|q| doc.name.to_lowercase().contains(q))
            {
                inactive.push(super::lifecycle::ManagedFlow::of(doc));
            }
        }
    }
    Ok(Json(FlowList { flows, inactive }))
}

/// A binding: a host pattern and a path prefix.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BindingView {
    /// Host or `*.suffix`.
    host: String,
    /// Path prefix.
    path: String,
}

/// A node's definition.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct NodeDefinition {
    /// Name.
    name: String,
    /// Kind.
    kind: &'static str,
    /// The Kubernetes object (`namespace/name`), for Kubernetes kinds.
    reference: Option<String>,
    /// The port it serves on.
    port: Option<u16>,
    /// Readiness probe (`tcp host:port`, `http URL`, `exec …`).
    probe: Option<String>,
    /// Nodes it waits for.
    after: Vec<String>,
    /// Its wake budget (milliseconds).
    timeout_ms: u64,
}

/// One flow in detail: its state and its definition.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FlowDetail {
    /// State, nodes and what the caller may do.
    #[serde(flatten)]
    summary: FlowSummary,
    /// Host × path bindings.
    bindings: Vec<BindingView>,
    /// Where requests go once awake (a node name or `host:port`).
    upstream: String,
    /// Longest hold (milliseconds).
    hold_timeout_ms: u64,
    /// Browsers get the warm-up page after this (milliseconds).
    fast_hold_ms: u64,
    /// Held requests per replica.
    max_held: usize,
    /// `rollback` or `keep`.
    on_failure: &'static str,
    /// Node definitions in start order.
    definition: Vec<NodeDefinition>,
    /// Keep-warm windows: woken ahead of each and held awake through it.
    keep_warm: Vec<KeepWarmView>,
    /// While a keep-warm window holds it awake: when the window closes (Unix milliseconds).
    keep_warm_until_ms: Option<i64>,
    /// Outside keep-warm windows: when the next window's wake starts (Unix milliseconds).
    next_keep_warm_ms: Option<i64>,
}

/// One keep-warm schedule.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct KeepWarmView {
    /// When windows start (cron).
    cron: String,
    /// How long each lasts (milliseconds).
    for_ms: u64,
    /// The zone the cron expression is read in.
    tz: String,
    /// How long before each window the wake starts (milliseconds).
    ahead_ms: u64,
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// One flow: state, bindings, settings and nodes.
#[utoipa::path(get, path = "/api/v1/flows/{name}", tag = "flows", params(("name" = String, Path, description = "Flow name")), responses((status = 200, body = FlowDetail)))]
async fn get_flow(
    Authed(principal, _): Authed,
    State(controller): State<Arc<Controller>>,
    State(traffic): State<Arc<dyn TrafficView>>,
    Path(name): Path<String>,
) -> Result<Json<FlowDetail>, ApiError> {
    let handle = controller.flow(&name).ok_or_else(|| ApiError::not_found("unknown_flow", format!("no flow named `{name}`")))?;
    let view = controller
        .views()
        .into_iter()
        .find(|v| v.name == name)
        .ok_or_else(|| ApiError::not_found("unknown_flow", format!("no flow named `{name}`")))?;
    let spec = &handle.spec;
    let definition = spec
        .nodes
        .iter()
        .map(|n| NodeDefinition {
            name: n.name.clone(),
            kind: n.workload.kind().as_str(),
            reference: match &n.workload.spec {
                WorkloadSpec::Kubernetes { namespace, name, .. } => Some(format!("{namespace}/{name}")),
                _ => None,
            },
            port: n.workload.port,
            probe: n.workload.probe.as_ref().map(Probe::to_string),
            after: n.after.iter().map(|a| spec.nodes[*a].name.clone()).collect(),
            timeout_ms: millis(n.timeout),
        })
        .collect();
    Ok(Json(FlowDetail {
        bindings: spec.bindings.iter().map(|b| BindingView { host: b.host.to_string(), path: b.path.clone() }).collect(),
        upstream: match &spec.upstream {
            Upstream::Node(i) => spec.nodes[*i].name.clone(),
            Upstream::Address(hp) => hp.to_string(),
        },
        hold_timeout_ms: millis(spec.hold_timeout),
        fast_hold_ms: millis(spec.fast_hold),
        max_held: spec.max_held.get(),
        on_failure: match spec.on_failure {
            leannodes_config::OnFailure::Rollback => "rollback",
            leannodes_config::OnFailure::Keep => "keep",
        },
        definition,
        keep_warm: spec
            .keep_warm
            .iter()
            .map(|w| KeepWarmView { cron: w.cron.to_string(), for_ms: millis(w.length), tz: w.tz_name.clone(), ahead_ms: millis(w.ahead) })
            .collect(),
        keep_warm_until_ms: view.keep_warm_until_ms,
        next_keep_warm_ms: view.next_keep_warm_ms,
        summary: FlowSummary::of(view, spec, &*traffic, &principal),
    }))
}

/// A flow after an operation.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ActionResult {
    /// The flow.
    flow: String,
    /// The operation.
    action: &'static str,
    /// Its state now.
    #[schema(value_type = String)]
    state: leannodes_control::FlowState,
    /// Pinned now.
    pinned: bool,
    /// Disabled now.
    disabled: bool,
}

/// Runs one operation, audits it and reports the flow's state.
async fn operate(
    controller: &Controller,
    audit: &Audit,
    caller: &crate::auth::Caller,
    name: &str,
    action: &'static str,
) -> Result<Json<ActionResult>, ApiError> {
    let before = controller.flow(name).ok_or_else(|| ApiError::not_found("unknown_flow", format!("no flow named `{name}`")))?;
    let before = serde_json::json!({ "state": before.state().as_str(), "pinned": before.is_pinned(), "disabled": before.is_disabled() });
    match action {
        "warm" => controller.wake(name, Trigger::Manual).map(|_| ())?,
        "drain" => controller.drain(name).await?,
        "pin" => controller.set_pinned(name, true).await?,
        "unpin" => controller.set_pinned(name, false).await?,
        "disable" => controller.set_disabled(name, true).await?,
        _ => controller.set_disabled(name, false).await?,
    }
    let flow = controller.flow(name).ok_or_else(|| ApiError::not_found("unknown_flow", format!("no flow named `{name}`")))?;
    let result =
        ActionResult { flow: name.to_string(), action, state: flow.state(), pinned: flow.is_pinned(), disabled: flow.is_disabled() };
    let after = serde_json::json!({ "state": result.state.as_str(), "pinned": result.pinned, "disabled": result.disabled });
    audit.by(caller, &format!("flow.{action}"), format!("flow/{name}"), serde_json::json!({ "before": before, "after": after })).await;
    Ok(Json(result))
}

macro_rules! action {
    ($fn:ident, $action:literal, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(post, path = concat!("/api/v1/flows/{name}/", $action), tag = "flows",
                            params(("name" = String, Path, description = "Flow name")), responses((status = 200, body = ActionResult)))]
        async fn $fn(
            Authed(_, caller): Authed,
            State(controller): State<Arc<Controller>>,
            State(audit): State<Audit>,
            Path(name): Path<String>,
        ) -> Result<Json<ActionResult>, ApiError> {
            operate(&controller, &audit, &caller, &name, $action).await
        }
    };
}

action!(warm, "warm", "Wakes the flow now (returns at once; follow `/api/v1/events`).");
action!(drain, "drain", "Drains the flow now, whatever its activity; returns when it is asleep.");
action!(pin, "pin", "Pins the flow: it is never drained.");
action!(unpin, "unpin", "Unpins the flow.");
action!(disable, "disable", "Disables the flow: requests get `503 flow_disabled`, nothing is woken.");
action!(enable, "enable", "Enables the flow again.");

/// Why a flow is in its state (`GET /flows/{name}/explain`).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Explanation {
    /// The flow.
    flow: String,
    /// Its state (`asleep`, `waking`, `awake`, `draining`, `failed`).
    state: String,
    /// The reasons, the one that decides first.
    reasons: Vec<ReasonView>,
    /// Milliseconds since the last activity.
    idle_ms: u64,
    /// The idle window (milliseconds).
    idle_after_ms: u64,
    /// When it drains if nothing else arrives (milliseconds from now); `null` when it will not drain
    /// by itself (asleep, pinned, or the drain leader is another replica).
    drains_in_ms: Option<u64>,
    /// Requests of the flow open on this replica, by kind.
    open: OpenView,
    /// While a keep-warm window holds it awake: when the window closes (Unix milliseconds).
    keep_warm_until_ms: Option<i64>,
    /// Outside keep-warm windows: when the next window's wake starts (Unix milliseconds).
    next_keep_warm_ms: Option<i64>,
    /// The last requests that counted as activity on this replica, newest first.
    recent_requests: Vec<SeenRequestView>,
    /// Requests its `ignore` rules matched on this replica.
    ignored_requests: u64,
    /// The last of those.
    last_ignored: Option<SeenRequestView>,
}

/// A request the flow answered (on this replica).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SeenRequestView {
    /// When it ended (Unix milliseconds).
    at_ms: i64,
    /// Method.
    method: String,
    /// Path (no query).
    path: String,
    /// Status answered (0: none, 499: the client went away).
    status: u16,
}

impl From<leannodes_control::SeenRequest> for SeenRequestView {
    fn from(r: leannodes_control::SeenRequest) -> SeenRequestView {
        SeenRequestView { at_ms: r.at_ms, method: r.method, path: r.path, status: r.status }
    }
}

/// One reason.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ReasonView {
    /// `asleep`, `waking`, `draining`, `failed`, `pinned`, `schedule`, `disabled`, `open`,
    /// `recent_activity`, `ignored`, `shared_workload` or `not_leader`.
    kind: String,
    /// The reason in words.
    message: String,
}

/// Requests open on this replica, by kind.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OpenView {
    /// WebSocket connections.
    websocket: u64,
    /// Server-Sent Events streams.
    sse: u64,
    /// gRPC calls.
    grpc: u64,
    /// Other requests.
    request: u64,
}

/// Why the flow is in its state: pins, requests open now, recent activity, a failed wake, workloads
/// other flows hold, and when it drains if nothing else arrives.
#[utoipa::path(get, path = "/api/v1/flows/{name}/explain", tag = "flows",
    params(("name" = String, Path, description = "Flow name")), responses((status = 200, body = Explanation)))]
async fn explain(State(controller): State<Arc<Controller>>, Path(name): Path<String>) -> Result<Json<Explanation>, ApiError> {
    let e = controller.explain(&name).ok_or_else(|| ApiError::not_found("unknown_flow", format!("no flow named `{name}`")))?;
    Ok(Json(Explanation {
        flow: e.flow,
        state: word(&e.state),
        reasons: e.reasons.iter().map(|r| ReasonView { kind: word(&r.kind), message: r.message.clone() }).collect(),
        idle_ms: e.idle_ms,
        idle_after_ms: e.idle_after_ms,
        drains_in_ms: e.drains_in_ms,
        open: OpenView { websocket: e.open.websocket, sse: e.open.sse, grpc: e.open.grpc, request: e.open.request },
        keep_warm_until_ms: e.keep_warm_until_ms,
        next_keep_warm_ms: e.next_keep_warm_ms,
        recent_requests: e.recent.into_iter().map(SeenRequestView::from).collect(),
        ignored_requests: e.ignored,
        last_ignored: e.last_ignored.map(SeenRequestView::from),
    }))
}

/// A page of executions.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ExecutionList {
    /// Newest first.
    #[schema(value_type = Vec<Object>)]
    items: Vec<ExecutionRecord>,
    /// Cursor of the next page.
    next: Option<String>,
}

/// The flow's wake executions, newest first, with per-node steps.
#[utoipa::path(get, path = "/api/v1/flows/{name}/executions", tag = "flows",
    params(("name" = String, Path, description = "Flow name"), Paging), responses((status = 200, body = ExecutionList)))]
async fn executions(
    State(controller): State<Arc<Controller>>,
    Path(name): Path<String>,
    Query(paging): Query<Paging>,
) -> Result<Json<ExecutionList>, ApiError> {
    controller.flow(&name).ok_or_else(|| ApiError::not_found("unknown_flow", format!("no flow named `{name}`")))?;
    let listing = controller.executions(Some(&name), &paging.page()?).await?;
    Ok(Json(ExecutionList { items: listing.items, next: listing.next }))
}

/// One execution (of a flow the caller may read).
#[utoipa::path(get, path = "/api/v1/executions/{id}", tag = "flows",
    params(("id" = String, Path, description = "Execution id")), responses((status = 200, body = Object)))]
async fn execution(
    Authed(principal, _): Authed,
    State(controller): State<Arc<Controller>>,
    Path(id): Path<String>,
) -> Result<Json<ExecutionRecord>, ApiError> {
    let record = controller.execution(&id).await?.filter(|r| principal.can_on(Permission::FlowsRead, &r.flow));
    record.map(Json).ok_or_else(|| ApiError::not_found("unknown_execution", format!("no execution `{id}`")))
}
