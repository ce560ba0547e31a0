//! Authentication: who is calling. Browsers sign in with a password (or SSO) and get a session cookie
//! (`leannodes_session`: HttpOnly, SameSite=Lax, Secure behind TLS); their unsafe requests must also
//! send the session's CSRF token in `X-CSRF-Token`. Scripts send a personal access token
//! (`Authorization: Bearer lnp_…`), which needs no CSRF token. Sessions, tokens and login throttling
//! live in the store, so every replica accepts them. Only hashes of secrets are stored.
//!
//! The principal of a credential is cached for a second (and dropped at once when something changes
//! here), so a busy dashboard or script does not read the store on every request; a change made on
//! another replica shows within that second.

pub(crate) mod links;
pub(crate) mod oidc;
pub(crate) mod password;
pub(crate) mod saml;
pub(crate) mod secret;
pub(crate) mod sso;
pub(crate) mod throttle;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, Method, header};
use leannodes_config::AuthMode;
use leannodes_store::{AccessToken, Login, Session, Store, StoreError, User};
use parking_lot::Mutex;

use crate::authz::{Actor, PermissionSet, Policy, Principal};
use crate::error::ApiError;
use secret::{constant_time_eq, random_secret, sha256_hex};

/// The session cookie.
pub const SESSION_COOKIE: &str = "leannodes_session";
/// The header carrying the CSRF token of a cookie-authenticated request.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The prefix of personal access tokens.
pub const TOKEN_PREFIX: &str = "lnp_";

/// How long a cached principal is used.
const CACHE_TTL: Duration = Duration::from_secs(1);
/// While the store does not answer, a token verified this recently on this replica is still accepted
/// (so Prometheus can scrape the `leannodes_store_up 0` that tells of the outage). Nothing can be revoked
/// while the store is down, and every change of users, roles or tokens here clears the cache.
const STALE_TTL: Duration = Duration::from_secs(300);

/// The longest a token check waits for the store before it falls back to a token verified within
/// [`STALE_TTL`] (or answers `503 store_unavailable`).
const TOKEN_PATIENCE: Duration = Duration::from_secs(2);
/// Token "last used" times are written at most this often.
const LAST_USED_EVERY: Duration = Duration::from_secs(60);

/// How a request authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// It did not.
    Nothing,
    /// `mode = "none"`: nobody needs to.
    Open,
    /// A session cookie; unsafe requests must carry this CSRF token.
    Session {
        /// The session's CSRF token.
        csrf: String,
        /// The session's key (hash of its secret).
        id_hash: String,
    },
    /// A personal access token.
    Token,
}

/// The caller of a request, put into its extensions before routing.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Who, when authenticated.
    pub principal: Option<Arc<Principal>>,
    /// How.
    pub via: Via,
    /// The client's address (for audit and throttling).
    pub address: String,
}

impl Caller {
    /// The principal, or `401`.
    pub fn require(&self) -> Result<&Arc<Principal>, ApiError> {
        self.principal.as_ref().ok_or_else(|| {
            ApiError::unauthenticated(
                "sign in first (POST /api/v1/auth/login), or send a personal access token as `Authorization: Bearer lnp_…`",
            )
        })
    }

    /// The audit actor.
    pub fn actor(&self) -> String {
        self.principal.as_ref().map_or_else(|| "anonymous".to_string(), |p| p.actor.audit_name())
    }
}

/// The authentication service.
pub struct Auth {
    /// `[server.auth]`.
    pub config: leannodes_config::Auth,
    store: Arc<dyn Store>,
    /// Roles, groups and grants.
    pub policy: Policy,
    /// A hash checked when the account does not exist, so that the answer takes as long.
    dummy_hash: String,
    cache: Mutex<HashMap<String, (Instant, Arc<Principal>)>>,
    last_used: Mutex<HashMap<String, Instant>>,
    mailer: Option<crate::mail::Mailer>,
    /// OIDC providers.
    pub(crate) oidc: oidc::Providers,
    /// The SAML service provider, with `[server.auth.saml]`.
    pub(crate) saml: Option<saml::Saml>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth").field("mode", &self.config.mode).finish_non_exhaustive()
    }
}

impl Auth {
    /// The service over `store`, mailing through `mailer` when there is one.
    pub async fn new(config: leannodes_config::Auth, store: Arc<dyn Store>, mailer: Option<crate::mail::Mailer>) -> Result<Auth, ApiError> {
        let dummy_hash = password::hash(&random_secret()).await?;
        let oidc = oidc::Providers::new(config.oidc.clone(), config.external_url.clone());
        let saml = config
            .saml
            .as_ref()
            .map(|s| saml::Saml::new(s, &config.external_url))
            .transpose()
            .map_err(|e| ApiError::bad_request("invalid_saml", format!("[server.auth.saml]: {e}")))?;
        Ok(Auth {
            config,
            store,
            policy: Policy::default(),
            dummy_hash,
            cache: Mutex::default(),
            last_used: Mutex::default(),
            mailer,
            oidc,
            saml,
        })
    }

