//! Chaos: LeanNodes replicas (real `leannodes serve` processes sharing a real Postgres, the Kubernetes
//! API simulator whose pods are real processes) when parts around them misbehave: a store that accepts
//! connections but never answers, a Kubernetes API server that goes away and comes back, a backend that
//! crash-loops, and replicas whose clocks disagree.

use std::time::{Duration, Instant};

use leannodes_harness::stores::TestPostgres;
use leannodes_harness::toxic::Toxic;
use leannodes_harness::{DemoNode, Serve, assert_eventually, lines_of, read_log};
use leannodes_kube_sim::fixtures::service;
use leannodes_kube_sim::{Sim, SimOptions};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_leannodes");

/// A Deployment whose pods listen after `startup`, scaled to zero.
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

/// The flow `name` at host `NAME.test`: `nodes` are `(name, kind)` of simulator workloads (`ref` =
/// `default/NAME`), each after the one before; the last one is the upstream.
fn flow(name: &str, settings: &str, nodes: &[(&str, &str)]) -> String {
    let upstream = nodes.last().map_or("", |n| n.0);
    let mut out = format!("\n[[flow]]\nname = \"{name}\"\nhosts = [\"{name}.test\"]\nupstream = \"{upstream}\"\n{settings}\n");
    for (i, (node, kind)) in nodes.iter().enumerate() {
        out.push_str(&format!("\n  [[flow.node]]\n  name = \"{node}\"\n  kind = \"{kind}\"\n  ref = \"default/{node}\"\n"));
        if *kind != "job" {
            out.push_str("  port = 8080\n");
        }
        if i > 0 {
            out.push_str(&format!("  after = [\"{}\"]\n", nodes[i - 1].0));
        }
    }
    out
}

/// Three replicas `a`, `b`, `c` on one Postgres database (reached through a [`Toxic`] forwarder) and
/// one simulator.
struct Cluster {
    sim: Sim,
    replicas: Vec<Serve>,
    toxic: Toxic,
    _dir: tempfile::TempDir,
    _db: TestPostgres,
}

/// Starts the simulator with `objects` and three replicas serving `body`; `server` lines go into each
/// `[server]`, `env` into each replica's environment (by replica).
async fn cluster(objects: Vec<Value>, server: &str, body: &str, env: [&[(&str, &str)]; 3]) -> Cluster {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let sim = Sim::start(listener, SimOptions { backend_bin: BIN.into() }).await.expect("sim");
    sim.seed(objects).expect("seed");
    let db = TestPostgres::create();
    let (toxic, url) = Toxic::for_url(&db.url);
    let dir = leannodes_harness::workdir();
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let kubeconfig = kubeconfig.display().to_string();
    let replicas = ["a", "b", "c"]
        .iter()
        .zip(env)
        .map(|(id, extra_env)| {
            let home = dir.path().join(id);
            std::fs::create_dir_all(&home).expect("replica folder");
            let extra = format!("driver = \"kubernetes\"\nstore = \"{url}\"\nreplica_id = \"{id}\"\n{server}");
            let mut env = vec![("KUBECONFIG", kubeconfig.as_str())];
            env.extend_from_slice(extra_env);
            Serve::start_with_env(BIN, &home, &extra, body, &env)
        })
        .collect();
    Cluster { sim, replicas, toxic, _dir: dir, _db: db }
}

impl Cluster {
    fn logs(&self) -> String {
        self.replicas.iter().map(Serve::log).collect::<Vec<_>>().join("\n----\n")
    }

    /// How many times replicas logged a line with all of `words`.
    fn logged(&self, words: &[&str]) -> usize {
        self.replicas.iter().map(|s| s.log().lines().filter(|l| words.iter().all(|w| l.contains(w))).count()).sum()
    }

