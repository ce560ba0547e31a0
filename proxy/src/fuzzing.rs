//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`, never in a shipped build): the
//! parsers that face the network, reached exactly as the front doors reach them.

use axum::http::{HeaderMap, Method, Uri};
use envoy_types::ext_authz::v3::pb::CheckRequest;
use pingora::http::RequestHeader;

use crate::gate::Inquiry;

/// What the proxy's gate is asked for a request head that reached the proxy listener.
pub fn proxy_inquiry(req: &RequestHeader) -> Inquiry {
    crate::service::inquiry_of(req)
}

/// What the gate is asked for the first request head of a connection, read by the parker
/// (`crate::park`); `None` when the parker does not hand it to the gate (incomplete, too large, not
/// HTTP/1).
pub fn parked_inquiry(bytes: &[u8]) -> Option<Inquiry> {
    crate::park::inquiry_of_head(bytes)
}

/// What the gate is asked for a forward-auth `/check` call.
pub fn check_inquiry(method: &Method, uri: &Uri, headers: &HeaderMap) -> Inquiry {
    crate::callout::original_from_http(method, uri, headers).inquiry()
}

/// What the gate is asked for an Envoy `ext_authz` check, and the check tokens it presents.
pub fn ext_authz_inquiry(request: CheckRequest) -> (Inquiry, Vec<String>) {
    let request = tonic::Request::new(request);
    let tokens = crate::callout::presented_tokens(&request).into_iter().map(str::to_string).collect();
    (crate::callout::original_from_envoy(request.get_ref()).inquiry(), tokens)
}
