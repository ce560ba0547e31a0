//! The admin API and start-up errors of `leannodes serve`.

use std::time::Duration;

use leannodes_harness::{DemoNode, Serve, free_port, http_get, workdir};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_leannodes");

fn one_flow(dir: &std::path::Path) -> String {
    format!("\n[[flow]]\nname = \"shop\"\nhosts = [\"127.0.0.1\"]\nupstream = \"web\"\n{}", DemoNode::new("web").toml(BIN, dir))
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(30)).build().expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_change_flows_and_errors_have_a_stable_shape() {
    let dir = workdir();
    let serve = Serve::start(BIN, dir.path(), "", &one_flow(dir.path()));
    assert_eq!(http_get(serve.admin, "/healthz").map(|r| r.0), Some(200));
    assert_eq!(http_get(serve.admin, "/readyz").map(|r| r.0), Some(200));
    let c = client();
    let token = serve.token();
    let post = |action: &str| c.post(serve.admin_url(&format!("/api/v1/flows/shop/{action}"))).bearer_auth(&token).send();

    let pinned: Value = post("pin").await.expect("pin").json().await.expect("json");
    assert_eq!(pinned["pinned"], true);
    let unpinned: Value = post("unpin").await.expect("unpin").json().await.expect("json");
    assert_eq!(unpinned["pinned"], false);
    let disabled: Value = post("disable").await.expect("disable").json().await.expect("json");
    assert_eq!(disabled["disabled"], true);
    let refused = post("warm").await.expect("warm");
    assert_eq!(refused.status(), 409);
    assert_eq!(refused.json::<Value>().await.expect("json")["error"], "flow_disabled");
    post("enable").await.expect("enable");

    // Warm returns at once; the events stream tells the story.
    let mut events = c.get(serve.admin_url("/api/v1/events")).bearer_auth(&token).send().await.expect("events");
    assert_eq!(events.headers()["content-type"], "text/event-stream");
    assert_eq!(post("warm").await.expect("warm").status(), 200);
    let mut seen = String::new();
    while !seen.contains("event: execution_finished") {
        let chunk =
            tokio::time::timeout(Duration::from_secs(20), events.chunk()).await.expect("event in time").expect("chunk").expect("open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("event: execution_started") && seen.contains("event: node_ready"), "{seen}");

    let flows: Value = c.get(serve.admin_url("/api/v1/flows")).bearer_auth(&token).send().await.expect("flows").json().await.expect("json");
    let shop = &flows["flows"][0];
    assert_eq!(shop["state"], "awake");
    assert_eq!(shop["nodes"][0]["running"], true);
    assert!(shop["held"].is_number() && shop["last_activity_ms"].is_number());

    let history: Value = c
        .get(serve.admin_url("/api/v1/flows/shop/executions"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("history")
        .json()
        .await
        .expect("json");
    let steps = &history["items"][0]["steps"];
    assert_eq!(steps[0]["node"], "web");
    assert!(steps[0]["ready_ms"].as_i64() >= steps[0]["started_ms"].as_i64());

    let unknown = c.post(serve.admin_url("/api/v1/flows/nope/warm")).bearer_auth(&token).send().await.expect("unknown");
    assert_eq!(unknown.status(), 404);
    let body: Value = unknown.json().await.expect("json");
    assert_eq!(body["error"], "unknown_flow");
    assert!(body["message"].as_str().is_some());
    let bad = c.post(serve.admin_url("/api/v1/flows/shop/explode")).bearer_auth(&token).send().await.expect("bad action");
    assert_eq!(bad.status(), 404);
    assert_eq!(bad.json::<Value>().await.expect("json")["error"], "not_found");

    let metrics = c.get(serve.admin_url("/metrics")).bearer_auth(&token).send().await.expect("metrics").text().await.expect("text");
    for family in [
        "leannodes_requests_total",
        "leannodes_held_requests",
        "leannodes_hold_duration_seconds_bucket",
        "leannodes_wake_duration_seconds_bucket{flow=\"shop\",node=\"web\"",
        "leannodes_flow_state{flow=\"shop\"} 2",
    ] {
        assert!(metrics.contains(family), "{family} missing:\n{metrics}");
    }
}

#[test]
fn a_busy_listener_is_a_clear_fatal_error() {
    let dir = workdir();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = [\"127.0.0.1:{port}\"]\nadmin_listen = \"127.0.0.1:{}\"\nstore = \"sqlite://s.db\"\n{}",
            free_port(),
            one_flow(dir.path())
        ),
    )
    .expect("write");
    let out = std::process::Command::new(BIN).args(["serve", "--config"]).arg(&config).output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("cannot listen on 127.0.0.1:{port}")), "{stderr}");
}

#[test]
fn an_invalid_config_starts_nothing() {
    let dir = workdir();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, "[[flow]]\nname = \"x\"\nhosts = [\"x.test\"]\nupstream = \"nowhere\"\n").expect("write");
    let out = std::process::Command::new(BIN).args(["serve", "--config"]).arg(&config).output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("c.toml:4:12: error: upstream \"nowhere\""), "{stderr}");
    assert!(stderr.contains("nothing started"), "{stderr}");
}
