//! Three `leannodes serve` replicas sharing one store (the real Postgres server, or a real
//! DynamoDB-protocol server) and one Kubernetes API simulator whose pods are real processes: exactly
//! one wake per cold start, drains only by the leader, activity merged across replicas, and a wake
//! that survives the `kill -9` of the replica running it.

use std::time::Duration;

use leannodes_harness::receiver::Receiver;
use leannodes_harness::stores::{Moto, TestPostgres};
use leannodes_harness::{Serve, assert_eventually};
use leannodes_kube_sim::fixtures::service;
use leannodes_kube_sim::{Sim, SimOptions};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_leannodes");
const HOST: &str = "shop.test";
const NODES: [&str; 3] = ["db", "api", "web"];

/// The shared store of one test and the environment replicas need to reach it.
struct SharedStore {
    url: String,
    env: Vec<(&'static str, &'static str)>,
    _guard: Box<dyn std::any::Any>,
}

fn postgres() -> SharedStore {
    let db = TestPostgres::create();
    SharedStore { url: db.url.clone(), env: vec![], _guard: Box::new(db) }
}

fn dynamodb() -> SharedStore {
    let moto = Moto::start();
    SharedStore { url: moto.url("leannodes"), env: Moto::ENV.to_vec(), _guard: Box::new(moto) }
}

/// A Deployment whose pods listen after `startup` (so a wake takes a while), scaled to zero.
fn deployment(name: &str, startup: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": "leannodes",
                    "args": ["demo-backend", "--port", "8080", "--name", name, "--startup-delay", startup],
                    "ports": [{"containerPort": 8080}]}]},
            },
        },
    })
}

/// A suspended Job template whose runs finish after `run`.
fn job_template(name: &str, run: &str) -> Value {
    json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"suspend": true, "template": {"metadata": {}, "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "leannodes",
            "args": ["demo-backend", "--port", "9", "--exit-after", run, "--exit-code", "0"]}]}}},
    })
}

/// The flow `shop`: the Job `migrate`, then db → api → web, all Deployments of the simulator.
fn flow(settings: &str) -> String {
    let mut out = format!("\n[[flow]]\nname = \"shop\"\nhosts = [\"{HOST}\"]\nupstream = \"web\"\n{settings}\n");
    out.push_str("\n  [[flow.node]]\n  name = \"migrate\"\n  kind = \"job\"\n  ref = \"default/migrate\"\n");
    for (i, node) in NODES.iter().enumerate() {
        let before = if i > 0 { NODES[i - 1] } else { "migrate" };
        out.push_str(&format!(
            "\n  [[flow.node]]\n  name = \"{node}\"\n  kind = \"deployment\"\n  ref = \"default/{node}\"\n  port = 8080\n  after = [\"{before}\"]\n"
        ));
    }
    out
}

struct Replicas {
    sim: Sim,
    replicas: Vec<Serve>,
    _dir: tempfile::TempDir,
    _store: SharedStore,
}

/// A simulator with the three Deployments (pods listening after `startup`) and three replicas on `store`;
/// `tail` is appended to the configuration (e.g. `[[notification]]` routes).
async fn replicas(store: SharedStore, startup: &str, server: &str, settings: &str, tail: &str) -> Replicas {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let sim = Sim::start(listener, SimOptions { backend_bin: BIN.into() }).await.expect("sim");
    let mut objects = vec![job_template("migrate", "300ms")];
    for node in NODES {
        objects.push(deployment(node, startup));
        objects.push(service(node));
    }
    sim.seed(objects).expect("seed");
    let dir = leannodes_harness::workdir();
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let kubeconfig = kubeconfig.display().to_string();
    let mut env = store.env.clone();
    env.push(("KUBECONFIG", kubeconfig.as_str()));
    let body = format!("{}\n{tail}", flow(settings));
    let replicas = ["a", "b", "c"]
        .iter()
        .map(|id| {
            let home = dir.path().join(id);
            std::fs::create_dir_all(&home).expect("replica folder");
            let extra = format!("driver = \"kubernetes\"\nstore = \"{}\"\nreplica_id = \"{id}\"\n{server}", store.url);
            Serve::start_with_env(BIN, &home, &extra, &body, &env)
        })
        .collect();
    Replicas { sim, replicas, _dir: dir, _store: store }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(60)).pool_max_idle_per_host(0).build().expect("client")
}

async fn stats(sim: &Sim) -> Value {
    client().get(format!("http://{}/sim/stats", sim.addr)).send().await.expect("stats").json().await.expect("json")
}

