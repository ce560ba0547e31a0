//! Savings: what sleeping saved each flow the caller may read over a window (`GET /savings?window=30d`),
//! from the controller's sleep ledgers and the `[server.savings]` cost model.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use leannodes_control::{Controller, SAVINGS_HISTORY};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

use super::Registrar;
use crate::authz::{Permission, Rule};
use crate::error::ApiError;
use crate::extract::{Authed, Query};

pub(super) fn routes(r: Registrar) -> Registrar {
    r.add(Rule::Authenticated, routes!(savings))
}

/// `?window=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct SavingsQuery {
    /// How far back (humantime: `24h`, `7d`, `30d`; at most `90d`). Default `30d`.
    window: Option<String>,
}

/// One flow's savings.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FlowSavingsView {
    /// The flow.
    flow: String,
    /// Time asleep within the window (milliseconds).
    asleep_ms: u64,
    /// The part of the window LeanNodes has watched the flow (milliseconds).
    observed_ms: u64,
    /// CPU cores the flow uses while awake (declared `cpu`, else the Kubernetes requests).
    cpu: f64,
    /// Estimated cost saved, in `currency`.
    saved: f64,
}

/// Savings over a window.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Savings {
    /// The window (milliseconds up to now).
    window_ms: u64,
    /// The currency of the amounts.
    currency: String,
    /// Cost of one node-hour (`[server.savings] node_hourly_cost`).
    node_hourly_cost: f64,
    /// Cores per node (`[server.savings] node_cpu`).
    node_cpu: f64,
    /// Saved by the flows listed.
    total: f64,
    /// The flows the caller may read, largest saving first.
    flows: Vec<FlowSavingsView>,
}

/// What sleeping saved: per flow, hours asleep × (its CPU / `node_cpu`) × `node_hourly_cost`.
#[utoipa::path(get, path = "/api/v1/savings", tag = "flows", params(SavingsQuery), responses((status = 200, body = Savings)))]
async fn savings(
    Authed(principal, _): Authed,
    State(controller): State<Arc<Controller>>,
    Query(q): Query<SavingsQuery>,
) -> Result<Json<Savings>, ApiError> {
    let text = q.window.as_deref().unwrap_or("30d");
    let window = humantime::parse_duration(text.trim()).ok().filter(|w| !w.is_zero() && *w <= SAVINGS_HISTORY).ok_or_else(|| {
        ApiError::invalid_field("window", format!("`{text}` is not a window: write a duration up to 90d, such as 24h, 7d or 30d"))
    })?;
    let report = controller.savings(window);
    let flows: Vec<FlowSavingsView> = report
        .flows
        .into_iter()
        .filter(|f| principal.can_on(Permission::FlowsRead, &f.flow))
        .map(|f| FlowSavingsView { flow: f.flow, asleep_ms: f.asleep_ms, observed_ms: f.observed_ms, cpu: f.cpu, saved: f.saved })
        .collect();
    Ok(Json(Savings {
        window_ms: report.window_ms,
        currency: report.currency,
        node_hourly_cost: report.node_hourly_cost,
        node_cpu: report.node_cpu,
        total: flows.iter().map(|f| f.saved).sum(),
        flows,
    }))
}
