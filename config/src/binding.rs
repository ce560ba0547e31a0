//! Which flow a request belongs to: host and path against the flows' bindings. Hosts match without case
//! and port; an exact host beats any wildcard (`*.example.com` matches hosts ending in `.example.com`,
//! the longest matching suffix wins); within a host the longest path prefix wins, on segment
//! boundaries (`/api` matches `/api` and `/api/x`, not `/apix`). The proxy's route table and the
//! management API's routing lookup both use [`BindingIndex`], so they cannot disagree.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::model::{Binding, HostPattern};

/// Path prefixes of one host pattern, longest first.
#[derive(Debug, Clone)]
struct Paths<T>(Vec<(String, T)>);

impl<T> Default for Paths<T> {
    fn default() -> Self {
        Paths(Vec::new())
    }
}

impl<T> Paths<T> {
    fn insert(&mut self, prefix: &str, value: T) {
        self.0.push((prefix.to_string(), value));
        self.0.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
    }

    fn find(&self, path: &str) -> Option<(&str, &T)> {
        self.0.iter().find(|(prefix, _)| prefix_matches(prefix, path)).map(|(p, v)| (p.as_str(), v))
    }
}

/// Bindings to values (flows, routes), looked up by host and path.
#[derive(Debug, Clone)]
pub struct BindingIndex<T> {
    exact: HashMap<String, Paths<T>>,
    wildcard: HashMap<String, Paths<T>>,
}

impl<T> Default for BindingIndex<T> {
    fn default() -> Self {
        BindingIndex { exact: HashMap::new(), wildcard: HashMap::new() }
    }
}

/// How a lookup matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched<'a, T> {
    /// The value of the binding.
    pub value: &'a T,
    /// The binding's host pattern.
    pub host: HostPattern,
    /// The binding's path prefix.
    pub path: &'a str,
}

impl<T> BindingIndex<T> {
    /// An empty index.
    pub fn new() -> BindingIndex<T> {
        BindingIndex::default()
    }

    /// Adds a binding.
    pub fn insert(&mut self, binding: &Binding, value: T) {
        let table = match &binding.host {
            HostPattern::Exact(h) => self.exact.entry(h.clone()).or_default(),
            HostPattern::Wildcard(s) => self.wildcard.entry(s.clone()).or_default(),
        };
        table.insert(&binding.path, value);
    }

    /// The value for a request's `Host` (any case, with or without port) and path.
    pub fn find(&self, host: &str, path: &str) -> Option<&T> {
        self.lookup(host, path).map(|m| m.value)
    }

    /// The matching binding, with its host pattern and path prefix.
    pub fn lookup(&self, host: &str, path: &str) -> Option<Matched<'_, T>> {
        let host = normalize_host(host);
        if let Some((prefix, value)) = self.exact.get(host.as_ref()).and_then(|p| p.find(path)) {
            return Some(Matched { value, host: HostPattern::Exact(host.into_owned()), path: prefix });
        }
        if self.wildcard.is_empty() {
            return None;
        }
        let mut rest: &str = host.as_ref();
        while let Some((_, suffix)) = rest.split_once('.') {
            if let Some((prefix, value)) = self.wildcard.get(suffix).and_then(|p| p.find(path)) {
                return Some(Matched { value, host: HostPattern::Wildcard(suffix.to_string()), path: prefix });
            }
            rest = suffix;
        }
        None
    }

    /// Bindings whose host matches but none of whose path prefixes does (what came closest to a request
    /// that matched nothing).
    pub fn same_host(&self, host: &str) -> Vec<(HostPattern, &str, &T)> {
        let host = normalize_host(host);
        let mut out: Vec<(HostPattern, &str, &T)> = Vec::new();
        if let Some(paths) = self.exact.get(host.as_ref()) {
            out.extend(paths.0.iter().map(|(p, v)| (HostPattern::Exact(host.to_string()), p.as_str(), v)));
        }
        let mut rest: &str = host.as_ref();
        while let Some((_, suffix)) = rest.split_once('.') {
            if let Some(paths) = self.wildcard.get(suffix) {
                out.extend(paths.0.iter().map(|(p, v)| (HostPattern::Wildcard(suffix.to_string()), p.as_str(), v)));
            }
            rest = suffix;
        }
        out
    }

    /// Number of bindings.
    pub fn len(&self) -> usize {
        self.exact.values().chain(self.wildcard.values()).map(|p| p.0.len()).sum()
    }

    /// Whether there are no bindings.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Whether `prefix` covers `path` on a segment boundary.
pub fn prefix_matches(prefix: &str, path: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// Lower-cases a `Host` and strips the port and a trailing dot, allocating only when needed.
pub fn normalize_host(host: &str) -> Cow<'_, str> {
    let host = match host.rsplit_once(':') {
        // Keep IPv6 literals (`[::1]:8080` → `[::1]`).
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) && (!h.contains(':') || h.ends_with(']')) => h,
        _ => host,
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.bytes().any(|b| b.is_ascii_uppercase()) { Cow::Owned(host.to_ascii_lowercase()) } else { Cow::Borrowed(host) }
}
