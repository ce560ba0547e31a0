//! Every route × every built-in role, a user without a role, and an unauthenticated caller: each gets
//! exactly what the route's rule says. A route added without a rule cannot exist (routes are added with
//! one), and every route must be in the OpenAPI document and in `docs/routes.md`.

use axum::http::{Method, StatusCode};
use serde_json::json;

use super::Harness;
use crate::authz::{Permission, PermissionSet, Rule, built_in_roles};

/// A concrete path for a route template.
fn concrete(path: &str) -> String {
    path.replace("{name}", "shop")
        .replace("{id}", "missing")
        .replace("{token}", "missing")
        .replace("{group}", "missing")
        .replace("{role}", "missing")
        .replace("{kind}", "nginx")
        .replace("{number}", "1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_times_every_role_gets_what_its_rule_says() {
    let h = Harness::new("").await;
    let mut callers: Vec<(String, Option<String>, PermissionSet)> = vec![("unauthenticated".into(), None, PermissionSet::EMPTY)];
    callers.push(("no role".into(), Some(h.user("nobody@example.com", &[]).await), PermissionSet::EMPTY));
    for (role, _, perms) in built_in_roles() {
        callers.push((role.to_string(), Some(h.user(&format!("{role}-role@example.com"), &[role]).await), perms));
    }
    let rules = crate::route_rules();
    assert!(rules.len() > 40, "the whole table: {}", rules.len());
    let mut checked = 0;
    for route in &rules {
        let path = concrete(&route.path);
        let method = Method::from_bytes(route.method.as_bytes()).expect("method");
        let body = matches!(route.method, "POST" | "PUT" | "PATCH").then(|| json!({}));
        for (who, token, perms) in &callers {
            let answer = if route.path.ends_with("/events") {
                // A stream: only the status matters.
                h.status_only(method.clone(), &path, token.as_deref()).await
            } else {
                let a = h.call(method.clone(), &path, token.as_deref(), body.clone()).await;
                (a.status, a.code().to_string())
            };
            let (status, code) = (answer.0, answer.1.as_str());
            let what = format!("{} {} as {who}: {status} {code}", route.method, route.path);
            let allowed = |p: Permission| perms.contains(p);
            match (route.rule, token) {
                (Rule::Public, _) => assert!(status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN, "{what}"),
                (_, None) => assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}"),
                (Rule::Authenticated, Some(_)) => assert!(status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN, "{what}"),
                (Rule::Global(p), Some(_)) if allowed(p) => {
                    assert!(status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN, "{what}")
                }
                (Rule::Global(_), Some(_)) => assert_eq!(status, StatusCode::FORBIDDEN, "{what}"),
                (Rule::Flow(p), Some(_)) if allowed(p) => {
                    assert!(status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN && code != "unknown_flow", "{what}")
                }
                (Rule::Flow(_), Some(_)) if allowed(Permission::FlowsRead) => assert_eq!(status, StatusCode::FORBIDDEN, "{what}"),
                (Rule::Flow(_), Some(_)) => {
                    assert_eq!((status, code), (StatusCode::NOT_FOUND, "unknown_flow"), "{what}: hidden, not refused")
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, rules.len() * callers.len());
}

#[test]
fn every_route_is_documented_with_its_rule() {
    let doc = crate::openapi();
    let mut documented = Vec::new();
    for (path, item) in &doc.paths.paths {
        for (method, op) in [("GET", &item.get), ("POST", &item.post), ("PUT", &item.put), ("PATCH", &item.patch), ("DELETE", &item.delete)]
        {
            if let Some(op) = op {
                documented.push((method.to_string(), path.clone()));
                assert!(op.description.as_deref().is_some_and(|d| d.contains("Requires: ")), "{method} {path} states its rule");
            }
        }
    }
    let mut ruled: Vec<(String, String)> = crate::route_rules().into_iter().map(|r| (r.method.to_string(), r.path)).collect();
    documented.sort();
    ruled.sort();
    assert_eq!(documented, ruled, "the rule table and the OpenAPI document list the same routes");
}

#[test]
fn docs_routes_md_is_up_to_date() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/routes.md");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == crate::routes_markdown(),
        "docs/routes.md is stale: regenerate it with `leannodes openapi --routes > docs/routes.md`"
    );
}

#[test]
fn docs_openapi_json_is_up_to_date() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(committed == crate::openapi_json(), "docs/openapi.json is stale: regenerate it with `leannodes openapi > docs/openapi.json`");
    let doc: serde_json::Value = serde_json::from_str(&committed).expect("json");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")), "OpenAPI 3.1");
}
