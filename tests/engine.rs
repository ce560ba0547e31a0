//! End-to-end tests of the engine: real `leannodes demo-backend` processes as nodes, the real process
//! driver, the real SQLite store, the controller's DAG executor and drainer.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use leannodes_config::Config;
use leannodes_control::{Controller, ControllerOptions, FlowState, NodeState, Trigger};
use leannodes_drivers::{Drivers, ProcessDriver, ProcessOptions};
use leannodes_harness::{DemoNode, LogLine, alive, assert_eventually, lines_of, read_log, workdir};
use leannodes_store::{Outcome, Page, SqliteStore};

const BIN: &str = env!("CARGO_BIN_EXE_leannodes");

/// A test environment: a folder with logs and the store, and the flows' TOML.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env { dir: workdir() }
    }

    fn logs(&self) -> &Path {
        self.dir.path()
    }

    fn starts(&self) -> Vec<LogLine> {
        read_log(&self.dir.path().join("start.log"))
    }

    fn stops(&self) -> Vec<LogLine> {
        read_log(&self.dir.path().join("stop.log"))
    }

    fn flow(&self, name: &str, upstream: &str, settings: &str, nodes: &[DemoNode]) -> String {
        let mut text = format!("\n[[flow]]\nname = \"{name}\"\nhosts = [\"{name}.test\"]\nupstream = \"{upstream}\"\n{settings}\n");
        for node in nodes {
            text.push_str(&node.toml(BIN, self.logs()));
        }
        text
    }

    fn config(&self, flows: &str) -> Config {
        leannodes_config::parse_toml(flows, "test.toml", self.dir.path()).unwrap_or_else(|d| panic!("invalid test config:\n{d}\n{flows}"))
    }

    async fn controller(&self, config: &Config) -> Controller {
        self.controller_with(config, ProcessOptions::default()).await
    }

    async fn controller_with(&self, config: &Config, options: ProcessOptions) -> Controller {
        let store = SqliteStore::open(&self.dir.path().join("state.db")).await.expect("store");
        Controller::start(config, Drivers::local(ProcessDriver::new(options)), Arc::new(store), ControllerOptions::default())
            .await
            .expect("controller")
    }

    /// Every process ever started in this test is gone.
    fn assert_no_survivors(&self) {
        for line in self.starts() {
            assert_eventually!(!alive(line.pid), "{} (pid {}) still running", line.name, line.pid);
        }
    }
}

/// `db → {cache, search} → web`, with start-up delays so ordering is visible.
fn diamond() -> Vec<DemoNode> {
    vec![
        DemoNode::new("db").args(&["--startup-delay", "300ms"]),
        DemoNode::new("cache").after(&["db"]).args(&["--startup-delay", "200ms"]),
        DemoNode::new("search").after(&["db"]).args(&["--startup-delay", "250ms"]),
        DemoNode::new("web").after(&["cache", "search"]),
    ]
}

async fn get(port: u16, path: &str) -> String {
    reqwest::get(format!("http://127.0.0.1:{port}{path}")).await.expect("request").text().await.expect("body")
}

