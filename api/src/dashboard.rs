//! The dashboard: the single-page app built by Vite into `web/dist`, embedded in the binary at compile
//! time and served at `/`. Hashed assets under `/assets/` are cached for a year; `index.html` is never
//! cached, and answers every path that is not a file (deep links: the app routes in the browser).
//! Nothing is loaded from elsewhere (the Content-Security-Policy says so). Built without `web/dist`
//! (plain `cargo build`), the binary serves a page saying how to build the dashboard.

use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// The files of `web/dist`.
#[derive(rust_embed::Embed)]
#[folder = "../web/dist"]
#[allow_missing = true]
struct Assets;

/// What the browser may load: only this origin (inline styles for the graph's positions).
const CSP: &str = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
                   frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Shown when the binary was built without the dashboard.
const NOT_BUILT: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>LeanNodes</title></head>\
<body><h1>LeanNodes</h1><p>The dashboard was not built into this binary. Build it with <code>scripts/test</code> \
(or <code>npm ci &amp;&amp; npm run build</code> in <code>web/</code>), then build LeanNodes again. \
The management API is at <a href=\"/api/v1/openapi.json\">/api/v1/openapi.json</a>.</p></body></html>";

/// Answers a request no API route took: `/api/…` gets the API's JSON 404; `GET`/`HEAD` of anything
/// else gets the file, or `index.html` for app routes.
pub(crate) async fn fallback(method: Method, uri: Uri) -> Response {
    let path = uri.path();
    if path == "/api" || path.starts_with("/api/") {
        return ApiError::not_found("not_found", "no such endpoint; see /api/v1/openapi.json").into_response();
    }
    if method != Method::GET && method != Method::HEAD {
        return ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "the dashboard only answers GET").into_response();
    }
    let file = path.trim_start_matches('/');
    if let Some(asset) = Assets::get(file).filter(|_| !file.is_empty() && file != "index.html") {
        let immutable = file.starts_with("assets/");
        let cache = if immutable { "public, max-age=31536000, immutable" } else { "no-cache" };
        return page(asset.metadata.mimetype(), cache, asset.data.into_owned());
    }
    // A missing file with an extension is a 404, not the app (a stale asset name, a typo).
    if file.rsplit('/').next().is_some_and(|last| last.contains('.')) {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    }
    match Assets::get("index.html") {
        Some(index) => page("text/html; charset=utf-8", "no-cache", index.data.into_owned()),
        None => page("text/html; charset=utf-8", "no-cache", NOT_BUILT.as_bytes().to_vec()),
    }
}

/// Whether the dashboard was built into this binary.
pub fn built() -> bool {
    Assets::get("index.html").is_some()
}

fn page(content_type: &str, cache: &'static str, body: Vec<u8>) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    response
}
