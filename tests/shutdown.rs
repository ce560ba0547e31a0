//! Graceful shutdown under load: SIGTERM while 10,000 requests are held and warm requests are being
//! proxied. Every held request gets its `503` with `Retry-After` on an intact connection, every warm
//! request finishes with its real body inside `shutdown_grace`, the server exits 0 and leaves no
//! process behind.

use std::time::{Duration, Instant};

use leannodes_harness::{DemoNode, Serve, alive, assert_eventually, http_request, read_log, workdir};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BIN: &str = env!("CARGO_BIN_EXE_leannodes");
const HELD: usize = 10_000;
const WARM: usize = 20;

fn flow(logs: &std::path::Path, name: &str, node: &DemoNode) -> String {
    format!(
        "\n[[flow]]\nname = \"{name}\"\nhosts = [\"{name}.test\"]\nupstream = \"{}\"\nhold_timeout = \"5m\"\n{}",
        node.name,
        node.toml(BIN, logs)
    )
}

/// The number in a metric line of `/metrics`.
fn metric(serve: &Serve, line: &str) -> f64 {
    let bearer = serve.bearer();
    let text = http_request(serve.admin, "GET", "/metrics", &[("authorization", &bearer)], None).map(|a| a.body).unwrap_or_default();
    text.lines().find_map(|l| l.strip_prefix(line)).and_then(|v| v.trim().parse().ok()).unwrap_or(-1.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_ten_thousand_held_and_warm_requests_in_flight_loses_nothing() {
    let dir = workdir();
    // `cold` never finishes waking during the test; `warm` is awake and answers slowly.
    let cold = DemoNode::new("cold").args(&["--startup-delay", "10m"]).timeout("20m");
    let warm = DemoNode::new("warm");
    let body = format!("{}{}", flow(dir.path(), "cold", &cold), flow(dir.path(), "warm", &warm));
    let mut serve = Serve::start(BIN, dir.path(), "", &body);
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(60)).build().expect("client");
    let woken = client.get(serve.url("/")).header("host", "warm.test").send().await.expect("wake warm");
    assert_eq!(woken.status(), 200);

    // 10,000 held requests, each on its own connection.
    let proxy = serve.proxy;
    let mut held = Vec::with_capacity(HELD);
    for i in 0..HELD {
        held.push(tokio::spawn(async move {
            let mut socket = tokio::net::TcpStream::connect(proxy).await.map_err(|e| format!("connect {i}: {e}"))?;
            let head = format!("GET /held/{i} HTTP/1.1\r\nHost: cold.test\r\nAccept: application/json\r\n\r\n");
            socket.write_all(head.as_bytes()).await.map_err(|e| format!("write {i}: {e}"))?;
            let mut answer = Vec::new();
            // The server closes the connection after its answer at shutdown; a reset would be an error.
            socket.read_to_end(&mut answer).await.map_err(|e| format!("read {i}: {e}"))?;
            Ok::<String, String>(String::from_utf8_lossy(&answer).into_owned())
        }));
    }
    assert_eventually!(metric(&serve, "leannodes_held_requests{flow=\"cold\"}") == HELD as f64, "all {HELD} requests are held");

    // Warm requests in flight, each taking 1.5 s at the backend (shutdown_grace is 3 s).
    let warm_requests: Vec<_> = (0..WARM)
        .map(|i| {
            let request = client.get(serve.url(&format!("/slow/{i}?sleep_ms=1500"))).header("host", "warm.test");
            tokio::spawn(async move {
                let response = request.send().await.map_err(|e| format!("warm {i}: {e}"))?;
                let status = response.status().as_u16();
                Ok::<(u16, String), String>((status, response.text().await.map_err(|e| format!("warm body {i}: {e}"))?))
            })
        })
        .collect();
    let bearer = serve.bearer();
    let open = || {
        http_request(serve.admin, "GET", "/api/v1/flows/warm/explain", &[("authorization", &bearer)], None)
            .map(|a| a.json()["open"]["request"].as_u64().unwrap_or(0))
            .unwrap_or(0)
    };
    assert_eventually!(open() == WARM as u64, "the warm requests are being proxied");

    let signalled = Instant::now();
    serve.signal(15);
    for (i, request) in warm_requests.into_iter().enumerate() {
        let (status, body) = request.await.expect("task").unwrap_or_else(|e| panic!("{e}\n{}", serve.log()));
        assert_eq!((status, body), (200, format!("warm GET /slow/{i}?sleep_ms=1500\n")), "in-flight requests finish");
    }
    let mut answered = 0;
    for request in held {
        let answer = request.await.expect("task").unwrap_or_else(|e| panic!("a held connection failed: {e}"));
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        let head = answer.to_ascii_lowercase();
        assert!(head.contains("retry-after:") && head.contains("shutting_down"), "{answer}");
        answered += 1;
    }
    assert_eq!(answered, HELD);
    let status = serve.wait().expect("exited");
    assert!(status.success(), "exit status {status}:\n{}", serve.log());
    assert!(signalled.elapsed() < Duration::from_secs(10), "within shutdown_grace and the exit: {:?}", signalled.elapsed());
    for line in read_log(&dir.path().join("start.log")) {
        assert_eventually!(!alive(line.pid), "{} (pid {}) outlived the server", line.name, line.pid);
    }
}
