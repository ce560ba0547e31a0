//! What single sign-on (OIDC or SAML) does once a provider vouched for a user: find the user by its SSO
//! identity (or, when the provider verified the e-mail address, by that address, linking the two),
//! create it otherwise, and set the roles its groups map to. A user no mapping covers signs in with no
//! access until an administrator grants it a role. Also: the short-lived record that carries a sign-in
//! from its start to the provider's answer, and the browser binding cookie.

use std::collections::BTreeMap;

use leannodes_store::{AuthRequest, Login, Store, StoreError, User, Versioned};

use super::secret::{random_secret, sha256_hex};
use crate::accounts::{self, NewUser};
use crate::error::ApiError;

/// The cookie that binds a sign-in to the browser that started it.
pub(crate) const BINDING_COOKIE: &str = "leannodes_sso";
/// How long a sign-in may take at the provider.
pub(crate) const REQUEST_TTL_MS: i64 = 10 * 60_000;

/// A user as a provider describes it.
#[derive(Debug, Clone)]
pub(crate) struct Vouched {
    /// `oidc:PROVIDER:SUBJECT` or `saml:NAMEID`.
    pub(crate) identity: String,
    /// E-mail address.
    pub(crate) email: Option<String>,
    /// Whether the provider verified the address (SAML assertions are taken as verified).
    pub(crate) email_verified: bool,
    /// Display name.
    pub(crate) name: Option<String>,
    /// Groups.
    pub(crate) groups: Vec<String>,
}

/// The roles `groups` map to (in map order, without repeats).
pub(crate) fn mapped_roles(role_map: &BTreeMap<String, String>, groups: &[String]) -> Vec<String> {
    let mut roles: Vec<String> = Vec::new();
    for group in groups {
        if let Some(role) = role_map.get(group) {
            if !roles.contains(role) {
                roles.push(role.clone());
            }
        }
    }
    roles
}

/// Finds, links or creates the user and sets its SSO roles.
pub(crate) async fn provision(store: &dyn Store, who: &Vouched, sso_roles: Vec<String>) -> Result<Versioned<User>, ApiError> {
    let identity_login = format!("identity/{}", who.identity);
    let existing = match store.records::<Login>().get(&identity_login).await? {
        Some(login) => Some(login.value.user),
        None => match (&who.email, who.email_verified) {
            (Some(email), true) => {
                let by_email = store.records::<Login>().get(&super::email_login(email)).await?.map(|l| l.value.user);
                if let Some(user) = &by_email {
                    // Link the identity to the account of the verified address.
                    match store.records::<Login>().create(&Login { name: identity_login.clone(), user: user.clone() }).await {
                        Ok(_) | Err(StoreError::Conflict { .. }) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                by_email
            }
            _ => None,
        },
    };
    let user = match existing {
        Some(id) => {
            let identity = who.identity.clone();
            let roles = sso_roles.clone();
            accounts::update_user(store, &id, None, move |u| {
                u.sso_roles = roles.clone();
                if u.identity.is_none() {
                    u.identity = Some(identity.clone());
                }
                Ok(())
            })
            .await?
        }
        None => {
            let email = who.email.clone().unwrap_or_else(|| format!("{}@sso.invalid", &sha256_hex(&who.identity)[..16]));
            let new = NewUser {
                email,
                name: who.name.clone().unwrap_or_default(),
                password: None,
                roles: vec![],
                sso_roles,
                identity: Some(who.identity.clone()),
            };
            accounts::create_user(store, new).await.map_err(|e| {
                if e.code() == "email_taken" {
                    ApiError::conflict(
                        "email_taken",
                        "an account with this e-mail address exists, and the provider did not verify the address: an administrator must link them",
                    )
                } else {
                    e
                }
            })?
        }
    };
    if user.value.disabled {
        return Err(ApiError::new(axum::http::StatusCode::FORBIDDEN, "account_disabled", "this account is disabled"));
    }
    Ok(user)
}

/// Stores what the callback needs; returns the binding cookie's secret.
pub(crate) async fn remember(
    store: &dyn Store,
    provider: &str,
    state: &str,
    verifier: String,
    nonce: String,
    return_to: String,
) -> Result<String, ApiError> {
    let binding = random_secret();
    let record = AuthRequest {
        state_hash: sha256_hex(state),
        provider: provider.to_string(),
        binding_hash: sha256_hex(&binding),
        verifier,
        nonce,
        return_to,
        expires_ms: crate::unix_ms() + REQUEST_TTL_MS,
    };
    store.records::<AuthRequest>().create(&record).await?;
    Ok(binding)
}

/// Takes (once) the sign-in started with `state`, if it belongs to `provider` and to this browser.
pub(crate) async fn take(store: &dyn Store, provider: &str, state: &str, binding: Option<&str>) -> Result<AuthRequest, ApiError> {
    let unknown =
        || ApiError::new(axum::http::StatusCode::BAD_REQUEST, "sso_state_invalid", "this sign-in is unknown, used or expired: start again");
    let record = store.records::<AuthRequest>().get(&sha256_hex(state)).await?.ok_or_else(unknown)?;
    if record.value.provider != provider {
        return Err(unknown());
    }
    let bound = binding.is_some_and(|b| super::secret::constant_time_eq(sha256_hex(b).as_bytes(), record.value.binding_hash.as_bytes()));
    if !bound {
        return Err(ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "sso_browser_mismatch",
            "this sign-in was started in another browser (or its cookie is gone): start again",
        ));
    }
    match store.records::<AuthRequest>().delete(&record.value.state_hash, Some(record.version)).await {
        Ok(()) => Ok(record.value),
        Err(StoreError::Conflict { .. } | StoreError::NotFound { .. }) => Err(unknown()),
        Err(e) => Err(e.into()),
    }
}

/// Only paths of this site are places to return to after signing in.
pub(crate) fn safe_return(path: Option<&str>) -> String {
    match path {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') && !p.chars().any(char::is_control) => p.to_string(),
        _ => "/".to_string(),
    }
}
