//! A manual drain of a flow that is still waking stops the wake (and rolls back what it started)
//! instead of waiting for it. The node is a real process (`sleep`) run by the real process driver whose
//! readiness probe never succeeds.

use std::sync::Arc;
use std::time::Duration;

use leannodes_control::{Controller, ControllerOptions, FlowState, Trigger};
use leannodes_drivers::{Drivers, ProcessDriver};
use leannodes_store::{Page, SqliteStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_drain_stops_a_wake_in_progress() {
    let text = r#"
[[flow]]
name = "shop"
hosts = ["shop.test"]
upstream = "127.0.0.1:9"
node_timeout = "10m"

  [[flow.node]]
  name = "slow"
  kind = "process"
  command = ["sleep", "3600"]
  ready = { tcp = "127.0.0.1:9" }
"#;
    let config = leannodes_config::parse_toml(text, "drain.toml", std::path::Path::new(".")).expect("valid");
    let store = Arc::new(SqliteStore::in_memory().await.expect("store"));
    let controller =
        Controller::start(&config, Drivers::local(ProcessDriver::default()), store, ControllerOptions::default()).await.expect("start");
    let mut status = controller.wake("shop", Trigger::Manual).expect("wake");
    status.wait_for(|s| s.nodes[0].state == leannodes_control::NodeState::Starting).await.expect("the node starts");
    let flow = controller.flow("shop").expect("flow");
    assert_eq!(flow.state(), FlowState::Waking);
    // The wake would go on for ten minutes; the drain ends it now.
    tokio::time::timeout(Duration::from_secs(20), controller.drain("shop"))
        .await
        .expect("the drain does not wait for the wake")
        .expect("drain");
    assert_eq!(flow.state(), FlowState::Asleep);
    let history = controller.executions(Some("shop"), &Page::default()).await.expect("history");
    assert_eq!(history.items[0].outcome, leannodes_store::Outcome::Cancelled);
    assert_eq!(history.items[0].error.as_deref(), Some("the flow was drained"));
    // A later wake is not affected by the earlier drain.
    let mut again = controller.wake("shop", Trigger::Manual).expect("wake again");
    again.wait_for(|s| s.nodes[0].state == leannodes_control::NodeState::Starting).await.expect("starts again");
    assert_eq!(flow.state(), FlowState::Waking, "still waking: nothing cancelled it");
    controller.shutdown().await;
}