    /// The mailer, with `[server.smtp]`.
    pub fn mailer(&self) -> Option<&crate::mail::Mailer> {
        self.mailer.as_ref()
    }

    /// The store.
    pub fn store(&self) -> &dyn Store {
        &*self.store
    }

    /// Whether cookies get `Secure` (the external URL is https).
    fn secure_cookies(&self) -> bool {
        self.config.external_url.starts_with("https://")
    }

    /// Forgets cached principals and the policy (after a change to users, roles, groups, grants,
    /// sessions or tokens).
    pub fn invalidate(&self) {
        self.cache.lock().clear();
        self.policy.invalidate();
    }

    fn cached(&self, key: &str) -> Option<Arc<Principal>> {
        self.cached_within(key, CACHE_TTL)
    }

    fn cached_within(&self, key: &str, ttl: Duration) -> Option<Arc<Principal>> {
        let cache = self.cache.lock();
        cache.get(key).filter(|(at, _)| at.elapsed() < ttl).map(|(_, p)| p.clone())
    }

    fn remember(&self, key: String, principal: Arc<Principal>) {
        let mut cache = self.cache.lock();
        if cache.len() > 10_000 {
            cache.retain(|_, (at, _)| at.elapsed() < STALE_TTL);
        }
        cache.insert(key, (Instant::now(), principal));
    }

    /// Who sent a request with these headers. A bad token is an error; a bad or expired session cookie
    /// just means "not signed in".
    pub async fn identify(&self, headers: &HeaderMap, address: String) -> Result<Caller, ApiError> {
        if self.config.mode == AuthMode::None {
            check_loopback_host(headers)?;
            return Ok(Caller { principal: Some(Arc::new(Principal::anonymous_admin())), via: Via::Open, address });
        }
        if let Some(value) = headers.get(header::AUTHORIZATION) {
            let text = value.to_str().unwrap_or_default();
            let token = text
                .strip_prefix("Bearer ")
                .or_else(|| text.strip_prefix("bearer "))
                .ok_or_else(|| ApiError::unauthenticated("the Authorization header must be `Bearer lnp_…`"))?;
            let principal = self.token_principal(token.trim()).await?;
            return Ok(Caller { principal: Some(principal), via: Via::Token, address });
        }
        if let Some(secret) = cookie(headers, SESSION_COOKIE) {
            let id_hash = sha256_hex(secret);
            if let Some(principal) = self.session_principal(&id_hash).await? {
                return Ok(Caller { principal: Some(principal), via: Via::Session { csrf: csrf_token(secret), id_hash }, address });
            }
        }
        Ok(Caller { principal: None, via: Via::Nothing, address })
    }

    async fn session_principal(&self, id_hash: &str) -> Result<Option<Arc<Principal>>, ApiError> {
        if let Some(p) = self.cached(id_hash) {
            return Ok(Some(p));
        }
        let Some(session) = self.store.records::<Session>().get(id_hash).await? else { return Ok(None) };
        let Some(user) = self.user(&session.value.user).await? else { return Ok(None) };
        if user.disabled || session.value.created_ms < user.sessions_after_ms {
            return Ok(None);
        }
        let snapshot = self.policy.snapshot(&*self.store).await?;
        let principal = Arc::new(snapshot.principal(Actor::User { id: user.id.clone(), email: user.email.clone() }, &user, None));
        self.remember(id_hash.to_string(), principal.clone());
        Ok(Some(principal))
    }

    async fn token_principal(&self, token: &str) -> Result<Arc<Principal>, ApiError> {
        let invalid =
            || ApiError::new(axum::http::StatusCode::UNAUTHORIZED, "invalid_token", "the access token is unknown, expired or revoked");
        let (id, secret) = parse_token(token).ok_or_else(invalid)?;
        let secret_hash = sha256_hex(secret);
        let cache_key = format!("token/{id}/{secret_hash}");
        if let Some(p) = self.cached(&cache_key) {
            self.touch(id);
            return Ok(p);
        }
        // Bounded: a store that accepts connections but never answers would otherwise hold every
        // authenticated call (the metrics scrape among them) until the pool's connect timeout.
        let verified = leannodes_store::within(TOKEN_PATIENCE, "verify token", async {
            Ok::<_, leannodes_store::StoreError>(self.verify_token(id, &secret_hash, &cache_key).await)
        })
        .await
        .unwrap_or_else(|timed_out| Err(timed_out.into()));
        match verified {
            Err(e) if e.code() == "store_unavailable" => {
                let stale = self.cached_within(&cache_key, STALE_TTL);
                if stale.is_some() {
                    tracing::debug!(token = id, "the store does not answer; a token verified in the last 5 minutes is accepted");
                }
                stale.ok_or(e)
            }
            verified => verified,
        }
    }

