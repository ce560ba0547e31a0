//! The `kube-sim` binary: seeded from YAML manifests, writes a kubeconfig, serves the seeded objects.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

fn get(addr: &str, path: &str) -> Option<String> {
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    text.split_once("\r\n\r\n").map(|(_, body)| body.to_string())
}

#[test]
fn the_binary_seeds_yaml_and_writes_a_kubeconfig() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
    let addr = format!("127.0.0.1:{port}");
    let dir = tempfile::tempdir().expect("dir");
    let kubeconfig = dir.path().join("kubeconfig");
    let seed = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/example-flow.yaml");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kube-sim"))
        .args(["--listen", &addr, "--seed", seed, "--backend-bin", "/bin/false", "--kubeconfig-out"])
        .arg(&kubeconfig)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start kube-sim");
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        // The API answers before the seed is loaded (404 until then), as a real API server would.
        if let Some(body) = get(&addr, "/apis/apps/v1/namespaces/shop/deployments/web").filter(|b| b.contains("\"kind\":\"Deployment\"")) {
            break body;
        }
        assert!(Instant::now() < deadline, "kube-sim did not come up");
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = child.kill();
    let _ = child.wait();
    let deployment: serde_json::Value = serde_json::from_str(body.trim()).expect("json");
    assert_eq!(deployment["spec"]["replicas"], 0);
    assert_eq!(deployment["metadata"]["namespace"], "shop");
    let config = std::fs::read_to_string(&kubeconfig).expect("kubeconfig");
    assert!(config.contains(&format!("server: http://{addr}")), "{config}");
}
