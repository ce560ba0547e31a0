//! Single sign-on: OpenID Connect (`/auth/oidc/{name}/start` → the provider → `/callback`) and SAML 2.0
//! (`/auth/saml/login` → the IdP → `POST /auth/saml/acs`, with the service provider's metadata at
//! `/auth/saml/metadata`). Either ends in a session, like a password sign-in, and is audited.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::routes;

use super::Registrar;
use crate::audit::{Audit, Event};
use crate::auth::sso::{self, BINDING_COOKIE, Vouched};
use crate::auth::{Auth, Caller, cookie};
use crate::authz::Rule;
use crate::error::ApiError;
use crate::extract::{Path, Query, UserAgent};

pub(super) fn routes(r: Registrar) -> Registrar {
    r.add(Rule::Public, routes!(oidc_start))
        .add(Rule::Public, routes!(oidc_callback))
        .add(Rule::Public, routes!(saml_metadata))
        .add(Rule::Public, routes!(saml_login))
        .add(Rule::Public, routes!(saml_acs))
}

/// `?return_to=&login_hint=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct StartQuery {
    /// A path of this site to go to after signing in (default `/`).
    return_to: Option<String>,
    /// Passed to the provider (which account to sign in with).
    login_hint: Option<String>,
}

/// A redirect that also sets cookies.
fn redirect(to: &str, cookies: &[HeaderValue]) -> Response {
    let mut response =
        (StatusCode::SEE_OTHER, [(header::LOCATION, HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/")))]).into_response();
    for c in cookies {
        response.headers_mut().append(header::SET_COOKIE, c.clone());
    }
    response
}

/// Starts an OpenID Connect sign-in: redirects to the provider (authorization code, PKCE S256, state,
/// nonce) and binds the sign-in to this browser with a short-lived cookie.
#[utoipa::path(get, path = "/api/v1/auth/oidc/{name}/start", tag = "auth",
    params(("name" = String, Path, description = "Provider name"), StartQuery), responses((status = 303, description = "To the provider")))]
async fn oidc_start(State(auth): State<Arc<Auth>>, Path(name): Path<String>, Query(q): Query<StartQuery>) -> Result<Response, ApiError> {
    let start = auth.oidc.start(&name, q.login_hint.as_deref()).await?;
    let provider = format!("oidc:{name}");
    let binding =
        sso::remember(auth.store(), &provider, &start.state, start.verifier, start.nonce, sso::safe_return(q.return_to.as_deref())).await?;
    Ok(redirect(&start.url, &[auth.binding_cookie(&binding, Some(Duration::from_millis(sso::REQUEST_TTL_MS as u64)))]))
}

/// What the provider sends back.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct CallbackQuery {
    /// The authorization code.
    code: Option<String>,
    /// The state sent at the start.
    state: Option<String>,
    /// The provider's error, when it refused.
    error: Option<String>,
    /// Its description.
    error_description: Option<String>,
}

/// Finishes an OpenID Connect sign-in: checks the state and the browser, exchanges the code, verifies
/// the ID token, maps groups to roles, signs in and redirects to where the sign-in started.
#[utoipa::path(get, path = "/api/v1/auth/oidc/{name}/callback", tag = "auth",
    params(("name" = String, Path, description = "Provider name"), CallbackQuery), responses((status = 303, description = "Signed in")))]
async fn oidc_callback(
    State(auth): State<Arc<Auth>>,
    State(audit): State<Audit>,
    caller: Caller,
    UserAgent(agent): UserAgent,
    headers: axum::http::HeaderMap,
    Path(name): Path<String>,
    Query(q): Query<CallbackQuery>,
) -> Result<Response, ApiError> {
    let config = auth.oidc.config(&name)?.clone();
    let provider = format!("oidc:{name}");
    let fail = |message: String| {
        let audit = audit.clone();
        let (address, provider) = (caller.address.clone(), provider.clone());
        async move {
            audit
                .record(Event {
                    actor: "anonymous".into(),
                    source: &address,
                    action: "auth.login_failed",
                    target: format!("sso/{provider}"),
                    detail: serde_json::json!({ "method": provider, "reason": message }),
                })
                .await;
        }
    };
    if let Some(error) = q.error {
        let message = format!("the provider refused: {error} {}", q.error_description.unwrap_or_default());
        fail(message.clone()).await;
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "sso_failed", message.trim().to_string()));
    }
    let (Some(code), Some(state)) = (q.code, q.state) else {
        return Err(ApiError::bad_request("sso_state_invalid", "the callback needs `code` and `state`"));
    };
    let request = sso::take(auth.store(), &provider, &state, cookie(&headers, BINDING_COOKIE)).await?;
    let identity = match auth.oidc.finish(&name, &code, &request.verifier, &request.nonce).await {
        Ok(identity) => identity,
        Err(e) => {
            fail(e.to_string()).await;
            return Err(e);
        }
    };
    let who = Vouched {
        identity: format!("oidc:{name}:{}", identity.subject),
        email: identity.email,
        email_verified: identity.email_verified,
        name: identity.name,
        groups: identity.groups,
    };
    finish_sign_in(&auth, &audit, &caller, &agent, &provider, &who, sso::mapped_roles(&config.role_map, &who.groups), &request.return_to)
        .await
}

