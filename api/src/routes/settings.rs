//! Instance settings as loaded from the configuration (`settings.manage`). Secrets are never shown:
//! only whether they are set.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::routes;

use super::Registrar;
use crate::authz::{Permission, Rule};
use crate::state::Instance;

pub(super) fn routes(r: Registrar) -> Registrar {
    r.add(Rule::Global(Permission::SettingsManage), routes!(get_settings))
}

/// An OIDC provider (without its secret).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OidcSettings {
    /// Name.
    name: String,
    /// Issuer.
    issuer: String,
    /// Client id.
    client_id: String,
    /// Whether a client secret is set (it is never shown).
    client_secret_set: bool,
    /// Claim with the groups.
    groups_claim: String,
    /// Group → role.
    role_map: BTreeMap<String, String>,
    /// The redirect URL to register at the provider.
    redirect_url: String,
}

/// The SAML service provider.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SamlSettings {
    /// Entity id.
    entity_id: String,
    /// Metadata URL to give the identity provider.
    metadata_url: String,
    /// Assertion consumer service URL.
    acs_url: String,
    /// Attribute with the groups.
    groups_attribute: String,
    /// Group → role.
    role_map: BTreeMap<String, String>,
}

/// Outgoing mail.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SmtpSettings {
    /// Server.
    host: String,
    /// Port.
    port: u16,
    /// Sender.
    from: String,
    /// Whether a password is set.
    password_set: bool,
}

/// Settings.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Settings {
    /// `password` or `none`.
    auth_mode: &'static str,
    /// Sign-in lifetime (seconds).
    session_ttl_s: u64,
    /// The admin listener's URL as users reach it.
    external_url: String,
    /// What public status pages show.
    public_status: &'static str,
    /// Whether callouts must carry a check token.
    check_token_set: bool,
    /// OIDC providers.
    oidc: Vec<OidcSettings>,
    /// SAML.
    saml: Option<SamlSettings>,
    /// Mail.
    smtp: Option<SmtpSettings>,
}

/// Authentication, SSO, mail and public-status settings (read-only: they come from the config file).
#[utoipa::path(get, path = "/api/v1/settings", tag = "settings", responses((status = 200, body = Settings)))]
async fn get_settings(State(instance): State<Arc<Instance>>) -> Json<Settings> {
    let server = &instance.server;
    let auth = &server.auth;
    let base = &auth.external_url;
    Json(Settings {
        auth_mode: match auth.mode {
            leannodes_config::AuthMode::Password => "password",
            leannodes_config::AuthMode::None => "none",
        },
        session_ttl_s: auth.session_ttl.as_secs(),
        external_url: base.clone(),
        public_status: match instance.public_status {
            leannodes_config::PublicStatus::Progress => "progress",
            leannodes_config::PublicStatus::Detailed => "detailed",
            leannodes_config::PublicStatus::Off => "off",
        },
        check_token_set: server.check_token.is_some(),
        oidc: auth
            .oidc
            .iter()
            .map(|p| OidcSettings {
                name: p.name.clone(),
                issuer: p.issuer.clone(),
                client_id: p.client_id.clone(),
                client_secret_set: !p.client_secret.expose().is_empty(),
                groups_claim: p.groups_claim.clone(),
                role_map: p.role_map.clone(),
                redirect_url: format!("{base}/api/v1/auth/oidc/{}/callback", p.name),
            })
            .collect(),
        saml: auth.saml.as_ref().map(|s| SamlSettings {
            entity_id: s.entity_id.clone(),
            metadata_url: format!("{base}/api/v1/auth/saml/metadata"),
            acs_url: format!("{base}/api/v1/auth/saml/acs"),
            groups_attribute: s.groups_attribute.clone(),
            role_map: s.role_map.clone(),
        }),
        smtp: server.smtp.as_ref().map(|s| SmtpSettings {
            host: s.host.clone(),
            port: s.port,
            from: s.from.clone(),
            password_set: s.credentials.is_some(),
        }),
    })
}
