//! Property test of the DAG executor with real processes: for any DAG of process nodes (declared in any
//! order), a wake starts every node only after all of its `after` nodes are ready, and a drain stops
//! every node before the nodes it comes after. Each node is a shell that logs `start`, then `ready` just
//! before it creates the file its readiness probe looks for, and `stop` when it gets SIGTERM.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use leannodes_control::{Controller, ControllerOptions, FlowState, Trigger};
use leannodes_drivers::{Drivers, ProcessDriver};
use leannodes_store::SqliteStore;
use proptest::prelude::*;

/// Up to 6 nodes; an edge `i → j` (j after i) only for i < j, so every graph is acyclic; `order` is the
/// order the nodes are written in the file.
fn dag() -> impl Strategy<Value = (usize, Vec<(usize, usize)>, Vec<usize>)> {
    (1usize..=6).prop_flat_map(|n| {
        let pairs: Vec<(usize, usize)> = (0..n).flat_map(|i| (i + 1..n).map(move |j| (i, j))).collect();
        let edges = prop::sample::subsequence(pairs.clone(), 0..=pairs.len());
        let order = Just((0..n).collect::<Vec<_>>()).prop_shuffle();
        (Just(n), edges, order)
    })
}

fn node(dir: &Path, i: usize, after: &[String]) -> String {
    let log = dir.join("order.log").display().to_string();
    let ready = dir.join(format!("n{i}.ready")).display().to_string();
    // The trap is set before the node can be seen ready: a drain may follow at once.
    let script = format!(
        "trap 'echo stop n{i} >> {log}; exit 0' TERM; echo start n{i} >> {log}; echo ready n{i} >> {log}; touch {ready}; \
         sleep 3600 & wait $!"
    );
    let after = after.iter().map(|a| format!("\"{a}\"")).collect::<Vec<_>>().join(", ");
    format!(
        "\n  [[flow.node]]\n  name = \"n{i}\"\n  kind = \"process\"\n  command = [\"sh\", \"-c\", {}]\n  ready = {{ exec = [\"test\", \"-f\", \"{ready}\"] }}\n  after = [{after}]\n",
        serde_json::to_string(&script).unwrap_or_default()
    )
}

/// Line numbers of each event in the log.
fn position(log: &[String], event: &str) -> Option<usize> {
    log.iter().position(|l| l == event)
}

fn run_case(n: usize, edges: &[(usize, usize)], order: &[usize]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut text = String::from("[[flow]]\nname = \"dag\"\nhosts = [\"dag.test\"]\nupstream = \"127.0.0.1:9\"\nnode_timeout = \"30s\"\n");
    for &i in order {
        let after: Vec<String> = edges.iter().filter(|(_, j)| *j == i).map(|(a, _)| format!("n{a}")).collect();
        text.push_str(&node(dir.path(), i, &after));
    }
    let config = leannodes_config::parse_toml(&text, "dag.toml", dir.path()).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    runtime.block_on(async {
        let store = Arc::new(SqliteStore::in_memory().await.expect("store"));
        let controller =
            Controller::start(&config, Drivers::local(ProcessDriver::default()), store, ControllerOptions::default()).await.expect("start");
        let mut status = controller.wake("dag", Trigger::Manual).expect("wake");
        tokio::time::timeout(Duration::from_secs(60), status.wait_for(|s| s.state == FlowState::Awake))
            .await
            .expect("awake in time")
            .expect("status");
        controller.drain("dag").await.expect("drain");
        controller.shutdown().await;
    });
    let log: Vec<String> = std::fs::read_to_string(dir.path().join("order.log")).unwrap_or_default().lines().map(str::to_string).collect();
    for i in 0..n {
        for event in ["start", "ready", "stop"] {
            prop_assert!(position(&log, &format!("{event} n{i}")).is_some(), "no `{event} n{i}` in {log:?}");
        }
    }
    for (a, b) in edges {
        let (ready_a, start_b) = (position(&log, &format!("ready n{a}")), position(&log, &format!("start n{b}")));
        prop_assert!(ready_a < start_b, "n{b} (after n{a}) started before n{a} was ready: {log:?}");
        let (stop_a, stop_b) = (position(&log, &format!("stop n{a}")), position(&log, &format!("stop n{b}")));
        prop_assert!(stop_b < stop_a, "n{a} stopped before n{b}, which comes after it: {log:?}");
    }
    Ok(())
}

/// `PROPTEST_CASES` for a longer run, else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

proptest! {
    // Each case starts and stops real processes: a few dozen graphs cover the shapes (chains, diamonds,
    // forests, disconnected nodes) well.
    #![proptest_config(ProptestConfig { cases: cases(24), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn every_dag_wakes_after_its_edges_and_drains_in_reverse((n, edges, order) in dag()) {
        run_case(n, &edges, &order)?;
    }
}
