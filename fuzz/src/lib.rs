//! What the fuzz targets share: the checks every parser's result must pass (a refusal names a problem
//! and how to fix it; an accepted configuration lets no two flows own the same host and path), and a
//! request head read the way the proxy's listener reads one.

use std::collections::HashSet;
use std::path::Path;

use leannodes_config::{Config, Diagnostics};

/// The configuration the request-facing targets route against: exact and wildcard hosts, nested paths.
pub const ROUTES: &str = r#"
[[flow]]
name = "shop"
hosts = ["shop.test", "*.shop.test"]
upstream = "127.0.0.1:9"

[[flow]]
name = "api"
hosts = ["shop.test", "api.test"]
paths = ["/api", "/v1/"]
upstream = "127.0.0.1:9"
"#;

/// Parses [`ROUTES`].
pub fn routes() -> Config {
    leannodes_config::parse_toml(ROUTES, "routes.toml", Path::new(".")).unwrap_or_else(|d| panic!("ROUTES does not validate:\n{d}"))
}

/// A refusal must say what is wrong, where, and how to fix it, and print without panicking.
pub fn check_refusal(d: &Diagnostics) {
    assert!(!d.items.is_empty(), "a refusal without problems");
    for item in &d.items {
        assert!(!item.message.trim().is_empty(), "a problem without a message: {item:?}");
        assert!(!item.help.trim().is_empty(), "a problem without help: {item:?}");
        let at = d.position(item);
        assert!(at.line >= 1 && at.col >= 1);
    }
    let printed = d.to_string();
    assert!(printed.contains("error:"));
}

/// An accepted configuration: no two flows own the same host and path, and every flow's binding
/// routes to that flow.
pub fn check_accepted(config: &Config) {
    let mut owned = HashSet::new();
    let mut index = leannodes_config::binding::BindingIndex::new();
    for flow in &config.flows {
        for binding in &flow.bindings {
            assert!(owned.insert((binding.host.clone(), binding.path.clone())), "two flows own {}{}", binding.host, binding.path);
            assert!(binding.path.starts_with('/'), "binding path {:?} of {}", binding.path, flow.name);
            index.insert(binding, flow.name.clone());
        }
    }
    for flow in &config.flows {
        for binding in &flow.bindings {
            let host = match &binding.host {
                leannodes_config::HostPattern::Exact(h) => h.clone(),
                leannodes_config::HostPattern::Wildcard(s) => format!("x.{s}"),
            };
            let found = index.find(&host, &binding.path);
            assert!(found.is_some(), "{}'s binding {}{} routes nowhere", flow.name, binding.host, binding.path);
        }
    }
}

/// A request head as the proxy's HTTP/1 listener reads it (httparse, as Pingora does): method, target
/// and headers; `None` when the head is incomplete or malformed (the listener answers `400`).
pub fn parse_head(bytes: &[u8]) -> Option<pingora::http::RequestHeader> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    if !matches!(req.parse(bytes), Ok(httparse::Status::Complete(_))) {
        return None;
    }
    let mut head = pingora::http::RequestHeader::build(req.method?, req.path?.as_bytes(), Some(req.headers.len())).ok()?;
    for h in req.headers.iter() {
        head.append_header(h.name.to_string(), h.value).ok()?;
    }
    Some(head)
}
