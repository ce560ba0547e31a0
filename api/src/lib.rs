//! The LeanNodes management plane: the REST API under `/api/v1` (with its OpenAPI 3.1 document),
//! authentication (passwords, sessions with CSRF tokens, personal access tokens, invitations and resets,
//! login throttling, SSO), authorization (permissions, built-in and custom roles, groups, per-flow
//! grants; every route declares its rule), and the hash-chained audit trail of every change.
//!
//! It sits beside the proxy tier, not on it: it reads the control plane ([`leannodes_control`]) and the
//! store, and sees the data plane only through [`leannodes_control::TrafficView`]. The binary builds
//! [`ApiParts`], starts an [`Api`] and serves [`Api::router`].

pub mod accounts;
mod audit;
mod auth;
mod authz;
pub mod dashboard;
pub mod diff;
mod error;
mod extract;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod mail;
mod routes;
mod state;

use std::sync::Arc;
use std::time::Duration;

use leannodes_config::AuthMode;
use leannodes_store::LinkPurpose;

pub use audit::{Audit, Event, redact};
pub use auth::{CSRF_HEADER, SESSION_COOKIE, TOKEN_PREFIX};
pub use authz::{Permission, PermissionSet, Rule, built_in_roles};
pub use error::{ApiError, ErrorBody};
pub use mail::{MailError, Mailer};
pub use routes::RouteRule;
pub use state::ApiParts;

/// The first administrator, from `LEANNODES_SUPER_ADMIN_EMAIL` and `LEANNODES_SUPER_ADMIN_PASSWORD`.
#[derive(Clone)]
pub struct SuperAdmin {
    /// E-mail address.
    pub email: String,
    /// Password.
    pub password: String,
}

impl std::fmt::Debug for SuperAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SuperAdmin").field("email", &self.email).finish_non_exhaustive()
    }
}

/// The management API of one instance.
#[derive(Debug)]
pub struct Api {
    state: state::AppState,
}

/// Why the API could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// `[server.smtp]` cannot be used.
    #[error("[server.smtp]: {0}")]
    Mail(#[from] MailError),
    /// The store or the bootstrap failed.
    #[error("{0}")]
    Api(#[from] ApiError),
}

impl Api {
    /// Builds the API and, when no user exists yet, bootstraps the first administrator: from
    /// `super_admin` when given, else with a one-time setup link (logged).
    pub async fn start(parts: ApiParts, super_admin: Option<SuperAdmin>) -> Result<Api, StartError> {
        let mailer = parts.server.smtp.as_ref().map(Mailer::new).transpose()?;
        let auth = Arc::new(auth::Auth::new(parts.server.auth.clone(), parts.store.clone(), mailer).await?);
        let audit = Audit::new(parts.store.clone());
        let instance = Arc::new(state::Instance {
            config_path: parts.config_path,
            started_ms: unix_ms(),
            reloader: parts.reloader,
            driver: parts.server.driver,
            kube: parts.kube,
            public_status: parts.server.public_status,
            server: parts.server,
        });
        let state = state::AppState {
            controller: parts.controller,
            store: parts.store,
            traffic: parts.traffic,
            auth,
            audit,
            instance,
            notifier: parts.notifier,
        };
        if state.auth.config.mode == AuthMode::Password {
            bootstrap(&state, super_admin).await?;
        } else {
            tracing::warn!(
                "authentication is off ([server.auth] mode = \"none\"): anyone who reaches the admin listener is an administrator"
            );
        }
        Ok(Api { state })
    }

    /// The router of the admin listener (serve it with `into_make_service_with_connect_info`, so that
    /// client addresses are known).
    pub fn router(&self) -> axum::Router {
        routes::router(self.state.clone())
    }
}

/// Creates the first administrator when there is no user.
async fn bootstrap(state: &state::AppState, super_admin: Option<SuperAdmin>) -> Result<(), ApiError> {
    let store = &*state.store;
    if accounts::any_user(store).await? {
        return Ok(());
    }
    match super_admin {
        Some(admin) => {
            let new =
                accounts::NewUser { email: admin.email, password: Some(admin.password), roles: vec!["admin".into()], ..Default::default() };
            let user = accounts::create_user(store, new).await.map_err(|e| {
                ApiError::bad_request("invalid_super_admin", format!("LEANNODES_SUPER_ADMIN_EMAIL/_PASSWORD cannot be used: {e}"))
            })?;
            state
                .audit
                .record(Event {
                    actor: "system".into(),
                    source: "",
                    action: "auth.bootstrap",
                    target: format!("user/{}", user.value.id),
                    detail: serde_json::json!({ "after": { "email": user.value.email, "roles": user.value.roles }, "from": "environment" }),
                })
                .await;
            tracing::info!(email = %user.value.email, "created the first administrator from LEANNODES_SUPER_ADMIN_EMAIL");
        }
        None => {
            let (secret, _) =
                auth::links::create(store, LinkPurpose::Setup, "", vec!["admin".into()], "system", Duration::from_secs(24 * 3600)).await?;
            let url = auth::links::url(&state.auth.config.external_url, LinkPurpose::Setup, &secret);
            tracing::warn!(
                "no user exists yet: create the first administrator within 24 hours with the one-time link {url} \
                 (POST /api/v1/auth/setup with {{\"token\": \"{secret}\", \"email\", \"password\"}}), or set \
                 LEANNODES_SUPER_ADMIN_EMAIL and LEANNODES_SUPER_ADMIN_PASSWORD, or run `leannodes admin create-user`"
            );
        }
    }
    Ok(())
}

/// The OpenAPI 3.1 document of the API (also served at `/api/v1/openapi.json`).
pub fn openapi() -> &'static utoipa::openapi::OpenApi {
    static DOC: std::sync::OnceLock<utoipa::openapi::OpenApi> = std::sync::OnceLock::new();
    DOC.get_or_init(|| routes::table().1)
}

/// The OpenAPI document as pretty JSON, with a final newline (what `docs/openapi.json` holds).
pub fn openapi_json() -> String {
    let mut text = openapi().to_pretty_json().unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    text.push('\n');
    text
}

/// The route table as Markdown (`docs/routes.md`): every route, what it requires, what it does.
pub fn routes_markdown() -> String {
    let doc = openapi();
    let mut out = String::from(
        "# Management API routes\n\n<!-- Generated by `leannodes openapi --routes`; do not edit by hand. -->\n\n\
         Every route and the rule it requires (`public`: anyone; `signed in`: any user or token; a permission: \
         instance-wide; `… on the flow`: instance-wide or granted on the flow named in the path). The full request \
         and response shapes are in [openapi.json](openapi.json).\n\n| method | path | requires | what it does |\n|---|---|---|---|\n",
    );
    for rule in route_rules() {
        let summary = doc
            .paths
            .paths
            .get(&rule.path)
            .and_then(|item| match rule.method {
                "GET" => item.get.as_ref(),
                "POST" => item.post.as_ref(),
                "PUT" => item.put.as_ref(),
                "PATCH" => item.patch.as_ref(),
                "DELETE" => item.delete.as_ref(),
                _ => None,
            })
            .and_then(|op| op.summary.clone())
            .unwrap_or_default();
        out.push_str(&format!(
            "| {} | `{}` | {} | {} |\n",
            rule.method,
            rule.path,
            rule.rule.describe(),
            summary.replace('\n', " ").replace('|', "\\|")
        ));
    }
    out
}

/// Every route with the rule it requires.
pub fn route_rules() -> Vec<RouteRule> {
    routes::table().2
}

/// Current wall-clock time in Unix milliseconds.
pub(crate) fn unix_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
