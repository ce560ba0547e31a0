//! Users (`users.manage`): list, create, change (roles, name, disabled; `If-Match`), delete, and reset
//! links. Nobody can give more than they have: the roles granted must be within the caller's own
//! permissions, and a user who holds more than the caller cannot be changed by them. The last enabled
//! administrator cannot be removed, disabled or demoted.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use leannodes_store::{AccessToken, LinkPurpose, Login, Store, User};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;

use super::Registrar;
use crate::accounts::{self, NewUser, UserView};
use crate::audit::Audit;
use crate::auth::{Auth, email_login, links, may_grant};
use crate::authz::{Permission, Principal, Rule, all};
use crate::error::ApiError;
use crate::extract::{Authed, Body, IfMatch, Path};

pub(super) fn routes(r: Registrar) -> Registrar {
    let manage = Rule::Global(Permission::UsersManage);
    r.add(manage, routes!(list))
        .add(manage, routes!(create))
        .add(manage, routes!(get_user))
        .add(manage, routes!(update))
        .add(manage, routes!(delete))
        .add(manage, routes!(reset_link))
}

/// Users.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UserList {
    /// By e-mail address.
    users: Vec<UserView>,
}

/// Every user.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", responses((status = 200, body = UserList)))]
async fn list(State(store): State<Arc<dyn Store>>) -> Result<Json<UserList>, ApiError> {
    let mut users = Vec::new();
    let mut page = leannodes_store::Page::first(500);
    loop {
        let listing = store.records::<User>().list("", &page).await?;
        users.extend(listing.items.iter().map(|v| UserView::of(&v.value, v.version)));
        match listing.next {
            Some(next) => page.after = Some(next),
            None => break,
        }
    }
    users.sort_by(|a, b| a.email.cmp(&b.email));
    Ok(Json(UserList { users }))
}

/// `POST /users`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateUser {
    /// E-mail address.
    email: String,
    /// Display name.
    #[serde(default)]
    name: String,
    /// A password (leave it out to send an invitation or reset link instead).
    password: Option<String>,
    /// Roles instance-wide.
    #[serde(default)]
    roles: Vec<String>,
}

fn with_etag(status: StatusCode, view: UserView) -> Response {
    let etag = HeaderValue::from_str(&format!("\"{}\"", view.version)).unwrap_or_else(|_| HeaderValue::from_static("\"0\""));
    let mut response = (status, Json(view)).into_response();
    response.headers_mut().insert(header::ETAG, etag);
    response
}

/// The permissions of a set of roles, which the caller must hold itself.
async fn grantable(store: &dyn Store, principal: &Principal, roles: &[String]) -> Result<(), ApiError> {
    let perms = accounts::check_roles(store, "roles", roles).await?;
    if !may_grant(principal, perms) {
        return Err(ApiError::forbidden("you cannot grant roles with permissions you do not have yourself"));
    }
    Ok(())
}

/// Refuses changing a user who holds permissions the caller lacks.
async fn may_change(auth: &Auth, principal: &Principal, user: &User) -> Result<(), ApiError> {
    let theirs = auth.principal_of(user).await?.global;
    if !may_grant(principal, theirs) {
        return Err(ApiError::forbidden("this user has permissions you do not have; only someone who has them can change the user"));
    }
    Ok(())
}

/// Creates a user (with a password, or without one to use SSO or a reset link).
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = CreateUser, responses((status = 201, body = UserView)))]
async fn create(
    State(auth): State<Arc<Auth>>,
    State(audit): State<Audit>,
    Authed(principal, caller): Authed,
    Body(req): Body<CreateUser>,
) -> Result<Response, ApiError> {
    grantable(auth.store(), &principal, &req.roles).await?;
    let name = accounts::check_name("name", &req.name)?;
    let new = NewUser { email: req.email, name, password: req.password, roles: req.roles, ..NewUser::default() };
    let user = accounts::create_user(auth.store(), new).await?;
    auth.invalidate();
    audit
        .by(
            &caller,
            "user.create",
            format!("user/{}", user.value.id),
            serde_json::json!({ "after": { "email": user.value.email, "name": user.value.name, "roles": user.value.roles } }),
        )
        .await;
    Ok(with_etag(StatusCode::CREATED, UserView::of(&user.value, user.version)))
}

/// One user.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", params(("id" = String, Path, description = "User id")), responses((status = 200, body = UserView)))]
async fn get_user(State(store): State<Arc<dyn Store>>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let user = store.records::<User>().get(&id).await?.ok_or_else(|| ApiError::not_found("unknown_user", format!("no user `{id}`")))?;
    Ok(with_etag(StatusCode::OK, UserView::of(&user.value, user.version)))
}

/// `PATCH /users/{id}`: the fields to change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateUser {
    /// Display name.
    name: Option<String>,
    /// Roles instance-wide (replaces them).
    roles: Option<Vec<String>>,
    /// Disable (or enable) the user; a disabled user's sessions and tokens stop working.
    disabled: Option<bool>,
}

/// Whether, after this change, an enabled admin is left.
async fn keeps_an_admin(store: &dyn Store, id: &str, after: Option<&User>) -> Result<bool, ApiError> {
    let others = accounts::admins(store).await?.into_iter().any(|u| u.id != id);
    let still = after.is_some_and(|u| !u.disabled && u.roles.iter().chain(&u.sso_roles).any(|r| r == "admin"));
    Ok(others || still)
}

