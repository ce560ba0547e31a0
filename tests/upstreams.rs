//! Upstream protocols end to end: a real gRPC server (grpcio, with its health service) behind a hold over
//! h2c and over TLS (`h2`), a real HTTPS backend (`h1-tls`) with a private CA, and a clear 502 with a
//! metric for each kind of certificate problem while the other flows keep being served.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use leannodes_harness::tls::TestCa;
use leannodes_harness::{Serve, assert_eventually, free_port, read_log, workdir};

const BIN: &str = env!("CARGO_BIN_EXE_leannodes");

fn python() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/.tools/venv/bin/python").to_string()
}

fn support(script: &str) -> String {
    format!("{}/tests/support/{script}", env!("CARGO_MANIFEST_DIR"))
}

fn toml_list(items: &[String]) -> String {
    leannodes_harness::toml_list(items)
}

/// A process node running the gRPC health server on a fresh port (TLS with `tls = Some((cert, key))`).
fn grpc_node(logs: &Path, tls: Option<(&Path, &Path)>) -> (String, u16) {
    let port = free_port();
    let mut command = vec![
        python(),
        support("grpc/health_server.py"),
        "--port".into(),
        port.to_string(),
        "--start-log".into(),
        logs.join("grpc-starts.log").display().to_string(),
    ];
    if let Some((cert, key)) = tls {
        command.extend(["--cert".into(), cert.display().to_string(), "--key".into(), key.display().to_string()]);
    }
    let node =
        format!("\n  [[flow.node]]\n  name = \"grpc\"\n  kind = \"process\"\n  command = {}\n  port = {port}\n", toml_list(&command));
    (node, port)
}

