//! The idle drainer under a paused clock: the sliding window, activity, pinning. Nodes are real
//! processes (`sleep`), run by the real process driver.

use std::sync::Arc;
use std::time::Duration;

use leannodes_control::{Controller, ControllerOptions, FlowState, Trigger};
use leannodes_drivers::{Drivers, ProcessDriver};
use leannodes_store::SqliteStore;

fn config(settings: &str) -> leannodes_config::Config {
    let text = format!(
        r#"
[[flow]]
name = "shop"
hosts = ["shop.test"]
upstream = "127.0.0.1:9"
idle_after = "10m"
{settings}

  [[flow.node]]
  name = "worker"
  kind = "process"
  command = ["sleep", "3600"]
"#
    );
    leannodes_config::parse_toml(&text, "idle.toml", std::path::Path::new(".")).expect("valid")
}

async fn controller(settings: &str) -> Controller {
    let store = SqliteStore::in_memory().await.expect("store");
    Controller::start(&config(settings), Drivers::local(ProcessDriver::default()), Arc::new(store), ControllerOptions::default())
        .await
        .expect("start")
}

/// Lets background tasks run at the current (paused) instant.
async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    // Real process exits are observed by other tasks; give them a moment of real time.
    std::thread::sleep(Duration::from_millis(50));
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

async fn state_after(controller: &Controller, advance: Duration) -> FlowState {
    tokio::time::advance(advance).await;
    settle().await;
    controller.flow("shop").expect("flow").state()
}

#[tokio::test(flavor = "current_thread")]
async fn the_idle_window_slides_with_activity() {
    let controller = controller("").await;
    let status = controller.wake_and_wait("shop", Trigger::Request, Duration::from_secs(10)).await.expect("wake");
    assert_eq!(status.state, FlowState::Awake);
    tokio::time::pause();
    let flow = controller.flow("shop").expect("flow");

    assert_eq!(state_after(&controller, Duration::from_secs(6 * 60)).await, FlowState::Awake);
    flow.activity.record();
    // 12 minutes after the wake but only 6 after the last activity.
    assert_eq!(state_after(&controller, Duration::from_secs(6 * 60)).await, FlowState::Awake);
    // 10 minutes and a bit after the last activity.
    let mut state = state_after(&controller, Duration::from_secs(4 * 60 + 1)).await;
    for _ in 0..100 {
        if state == FlowState::Asleep {
            break;
        }
        state = state_after(&controller, Duration::from_secs(1)).await;
    }
    assert_eq!(state, FlowState::Asleep);
    assert!(!controller.views()[0].nodes[0].running, "the process was stopped");
}

#[tokio::test(flavor = "current_thread")]
async fn a_pinned_flow_is_never_drained_until_unpinned() {
    let controller = controller("pinned = true").await;
    assert_eq!(controller.wake_and_wait("shop", Trigger::Request, Duration::from_secs(10)).await.expect("wake").state, FlowState::Awake);
    tokio::time::pause();
    assert_eq!(state_after(&controller, Duration::from_secs(3600)).await, FlowState::Awake);
    controller.set_pinned("shop", false).await.expect("unpin");
    let mut state = state_after(&controller, Duration::ZERO).await;
    for _ in 0..100 {
        if state == FlowState::Asleep {
            break;
        }
        state = state_after(&controller, Duration::from_secs(1)).await;
    }
    assert_eq!(state, FlowState::Asleep, "idle for an hour: drained as soon as it was unpinned");
}
