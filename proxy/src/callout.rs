//! Callout front doors for teams that keep their gateway: forward-auth `/check` (on `check_listen`, and
//! on the admin listener) and Envoy `ext_authz` gRPC on `[server] ext_authz_listen`. Both take the
//! original request from what the gateway sends, ask the proxy tier's gate (the same code the proxy runs,
//! holding while the flow wakes), and answer "allow" (`200` with an empty body / gRPC `OK`) or the
//! proxy's own answer. They never need a user session; with `[server] check_token` set, every callout
//! must carry that secret in `x-leannodes-check-token` (gRPC: metadata, a context extension or a header
//! of the checked request), or it is refused with `401`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use envoy_types::ext_authz::v3::pb::{
    Authorization, AuthorizationServer, CheckRequest, CheckResponse, DeniedHttpResponse, HeaderValue, HeaderValueOption, HttpResponse,
    HttpStatus, OkHttpResponse,
};
use envoy_types::pb::google::rpc;
use leannodes_config::Secret;

use crate::answer::{Client, Reply, json_reply};
use crate::gate::{Inquiry, Verdict};
use crate::metrics::Outcome;
use crate::service::ProxyState;

/// The header (and gRPC metadata key, and context extension) that carries `[server] check_token`.
pub const CHECK_TOKEN_HEADER: &str = "x-leannodes-check-token";

/// The callout front doors over one proxy state.
pub struct Callouts {
    proxy: Arc<ProxyState>,
    allow_unmatched: bool,
    token: Option<Secret>,
}

impl std::fmt::Debug for Callouts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Callouts").field("allow_unmatched", &self.allow_unmatched).field("token", &self.token.is_some()).finish()
    }
}

impl Callouts {
    /// Callouts that answer from `proxy`'s routes. `allow_unmatched`: what hosts no flow serves get
    /// (`[server] check_unmatched`); `token`: the shared secret callouts must carry.
    pub fn new(proxy: Arc<ProxyState>, allow_unmatched: bool, token: Option<Secret>) -> Arc<Callouts> {
        Arc::new(Callouts { proxy, allow_unmatched, token })
    }

    /// Whether a callout carrying `presented` (any of the places a gateway can put it) may ask.
    fn authenticated<'a>(&self, mut presented: impl Iterator<Item = &'a str>) -> bool {
        match &self.token {
            None => true,
            Some(token) => presented.any(|p| constant_time_eq(p.as_bytes(), token.expose().as_bytes())),
        }
    }

    /// `/check` and `/check/{*rest}`, to merge into a listener's routes.
    pub fn routes(self: &Arc<Self>) -> axum::Router {
        axum::Router::new().route("/check", any(check)).route("/check/{*rest}", any(check)).with_state(self.clone())
    }

    /// The whole router of `[server] check_listen`: `/check`, `/healthz`, and `404` for anything else
    /// (the management API is never reachable there).
    pub fn listener(self: &Arc<Self>) -> axum::Router {
        self.routes().route("/healthz", get(|| async { "ok\n" })).fallback(|| async {
            let reply = json_reply(404, "not_found", None, "this listener only serves /check", None, serde_json::json!({}));
            reply_response(&reply)
        })
    }
}

/// Compares two secrets in time independent of where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The answer to a callout without the right token.
fn unauthenticated() -> Reply {
    json_reply(
        401,
        "check_unauthenticated",
        None,
        "the gateway's callout did not carry the configured check token",
        None,
        serde_json::json!({}),
    )
}

/// The original request, as a gateway describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Original {
    host: String,
    /// Path and query.
    uri: String,
    method: String,
    accept: String,
    content_type: String,
    user_agent: Option<String>,
    /// `X-LeanNodes-Version` of the original request.
    version: Option<String>,
}

impl Original {
    pub(crate) fn inquiry(&self) -> Inquiry {
        let path = self.uri.split(['?', '#']).next().filter(|p| !p.is_empty()).unwrap_or("/");
        Inquiry {
            host: self.host.clone(),
            path: path.to_string(),
            client: Client::classify(&self.method, &self.accept, &self.content_type),
            user_agent: self.user_agent.clone(),
            version: self.version.clone(),
        }
    }
}

/// What a callout answers.
#[derive(Debug)]
enum Decision {
    /// Let the gateway proxy the request.
    Allow,
    /// Answer this instead.
    Deny(Reply),
}

