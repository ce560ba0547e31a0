//! Bad input gets the documented 4xx answer with the one error shape, and changes nothing.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::json;

use super::Harness;

fn assert_shape(body: &serde_json::Value) {
    assert!(body["error"].is_string() && body["message"].is_string() && body["details"].is_object(), "error shape: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_get_400_415_or_413_with_the_field_path() {
    let h = Harness::new("").await;
    let raw = |body: &str, content_type: Option<&str>| {
        let mut r = Request::post("/api/v1/users").header("authorization", format!("Bearer {}", h.admin));
        if let Some(ct) = content_type {
            r = r.header("content-type", ct);
        }
        r.body(Body::from(body.to_string())).expect("request")
    };
    let malformed = h.send(raw("{\"email\": ", Some("application/json"))).await;
    assert_eq!((malformed.status, malformed.code()), (StatusCode::BAD_REQUEST, "invalid_json"));
    assert_shape(&malformed.body);
    let unknown = h.post("/api/v1/users", &h.admin, json!({ "email": "x@example.com", "admin": true })).await;
    assert_eq!((unknown.status, unknown.code()), (StatusCode::BAD_REQUEST, "invalid_body"));
    assert!(unknown.body["message"].as_str().is_some_and(|m| m.contains("unknown field `admin`")), "{}", unknown.body);
    let wrong_type = h.post("/api/v1/users", &h.admin, json!({ "email": "x@example.com", "roles": "admin" })).await;
    assert_eq!((wrong_type.status, wrong_type.body["details"]["fields"][0]["path"].as_str()), (StatusCode::BAD_REQUEST, Some("roles")));
    let whole = h.post("/api/v1/users", &h.admin, json!(42)).await;
    assert_eq!((whole.status, whole.code()), (StatusCode::BAD_REQUEST, "invalid_body"));
    let message = whole.body["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("the body as a whole: invalid type: integer `42`") && message.contains("openapi.json"), "{message}");
    let nested = h.post("/api/v1/tokens", &h.admin, json!({ "name": "x", "scopes": ["flows.read", "flows.destroy"] })).await;
    assert_eq!((nested.status, nested.body["details"]["fields"][0]["path"].as_str()), (StatusCode::BAD_REQUEST, Some("scopes[1]")));
    let text = h.send(raw("{}", Some("text/plain"))).await;
    assert_eq!((text.status, text.code()), (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"));
    let none = h.send(raw("{}", None)).await;
    assert_eq!(none.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let huge = format!("{{\"email\": \"{}\"}}", "a".repeat(2 * 1024 * 1024));
    let big = h.send(raw(&huge, Some("application/json"))).await;
    assert_eq!((big.status, big.code()), (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"));
    let bad_role = h.post("/api/v1/users", &h.admin, json!({ "email": "half@example.com", "roles": ["viewer", "wizard"] })).await;
    assert_eq!((bad_role.status, bad_role.body["details"]["fields"][0]["path"].as_str()), (StatusCode::BAD_REQUEST, Some("roles/1")));
    let login = h.store.records::<leannodes_store::Login>().get("email/half@example.com").await.expect("read");
    assert_eq!(login, None, "a refused request leaves nothing behind");
    let users = h.get("/api/v1/users", &h.admin).await;
    assert!(!users.body.to_string().contains("half@example.com"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_queries_cursors_versions_paths_and_methods_get_4xx() {
    let h = Harness::new("").await;
    let cursor = h.get("/api/v1/audit?cursor=not-a-number", &h.admin).await;
    assert_eq!((cursor.status, cursor.code()), (StatusCode::BAD_REQUEST, "invalid_field"));
    let limit = h.get("/api/v1/audit?limit=0", &h.admin).await;
    assert_eq!(limit.status, StatusCode::BAD_REQUEST);
    let limit = h.get("/api/v1/flows/shop/executions?limit=abc", &h.admin).await;
    assert_eq!((limit.status, limit.code()), (StatusCode::BAD_REQUEST, "invalid_query"));
    let unknown_param = h.get("/api/v1/flows?color=red", &h.admin).await;
    assert_eq!((unknown_param.status, unknown_param.code()), (StatusCode::BAD_REQUEST, "invalid_query"));
    let state = h.get("/api/v1/flows?state=sleepy", &h.admin).await;
    assert_eq!(state.status, StatusCode::BAD_REQUEST);
    let nowhere = h.get("/api/v1/nowhere", &h.admin).await;
    assert_eq!((nowhere.status, nowhere.code()), (StatusCode::NOT_FOUND, "not_found"));
    assert_shape(&nowhere.body);
    let method = h.call(Method::DELETE, "/api/v1/flows", Some(&h.admin), None).await;
    assert_eq!((method.status, method.code()), (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"));

    let id = h.user_id(super::ADMIN).await;
    let with_if_match = |value: &str| {
        Request::patch(format!("/api/v1/users/{id}"))
            .header("authorization", format!("Bearer {}", h.admin))
            .header("content-type", "application/json")
            .header("if-match", value)
            .body(Body::from(json!({ "name": "Renamed" }).to_string()))
            .expect("request")
    };
    let garbled = h.send(with_if_match("yesterday")).await;
    assert_eq!((garbled.status, garbled.code()), (StatusCode::BAD_REQUEST, "invalid_if_match"));
    let stale = h.send(with_if_match("\"999\"")).await;
    assert_eq!((stale.status, stale.code()), (StatusCode::CONFLICT, "version_conflict"));
    assert!(stale.body["details"]["current_version"].is_u64());
    let current = stale.body["details"]["current_version"].as_u64().expect("version");
    let fresh = h.send(with_if_match(&format!("\"{current}\""))).await;
    assert_eq!(fresh.status, StatusCode::OK, "{}", fresh.body);
    assert_eq!(fresh.headers["etag"], format!("\"{}\"", current + 1).as_str());
    assert_eq!(h.send(with_if_match(&format!("\"{current}\""))).await.code(), "version_conflict", "the old version is stale now");
}