    /// The one replica that leads, once they agree.
    async fn leader(&self) -> usize {
        let mut leaders = Vec::new();
        assert_eventually!(
            {
                leaders.clear();
                for (i, serve) in self.replicas.iter().enumerate() {
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

    async fn stats(&self) -> Value {
        client().get(format!("http://{}/sim/stats", self.sim.addr)).send().await.expect("stats").json().await.expect("json")
    }

    async fn scale_requests(&self, node: &str) -> i64 {
        self.stats().await["scale_requests"][format!("default/deployment/{node}")].as_i64().unwrap_or(0)
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(60)).pool_max_idle_per_host(0).build().expect("client")
}

/// One answer of the proxy.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    body: String,
    /// `x-leannodes-cold-start`.
    cold_start: Option<String>,
    /// `retry-after`.
    retry_after: Option<String>,
    /// How long it took.
    took: Duration,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_default()
    }
}

/// GET `path` of flow `flow` (host `FLOW.test`) through a replica's proxy (`None`: no answer).
async fn get(serve: &Serve, flow: &str, path: &str) -> Option<Answer> {
    let started = Instant::now();
    let response =
        client().get(serve.url(path)).header("host", format!("{flow}.test")).header("accept", "application/json").send().await.ok()?;
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let (status, cold_start, retry_after) = (response.status().as_u16(), header("x-leannodes-cold-start"), header("retry-after"));
    let body = response.text().await.unwrap_or_default();
    Some(Answer { status, body, cold_start, retry_after, took: started.elapsed() })
}

/// `GET /api/v1/status` as the first administrator.
async fn status(serve: &Serve) -> Value {
    client().get(serve.admin_url("/api/v1/status")).bearer_auth(serve.token()).send().await.expect("status").json().await.expect("json")
}

/// `GET /api/v1/flows/{flow}` as the first administrator.
async fn flow_view(serve: &Serve, flow: &str) -> Value {
    let url = serve.admin_url(&format!("/api/v1/flows/{flow}"));
    client().get(url).bearer_auth(serve.token()).send().await.expect("flow").json().await.expect("json")
}

/// The value of the sample `name` (with its labels, e.g. `leannodes_store_up`) in `/metrics`.
async fn metric(serve: &Serve, sample: &str) -> Option<f64> {
    let text = client().get(serve.admin_url("/metrics")).bearer_auth(serve.token()).send().await.ok()?.text().await.ok()?;
    text.lines().find_map(|l| l.strip_prefix(sample).and_then(|rest| rest.strip_prefix(' ')).and_then(|v| v.trim().parse().ok()))
}

/// `GET /readyz`.
async fn ready(serve: &Serve) -> u16 {
    client().get(serve.admin_url("/readyz")).send().await.map_or(0, |r| r.status().as_u16())
}

fn run(test: impl Future<Output = ()>) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(test);
}

fn no_panics(logs: &str) {
    assert!(!logs.contains("panicked"), "a replica panicked:\n{logs}");
}

// ---------------------------------------------------------------------------------------------------
// 1. A store that hangs: it accepts connections and never answers.

/// Claims live 2 s, so a wake waits at most 1 s for the store; the hold budget (6 s) is well below the
/// 10 s a Postgres pool waits for a connection, which is all a wake waited before.
const HANG_SERVER: &str = "claim_ttl = \"2s\"\nactivity_flush = \"250ms\"\npublic_status = \"detailed\"";
const HOLD: &str = "hold_timeout = \"6s\"";

#[test]
fn postgres_that_hangs_costs_no_request_and_is_shown() {
    run(async {
        let mut objects = vec![job_template("migrate", "300ms")];
        for name in ["warm", "cold-db", "cold-web", "prep-web", "later"] {
            objects.push(deployment(name, "0s"));
            objects.push(service(name));
        }
        let body = [
            flow("warm", HOLD, &[("warm", "deployment")]),
            flow("cold", HOLD, &[("cold-db", "deployment"), ("cold-web", "deployment")]),
            flow("prep", HOLD, &[("migrate", "job"), ("prep-web", "deployment")]),
            flow("later", HOLD, &[("later", "deployment")]),
        ]
        .concat();
        let c = cluster(objects, HANG_SERVER, &body, [&[], &[], &[]]).await;
        c.leader().await;
        // `warm` is awake on every replica before the outage.
        for answer in futures::future::join_all(c.replicas.iter().map(|serve| get(serve, "warm", "/first"))).await {
            assert_eq!(answer.as_ref().map(|a| a.status), Some(200), "{answer:?}\n{}", c.logs());
        }
        for serve in &c.replicas {
            assert_eventually!(metric(serve, "leannodes_store_up").await == Some(1.0), "the store is up before the outage");
        }

        c.toxic.hang();
        let hung_at = Instant::now();

        // Warm traffic keeps flowing on every replica.
        for round in 0..5 {
            for serve in &c.replicas {
                let answer = get(serve, "warm", &format!("/warm/{round}")).await.expect("answer");
                assert_eq!((answer.status, answer.body.as_str()), (200, format!("warm GET /warm/{round}\n").as_str()), "{answer:?}");
                assert!(answer.cold_start.is_none(), "warm traffic is not held: {answer:?}");
            }
        }

        // A cold wake of two Deployments goes on without the store: every replica releases its held
        // requests with the real body within the hold budget.
        let held =
            c.replicas.iter().flat_map(|serve| (0..3).map(move |i| async move { (i, get(serve, "cold", &format!("/cold/{i}")).await) }));
        for (i, answer) in futures::future::join_all(held).await {
            let answer = answer.expect("answer");
            assert_eq!(answer.status, 200, "held request {i} during the outage: {answer:?}\n{}", c.logs());
            assert_eq!(answer.body, format!("cold-web GET /cold/{i}\n"));
            assert!(answer.cold_start.is_some(), "it was held: {answer:?}");
        }
        assert!(c.logged(&["waking without coordination", "cold"]) >= 1, "the wake went on unclaimed:\n{}", c.logs());

        // A flow that starts with a Job is refused at once: the Job runs only under a claim.
        let refused = get(&c.replicas[1], "prep", "/prep").await.expect("answer");
        let answer = refused.json();
        assert_eq!((refused.status, &answer["error"]), (503, &json!("cold_start_failed")), "{refused:?}");
        assert_eq!((&answer["node"], &answer["reason"]), (&json!("migrate"), &json!("StoreUnavailable")), "{answer}");
        assert!(answer["message"].as_str().is_some_and(|m| m.contains("store is unavailable")), "{answer}");
        assert!(answer["waited_ms"].as_u64().is_some_and(|ms| ms < 6_000), "before the hold budget: {answer}");
        assert!(refused.took < Duration::from_secs(6) && refused.retry_after.is_some(), "{refused:?}");
        assert_eq!(c.stats().await["jobs_created"], 0, "no Job ran without a claim");

        // Readiness stays up; status and metrics tell of the outage: no replica leads, the store is down.
        for serve in &c.replicas {
            assert_eq!(ready(serve).await, 200, "readiness does not depend on the store");
        }
        // (Checked on the replicas at once: every authenticated call now waits for the store first.)
        let shown = c.replicas.iter().map(|serve| async move {
            assert_eventually!(status(serve).await["replica"]["leader"] == false, "no replica leads without the store");
            assert_eventually!(metric(serve, "leannodes_store_up").await == Some(0.0), "the store health gauge shows the outage");
        });
        futures::future::join_all(shown).await;
        assert!(c.toxic.is_hanging(), "the store hung for {:?}", hung_at.elapsed());

        // The store comes back: health, leadership, claims and the Job flow recover.
        c.toxic.restore();
        for serve in &c.replicas {
            assert_eventually!(metric(serve, "leannodes_store_up").await == Some(1.0), "the store is up again\n{}", serve.log());
        }
        c.leader().await;
        let claims = c.logged(&["claimed the cold start", "later"]);
        let cold =
            c.replicas.iter().flat_map(|serve| (0..3).map(move |i| async move { get(serve, "later", &format!("/later/{i}")).await }));
        for answer in futures::future::join_all(cold).await {
            assert_eq!(answer.as_ref().map(|a| a.status), Some(200), "{answer:?}\n{}", c.logs());
        }
        assert_eq!(c.scale_requests("later").await, 1, "one scale request: the cold start was claimed again");
        assert_eq!(c.logged(&["claimed the cold start", "later"]), claims + 1, "one claim\n{}", c.logs());
        assert_eventually!(
            get(&c.replicas[1], "prep", "/again").await.is_some_and(|a| a.status == 200 && a.body == "prep-web GET /again\n"),
            "the flow with the Job wakes once the store is back\n{}",
            c.logs()
        );
        assert_eq!(c.stats().await["jobs_created"], 1, "its Job ran once");
        no_panics(&c.logs());
    });
}

#[test]
fn a_claimant_that_loses_the_store_half_way_still_releases_its_held_requests() {
    run(async {
        let objects = vec![deployment("slow", "1500ms"), service("slow")];
        let c = cluster(objects, HANG_SERVER, &flow("slow", "hold_timeout = \"8s\"", &[("slow", "deployment")]), [&[], &[], &[]]).await;
        c.leader().await;
        // Requests on every replica; the moment one replica has claimed the wake, the store hangs.
        let held = futures::future::join_all((0..9).map(|i| {
            let serve = &c.replicas[i % 3];
            async move { (i, get(serve, "slow", &format!("/held/{i}")).await) }
        }));
        let hang = async {
            let deadline = Instant::now() + leannodes_harness::patience();
            let claimant = loop {
                if let Some(i) = c.replicas.iter().position(|s| s.log().contains("claimed the cold start")) {
                    break i;
                }
                assert!(Instant::now() < deadline, "a replica claims the wake\n{}", c.logs());
                tokio::time::sleep(Duration::from_millis(5)).await;
            };
            c.toxic.hang();
            claimant
        };
        let (answers, claimant) = tokio::join!(held, hang);
        for (i, answer) in answers {
            let answer = answer.expect("answer");
            let who = if i % 3 == claimant { "the claimant" } else { "a follower" };
            assert_eq!(answer.status, 200, "request {i} held by {who} while the store hangs: {answer:?}\n{}", c.logs());
            assert_eq!(answer.body, format!("slow GET /held/{i}\n"));
        }
        assert!(c.toxic.is_hanging());
        c.toxic.restore();
        // The record of the wake reaches the store once it answers, and the wake was asked for once.
        let serve = &c.replicas[(claimant + 1) % 3];
        assert_eventually!(
            {
                let url = serve.admin_url("/api/v1/flows/slow/executions");
                let list: Value =
                    client().get(url).bearer_auth(serve.token()).send().await.expect("executions").json().await.expect("json");
                list["items"][0]["outcome"] == "succeeded"
            },
            "the claimant's execution record is stored after the outage"
        );
        assert_eq!(c.scale_requests("slow").await, 1, "one scale request\n{}", c.logs());
        no_panics(&c.logs());
    });
}

// ---------------------------------------------------------------------------------------------------
// 2. The Kubernetes API server goes away and comes back.

#[test]
fn the_kubernetes_api_goes_away_and_comes_back() {
    run(async {
        let objects = vec![deployment("api", "0s"), service("api"), deployment("web", "0s"), service("web")];
        let body = flow("shop", "", &[("api", "deployment"), ("web", "deployment")]);
        let c = cluster(objects, "claim_ttl = \"2s\"", &body, [&[], &[], &[]]).await;
        let woken = futures::future::join_all(c.replicas.iter().map(|serve| get(serve, "shop", "/first"))).await;
        for answer in woken {
            assert_eq!(answer.as_ref().map(|a| a.status), Some(200), "{answer:?}\n{}", c.logs());
        }
        assert_eq!((c.scale_requests("api").await, c.scale_requests("web").await), (1, 1), "one wake");
        let driver_up = "leannodes_driver_up{driver=\"kubernetes\"}";

        c.sim.stop_api().await;
        let replicas = &c.replicas;
        let warm = |round: usize| async move {
            for serve in replicas {
                let answer = get(serve, "shop", &format!("/warm/{round}")).await.expect("answer");
                assert_eq!((answer.status, answer.body.as_str()), (200, format!("web GET /warm/{round}\n").as_str()), "{answer:?}");
                assert!(answer.cold_start.is_none(), "warm traffic is not held: {answer:?}");
            }
        };
        warm(0).await;
        for serve in &c.replicas {
            assert_eventually!(metric(serve, driver_up).await == Some(0.0), "the outage shows in /metrics");
        }
        warm(1).await;

        c.sim.start_api().await.expect("the API serves again on its port");
        for serve in &c.replicas {
            assert_eventually!(metric(serve, driver_up).await == Some(1.0), "the API is back in /metrics");
        }
        warm(2).await;
        // A change made after the API is back reaches every replica through its resumed watches: `web`
        // is scaled to zero behind LeanNodes' back, and every replica sees that its flow lost a node.
        let url = format!("http://{}/apis/apps/v1/namespaces/default/deployments/web", c.sim.addr);
        let patched =
            client().patch(url).header("content-type", "application/merge-patch+json").body(r#"{"spec":{"replicas":0}}"#).send().await;
        assert_eq!(patched.map(|r| r.status().as_u16()).ok(), Some(200));
        for serve in &c.replicas {
            assert_eventually!(flow_view(serve, "shop").await["state"] == "asleep", "the replica saw web scaled to zero\n{}", serve.log());
        }
        // Nobody asked to scale anything while the API was away or when it came back.
        assert_eq!((c.scale_requests("api").await, c.scale_requests("web").await), (1, 1), "no scale request since the wake");
        // The next requests wake the flow once more: one scale request, for the node that was lost.
        let again = futures::future::join_all(c.replicas.iter().map(|serve| get(serve, "shop", "/again"))).await;
        for answer in again {
            let answer = answer.expect("answer");
            assert_eq!((answer.status, answer.body.as_str()), (200, "web GET /again\n"), "{answer:?}\n{}", c.logs());
        }
        assert_eq!((c.scale_requests("api").await, c.scale_requests("web").await), (1, 2), "one more scale request, of web");
        no_panics(&c.logs());
    });
}

// ---------------------------------------------------------------------------------------------------
// 3. A backend that crash-loops.

/// `[[flow]]` `crashy` (host `crashy.test`) with the one process node `node`.
fn crashy(node: &DemoNode, logs: &std::path::Path) -> String {
    format!(
        "\n[[flow]]\nname = \"crashy\"\nhosts = [\"crashy.test\"]\nupstream = \"web\"\nhold_timeout = \"10s\"\n{}",
        node.toml(BIN, logs)
    )
}

/// Requests `crashy` every 50 ms for `window`; the answers.
fn hammer(serve: &Serve, window: Duration) -> Vec<leannodes_harness::HttpAnswer> {
    let started = Instant::now();
    let mut answers = Vec::new();
    while started.elapsed() < window {
        let headers = [("host", "crashy.test"), ("accept", "application/json")];
        answers.push(leannodes_harness::http_request(serve.proxy, "GET", "/", &headers, None).expect("an answer"));
        std::thread::sleep(Duration::from_millis(50)); // the pace of the load, not a wait for anything
    }
    answers
}

#[test]
fn a_backend_that_exits_at_start_fails_fast_backs_off_and_wakes_once_fixed() {
    let dir = leannodes_harness::workdir();
    let crashing = DemoNode::new("web").args(&["--exit-after", "0s", "--exit-code", "3"]);
    let serve = Serve::start(BIN, dir.path(), "public_status = \"detailed\"", &crashy(&crashing, dir.path()));
    let answers = hammer(&serve, Duration::from_millis(3500));
    for answer in &answers {
        let body = answer.json();
        assert_eq!((answer.status, &body["error"]), (503, &json!("cold_start_failed")), "{answer:?}");
        assert_eq!((&body["node"], &body["reason"]), (&json!("web"), &json!("exited")), "{body}");
        assert!(body["message"].as_str().is_some_and(|m| m.contains("exited with status 3")), "the reason is told: {body}");
        assert!(answer.header("retry-after").is_some(), "{answer:?}");
    }
    let starts = lines_of(&read_log(&dir.path().join("start.log")), "web").len();
    assert!(answers.len() >= 20, "the flow was asked {} times", answers.len());
    assert!(
        (2..=4).contains(&starts),
        "{starts} starts for {} requests in 3.5 s: a failed wake is retried, after 1 s, then 2 s (no restart per request)",
        answers.len()
    );
    // The backend is fixed (same node, without the crash): the next request after the reload wakes it.
    let fixed = DemoNode { extra_args: vec![], ..crashing.clone() };
    serve.rewrite(&crashy(&fixed, dir.path()));
    let headers = [("host", "crashy.test"), ("accept", "application/json")];
    assert_eventually!(
        leannodes_harness::http_request(serve.proxy, "GET", "/fixed", &headers, None)
            .is_some_and(|a| a.status == 200 && a.body == "web GET /fixed\n"),
        "the fixed backend wakes\n{}",
        serve.log()
    );
    no_panics(&serve.log());
}

#[test]
fn a_backend_that_dies_right_after_it_is_ready_is_not_restarted_per_request() {
    let dir = leannodes_harness::workdir();
    let crashing = DemoNode::new("web").args(&["--exit-after", "300ms", "--exit-code", "3"]);
    let serve = Serve::start(BIN, dir.path(), "public_status = \"detailed\"", &crashy(&crashing, dir.path()));
    let answers = hammer(&serve, Duration::from_millis(4000));
    let starts = lines_of(&read_log(&dir.path().join("start.log")), "web").len();
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert!(
        (2..=4).contains(&starts),
        "{starts} starts for {} requests in 4 s: a backend that dies right after it woke is woken again once at once, then after 2 s, 4 s (not per request): {statuses:?}\n{}",
        answers.len(),
        serve.log()
    );
    // While it backs off, requests are told why.
    let told = answers.iter().find(|a| a.status == 503).unwrap_or_else(|| panic!("the crash loop is told: {statuses:?}"));
    let body = told.json();
    assert_eq!((&body["error"], &body["node"], &body["reason"]), (&json!("cold_start_failed"), &json!("web"), &json!("exited")), "{body}");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("crash loop") && m.contains("exited with status 3")), "{body}");
    assert!(told.header("retry-after").is_some(), "{told:?}");
    no_panics(&serve.log());
}

