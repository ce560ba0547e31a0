//! A forward-auth `/check` call (every gateway dialect: X-Forwarded-*, X-Original-URL, X-Original-*,
//! Envoy's appended path), read from a raw request head, turned into what the gate asks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(head) = leannodes_fuzz::parse_head(data) else { return };
    let inquiry = leannodes_proxy::fuzzing::check_inquiry(&head.method, &head.uri, &head.headers);
    assert!(!inquiry.path.is_empty(), "an empty path: {inquiry:?}");
    assert!(!inquiry.path.contains('?') && !inquiry.path.contains('#'), "the query is not part of the path: {inquiry:?}");
    let _ = leannodes_config::binding::normalize_host(&inquiry.host);
});
