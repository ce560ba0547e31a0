//! Personal access tokens: `lnp_ID_SECRET`, shown once at creation, stored as a hash, expiring, limited to
//! scopes (a token acts with its user's permissions within its scopes; a token cannot create a broader
//! one). Everyone manages their own tokens; `tokens.manage` also sees and revokes other users' tokens.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use leannodes_store::{AccessToken, Store, StoreError};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

use super::Registrar;
use crate::audit::Audit;
use crate::auth::secret::{random_id, random_secret, sha256_hex};
use crate::auth::{Auth, TOKEN_PREFIX, allowed_scopes};
use crate::authz::{Permission, PermissionSet, Rule, all};
use crate::error::ApiError;
use crate::extract::{Authed, Body, Path, Query};

pub(super) fn routes(r: Registrar) -> Registrar {
    r.add(Rule::Authenticated, routes!(create)).add(Rule::Authenticated, routes!(list)).add(Rule::Authenticated, routes!(revoke))
}

/// Longest lifetime of a token.
const MAX_TTL: Duration = Duration::from_secs(366 * 24 * 3600);
/// Lifetime when none is asked for.
const DEFAULT_TTL: Duration = Duration::from_secs(90 * 24 * 3600);

/// `POST /tokens`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewToken {
    /// What it is for.
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    /// Lifetime (humantime, e.g. `"30d"`; default 90 days, at most 366 days).
    expires_in: Option<String>,
    /// What it may do (default: everything its user may do).
    scopes: Option<Vec<Permission>>,
}

/// A token (without its secret).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TokenView {
    /// Id (also the part after `lnp_`).
    id: String,
    /// The user it acts for.
    user: String,
    /// What it is for.
    name: String,
    /// What it may do.
    scopes: Vec<Permission>,
    /// When it was created (Unix milliseconds).
    created_ms: i64,
    /// When it expires.
    expires_ms: Option<i64>,
    /// When it was last used (to the minute).
    last_used_ms: Option<i64>,
}

impl TokenView {
    fn of(t: &AccessToken) -> TokenView {
        TokenView {
            id: t.id.clone(),
            user: t.user.clone(),
            name: t.name.clone(),
            scopes: PermissionSet::from_names(&t.scopes).iter().collect(),
            created_ms: t.created_ms,
            expires_ms: t.expires_ms,
            last_used_ms: t.last_used_ms,
        }
    }
}

/// A new token, with its secret (shown this once).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CreatedToken {
    /// Send it as `Authorization: Bearer …`. It is not shown again.
    token: String,
    /// The token.
    #[serde(flatten)]
    view: TokenView,
}

/// Creates a personal access token for the caller; the secret is in this answer only.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = NewToken, responses((status = 201, body = CreatedToken)))]
async fn create(
    State(store): State<Arc<dyn Store>>,
    State(audit): State<Audit>,
    Authed(principal, caller): Authed,
    Body(req): Body<NewToken>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let user = principal
        .actor
        .user_id()
        .ok_or_else(|| ApiError::conflict("no_user", "tokens belong to users; with auth mode \"none\" there are none"))?;
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::invalid_field("name", "give the token a name of 1 to 100 printable characters"));
    }
    let ttl = match req.expires_in.as_deref() {
        None => DEFAULT_TTL,
        Some(text) => humantime::parse_duration(text.trim())
            .map_err(|e| ApiError::invalid_field("expires_in", format!("not a duration ({e}); write e.g. \"30d\"")))?,
    };
    if ttl.is_zero() || ttl > MAX_TTL {
        return Err(ApiError::invalid_field("expires_in", "a token lives between one second and 366 days"));
    }
    let scopes: PermissionSet = req.scopes.map_or_else(PermissionSet::all, |s| s.into_iter().collect());
    if scopes.is_empty() {
        return Err(ApiError::invalid_field("scopes", "give at least one scope, or leave `scopes` out for all"));
    }
    if !scopes.is_subset(allowed_scopes(&principal)) {
        return Err(ApiError::forbidden("a token cannot create a token with scopes it does not have itself"));
    }
    let secret = random_secret();
    let now = crate::unix_ms();
    let record = AccessToken {
        id: random_id(),
        user: user.to_string(),
        name: name.to_string(),
        secret_hash: sha256_hex(&secret),
        scopes: scopes.iter().map(|p| p.as_str().to_string()).collect(),
        created_ms: now,
        expires_ms: Some(now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX))),
        last_used_ms: None,
    };
    store.records::<AccessToken>().create(&record).await?;
    let view = TokenView::of(&record);
    audit
        .by(
            &caller,
            "token.create",
            format!("token/{}", record.id),
            serde_json::json!({ "after": { "name": view.name, "user": view.user, "scopes": view.scopes, "expires_ms": view.expires_ms } }),
        )
        .await;
    Ok((StatusCode::CREATED, Json(CreatedToken { token: format!("{TOKEN_PREFIX}{}_{secret}", record.id), view })))
}

/// `?user=` / `?all=true`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct TokenFilter {
    /// Another user's tokens (needs `tokens.manage`).
    user: Option<String>,
    /// Every user's tokens (needs `tokens.manage`).
    all: Option<bool>,
}

/// Tokens.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TokenList {
    /// Tokens, newest first.
    tokens: Vec<TokenView>,
}

/// The caller's tokens (with `tokens.manage`: another user's, or all).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens", params(TokenFilter), responses((status = 200, body = TokenList)))]
async fn list(
    State(store): State<Arc<dyn Store>>,
    Authed(principal, _): Authed,
    Query(filter): Query<TokenFilter>,
) -> Result<Json<TokenList>, ApiError> {
    let own = principal.actor.user_id().map(str::to_string);
    let wanted: Option<String> = match (filter.all.unwrap_or(false), filter.user) {
        (true, _) | (_, Some(_)) if !principal.can(Permission::TokensManage) => {
            return Err(ApiError::forbidden("seeing other users' tokens needs the `tokens.manage` permission"));
        }
        (true, _) => None,
        (false, Some(user)) => Some(user),
        (false, None) => Some(own.unwrap_or_default()),
    };
    let mut tokens: Vec<TokenView> =
        all::<AccessToken>(&*store).await?.iter().filter(|t| wanted.as_deref().is_none_or(|u| t.user == u)).map(TokenView::of).collect();
    tokens.sort_by_key(|t| std::cmp::Reverse(t.created_ms));
    Ok(Json(TokenList { tokens }))
}

/// Revokes a token (the caller's own; with `tokens.manage`, anyone's).
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens", params(("id" = String, Path, description = "Token id")), responses((status = 204, description = "Revoked")))]
async fn revoke(
    State(store): State<Arc<dyn Store>>,
    State(auth): State<Arc<Auth>>,
    State(audit): State<Audit>,
    Authed(principal, caller): Authed,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let not_found = || ApiError::not_found("unknown_token", format!("no token `{id}`"));
    let token = store.records::<AccessToken>().get(&id).await?.ok_or_else(not_found)?;
    let own = principal.actor.user_id() == Some(token.value.user.as_str());
    if !own && !principal.can(Permission::TokensManage) {
        return Err(not_found());
    }
    match store.records::<AccessToken>().delete(&id, Some(token.version)).await {
        Ok(()) => {}
        Err(StoreError::NotFound { .. }) => return Err(not_found()),
        Err(e) => return Err(e.into()),
    }
    auth.invalidate();
    audit
        .by(
            &caller,
            "token.revoke",
            format!("token/{id}"),
            serde_json::json!({ "before": { "name": token.value.name, "user": token.value.user } }),
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}