/// Changes a user's name, roles or disabled flag (`If-Match`: the version read).
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", params(("id" = String, Path, description = "User id")),
    request_body = UpdateUser, responses((status = 200, body = UserView)))]
async fn update(
    State(auth): State<Arc<Auth>>,
    State(audit): State<Audit>,
    Authed(principal, caller): Authed,
    if_match: IfMatch,
    Path(id): Path<String>,
    Body(req): Body<UpdateUser>,
) -> Result<Response, ApiError> {
    let store = auth.store();
    let current = store.records::<User>().get(&id).await?.ok_or_else(|| ApiError::not_found("unknown_user", format!("no user `{id}`")))?;
    if_match.check(current.version)?;
    may_change(&auth, &principal, &current.value).await?;
    if let Some(roles) = &req.roles {
        grantable(store, &principal, roles).await?;
    }
    let name = req.name.as_deref().map(|n| accounts::check_name("name", n)).transpose()?;
    let mut after = current.value.clone();
    if let Some(name) = name {
        after.name = name;
    }
    if let Some(roles) = req.roles.clone() {
        after.roles = roles;
    }
    if let Some(disabled) = req.disabled {
        after.disabled = disabled;
    }
    if !keeps_an_admin(store, &id, Some(&after)).await? {
        return Err(ApiError::conflict("last_admin", "this would leave no enabled administrator; make someone else an admin first"));
    }
    let updated = store.records::<User>().update(&after, current.version).await?;
    auth.invalidate();
    let summary = |u: &User| serde_json::json!({ "name": u.name, "roles": u.roles, "disabled": u.disabled });
    audit
        .by(
            &caller,
            "user.update",
            format!("user/{id}"),
            serde_json::json!({ "before": summary(&current.value), "after": summary(&updated.value) }),
        )
        .await;
    Ok(with_etag(StatusCode::OK, UserView::of(&updated.value, updated.version)))
}

/// Deletes a user, its login names and its tokens.
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users", params(("id" = String, Path, description = "User id")), responses((status = 204, description = "Deleted")))]
async fn delete(
    State(auth): State<Arc<Auth>>,
    State(audit): State<Audit>,
    Authed(principal, caller): Authed,
    if_match: IfMatch,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let store = auth.store();
    let current = store.records::<User>().get(&id).await?.ok_or_else(|| ApiError::not_found("unknown_user", format!("no user `{id}`")))?;
    if_match.check(current.version)?;
    may_change(&auth, &principal, &current.value).await?;
    if !keeps_an_admin(store, &id, None).await? {
        return Err(ApiError::conflict("last_admin", "this is the last enabled administrator; make someone else an admin first"));
    }
    store.records::<User>().delete(&id, Some(current.version)).await?;
    let logins = std::iter::once(email_login(&current.value.email)).chain(current.value.identity.iter().map(|i| format!("identity/{i}")));
    for login in logins {
        let _ = store.records::<Login>().delete(&login, None).await;
    }
    for token in all::<AccessToken>(store).await?.into_iter().filter(|t| t.user == id) {
        let _ = store.records::<AccessToken>().delete(&token.id, None).await;
    }
    auth.invalidate();
    audit
        .by(
            &caller,
            "user.delete",
            format!("user/{id}"),
            serde_json::json!({ "before": { "email": current.value.email, "roles": current.value.roles } }),
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// A single-use link.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LinkCreated {
    /// The link (only when it was not mailed; it is not shown again).
    url: Option<String>,
    /// Whether it was mailed to the user.
    mailed: bool,
    /// When it expires (Unix milliseconds).
    expires_ms: i64,
}

/// Creates a password-reset link for a user (valid one hour, single use); mailed with `[server.smtp]`,
/// else returned here once.
#[utoipa::path(post, path = "/api/v1/users/{id}/password-reset", tag = "users", params(("id" = String, Path, description = "User id")),
    responses((status = 201, body = LinkCreated)))]
async fn reset_link(
    State(auth): State<Arc<Auth>>,
    State(audit): State<Audit>,
    Authed(principal, caller): Authed,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<LinkCreated>), ApiError> {
    let user = auth.user(&id).await?.ok_or_else(|| ApiError::not_found("unknown_user", format!("no user `{id}`")))?;
    may_change(&auth, &principal, &user).await?;
    let (secret, link) =
        links::create(auth.store(), LinkPurpose::PasswordReset, &user.email, vec![], &caller.actor(), Duration::from_secs(3600)).await?;
    let url = links::url(&auth.config.external_url, LinkPurpose::PasswordReset, &secret);
    let mailed = match auth.mailer() {
        Some(mailer) => match mailer.send_reset(&user.email, &url).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!("cannot mail the reset link: {e}");
                false
            }
        },
        None => false,
    };
    audit.by(&caller, "user.password_reset_link", format!("user/{id}"), serde_json::json!({ "mailed": mailed })).await;
    Ok((StatusCode::CREATED, Json(LinkCreated { url: (!mailed).then_some(url), mailed, expires_ms: link.value.expires_ms })))
}
