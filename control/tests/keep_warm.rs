//! Keep-warm windows under a paused clock: the flow is woken ahead of the window, held awake through it
//! although idle, shown in explain, and drained once the window closes. The wall clock follows tokio's
//! paused clock from a fixed Monday morning; the node is a real process run by the real process driver.

use std::sync::Arc;
use std::time::Duration;

use leannodes_control::{Controller, ControllerOptions, ExecutionEvent, FlowState, ReasonKind, WallClock};
use leannodes_drivers::{Drivers, ProcessDriver};
use leannodes_store::SqliteStore;

fn unix_ms(rfc3339: &str) -> i64 {
    rfc3339.parse::<jiff::Timestamp>().expect("time").as_millisecond()
}

/// The controller, and the folder of its store (kept for the test's life).
async fn controller() -> (Controller, tempfile::TempDir) {
    let text = r#"
[[flow]]
name = "shop"
hosts = ["shop.test"]
upstream = "127.0.0.1:9"
idle_after = "10m"
keep_warm = [{ cron = "0 9 * * 1-5", for = "1h", tz = "Europe/Berlin", ahead = "2m" }]

  [[flow.node]]
  name = "worker"
  kind = "process"
  command = ["sleep", "3600"]
"#;
    let config = leannodes_config::parse_toml(text, "keep-warm.toml", std::path::Path::new(".")).expect("valid");
    // A file, not `:memory:`: every new connection to an in-memory database is an empty one.
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("state.db")).await.expect("store");
    // Monday 30 November 2026, 07:50 UTC = 08:50 in Berlin: the window opens at 09:00 Berlin (08:00 UTC).
    let options = ControllerOptions { clock: WallClock::anchored(unix_ms("2026-11-30T07:50:00Z")), ..ControllerOptions::default() };
    (Controller::start(&config, Drivers::local(ProcessDriver::default()), Arc::new(store), options).await.expect("start"), dir)
}

/// Lets background tasks run at the current (paused) instant; real process events get a moment of real
/// time.
async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    std::thread::sleep(Duration::from_millis(20));
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

async fn state_after(controller: &Controller, advance: Duration) -> FlowState {
    tokio::time::advance(advance).await;
    settle().await;
    controller.flow("shop").expect("flow").state()
}

/// Advances one second at a time until the flow is in `state` (at most `limit` seconds).
async fn until_state(controller: &Controller, state: FlowState, limit: u32) -> FlowState {
    let mut now = state_after(controller, Duration::ZERO).await;
    for _ in 0..limit {
        if now == state {
            break;
        }
        now = state_after(controller, Duration::from_secs(1)).await;
    }
    now
}

#[tokio::test(flavor = "current_thread")]
async fn a_flow_is_woken_ahead_of_its_window_held_through_it_and_drained_after() {
    // The store's pool and the controller start on the real clock (a paused clock would time out the
    // pool's connect), a few milliseconds before the pause.
    let (controller, _dir) = controller().await;
    settle().await;
    tokio::time::pause();

    // 07:50 UTC: asleep; explain names the next wake (07:58 UTC: two minutes ahead of 09:00 Berlin).
    assert_eq!(controller.flow("shop").expect("flow").state(), FlowState::Asleep);
    let e = controller.explain("shop").expect("explain");
    assert_eq!(e.next_keep_warm_ms, Some(unix_ms("2026-11-30T07:58:00Z")));
    assert!(e.reasons.iter().any(|r| r.kind == ReasonKind::Schedule && r.message.contains("2026-11-30T07:58:00Z")), "{:?}", e.reasons);

    let mut events = controller.events().subscribe();
    // 07:57:59 (and those milliseconds): still asleep.
    assert_eq!(state_after(&controller, Duration::from_secs(7 * 60 + 59)).await, FlowState::Asleep);
    // 07:58: the lead starts and the flow wakes without a request.
    assert_eq!(until_state(&controller, FlowState::Awake, 30).await, FlowState::Awake);
    let started = std::iter::from_fn(|| events.try_recv().ok()).find_map(|e| match e {
        ExecutionEvent::ExecutionStarted { trigger, .. } => Some(trigger),
        _ => None,
    });
    assert_eq!(started.as_deref(), Some("schedule"));

    // 08:55, no activity for 57 minutes (idle_after is 10m): held awake by the window.
    assert_eq!(state_after(&controller, Duration::from_secs(57 * 60)).await, FlowState::Awake);
    let e = controller.explain("shop").expect("explain");
    assert_eq!(e.keep_warm_until_ms, Some(unix_ms("2026-11-30T09:00:00Z")));
    assert_eq!(e.drains_in_ms, None, "it does not drain inside the window");
    assert!(e.reasons.iter().any(|r| r.kind == ReasonKind::Schedule && r.message.contains("held awake")), "{:?}", e.reasons);

    // 09:00: the window closes; idle for an hour, it drains at once.
    assert_eq!(state_after(&controller, Duration::from_secs(5 * 60 - 1)).await, FlowState::Awake, "08:59:59");
    assert_eq!(until_state(&controller, FlowState::Asleep, 120).await, FlowState::Asleep);
    assert!(!controller.views()[0].nodes[0].running, "the process was stopped");
    let view = controller.views().remove(0);
    assert_eq!(view.keep_warm_until_ms, None);
    assert_eq!(view.next_keep_warm_ms, Some(unix_ms("2026-12-01T07:58:00Z")), "Tuesday, two minutes before 09:00 Berlin");
}