fn saml_of(auth: &Auth) -> Result<&crate::auth::saml::Saml, ApiError> {
    auth.saml.as_ref().ok_or_else(|| ApiError::not_found("saml_not_configured", "SAML is not configured ([server.auth.saml])"))
}

/// This service provider's SAML metadata (give it to the IdP).
#[utoipa::path(get, path = "/api/v1/auth/saml/metadata", tag = "auth",
    responses((status = 200, description = "SAML metadata", body = String, content_type = "application/samlmetadata+xml")))]
async fn saml_metadata(State(auth): State<Arc<Auth>>) -> Result<Response, ApiError> {
    let saml = saml_of(&auth)?;
    Ok(([(header::CONTENT_TYPE, "application/samlmetadata+xml")], saml.metadata().to_string()).into_response())
}

/// `?return_to=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct SamlLoginQuery {
    /// A path of this site to go to after signing in (default `/`).
    return_to: Option<String>,
}

/// Starts a SAML sign-in: redirects to the IdP with an AuthnRequest and binds it to this browser.
#[utoipa::path(get, path = "/api/v1/auth/saml/login", tag = "auth", params(SamlLoginQuery), responses((status = 303, description = "To the IdP")))]
async fn saml_login(State(auth): State<Arc<Auth>>, Query(q): Query<SamlLoginQuery>) -> Result<Response, ApiError> {
    let (url, request_id) = saml_of(&auth)?.login()?;
    let binding =
        sso::remember(auth.store(), "saml", &request_id, String::new(), String::new(), sso::safe_return(q.return_to.as_deref())).await?;
    Ok(redirect(&url, &[auth.binding_cookie(&binding, Some(Duration::from_millis(sso::REQUEST_TTL_MS as u64)))]))
}

/// The IdP's answer (HTTP-POST binding).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct AcsForm {
    /// The response, base64.
    #[serde(rename = "SAMLResponse")]
    saml_response: String,
    /// What the request sent along (its id).
    relay_state: Option<String>,
}

/// The assertion consumer: verifies the signed response to a request of this browser, maps groups to
/// roles, signs in and redirects to where the sign-in started.
#[utoipa::path(post, path = "/api/v1/auth/saml/acs", tag = "auth",
    request_body(content = AcsForm, content_type = "application/x-www-form-urlencoded"), responses((status = 303, description = "Signed in")))]
async fn saml_acs(
    State(auth): State<Arc<Auth>>,
    State(audit): State<Audit>,
    caller: Caller,
    UserAgent(agent): UserAgent,
    headers: axum::http::HeaderMap,
    form: Result<axum::Form<AcsForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, ApiError> {
    let saml = saml_of(&auth)?;
    let axum::Form(form) =
        form.map_err(|e| ApiError::bad_request("invalid_body", format!("the IdP's form is not usable: {}", e.body_text())))?;
    let relay = form.relay_state.ok_or_else(|| {
        ApiError::bad_request("sso_state_invalid", "the response carries no RelayState: only sign-ins started here are accepted")
    })?;
    let request = sso::take(auth.store(), "saml", &relay, cookie(&headers, BINDING_COOKIE)).await?;
    let who = match saml.verify(&form.saml_response, &relay).await {
        Ok(who) => who,
        Err(e) => {
            audit
                .record(Event {
                    actor: "anonymous".into(),
                    source: &caller.address,
                    action: "auth.login_failed",
                    target: "sso/saml".into(),
                    detail: serde_json::json!({ "method": "saml", "reason": e.to_string() }),
                })
                .await;
            return Err(e);
        }
    };
    let roles = sso::mapped_roles(saml.role_map(), &who.groups);
    finish_sign_in(&auth, &audit, &caller, &agent, "saml", &who, roles, &request.return_to).await
}

/// Provisions the user, starts its session, audits, and redirects to `return_to`.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn finish_sign_in(
    auth: &Auth,
    audit: &Audit,
    caller: &Caller,
    agent: &str,
    provider: &str,
    who: &Vouched,
    roles: Vec<String>,
    return_to: &str,
) -> Result<Response, ApiError> {
    let user = sso::provision(auth.store(), who, roles).await?;
    auth.invalidate();
    let (session, _) = auth.start_session(&user.value, provider, &caller.address, agent).await?;
    audit
        .record(Event {
            actor: format!("user:{}", user.value.id),
            source: &caller.address,
            action: "auth.login",
            target: format!("user/{}", user.value.id),
            detail: serde_json::json!({ "method": provider, "groups": who.groups, "sso_roles": user.value.sso_roles }),
        })
        .await;
    Ok(redirect(return_to, &[session, auth.binding_cookie("", None)]))
}
