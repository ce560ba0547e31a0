//! Callout front doors for teams that keep their gateway: forward-auth `/check` on the admin listener
//! and Envoy `ext_authz` gRPC on `[server] ext_authz_listen`. Both take the original request from what
//! the gateway sends, ask the proxy tier's gate (the same code the proxy runs, holding while the flow
//! wakes), and answer "allow" (`200` with an empty body / gRPC `OK`) or the proxy's own answer.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use envoy_types::ext_authz::v3::pb::{
    Authorization, AuthorizationServer, CheckRequest, CheckResponse, DeniedHttpResponse, HeaderValue, HeaderValueOption, HttpResponse,
    HttpStatus, OkHttpResponse,
};
use envoy_types::pb::google::rpc;
use leannodes_proxy::metrics::Outcome;
use leannodes_proxy::{Client, Inquiry, ProxyState, Reply, Verdict, json_reply};

use crate::admin::Admin;

/// The original request, as a gateway describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Original {
    pub(crate) host: String,
    /// Path and query.
    pub(crate) uri: String,
    pub(crate) method: String,
    pub(crate) accept: String,
    pub(crate) content_type: String,
    pub(crate) user_agent: Option<String>,
}

impl Original {
    fn inquiry(&self) -> Inquiry {
        let path = self.uri.split(['?', '#']).next().filter(|p| !p.is_empty()).unwrap_or("/");
        Inquiry {
            host: self.host.clone(),
            path: path.to_string(),
            client: Client::classify(&self.method, &self.accept, &self.content_type),
            user_agent: self.user_agent.clone(),
        }
    }
}

/// What a callout answers.
#[derive(Debug)]
pub(crate) enum Decision {
    Allow,
    Deny(Reply),
}

/// Runs the gate for a callout. Activity and metrics are recorded as for proxied requests.
pub(crate) async fn decide(proxy: &ProxyState, original: &Original, allow_unmatched: bool) -> Decision {
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
    }
}

/// `ANY /check[/…]`: forward-auth.
pub(crate) async fn check(State(admin): State<Arc<Admin>>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let original = original_from_http(&method, &uri, &headers);
    match decide(&admin.proxy, &original, admin.check_allows_unmatched).await {
        Decision::Allow => (StatusCode::OK, [(header::CACHE_CONTROL, "no-store")]).into_response(),
        Decision::Deny(reply) => {
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
    }
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
    }
}

/// The `CheckResponse` for a decision.
pub(crate) fn envoy_response(decision: Decision) -> CheckResponse {
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
pub(crate) struct ExtAuthz {
    admin: Arc<Admin>,
}

#[tonic::async_trait]
impl Authorization for ExtAuthz {
    async fn check(&self, request: tonic::Request<CheckRequest>) -> Result<tonic::Response<CheckResponse>, tonic::Status> {
        let original = original_from_envoy(request.get_ref());
        let decision = decide(&self.admin.proxy, &original, self.admin.check_allows_unmatched).await;
        Ok(tonic::Response::new(envoy_response(decision)))
    }
}

/// Serves `ext_authz` on `listener` until the process ends.
pub(crate) async fn serve_ext_authz(listener: tokio::net::TcpListener, admin: Arc<Admin>) {
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let service = AuthorizationServer::new(ExtAuthz { admin }).max_decoding_message_size(1 << 20);
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
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().expect("header value"));
        }
        h
    }

    #[test]
    fn every_gateway_dialect_gives_the_original_request() {
        let get = Method::GET;
        let check: Uri = "/check".parse().expect("uri");
        // Caddy, Traefik, APISIX and our snippets.
        let o = original_from_http(
            &get,
            &check,
            &headers(&[
                ("host", "leannodes:9090"),
                ("x-forwarded-host", "shop.test"),
                ("x-forwarded-uri", "/cart?id=1"),
                ("x-forwarded-method", "POST"),
            ]),
        );
        assert_eq!((o.host.as_str(), o.uri.as_str(), o.method.as_str()), ("shop.test", "/cart?id=1", "POST"));
        assert_eq!(o.inquiry().path, "/cart");
        // ingress-nginx.
        let o = original_from_http(
            &get,
            &check,
            &headers(&[("x-original-url", "https://shop.test:8443/a/b?c=d"), ("x-original-method", "DELETE")]),
        );
        assert_eq!((o.host.as_str(), o.uri.as_str(), o.method.as_str()), ("shop.test:8443", "/a/b?c=d", "DELETE"));
        // Our plain-nginx snippet.
        let o = original_from_http(
            &get,
            &check,
            &headers(&[("x-original-host", "shop.test"), ("x-original-uri", "/x"), ("x-original-method", "PUT")]),
        );
        assert_eq!((o.host.as_str(), o.uri.as_str(), o.method.as_str()), ("shop.test", "/x", "PUT"));
        // Envoy HTTP: original method, Host, and path appended to /check.
        let o = original_from_http(&Method::PATCH, &"/check/orders/7?full=1".parse().expect("uri"), &headers(&[("host", "shop.test")]));
        assert_eq!((o.host.as_str(), o.uri.as_str(), o.method.as_str()), ("shop.test", "/orders/7?full=1", "PATCH"));
        let o = original_from_http(&get, &check, &headers(&[("host", "shop.test")]));
        assert_eq!(o.inquiry().path, "/");
    }

    #[test]
    fn callouts_classify_clients_like_the_proxy() {
        let o = original_from_http(
            &Method::GET,
            &"/check".parse().expect("uri"),
            &headers(&[("accept", "text/html,*/*"), ("x-forwarded-method", "GET")]),
        );
        assert_eq!(o.inquiry().client, Client::Browser);
        let o = original_from_http(
            &Method::GET,
            &"/check".parse().expect("uri"),
            &headers(&[("accept", "text/html"), ("x-forwarded-method", "POST")]),
        );
        assert_eq!(o.inquiry().client, Client::Api, "a browser's POST is not shown the warm-up page");
        let o = original_from_http(
            &Method::POST,
            &"/check/svc.Echo/Say".parse().expect("uri"),
            &headers(&[("content-type", "application/grpc")]),
        );
        assert_eq!(o.inquiry().client, Client::Grpc);
    }

    #[test]
    fn denied_envoy_responses_carry_status_headers_and_body() {
        let reply = json_reply(503, "cold_start_timeout", Some("shop"), "still waking", Some(5), serde_json::json!({}));
        let response = envoy_response(Decision::Deny(reply));
        assert_eq!(response.status.as_ref().map(|s| s.code), Some(7));
        let Some(HttpResponse::DeniedResponse(denied)) = response.http_response else { panic!("denied") };
        assert_eq!(denied.status.map(|s| s.code), Some(503));
        let keys: Vec<(String, String)> =
            denied.headers.iter().filter_map(|h| h.header.as_ref()).map(|h| (h.key.clone(), h.value.clone())).collect();
        assert!(keys.contains(&("retry-after".into(), "5".into())), "{keys:?}");
        assert!(keys.contains(&("cache-control".into(), "no-store".into())));
        assert!(denied.body.contains("\"error\":\"cold_start_timeout\""));
        let allow = envoy_response(Decision::Allow);
        assert_eq!(allow.status.map(|s| s.code), Some(0));
    }
}
