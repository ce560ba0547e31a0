//! Signing in and out: password login (throttled per account and per address, the same answer whether
//! or not the account exists), the caller's profile and permissions, the first administrator's setup,
//! password changes and resets.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use leannodes_config::AuthMode;
use leannodes_store::LinkPurpose;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;

use super::Registrar;
use crate::accounts::{self, NewUser, UserView};
use crate::audit::{Audit, Event};
use crate::auth::{Auth, Caller, SESSION_COOKIE, Via, links, throttle};
use crate::authz::{Permission, Rule};
use crate::error::ApiError;
use crate::extract::{Authed, Body, Path, UserAgent};

pub(super) fn routes(r: Registrar) -> Registrar {
    r.add(Rule::Public, routes!(login))
        .add(Rule::Authenticated, routes!(logout))
        .add(Rule::Authenticated, routes!(me))
        .add(Rule::Public, routes!(providers))
        .add(Rule::Public, routes!(setup))
        .add(Rule::Authenticated, routes!(change_password))
        .add(Rule::Public, routes!(request_reset))
        .add(Rule::Public, routes!(reset))
}

/// `POST /auth/login`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoginRequest {
    /// E-mail address.
    email: String,
    /// Password.
    password: String,
}

/// A signed-in user.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SignedIn {
    /// The user.
    user: UserView,
    /// Send it as `X-CSRF-Token` with every unsafe request made with the session cookie.
    csrf_token: String,
}

/// Answers with the session cookie set.
fn signed_in(cookie: axum::http::HeaderValue, body: SignedIn, status: StatusCode) -> Response {
    let mut response = (status, Json(body)).into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    response
}

/// Signs in with a password; sets the `leannodes_session` cookie and returns the CSRF token.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest, responses((status = 200, body = SignedIn)))]
async fn login(
    State(auth): State<Arc<Auth>>,
    State(audit): State<Audit>,
    caller: Caller,
    UserAgent(agent): UserAgent,
    Body(req): Body<LoginRequest>,
) -> Result<Response, ApiError> {
    if auth.config.mode == AuthMode::None {
        return Err(ApiError::conflict("auth_disabled", "authentication is off (auth mode \"none\"): no sign-in needed"));
    }
    let email = req.email.trim().to_lowercase();
    let keys = [throttle::account_key(&email), throttle::address_key(&caller.address)];
    let now = crate::unix_ms();
    if let Some(wait) = throttle::blocked(auth.store(), &[&keys[0], &keys[1]], now).await? {
        return Err(ApiError::too_many_requests(wait, format!("too many failed sign-ins; try again in {wait} s")));
    }
    let Some(user) = auth.check_password(&email, &req.password).await? else {
        throttle::fail(auth.store(), &keys[0], throttle::ACCOUNT, now).await?;
        throttle::fail(auth.store(), &keys[1], throttle::ADDRESS, now).await?;
        audit
            .record(Event {
                actor: "anonymous".into(),
                source: &caller.address,
                action: "auth.login_failed",
                target: format!("login/{}", email.chars().take(254).collect::<String>()),
                detail: serde_json::json!({ "method": "password" }),
            })
            .await;
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "invalid_credentials", "the e-mail address or the password is wrong"));
    };
    throttle::clear(auth.store(), &keys[0]).await;
    let (cookie, csrf_token) = auth.start_session(&user, "password", &caller.address, &agent).await?;
    audit
        .record(Event {
            actor: format!("user:{}", user.id),
            source: &caller.address,
            action: "auth.login",
            target: format!("user/{}", user.id),
            detail: serde_json::json!({ "method": "password" }),
        })
        .await;
    let version = auth.store().records::<leannodes_store::User>().get(&user.id).await?.map_or(0, |v| v.version);
    Ok(signed_in(cookie, SignedIn { user: UserView::of(&user, version), csrf_token }, StatusCode::OK))
}

/// Signs out: ends the session and clears the cookie.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", responses((status = 204, description = "Signed out")))]
async fn logout(State(auth): State<Arc<Auth>>, State(audit): State<Audit>, Authed(_, caller): Authed) -> Result<Response, ApiError> {
    if let Via::Session { id_hash, .. } = &caller.via {
        auth.end_session(id_hash).await?;
    }
    audit
        .by(
            &caller,
            "auth.logout",
            caller.principal.as_ref().and_then(|p| p.actor.user_id().map(|u| format!("user/{u}"))).unwrap_or_default(),
            serde_json::json!({}),
        )
        .await;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(header::SET_COOKIE, auth.cookie(SESSION_COOKIE, "", None));
    Ok(response)
}

/// The caller.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Me {
    /// The user (`null` with auth mode "none").
    user: Option<UserView>,
    /// How the request authenticated: `session`, `token` or `none`.
    via: &'static str,
    /// Permissions instance-wide.
    permissions: Vec<Permission>,
    /// Permissions on single flows, from grants.
    flow_permissions: BTreeMap<String, Vec<Permission>>,
    /// The token's scopes, for a token.
    scopes: Option<Vec<Permission>>,
    /// The session's CSRF token, for a session.
    csrf_token: Option<String>,
}