#[test]
fn a_pod_in_crash_loop_back_off_fails_fast_backs_off_and_wakes_once_fixed() {
    run(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let sim = Sim::start(listener, SimOptions { backend_bin: BIN.into() }).await.expect("sim");
        let crashing = leannodes_kube_sim::fixtures::deployment("web", 0, json!({"kube-sim.leannodes.io/fail": "crash-loop"}));
        sim.seed(vec![crashing, service("web")]).expect("seed");
        let dir = leannodes_harness::workdir();
        let kubeconfig = dir.path().join("kubeconfig");
        sim.write_kubeconfig(&kubeconfig).expect("kubeconfig");
        let kubeconfig = kubeconfig.display().to_string();
        let body = flow("crashy", "hold_timeout = \"10s\"", &[("web", "deployment")]);
        let server = "driver = \"kubernetes\"\npublic_status = \"detailed\"";
        let serve = Serve::start_with_env(BIN, dir.path(), server, &body, &[("KUBECONFIG", kubeconfig.as_str())]);
        let answers = tokio::task::block_in_place(|| hammer(&serve, Duration::from_millis(3500)));
        for answer in &answers {
            let body = answer.json();
            assert_eq!((answer.status, &body["error"]), (503, &json!("cold_start_failed")), "{answer:?}");
            assert_eq!((&body["node"], &body["reason"]), (&json!("web"), &json!("CrashLoopBackOff")), "{body}");
            assert!(answer.header("retry-after").is_some(), "{answer:?}");
        }
        // Each attempt scales the Deployment up, and its rollback down again.
        let stats: Value = client().get(format!("http://{}/sim/stats", sim.addr)).send().await.expect("stats").json().await.expect("json");
        let scales = stats["scale_requests"]["default/deployment/web"].as_i64().unwrap_or(0);
        assert!(answers.len() >= 20, "the flow was asked {} times", answers.len());
        assert!(
            (4..=8).contains(&scales),
            "{scales} scale requests (2 per attempt) for {} requests in 3.5 s: retried after 1 s, then 2 s",
            answers.len()
        );
        // The template is fixed: the next wake after the backoff brings up a pod that serves.
        let url = format!("http://{}/apis/apps/v1/namespaces/default/deployments/web", sim.addr);
        let fix = json!({"spec": {"template": {"metadata": {"annotations": {"kube-sim.leannodes.io/fail": null}}}}});
        let patched = client().patch(url).header("content-type", "application/merge-patch+json").body(fix.to_string()).send().await;
        assert_eq!(patched.map(|r| r.status().as_u16()).ok(), Some(200));
        assert_eventually!(
            get(&serve, "crashy", "/fixed").await.is_some_and(|a| a.status == 200 && a.body == "web GET /fixed\n"),
            "the fixed Deployment wakes\n{}",
            serve.log()
        );
        no_panics(&serve.log());
    });
}