fn scale_requests(stats: &Value, node: &str) -> i64 {
    stats["scale_requests"][format!("default/deployment/{node}")].as_i64().unwrap_or(0)
}

async fn replicas_of(sim: &Sim, node: &str) -> i64 {
    let url = format!("http://{}/apis/apps/v1/namespaces/default/deployments/{node}", sim.addr);
    let d: Value = client().get(url).send().await.expect("get").json().await.expect("json");
    d["spec"]["replicas"].as_i64().unwrap_or(-1)
}

/// GET `path` through one replica's proxy: status and body (`None`: the connection failed).
async fn get(serve: &Serve, path: &str) -> Option<(u16, String)> {
    let response = client().get(serve.url(path)).header("host", HOST).header("accept", "application/json").send().await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.unwrap_or_default()))
}

async fn status(serve: &Serve) -> Value {
    client().get(serve.admin_url("/api/v1/status")).bearer_auth(serve.token()).send().await.expect("status").json().await.expect("json")
}

fn logs(r: &Replicas) -> String {
    r.replicas.iter().map(|s| s.log()).collect::<Vec<_>>().join("\n----\n")
}

async fn three_hundred_cold_requests_make_one_wake(store: SharedStore) {
    // Every replica has the route; the wake is told once, by the replica that ran it.
    let receiver = Receiver::start(vec![]);
    let route = format!(
        "[[notification]]\nname = \"ops\"\nkind = \"webhook\"\nurl = \"{}\"\nevents = [\"wake_started\", \"wake_succeeded\", \"wake_failed\"]\n",
        receiver.url("/ops")
    );
    let r = replicas(store, "300ms", "", "", &route).await;
    let requests = (0..300).map(|i| {
        let serve = &r.replicas[i % 3];
        async move { get(serve, &format!("/req/{i}")).await }
    });
    let answers = futures::future::join_all(requests).await;
    for (i, answer) in answers.iter().enumerate() {
        assert_eq!(answer.as_ref().map(|a| a.0), Some(200), "request {i}: {answer:?}\n{}", logs(&r));
        assert_eq!(answer.as_ref().map(|a| a.1.as_str()), Some(format!("web GET /req/{i}\n").as_str()), "the real body");
    }
    let s = stats(&r.sim).await;
    for node in NODES {
        assert_eq!(scale_requests(&s, node), 1, "exactly one scale request for {node} across three replicas: {s}");
    }
    assert_eq!(s["jobs_created"], 1, "one Job run for the wake, followed by the other replicas: {s}");
    let claims = logs(&r).matches("claimed the cold start").count();
    assert_eq!(claims, 1, "one replica claimed the wake:\n{}", logs(&r));
    let told = |event: &str| receiver.received().iter().filter(|n| n.body["event"] == event).count();
    assert_eventually!(told("wake_succeeded") == 1, "the wake was told: {:?}", receiver.received());
    // Every replica has finished its part (each answered its requests) and delivers at once: none of
    // the followers tells the wake a second time.
    for serve in &r.replicas {
        let routes: Value = client()
            .get(serve.admin_url("/api/v1/notifications"))
            .bearer_auth(serve.token())
            .send()
            .await
            .expect("routes")
            .json()
            .await
            .expect("json");
        assert_eq!(routes["routes"][0]["queued"], 0, "{routes}");
    }
    assert_eq!((told("wake_started"), told("wake_succeeded"), told("wake_failed")), (1, 1, 0), "{:?}", receiver.received());
}