fn started(env: &Env, name: &str) -> u64 {
    let starts = env.starts();
    let lines = lines_of(&starts, name);
    assert_eq!(lines.len(), 1, "{name} started exactly once: {starts:?}");
    lines[0].millis
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diamond_wakes_in_dependency_order_with_parallel_siblings() {
    let env = Env::new();
    let nodes = diamond();
    let web_port = nodes[3].port;
    let config = env.config(&env.flow("shop", "web", "", &nodes));
    let controller = env.controller(&config).await;
    let mut events = controller.events().subscribe();

    let status = controller.wake_and_wait("shop", Trigger::Request, Duration::from_secs(30)).await.expect("wake");
    assert_eq!(status.state, FlowState::Awake, "{status:?}");
    assert_eq!(get(web_port, "/cart").await, "web GET /cart\n");

    let (db, cache, search, web) = (started(&env, "db"), started(&env, "cache"), started(&env, "search"), started(&env, "web"));
    // A node starts only after its dependencies are ready (db listens 300 ms after it starts, …).
    assert!(cache >= db + 300 && search >= db + 300, "db={db} cache={cache} search={search}");
    assert!(web >= cache + 200 && web >= search + 250, "cache={cache} search={search} web={web}");
    // Siblings start together.
    assert!(cache.abs_diff(search) < 100, "siblings started {} ms apart", cache.abs_diff(search));

    // The execution is recorded with per-node timings, and the events told the story in order.
    let history = controller.executions(Some("shop"), &Page::default()).await.expect("history").items;
    let record = history.first().expect("an execution");
    assert_eq!(record.outcome, Outcome::Succeeded);
    assert_eq!(record.steps.iter().map(|s| s.node.as_str()).collect::<Vec<_>>(), ["db", "cache", "search", "web"]);
    assert!(record.steps.iter().all(|s| s.state == "ready" && s.ready_ms >= s.started_ms && s.started_ms.is_some()));
    let mut seen = Vec::new();
    while let Ok(event) = events.try_recv() {
        seen.push(serde_json::to_value(&event).expect("json")["type"].as_str().unwrap_or_default().to_string());
    }
    assert_eq!(seen.first().map(String::as_str), Some("execution_started"));
    assert_eq!(seen.last().map(String::as_str), Some("execution_finished"));
    assert_eq!(seen.iter().filter(|t| *t == "node_ready").count(), 4);

    controller.drain("shop").await.expect("drain");
    env.assert_no_survivors();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_wakes_start_each_process_once() {
    let env = Env::new();
    let config = env.config(&env.flow("shop", "web", "", &diamond()));
    let controller = Arc::new(env.controller(&config).await);
    let mut waiters = Vec::new();
    for _ in 0..1000 {
        let controller = controller.clone();
        waiters.push(tokio::spawn(async move {
            let mut rx = controller.wake("shop", Trigger::Request).expect("wake");
            let status = rx.wait_for(|s| s.is_settled()).await.expect("status").clone();
            status.state
        }));
    }
    for waiter in waiters {
        assert_eq!(waiter.await.expect("join"), FlowState::Awake);
    }
    let starts = env.starts();
    for name in ["db", "cache", "search", "web"] {
        assert_eq!(lines_of(&starts, name).len(), 1, "{name} started once: {starts:?}");
    }
    assert_eq!(controller.executions(Some("shop"), &Page::default()).await.expect("history").items.len(), 1);
    controller.shutdown().await;
    env.assert_no_survivors();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_stops_everything_in_reverse_order() {
    let env = Env::new();
    let config = env.config(&env.flow("shop", "web", "", &diamond()));
    let controller = env.controller(&config).await;
    assert_eq!(controller.wake_and_wait("shop", Trigger::Manual, Duration::from_secs(30)).await.expect("wake").state, FlowState::Awake);
    controller.drain("shop").await.expect("drain");
    assert_eq!(controller.flow("shop").expect("flow").state(), FlowState::Asleep);
    let stops: Vec<String> = env.stops().into_iter().map(|l| l.name).collect();
    assert_eq!(stops, ["web", "search", "cache", "db"], "reverse topological order");
    env.assert_no_survivors();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workload_shared_with_an_awake_flow_is_not_stopped() {
    let env = Env::new();
    let db = DemoNode::new("db");
    let shop = env.flow("shop", "web", "", &[db.clone(), DemoNode::new("web").after(&["db"])]);
    let admin = env.flow("admin", "panel", "", &[db.clone(), DemoNode::new("panel").after(&["db"])]);
    let config = env.config(&format!("{shop}{admin}"));
    let controller = env.controller(&config).await;
    for flow in ["shop", "admin"] {
        assert_eq!(controller.wake_and_wait(flow, Trigger::Manual, Duration::from_secs(30)).await.expect("wake").state, FlowState::Awake);
    }
    assert_eq!(lines_of(&env.starts(), "db").len(), 1, "the shared db started once");
    let db_pid = lines_of(&env.starts(), "db")[0].pid;

    controller.drain("shop").await.expect("drain shop");
    let stops: Vec<String> = env.stops().into_iter().map(|l| l.name).collect();
    assert_eq!(stops, ["web"], "only shop's own node stopped");
    assert!(alive(db_pid), "db is still needed by admin");
    let view = controller.views().into_iter().find(|v| v.name == "shop").expect("shop");
    assert_eq!(view.nodes[0].state, NodeState::Kept);

    controller.drain("admin").await.expect("drain admin");
    assert!(!alive(db_pid), "the last user stopped db");
    env.assert_no_survivors();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wake_during_a_drain_is_served() {
    let env = Env::new();
    // `web` ignores SIGTERM, so its stop takes the whole grace period: the wake lands mid-drain.
    let nodes = vec![DemoNode::new("db"), DemoNode::new("web").after(&["db"]).ignoring_sigterm()];
    let web_port = nodes[1].port;
    let config = env.config(&env.flow("shop", "web", "", &nodes));
    let controller = Arc::new(
        env.controller_with(&config, ProcessOptions { stop_grace: Duration::from_millis(800), ..ProcessOptions::default() }).await,
    );
    assert_eq!(controller.wake_and_wait("shop", Trigger::Manual, Duration::from_secs(30)).await.expect("wake").state, FlowState::Awake);

    let draining = tokio::spawn({
        let controller = controller.clone();
        async move { controller.drain("shop").await }
    });
    let flow = controller.flow("shop").expect("flow");
    let mut rx = flow.subscribe();
    rx.wait_for(|s| s.state == FlowState::Draining && s.nodes[1].state == NodeState::Stopping).await.expect("stopping web");
    let status = controller.wake_and_wait("shop", Trigger::Request, Duration::from_secs(30)).await.expect("wake");
    assert_eq!(status.state, FlowState::Awake, "{status:?}");
    draining.await.expect("join").expect("drain");
    assert_eq!(get(web_port, "/").await, "web GET /\n");
    assert_eq!(lines_of(&env.starts(), "web").len(), 2, "web was stopped by the drain and started again");
    controller.shutdown().await;
    env.assert_no_survivors();
}

fn failing_flow(env: &Env, on_failure: &str) -> Config {
    let nodes = vec![
        DemoNode::new("db"),
        DemoNode::new("cache").after(&["db"]),
        DemoNode::new("web")
            .after(&["cache"])
            .args(&["--startup-delay", "10s", "--exit-after", "300ms", "--exit-code", "3"])
            .timeout("60s"),
    ];
    env.config(&env.flow("shop", "web", &format!("on_failure = \"{on_failure}\"\nhold_timeout = \"2m\""), &nodes))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_exits_fails_fast_and_rolls_back() {
    let env = Env::new();
    let config = failing_flow(&env, "rollback");
    let controller = env.controller(&config).await;
    let started = std::time::Instant::now();
    let status = controller.wake_and_wait("shop", Trigger::Request, Duration::from_secs(30)).await.expect("wake");
    assert!(started.elapsed() < Duration::from_secs(10), "failed fast, not at the 60 s node timeout");
    assert_eq!(status.state, FlowState::Failed);
    let failure = status.failure.expect("failure");
    assert_eq!(failure.node, "web");
    assert_eq!(failure.reason, "exited");
    assert!(failure.message.contains("exited with status 3"), "{}", failure.message);
    assert!(failure.message.contains("exiting with status 3"), "the last log line explains it: {}", failure.message);
    // Rollback stopped what this execution started, in reverse order.
    let stops: Vec<String> = env.stops().into_iter().map(|l| l.name).collect();
    assert_eq!(stops, ["cache", "db"]);
    env.assert_no_survivors();
    let history = controller.executions(Some("shop"), &Page::default()).await.expect("history").items;
    assert_eq!(history[0].outcome, Outcome::Failed);
    assert!(history[0].steps[2].reason.as_deref().is_some_and(|r| r.contains("status 3")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_leaves_the_woken_nodes_running() {
    let env = Env::new();
    let config = failing_flow(&env, "keep");
    let controller = env.controller(&config).await;
    let status = controller.wake_and_wait("shop", Trigger::Request, Duration::from_secs(30)).await.expect("wake");
    assert_eq!(status.state, FlowState::Failed);
    assert!(env.stops().is_empty(), "nothing stopped: {:?}", env.stops());
    for name in ["db", "cache"] {
        assert!(alive(lines_of(&env.starts(), name)[0].pid), "{name} kept running");
    }
    controller.shutdown().await;
    env.assert_no_survivors();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_request_retries_only_after_the_backoff() {
    let env = Env::new();
    let config = failing_flow(&env, "rollback");
    let controller = env.controller(&config).await;
    let first = controller.wake_and_wait("shop", Trigger::Request, Duration::from_secs(30)).await.expect("wake");
    assert_eq!(first.state, FlowState::Failed);
    let starts_after_first = env.starts().len();

    // Within the backoff (1 s after the first failure) a request gets the failure, nothing restarts.
    let again = controller.wake_and_wait("shop", Trigger::Request, Duration::from_secs(30)).await.expect("wake");
    assert_eq!(again.state, FlowState::Failed);
    assert_eq!(again.execution, first.execution, "no new execution during the backoff");
    assert_eq!(env.starts().len(), starts_after_first);

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let retried = controller.wake_and_wait("shop", Trigger::Request, Duration::from_secs(30)).await.expect("wake");
    assert_eq!(retried.state, FlowState::Failed);
    assert_ne!(retried.execution, first.execution, "a new execution after the backoff");
    assert_eq!(env.starts().len(), starts_after_first * 2);
    assert_eq!(controller.executions(Some("shop"), &Page::default()).await.expect("history").items.len(), 2);
    env.assert_no_survivors();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_flows_wake_nothing() {
    let env = Env::new();
    let config = env.config(&env.flow("shop", "web", "disabled = true", &[DemoNode::new("web")]));
    let controller = env.controller(&config).await;
    assert!(matches!(controller.wake("shop", Trigger::Request), Err(leannodes_control::WakeError::Disabled(_))));
    controller.set_disabled("shop", false).await.expect("enable");
    assert_eq!(controller.wake_and_wait("shop", Trigger::Request, Duration::from_secs(30)).await.expect("wake").state, FlowState::Awake);
    controller.shutdown().await;
    env.assert_no_survivors();
}

#[test]
fn no_process_outlives_a_dropped_controller_or_runtime() {
    let env = Env::new();
    let config = env.config(&env.flow("shop", "web", "", &diamond()));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(async {
        let controller = env.controller(&config).await;
        let status = controller.wake_and_wait("shop", Trigger::Request, Duration::from_secs(30)).await.expect("wake");
        assert_eq!(status.state, FlowState::Awake);
        // Dropped without shutdown.
        drop(controller);
    });
    env.assert_no_survivors();

    // And when the runtime itself goes away mid-wake.
    let env = Env::new();
    let config = env.config(&env.flow("shop", "web", "", &diamond()));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let controller = runtime.block_on(async {
        let controller = env.controller(&config).await;
        let _ = controller.wake_and_wait("shop", Trigger::Request, Duration::from_millis(350)).await;
        controller
    });
    assert!(!env.starts().is_empty());
    drop(runtime);
    drop(controller);
    env.assert_no_survivors();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_awake_flow_whose_nodes_change_stays_awake_and_its_dropped_node_stops() {
    let env = Env::new();
    let (db, cache, web) = (DemoNode::new("db"), DemoNode::new("cache").after(&["db"]), DemoNode::new("web").after(&["db"]));
    let before = env.config(&env.flow("shop", "web", "", &[db.clone(), cache.clone(), web.clone()]));
    let controller = env.controller(&before).await;
    assert_eq!(controller.wake_and_wait("shop", Trigger::Request, Duration::from_secs(30)).await.expect("wake").state, FlowState::Awake);
    let pid = |name: &str| lines_of(&env.starts(), name)[0].pid;
    let (db_pid, cache_pid, web_pid) = (pid("db"), pid("cache"), pid("web"));

    // The new definition drops `cache`, changes `web`'s wake budget and adds `search`.
    let search = DemoNode::new("search").after(&["db"]);
    let after = env.config(&env.flow("shop", "web", "", &[db, web.timeout("45s"), search]));
    controller.apply(&after).finish();

    // Still awake: what ran keeps running, the new node is started, the dropped one is stopped.
    let flow = || controller.flow("shop").expect("flow");
    assert_eventually!(flow().state() == FlowState::Awake, "the changed flow is awake again: {:?}", flow().status());
    assert_eventually!(!lines_of(&env.starts(), "search").is_empty(), "search was started");
    assert_eventually!(!alive(cache_pid), "the dropped node cache still runs");
    assert!(alive(db_pid) && alive(web_pid), "db and web kept running (restarting them would cut the flow off)");
    assert_eq!(lines_of(&env.starts(), "db").len(), 1, "db was not started twice");

    // And it drains like any awake flow: nothing survives.
    controller.drain("shop").await.expect("drain");
    assert_eq!(flow().state(), FlowState::Asleep);
    env.assert_no_survivors();
}
