//! Invitations (`users.manage`): a single-use, expiring link that lets someone create their account
//! with the role the inviter chose (mailed with `[server.smtp]`, else shown once to the inviter).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use leannodes_store::{Invitation, LinkPurpose};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;

use super::Registrar;
use crate::accounts::{self, NewUser, UserView};
use crate::audit::{Audit, Event};
use crate::auth::{Auth, Caller, links, may_grant};
use crate::authz::{Permission, Rule, all};
use crate::error::ApiError;
use crate::extract::{Authed, Body, Path, UserAgent};

pub(super) fn routes(r: Registrar) -> Registrar {
    let manage = Rule::Global(Permission::UsersManage);
    r.add(manage, routes!(create)).add(manage, routes!(list)).add(manage, routes!(revoke)).add(Rule::Public, routes!(accept))
}

/// `POST /invitations`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewInvitation {
    /// Who is invited.
    email: String,
    /// The role the new user gets (default `viewer`).
    role: Option<String>,
}

/// A pending invitation.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct InvitationView {
    /// Id (to revoke it).
    id: String,
    /// Who is invited.
    email: String,
    /// Roles the new user gets.
    roles: Vec<String>,
    /// Who invited.
    created_by: String,
    /// When (Unix milliseconds).
    created_ms: i64,
    /// When it expires.
    expires_ms: i64,
}

impl InvitationView {
    fn of(i: &Invitation) -> InvitationView {
        InvitationView {
            id: i.token_hash.clone(),
            email: i.email.clone(),
            roles: i.roles.clone(),
            created_by: i.created_by.clone(),
            created_ms: i.created_ms,
            expires_ms: i.expires_ms,
        }
    }
}

/// A new invitation.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct InvitationCreated {
    /// The invitation.
    #[serde(flatten)]
    invitation: InvitationView,
    /// The link (only when it was not mailed; it is not shown again).
    url: Option<String>,
    /// Whether it was mailed.
    mailed: bool,
}

/// Invites someone: a single-use link, valid for `invitation_ttl`.
#[utoipa::path(post, path = "/api/v1/invitations", tag = "users", request_body = NewInvitation, responses((status = 201, body = InvitationCreated)))]
async fn create(
    State(auth): State<Arc<Auth>>,
    State(audit): State<Audit>,
    Authed(principal, caller): Authed,
    Body(req): Body<NewInvitation>,
) -> Result<(StatusCode, Json<InvitationCreated>), ApiError> {
    let email = accounts::normalize_email("email", &req.email)?;
    let roles = vec![req.role.unwrap_or_else(|| "viewer".into())];
    let perms = accounts::check_roles(auth.store(), "role", &roles).await?;
    if !may_grant(&principal, perms) {
        return Err(ApiError::forbidden("you cannot invite with a role whose permissions you do not have yourself"));
    }
    if auth.user_by_email(&email).await?.is_some() {
        return Err(ApiError::conflict("email_taken", format!("`{email}` has an account already")));
    }
    let (secret, link) =
        links::create(auth.store(), LinkPurpose::Invitation, &email, roles, &caller.actor(), auth.config.invitation_ttl).await?;
    let url = links::url(&auth.config.external_url, LinkPurpose::Invitation, &secret);
    let mailed = match auth.mailer() {
        Some(mailer) => {
            let expires = humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(link.value.expires_ms).unwrap_or(0)),
            );
            let inviter = principal.actor.audit_name();
            let inviter = match &principal.actor {
                crate::authz::Actor::User { email, .. } | crate::authz::Actor::Token { email, .. } => email.clone(),
                crate::authz::Actor::Anonymous => inviter,
            };
            match mailer.send_invitation(&email, &url, &inviter, &expires.to_string()).await {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!("cannot mail the invitation: {e}");
                    false
                }
            }
        }
        None => false,
    };
    audit
        .by(
            &caller,
            "invitation.create",
            format!("invitation/{}", link.value.token_hash),
            serde_json::json!({ "after": { "email": email, "roles": link.value.roles }, "mailed": mailed }),
        )
        .await;
    Ok((
        StatusCode::CREATED,
        Json(InvitationCreated { invitation: InvitationView::of(&link.value), url: (!mailed).then_some(url), mailed }),
    ))
}

