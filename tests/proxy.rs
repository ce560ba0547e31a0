//! End-to-end tests of the proxy tier: `leannodes serve` as a real process, real demo-backend process
//! nodes, real sockets. Each test starts from a drained flow.

use std::path::Path;
use std::time::{Duration, Instant};

use leannodes_harness::{DemoNode, Serve, alive, assert_eventually, lines_of, read_log, websocket_echo, workdir};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_leannodes");

fn flow(logs: &Path, name: &str, hosts: &[&str], settings: &str, nodes: &[DemoNode]) -> String {
    let hosts: Vec<String> = hosts.iter().map(|h| format!("\"{h}\"")).collect();
    let upstream = nodes.last().map_or("127.0.0.1:9", |n| n.name.as_str());
    let mut text = format!("\n[[flow]]\nname = \"{name}\"\nhosts = [{}]\nupstream = \"{upstream}\"\n{settings}\n", hosts.join(", "));
    for node in nodes {
        text.push_str(&node.toml(BIN, logs));
    }
    text
}

/// The 4-node diamond, `web` last.
fn diamond() -> Vec<DemoNode> {
    vec![
        DemoNode::new("db").args(&["--startup-delay", "300ms"]),
        DemoNode::new("cache").after(&["db"]).args(&["--startup-delay", "100ms"]),
        DemoNode::new("search").after(&["db"]).args(&["--startup-delay", "150ms"]),
        DemoNode::new("web").after(&["cache", "search"]),
    ]
}

const LOCAL: &[&str] = &["127.0.0.1", "localhost"];

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(60)).build().expect("client")
}

async fn flow_state(serve: &Serve, name: &str) -> String {
    let flows: Value =
        client().get(serve.admin_url("/api/v1/flows")).bearer_auth(serve.token()).send().await.expect("flows").json().await.expect("json");
    flows["flows"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["name"] == name))
        .map(|f| f["state"].as_str().unwrap_or_default().to_string())
        .unwrap_or_default()
}

async fn admin_post(serve: &Serve, path: &str) -> Value {
    client().post(serve.admin_url(path)).bearer_auth(serve.token()).send().await.expect("admin").json().await.expect("json")
}

fn starts(dir: &Path) -> Vec<leannodes_harness::LogLine> {
    read_log(&dir.join("start.log"))
}

