//! The Kubernetes API simulator (`tests/kube-sim`) behaves like the parts of the API server and the
//! controllers LeanNodes relies on, with pods as real `leannodes demo-backend` processes.

use std::time::Duration;

use leannodes_harness::{assert_eventually, http_get};
use leannodes_kube_sim::fixtures::{deployment, service};
use leannodes_kube_sim::{Sim, SimOptions};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_leannodes");

async fn sim() -> Sim {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    Sim::start(listener, SimOptions { backend_bin: BIN.into() }).await.expect("sim")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(30)).build().expect("client")
}

async fn get(sim: &Sim, path: &str) -> Value {
    client().get(format!("http://{}{path}", sim.addr)).send().await.expect("get").json().await.expect("json")
}

async fn merge_patch(sim: &Sim, path: &str, body: Value) -> reqwest::Response {
    client()
        .patch(format!("http://{}{path}", sim.addr))
        .header("content-type", "application/merge-patch+json")
        .body(body.to_string())
        .send()
        .await
        .expect("patch")
}

fn ready_endpoints(slice: &Value) -> Vec<String> {
    slice["endpoints"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter(|e| e["conditions"]["ready"] == true)
                .map(|e| e["addresses"][0].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_a_deployment_runs_real_pods_published_in_endpointslices() {
    let sim = sim().await;
    sim.seed(vec![deployment("api", 0, json!({})), service("api")]).expect("seed");
    let created =
        client().post(format!("http://{}/api/v1/namespaces/default/pods", sim.addr)).body("{\"metadata\": {}}").send().await.expect("post");
    assert_eq!(created.status(), 422, "a pod without a name is invalid");

    let scale = merge_patch(&sim, "/apis/apps/v1/namespaces/default/deployments/api/scale", json!({"spec": {"replicas": 1}})).await;
    assert_eq!(scale.status(), 200);
    assert_eq!(scale.json::<Value>().await.expect("scale")["spec"]["replicas"], 1);

    let mut endpoints = Vec::new();
    for _ in 0..500 {
        let slice = get(&sim, "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/api-sim").await;
        endpoints = ready_endpoints(&slice);
        if !endpoints.is_empty() {
            assert_eq!(slice["metadata"]["labels"]["kubernetes.io/service-name"], "api");
            assert_eq!(slice["ports"][0]["port"], 8080);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ip = endpoints.first().expect("a ready endpoint").clone();
    assert!(ip.starts_with("127.0.") && ip != "127.0.0.1", "each pod has its own loopback address: {ip}");
    let addr: std::net::SocketAddr = format!("{ip}:8080").parse().expect("addr");
    assert_eq!(http_get(addr, "/hello").map(|r| r.1), Some("api GET /hello\n".into()), "the pod is a real backend");
    let deployment = get(&sim, "/apis/apps/v1/namespaces/default/deployments/api").await;
    assert_eq!(deployment["status"]["readyReplicas"], 1);

    let stats = get(&sim, "/sim/stats").await;
    assert_eq!(stats["scale_requests"]["default/deployment/api"], 1);

    merge_patch(&sim, "/apis/apps/v1/namespaces/default/deployments/api/scale", json!({"spec": {"replicas": 0}})).await;
    assert_eventually!(
        std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_err(),
        "scaling to zero stops the process"
    );
    let pods = get(&sim, "/api/v1/namespaces/default/pods?labelSelector=app%3Dapi").await;
    assert_eq!(pods["items"].as_array().map(Vec::len), Some(0), "the pod is gone");
    assert_eq!(get(&sim, "/sim/stats").await["scale_requests"]["default/deployment/api"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_stream_changes_and_too_old_versions_are_gone() {
    let sim = sim().await;
    sim.seed(vec![deployment("web", 0, json!({}))]).expect("seed");
    let list = get(&sim, "/apis/apps/v1/namespaces/default/deployments").await;
    assert_eq!(list["kind"], "DeploymentList");
    let rv = list["metadata"]["resourceVersion"].as_str().expect("rv").to_string();

    let mut watch = client()
        .get(format!("http://{}/apis/apps/v1/namespaces/default/deployments?watch=true&resourceVersion={rv}&allowWatchBookmarks=true&timeoutSeconds=10", sim.addr))
        .send()
        .await
        .expect("watch");
    merge_patch(&sim, "/apis/apps/v1/namespaces/default/deployments/web", json!({"metadata": {"labels": {"tier": "front"}}})).await;
    let mut seen = String::new();
    while !(seen.contains("\"MODIFIED\"") && seen.contains("\"BOOKMARK\"")) {
        let chunk = tokio::time::timeout(Duration::from_secs(5), watch.chunk()).await.expect("in time").expect("chunk").expect("open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let modified: Value =
        seen.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).find(|e| e["type"] == "MODIFIED").expect("event");
    assert_eq!(modified["object"]["metadata"]["labels"]["tier"], "front");

    // Label selectors filter lists.
    assert_eq!(
        get(&sim, "/apis/apps/v1/namespaces/default/deployments?labelSelector=tier%3Dfront").await["items"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(
        get(&sim, "/apis/apps/v1/namespaces/default/deployments?labelSelector=tier%3Dback").await["items"].as_array().map(Vec::len),
        Some(0)
    );

    // After compaction, a watch from the old version gets 410 Gone and must list again.
    sim.store.compact();
    merge_patch(&sim, "/apis/apps/v1/namespaces/default/deployments/web", json!({"metadata": {"labels": {"tier": "back"}}})).await;
    let gone = client()
        .get(format!("http://{}/apis/apps/v1/namespaces/default/deployments?watch=true&resourceVersion={rv}", sim.addr))
        .send()
        .await
        .expect("watch")
        .text()
        .await
        .expect("text");
    let event: Value = serde_json::from_str(gone.lines().next().expect("one event")).expect("json");
    assert_eq!(event["type"], "ERROR");
    assert_eq!(event["object"]["code"], 410);

    // Optimistic concurrency.
    let mut stale = get(&sim, "/apis/apps/v1/namespaces/default/deployments/web").await;
    stale["metadata"]["resourceVersion"] = json!(rv);
    let conflict = client()
        .put(format!("http://{}/apis/apps/v1/namespaces/default/deployments/web", sim.addr))
        .body(stale.to_string())
        .send()
        .await
        .expect("put");
    assert_eq!(conflict.status(), 409);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_failures_show_in_pod_status() {
    let sim = sim().await;
    sim.seed(vec![
        deployment("pull", 1, json!({"kube-sim.leannodes.io/fail": "image-pull"})),
        deployment("crash", 1, json!({"kube-sim.leannodes.io/fail": "crash-loop"})),
        deployment("nowhere", 1, json!({"kube-sim.leannodes.io/fail": "unschedulable"})),
    ])
    .expect("seed");
    let reason = |pods: &Value, app: &str| -> String {
        pods["items"]
            .as_array()
            .and_then(|items| items.iter().find(|p| p["metadata"]["labels"]["app"] == app))
            .map(|p| {
                p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"]
                    .as_str()
                    .or_else(|| p["status"]["conditions"][0]["reason"].as_str())
                    .unwrap_or_default()
                    .to_string()
            })
            .unwrap_or_default()
    };
    let mut pods = json!({});
    for _ in 0..200 {
        pods = get(&sim, "/api/v1/namespaces/default/pods").await;
        if !reason(&pods, "pull").is_empty() && !reason(&pods, "crash").is_empty() && !reason(&pods, "nowhere").is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(reason(&pods, "pull"), "ImagePullBackOff");
    assert_eq!(reason(&pods, "crash"), "CrashLoopBackOff");
    assert_eq!(reason(&pods, "nowhere"), "Unschedulable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsuspended_jobs_run_to_completion() {
    let sim = sim().await;
    let job = json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "migrate", "namespace": "default"},
        "spec": {"template": {"metadata": {}, "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "leannodes", "args": ["demo-backend", "--port", "9", "--exit-after", "0s", "--exit-code", "0"]}]}}},
    });
    let created = client()
        .post(format!("http://{}/apis/batch/v1/namespaces/default/jobs", sim.addr))
        .body(job.to_string())
        .send()
        .await
        .expect("post");
    assert_eq!(created.status(), 201);
    let mut status = json!({});
    for _ in 0..500 {
        status = get(&sim, "/apis/batch/v1/namespaces/default/jobs/migrate").await["status"].clone();
        if status["succeeded"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status["conditions"][0]["type"], "Complete", "{status}");
    assert_eq!(get(&sim, "/sim/stats").await["jobs_created"], 1);
}