/// Pending invitations.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct InvitationList {
    /// Newest first.
    invitations: Vec<InvitationView>,
}

/// Invitations not yet used or expired.
#[utoipa::path(get, path = "/api/v1/invitations", tag = "users", responses((status = 200, body = InvitationList)))]
async fn list(State(auth): State<Arc<Auth>>) -> Result<Json<InvitationList>, ApiError> {
    let mut invitations: Vec<InvitationView> =
        all::<Invitation>(auth.store()).await?.iter().filter(|i| i.purpose == LinkPurpose::Invitation).map(InvitationView::of).collect();
    invitations.sort_by_key(|i| std::cmp::Reverse(i.created_ms));
    Ok(Json(InvitationList { invitations }))
}

/// Revokes an invitation.
#[utoipa::path(delete, path = "/api/v1/invitations/{token}", tag = "users", params(("token" = String, Path, description = "The invitation's id")), responses((status = 204, description = "Revoked")))]
async fn revoke(
    State(auth): State<Arc<Auth>>,
    State(audit): State<Audit>,
    Authed(_, caller): Authed,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let not_found = || ApiError::not_found("unknown_invitation", format!("no pending invitation `{id}`"));
    let link = auth
        .store()
        .records::<Invitation>()
        .get(&id)
        .await?
        .filter(|l| l.value.purpose == LinkPurpose::Invitation)
        .ok_or_else(not_found)?;
    links::consume(auth.store(), &link).await.map_err(|_| not_found())?;
    audit
        .by(&caller, "invitation.revoke", format!("invitation/{id}"), serde_json::json!({ "before": { "email": link.value.email } }))
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /invitations/{token}/accept`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Acceptance {
    /// Display name.
    #[serde(default)]
    name: String,
    /// Password (at least 10 characters).
    password: String,
}

/// A new user, signed in.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Welcome {
    /// The user.
    user: UserView,
    /// Send it as `X-CSRF-Token` with unsafe requests made with the session cookie.
    csrf_token: String,
}

/// Accepts an invitation (single use): creates the account and signs in.
#[utoipa::path(post, path = "/api/v1/invitations/{token}/accept", tag = "users",
    params(("token" = String, Path, description = "The secret from the invitation link")), request_body = Acceptance, responses((status = 201, body = Welcome)))]
async fn accept(
    State(auth): State<Arc<Auth>>,
    State(audit): State<Audit>,
    caller: Caller,
    UserAgent(agent): UserAgent,
    Path(token): Path<String>,
    Body(req): Body<Acceptance>,
) -> Result<Response, ApiError> {
    let link = links::peek(auth.store(), &token, LinkPurpose::Invitation).await?;
    let name = accounts::check_name("name", &req.name)?;
    crate::auth::password::check_policy("password", &req.password)?;
    let new = NewUser {
        email: link.value.email.clone(),
        name,
        password: Some(req.password),
        roles: link.value.roles.clone(),
        ..NewUser::default()
    };
    let user = links::redeem_for_user(auth.store(), &link, new).await?;
    auth.invalidate();
    audit
        .record(Event {
            actor: format!("user:{}", user.value.id),
            source: &caller.address,
            action: "invitation.accept",
            target: format!("user/{}", user.value.id),
            detail: serde_json::json!({ "after": { "email": user.value.email, "roles": user.value.roles }, "invited_by": link.value.created_by }),
        })
        .await;
    let (cookie, csrf_token) = auth.start_session(&user.value, "password", &caller.address, &agent).await?;
    let mut response = (StatusCode::CREATED, Json(Welcome { user: UserView::of(&user.value, user.version), csrf_token })).into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(response)
}