fn assert_no_survivors(dir: &Path) {
    for line in starts(dir) {
        assert_eventually!(!alive(line.pid), "{} (pid {}) outlived the server", line.name, line.pid);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_request_through_a_drained_flow_waits_and_gets_the_real_body() {
    let dir = workdir();
    let serve = Serve::start(BIN, dir.path(), "", &flow(dir.path(), "shop", LOCAL, "", &diamond()));
    // 1. drained before the test begins.
    assert_eq!(admin_post(&serve, "/api/v1/flows/shop/drain").await["state"], "asleep");
    assert!(starts(dir.path()).is_empty());
    // 2. a client hits the real URL through the real proxy; 3. it is held.
    let started = Instant::now();
    let response = client().get(serve.url("/cart?id=7")).send().await.expect("request");
    let held = started.elapsed();
    assert_eq!(response.status(), 200);
    let cold: u64 = response.headers()["x-leannodes-cold-start"].to_str().expect("header").parse().expect("ms");
    // 6. the actual backend body.
    assert_eq!(response.text().await.expect("body"), "web GET /cart?id=7\n");
    // 4. every node was woken; 5. only after the target was ready (web starts after db 300 ms + siblings).
    let log = starts(dir.path());
    for name in ["db", "cache", "search", "web"] {
        assert_eq!(lines_of(&log, name).len(), 1, "{name} started once");
    }
    assert!(lines_of(&log, "web")[0].millis >= lines_of(&log, "db")[0].millis + 300);
    assert!(cold >= 400 && held >= Duration::from_millis(400), "held {held:?}, header {cold} ms");
    // A warm request carries no cold-start header.
    let warm = client().get(serve.url("/again")).send().await.expect("warm");
    assert_eq!(warm.status(), 200);
    assert!(warm.headers().get("x-leannodes-cold-start").is_none());
    assert_eq!(warm.text().await.expect("body"), "web GET /again\n");
    assert_eq!(flow_state(&serve, "shop").await, "awake");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_concurrent_cold_requests_all_get_the_body_and_nodes_start_once() {
    let dir = workdir();
    let serve = Serve::start(BIN, dir.path(), "", &flow(dir.path(), "shop", LOCAL, "", &diamond()));
    let client = client();
    let mut requests = Vec::new();
    for i in 0..500 {
        let (client, url) = (client.clone(), serve.url(&format!("/item/{i}")));
        requests.push(tokio::spawn(async move {
            let response = client.get(url).send().await.expect("request");
            (response.status().as_u16(), response.text().await.unwrap_or_default())
        }));
    }
    for (i, request) in requests.into_iter().enumerate() {
        let (status, body) = request.await.expect("join");
        assert_eq!((status, body), (200, format!("web GET /item/{i}\n")));
    }
    let log = starts(dir.path());
    for name in ["db", "cache", "search", "web"] {
        assert_eq!(lines_of(&log, name).len(), 1, "{name} started exactly once");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsers_api_clients_and_grpc_get_their_answers_at_their_budgets() {
    let dir = workdir();
    let nodes = vec![DemoNode::new("web").args(&["--startup-delay", "4s"])];
    let settings = "fast_hold = \"300ms\"\nhold_timeout = \"1200ms\"";
    let serve = Serve::start(BIN, dir.path(), "", &flow(dir.path(), "shop", LOCAL, settings, &nodes));

    let started = Instant::now();
    let page = client().get(serve.url("/")).header("accept", "text/html,application/xhtml+xml").send().await.expect("browser");
    let waited = started.elapsed();
    assert_eq!(page.status(), 503);
    assert!(waited >= Duration::from_millis(300) && waited < Duration::from_millis(1100), "browser answered at fast_hold, not {waited:?}");
    assert_eq!(page.headers()["cache-control"], "no-store");
    assert!(page.headers().contains_key("retry-after"));
    assert!(page.headers()["content-type"].to_str().expect("ct").starts_with("text/html"));
    let html = page.text().await.expect("html");
    assert!(html.contains("shop") && html.contains("/.well-known/leannodes") && html.contains("EventSource"));
    assert!(!html.contains("{{"), "every placeholder filled");

    // The page's live status is served by the proxy itself, for flows on this host.
    let live: Value =
        client().get(serve.url("/.well-known/leannodes/flows/shop")).send().await.expect("status").json().await.expect("json");
    assert_eq!(live["flow"], "shop");
    assert_eq!(live["nodes"][0]["name"], "web");
    let other_host =
        client().get(serve.url("/.well-known/leannodes/flows/shop")).header("host", "elsewhere.test").send().await.expect("status");
    assert_eq!(other_host.status(), 404);

    let started = Instant::now();
    let api = client().get(serve.url("/api")).send().await.expect("api");
    let waited = started.elapsed();
    assert_eq!(api.status(), 503);
    assert!(waited >= Duration::from_millis(1200), "API clients wait the whole hold_timeout, not {waited:?}");
    assert!(api.headers().contains_key("retry-after"));
    let body: Value = api.json().await.expect("json");
    assert_eq!(body["error"], "cold_start_timeout");
    assert_eq!(body["flow"], "shop");
    assert!(body["waited_ms"].as_u64().expect("waited") >= 1200);
    assert_eq!(body["nodes"][0]["name"], "web");

    let grpc = reqwest::Client::builder().no_proxy().http2_prior_knowledge().build().expect("h2c client");
    let response = grpc
        .post(serve.url("/pkg.Service/Method"))
        .header("content-type", "application/grpc")
        .body(vec![0u8, 0, 0, 0, 0])
        .send()
        .await
        .expect("grpc");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["grpc-status"], "14");
    assert!(response.headers()["grpc-message"].to_str().expect("msg").contains("still waking"));
    // The wake went on meanwhile: the flow becomes awake without further requests.
    assert_eventually!(flow_state(&serve, "shop").await == "awake" || block_state(&serve) == "awake", "flow awake");
}

fn block_state(serve: &Serve) -> String {
    leannodes_harness::http_request(serve.admin, "GET", "/api/v1/flows", &[("authorization", &serve.bearer())], None)
        .and_then(|a| a.json()["flows"][0]["state"].as_str().map(str::to_string))
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_exits_fails_the_request_fast() {
    let dir = workdir();
    let nodes = vec![
        DemoNode::new("db"),
        DemoNode::new("web").after(&["db"]).args(&["--startup-delay", "20s", "--exit-after", "300ms", "--exit-code", "2"]),
    ];
    let serve =
        Serve::start(BIN, dir.path(), "public_status = \"detailed\"", &flow(dir.path(), "shop", LOCAL, "hold_timeout = \"60s\"", &nodes));
    let started = Instant::now();
    let response = client().get(serve.url("/")).send().await.expect("request");
    assert!(started.elapsed() < Duration::from_secs(10), "failed fast, not at hold_timeout");
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"], "cold_start_failed");
    assert_eq!(body["node"], "web");
    assert_eq!(body["reason"], "exited");
    assert!(body["message"].as_str().expect("message").contains("exited with status 2"), "{body}");
    // Rolled back: db was stopped again.
    assert_no_survivors(dir.path());
    let history: Value = client()
        .get(serve.admin_url("/api/v1/flows/shop/executions"))
        .bearer_auth(serve.token())
        .send()
        .await
        .expect("history")
        .json()
        .await
        .expect("json");
    assert_eq!(history["items"][0]["outcome"], "failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_held_refuses_the_overflow() {
    let dir = workdir();
    let nodes = vec![DemoNode::new("web").args(&["--startup-delay", "2s"])];
    let serve = Serve::start(BIN, dir.path(), "", &flow(dir.path(), "shop", LOCAL, "max_held = 2", &nodes));
    let mut held = Vec::new();
    for _ in 0..2 {
        let url = serve.url("/");
        held.push(tokio::spawn(async move { client().get(url).send().await.expect("held").status().as_u16() }));
    }
    assert_eventually!(metric(&serve, "leannodes_held_requests{flow=\"shop\"}") == 2.0, "two requests held");
    let overflow = client().get(serve.url("/")).send().await.expect("overflow");
    assert_eq!(overflow.status(), 503);
    assert!(overflow.headers().contains_key("retry-after"));
    assert_eq!(overflow.json::<Value>().await.expect("json")["error"], "hold_queue_full");
    for h in held {
        assert_eq!(h.await.expect("join"), 200);
    }
}

fn metric(serve: &Serve, series: &str) -> f64 {
    let text = leannodes_harness::http_request(serve.admin, "GET", "/metrics", &[("authorization", &serve.bearer())], None)
        .map(|a| a.body)
        .unwrap_or_default();
    text.lines().find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok())).unwrap_or(-1.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignored_requests_never_wake_and_disabled_flows_refuse() {
    let dir = workdir();
    let settings = "ignore = { user_agents = [\"kube-probe/*\"], paths = [\"/healthz\"] }";
    let body = format!(
        "{}{}",
        flow(dir.path(), "shop", LOCAL, settings, &[DemoNode::new("web")]),
        flow(dir.path(), "off", &["off.test"], "disabled = true", &[DemoNode::new("idle")])
    );
    let serve = Serve::start(BIN, dir.path(), "", &body);
    let probe = client().get(serve.url("/")).header("user-agent", "kube-probe/1.30").send().await.expect("probe");
    assert_eq!(probe.status(), 503);
    assert_eq!(probe.json::<Value>().await.expect("json")["error"], "asleep");
    let health = client().get(serve.url("/healthz")).send().await.expect("health");
    assert_eq!(health.json::<Value>().await.expect("json")["error"], "asleep");
    assert!(starts(dir.path()).is_empty(), "nothing woken");
    assert_eq!(flow_state(&serve, "shop").await, "asleep");

    let disabled = client().get(serve.url("/")).header("host", "off.test").send().await.expect("disabled");
    assert_eq!(disabled.status(), 503);
    assert_eq!(disabled.json::<Value>().await.expect("json")["error"], "flow_disabled");
    assert!(starts(dir.path()).is_empty(), "nothing woken");

    // Once awake, ignored requests are proxied (and still do not count as activity).
    assert_eq!(client().get(serve.url("/")).send().await.expect("wake").status(), 200);
    let probe = client().get(serve.url("/healthz")).send().await.expect("probe");
    assert_eq!(probe.text().await.expect("body"), "web GET /healthz\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmatched_hosts_get_404_or_pass_through() {
    let dir = workdir();
    let serve = Serve::start(BIN, dir.path(), "", &flow(dir.path(), "shop", &["shop.test"], "", &[DemoNode::new("web")]));
    let response = client().get(serve.url("/x")).header("host", "nobody.test").send().await.expect("request");
    assert_eq!(response.status(), 404);
    assert_eq!(response.json::<Value>().await.expect("json")["error"], "no_flow");
    drop(serve);

    // With a default upstream, unmatched hosts pass through to it.
    let dir = workdir();
    let backend = DemoNode::new("fallback");
    let mut process = std::process::Command::new(BIN)
        .args(["demo-backend", "--port", &backend.port.to_string(), "--name", "fallback"])
        .spawn()
        .expect("backend");
    assert_eventually!(std::net::TcpStream::connect(("127.0.0.1", backend.port)).is_ok(), "fallback up");
    let extra = format!("default_upstream = \"127.0.0.1:{}\"", backend.port);
    let serve = Serve::start(BIN, dir.path(), &extra, &flow(dir.path(), "shop", &["shop.test"], "", &[DemoNode::new("web")]));
    let response = client().get(serve.url("/x")).header("host", "nobody.test").send().await.expect("request");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.expect("body"), "fallback GET /x\n");
    let _ = process.kill();
    let _ = process.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrade_is_held_then_proxied_end_to_end() {
    let dir = workdir();
    let nodes = vec![DemoNode::new("web").args(&["--startup-delay", "500ms"])];
    let serve = Serve::start(BIN, dir.path(), "", &flow(dir.path(), "shop", LOCAL, "", &nodes));
    let proxy = serve.proxy;
    let (echo, head) = tokio::task::spawn_blocking(move || websocket_echo(proxy, "127.0.0.1", "/ws", "hello through a cold start"))
        .await
        .expect("join")
        .expect("websocket");
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.to_ascii_lowercase().contains("x-leannodes-cold-start"), "{head}");
    assert_eq!(echo, "hello through a cold start");
}

#[test]
fn bytes_on_an_upgraded_connection_keep_the_flow_awake() {
    let dir = workdir();
    let serve = Serve::start(BIN, dir.path(), "", &flow(dir.path(), "shop", LOCAL, "idle_after = \"1s\"", &[DemoNode::new("web")]));
    let mut ws = leannodes_harness::WebSocket::connect(serve.proxy, "127.0.0.1", "/ws").expect("websocket");
    assert!(ws.head.starts_with("HTTP/1.1 101"), "{}", ws.head);
    // Messages every 300 ms for 3 s: three idle windows pass, but the connection is busy.
    for i in 0..10 {
        ws.send(&format!("ping {i}")).expect("send");
        assert_eq!(ws.recv().expect("echo"), format!("ping {i}"));
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(block_state(&serve), "awake", "drained while messages flowed ({i})");
    }
    // Silent (the connection stays open): it stops counting, and the flow drains.
    assert_eventually!(block_state(&serve) == "asleep", "drained after the connection went quiet");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_and_post_bodies_go_through_a_hold() {
    let dir = workdir();
    let nodes = vec![DemoNode::new("web").args(&["--startup-delay", "500ms"])];
    let serve = Serve::start(BIN, dir.path(), "", &flow(dir.path(), "shop", LOCAL, "", &nodes));
    let h2 = reqwest::Client::builder().no_proxy().http2_prior_knowledge().build().expect("client");
    let response = h2.get(serve.url("/h2")).send().await.expect("h2c");
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-leannodes-cold-start"));
    assert_eq!(response.text().await.expect("body"), "web GET /h2\n");

    admin_post(&serve, "/api/v1/flows/shop/drain").await;
    let response = client().post(serve.url("/orders")).body("{\"qty\": 3}").send().await.expect("post");
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-leannodes-cold-start"));
    assert_eq!(response.text().await.expect("body"), "web POST /orders 10 bytes\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_while_held_does_not_cancel_the_wake() {
    let dir = workdir();
    let nodes = vec![DemoNode::new("db"), DemoNode::new("web").after(&["db"]).args(&["--startup-delay", "1s"])];
    let serve = Serve::start(BIN, dir.path(), "", &flow(dir.path(), "shop", LOCAL, "", &nodes));
    let impatient = reqwest::Client::builder().no_proxy().timeout(Duration::from_millis(300)).build().expect("client");
    assert!(impatient.get(serve.url("/")).send().await.is_err(), "client gave up");
    assert_eventually!(block_state(&serve) == "awake", "the wake went on");
    assert_eq!(lines_of(&starts(dir.path()), "web").len(), 1);
    assert_eventually!(serve.log().contains("status=499"), "logged as 499");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_reload_every_100ms_under_load_fails_no_request() {
    let dir = workdir();
    let base = flow(dir.path(), "shop", LOCAL, "", &[DemoNode::new("web")]);
    let serve = Serve::start(BIN, dir.path(), "", &base);
    assert_eq!(client().get(serve.url("/")).send().await.expect("warm").status(), 200);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut loads = Vec::new();
    for _ in 0..4 {
        let (stop, url) = (stop.clone(), serve.url("/load"));
        loads.push(tokio::spawn(async move {
            let client = client();
            let (mut ok, mut failed) = (0u32, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match client.get(&url).send().await {
                    Ok(r) if r.status() == 200 => ok += 1,
                    Ok(r) => failed.push(r.status().to_string()),
                    Err(e) => failed.push(e.to_string()),
                }
            }
            (ok, failed)
        }));
    }
    // Alternate between a changed `shop` (new idle window) plus an extra flow, and the original.
    let other = flow(dir.path(), "extra", &["extra.test"], "", &[DemoNode::new("extra")]);
    for i in 0..30 {
        if i % 2 == 0 {
            serve.rewrite(&format!(
                "{}{other}",
                base.replace("upstream = \"web\"", &format!("upstream = \"web\"\nidle_after = \"{}m\"", 10 + i))
            ));
        } else {
            serve.rewrite(&base);
        }
        serve.signal(1);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for load in loads {
        let (ok, failed) = load.await.expect("join");
        assert!(failed.is_empty(), "failed requests during reloads: {failed:?}");
        total += ok;
    }
    assert!(total > 100, "the load ran ({total} requests)");
    let status: Value = client()
        .get(serve.admin_url("/api/v1/status"))
        .bearer_auth(serve.token())
        .send()
        .await
        .expect("status")
        .json()
        .await
        .expect("json");
    assert_eq!(status["last_reload"]["ok"], true);
    assert!(serve.log().contains("configuration reloaded"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_held_on_a_removed_flow_get_flow_removed() {
    let dir = workdir();
    let slow = flow(dir.path(), "slow", &["slow.test"], "", &[DemoNode::new("never").args(&["--startup-delay", "60s"])]);
    let fast = flow(dir.path(), "shop", LOCAL, "", &[DemoNode::new("web")]);
    let serve = Serve::start(BIN, dir.path(), "", &format!("{slow}{fast}"));
    let url = serve.url("/");
    let held = tokio::spawn(async move { client().get(url).header("host", "slow.test").send().await.expect("held") });
    assert_eventually!(metric(&serve, "leannodes_held_requests{flow=\"slow\"}") == 1.0, "held");
    serve.rewrite(&fast);
    serve.signal(1);
    let response = held.await.expect("join");
    assert_eq!(response.status(), 503);
    assert_eq!(response.json::<Value>().await.expect("json")["error"], "flow_removed");
    assert_eq!(client().get(serve.url("/")).send().await.expect("shop").status(), 200, "the other flow is untouched");
    assert_eventually!(lines_of(&starts(dir.path()), "never").iter().all(|l| !alive(l.pid)), "the removed flow's node was stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_reload_keeps_the_running_config_and_reports_why() {
    let dir = workdir();
    let base = flow(dir.path(), "shop", LOCAL, "", &[DemoNode::new("web")]);
    let serve = Serve::start(BIN, dir.path(), "", &base);
    serve.rewrite(&base.replace("upstream = \"web\"", "upstream = \"nowhere\""));
    serve.signal(1);
    assert_eventually!(
        leannodes_harness::http_request(serve.admin, "GET", "/api/v1/status", &[("authorization", &serve.bearer())], None)
            .is_some_and(|a| a.body.contains("\"ok\":false") && a.body.contains("upstream \\\"nowhere\\\"")),
        "status shows the rejected reload"
    );
    assert_eq!(client().get(serve.url("/")).send().await.expect("still served").status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_answers_held_requests_and_stops_every_process() {
    let dir = workdir();
    let nodes = vec![DemoNode::new("db"), DemoNode::new("web").after(&["db"]).args(&["--startup-delay", "30s"])];
    let mut serve = Serve::start(BIN, dir.path(), "", &flow(dir.path(), "shop", LOCAL, "", &nodes));
    let mut held = Vec::new();
    for _ in 0..3 {
        let url = serve.url("/");
        held.push(tokio::spawn(async move {
            let r = client().get(url).send().await.expect("held");
            (r.status().as_u16(), r.headers().contains_key("retry-after"), r.text().await.unwrap_or_default())
        }));
    }
    assert_eventually!(metric(&serve, "leannodes_held_requests{flow=\"shop\"}") == 3.0, "three requests held");
    let started = Instant::now();
    serve.signal(15);
    for h in held {
        let (status, retry_after, body) = h.await.expect("join");
        assert_eq!(status, 503, "{body}");
        assert!(retry_after);
        assert!(body.contains("shutting_down"), "{body}");
    }
    let status = serve.wait().expect("exited");
    assert!(status.success(), "exit status {status}");
    assert!(started.elapsed() < Duration::from_secs(3), "no in-flight requests: no need to wait out the grace");
    assert_no_survivors(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_crashes_while_serving_is_woken_again_by_the_next_request() {
    let dir = workdir();
    let serve = Serve::start(
        BIN,
        dir.path(),
        "",
        &flow(dir.path(), "shop", LOCAL, "", &[DemoNode::new("db"), DemoNode::new("web").after(&["db"])]),
    );
    assert_eq!(client().get(serve.url("/")).send().await.expect("wake").status(), 200);
    let web = lines_of(&starts(dir.path()), "web")[0].pid;
    let _ = std::process::Command::new("kill").args(["-9", &web.to_string()]).status();
    assert_eventually!(block_state(&serve) == "asleep", "the crash put the flow back to sleep");
    let response = client().get(serve.url("/after-crash")).send().await.expect("request");
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-leannodes-cold-start"), "held while web restarted");
    assert_eq!(response.text().await.expect("body"), "web GET /after-crash\n");
    let log = starts(dir.path());
    assert_eq!(lines_of(&log, "web").len(), 2, "web restarted");
    assert_eq!(lines_of(&log, "db").len(), 1, "db, still running, was not restarted");
}

#[test]
fn no_process_node_survives_a_killed_server() {
    let dir = workdir();
    let serve = Serve::start(BIN, dir.path(), "", &flow(dir.path(), "shop", LOCAL, "", &diamond()));
    assert_eq!(leannodes_harness::http_get(serve.proxy, "/").map(|r| r.0), Some(200));
    assert_eq!(starts(dir.path()).len(), 4);
    serve.signal(9);
    assert_no_survivors(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_status_shows_progress_but_no_internal_details_by_default() {
    let dir = workdir();
    let node = DemoNode::new("web").args(&["--startup-delay", "60s"]);
    let port = node.port.to_string();
    let settings = "fast_hold = \"300ms\"\nhold_timeout = \"600ms\"";
    let body = flow(dir.path(), "shop", LOCAL, settings, &[node]);
    let serve = Serve::start(BIN, dir.path(), "", &body);
    let page = client().get(serve.url("/")).header("accept", "text/html").send().await.expect("warm-up page");
    assert_eq!(page.status(), 503);
    let html = page.text().await.expect("html");
    assert!(html.contains("\"name\":\"web\"") && html.contains("\"state\":\"starting\""), "progress is shown: {html}");
    assert!(!html.contains(&port), "no probe detail (it names 127.0.0.1:{port})");
    let status = client().get(serve.url("/.well-known/leannodes/flows/shop")).send().await.expect("status");
    let json: Value = status.json().await.expect("json");
    assert_eq!((json["nodes"][0]["name"].as_str(), json["nodes"][0]["detail"].as_str()), (Some("web"), None), "{json}");
    assert!(json["execution"].is_null(), "{json}");
    let timeout = client().get(serve.url("/")).send().await.expect("api client");
    let text = timeout.text().await.expect("body");
    assert!(text.contains("cold_start_timeout") && !text.contains(&port), "{text}");
    // The authenticated API keeps the details.
    let detail = || async {
        let flow: Value = client()
            .get(serve.admin_url("/api/v1/flows/shop"))
            .bearer_auth(serve.token())
            .send()
            .await
            .expect("flow")
            .json()
            .await
            .expect("json");
        flow["nodes"][0]["detail"].as_str().unwrap_or_default().to_string()
    };
    assert_eventually!(detail().await.contains(&port), "the API shows the probe detail");

    // "detailed" shows them publicly; "off" has no live status at all.
    drop(serve);
    let detailed = Serve::start(BIN, dir.path(), "public_status = \"detailed\"", &body);
    client().get(detailed.url("/")).send().await.expect("wake");
    let public_detail = || async {
        let json: Value =
            client().get(detailed.url("/.well-known/leannodes/flows/shop")).send().await.expect("status").json().await.expect("json");
        json["nodes"][0]["detail"].as_str().unwrap_or_default().to_string()
    };
    assert_eventually!(public_detail().await.contains(&port), "detailed shows the probe detail publicly");
    drop(detailed);
    let off = Serve::start(BIN, dir.path(), "public_status = \"off\"", &body);
    let gone = client().get(off.url("/.well-known/leannodes/flows/shop")).send().await.expect("status");
    assert_eq!(gone.status(), 404);
    let page = client().get(off.url("/")).header("accept", "text/html").send().await.expect("page").text().await.expect("html");
    assert!(!page.contains("\"name\":\"web\"") && !page.contains(&port), "{page}");
}

/// Sends `bytes` on a fresh connection to the proxy, then reads until the proxy closes it.
fn raw_exchange(serve: &Serve, bytes: &[u8]) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(serve.proxy).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    stream.write_all(bytes).expect("write");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_heads_time_out_and_oversized_heads_are_refused_before_anything_is_held() {
    let dir = workdir();
    let nodes = vec![DemoNode::new("web")];
    let serve = Serve::start(BIN, dir.path(), "request_head_timeout = \"1s\"", &flow(dir.path(), "shop", LOCAL, "", &nodes));

    // Slow-loris: a head that never completes is answered 408 and closed.
    let answer = raw_exchange(&serve, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ");
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert!(answer.contains("\"error\":\"request_head_timeout\""), "{answer}");

    // A head over 64 KiB, and one with more than 256 headers: 431.
    let mut huge = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ".to_vec();
    huge.resize(70 * 1024, b'a');
    huge.extend_from_slice(b"\r\n\r\n");
    let answer = raw_exchange(&serve, &huge);
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
    assert!(answer.contains("\"error\":\"request_head_too_large\""), "{answer}");
    let mut flood = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n".to_vec();
    for i in 0..300 {
        flood.extend_from_slice(format!("X-H{i}: 1\r\n").as_bytes());
    }
    flood.extend_from_slice(b"\r\n");
    let answer = raw_exchange(&serve, &flood);
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");

    // They are counted by reason; none of them reached the gate: nothing woke, nothing is held.
    assert_eq!(metric(&serve, "leannodes_request_heads_refused_total{reason=\"request_head_timeout\"}"), 1.0);
    assert_eq!(metric(&serve, "leannodes_request_heads_refused_total{reason=\"request_head_too_large\"}"), 2.0);
    assert_eq!(metric(&serve, "leannodes_held_requests{flow=\"shop\"}"), 0.0);
    assert!(starts(dir.path()).is_empty(), "a refused head woke the flow");

    // A complete head sent slowly (each piece well inside the timeout) is held and gets the body.
    let answer = tokio::task::spawn_blocking({
        let proxy = serve.proxy;
        move || {
            use std::io::{Read, Write};
            let mut stream = std::net::TcpStream::connect(proxy).expect("connect");
            stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
            for piece in ["GET / HTTP/1.1\r\n", "Host: 127.0.0.1\r\n", "Connection: close\r\n", "\r\n"] {
                stream.write_all(piece.as_bytes()).expect("write");
                stream.flush().expect("flush");
            }
            let mut answer = String::new();
            let _ = stream.read_to_string(&mut answer);
            answer
        }
    })
    .await
    .expect("join");
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("x-leannodes-cold-start"), "the request was held through the wake: {answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_whose_first_request_was_parked_stays_usable_for_the_next() {
    let dir = workdir();
    let nodes = vec![DemoNode::new("web").args(&["--startup-delay", "300ms"])];
    let serve = Serve::start(BIN, dir.path(), "", &flow(dir.path(), "shop", LOCAL, "", &nodes));
    let (first, second) = tokio::task::spawn_blocking({
        let proxy = serve.proxy;
        move || {
            use std::io::{BufRead, BufReader, Read, Write};
            let stream = std::net::TcpStream::connect(proxy).expect("connect");
            stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut writer = stream;
            // One response with its content-length body, head lines lower-cased.
            let response = |reader: &mut BufReader<std::net::TcpStream>| {
                let mut text = String::new();
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).expect("head line");
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().expect("length");
                    }
                    text.push_str(&line.to_ascii_lowercase());
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).expect("body");
                text + &String::from_utf8_lossy(&body)
            };
            writer.write_all(b"GET /first HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").expect("write");
            let first = response(&mut reader);
            writer.write_all(b"GET /second HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").expect("write");
            (first, response(&mut reader))
        }
    })
    .await
    .expect("join");
    assert!(
        first.starts_with("http/1.1 200") && first.contains("x-leannodes-cold-start") && first.ends_with("web GET /first\n"),
        "{first}"
    );
    assert!(
        second.starts_with("http/1.1 200") && !second.contains("x-leannodes-cold-start") && second.ends_with("web GET /second\n"),
        "{second}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_answered_in_order_while_held_and_when_awake() {
    let dir = workdir();
    let nodes = vec![DemoNode::new("web").args(&["--startup-delay", "300ms"])];
    let serve = Serve::start(BIN, dir.path(), "", &flow(dir.path(), "shop", LOCAL, "", &nodes));
    let pipelined = |paths: &[&str]| {
        let mut bytes = Vec::new();
        for (i, path) in paths.iter().enumerate() {
            let close = if i + 1 == paths.len() { "Connection: close\r\n" } else { "" };
            bytes.extend_from_slice(format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{close}\r\n").as_bytes());
        }
        bytes
    };
    // Asleep: three requests in one write. The first is parked while the flow wakes; all three are
    // answered, in order, on the same connection.
    let answer = raw_exchange(&serve, &pipelined(&["/one", "/two", "/three"]));
    let bodies: Vec<_> = answer.lines().filter(|line| line.starts_with("web GET /")).collect();
    assert_eq!(bodies, ["web GET /one", "web GET /two", "web GET /three"], "{answer}");
    assert_eq!(answer.matches("HTTP/1.1 200 ").count(), 3, "{answer}");
    assert_eq!(answer.to_ascii_lowercase().matches("x-leannodes-cold-start").count(), 1, "only the first was held: {answer}");

    // Awake: the same on a new connection.
    let answer = raw_exchange(&serve, &pipelined(&["/four", "/five"]));
    assert_eq!(answer.matches("HTTP/1.1 200 ").count(), 2, "{answer}");
    assert!(answer.find("web GET /four").is_some_and(|four| answer.find("web GET /five").is_some_and(|five| four < five)), "{answer}");
}
