//! The Kubernetes driver through the real kube-rs client against the Kubernetes API simulator
//! (`tests/kube-sim`, pods are real processes). A simulator proves the protocol and the driver's logic;
//! behaviour of a real cluster (scheduling, image pulls, networking) is only injected.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use leannodes_config::Workload;
use leannodes_drivers::kubernetes::REPLICAS_ANNOTATION;
use leannodes_drivers::{Driver, KubernetesDriver, Readiness};
use leannodes_harness::{assert_eventually, http_get};
use leannodes_kube_sim::fixtures::{deployment, service};
use leannodes_kube_sim::{Sim, SimOptions};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_leannodes");

struct Cluster {
    sim: Sim,
    driver: Arc<KubernetesDriver>,
    _dir: tempfile::TempDir,
}

/// A simulator seeded with `objects`, a folder, and the path of a kubeconfig for it.
async fn sim_with(objects: Vec<Value>) -> (Sim, tempfile::TempDir, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let sim = Sim::start(listener, SimOptions { backend_bin: BIN.into() }).await.expect("sim");
    sim.seed(objects).expect("seed");
    let dir = leannodes_harness::workdir();
    let path = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&path).expect("kubeconfig");
    (sim, dir, path.display().to_string())
}

async fn cluster(objects: Vec<Value>) -> Cluster {
    let (sim, dir, path) = sim_with(objects).await;
    let kubeconfig = kube::config::Kubeconfig::read_from(&path).expect("read kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default()).await.expect("config");
    let client = kube::Client::try_from(config).expect("client");
    let driver = Arc::new(KubernetesDriver::start(client).await);
    Cluster { sim, driver, _dir: dir }
}

fn workload(kind: &str, name: &str, extra: &str) -> Arc<Workload> {
    let text = format!(
        "[server]\ndriver = \"kubernetes\"\n\n[[flow]]\nname = \"f\"\nhosts = [\"f.test\"]\nupstream = \"10.0.0.1:80\"\n\n  [[flow.node]]\n  name = \"{name}\"\n  kind = \"{kind}\"\n  ref = \"default/{name}\"\n{extra}"
    );
    let config = leannodes_config::parse_toml(&text, "k.toml", std::path::Path::new(".")).unwrap_or_else(|d| panic!("{d}"));
    config.flows[0].nodes[0].workload.clone()
}

async fn settle(driver: &Arc<KubernetesDriver>, w: &Arc<Workload>) -> Readiness {
    let events: Vec<Readiness> =
        tokio::time::timeout(Duration::from_secs(20), driver.readiness(w).collect()).await.expect("readiness in time");
    events.last().cloned().expect("a final event")
}

/// One flow `api` whose only node is the Deployment `default/api`.
const API_FLOW: &str = "\n[[flow]]\nname = \"api\"\nhosts = [\"127.0.0.1\"]\nupstream = \"api\"\n\n  [[flow.node]]\n  name = \"api\"\n  kind = \"deployment\"\n  ref = \"default/api\"\n  port = 8080\n";

/// A GET on the simulator, as JSON.
async fn sim_get(sim: &Sim, path: &str) -> Value {
    reqwest::get(format!("http://{}{path}", sim.addr)).await.expect("get").json().await.expect("json")
}

async fn stats(sim: &Sim) -> Value {
    sim_get(sim, "/sim/stats").await
}

async fn spec_and_annotation(sim: &Sim, name: &str) -> (i64, Option<String>) {
    let d = sim_get(sim, &format!("/apis/apps/v1/namespaces/default/deployments/{name}")).await;
    (d["spec"]["replicas"].as_i64().unwrap_or(-1), d["metadata"]["annotations"][REPLICAS_ANNOTATION].as_str().map(str::to_string))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_wakes_through_its_scale_subresource_and_is_ready_by_its_endpoints() {
    let c = cluster(vec![deployment("api", 0, json!({})), service("api")]).await;
    let w = workload("deployment", "api", "  port = 8080\n");
    assert!(!c.driver.is_running(&w));
    c.driver.wake(&w).await.expect("wake");
    c.driver.wake(&w).await.expect("a second wake while scaling does not scale again");
    let events: Vec<Readiness> = tokio::time::timeout(Duration::from_secs(20), c.driver.readiness(&w).collect()).await.expect("in time");
    let at = |wanted: &Readiness| events.iter().position(|e| e == wanted);
    assert!(at(&Readiness::Scheduled) < at(&Readiness::Ready) && at(&Readiness::Scheduled).is_some(), "scheduled, then ready: {events:?}");
    assert_eq!(events.iter().filter(|e| **e == Readiness::Scheduled).count(), 1, "{events:?}");
    assert_eq!(stats(&c.sim).await["scale_requests"]["default/deployment/api"], 1, "exactly one scale request");
    let endpoints = c.driver.endpoints(&w).expect("a live endpoint set").load();
    assert_eq!(endpoints.len(), 1);
    assert_eq!(http_get(endpoints[0], "/x").map(|r| r.1), Some("api GET /x\n".into()), "ready means an address accepts");
    assert!(c.driver.is_running(&w));

    // Someone scales it to 2; a drain records 2, the next wake restores 2.
    let client = reqwest::Client::new();
    client
        .patch(format!("http://{}/apis/apps/v1/namespaces/default/deployments/api/scale", c.sim.addr))
        .header("content-type", "application/merge-patch+json")
        .body(r#"{"spec":{"replicas":2}}"#)
        .send()
        .await
        .expect("scale");
    c.driver.drain(&w).await.expect("drain");
    assert_eq!(spec_and_annotation(&c.sim, "api").await, (0, Some("2".into())));
    c.driver.wake(&w).await.expect("wake again");
    assert_eq!(spec_and_annotation(&c.sim, "api").await.0, 2, "the recorded replica count is restored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_replica_count_overrides_the_recorded_one() {
    let c = cluster(vec![deployment("web", 0, json!({})), service("web")]).await;
    let w = workload("deployment", "web", "  port = 8080\n  replicas = 3\n");
    c.driver.wake(&w).await.expect("wake");
    assert_eq!(spec_and_annotation(&c.sim, "web").await.0, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_pull_failure_fails_the_wake_fast_with_the_reason() {
    let c = cluster(vec![deployment("broken", 0, json!({"kube-sim.leannodes.io/fail": "image-pull"})), service("broken")]).await;
    let w = workload("deployment", "broken", "  port = 8080\n");
    c.driver.wake(&w).await.expect("wake");
    // Without the waiting reason, the pod would stay pending and the readiness stream would not end.
    let Readiness::Failed(failure) = settle(&c.driver, &w).await else { panic!("should fail") };
    assert!(failure.message.contains("ImagePullBackOff"), "{}", failure.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workload_without_a_service_is_ready_by_its_ready_replicas() {
    let c = cluster(vec![deployment("worker", 0, json!({}))]).await;
    let w = workload("deployment", "worker", "");
    c.driver.wake(&w).await.expect("wake");
    assert_eq!(settle(&c.driver, &w).await, Readiness::Ready);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_job_wake_creates_a_fresh_job_from_the_suspended_template() {
    let template = json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "migrate", "namespace": "default"},
        "spec": {"suspend": true, "template": {"metadata": {}, "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "leannodes", "args": ["demo-backend", "--port", "9", "--exit-after", "0s", "--exit-code", "0"]}]}}},
    });
    let c = cluster(vec![template]).await;
    let w = workload("job", "migrate", "");
    for round in 1..=2 {
        c.driver.wake(&w).await.expect("wake");
        assert_eq!(settle(&c.driver, &w).await, Readiness::Ready, "round {round}");
        assert_eq!(stats(&c.sim).await["jobs_created"], round);
    }
    let jobs = sim_get(&c.sim, "/apis/batch/v1/namespaces/default/jobs?labelSelector=leannodes.io%2Fjob-template%3Dmigrate").await;
    assert_eq!(jobs["items"].as_array().map(Vec::len), Some(2), "two generated jobs, the template untouched");
}

fn statefulset(name: &str) -> Value {
    let mut s = deployment(name, 0, json!({}));
    s["kind"] = json!("StatefulSet");
    s["spec"]["serviceName"] = json!(name);
    s
}

fn job_template(name: &str) -> Value {
    json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"suspend": true, "template": {"metadata": {}, "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "leannodes", "args": ["demo-backend", "--port", "9", "--exit-after", "0s", "--exit-code", "0"]}]}}},
    })
}

const CHAIN: &str = r#"
[[flow]]
name = "shop"
hosts = ["127.0.0.1"]
upstream = "api"

  [[flow.node]]
  name = "db"
  kind = "deployment"
  ref = "default/db"
  port = 8080

  [[flow.node]]
  name = "cache"
  kind = "statefulset"
  ref = "default/cache"
  port = 8080
  after = ["db"]

  [[flow.node]]
  name = "migrate"
  kind = "job"
  ref = "default/migrate"
  after = ["cache"]

  [[flow.node]]
  name = "api"
  kind = "deployment"
  ref = "default/api"
  port = 8080
  after = ["migrate"]
"#;

async fn chain_cluster(api_annotations: Value) -> (Sim, tempfile::TempDir, String) {
    sim_with(vec![
        deployment("db", 0, json!({})),
        service("db"),
        statefulset("cache"),
        service("cache"),
        job_template("migrate"),
        deployment("api", 0, api_annotations),
        service("api"),
    ])
    .await
}

fn proxy_client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(60)).build().expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_kubernetes_flow_answers_the_first_request_with_the_real_body() {
    let (sim, dir, kubeconfig) = chain_cluster(json!({})).await;
    let serve = leannodes_harness::Serve::start_with_env(BIN, dir.path(), "driver = \"kubernetes\"", CHAIN, &[("KUBECONFIG", &kubeconfig)]);
    let quick = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(15)).build().expect("client");
    let response = quick.get(serve.url("/orders")).send().await.unwrap_or_else(|e| panic!("{e}\n{}", serve.log()));
    assert_eq!(response.status(), 200, "{}", serve.log());
    assert!(response.headers().contains_key("x-leannodes-cold-start"));
    assert_eq!(response.text().await.expect("body"), "api GET /orders\n");
    let s = stats(&sim).await;
    for workload in ["default/deployment/db", "default/statefulset/cache", "default/deployment/api"] {
        assert_eq!(s["scale_requests"][workload], 1, "one scale request for {workload}: {s}");
    }
    assert_eq!(s["jobs_created"], 1);
    // Each Deployment's and StatefulSet's cold start has its scheduling stage; the Job has none.
    let metrics = proxy_client()
        .get(serve.admin_url("/metrics"))
        .bearer_auth(serve.token())
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for node in ["db", "cache", "api"] {
        let series = format!("leannodes_wake_stage_seconds_count{{flow=\"shop\",node=\"{node}\",stage=\"scheduled\"}} 1");
        assert!(metrics.contains(&series), "{series} in:\n{metrics}");
    }
    assert!(!metrics.contains("node=\"migrate\",stage=\"scheduled\""), "{metrics}");

    // Drain: every workload back to zero, the recorded replicas kept for the next wake.
    proxy_client().post(serve.admin_url("/api/v1/flows/shop/drain")).bearer_auth(serve.token()).send().await.expect("drain");
    for name in ["db", "api"] {
        assert_eq!(spec_and_annotation(&sim, name).await, (0, Some("1".into())), "{name} drained");
    }
    let again = proxy_client().get(serve.url("/again")).send().await.expect("request");
    assert_eq!(again.text().await.expect("body"), "api GET /again\n");
    let s = stats(&sim).await;
    assert_eq!(s["scale_requests"]["default/deployment/api"], 3, "wake, drain, wake: {s}");
    assert_eq!(s["jobs_created"], 2, "one job per wake");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_pull_failure_answers_cold_start_failed_with_the_reason() {
    let (_sim, dir, kubeconfig) = chain_cluster(json!({"kube-sim.leannodes.io/fail": "image-pull"})).await;
    let serve = leannodes_harness::Serve::start_with_env(BIN, dir.path(), "driver = \"kubernetes\"", CHAIN, &[("KUBECONFIG", &kubeconfig)]);
    let quick = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(15)).build().expect("client");
    let response = quick.get(serve.url("/")).send().await.unwrap_or_else(|e| panic!("{e}\n{}", serve.log()));
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"], "cold_start_failed");
    assert_eq!(body["node"], "api");
    assert_eq!(body["reason"], "ImagePullBackOff");
    assert!(body["message"].as_str().unwrap_or_default().contains("ImagePullBackOff"), "{body}");
    let metrics = proxy_client()
        .get(serve.admin_url("/metrics"))
        .bearer_auth(serve.token())
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("leannodes_wake_failures_total{flow=\"shop\",node=\"api\",reason=\"ImagePullBackOff\"} 1"), "{metrics}");
    let history: Value = proxy_client()
        .get(serve.admin_url("/api/v1/flows/shop/executions"))
        .bearer_auth(serve.token())
        .send()
        .await
        .expect("history")
        .json()
        .await
        .expect("json");
    let api_step = &history["items"][0]["steps"][3];
    assert!(api_step["reason"].as_str().unwrap_or_default().contains("ImagePullBackOff"), "{api_step}");
    let api_ready = api_step["requested_ms"].as_i64().unwrap_or(0);
    let api_failed = api_step["failed_ms"].as_i64().unwrap_or(i64::MAX);
    assert!(api_failed - api_ready < 2_000, "the failure ended the wake within 2 s of the node's start");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_replaced_while_awake_moves_traffic_without_a_failed_request() {
    let (sim, dir, kubeconfig) = sim_with(vec![deployment("api", 0, json!({})), service("api")]).await;
    let flow = API_FLOW;
    let serve = leannodes_harness::Serve::start_with_env(BIN, dir.path(), "driver = \"kubernetes\"", flow, &[("KUBECONFIG", &kubeconfig)]);
    let client = proxy_client();
    assert_eq!(client.get(serve.url("/")).send().await.expect("wake").status(), 200);

    let pods = sim_get(&sim, "/api/v1/namespaces/default/pods?labelSelector=app%3Dapi").await;
    let old = pods["items"][0]["metadata"]["name"].as_str().expect("pod").to_string();
    let old_ip = pods["items"][0]["status"]["podIP"].as_str().expect("ip").to_string();
    let load = tokio::spawn({
        let (client, url) = (client.clone(), serve.url("/during"));
        async move {
            let mut failures = Vec::new();
            let started = Instant::now();
            let mut ok = 0;
            while started.elapsed() < Duration::from_secs(3) {
                match client.get(&url).send().await {
                    Ok(r) if r.status() == 200 => ok += 1,
                    Ok(r) => failures.push(format!("{} {}", r.status(), r.text().await.unwrap_or_default())),
                    Err(e) => failures.push(e.to_string()),
                }
            }
            (ok, failures)
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let deleted =
        reqwest::Client::new().delete(format!("http://{}/api/v1/namespaces/default/pods/{old}", sim.addr)).send().await.expect("delete");
    assert_eq!(deleted.status(), 200);
    let (ok, failures) = load.await.expect("join");
    assert!(failures.is_empty(), "failed requests while the pod was replaced: {failures:?}");
    assert!(ok > 10, "the load ran ({ok})");
    let pods = sim_get(&sim, "/api/v1/namespaces/default/pods?labelSelector=app%3Dapi").await;
    let new_ip = pods["items"][0]["status"]["podIP"].as_str().expect("ip").to_string();
    assert_ne!(new_ip, old_ip, "traffic now goes to the replacement pod");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_autoscaler_on_a_node_workload_is_reported_not_fought() {
    let hpa = json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "api-hpa", "namespace": "default"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"}, "minReplicas": 1, "maxReplicas": 3},
    });
    let keda = json!({
        "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
        "metadata": {"name": "api-keda", "namespace": "default"},
        "spec": {"scaleTargetRef": {"name": "api"}},
    });
    let (sim, dir, kubeconfig) = sim_with(vec![deployment("api", 0, json!({})), service("api"), hpa, keda]).await;
    let flow = API_FLOW;

    // In `validate`, when the cluster is reachable.
    let config = dir.path().join("check.toml");
    std::fs::write(&config, format!("[server]\ndriver = \"kubernetes\"\n{flow}")).expect("write");
    let out = std::process::Command::new(BIN).args(["validate"]).arg(&config).env("KUBECONFIG", &kubeconfig).output().expect("validate");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "a warning is not an error: {stdout}");
    assert!(
        stdout.contains("warning: node `api` of flow `api`: HorizontalPodAutoscaler default/api-hpa also scales Deployment api"),
        "{stdout}"
    );
    assert!(stdout.contains("KEDA ScaledObject default/api-keda also scales Deployment api"), "{stdout}");

    // And in the flows API of a running server.
    let serve = leannodes_harness::Serve::start_with_env(BIN, dir.path(), "driver = \"kubernetes\"", flow, &[("KUBECONFIG", &kubeconfig)]);
    let mut warnings = Vec::new();
    for _ in 0..100 {
        let flows: Value = proxy_client()
            .get(serve.admin_url("/api/v1/flows"))
            .bearer_auth(serve.token())
            .send()
            .await
            .expect("flows")
            .json()
            .await
            .expect("json");
        warnings = flows["flows"][0]["nodes"][0]["warnings"].as_array().cloned().unwrap_or_default();
        if warnings.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    // Not fought: the wake still scales the workload, once.
    assert_eq!(proxy_client().get(serve.url("/")).send().await.expect("wake").status(), 200);
    assert_eq!(stats(&sim).await["scale_requests"]["default/deployment/api"], 1);
}

fn flow_resource(name: &str, upstream: &str) -> Value {
    json!({
        "apiVersion": "leannodes.io/v1alpha1", "kind": "Flow",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"hosts": [format!("{name}.test")], "upstream": upstream, "node": [{"name": "api", "kind": "deployment", "ref": "default/api", "port": 8080}]},
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flows_from_flow_resources_serve_and_report_their_status() {
    let (sim, dir, kubeconfig) =
        sim_with(vec![deployment("api", 0, json!({})), service("api"), flow_resource("shop", "api"), flow_resource("broken", "nowhere")])
            .await;
    let serve = leannodes_harness::Serve::start_with_env(
        BIN,
        dir.path(),
        "driver = \"kubernetes\"\nflows_from = [\"crd\"]",
        "",
        &[("KUBECONFIG", &kubeconfig)],
    );
    let client = proxy_client();
    let status = |name: &'static str| {
        let sim = &sim;
        async move { sim_get(sim, &format!("/apis/leannodes.io/v1alpha1/namespaces/default/flows/{name}")).await["status"].clone() }
    };
    // The resource flow is applied once the watch has listed it.
    let mut body = String::new();
    for _ in 0..200 {
        let r = client.get(serve.url("/orders")).header("host", "shop.test").send().await.expect("request");
        if r.status() == 200 {
            body = r.text().await.expect("body");
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(body, "api GET /orders\n", "{}", serve.log());
    let mut shop = json!({});
    for _ in 0..100 {
        shop = status("shop").await;
        if shop["state"] == "awake" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(shop["state"], "awake", "{shop}");
    assert!(shop["lastWake"].as_str().is_some_and(|t| t.ends_with('Z') && t.contains('T')), "{shop}");
    assert_eq!(shop["conditions"][0]["type"], "Valid");
    assert_eq!(shop["conditions"][0]["status"], "True");

    // The invalid resource is not applied, and says why.
    let broken = status("broken").await;
    assert_eq!(broken["conditions"][0]["status"], "False", "{broken}");
    assert!(broken["conditions"][0]["message"].as_str().unwrap_or_default().contains("upstream \"nowhere\""), "{broken}");
    let r = client.get(serve.url("/")).header("host", "broken.test").send().await.expect("request");
    assert_eq!(r.status(), 404, "an invalid resource serves nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workload_scaled_to_zero_by_someone_else_is_woken_again_by_the_next_request() {
    let (sim, dir, kubeconfig) = sim_with(vec![deployment("api", 0, json!({})), service("api")]).await;
    let serve =
        leannodes_harness::Serve::start_with_env(BIN, dir.path(), "driver = \"kubernetes\"", API_FLOW, &[("KUBECONFIG", &kubeconfig)]);
    let client = proxy_client();
    assert_eq!(client.get(serve.url("/")).send().await.expect("wake").status(), 200);
    let scaled = reqwest::Client::new()
        .patch(format!("http://{}/apis/apps/v1/namespaces/default/deployments/api/scale", sim.addr))
        .header("content-type", "application/merge-patch+json")
        .body(r#"{"spec":{"replicas":0}}"#)
        .send()
        .await
        .expect("scale");
    assert_eq!(scaled.status(), 200);
    let state = wait_for_state(&serve, "api", "asleep").await;
    assert_eq!(state, "asleep", "the flow noticed its workload is gone");
    let response = client.get(serve.url("/back")).send().await.expect("request");
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-leannodes-cold-start"), "held while it woke again");
    assert_eq!(response.text().await.expect("body"), "api GET /back\n");
}

/// Polls the flow's state until it is `wanted` (or patience runs out); returns the last state seen.
async fn wait_for_state(serve: &leannodes_harness::Serve, flow: &str, wanted: &str) -> String {
    let client = proxy_client();
    let deadline = std::time::Instant::now() + leannodes_harness::patience();
    loop {
        let flows: Value = client
            .get(serve.admin_url("/api/v1/flows"))
            .bearer_auth(serve.token())
            .send()
            .await
            .expect("flows")
            .json()
            .await
            .expect("json");
        let state = flows["flows"]
            .as_array()
            .and_then(|f| f.iter().find(|f| f["name"] == flow))
            .and_then(|f| f["state"].as_str())
            .unwrap_or_default()
            .to_string();
        if state == wanted || std::time::Instant::now() > deadline {
            return state;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workload_deleted_while_its_flow_is_awake_puts_the_flow_to_sleep() {
    let (sim, dir, kubeconfig) = sim_with(vec![deployment("api", 0, json!({})), service("api")]).await;
    let serve =
        leannodes_harness::Serve::start_with_env(BIN, dir.path(), "driver = \"kubernetes\"", API_FLOW, &[("KUBECONFIG", &kubeconfig)]);
    let client = proxy_client();
    assert_eq!(client.get(serve.url("/")).send().await.expect("wake").status(), 200);
    assert_eq!(wait_for_state(&serve, "api", "awake").await, "awake");
    let deleted = reqwest::Client::new()
        .delete(format!("http://{}/apis/apps/v1/namespaces/default/deployments/api", sim.addr))
        .send()
        .await
        .expect("delete");
    assert_eq!(deleted.status(), 200);
    assert_eq!(wait_for_state(&serve, "api", "asleep").await, "asleep", "the flow noticed its workload was deleted");
    // Its pods went with it (the simulator collects orphans as the garbage collector does).
    assert_eventually!(
        sim_get(&sim, "/api/v1/namespaces/default/pods").await["items"].as_array().is_some_and(|p| p.is_empty()),
        "the deleted deployment's pods are gone"
    );
    // A request now finds nothing to wake, and says so instead of hanging.
    let response = client.get(serve.url("/again")).send().await.expect("request");
    assert_eq!(response.status(), 503);
    let answer: Value = response.json().await.expect("json");
    assert_eq!(answer["error"], "cold_start_failed", "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_requests_are_spread_over_the_ready_pods_and_never_exceed_max_concurrency() {
    let (_sim, dir, kubeconfig) = sim_with(vec![deployment("api", 0, json!({})), service("api")]).await;
    let flow = "\n[[flow]]\nname = \"api\"\nhosts = [\"127.0.0.1\"]\nupstream = \"api\"\nhold_timeout = \"60s\"\n\n  [[flow.node]]\n  name = \"api\"\n  kind = \"deployment\"\n  ref = \"default/api\"\n  port = 8080\n  replicas = 3\n  max_concurrency = 4\n";
    let serve = leannodes_harness::Serve::start_with_env(BIN, dir.path(), "driver = \"kubernetes\"", flow, &[("KUBECONFIG", &kubeconfig)]);
    let client = proxy_client();
    // 60 requests arrive while the flow sleeps; each keeps its pod busy for 200 ms once released.
    let requests: Vec<_> = (0..60)
        .map(|i| {
            let request = client.get(serve.url(&format!("/work/{i}?sleep_ms=200")));
            tokio::spawn(async move {
                let response = request.send().await.expect("request");
                let header =
                    |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string).unwrap_or_default();
                let (pid, in_flight) = (header("x-demo-pid"), header("x-demo-in-flight").parse::<usize>().unwrap_or(usize::MAX));
                (response.status().as_u16(), pid, in_flight, response.text().await.unwrap_or_default())
            })
        })
        .collect();
    let mut per_pod: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
    for (i, request) in requests.into_iter().enumerate() {
        let (status, pid, in_flight, body) = request.await.expect("task");
        assert_eq!((status, body), (200, format!("api GET /work/{i}?sleep_ms=200\n")), "{}", serve.log());
        let entry = per_pod.entry(pid).or_default();
        entry.0 += 1;
        entry.1 = entry.1.max(in_flight);
    }
    assert_eq!(per_pod.len(), 3, "every pod served some of the released requests: {per_pod:?}");
    for (pid, (served, peak)) in &per_pod {
        assert!(*peak <= 4, "pod {pid} had {peak} requests at once, more than max_concurrency: {per_pod:?}");
        assert!(*served >= 8, "pod {pid} served only {served} of 60: {per_pod:?}");
    }
}

/// A `Flow` resource in `default` with this spec.
fn tenant_flow(name: &str, spec: Value) -> Value {
    json!({ "apiVersion": "leannodes.io/v1alpha1", "kind": "Flow", "metadata": {"name": name, "namespace": "default"}, "spec": spec })
}

/// A Deployment node of a tenant flow.
fn tenant_node(reference: &str) -> Value {
    json!({ "name": "api", "kind": "deployment", "ref": reference, "port": 8080 })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flow_resources_cannot_run_processes_reach_other_namespaces_or_take_over_bindings() {
    let hosts = |h: &str| json!([h]);
    let objects = vec![
        deployment("api", 0, json!({})),
        service("api"),
        // `ref = "api"` means the resource's own namespace.
        tenant_flow("good", json!({ "hosts": hosts("good.test"), "upstream": "api", "node": [tenant_node("api")] })),
        tenant_flow(
            "process",
            json!({ "hosts": hosts("process.test"), "upstream": "api",
                    "node": [tenant_node("api"), { "name": "sh", "kind": "process", "command": ["sh", "-c", "id"] }] }),
        ),
        tenant_flow("cross", json!({ "hosts": hosts("cross.test"), "upstream": "api", "node": [tenant_node("kube-system/coredns")] })),
        tenant_flow("literal", json!({ "hosts": hosts("literal.test"), "upstream": "127.0.0.1:9090", "node": [tenant_node("api")] })),
        tenant_flow(
            "probe",
            json!({ "hosts": hosts("probe.test"), "upstream": "api",
                    "node": [{ "name": "api", "kind": "deployment", "ref": "api", "port": 8080, "ready": { "exec": ["sh", "-c", "true"] } }] }),
        ),
        tenant_flow("takeover", json!({ "hosts": hosts("platform.test"), "upstream": "api", "node": [tenant_node("api")] })),
        tenant_flow("rename", json!({ "name": "platform", "hosts": hosts("other.test"), "upstream": "api", "node": [tenant_node("api")] })),
    ];
    let (sim, dir, kubeconfig) = sim_with(objects).await;
    // The platform team's own flow, in the file.
    let platform = leannodes_harness::DemoNode::new("platform-web");
    let file_flow = format!(
        "\n[[flow]]\nname = \"platform\"\nhosts = [\"platform.test\"]\nupstream = \"platform-web\"\n{}",
        platform.toml(BIN, dir.path())
    );
    let serve = leannodes_harness::Serve::start_with_env(
        BIN,
        dir.path(),
        "driver = \"kubernetes\"\nflows_from = [\"file\", \"crd\"]",
        &file_flow,
        &[("KUBECONFIG", &kubeconfig)],
    );
    let condition = |name: &'static str| {
        let sim = &sim;
        async move {
            let status = sim_get(sim, &format!("/apis/leannodes.io/v1alpha1/namespaces/default/flows/{name}")).await["status"].clone();
            (
                status["conditions"][0]["status"].as_str().unwrap_or_default().to_string(),
                status["conditions"][0]["message"].as_str().unwrap_or_default().to_string(),
            )
        }
    };
    let mut good = (String::new(), String::new());
    for _ in 0..200 {
        good = condition("good").await;
        if good.0 == "True" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(good.0, "True", "{}", serve.log());
    for (name, expected) in [
        ("process", "may not run local processes"),
        ("cross", "may only use workloads of its own namespace"),
        ("literal", "must send its traffic to one of its own nodes"),
        ("probe", "may not use exec probes"),
        ("takeover", "both bind host \"platform.test\""),
        ("rename", "duplicate flow name `platform`"),
    ] {
        // Each resource's status is written on its own (a first write may predate the check that
        // refuses it); wait for this one's verdict.
        let mut answer = condition(name).await;
        for _ in 0..200 {
            if answer.0 == "False" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            answer = condition(name).await;
        }
        let (status, message) = answer;
        assert_eq!(status, "False", "{name} refused");
        assert!(message.contains(expected), "{name}: {message}");
    }
    let client = proxy_client();
    let served = client.get(serve.url("/x")).header("host", "good.test").send().await.expect("good");
    assert_eq!(served.text().await.expect("body"), "api GET /x\n", "the tenant's own flow serves");
    let platform_answer = client.get(serve.url("/y")).header("host", "platform.test").send().await.expect("platform");
    assert_eq!(platform_answer.text().await.expect("body"), "platform-web GET /y\n", "the platform's binding is untouched");
    for host in ["cross.test", "literal.test", "process.test"] {
        assert_eq!(client.get(serve.url("/")).header("host", host).send().await.expect("refused").status(), 404, "{host} serves nothing");
    }
    let flows: Value = client
        .get(serve.admin_url("/api/v1/flows?source=resource"))
        .bearer_auth(serve.token())
        .send()
        .await
        .expect("flows")
        .json()
        .await
        .expect("json");
    assert_eq!(flows["flows"][0]["name"], "good");
    assert_eq!(flows["flows"][0]["namespace"], "default");
    // The workloads view: what the flows use, with what the cluster says of it.
    let workloads: Value = client
        .get(serve.admin_url("/api/v1/workloads"))
        .bearer_auth(serve.token())
        .send()
        .await
        .expect("workloads")
        .json()
        .await
        .expect("json");
    let api =
        workloads["workloads"].as_array().and_then(|w| w.iter().find(|w| w["id"] == "deployment/default/api")).cloned().unwrap_or_default();
    assert_eq!(api["used_by"], json!(["good/api"]), "{workloads}");
    assert_eq!(api["kind"], "deployment");
    assert!(api["replicas"].as_i64() >= Some(1) && api["ready_replicas"].is_i64(), "the cluster's counts: {api}");
    assert!(workloads["cluster_error"].is_null(), "{workloads}");

    // A newer resource that collides with one already serving is the one refused.
    let newer = tenant_flow("aaa-newer", json!({ "hosts": hosts("good.test"), "upstream": "api", "node": [tenant_node("api")] }));
    let created = reqwest::Client::new()
        .post(format!("http://{}/apis/leannodes.io/v1alpha1/namespaces/default/flows", sim.addr))
        .json(&newer)
        .send()
        .await
        .expect("create");
    assert!(created.status().is_success());
    let mut newer_status = (String::new(), String::new());
    for _ in 0..200 {
        newer_status = condition("aaa-newer").await;
        if !newer_status.0.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(newer_status.0, "False", "{newer_status:?}");
    assert!(newer_status.1.contains("both bind host \"good.test\""), "{}", newer_status.1);
    assert_eq!(condition("good").await.0, "True", "the running flow keeps its binding");
    assert_eq!(
        client.get(serve.url("/z")).header("host", "good.test").send().await.expect("good").text().await.expect("body"),
        "api GET /z\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_managed_version_naming_a_missing_workload_is_refused() {
    let (_sim, dir, kubeconfig) = sim_with(vec![deployment("api", 0, json!({})), service("api")]).await;
    let serve = leannodes_harness::Serve::start_with_env(BIN, dir.path(), "driver = \"kubernetes\"", "", &[("KUBECONFIG", &kubeconfig)]);
    let client = proxy_client();
    let call = |method: reqwest::Method, path: &str, body: Value| {
        client.request(method, serve.admin_url(path)).bearer_auth(serve.token()).json(&body).send()
    };
    let node = |name: &str| json!({ "name": name, "kind": "deployment", "ref": format!("default/{name}"), "port": 8080 });
    let spec = json!({ "hosts": ["127.0.0.1"], "upstream": "api", "node": [node("api"), node("gone")] });
    let created = call(reqwest::Method::POST, "/api/v1/flows", json!({ "name": "shop", "spec": spec })).await.expect("create");
    assert_eq!(created.status(), 201);
    let committed = call(reqwest::Method::POST, "/api/v1/flows/shop/draft/commit", json!({ "message": "v1" })).await.expect("commit");
    assert_eq!(committed.status(), 201);
    let refused = call(reqwest::Method::POST, "/api/v1/flows/shop/versions/1/activate", json!({})).await.expect("activate");
    assert_eq!(refused.status(), 422);
    let body: Value = refused.json().await.expect("json");
    assert_eq!(body["details"]["fields"][0]["path"], "/node/1/ref", "{body}");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("Deployment default/gone does not exist")), "{body}");
    let flows: Value =
        client.get(serve.admin_url("/api/v1/flows")).bearer_auth(serve.token()).send().await.expect("flows").json().await.expect("json");
    assert_eq!(flows["flows"], json!([]), "nothing was activated");
}