// ---------------------------------------------------------------------------------------------------
// 4. Replicas whose clocks disagree.

#[test]
fn replicas_whose_clocks_disagree_by_half_a_claim_ttl_wake_once_and_keep_one_leader() {
    run(async {
        let objects = vec![deployment("db", "300ms"), service("db"), deployment("web", "300ms"), service("web")];
        let body = flow("shop", "", &[("db", "deployment"), ("web", "deployment")]);
        // Claims live 3 s; `b` runs 1 s ahead and `c` 0.5 s behind: 1.5 s apart.
        let variable = leannodes_store::CLOCK_SKEW_VARIABLE;
        let c = cluster(objects, "claim_ttl = \"3s\"", &body, [&[], &[(variable, "1000")], &[(variable, "-500")]]).await;
        let leader = c.leader().await;
        for round in 1..=3_i64 {
            let claims: Vec<usize> = c.replicas.iter().map(|s| s.log().matches("claimed the cold start").count()).collect();
            let requests = (0..30).map(|i| {
                let serve = &c.replicas[i % 3];
                async move { (i, get(serve, "shop", &format!("/r{round}/{i}")).await) }
            });
            for (i, answer) in futures::future::join_all(requests).await {
                let answer = answer.expect("answer");
                assert_eq!((answer.status, answer.body), (200, format!("web GET /r{round}/{i}\n")), "round {round}\n{}", c.logs());
            }
            // Each round is one wake (and the drain after the one before): one scale up per node.
            for node in ["db", "web"] {
                assert_eq!(c.scale_requests(node).await, 2 * round - 1, "round {round}: {node} scaled up once\n{}", c.logs());
            }
            let now: Vec<usize> = c.replicas.iter().map(|s| s.log().matches("claimed the cold start").count()).collect();
            let claimants: Vec<usize> = (0..3).filter(|i| now[*i] > claims[*i]).collect();
            assert_eq!(claimants.len(), 1, "round {round}: one claim: {claims:?} → {now:?}\n{}", c.logs());
            assert_eq!(now[claimants[0]], claims[claimants[0]] + 1);
            c.replicas[leader].drain("shop");
            for serve in &c.replicas {
                assert_eventually!(flow_view(serve, "shop").await["state"] == "asleep", "round {round}: asleep everywhere");
            }
        }
        assert_eq!(c.leader().await, leader, "the leader stayed");
        assert_eq!(c.logged(&["drain leadership changed"]), 1, "leadership was taken once and never moved\n{}", c.logs());
        no_panics(&c.logs());
    });
}
