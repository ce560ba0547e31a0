//! Per-flow access grants (`flows.admin` on the flow): roles given to users and groups on one flow
//! only. A grant can give only the flow permissions the caller has on that flow.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use leannodes_control::Controller;
use leannodes_store::{FlowAcl, Grant, Group, StoreError, User};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;

use super::Registrar;
use crate::accounts;
use crate::audit::Audit;
use crate::auth::Auth;
use crate::authz::{Permission, Rule};
use crate::error::ApiError;
use crate::extract::{Authed, Body, IfMatch, Path};

pub(super) fn routes(r: Registrar) -> Registrar {
    r.add(Rule::Flow(Permission::FlowsAdmin), routes!(get_access)).add(Rule::Flow(Permission::FlowsAdmin), routes!(put_access))
}

/// `404 unknown_flow` for a flow that does not exist.
fn known(controller: &Controller, name: &str) -> Result<(), ApiError> {
    controller.flow(name).map(|_| ()).ok_or_else(|| ApiError::not_found("unknown_flow", format!("no flow named `{name}`")))
}

/// A role granted on a flow.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GrantView {
    /// `user:ID` or `group:NAME`.
    subject: String,
    /// The role.
    role: String,
}

/// A flow's grants.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Access {
    /// The flow.
    flow: String,
    /// The grants.
    grants: Vec<GrantView>,
    /// Version (0: never set); send it in `If-Match` to change the grants.
    version: u64,
}

/// Who has which role on this flow (besides instance-wide roles).
#[utoipa::path(get, path = "/api/v1/flows/{name}/access", tag = "flows", params(("name" = String, Path, description = "Flow name")), responses((status = 200, body = Access)))]
async fn get_access(
    State(auth): State<Arc<Auth>>,
    State(controller): State<Arc<Controller>>,
    Path(name): Path<String>,
) -> Result<Json<Access>, ApiError> {
    known(&controller, &name)?;
    let acl = auth.store().records::<FlowAcl>().get(&name).await?;
    let (grants, version) = acl.map_or((vec![], 0), |v| (v.value.grants, v.version));
    Ok(Json(Access { flow: name, grants: grants.into_iter().map(|g| GrantView { subject: g.subject, role: g.role }).collect(), version }))
}

/// Replaces the flow's grants (`If-Match`: the version read; `0` when there were none).
#[utoipa::path(put, path = "/api/v1/flows/{name}/access", tag = "flows", params(("name" = String, Path, description = "Flow name")),
    request_body = Vec<GrantView>, responses((status = 200, body = Access)))]
async fn put_access(
    State(auth): State<Arc<Auth>>,
    State(audit): State<Audit>,
    State(controller): State<Arc<Controller>>,
    Authed(principal, caller): Authed,
    if_match: IfMatch,
    Path(name): Path<String>,
    Body(grants): Body<Vec<GrantView>>,
) -> Result<Json<Access>, ApiError> {
    known(&controller, &name)?;
    let store = auth.store();
    let mine = principal.on(&name).flow_scoped();
    for (i, grant) in grants.iter().enumerate() {
        let at = format!("{i}/subject");
        match grant.subject.split_once(':') {
            Some(("user", id)) if store.records::<User>().get(id).await?.is_some() => {}
            Some(("group", group)) if store.records::<Group>().get(group).await?.is_some() => {}
            Some(("user" | "group", who)) => return Err(ApiError::invalid_field(&at, format!("no such user or group `{who}`"))),
            _ => return Err(ApiError::invalid_field(&at, "write `user:ID` or `group:NAME`")),
        }
        let perms = accounts::check_roles(store, &format!("{i}/role"), std::slice::from_ref(&grant.role)).await?.flow_scoped();
        if !perms.is_subset(mine) {
            return Err(ApiError::forbidden(format!("role `{}` gives permissions on this flow that you do not have", grant.role)));
        }
    }
    let records = store.records::<FlowAcl>();
    let current = records.get(&name).await?;
    if_match.check(current.as_ref().map_or(0, |c| c.version))?;
    let acl =
        FlowAcl { flow: name.clone(), grants: grants.iter().map(|g| Grant { subject: g.subject.clone(), role: g.role.clone() }).collect() };
    let written = match &current {
        Some(c) => records.update(&acl, c.version).await,
        None => records.create(&acl).await,
    };
    let written = written.map_err(|e| match e {
        StoreError::Conflict { .. } => ApiError::conflict("version_conflict", "the grants changed concurrently; read them again and retry"),
        other => other.into(),
    })?;
    auth.invalidate();
    audit
        .by(
            &caller,
            "flow.access",
            format!("flow/{name}"),
            serde_json::json!({ "before": current.map(|c| c.value.grants).unwrap_or_default(), "after": acl.grants }),
        )
        .await;
    Ok(Json(Access { flow: name, grants, version: written.version }))
}