    async fn verify_token(&self, id: &str, secret_hash: &str, cache_key: &str) -> Result<Arc<Principal>, ApiError> {
        let invalid =
            || ApiError::new(axum::http::StatusCode::UNAUTHORIZED, "invalid_token", "the access token is unknown, expired or revoked");
        let record = self.store.records::<AccessToken>().get(id).await?.ok_or_else(invalid)?;
        if !constant_time_eq(record.value.secret_hash.as_bytes(), secret_hash.as_bytes()) {
            return Err(invalid());
        }
        let user = self.user(&record.value.user).await?.filter(|u| !u.disabled).ok_or_else(invalid)?;
        let scopes = PermissionSet::from_names(&record.value.scopes);
        let snapshot = self.policy.snapshot(&*self.store).await?;
        let actor = Actor::Token { id: id.to_string(), user: user.id.clone(), email: user.email.clone() };
        let principal = Arc::new(snapshot.principal(actor, &user, Some(scopes)));
        self.remember(cache_key.to_string(), principal.clone());
        self.touch(id);
        Ok(principal)
    }

    /// Records a token's use, at most once a minute, off the request path.
    fn touch(&self, id: &str) {
        {
            let mut seen = self.last_used.lock();
            if seen.get(id).is_some_and(|at| at.elapsed() < LAST_USED_EVERY) {
                return;
            }
            seen.insert(id.to_string(), Instant::now());
        }
        let (store, id) = (self.store.clone(), id.to_string());
        tokio::spawn(async move {
            let records = store.records::<AccessToken>();
            if let Ok(Some(mut token)) = records.get(&id).await {
                token.value.last_used_ms = Some(crate::unix_ms());
                let _ = records.update(&token.value, token.version).await;
            }
        });
    }

    /// A user by id.
    pub async fn user(&self, id: &str) -> Result<Option<User>, ApiError> {
        Ok(self.store.records::<User>().get(id).await?.map(|v| v.value))
    }