/// Runs the gate for a callout. Activity and metrics are recorded as for proxied requests.
async fn decide(proxy: &ProxyState, original: &Original, allow_unmatched: bool) -> Decision {
    let inquiry = original.inquiry();
    // A gateway that gives up closes the callout, which drops this future: nothing to watch here.
    match proxy.gate(&inquiry, std::future::pending()).await {
        Verdict::Allow { route, held_ms, .. } => {
            route.metrics.count(if held_ms.is_some() { Outcome::ColdStart } else { Outcome::Proxied });
            Decision::Allow
        }
        Verdict::Unmatched if allow_unmatched => Decision::Allow,
        Verdict::Unmatched => {
            let message = format!("no flow serves host `{}` and path `{}`", inquiry.host, inquiry.path);
            Decision::Deny(json_reply(404, "no_flow", None, &message, None, serde_json::json!({})))
        }
        Verdict::Answer { route, outcome, reply } => {
            if let Some(route) = route {
                route.metrics.count(outcome);
            }
            Decision::Deny(reply.for_callout())
        }
        Verdict::ClientGone { route } => {
            route.metrics.count(Outcome::ClientClosed);
            Decision::Deny(json_reply(499, "client_closed", Some(route.flow.name()), "the client went away", None, serde_json::json!({})))
        }
    }
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty())
}

/// Splits `scheme://host[:port]/path?query` into host and path-and-query.
fn split_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let slash = rest.find('/').unwrap_or(rest.len());
    let (host, uri) = rest.split_at(slash);
    Some((host, if uri.is_empty() { "/" } else { uri }))
}

/// Reads the original request of an HTTP forward-auth call. Gateways say it in different ways:
/// `X-Forwarded-Host`/`-Uri`/`-Method` (Caddy, Traefik, APISIX, the nginx, HAProxy, Kong and Skipper
/// snippets `leannodes gateway render` writes), `X-Original-URL` + `X-Original-Method` (ingress-nginx),
/// `X-Original-Host`/`-URI`/`-Method`, or Envoy's HTTP mode: the original method, `Host`, and the
/// original path appended to `/check`.
pub(crate) fn original_from_http(method: &Method, uri: &Uri, headers: &HeaderMap) -> Original {
    let original_url = header_text(headers, "x-original-url").and_then(split_url);
    let appended = {
        let path = uri.path().strip_prefix("/check").unwrap_or_default();
        let path = if path.is_empty() { "/" } else { path };
        uri.query().map_or_else(|| path.to_string(), |q| format!("{path}?{q}"))
    };
    let host = header_text(headers, "x-forwarded-host")
        .or_else(|| header_text(headers, "x-original-host"))
        .or(original_url.map(|(h, _)| h))
        .or_else(|| header_text(headers, header::HOST.as_str()))
        .unwrap_or_default();
    let path = header_text(headers, "x-forwarded-uri")
        .or_else(|| header_text(headers, "x-original-uri"))
        .or(original_url.map(|(_, u)| u))
        .map_or(appended, str::to_string);
    let method = header_text(headers, "x-forwarded-method")
        .or_else(|| header_text(headers, "x-original-method"))
        .map_or_else(|| method.as_str().to_string(), str::to_string);
    Original {
        host: host.to_string(),
        uri: path,
        method,
        accept: header_text(headers, "accept").unwrap_or_default().to_string(),
        content_type: header_text(headers, "content-type").unwrap_or_default().to_string(),
        user_agent: header_text(headers, "user-agent").map(str::to_string),
        version: header_text(headers, crate::gate::VERSION_HEADER).map(str::to_string),
    }
}

/// `ANY /check[/…]`: forward-auth.
async fn check(State(callouts): State<Arc<Callouts>>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    if !callouts.authenticated(headers.get_all(CHECK_TOKEN_HEADER).iter().filter_map(|v| v.to_str().ok())) {
        return reply_response(&unauthenticated());
    }
    let original = original_from_http(&method, &uri, &headers);
    match decide(&callouts.proxy, &original, callouts.allow_unmatched).await {
        Decision::Allow => (StatusCode::OK, [(header::CACHE_CONTROL, "no-store")]).into_response(),
        Decision::Deny(reply) => reply_response(&reply),
    }
}

/// A [`Reply`] as an HTTP response.
fn reply_response(reply: &Reply) -> Response {
    let mut response = Response::new(Body::from(reply.body.clone()));
    *response.status_mut() = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, header::HeaderValue::from_static(reply.content_type));
    h.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    for (name, value) in &reply.headers {
        if let Ok(value) = header::HeaderValue::from_str(value) {
            h.insert(*name, value);
        }
    }
    response
}

