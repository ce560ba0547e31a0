//! Groups (`users.manage`): members get the group's roles instance-wide, and grants to `group:NAME` on
//! single flows. Changing a group's roles follows the same rule as granting roles to users.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use leannodes_store::{Group, Store, User};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;

use super::Registrar;
use crate::accounts;
use crate::audit::Audit;
use crate::auth::{Auth, may_grant};
use crate::authz::{Permission, Rule};
use crate::error::ApiError;
use crate::extract::{Authed, Body, IfMatch, Path};

pub(super) fn routes(r: Registrar) -> Registrar {
    let manage = Rule::Global(Permission::UsersManage);
    r.add(manage, routes!(list))
        .add(manage, routes!(create))
        .add(manage, routes!(get_group))
        .add(manage, routes!(update))
        .add(manage, routes!(delete))
}

/// A group.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct GroupView {
    /// Name.
    name: String,
    /// User ids.
    members: Vec<String>,
    /// Roles every member gets.
    roles: Vec<String>,
    /// Version (for `If-Match`).
    version: u64,
}

/// Groups.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct GroupList {
    /// By name.
    groups: Vec<GroupView>,
}

/// A group to create, or its new content.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GroupSpec {
    /// Name (letters, digits, `-`, `_`, `.`); ignored on update.
    #[serde(default)]
    name: String,
    /// User ids.
    #[serde(default)]
    members: Vec<String>,
    /// Roles.
    #[serde(default)]
    roles: Vec<String>,
}

fn check_group_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty() && name.len() <= 100 && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok { Ok(()) } else { Err(ApiError::invalid_field("name", "use 1 to 100 letters, digits, `-`, `_` or `.`")) }
}

async fn check(auth: &Auth, principal: &crate::authz::Principal, spec: &GroupSpec) -> Result<(), ApiError> {
    let perms = accounts::check_roles(auth.store(), "roles", &spec.roles).await?;
    if !may_grant(principal, perms) {
        return Err(ApiError::forbidden("you cannot grant roles with permissions you do not have yourself"));
    }
    for (i, member) in spec.members.iter().enumerate() {
        if auth.store().records::<User>().get(member).await?.is_none() {
            return Err(ApiError::invalid_field(&format!("members/{i}"), format!("no user `{member}`")));
        }
    }
    Ok(())
}

/// Every group.
#[utoipa::path(get, path = "/api/v1/groups", tag = "users", responses((status = 200, body = GroupList)))]
async fn list(State(store): State<Arc<dyn Store>>) -> Result<Json<GroupList>, ApiError> {
    let listing = store.records::<Group>().list("", &leannodes_store::Page::first(500)).await?;
    let groups = listing
        .items
        .into_iter()
        .map(|v| GroupView { name: v.value.name, members: v.value.members, roles: v.value.roles, version: v.version })
        .collect();
    Ok(Json(GroupList { groups }))
}

/// Creates a group.
#[utoipa::path(post, path = "/api/v1/groups", tag = "users", request_body = GroupSpec, responses((status = 201, body = GroupView)))]
async fn create(
    State(auth): State<Arc<Auth>>,
    State(audit): State<Audit>,
    Authed(principal, caller): Authed,
    Body(spec): Body<GroupSpec>,
) -> Result<(StatusCode, Json<GroupView>), ApiError> {
    check_group_name(&spec.name)?;
    check(&auth, &principal, &spec).await?;
    let group = Group { name: spec.name, members: spec.members, roles: spec.roles };
    let stored = auth.store().records::<Group>().create(&group).await.map_err(|e| match e {
        leannodes_store::StoreError::Conflict { .. } => {
            ApiError::conflict("group_exists", format!("a group `{}` exists already", group.name))
        }
        other => other.into(),
    })?;
    auth.invalidate();
    audit
        .by(
            &caller,
            "group.create",
            format!("group/{}", group.name),
            serde_json::json!({ "after": { "members": group.members, "roles": group.roles } }),
        )
        .await;
    let v = stored.value;
    Ok((StatusCode::CREATED, Json(GroupView { name: v.name, members: v.members, roles: v.roles, version: stored.version })))
}

/// One group.
#[utoipa::path(get, path = "/api/v1/groups/{group}", tag = "users", params(("group" = String, Path, description = "Group name")), responses((status = 200, body = GroupView)))]
async fn get_group(State(store): State<Arc<dyn Store>>, Path(name): Path<String>) -> Result<Json<GroupView>, ApiError> {
    let g = store.records::<Group>().get(&name).await?.ok_or_else(|| ApiError::not_found("unknown_group", format!("no group `{name}`")))?;
    Ok(Json(GroupView { name: g.value.name, members: g.value.members, roles: g.value.roles, version: g.version }))
}

/// Replaces a group's members and roles (`If-Match`: the version read).
#[utoipa::path(put, path = "/api/v1/groups/{group}", tag = "users", params(("group" = String, Path, description = "Group name")),
    request_body = GroupSpec, responses((status = 200, body = GroupView)))]
async fn update(
    State(auth): State<Arc<Auth>>,
    State(audit): State<Audit>,
    Authed(principal, caller): Authed,
    if_match: IfMatch,
    Path(name): Path<String>,
    Body(spec): Body<GroupSpec>,
) -> Result<Json<GroupView>, ApiError> {
    let current = auth
        .store()
        .records::<Group>()
        .get(&name)
        .await?
        .ok_or_else(|| ApiError::not_found("unknown_group", format!("no group `{name}`")))?;
    if_match.check(current.version)?;
    let old_perms = accounts::check_roles(auth.store(), "roles", &current.value.roles).await.unwrap_or_default();
    if !may_grant(&principal, old_perms) {
        return Err(ApiError::forbidden("this group has permissions you do not have; only someone who has them can change it"));
    }
    check(&auth, &principal, &spec).await?;
    let group = Group { name: name.clone(), members: spec.members, roles: spec.roles };
    let stored = auth.store().records::<Group>().update(&group, current.version).await?;
    auth.invalidate();
    let detail = serde_json::json!({
        "before": { "members": current.value.members, "roles": current.value.roles },
        "after": { "members": group.members, "roles": group.roles },
    });
    audit.by(&caller, "group.update", format!("group/{name}"), detail).await;
    Ok(Json(GroupView { name, members: stored.value.members, roles: stored.value.roles, version: stored.version }))
}

/// Deletes a group.
#[utoipa::path(delete, path = "/api/v1/groups/{group}", tag = "users", params(("group" = String, Path, description = "Group name")), responses((status = 204, description = "Deleted")))]
async fn delete(
    State(auth): State<Arc<Auth>>,
    State(audit): State<Audit>,
    Authed(principal, caller): Authed,
    if_match: IfMatch,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let current = auth
        .store()
        .records::<Group>()
        .get(&name)
        .await?
        .ok_or_else(|| ApiError::not_found("unknown_group", format!("no group `{name}`")))?;
    if_match.check(current.version)?;
    let perms = accounts::check_roles(auth.store(), "roles", &current.value.roles).await.unwrap_or_default();
    if !may_grant(&principal, perms) {
        return Err(ApiError::forbidden("this group has permissions you do not have; only someone who has them can delete it"));
    }
    auth.store().records::<Group>().delete(&name, Some(current.version)).await?;
    auth.invalidate();
    audit
        .by(
            &caller,
            "group.delete",
            format!("group/{name}"),
            serde_json::json!({ "before": { "members": current.value.members, "roles": current.value.roles } }),
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}