/// Who the caller is, what it may do, and (for a session) its CSRF token.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", responses((status = 200, body = Me)))]
async fn me(State(auth): State<Arc<Auth>>, Authed(principal, caller): Authed) -> Result<Json<Me>, ApiError> {
    let user = match principal.actor.user_id() {
        Some(id) => auth.store().records::<leannodes_store::User>().get(id).await?.map(|v| UserView::of(&v.value, v.version)),
        None => None,
    };
    Ok(Json(Me {
        user,
        via: match caller.via {
            Via::Session { .. } => "session",
            Via::Token => "token",
            Via::Open | Via::Nothing => "none",
        },
        permissions: principal.global.iter().collect(),
        flow_permissions: principal.flows.iter().map(|(f, s)| (f.clone(), s.iter().collect())).collect(),
        scopes: principal.scopes.map(|s| s.iter().collect()),
        csrf_token: match &caller.via {
            Via::Session { csrf, .. } => Some(csrf.clone()),
            _ => None,
        },
    }))
}

/// A single-sign-on provider button.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SsoProvider {
    /// `oidc` or `saml`.
    kind: &'static str,
    /// Provider name (OIDC).
    name: String,
    /// Button text.
    label: String,
    /// Where the button goes.
    start_url: String,
}

/// How one can sign in here.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Providers {
    /// `password` or `none`.
    mode: &'static str,
    /// Single sign-on providers.
    sso: Vec<SsoProvider>,
    /// No user exists yet: the first administrator must be set up.
    setup_required: bool,
}

/// How to sign in (for the login page).
#[utoipa::path(get, path = "/api/v1/auth/providers", tag = "auth", responses((status = 200, body = Providers)))]
async fn providers(State(auth): State<Arc<Auth>>) -> Result<Json<Providers>, ApiError> {
    let mut sso: Vec<SsoProvider> = auth
        .config
        .oidc
        .iter()
        .map(|p| SsoProvider {
            kind: "oidc",
            name: p.name.clone(),
            label: p.label.clone(),
            start_url: format!("/api/v1/auth/oidc/{}/start", p.name),
        })
        .collect();
    if let Some(saml) = &auth.config.saml {
        sso.push(SsoProvider { kind: "saml", name: "saml".into(), label: saml.label.clone(), start_url: "/api/v1/auth/saml/login".into() });
    }
    Ok(Json(Providers {
        mode: match auth.config.mode {
            AuthMode::Password => "password",
            AuthMode::None => "none",
        },
        sso,
        setup_required: auth.config.mode == AuthMode::Password && !accounts::any_user(auth.store()).await?,
    }))
}

/// `POST /auth/setup`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetupRequest {
    /// The secret of the setup link printed at start.
    token: String,
    /// The administrator's e-mail address.
    email: String,
    /// Display name.
    #[serde(default)]
    name: String,
    /// Password.
    password: String,
}

/// Creates the first administrator with the one-time setup link printed at start, and signs in.
#[utoipa::path(post, path = "/api/v1/auth/setup", tag = "auth", request_body = SetupRequest, responses((status = 201, body = SignedIn)))]
async fn setup(
    State(auth): State<Arc<Auth>>,
    State(audit): State<Audit>,
    caller: Caller,
    UserAgent(agent): UserAgent,
    Body(req): Body<SetupRequest>,
) -> Result<Response, ApiError> {
    if accounts::any_user(auth.store()).await? {
        return Err(ApiError::conflict("setup_done", "an administrator exists already; sign in instead"));
    }
    let link = links::peek(auth.store(), &req.token, LinkPurpose::Setup).await?;
    accounts::normalize_email("email", &req.email)?;
    crate::auth::password::check_policy("password", &req.password)?;
    let new = NewUser { email: req.email, name: req.name, password: Some(req.password), roles: vec!["admin".into()], ..NewUser::default() };
    let user = links::redeem_for_user(auth.store(), &link, new).await?;
    auth.invalidate();
    audit
        .record(Event {
            actor: format!("user:{}", user.value.id),
            source: &caller.address,
            action: "auth.setup",
            target: format!("user/{}", user.value.id),
            detail: serde_json::json!({ "after": { "email": user.value.email, "roles": user.value.roles } }),
        })
        .await;
    let (cookie, csrf_token) = auth.start_session(&user.value, "password", &caller.address, &agent).await?;
    Ok(signed_in(cookie, SignedIn { user: UserView::of(&user.value, user.version), csrf_token }, StatusCode::CREATED))
}

/// `POST /auth/password`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PasswordChange {
    /// The current password.
    current_password: String,
    /// The new password (at least 10 characters).
    new_password: String,
}

