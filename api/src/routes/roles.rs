//! Roles: the built-in ones (read-only) and custom roles (`users.manage`), named permission sets. A
//! custom role may only hold permissions its creator holds; a role still granted cannot be deleted.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use leannodes_store::{FlowAcl, Group, Role, Store, User};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;

use super::Registrar;
use crate::audit::Audit;
use crate::auth::{Auth, may_grant};
use crate::authz::{Permission, PermissionSet, Rule, all, built_in_roles, is_built_in};
use crate::error::ApiError;
use crate::extract::{Authed, Body, IfMatch, Path};

pub(super) fn routes(r: Registrar) -> Registrar {
    let manage = Rule::Global(Permission::UsersManage);
    r.add(Rule::Authenticated, routes!(list)).add(manage, routes!(create)).add(manage, routes!(update)).add(manage, routes!(delete))
}

/// A role.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RoleView {
    /// Name.
    name: String,
    /// What it is for.
    description: String,
    /// Its permissions.
    permissions: Vec<Permission>,
    /// Built in (cannot be changed).
    built_in: bool,
    /// Version (custom roles; for `If-Match`).
    version: Option<u64>,
}

/// Roles.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RoleList {
    /// Built-in roles first, then custom roles by name.
    roles: Vec<RoleView>,
}

/// A custom role to create, or its new content.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoleSpec {
    /// Name (ignored on update).
    #[serde(default)]
    name: String,
    /// What it is for.
    #[serde(default)]
    description: String,
    /// Its permissions.
    permissions: Vec<Permission>,
}

/// Every role and its permissions.
#[utoipa::path(get, path = "/api/v1/roles", tag = "users", responses((status = 200, body = RoleList)))]
async fn list(State(store): State<Arc<dyn Store>>) -> Result<Json<RoleList>, ApiError> {
    let mut roles: Vec<RoleView> = built_in_roles()
        .into_iter()
        .map(|(name, description, perms)| RoleView {
            name: name.into(),
            description: description.into(),
            permissions: perms.iter().collect(),
            built_in: true,
            version: None,
        })
        .collect();
    let listing = store.records::<Role>().list("", &leannodes_store::Page::first(500)).await?;
    roles.extend(listing.items.into_iter().map(|v| RoleView {
        permissions: PermissionSet::from_names(&v.value.permissions).iter().collect(),
        name: v.value.name,
        description: v.value.description,
        built_in: false,
        version: Some(v.version),
    }));
    Ok(Json(RoleList { roles }))
}

fn checked(principal: &crate::authz::Principal, spec: &RoleSpec) -> Result<PermissionSet, ApiError> {
    let perms: PermissionSet = spec.permissions.iter().copied().collect();
    if perms.is_empty() {
        return Err(ApiError::invalid_field("permissions", "a role needs at least one permission"));
    }
    if !may_grant(principal, perms) {
        return Err(ApiError::forbidden("a role cannot hold permissions you do not have yourself"));
    }
    if spec.description.chars().count() > 500 {
        return Err(ApiError::invalid_field("description", "use at most 500 characters"));
    }
    Ok(perms)
}

fn stored(name: &str, spec: &RoleSpec, perms: PermissionSet) -> Role {
    Role {
        name: name.to_string(),
        permissions: perms.iter().map(|p| p.as_str().to_string()).collect(),
        description: spec.description.clone(),
    }
}

/// Creates a custom role.
#[utoipa::path(post, path = "/api/v1/roles", tag = "users", request_body = RoleSpec, responses((status = 201, body = RoleView)))]
async fn create(
    State(auth): State<Arc<Auth>>,
    State(audit): State<Audit>,
    Authed(principal, caller): Authed,
    Body(spec): Body<RoleSpec>,
) -> Result<(StatusCode, Json<RoleView>), ApiError> {
    let name = spec.name.trim().to_string();
    let ok = !name.is_empty() && name.len() <= 100 && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        return Err(ApiError::invalid_field("name", "use 1 to 100 letters, digits, `-`, `_` or `.`"));
    }
    if is_built_in(&name) {
        return Err(ApiError::conflict("role_exists", format!("`{name}` is a built-in role")));
    }
    let perms = checked(&principal, &spec)?;
    let role = stored(&name, &spec, perms);
    let created = auth.store().records::<Role>().create(&role).await.map_err(|e| match e {
        leannodes_store::StoreError::Conflict { .. } => ApiError::conflict("role_exists", format!("a role `{name}` exists already")),
        other => other.into(),
    })?;
    auth.invalidate();
    audit.by(&caller, "role.create", format!("role/{name}"), serde_json::json!({ "after": { "permissions": role.permissions } })).await;
    Ok((
        StatusCode::CREATED,
        Json(RoleView {
            name,
            description: role.description,
            permissions: perms.iter().collect(),
            built_in: false,
            version: Some(created.version),
        }),
    ))
}