    /// The user with this e-mail address.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<leannodes_store::Versioned<User>>, ApiError> {
        let Some(login) = self.store.records::<Login>().get(&email_login(email)).await? else { return Ok(None) };
        Ok(self.store.records::<User>().get(&login.value.user).await?)
    }

    /// Checks a password for an e-mail address; the same time is spent whether or not the account
    /// exists. `None`: wrong address, wrong password, disabled user or no password.
    pub async fn check_password(&self, email: &str, password: &str) -> Result<Option<User>, ApiError> {
        let user = self.user_by_email(email).await?.map(|v| v.value);
        let phc = user.as_ref().and_then(|u| u.password_hash.clone()).unwrap_or_else(|| self.dummy_hash.clone());
        let matches = password::verify(password, &phc).await;
        Ok(user.filter(|u| matches && u.password_hash.is_some() && !u.disabled))
    }

    /// Starts a session for `user`; returns the `Set-Cookie` value and the CSRF token.
    pub async fn start_session(
        &self,
        user: &User,
        method: &str,
        address: &str,
        user_agent: &str,
    ) -> Result<(HeaderValue, String), ApiError> {
        let secret = random_secret();
        let now = crate::unix_ms();
        let ttl = i64::try_from(self.config.session_ttl.as_millis()).unwrap_or(i64::MAX);
        let session = Session {
            id_hash: sha256_hex(&secret),
            user: user.id.clone(),
            method: method.to_string(),
            created_ms: now,
            expires_ms: now.saturating_add(ttl),
            address: address.to_string(),
            user_agent: user_agent.chars().take(200).collect(),
        };
        self.store.records::<Session>().create(&session).await?;
        let cookie = self.cookie(SESSION_COOKIE, &secret, Some(self.config.session_ttl));
        Ok((cookie, csrf_token(&secret)))
    }

    /// Ends a session.
    pub async fn end_session(&self, id_hash: &str) -> Result<(), ApiError> {
        match self.store.records::<Session>().delete(id_hash, None).await {
            Ok(()) | Err(StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        self.cache.lock().remove(id_hash);
        Ok(())
    }

    /// A `Set-Cookie` value (`max_age` `None`: delete the cookie).
    pub fn cookie(&self, name: &str, value: &str, max_age: Option<Duration>) -> HeaderValue {
        let secure = if self.secure_cookies() { "; Secure" } else { "" };
        let age = max_age.map_or(0, |d| d.as_secs());
        HeaderValue::from_str(&format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={age}{secure}"))
            .unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// The SSO binding cookie: sent back on the provider's redirect (a cross-site POST for SAML, hence
    /// `SameSite=None` behind TLS).
    pub fn binding_cookie(&self, value: &str, max_age: Option<Duration>) -> HeaderValue {
        let attributes = if self.secure_cookies() { "SameSite=None; Secure" } else { "SameSite=Lax" };
        let age = max_age.map_or(0, |d| d.as_secs());
        HeaderValue::from_str(&format!("{}={value}; Path=/api/v1/auth; HttpOnly; {attributes}; Max-Age={age}", sso::BINDING_COOKIE))
            .unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// The permissions a user has instance-wide now (for `GET /auth/me` and token scopes).
    pub async fn principal_of(&self, user: &User) -> Result<Principal, ApiError> {
        let snapshot = self.policy.snapshot(&*self.store).await?;
        Ok(snapshot.principal(Actor::User { id: user.id.clone(), email: user.email.clone() }, user, None))
    }
}

/// Whether an unsafe request of a session carries its CSRF token; safe methods and tokens need none.
pub(crate) fn csrf_ok(method: &Method, headers: &HeaderMap, via: &Via) -> Result<(), ApiError> {
    let Via::Session { csrf, .. } = via else { return Ok(()) };
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    match headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()) {
        None => Err(ApiError::forbidden("requests signed in with the session cookie must send the CSRF token in X-CSRF-Token (from the login answer or GET /api/v1/auth/me)")
            .with_details(serde_json::json!({ "reason": "csrf_missing" }))),
        Some(sent) if constant_time_eq(sent.as_bytes(), csrf.as_bytes()) => Ok(()),
        Some(_) => Err(ApiError::forbidden("the X-CSRF-Token does not belong to this session").with_details(serde_json::json!({ "reason": "csrf_invalid" }))),
    }
}

/// Refuses cross-site unsafe requests (`Sec-Fetch-Site: cross-site`, or an `Origin` other than the
/// host asked), whatever authenticates them.
pub(crate) fn same_origin(method: &Method, headers: &HeaderMap) -> Result<(), ApiError> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let cross_site = headers.get("sec-fetch-site").is_some_and(|v| v.as_bytes() == b"cross-site");
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let foreign_origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .filter(|o| *o != "null")
        .is_some_and(|origin| origin.split_once("://").map_or(origin, |(_, rest)| rest) != host);
    if cross_site || foreign_origin {
        return Err(ApiError::forbidden("cross-site requests are refused").with_details(serde_json::json!({ "reason": "cross_origin" })));
    }
    Ok(())
}

/// With `mode = "none"` only loopback host names are answered (against DNS rebinding).
fn check_loopback_host(headers: &HeaderMap) -> Result<(), ApiError> {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let name = host.rsplit_once(':').filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit())).map_or(host, |(h, _)| h);
    let name = name.trim_start_matches('[').trim_end_matches(']');
    let loopback = name == "localhost" || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()) || name.is_empty();
    if loopback {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!("with auth mode \"none\" only loopback host names are served, not `{host}`")))
    }
}

/// The CSRF token of a session: derived from its secret, so it needs no storage and dies with it.
pub(crate) fn csrf_token(session_secret: &str) -> String {
    sha256_hex(&format!("leannodes-csrf:{session_secret}"))[..40].to_string()
}

/// The value of a cookie.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// Splits `lnp_ID_SECRET`.
pub(crate) fn parse_token(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(TOKEN_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    (!id.is_empty() && !secret.is_empty() && id.len() <= 64).then_some((id, secret))
}

/// The login name of an e-mail address.
pub(crate) fn email_login(email: &str) -> String {
    format!("email/{}", email.trim().to_lowercase())
}

/// Whether `p`'s permissions include all of `wanted` (you cannot give what you do not have).
pub(crate) fn may_grant(p: &Principal, wanted: PermissionSet) -> bool {
    wanted.is_subset(p.global)
}

/// Scopes a new token may have when created by `p` (a token cannot mint a broader token).
pub(crate) fn allowed_scopes(p: &Principal) -> PermissionSet {
    p.scopes.unwrap_or_else(PermissionSet::all)
}