/// Changes the caller's password; every other session of the user ends, this one goes on.
#[utoipa::path(post, path = "/api/v1/auth/password", tag = "auth", request_body = PasswordChange, responses((status = 200, body = SignedIn)))]
async fn change_password(
    State(auth): State<Arc<Auth>>,
    State(audit): State<Audit>,
    Authed(principal, caller): Authed,
    UserAgent(agent): UserAgent,
    Body(req): Body<PasswordChange>,
) -> Result<Response, ApiError> {
    let user_id =
        principal.actor.user_id().ok_or_else(|| ApiError::conflict("no_user", "there is no user to change (auth mode \"none\")"))?;
    let user = auth.user(user_id).await?.ok_or_else(|| ApiError::unauthenticated("the user no longer exists"))?;
    if auth.check_password(&user.email, &req.current_password).await?.is_none() {
        return Err(ApiError::invalid_field("current_password", "the current password is wrong"));
    }
    let updated = accounts::set_password(auth.store(), user_id, &req.new_password).await.map_err(|e| {
        if e.code() == "invalid_field" {
            ApiError::invalid_field("new_password", e.to_string().split(": ").last().unwrap_or_default())
        } else {
            e
        }
    })?;
    if let Via::Session { id_hash, .. } = &caller.via {
        auth.end_session(id_hash).await?;
    }
    auth.invalidate();
    audit.by(&caller, "auth.password_change", format!("user/{user_id}"), serde_json::json!({})).await;
    let (cookie, csrf_token) = auth.start_session(&updated.value, "password", &caller.address, &agent).await?;
    Ok(signed_in(cookie, SignedIn { user: UserView::of(&updated.value, updated.version), csrf_token }, StatusCode::OK))
}

/// `POST /auth/password-reset`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResetRequest {
    /// The account's e-mail address.
    email: String,
}

/// What happened to a request that must not tell whether an account exists.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Accepted {
    /// Always `accepted`.
    status: &'static str,
    /// What happens next.
    message: String,
}

/// Asks for a password-reset link by mail. The answer is the same whether or not the account exists;
/// without `[server.smtp]` no mail is sent (an administrator creates reset links instead).
#[utoipa::path(post, path = "/api/v1/auth/password-reset", tag = "auth", request_body = ResetRequest, responses((status = 202, body = Accepted)))]
async fn request_reset(
    State(auth): State<Arc<Auth>>,
    State(audit): State<Audit>,
    caller: Caller,
    Body(req): Body<ResetRequest>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let email = accounts::normalize_email("email", &req.email)?;
    let now = crate::unix_ms();
    let address = throttle::address_key(&caller.address);
    if let Some(wait) = throttle::blocked(auth.store(), &[&address], now).await? {
        return Err(ApiError::too_many_requests(wait, format!("too many requests; try again in {wait} s")));
    }
    // Counted like a failed sign-in, so that the address cannot mail-bomb an account.
    throttle::fail(auth.store(), &address, throttle::ADDRESS, now).await?;
    let mailed = match (auth.mailer(), auth.user_by_email(&email).await?) {
        (Some(mailer), Some(user)) if !user.value.disabled => {
            let (secret, _) =
                links::create(auth.store(), LinkPurpose::PasswordReset, &email, vec![], "self", std::time::Duration::from_secs(3600))
                    .await?;
            let url = links::url(&auth.config.external_url, LinkPurpose::PasswordReset, &secret);
            mailer.send_reset(&email, &url).await.is_ok()
        }
        _ => false,
    };
    audit
        .record(Event {
            actor: "anonymous".into(),
            source: &caller.address,
            action: "auth.password_reset_requested",
            target: format!("login/{email}"),
            detail: serde_json::json!({ "mailed": mailed }),
        })
        .await;
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            status: "accepted",
            message: "if the address belongs to an account and mail is configured, a reset link is on its way".into(),
        }),
    ))
}

/// `POST /auth/reset/{token}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResetPassword {
    /// The new password.
    password: String,
}

/// Sets a new password with a reset link (single use); every session of the user ends.
#[utoipa::path(post, path = "/api/v1/auth/reset/{token}", tag = "auth",
    params(("token" = String, Path, description = "The secret of the reset link")), request_body = ResetPassword, responses((status = 200, body = UserView)))]
async fn reset(
    State(auth): State<Arc<Auth>>,
    State(audit): State<Audit>,
    caller: Caller,
    Path(token): Path<String>,
    Body(req): Body<ResetPassword>,
) -> Result<Json<UserView>, ApiError> {
    let link = links::peek(auth.store(), &token, LinkPurpose::PasswordReset).await?;
    crate::auth::password::check_policy("password", &req.password)?;
    let user = auth
        .user_by_email(&link.value.email)
        .await?
        .ok_or_else(|| ApiError::not_found("invalid_link", "the account of this link no longer exists"))?;
    links::consume(auth.store(), &link).await?;
    let updated = accounts::set_password(auth.store(), &user.value.id, &req.password).await?;
    auth.invalidate();
    audit
        .record(Event {
            actor: format!("user:{}", user.value.id),
            source: &caller.address,
            action: "auth.password_reset",
            target: format!("user/{}", user.value.id),
            detail: serde_json::json!({ "link_created_by": link.value.created_by }),
        })
        .await;
    Ok(Json(UserView::of(&updated.value, updated.version)))
}
