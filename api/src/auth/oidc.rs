//! OpenID Connect sign-in (authorization code flow with PKCE, `state` and `nonce`): discovery of the
//! provider (read when first needed and kept), the authorization redirect, and the callback that
//! exchanges the code, verifies the ID token (signature against the provider's JWKS, issuer, audience,
//! expiry, nonce) and reads the groups claim. Verification is `openidconnect`'s; this module adds the
//! state kept in the store between the two halves and the browser binding that keeps a login started in
//! one browser from being finished in another.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use leannodes_config::OidcProvider;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, Nonce,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
};
use tokio::sync::Mutex;

use crate::error::ApiError;

type Client = CoreClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointMaybeSet, EndpointMaybeSet>;

/// What a verified sign-in tells about the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    /// The provider's subject (stable user id).
    pub(crate) subject: String,
    /// E-mail address, when given.
    pub(crate) email: Option<String>,
    /// Whether the provider vouches for the address.
    pub(crate) email_verified: bool,
    /// Display name, when given.
    pub(crate) name: Option<String>,
    /// Groups (from the configured claim).
    pub(crate) groups: Vec<String>,
}

/// The start of a sign-in: where to send the browser and what the callback needs.
#[derive(Debug)]
pub(crate) struct Start {
    /// The provider's authorization URL with all parameters.
    pub(crate) url: String,
    /// The `state` sent.
    pub(crate) state: String,
    /// The PKCE verifier.
    pub(crate) verifier: String,
    /// The nonce sent.
    pub(crate) nonce: String,
}

/// The OIDC providers of `[server.auth]`, each discovered on first use.
pub(crate) struct Providers {
    configs: Vec<OidcProvider>,
    external_url: String,
    http: reqwest::Client,
    clients: Mutex<HashMap<String, Arc<Client>>>,
}

impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Providers").field("names", &self.configs.iter().map(|c| &c.name).collect::<Vec<_>>()).finish_non_exhaustive()
    }
}

fn sso_error(message: impl Into<String>) -> ApiError {
    ApiError::new(axum::http::StatusCode::UNAUTHORIZED, "sso_failed", message)
}

impl Providers {
    /// The providers; `external_url` builds the redirect URLs.
    pub(crate) fn new(configs: Vec<OidcProvider>, external_url: String) -> Providers {
        // Redirects are never followed (they would open the discovery and token calls to SSRF).
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Providers { configs, external_url, http, clients: Mutex::default() }
    }

    /// The configuration of a provider.
    pub(crate) fn config(&self, name: &str) -> Result<&OidcProvider, ApiError> {
        self.configs
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| ApiError::not_found("unknown_provider", format!("no OIDC provider named `{name}`")))
    }

    /// The redirect URL to register at the provider.
    pub(crate) fn redirect_url(&self, name: &str) -> String {
        format!("{}/api/v1/auth/oidc/{name}/callback", self.external_url)
    }

    async fn client(&self, name: &str) -> Result<Arc<Client>, ApiError> {
        let mut clients = self.clients.lock().await;
        if let Some(c) = clients.get(name) {
            return Ok(c.clone());
        }
        let config = self.config(name)?;
        let issuer = IssuerUrl::new(config.issuer.clone()).map_err(|e| sso_error(format!("bad issuer URL: {e}")))?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http).await.map_err(|e| {
            ApiError::unavailable(
                "sso_unavailable",
                format!("cannot read the discovery document of `{name}` ({}): {}", config.issuer, chain(&e)),
            )
        })?;
        let redirect = RedirectUrl::new(self.redirect_url(name)).map_err(|e| sso_error(format!("bad redirect URL: {e}")))?;
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(config.client_id.clone()),
            Some(ClientSecret::new(config.client_secret.expose().to_string())),
        )
        .set_redirect_uri(redirect);
        let client = Arc::new(client);
        clients.insert(name.to_string(), client.clone());
        Ok(client)
    }

    /// Starts a sign-in at provider `name`; `login_hint` is passed on when given.
    pub(crate) async fn start(&self, name: &str, login_hint: Option<&str>) -> Result<Start, ApiError> {
        let config = self.config(name)?;
        let client = self.client(name).await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let scopes = config.scopes.clone().unwrap_or_else(|| vec!["openid".into(), "email".into(), "profile".into(), "groups".into()]);
        let mut request = client.authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random);
        for scope in scopes.into_iter().filter(|s| s != "openid") {
            request = request.add_scope(Scope::new(scope));
        }
        if let Some(hint) = login_hint {
            request = request.add_extra_param("login_hint", hint.to_string());
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        Ok(Start {
            url: url.to_string(),
            state: state.secret().clone(),
            verifier: verifier.secret().clone(),
            nonce: nonce.secret().clone(),
        })
    }

    /// Finishes a sign-in: exchanges `code` (with the PKCE verifier) and verifies the ID token.
    pub(crate) async fn finish(&self, name: &str, code: &str, verifier: &str, nonce: &str) -> Result<Identity, ApiError> {
        use openidconnect::TokenResponse as _;
        let config = self.config(name)?;
        let client = self.client(name).await?;
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| sso_error(format!("the provider has no token endpoint: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_string()))
            .request_async(&self.http)
            .await
            .map_err(|e| sso_error(format!("the provider refused the code: {}", chain(&e))))?;
        let id_token = response.id_token().ok_or_else(|| sso_error("the provider sent no ID token"))?;
        let claims = id_token
            .claims(&client.id_token_verifier(), &Nonce::new(nonce.to_string()))
            .map_err(|e| sso_error(format!("the ID token does not verify: {}", chain(&e))))?;
        // The token verified: its payload can be read for the groups claim, whatever its name.
        let raw = id_token.to_string();
        let payload = raw.split('.').nth(1).unwrap_or_default();
        let payload: serde_json::Value = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        let groups = match &payload[&config.groups_claim] {
            serde_json::Value::Array(items) => items.iter().filter_map(|g| g.as_str().map(str::to_string)).collect(),
            serde_json::Value::String(one) => vec![one.clone()],
            _ => vec![],
        };
        Ok(Identity {
            subject: claims.subject().to_string(),
            email: claims.email().map(|e| e.to_string().to_lowercase()),
            email_verified: claims.email_verified().unwrap_or(false),
            name: claims.name().and_then(|n| n.get(None)).map(|n| n.to_string()),
            groups,
        })
    }
}

/// An error with its causes, in one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
