//! `GET /flows/{name}/explain` and `leannodes explain FLOW` against a real `leannodes serve`: an open
//! WebSocket through the proxy is named as what keeps the flow awake, with when it drains; a pin by an
//! operator is named and stops the countdown; a closed connection stops counting; an asleep flow says so.

use std::process::Command;

use leannodes_harness::{DemoNode, Serve, WebSocket, assert_eventually, http_request, workdir};

const BIN: &str = env!("CARGO_BIN_EXE_leannodes");

fn explain(serve: &Serve) -> serde_json::Value {
    let answer =
        http_request(serve.admin, "GET", "/api/v1/flows/shop/explain", &[("authorization", &serve.bearer())], None).expect("explain");
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.json()
}

fn kinds(e: &serde_json::Value) -> Vec<String> {
    e["reasons"].as_array().into_iter().flatten().filter_map(|r| r["kind"].as_str().map(str::to_string)).collect()
}

fn post(serve: &Serve, path: &str) {
    let answer = http_request(serve.admin, "POST", path, &[("authorization", &serve.bearer())], None).expect("post");
    assert_eq!(answer.status, 200, "{path}: {}", answer.body);
}

#[test]
fn explain_names_an_open_websocket_a_pin_and_sleep() {
    let dir = workdir();
    let body = format!(
        "\n[[flow]]\nname = \"shop\"\nhosts = [\"127.0.0.1\"]\nupstream = \"web\"\nidle_after = \"10m\"\nignore = {{ paths = [\"/healthz\"] }}\n{}",
        DemoNode::new("web").toml(BIN, dir.path())
    );
    let serve = Serve::start(BIN, dir.path(), "", &body);

    let asleep = explain(&serve);
    assert_eq!((asleep["state"].as_str(), kinds(&asleep)), (Some("asleep"), vec!["asleep".to_string()]), "{asleep}");
    assert!(asleep["drains_in_ms"].is_null());

    let mut ws = WebSocket::connect(serve.proxy, "127.0.0.1", "/ws").expect("websocket");
    assert!(ws.head.starts_with("HTTP/1.1 101"), "{}", ws.head);
    ws.send("hello").expect("send");
    assert_eq!(ws.recv().expect("echo"), "hello");
    let open = explain(&serve);
    assert_eq!(open["state"], "awake", "{open}");
    assert_eq!(open["open"]["websocket"], 1, "{open}");
    assert!(kinds(&open).contains(&"open".to_string()), "{open}");
    let message = open["reasons"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["kind"] == "open"))
        .map(|r| r["message"].to_string())
        .unwrap_or_default();
    assert!(message.contains("1 WebSocket connection"), "{message}");
    let drains_in = open["drains_in_ms"].as_u64().expect("an awake, unpinned flow drains in some time");
    assert!(drains_in > 9 * 60 * 1000 && drains_in <= 10 * 60 * 1000, "{drains_in}");

    let cli = Command::new(BIN)
        .args(["explain", "shop", "--url", &format!("http://{}", serve.admin), "--token", &serve.token()])
        .output()
        .expect("leannodes explain");
    let text = String::from_utf8_lossy(&cli.stdout);
    assert_eq!(cli.status.code(), Some(0), "{text}");
    assert!(text.starts_with("shop is awake\n") && text.contains("1 WebSocket connection") && text.contains("drains in"), "{text}");

    post(&serve, "/api/v1/flows/shop/pin");
    let pinned = explain(&serve);
    assert!(kinds(&pinned).contains(&"pinned".to_string()) && pinned["drains_in_ms"].is_null(), "{pinned}");
    assert!(pinned.to_string().contains("by an operator"), "{pinned}");
    post(&serve, "/api/v1/flows/shop/unpin");

    drop(ws);
    assert_eventually!(explain(&serve)["open"]["websocket"] == 0, "the closed WebSocket stops counting");
    assert!(!kinds(&explain(&serve)).contains(&"open".to_string()));

    // The requests that keep it awake are named, newest first; ignored ones are counted apart.
    for path in ["/cart", "/checkout?card=4111"] {
        assert_eq!(http_request(serve.proxy, "GET", path, &[], None).expect("request").status, 200);
    }
    for _ in 0..2 {
        assert_eq!(http_request(serve.proxy, "GET", "/healthz", &[], None).expect("probe").status, 200);
    }
    let e = explain(&serve);
    let recent: Vec<&str> = e["recent_requests"].as_array().into_iter().flatten().filter_map(|r| r["path"].as_str()).collect();
    assert_eq!(recent.first(), Some(&"/checkout"), "newest first, without the query: {e}");
    assert!(recent.contains(&"/cart") && !recent.contains(&"/healthz"), "{e}");
    assert_eq!((e["ignored_requests"].as_u64(), e["last_ignored"]["path"].as_str()), (Some(2), Some("/healthz")), "{e}");
    let message = |kind: &str| {
        e["reasons"].as_array().and_then(|r| r.iter().find(|r| r["kind"] == kind)).map(|r| r["message"].to_string()).unwrap_or_default()
    };
    assert!(
        message("recent_activity").contains("the last request, GET /checkout (200)")
            && message("recent_activity").contains("on this replica"),
        "{e}"
    );
    assert!(message("ignored").contains("2 requests matched its ignore rules (the last, GET /healthz"), "{e}");
    let cli = Command::new(BIN)
        .args(["explain", "shop", "--url", &format!("http://{}", serve.admin), "--token", &serve.token()])
        .output()
        .expect("leannodes explain");
    let text = String::from_utf8_lossy(&cli.stdout);
    assert!(text.contains("recent requests on this replica:") && text.contains(" GET /checkout  200"), "{text}");
}