/// Changes a custom role's permissions (`If-Match`: the version read).
#[utoipa::path(put, path = "/api/v1/roles/{role}", tag = "users", params(("role" = String, Path, description = "Role name")),
    request_body = RoleSpec, responses((status = 200, body = RoleView)))]
async fn update(
    State(auth): State<Arc<Auth>>,
    State(audit): State<Audit>,
    Authed(principal, caller): Authed,
    if_match: IfMatch,
    Path(name): Path<String>,
    Body(spec): Body<RoleSpec>,
) -> Result<Json<RoleView>, ApiError> {
    if is_built_in(&name) {
        return Err(ApiError::conflict("built_in_role", format!("`{name}` is built in and cannot be changed")));
    }
    let current =
        auth.store().records::<Role>().get(&name).await?.ok_or_else(|| ApiError::not_found("unknown_role", format!("no role `{name}`")))?;
    if_match.check(current.version)?;
    if !may_grant(&principal, PermissionSet::from_names(&current.value.permissions)) {
        return Err(ApiError::forbidden("this role has permissions you do not have; only someone who has them can change it"));
    }
    let perms = checked(&principal, &spec)?;
    let role = stored(&name, &spec, perms);
    let updated = auth.store().records::<Role>().update(&role, current.version).await?;
    auth.invalidate();
    audit
        .by(
            &caller,
            "role.update",
            format!("role/{name}"),
            serde_json::json!({ "before": { "permissions": current.value.permissions }, "after": { "permissions": role.permissions } }),
        )
        .await;
    Ok(Json(RoleView {
        name,
        description: role.description,
        permissions: perms.iter().collect(),
        built_in: false,
        version: Some(updated.version),
    }))
}

/// Deletes a custom role that nobody holds any more.
#[utoipa::path(delete, path = "/api/v1/roles/{role}", tag = "users", params(("role" = String, Path, description = "Role name")), responses((status = 204, description = "Deleted")))]
async fn delete(
    State(auth): State<Arc<Auth>>,
    State(audit): State<Audit>,
    Authed(principal, caller): Authed,
    if_match: IfMatch,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    if is_built_in(&name) {
        return Err(ApiError::conflict("built_in_role", format!("`{name}` is built in and cannot be deleted")));
    }
    let store = auth.store();
    let current =
        store.records::<Role>().get(&name).await?.ok_or_else(|| ApiError::not_found("unknown_role", format!("no role `{name}`")))?;
    if_match.check(current.version)?;
    if !may_grant(&principal, PermissionSet::from_names(&current.value.permissions)) {
        return Err(ApiError::forbidden("this role has permissions you do not have; only someone who has them can delete it"));
    }
    let held = all::<User>(store).await?.iter().any(|u| u.roles.iter().chain(&u.sso_roles).any(|r| *r == name))
        || all::<Group>(store).await?.iter().any(|g| g.roles.contains(&name))
        || all::<FlowAcl>(store).await?.iter().any(|a| a.grants.iter().any(|g| g.role == name));
    if held {
        return Err(ApiError::conflict(
            "role_in_use",
            format!("role `{name}` is still granted (to users, groups or on flows); take it away first"),
        ));
    }
    store.records::<Role>().delete(&name, Some(current.version)).await?;
    auth.invalidate();
    audit
        .by(&caller, "role.delete", format!("role/{name}"), serde_json::json!({ "before": { "permissions": current.value.permissions } }))
        .await;
    Ok(StatusCode::NO_CONTENT)
}
