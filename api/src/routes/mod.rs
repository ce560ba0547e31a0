//! The route table. Every route is added with the [`Rule`] it requires; the rule is enforced by a layer
//! on that route before its handler runs, recorded in [`RouteRule`]s for the tests that walk every
//! route × every role, and written into the route's OpenAPI description. The OpenAPI document is built
//! from the handlers' `#[utoipa::path]` annotations as the routes are added.

mod access;
mod audit;
mod auth;
mod events;
mod flows;
mod gateways;
mod groups;
mod invitations;
mod lifecycle;
mod notifications;
mod roles;
mod routing;
mod savings;
mod settings;
mod sso;
mod system;
mod tokens;
mod transfer;
mod users;
mod workloads;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, RawPathParams, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::OpenApi;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};

use crate::auth::{Caller, csrf_ok, same_origin};
use crate::authz::Rule;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// The word serde writes for a typed value (an enum's stored name), for answers that show it as text.
pub(crate) fn word<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

/// One route and the rule it requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRule {
    /// HTTP method (upper case).
    pub method: &'static str,
    /// Path as in the OpenAPI document (`/api/v1/flows/{name}`).
    pub path: String,
    /// What it requires.
    pub rule: Rule,
}

/// Adds routes with their rules.
pub(crate) struct Registrar {
    router: OpenApiRouter<AppState>,
    rules: Vec<RouteRule>,
}

impl Registrar {
    /// Adds the routes of one `routes!(…)` call; each of them requires `rule`.
    pub(crate) fn add(mut self, rule: Rule, (schemas, paths, method_router): UtoipaMethodRouter<AppState>) -> Registrar {
        for (path, item) in &paths.paths {
            let methods = [
                ("GET", item.get.is_some()),
                ("POST", item.post.is_some()),
                ("PUT", item.put.is_some()),
                ("PATCH", item.patch.is_some()),
                ("DELETE", item.delete.is_some()),
            ];
            for (method, present) in methods {
                if present {
                    self.rules.push(RouteRule { method, path: path.clone(), rule });
                }
            }
        }
        let enforced = method_router.route_layer(axum::middleware::from_fn(move |req: Request, next: Next| enforce(rule, req, next)));
        self.router = self.router.routes((schemas, paths, enforced));
        self
    }
}

/// Every route of the API with its rule (not yet given its state) and the OpenAPI document.
pub(crate) fn table() -> (axum::Router<AppState>, OpenApi, Vec<RouteRule>) {
    let mut registrar = Registrar { router: OpenApiRouter::new(), rules: Vec::new() };
    for add in [
        system::routes,
        auth::routes,
        sso::routes,
        flows::routes,
        lifecycle::routes,
        transfer::routes,
        access::routes,
        events::routes,
        gateways::routes,
        routing::routes,
        workloads::routes,
        savings::routes,
        notifications::routes,
        tokens::routes,
        users::routes,
        groups::routes,
        roles::routes,
        invitations::routes,
        audit::routes,
        settings::routes,
    ] {
        registrar = add(registrar);
    }
    let Registrar { router, rules } = registrar;
    let (router, mut openapi) = router.split_for_parts();
    document(&mut openapi, &rules);
    (router, openapi, rules)
}

/// The router over `state`, with the fallbacks and the layers every request goes through.
pub(crate) fn router(state: AppState) -> axum::Router {
    let (router, _, _) = table();
    router
        .method_not_allowed_fallback(|| async {
            ApiError::new(axum::http::StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this endpoint does not take that method")
        })
        .layer(axum::middleware::from_fn_with_state(state.clone(), authenticate))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            ApiError::internal("the request failed unexpectedly; the error was logged").into_response()
        }))
        // Added after the layers, so it needs no sign-in: the dashboard's files, and JSON 404 for /api.
        .fallback(crate::dashboard::fallback)
        .with_state(state)
}

/// Identifies the caller of every request (before routing) and refuses cross-site unsafe requests.
async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    if let Err(e) = same_origin(req.method(), req.headers()) {
        return e.into_response();
    }
    let address =
        req.extensions().get::<ConnectInfo<SocketAddr>>().map_or_else(|| "unknown".to_string(), |ConnectInfo(addr)| addr.ip().to_string());
    let caller = match state.auth.identify(req.headers(), address).await {
        Ok(caller) => caller,
        Err(e) => return e.into_response(),
    };
    req.extensions_mut().insert(caller);
    let mut response = next.run(req).await;
    response.headers_mut().entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    response
}

