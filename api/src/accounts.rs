//! Users as the API and the offline recovery commands (`leannodes admin …`) change them: creating a
//! user claims its e-mail address first (so two concurrent creations cannot both win), passwords are
//! stored as argon2id hashes, and a password change ends the user's other sessions.

use leannodes_store::{Login, Store, StoreError, User};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::{email_login, password, secret::random_id};
use crate::authz::{self, PermissionSet};
use crate::error::ApiError;

/// A user as the API shows it (never its password hash).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserView {
    /// Id.
    pub id: String,
    /// E-mail address.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Roles granted instance-wide.
    pub roles: Vec<String>,
    /// Roles from the user's SSO groups at the last SSO sign-in.
    pub sso_roles: Vec<String>,
    /// Whether the user is disabled.
    pub disabled: bool,
    /// Whether the user has a password (else SSO only).
    pub has_password: bool,
    /// The SSO identity, for users created by SSO.
    pub identity: Option<String>,
    /// When it was created (Unix milliseconds).
    pub created_ms: i64,
    /// Its version (send it in `If-Match` to change it).
    pub version: u64,
}

impl UserView {
    /// The view of a stored user.
    pub fn of(user: &User, version: u64) -> UserView {
        UserView {
            id: user.id.clone(),
            email: user.email.clone(),
            name: user.name.clone(),
            roles: user.roles.clone(),
            sso_roles: user.sso_roles.clone(),
            disabled: user.disabled,
            has_password: user.password_hash.is_some(),
            identity: user.identity.clone(),
            created_ms: user.created_ms,
            version,
        }
    }
}

/// A user to create.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    /// E-mail address.
    pub email: String,
    /// Display name (default: the part of the address before `@`).
    pub name: String,
    /// A password (`None`: the user signs in with SSO or sets one through a reset link).
    pub password: Option<String>,
    /// Roles instance-wide.
    pub roles: Vec<String>,
    /// Roles from SSO groups.
    pub sso_roles: Vec<String>,
    /// The SSO identity (`oidc:PROVIDER:SUBJECT`, `saml:NAMEID`), also claimed as a login name.
    pub identity: Option<String>,
}

/// Checks and normalizes an e-mail address (`path` names the field in the error).
pub fn normalize_email(path: &str, email: &str) -> Result<String, ApiError> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty() && !domain.contains('@'));
    if valid { Ok(email) } else { Err(ApiError::invalid_field(path, "not an e-mail address")) }
}

/// Checks a display name.
pub fn check_name(path: &str, name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(ApiError::invalid_field(path, "use at most 200 printable characters"));
    }
    Ok(name.to_string())
}

/// Checks that every role exists (built-in or custom).
pub async fn check_roles(store: &dyn Store, path: &str, roles: &[String]) -> Result<PermissionSet, ApiError> {
    let mut set = PermissionSet::EMPTY;
    for (i, role) in roles.iter().enumerate() {
        match authz::built_in_roles().iter().find(|(n, _, _)| n == role) {
            Some((_, _, perms)) => set = set.union(*perms),
            None => match store.records::<leannodes_store::Role>().get(role).await? {
                Some(custom) => set = set.union(PermissionSet::from_names(&custom.value.permissions)),
                None => {
                    return Err(ApiError::invalid_field(
                        &format!("{path}/{i}"),
                        format!("no role named `{role}`; use admin, operator, editor, viewer or a custom role"),
                    ));
                }
            },
        }
    }
    Ok(set)
}

