//! Flows, their operations and history, routing lookup, workloads, gateways, settings, audit.

use axum::http::{Method, StatusCode};
use serde_json::json;

use super::Harness;

fn names(body: &serde_json::Value) -> Vec<String> {
    body["flows"].as_array().map(|f| f.iter().filter_map(|f| f["name"].as_str().map(str::to_string)).collect()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inventory_shows_only_readable_flows_and_what_the_caller_may_do() {
    let h = Harness::new("").await;
    assert_eq!(names(&h.get("/api/v1/flows", &h.admin).await.body), vec!["api", "shop"]);
    let carol = h.user("carol@example.com", &[]).await;
    assert!(names(&h.get("/api/v1/flows", &carol).await.body).is_empty(), "no role, no flows");
    let id = h.user_id("carol@example.com").await;
    let grant = h
        .call(
            Method::PUT,
            "/api/v1/flows/api/access",
            Some(&h.admin),
            Some(json!([{ "subject": format!("user:{id}"), "role": "operator" }])),
        )
        .await;
    assert_eq!(grant.status, StatusCode::OK, "{}", grant.body);
    let listed = h.get("/api/v1/flows", &carol).await;
    assert_eq!(names(&listed.body), vec!["api"]);
    assert_eq!(listed.body["flows"][0]["permissions"], json!(["flows.read", "flows.operate"]));
    assert_eq!(h.get("/api/v1/flows/shop", &carol).await.code(), "unknown_flow", "another flow stays hidden");
    assert_eq!(h.post("/api/v1/flows/api/pin", &carol, json!({})).await.status, StatusCode::OK);
    assert_eq!(h.post("/api/v1/flows/api/pin", &carol, json!({})).await.body["pinned"], true);
    let detail = h.get("/api/v1/flows/api", &carol).await;
    assert_eq!(detail.status, StatusCode::OK);
    assert_eq!(detail.body["upstream"], "backend");
    assert_eq!(detail.body["bindings"], json!([{ "host": "api.test", "path": "/v1" }, { "host": "*.api.test", "path": "/v1" }]));
    assert_eq!(detail.body["source"], "file");
    assert_eq!(detail.body["definition"][0]["probe"], "tcp 127.0.0.1:9");

    let filtered = h.get("/api/v1/flows?q=SHOP", &h.admin).await;
    assert_eq!(names(&filtered.body), vec!["shop"]);
    let by_host = h.get("/api/v1/flows?q=api.test", &h.admin).await;
    assert_eq!(names(&by_host.body), vec!["api"]);
    assert_eq!(names(&h.get("/api/v1/flows?state=awake", &h.admin).await.body), Vec::<String>::new());
    assert_eq!(names(&h.get("/api/v1/flows?source=resource", &h.admin).await.body), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_are_audited_with_before_and_after() {
    let h = Harness::new("").await;
    assert_eq!(h.post("/api/v1/flows/shop/disable", &h.admin, json!({})).await.body["disabled"], true);
    let warm = h.post("/api/v1/flows/shop/warm", &h.admin, json!({})).await;
    assert_eq!((warm.status, warm.code()), (StatusCode::CONFLICT, "flow_disabled"));
    let record = h.audit().await.into_iter().find(|r| r.entry.action == "flow.disable").expect("audited");
    assert_eq!(record.entry.target, "flow/shop");
    assert!(record.entry.actor.starts_with("token:"), "{}", record.entry.actor);
    let detail: serde_json::Value = serde_json::from_str(&record.entry.detail).expect("json");
    assert_eq!((detail["before"]["disabled"].as_bool(), detail["after"]["disabled"].as_bool()), (Some(false), Some(true)));
    let unknown = h.post("/api/v1/flows/nope/warm", &h.admin, json!({})).await;
    assert_eq!((unknown.status, unknown.code()), (StatusCode::NOT_FOUND, "unknown_flow"));
    assert_eq!(h.get("/api/v1/flows/nope/executions", &h.admin).await.code(), "unknown_flow");
    assert_eq!(h.get("/api/v1/executions/nope", &h.admin).await.code(), "unknown_execution");

    let page = h.get("/api/v1/audit?action=flow.disable", &h.admin).await;
    assert_eq!(page.body["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(page.body["items"][0]["detail"]["after"]["disabled"], true);
    let verify = h.get("/api/v1/audit/verify", &h.admin).await;
    assert_eq!((verify.body["ok"].as_bool(), verify.body["first_broken"].is_null()), (Some(true), true), "{}", verify.body);
    assert!(verify.body["checked"].as_u64() >= Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_names_the_owner_and_why_or_what_came_closest() {
    let h = Harness::new("").await;
    let exact = h.get("/api/v1/routing?url=https://SHOP.test:8443/cart?x=1", &h.admin).await;
    assert_eq!(exact.body["matched"]["flow"], "shop", "{}", exact.body);
    assert!(exact.body["matched"]["reason"].as_str().is_some_and(|r| r.contains("exactly `shop.test`")));
    let wild = h.get("/api/v1/routing?url=eu.api.test/v1/users", &h.admin).await;
    assert_eq!((wild.body["matched"]["flow"].as_str(), wild.body["matched"]["host"].as_str()), (Some("api"), Some("*.api.test")));
    let near = h.get("/api/v1/routing?url=api.test/v2", &h.admin).await;
    assert!(near.body["matched"].is_null());
    assert_eq!(near.body["closest"][0]["path"], "/v1");
    let bad = h.get("/api/v1/routing?url=https:///", &h.admin).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let viewer_less = h.user("eve@example.com", &[]).await;
    let hidden = h.get("/api/v1/routing?url=shop.test/", &viewer_less).await;
    assert_eq!(hidden.body["matched"]["flow"], serde_json::Value::Null, "the owner is not named to someone who may not read it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workloads_list_what_the_flows_use() {
    let h = Harness::new("").await;
    let w = h.get("/api/v1/workloads", &h.admin).await;
    assert_eq!(w.status, StatusCode::OK);
    let ids: Vec<&str> = w.body["workloads"].as_array().expect("list").iter().filter_map(|w| w["id"].as_str()).collect();
    assert_eq!(ids, vec!["external/api/backend", "external/shop/web"]);
    assert_eq!(w.body["workloads"][1]["used_by"], json!(["shop/web"]));
    assert_eq!(w.body["cluster_error"], serde_json::Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_never_shown() {
    std::fs::create_dir_all("/tmp").ok();
    let secret = "s3cr3t-client-secret-value";
    let h = Harness::new(&format!(
        "check_token = \"{secret}-check-token\"\n[server.auth]\nexternal_url = \"https://ln.example.com\"\n[[server.auth.oidc]]\nname = \"corp\"\nissuer = \"https://idp.example.com\"\nclient_id = \"ln\"\nclient_secret = \"{secret}\"\nrole_map = {{ admins = \"admin\" }}\n[server.smtp]\nhost = \"mail.example.com\"\nusername = \"ln\"\npassword = \"{secret}-smtp\"\nfrom = \"LeanNodes <ln@example.com>\""
    ))
    .await;
    let settings = h.get("/api/v1/settings", &h.admin).await;
    assert_eq!(settings.status, StatusCode::OK, "{}", settings.body);
    let text = settings.body.to_string();
    assert!(!text.contains(secret), "{text}");
    assert_eq!(settings.body["oidc"][0]["client_secret_set"], true);
    assert_eq!(settings.body["oidc"][0]["redirect_url"], "https://ln.example.com/api/v1/auth/oidc/corp/callback");
    assert_eq!(settings.body["smtp"]["password_set"], true);
    assert_eq!(settings.body["check_token_set"], true);
    let artifact = h.get("/api/v1/gateways/nginx/artifacts", &h.admin).await;
    assert_eq!(artifact.status, StatusCode::OK, "{}", artifact.body);
    let text = artifact.body.to_string();
    assert!(!text.contains(secret) && text.contains("${LEANNODES_CHECK_TOKEN}"), "{text}");
    let status = h.get("/api/v1/status", &h.admin).await;
    assert!(!status.body.to_string().contains(secret));
    let providers = h.call(Method::GET, "/api/v1/auth/providers", None, None).await;
    assert_eq!(providers.body["sso"][0]["start_url"], "/api/v1/auth/oidc/corp/start");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_carries_only_readable_flows() {
    use futures::StreamExt as _;
    use tower::ServiceExt as _;
    let h = Harness::new("").await;
    let carol = h.user("carol@example.com", &[]).await;
    let id = h.user_id("carol@example.com").await;
    let grant = h
        .call(Method::PUT, "/api/v1/flows/api/access", Some(&h.admin), Some(json!([{ "subject": format!("user:{id}"), "role": "viewer" }])))
        .await;
    assert_eq!(grant.status, StatusCode::OK);
    let request = axum::http::Request::get("/api/v1/events")
        .header("authorization", format!("Bearer {carol}"))
        .body(axum::body::Body::empty())
        .expect("request");
    let response = h.router.clone().oneshot(request).await.expect("events");
    assert_eq!(response.status(), StatusCode::OK);
    let mut stream = response.into_body().into_data_stream();
    // Both flows start waking; carol hears of `api` only.
    assert_eq!(h.post("/api/v1/flows/shop/warm", &h.admin, json!({})).await.status, StatusCode::OK);
    assert_eq!(h.post("/api/v1/flows/api/warm", &h.admin, json!({})).await.status, StatusCode::OK);
    let mut seen = String::new();
    while !seen.contains("\"flow\":\"api\"") {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), stream.next())
            .await
            .expect("an event in time")
            .expect("open")
            .expect("chunk");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("event: execution_started"), "{seen}");
    assert!(!seen.contains("\"flow\":\"shop\""), "shop's events are not carol's to see: {seen}");
}