/// Enforces one route's rule.
async fn enforce(rule: Rule, req: Request, next: Next) -> Response {
    if rule == Rule::Public {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    let checked = async {
        let caller = parts.extensions.get::<Caller>().cloned().ok_or_else(|| ApiError::internal("the request was not authenticated"))?;
        let principal = caller.require()?;
        csrf_ok(&parts.method, &parts.headers, &caller.via)?;
        let flow = match rule {
            Rule::Flow(_) => RawPathParams::from_request_parts(&mut parts, &())
                .await
                .ok()
                .and_then(|params| params.iter().find(|(k, _)| *k == "name").map(|(_, v)| v.to_string())),
            _ => None,
        };
        principal.check(rule, flow.as_deref())
    };
    match checked.await {
        Ok(()) => next.run(Request::from_parts(parts, body)).await,
        Err(e) => e.into_response(),
    }
}

/// Completes the OpenAPI document: title, security schemes, the error answers every operation can
/// give, and each operation's rule.
fn document(openapi: &mut OpenApi, rules: &[RouteRule]) {
    use utoipa::openapi::{ContentBuilder, RefOr, ResponseBuilder};
    openapi.info.title = "LeanNodes management API".into();
    openapi.info.version = env!("CARGO_PKG_VERSION").into();
    openapi.info.description = Some(
        "The management plane of LeanNodes. Errors always have the shape {\"error\", \"message\", \"details\"}. \
         Browsers sign in with POST /api/v1/auth/login (session cookie + X-CSRF-Token on unsafe requests); \
         scripts send a personal access token as `Authorization: Bearer lnp_…`."
            .into(),
    );
    openapi.info.license = None;
    let components = openapi.components.get_or_insert_with(Default::default);
    components.add_security_scheme("session", SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(crate::auth::SESSION_COOKIE))));
    components.add_security_scheme(
        "token",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("lnp_…").build()),
    );
    let error_schema = <ErrorBody as utoipa::PartialSchema>::schema();
    components.schemas.insert("ErrorBody".into(), error_schema);
    let error = |what: &str| {
        ResponseBuilder::new()
            .description(what)
            .content(
                "application/json",
                ContentBuilder::new().schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name("ErrorBody")))).build(),
            )
            .build()
    };
    for rule in rules {
        let Some(item) = openapi.paths.paths.get_mut(&rule.path) else { continue };
        let operation: Option<&mut Operation> = match rule.method {
            "GET" => item.get.as_mut(),
            "POST" => item.post.as_mut(),
            "PUT" => item.put.as_mut(),
            "PATCH" => item.patch.as_mut(),
            "DELETE" => item.delete.as_mut(),
            _ => None,
        };
        let Some(operation) = operation else { continue };
        let mut errors = vec![
            ("400", "Bad input: malformed JSON, unknown fields, wrong types, bad query or path parameters."),
            ("404", "Not found."),
            ("405", "Method not allowed."),
            ("409", "Conflict: a stale If-Match version, or the state does not allow it."),
            ("413", "The body is too large."),
            ("415", "The body is not JSON."),
            ("422", "The request is well-formed but cannot be done."),
            ("429", "Too many requests; see Retry-After."),
            ("500", "Internal error."),
            ("503", "A dependency (the store, the cluster) is unavailable."),
        ];
        if rule.rule != Rule::Public {
            errors.push(("401", "Not signed in, or the token is unknown, expired or revoked."));
            errors.push(("403", "Signed in, but without the permission this needs, or a missing CSRF token."));
        } else {
            errors.push(("403", "Refused (a cross-site request)."));
            errors.push(("401", "The credentials are wrong."));
        }
        for (status, what) in errors {
            operation.responses.responses.entry(status.to_string()).or_insert_with(|| RefOr::T(error(what)));
        }
        let needs = format!("Requires: {}.", rule.rule.describe());
        operation.description = Some(match operation.description.take() {
            Some(d) if !d.is_empty() => format!("{d}\n\n{needs}"),
            _ => needs,
        });
        operation.security = Some(match rule.rule {
            Rule::Public => vec![SecurityRequirement::default()],
            _ => vec![SecurityRequirement::new("session", Vec::<String>::new()), SecurityRequirement::new("token", Vec::<String>::new())],
        });
    }
}

#[cfg(test)]
mod tests;

/// Parses `bytes` as each JSON body the API takes (for the fuzz targets; feature `fuzzing`): every
/// one either parses or is refused with the API's `400` error, never a panic.
#[cfg(feature = "fuzzing")]
pub(crate) fn parse_every_body(bytes: &[u8]) -> Vec<Result<(), ApiError>> {
    use crate::extract::parse_json;
    fn one<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<(), ApiError> {
        parse_json::<T>(bytes).map(drop)
    }
    vec![
        one::<Vec<access::GrantView>>(bytes),
        one::<invitations::Acceptance>(bytes),
        one::<lifecycle::Commit>(bytes),
        one::<users::CreateUser>(bytes),
        one::<groups::GroupSpec>(bytes),
        one::<transfer::Import>(bytes),
        one::<auth::LoginRequest>(bytes),
        one::<lifecycle::NewFlow>(bytes),
        one::<invitations::NewInvitation>(bytes),
        one::<lifecycle::NewSession>(bytes),
        one::<tokens::NewToken>(bytes),
        one::<auth::PasswordChange>(bytes),
        one::<auth::ResetPassword>(bytes),
        one::<auth::ResetRequest>(bytes),
        one::<roles::RoleSpec>(bytes),
        one::<notifications::RouteInput>(bytes),
        one::<lifecycle::SaveDraft>(bytes),
        one::<auth::SetupRequest>(bytes),
        one::<users::UpdateUser>(bytes),
    ]
}