/// Creates a user; `409 email_taken` when the address (or SSO identity) belongs to someone.
pub async fn create_user(store: &dyn Store, new: NewUser) -> Result<leannodes_store::Versioned<User>, ApiError> {
    let email = normalize_email("email", &new.email)?;
    if let Some(p) = &new.password {
        password::check_policy("password", p)?;
    }
    let password_hash = match &new.password {
        Some(p) => Some(password::hash(p).await?),
        None => None,
    };
    let id = random_id();
    let logins = store.records::<Login>();
    let claim = |name: String| Login { name, user: id.clone() };
    let mut claimed = Vec::new();
    let names = std::iter::once(email_login(&email)).chain(new.identity.iter().map(|i| format!("identity/{i}")));
    for name in names {
        match logins.create(&claim(name.clone())).await {
            Ok(_) => claimed.push(name),
            Err(e) => {
                for name in &claimed {
                    let _ = logins.delete(name, None).await;
                }
                return Err(match e {
                    StoreError::Conflict { .. } => {
                        ApiError::conflict("email_taken", format!("a user with `{email}` (or that identity) exists already"))
                    }
                    other => other.into(),
                });
            }
        }
    }
    let name =
        if new.name.trim().is_empty() { email.split('@').next().unwrap_or_default().to_string() } else { new.name.trim().to_string() };
    let user = User {
        id,
        email,
        name,
        roles: new.roles,
        disabled: false,
        created_ms: crate::unix_ms(),
        password_hash,
        sso_roles: new.sso_roles,
        identity: new.identity,
        sessions_after_ms: 0,
    };
    match store.records::<User>().create(&user).await {
        Ok(created) => Ok(created),
        Err(e) => {
            for name in &claimed {
                let _ = logins.delete(name, None).await;
            }
            Err(e.into())
        }
    }
}

/// Sets a user's password and ends its sessions; returns the user as stored.
pub async fn set_password(store: &dyn Store, user_id: &str, new_password: &str) -> Result<leannodes_store::Versioned<User>, ApiError> {
    password::check_policy("password", new_password)?;
    let hash = password::hash(new_password).await?;
    update_user(store, user_id, None, |user| {
        user.password_hash = Some(hash.clone());
        user.sessions_after_ms = crate::unix_ms();
        Ok(())
    })
    .await
}