/// Runs the gRPC health client against `target` for the flow host `authority`.
fn grpc_client(target: &str, authority: &str, ca: Option<&Path>, call: &[&str]) -> (bool, String, String) {
    let mut command = Command::new(python());
    command.arg(support("grpc/health_client.py")).args(["--target", target, "--authority", authority]);
    if let Some(ca) = ca {
        command.arg("--ca").arg(ca);
    }
    let out = command.args(call).output().expect("run the gRPC client");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn grpc_starts(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("grpc-starts.log")).map_or(0, |t| t.lines().count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_over_h2c_is_held_through_the_wake_and_a_stream_keeps_the_flow_awake() {
    let dir = workdir();
    let ca = TestCa::new("grpc front CA");
    let (front_cert, front_key) = ca.issue(&["grpc.test"]).write(dir.path(), "front");
    let ca_file = ca.write(&dir.path().join("ca.pem"));
    let tls_port = free_port();
    let (node, _) = grpc_node(dir.path(), None);
    // idle_after is far shorter than the stream below: only the stream's bytes keep the flow awake.
    let body = format!(
        "\n[[flow]]\nname = \"grpc\"\nhosts = [\"grpc.test\"]\nupstream = \"grpc\"\nupstream_protocol = \"h2c\"\nidle_after = \"1s\"\n{node}"
    );
    let tls = format!(
        "\n[[server.tls]]\nlisten = \"127.0.0.1:{tls_port}\"\ncerts = [{{ cert = \"{}\", key = \"{}\" }}]\n",
        front_cert.display(),
        front_key.display()
    );
    let serve = Serve::start(BIN, dir.path(), &format!("activity_flush = \"200ms\"\n{tls}"), &body);
    serve.drain("grpc");
    let starts_before = grpc_starts(dir.path());

    // Unary, held through the wake (the client's first call finds the flow asleep).
    let target = serve.proxy.to_string();
    let (ok, out, err) = grpc_client(&target, "grpc.test", None, &["check"]);
    assert!(ok, "{err}\n{}", serve.log());
    assert_eq!(out.trim(), "SERVING");
    assert_eq!(grpc_starts(dir.path()), starts_before + 1, "the server was woken for the call");

    // Server streaming for ~4 s, four times idle_after: the flow must not drain under it (a drain would
    // stop the server and break the stream).
    let started = Instant::now();
    let (ok, out, err) = grpc_client(&target, "grpc.test", None, &["watch", "20"]);
    assert!(ok, "the stream ran to its end: {err}");
    assert_eq!(out.lines().filter(|l| l.ends_with("SERVING")).count(), 20, "{out}");
    assert!(started.elapsed() > Duration::from_secs(3));
    assert_eq!(grpc_starts(dir.path()), starts_before + 1, "never drained and woken again during the stream");

    // The same over the TLS listener (HTTP/2 by ALPN), from asleep again.
    serve.drain("grpc");
    let (ok, out, err) = grpc_client(&format!("127.0.0.1:{tls_port}"), "grpc.test", Some(&ca_file), &["check"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "SERVING");
    assert_eq!(grpc_starts(dir.path()), starts_before + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_over_h2_with_a_private_ca_is_held_through_the_wake() {
    let dir = workdir();
    let ca = TestCa::new("backend CA");
    let ca_file = ca.write(&dir.path().join("backend-ca.pem"));
    let (cert, key) = ca.issue(&["grpc.internal"]).write(dir.path(), "backend");
    let (node, _) = grpc_node(dir.path(), Some((&cert, &key)));
    let body = format!(
        "\n[[flow]]\nname = \"grpc\"\nhosts = [\"grpc.test\"]\nupstream = \"grpc\"\nupstream_protocol = \"h2\"\nupstream_tls = {{ sni = \"grpc.internal\", ca = \"{}\" }}\n{node}",
        ca_file.display()
    );
    let serve = Serve::start(BIN, dir.path(), "", &body);
    serve.drain("grpc");
    let (ok, out, err) = grpc_client(&serve.proxy.to_string(), "grpc.test", None, &["check"]);
    assert!(ok, "{err}\n{}", serve.log());
    assert_eq!(out.trim(), "SERVING");
    let (ok, out, _) = grpc_client(&serve.proxy.to_string(), "grpc.test", None, &["watch", "3"]);
    assert!(ok);
    assert_eq!(out.lines().last(), Some("done"));
}

/// The HTTPS backend script on a fresh port, with this certificate.
struct HttpsBackend {
    child: Child,
    port: u16,
}

impl HttpsBackend {
    fn start(name: &str, cert: &Path, key: &Path) -> HttpsBackend {
        let port = free_port();
        let child = Command::new(python())
            .arg(support("tls/https_backend.py"))
            .args(["--port", &port.to_string(), "--name", name, "--cert"])
            .arg(cert)
            .arg("--key")
            .arg(key)
            .stdout(Stdio::null())
            .spawn()
            .expect("start the HTTPS backend");
        assert_eventually!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(), "the HTTPS backend listens");
        HttpsBackend { child, port }
    }
}

impl Drop for HttpsBackend {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn https_flow(name: &str, port: u16, tls: &str) -> String {
    format!(
        "\n[[flow]]\nname = \"{name}\"\nhosts = [\"{name}.test\"]\nupstream = \"127.0.0.1:{port}\"\nupstream_protocol = \"h1-tls\"\n{tls}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h1_tls_upstreams_are_verified_and_each_certificate_problem_gets_its_own_502() {
    let dir = workdir();
    let ca = TestCa::new("backend CA");
    let ca_file: PathBuf = ca.write(&dir.path().join("backend-ca.pem"));
    let (good_cert, good_key) = ca.issue(&["127.0.0.1", "api.internal"]).write(dir.path(), "good");
    let (old_cert, old_key) = ca.issue_expired(&["127.0.0.1"]).write(dir.path(), "expired");
    let good = HttpsBackend::start("good", &good_cert, &good_key);
    let expired = HttpsBackend::start("expired", &old_cert, &old_key);
    let ca_line = |extra: &str| format!("upstream_tls = {{ ca = \"{}\"{extra} }}", ca_file.display());
    let body = [
        https_flow("good", good.port, &ca_line("")),
        https_flow("named", good.port, &ca_line(", sni = \"api.internal\"")),
        https_flow("untrusted", good.port, ""),
        https_flow("mismatch", good.port, &ca_line(", sni = \"other.internal\"")),
        https_flow("expired", expired.port, &ca_line("")),
    ]
    .concat();
    let serve = Serve::start(BIN, dir.path(), "", &body);
    let client = reqwest::Client::builder().no_proxy().build().expect("client");
    let get = |flow: &str| {
        let request = client.get(serve.url("/x")).header("host", format!("{flow}.test"));
        async move {
            let response = request.send().await.expect("request");
            let status = response.status().as_u16();
            (status, response.text().await.expect("body"))
        }
    };

    assert_eq!(get("good").await, (200, "good over TLS: /x".to_string()), "verified against the IP address in the certificate");
    assert_eq!(get("named").await, (200, "good over TLS: /x".to_string()), "verified against upstream_tls.sni");
    // `untrusted` asks the same backend after `good` did: the pooled connection `good`'s CA verified must
    // not be reused by a flow that does not trust that CA.
    for (flow, reason, says) in [
        ("untrusted", "unknown_ca", "does not trust"),
        ("mismatch", "name_mismatch", "not issued for the name"),
        ("expired", "certificate_expired", "has expired"),
    ] {
        let (status, body) = get(flow).await;
        let answer: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|_| panic!("{flow}: not JSON: {status} {body}\n{}", serve.log()));
        assert_eq!((status, answer["error"].as_str()), (502, Some("upstream_tls")), "{flow}: {body}");
        assert!(answer["message"].as_str().is_some_and(|m| m.contains(says)), "{flow}: {body}");
        let metrics =
            client.get(serve.admin_url("/metrics")).bearer_auth(serve.token()).send().await.expect("metrics").text().await.expect("text");
        let line = format!("leannodes_upstream_tls_failures_total{{flow=\"{flow}\",reason=\"{reason}\"}} 1");
        assert!(metrics.contains(&line), "{line} in\n{metrics}");
    }
    // The failures touched nothing else.
    assert_eq!(get("good").await.0, 200);
    assert!(read_log(&dir.path().join("start.log")).is_empty(), "no process node was involved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h2_upstream_that_resets_its_streams_gets_a_502_and_other_flows_go_on() {
    let dir = workdir();
    let port = free_port();
    let mut resetting = Command::new(python())
        .arg(support("h2/resetting_server.py"))
        .args(["--port", &port.to_string()])
        .spawn()
        .expect("start the resetting HTTP/2 server");
    assert_eventually!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(), "the HTTP/2 server listens");
    let ca = TestCa::new("backend CA");
    let (cert, key) = ca.issue(&["127.0.0.1"]).write(dir.path(), "good");
    let ca_file = ca.write(&dir.path().join("ca.pem"));
    let good = HttpsBackend::start("good", &cert, &key);
    let body = [
        format!("\n[[flow]]\nname = \"resets\"\nhosts = [\"resets.test\"]\nupstream = \"127.0.0.1:{port}\"\nupstream_protocol = \"h2c\"\n"),
        https_flow("good", good.port, &format!("upstream_tls = {{ ca = \"{}\" }}", ca_file.display())),
    ]
    .concat();
    let serve = Serve::start(BIN, dir.path(), "", &body);
    let client = reqwest::Client::builder().no_proxy().build().expect("client");
    for i in 0..3 {
        let response = client.get(serve.url(&format!("/r/{i}"))).header("host", "resets.test").send().await.expect("request");
        assert_eq!(response.status(), 502, "a reset stream is the upstream's error");
        // The connection closes after an error answer, and the answer says so: a client's keep-alive pool
        // must not send its next request into the closing socket.
        assert_eq!(response.headers().get("connection").and_then(|v| v.to_str().ok()), Some("close"));
        let answer: serde_json::Value = response.json().await.expect("JSON error");
        assert_eq!(answer["error"], "upstream_error", "{answer}");
        let good = client.get(serve.url("/ok")).header("host", "good.test").send().await.expect("request");
        assert_eq!(good.text().await.expect("body"), "good over TLS: /ok", "the other flow is served in between");
    }
    assert_eventually!(serve.log().contains("flow=\"resets\""), "the failures are in the access log");
    let _ = resetting.kill();
    let _ = resetting.wait();
}
