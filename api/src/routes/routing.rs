//! Routing lookup: which flow owns a URL and why — or, when none does, which bindings came closest.
//! It asks the same [`BindingIndex`] the proxy routes with.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use leannodes_config::HostPattern;
use leannodes_config::binding::{BindingIndex, normalize_host};
use leannodes_control::Controller;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

use super::Registrar;
use crate::authz::{Permission, Rule};
use crate::error::ApiError;
use crate::extract::{Authed, Query};

pub(super) fn routes(r: Registrar) -> Registrar {
    r.add(Rule::Authenticated, routes!(lookup))
}

/// `?url=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoutingQuery {
    /// A URL (`https://shop.example.com/cart`) or `host/path`.
    #[param(min_length = 1)]
    url: String,
}

/// A binding that matched or came close.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BindingMatch {
    /// The flow (`null` when the caller may not read it).
    flow: Option<String>,
    /// The host pattern.
    host: String,
    /// The path prefix.
    path: String,
    /// Why it matched, or why not.
    reason: String,
}

/// Who owns a URL.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Routing {
    /// The host looked up (lower case, without port).
    host: String,
    /// The path looked up.
    path: String,
    /// The binding that owns it.
    matched: Option<BindingMatch>,
    /// When nothing matched: bindings of the same host whose path prefixes did not match.
    closest: Vec<BindingMatch>,
    /// What happens to the request.
    outcome: String,
}

/// Splits a URL (or `host/path`) into host and path.
fn split(url: &str) -> Option<(String, String)> {
    let rest = url.trim().split_once("://").map_or(url.trim(), |(_, rest)| rest);
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = rest.find('/').map_or((rest, "/"), |i| rest.split_at(i));
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = normalize_host(host).into_owned();
    (!host.is_empty() && !host.contains(char::is_whitespace)).then(|| (host, path.to_string()))
}

fn pattern(p: &HostPattern) -> String {
    p.to_string()
}

/// Which flow owns this URL and why.
#[utoipa::path(get, path = "/api/v1/routing", tag = "flows", params(RoutingQuery), responses((status = 200, body = Routing)))]
async fn lookup(
    Authed(principal, _): Authed,
    State(controller): State<Arc<Controller>>,
    Query(q): Query<RoutingQuery>,
) -> Result<Json<Routing>, ApiError> {
    let (host, path) = split(&q.url).ok_or_else(|| ApiError::invalid_field("url", "give a URL such as https://shop.example.com/cart"))?;
    let mut index = BindingIndex::new();
    for name in controller.flow_names() {
        if let Some(flow) = controller.flow(&name) {
            for binding in &flow.spec.bindings {
                index.insert(binding, name.clone());
            }
        }
    }
    let visible = |flow: &str| principal.can_on(Permission::FlowsRead, flow).then(|| flow.to_string());
    if let Some(m) = index.lookup(&host, &path) {
        let reason = match &m.host {
            HostPattern::Exact(h) => format!("the host is exactly `{h}` and `{}` is the longest path prefix of it that matches", m.path),
            HostPattern::Wildcard(s) => format!(
                "no exact host binding matches; `*.{s}` is the longest wildcard that covers the host, and `{}` the longest path prefix that matches",
                m.path
            ),
        };
        let flow = visible(m.value);
        let outcome = match &flow {
            Some(f) => format!("proxied by flow `{f}` (held while it wakes)"),
            None => "proxied by a flow you may not read".to_string(),
        };
        let matched = BindingMatch { flow, host: pattern(&m.host), path: m.path.to_string(), reason };
        return Ok(Json(Routing { host, path, matched: Some(matched), closest: vec![], outcome }));
    }
    let closest = index
        .same_host(&host)
        .into_iter()
        .map(|(h, prefix, flow)| BindingMatch {
            flow: visible(flow),
            host: pattern(&h),
            path: prefix.to_string(),
            reason: format!("the host matches, but the path `{path}` is not under `{prefix}`"),
        })
        .collect();
    Ok(Json(Routing {
        host,
        path,
        matched: None,
        closest,
        outcome: "no flow serves it: passed to default_upstream when one is set, else answered 404 no_flow".into(),
    }))
}

#[cfg(test)]
mod tests;