/// Reads the original request of an Envoy `CheckRequest`.
pub(crate) fn original_from_envoy(request: &CheckRequest) -> Original {
    let http = request.attributes.as_ref().and_then(|a| a.request.as_ref()).and_then(|r| r.http.as_ref());
    let empty = HashMap::new();
    let headers = http.map_or(&empty, |h| &h.headers);
    let get = |name: &str| headers.get(name).cloned().unwrap_or_default();
    Original {
        host: http.map(|h| h.host.clone()).filter(|h| !h.is_empty()).unwrap_or_else(|| get(":authority")),
        uri: http.map(|h| h.path.clone()).filter(|p| !p.is_empty()).unwrap_or_else(|| get(":path")),
        method: http.map(|h| h.method.clone()).filter(|m| !m.is_empty()).unwrap_or_else(|| get(":method")),
        accept: get("accept"),
        content_type: get("content-type"),
        user_agent: headers.get("user-agent").cloned(),
        version: headers.get(crate::gate::VERSION_HEADER).cloned(),
    }
}

/// The `CheckResponse` for a decision.
fn envoy_response(decision: Decision) -> CheckResponse {
    match decision {
        Decision::Allow => CheckResponse {
            status: Some(rpc::Status { code: 0, ..Default::default() }),
            http_response: Some(HttpResponse::OkResponse(OkHttpResponse::default())),
            ..Default::default()
        },
        Decision::Deny(reply) => {
            let headers: Vec<HeaderValueOption> =
                [("content-type", reply.content_type.to_string()), ("cache-control", "no-store".to_string())]
                    .into_iter()
                    .chain(reply.headers.iter().map(|(n, v)| (*n, v.clone())))
                    .map(|(key, value)| HeaderValueOption {
                        header: Some(HeaderValue { key: key.to_string(), value, ..Default::default() }),
                        ..Default::default()
                    })
                    .collect();
            CheckResponse {
                // PERMISSION_DENIED: Envoy answers with the denied response below.
                status: Some(rpc::Status {
                    code: 7,
                    message: String::from_utf8_lossy(&reply.body).chars().take(200).collect(),
                    ..Default::default()
                }),
                http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
                    status: Some(HttpStatus { code: i32::from(reply.status) }),
                    headers,
                    body: String::from_utf8_lossy(&reply.body).into_owned(),
                })),
                ..Default::default()
            }
        }
    }
}

/// The `envoy.service.auth.v3.Authorization` service.
struct ExtAuthz {
    callouts: Arc<Callouts>,
}

/// Where an `ext_authz` check may carry the token: gRPC metadata (Envoy `initial_metadata`), a context
/// extension (Contour, Envoy Gateway, kgateway) or a header of the checked request (Emissary).
pub(crate) fn presented_tokens(request: &tonic::Request<CheckRequest>) -> Vec<&str> {
    let metadata = request.metadata().get_all(CHECK_TOKEN_HEADER).iter().filter_map(|v| v.to_str().ok());
    let attributes = request.get_ref().attributes.as_ref();
    let context = attributes.and_then(|a| a.context_extensions.get(CHECK_TOKEN_HEADER)).map(String::as_str);
    let header = attributes
        .and_then(|a| a.request.as_ref())
        .and_then(|r| r.http.as_ref())
        .and_then(|h| h.headers.get(CHECK_TOKEN_HEADER))
        .map(String::as_str);
    metadata.chain(context).chain(header).collect()
}

#[tonic::async_trait]
impl Authorization for ExtAuthz {
    async fn check(&self, request: tonic::Request<CheckRequest>) -> Result<tonic::Response<CheckResponse>, tonic::Status> {
        if !self.callouts.authenticated(presented_tokens(&request).into_iter()) {
            return Ok(tonic::Response::new(envoy_response(Decision::Deny(unauthenticated()))));
        }
        let original = original_from_envoy(request.get_ref());
        let decision = decide(&self.callouts.proxy, &original, self.callouts.allow_unmatched).await;
        Ok(tonic::Response::new(envoy_response(decision)))
    }
}

/// Serves `ext_authz` on `listener` until the process ends.
pub async fn serve_ext_authz(listener: tokio::net::TcpListener, callouts: Arc<Callouts>) {
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let service = AuthorizationServer::new(ExtAuthz { callouts }).max_decoding_message_size(1 << 20);
    // Held checks last as long as a wake: no request timeout; HTTP/2 keepalive finds dead gateways.
    let server = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
        .add_service(service)
        .serve_with_incoming(incoming);
    if let Err(e) = server.await {
        tracing::error!("ext_authz server stopped: {e}");
    }
}

#[cfg(test)]
mod tests;
