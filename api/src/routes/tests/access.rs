//! Per-flow grants.

use axum::http::{Method, StatusCode};
use serde_json::json;

use super::Harness;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_are_versioned_checked_and_never_exceed_the_granter() {
    let h = Harness::new("").await;
    let empty = h.get("/api/v1/flows/shop/access", &h.admin).await;
    assert_eq!((empty.body["grants"].clone(), empty.body["version"].as_u64()), (json!([]), Some(0)));
    let owner = h.user("owner@example.com", &[]).await;
    let owner_id = h.user_id("owner@example.com").await;
    let friend = h.user("friend@example.com", &[]).await;
    let friend_id = h.user_id("friend@example.com").await;
    let put = |token: String, body: serde_json::Value, if_match: Option<&str>| {
        let h = &h;
        let if_match = if_match.map(str::to_string);
        async move {
            let mut r = axum::http::Request::put("/api/v1/flows/shop/access")
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/json");
            if let Some(v) = if_match {
                r = r.header("if-match", v);
            }
            h.send(r.body(axum::body::Body::from(body.to_string())).expect("request")).await
        }
    };
    // A role that administers grants on the flow, and operates it, but cannot edit.
    h.post("/api/v1/roles", &h.admin, json!({ "name": "flow-owner", "permissions": ["flows.read", "flows.operate", "flows.admin"] })).await;
    let made = put(h.admin.clone(), json!([{ "subject": format!("user:{owner_id}"), "role": "flow-owner" }]), Some("\"0\"")).await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.body);
    let stale = put(h.admin.clone(), json!([]), Some("\"0\"")).await;
    assert_eq!(stale.code(), "version_conflict");
    let escalate = put(owner.clone(), json!([{ "subject": format!("user:{friend_id}"), "role": "editor" }]), None).await;
    assert_eq!(escalate.status, StatusCode::FORBIDDEN, "the owner cannot give flows.edit, which it lacks");
    let share = put(
        owner.clone(),
        json!([{ "subject": format!("user:{owner_id}"), "role": "flow-owner" }, { "subject": format!("user:{friend_id}"), "role": "viewer" }]),
        None,
    )
    .await;
    assert_eq!(share.status, StatusCode::OK, "{}", share.body);
    assert_eq!(h.get("/api/v1/flows/shop", &friend).await.status, StatusCode::OK);
    assert_eq!(h.get("/api/v1/flows/api", &friend).await.code(), "unknown_flow", "only that flow");
    assert_eq!(h.get("/api/v1/flows/api/access", &owner).await.code(), "unknown_flow", "flows.admin on shop only");
    let bad = put(h.admin.clone(), json!([{ "subject": "team:x", "role": "viewer" }]), None).await;
    assert_eq!(bad.body["details"]["fields"][0]["path"], "0/subject");
    let ghost = put(h.admin.clone(), json!([{ "subject": "group:ghosts", "role": "viewer" }]), None).await;
    assert_eq!(ghost.status, StatusCode::BAD_REQUEST);
    let unknown_role = put(h.admin.clone(), json!([{ "subject": format!("user:{friend_id}"), "role": "wizard" }]), None).await;
    assert_eq!(unknown_role.body["details"]["fields"][0]["path"], "0/role/0");
    let not_an_array = h.call(Method::PUT, "/api/v1/flows/shop/access", Some(&h.admin), Some(json!({ "grants": [] }))).await;
    assert_eq!(not_an_array.status, StatusCode::BAD_REQUEST);
    assert_eq!(h.get("/api/v1/flows/nope/access", &h.admin).await.code(), "unknown_flow");
    let audited = h.audit().await.into_iter().filter(|r| r.entry.action == "flow.access").count();
    assert_eq!(audited, 2);
}