/// Changes a user with optimistic concurrency: at `expected` version when given (`409` if stale),
/// else retrying on concurrent writes.
pub async fn update_user(
    store: &dyn Store,
    user_id: &str,
    expected: Option<u64>,
    change: impl Fn(&mut User) -> Result<(), ApiError>,
) -> Result<leannodes_store::Versioned<User>, ApiError> {
    let users = store.records::<User>();
    for _ in 0..10 {
        let current = users.get(user_id).await?.ok_or_else(|| ApiError::not_found("unknown_user", format!("no user `{user_id}`")))?;
        if let Some(v) = expected {
            crate::extract::IfMatch(Some(v)).check(current.version)?;
        }
        let mut user = current.value.clone();
        change(&mut user)?;
        match users.update(&user, current.version).await {
            Ok(updated) => return Ok(updated),
            Err(StoreError::Conflict { .. }) if expected.is_none() => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict("version_conflict", "the user changed concurrently; retry"))
}

/// Whether any user exists.
pub async fn any_user(store: &dyn Store) -> Result<bool, ApiError> {
    Ok(!store.records::<User>().list("", &leannodes_store::Page::first(1)).await?.items.is_empty())
}

/// The users who hold `admin` and are enabled (to refuse removing the last one).
pub async fn admins(store: &dyn Store) -> Result<Vec<User>, ApiError> {
    Ok(authz::all::<User>(store)
        .await?
        .into_iter()
        .filter(|u| !u.disabled && u.roles.iter().chain(&u.sso_roles).any(|r| r == "admin"))
        .collect())
}

/// An offline recovery operation (`leannodes admin …`), run against the store without a server.
#[derive(Debug, Clone)]
pub enum Recovery {
    /// Creates a user.
    CreateUser {
        /// E-mail address.
        email: String,
        /// Display name.
        name: String,
        /// Roles.
        roles: Vec<String>,
        /// The password (`None`: a random one is made and shown).
        password: Option<String>,
    },
    /// Sets a user's password and ends its sessions.
    ResetPassword {
        /// The user's e-mail address.
        email: String,
        /// The password (`None`: a random one is made and shown).
        password: Option<String>,
    },
    /// Adds a role to a user (and enables it).
    Grant {
        /// The user's e-mail address.
        email: String,
        /// The role.
        role: String,
    },
}

/// Runs a recovery operation as `actor` (audited); returns what to tell the operator.
pub async fn recover(store: std::sync::Arc<dyn Store>, operation: Recovery, actor: &str) -> Result<String, ApiError> {
    let audit = crate::Audit::new(store.clone());
    let generated =
        |given: Option<String>| given.map_or_else(|| (crate::auth::secret::random_secret()[..20].to_string(), true), |p| (p, false));
    let find = |email: String| {
        let store = store.clone();
        async move {
            let email = normalize_email("email", &email)?;
            let login = store.records::<Login>().get(&email_login(&email)).await?;
            login.map(|l| l.value.user).ok_or_else(|| ApiError::not_found("unknown_user", format!("no user with `{email}`")))
        }
    };
    let (action, target, detail, message) = match operation {
        Recovery::CreateUser { email, name, roles, password } => {
            check_roles(&*store, "role", &roles).await?;
            let (password, made) = generated(password);
            let user = create_user(&*store, NewUser { email, name, password: Some(password.clone()), roles, ..NewUser::default() }).await?;
            let shown = if made { format!("; its password is {password} (change it after signing in)") } else { String::new() };
            let message =
                format!("created user {} ({}) with roles [{}]{shown}", user.value.email, user.value.id, user.value.roles.join(", "));
            (
                "user.create",
                user.value.id.clone(),
                serde_json::json!({ "after": { "email": user.value.email, "roles": user.value.roles } }),
                message,
            )
        }
        Recovery::ResetPassword { email, password } => {
            let id = find(email.clone()).await?;
            let (password, made) = generated(password);
            let user = set_password(&*store, &id, &password).await?;
            let shown = if made { format!("; the new password is: {password}") } else { String::new() };
            (
                "auth.password_reset",
                id,
                serde_json::json!({}),
                format!("set a new password for {} and ended its sessions{shown}", user.value.email),
            )
        }
        Recovery::Grant { email, role } => {
            check_roles(&*store, "role", std::slice::from_ref(&role)).await?;
            let id = find(email.clone()).await?;
            let user = update_user(&*store, &id, None, |u| {
                if !u.roles.contains(&role) {
                    u.roles.push(role.clone());
                }
                u.disabled = false;
                Ok(())
            })
            .await?;
            let message = format!("{} now has roles [{}]", user.value.email, user.value.roles.join(", "));
            ("user.update", id, serde_json::json!({ "after": { "roles": user.value.roles, "disabled": false } }), message)
        }
    };
    audit.record(crate::Event { actor: actor.to_string(), source: "", action, target: format!("user/{target}"), detail }).await;
    Ok(message)
}

/// Issues a personal access token for the user with this e-mail address (all of the user's
/// permissions, expiring after `ttl`); returns the token (`lnp_…`). For the demo and recovery.
pub async fn issue_token(store: &dyn Store, email: &str, name: &str, ttl: std::time::Duration) -> Result<String, ApiError> {
    let login = store.records::<Login>().get(&email_login(email)).await?;
    let user = login.map(|l| l.value.user).ok_or_else(|| ApiError::not_found("unknown_user", format!("no user with `{email}`")))?;
    let secret = crate::auth::secret::random_secret();
    let now = crate::unix_ms();
    let token = leannodes_store::AccessToken {
        id: random_id(),
        user,
        name: name.to_string(),
        secret_hash: crate::auth::secret::sha256_hex(&secret),
        scopes: crate::authz::Permission::ALL.iter().map(|p| p.as_str().to_string()).collect(),
        created_ms: now,
        expires_ms: Some(now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX))),
        last_used_ms: None,
    };
    store.records::<leannodes_store::AccessToken>().create(&token).await?;
    Ok(format!("{}{}_{secret}", crate::TOKEN_PREFIX, token.id))
}