async fn only_the_leader_drains_and_activity_anywhere_keeps_the_flow_awake(store: SharedStore) {
    let r = replicas(store, "0s", "claim_ttl = \"2s\"\nactivity_flush = \"250ms\"", "idle_after = \"3s\"", "").await;
    let leader = leader_of(&r).await;
    let busy = (leader + 1) % 3;
    // Wake through the leader, then keep the flow busy only through another replica for twice the
    // idle window.
    assert_eq!(get(&r.replicas[leader], "/first").await.map(|a| a.0), Some(200), "{}", logs(&r));
    let until = std::time::Instant::now() + Duration::from_secs(7);
    while std::time::Instant::now() < until {
        assert_eq!(get(&r.replicas[busy], "/busy").await.map(|a| a.0), Some(200), "{}", logs(&r));
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    for node in NODES {
        assert_eq!(replicas_of(&r.sim, node).await, 1, "{node} still up: traffic on replica {busy} counts on the leader too\n{}", logs(&r));
    }
    // Idle everywhere: the leader drains, once.
    leannodes_harness::assert_eventually!(
        {
            let mut drained = true;
            for node in NODES {
                drained &= replicas_of(&r.sim, node).await == 0;
            }
            drained
        },
        "the leader drains the idle flow\n{}",
        logs(&r)
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let s = stats(&r.sim).await;
    for node in NODES {
        assert_eq!(scale_requests(&s, node), 2, "one wake and one drain of {node}: {s}");
    }
    for (i, serve) in r.replicas.iter().enumerate() {
        let drains = serve.log().matches("idle; draining").count();
        assert_eq!(drains, usize::from(i == leader), "replica {i} drained {drains} time(s); the leader is {leader}");
    }
    // The flow is asleep on every replica now, and the next request anywhere wakes it again.
    assert_eq!(get(&r.replicas[busy], "/again").await.map(|a| a.1), Some("web GET /again\n".into()), "{}", logs(&r));
}

/// The flow `admin` (host `admin.test`, idle for a minute before it drains) shares the `web` Deployment
/// with `shop`.
const ADMIN_FLOW: &str = "\n[[flow]]\nname = \"admin\"\nhosts = [\"admin.test\"]\nupstream = \"web\"\nidle_after = \"1m\"\n\n  [[flow.node]]\n  name = \"web\"\n  kind = \"deployment\"\n  ref = \"default/web\"\n  port = 8080\n";

/// The one replica that leads, once they agree.
async fn leader_of(r: &Replicas) -> usize {
    let mut leaders = Vec::new();
    leannodes_harness::assert_eventually!(
        {
            leaders.clear();
            for (i, serve) in r.replicas.iter().enumerate() {
                if status(serve).await["replica"]["leader"] == true {
                    leaders.push(i);
                }
            }
            leaders.len() == 1
        },
        "exactly one leader among three replicas: {leaders:?}"
    );
    leaders[0]
}

async fn the_leader_keeps_a_workload_that_another_replicas_awake_flow_uses(store: SharedStore) {
    let r = replicas(store, "0s", "claim_ttl = \"2s\"\nactivity_flush = \"250ms\"", "idle_after = \"2s\"", ADMIN_FLOW).await;
    let leader = leader_of(&r).await;
    let other = (leader + 1) % 3;
    // `shop` is woken through the leader; `admin`, which shares `web`, only through another replica, so
    // the leader itself never took `web` for `admin`.
    assert_eq!(get(&r.replicas[leader], "/first").await.map(|a| a.0), Some(200), "{}", logs(&r));
    let admin = client().get(r.replicas[other].url("/panel")).header("host", "admin.test").send().await.expect("admin");
    assert_eq!(admin.status(), 200);
    // `shop` goes idle: the leader drains it, but `web` stays up for `admin`.
    leannodes_harness::assert_eventually!(
        replicas_of(&r.sim, "db").await == 0 && replicas_of(&r.sim, "api").await == 0,
        "the leader drains shop's own workloads\n{}",
        logs(&r)
    );
    assert_eq!(replicas_of(&r.sim, "web").await, 1, "web is still used by admin on replica {other}\n{}", logs(&r));
    assert_eq!(scale_requests(&stats(&r.sim).await, "web"), 1, "web was never scaled down");
    let warm = client().get(r.replicas[other].url("/panel")).header("host", "admin.test").send().await.expect("admin");
    assert_eq!(warm.status(), 200);
    assert!(warm.headers().get("x-leannodes-cold-start").is_none(), "admin never had to wake web again");
}

async fn a_survivor_finishes_the_wake_of_a_killed_claimant(store: SharedStore) {
    let mut r = replicas(store, "1500ms", "claim_ttl = \"2s\"", "hold_timeout = \"30s\"", "").await;
    let held: Vec<_> = (0..9)
        .map(|i| {
            let url = r.replicas[i % 3].url(&format!("/held/{i}"));
            tokio::spawn(async move {
                let response = client().get(url).header("host", HOST).header("accept", "application/json").send().await.ok()?;
                Some((response.status().as_u16(), response.text().await.unwrap_or_default()))
            })
        })
        .collect();
    let deadline = std::time::Instant::now() + leannodes_harness::patience();
    let claimant = loop {
        if let Some(i) = r.replicas.iter().position(|s| s.log().contains("claimed the cold start")) {
            break i;
        }
        assert!(std::time::Instant::now() < deadline, "a replica claims the wake\n{}", logs(&r));
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // The claimant has asked for `db` and waits for it: kill it in the middle of the wake.
    leannodes_harness::assert_eventually!(scale_requests(&stats(&r.sim).await, "db") == 1, "db is being scaled");
    r.replicas[claimant].signal(9);
    assert!(r.replicas[claimant].wait().is_some(), "the claimant is gone");
    let started = std::time::Instant::now();
    for (i, task) in held.into_iter().enumerate() {
        let answer = task.await.expect("task");
        if i % 3 == claimant {
            continue; // its clients lost their connection with it
        }
        assert_eq!(answer, Some((200, format!("web GET /held/{i}\n"))), "held request {i} on a survivor\n{}", logs(&r));
    }
    assert!(started.elapsed() < Duration::from_secs(30), "before the hold timeout");
    let resumed = r.replicas.iter().enumerate().filter(|(i, s)| *i != claimant && s.log().contains("claimed the cold start")).count();
    assert_eq!(resumed, 1, "one survivor resumed the wake\n{}", logs(&r));
    let s = stats(&r.sim).await;
    for node in NODES {
        assert_eq!(scale_requests(&s, node), 1, "{node} scaled once although the wake changed hands: {s}");
    }
}

async fn without_the_store_a_wake_with_a_job_fails_at_once_and_one_without_goes_on() {
    // The database goes away under running replicas (as a dropped or unreachable database does).
    let db = TestPostgres::create();
    let store = SharedStore { url: db.url.clone(), env: vec![], _guard: Box::new(()) };
    let admin_flow = ADMIN_FLOW.replace("idle_after = \"1m\"", "idle_after = \"1m\"\nhold_timeout = \"60s\"");
    let r = replicas(store, "0s", "public_status = \"detailed\"", "hold_timeout = \"60s\"", &admin_flow).await;
    drop(db);
    // `shop` starts with the Job `migrate`: it is not run without a claim, and the client hears so at once.
    let started = std::time::Instant::now();
    let (status, body) = get(&r.replicas[0], "/needs-migrate").await.expect("an answer");
    assert_eq!(status, 503, "{body}");
    let answer: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(answer["error"], "cold_start_failed", "{answer}");
    let text = answer.to_string();
    assert!(text.contains("migrate") && text.contains("store is unavailable"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(30), "not after the hold budget: {:?}", started.elapsed());
    assert_eq!(stats(&r.sim).await["jobs_created"], 0, "no Job ran without a claim");
    // `admin` (one Deployment, safe to scale twice) wakes without the store and gets its body.
    let response = client().get(r.replicas[1].url("/panel")).header("host", "admin.test").send().await.expect("admin");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.expect("body"), "web GET /panel\n");
}

fn run(test: impl Future<Output = ()>) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(test);
}

#[test]
fn postgres_three_hundred_cold_requests_make_one_wake() {
    run(three_hundred_cold_requests_make_one_wake(postgres()));
}

#[test]
fn postgres_only_the_leader_drains_and_activity_anywhere_keeps_the_flow_awake() {
    run(only_the_leader_drains_and_activity_anywhere_keeps_the_flow_awake(postgres()));
}

#[test]
fn postgres_the_leader_keeps_a_workload_that_another_replicas_awake_flow_uses() {
    run(the_leader_keeps_a_workload_that_another_replicas_awake_flow_uses(postgres()));
}

#[test]
fn postgres_without_the_store_a_wake_with_a_job_fails_at_once_and_one_without_goes_on() {
    run(without_the_store_a_wake_with_a_job_fails_at_once_and_one_without_goes_on());
}

#[test]
fn postgres_a_survivor_finishes_the_wake_of_a_killed_claimant() {
    run(a_survivor_finishes_the_wake_of_a_killed_claimant(postgres()));
}

#[test]
fn dynamodb_three_hundred_cold_requests_make_one_wake() {
    run(three_hundred_cold_requests_make_one_wake(dynamodb()));
}

#[test]
fn dynamodb_only_the_leader_drains_and_activity_anywhere_keeps_the_flow_awake() {
    run(only_the_leader_drains_and_activity_anywhere_keeps_the_flow_awake(dynamodb()));
}

#[test]
fn dynamodb_a_survivor_finishes_the_wake_of_a_killed_claimant() {
    run(a_survivor_finishes_the_wake_of_a_killed_claimant(dynamodb()));
}
