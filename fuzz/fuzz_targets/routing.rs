//! Route matching against the rules written the slow and obvious way: an exact host beats a wildcard,
//! the longest wildcard suffix wins, then the longest path prefix on a segment boundary; a request's
//! host matches in any case, with or without a port or a trailing dot.
#![no_main]

use arbitrary::Arbitrary;
use leannodes_config::binding::BindingIndex;
use leannodes_config::{Binding, HostPattern};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    bindings: Vec<(bool, Vec<u8>, Vec<u8>)>,
    host: Vec<u8>,
    path: Vec<u8>,
    port: Option<u16>,
    upper: u64,
    trailing_dot: bool,
}

/// Host labels from a small alphabet (so hosts collide), joined with dots.
fn host(bytes: &[u8]) -> String {
    const LABELS: &[&str] = &["a", "b", "shop", "x-1", "test"];
    let labels: Vec<&str> = bytes.iter().take(5).map(|b| LABELS[usize::from(*b) % LABELS.len()]).collect();
    if labels.is_empty() { "test".into() } else { labels.join(".") }
}

/// A path from a small alphabet of segments.
fn path(bytes: &[u8]) -> String {
    const PARTS: &[&str] = &["/", "a", "b", "api", "v1", "/", "x"];
    let mut p = String::from("/");
    p.extend(bytes.iter().take(8).map(|b| PARTS[usize::from(*b) % PARTS.len()]));
    p
}

fn segment_prefix(prefix: &str, path: &str) -> bool {
    path == prefix || (path.starts_with(prefix) && (prefix.ends_with('/') || path[prefix.len()..].starts_with('/')))
}

/// The rules, the slow way.
fn reference(bindings: &[(HostPattern, String, usize)], host: &str, path: &str) -> Option<usize> {
    let best = |host_pattern: &HostPattern| {
        bindings.iter().filter(|(h, p, _)| h == host_pattern && segment_prefix(p, path)).max_by_key(|(_, p, _)| p.len()).map(|(_, _, v)| *v)
    };
    if let Some(v) = best(&HostPattern::Exact(host.to_string())) {
        return Some(v);
    }
    let mut suffixes: Vec<&str> = host.match_indices('.').map(|(i, _)| &host[i + 1..]).collect();
    suffixes.sort_by_key(|s| std::cmp::Reverse(s.len()));
    suffixes.into_iter().find_map(|suffix| best(&HostPattern::Wildcard(suffix.to_string())))
}

fuzz_target!(|input: Input| {
    let mut seen = std::collections::HashSet::new();
    let mut bindings = Vec::new();
    for (i, (wildcard, h, p)) in input.bindings.iter().enumerate().take(24) {
        let pattern = if *wildcard { HostPattern::Wildcard(host(h)) } else { HostPattern::Exact(host(h)) };
        let p = path(p);
        // Validation refuses two bindings of the same host and path.
        if seen.insert((pattern.clone(), p.clone())) {
            bindings.push((pattern, p, i));
        }
    }
    let mut index = BindingIndex::new();
    for (pattern, p, v) in &bindings {
        index.insert(&Binding { host: pattern.clone(), path: p.clone() }, *v);
    }
    let canonical = host(&input.host);
    let request_path = path(&input.path);
    // What a client may send for that host: any case, a port, a trailing dot.
    let mut sent: String =
        canonical.chars().enumerate().map(|(i, c)| if input.upper >> (i % 64) & 1 == 1 { c.to_ascii_uppercase() } else { c }).collect();
    if input.trailing_dot {
        sent.push('.');
    }
    if let Some(port) = input.port {
        sent.push_str(&format!(":{port}"));
    }
    assert_eq!(
        index.find(&sent, &request_path).copied(),
        reference(&bindings, &canonical, &request_path),
        "host {sent:?} path {request_path:?} bindings {bindings:?}"
    );
});
