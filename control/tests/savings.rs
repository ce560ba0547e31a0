//! The savings estimate under a paused clock: a flow that slept a known time saves its CPU share of a
//! node-hour for each hour asleep, the awake hour in between saves nothing, and the ledger survives a
//! restart through the store. The node is a real process run by the real process driver.

use std::sync::Arc;
use std::time::Duration;

use leannodes_control::{Controller, ControllerOptions, FlowState, Trigger, WallClock};
use leannodes_drivers::{Drivers, ProcessDriver};
use leannodes_store::{Page, SqliteStore, Store};

const HOUR: u64 = 3_600_000;
const MONTH: Duration = Duration::from_secs(30 * 24 * 3600);

fn config() -> leannodes_config::Config {
    let text = r#"
[server.savings]
node_hourly_cost = 0.20
node_cpu = 4
currency = "EUR"

[[flow]]
name = "shop"
hosts = ["shop.test"]
upstream = "127.0.0.1:9"
idle_after = "2h"

  [[flow.node]]
  name = "worker"
  kind = "process"
  command = ["sleep", "3600"]
  cpu = 2
"#;
    leannodes_config::parse_toml(text, "savings.toml", std::path::Path::new(".")).expect("valid")
}

async fn controller(store: Arc<dyn Store>, clock: WallClock) -> Controller {
    let config = config();
    let options = ControllerOptions { clock, savings: config.server.savings.clone(), ..ControllerOptions::default() };
    Controller::start(&config, Drivers::local(ProcessDriver::default()), store, options).await.expect("start")
}

async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    std::thread::sleep(Duration::from_millis(20));
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

async fn advance(by: Duration) {
    tokio::time::advance(by).await;
    settle().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_flow_saves_its_cpu_share_of_a_node_hour_for_each_hour_asleep() {
    // The store's pool and the controller start on the real clock (a paused clock would time out the
    // pool's connect); the few milliseconds before the pause are the `start` below.
    let clock = WallClock::anchored(1_800_000_000_000);
    // A file, not `:memory:`: every new connection to an in-memory database is an empty one.
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("state.db")).await.expect("store"));
    let controller = controller(store.clone(), clock).await;
    settle().await;
    tokio::time::pause();
    let start = controller.savings(MONTH).flows[0].observed_ms;
    assert!(start < 1000, "watched since the start: {start} ms");

    // Three hours asleep: 3 h × (2 cores / 4 per node) × 0.20 = 0.30.
    advance(Duration::from_secs(3 * 3600)).await;
    let report = controller.savings(MONTH);
    assert_eq!((report.currency.as_str(), report.node_cpu, report.node_hourly_cost), ("EUR", 4.0, 0.2));
    let shop = &report.flows[0];
    assert_eq!((shop.asleep_ms, shop.observed_ms, shop.cpu), (3 * HOUR + start, 3 * HOUR + start, 2.0));
    assert!((shop.saved - 0.30).abs() < 1e-4, "{shop:?}");
    assert!((report.total - shop.saved).abs() < 1e-12);

    // Awake for an hour, then drained, then asleep for two more hours.
    let woke_at = clock.now_ms();
    controller.wake("shop", Trigger::Manual).expect("wake");
    settle().await;
    let mut state = FlowState::Waking;
    for _ in 0..60 {
        advance(Duration::from_secs(1)).await;
        state = controller.flow("shop").expect("flow").state();
        if state == FlowState::Awake {
            break;
        }
    }
    assert_eq!(state, FlowState::Awake);
    advance(Duration::from_secs(3600)).await;
    controller.drain("shop").await.expect("drain");
    let slept_at = clock.now_ms();
    settle().await;
    advance(Duration::from_secs(2 * 3600)).await;

    let awake = u64::try_from(slept_at - woke_at).expect("forward");
    let shop = controller.savings(MONTH).flows.remove(0);
    assert_eq!(shop.asleep_ms, 5 * HOUR + start, "three hours, then two: {shop:?}");
    assert_eq!(shop.observed_ms, 5 * HOUR + start + awake, "{shop:?}");
    assert!((shop.saved - 0.50).abs() < 1e-4, "{shop:?}");
    // A window shorter than the history counts only its part: the last two hours were asleep.
    let recent = controller.savings(Duration::from_secs(2 * 3600)).flows.remove(0);
    assert_eq!((recent.asleep_ms, recent.observed_ms), (2 * HOUR, 2 * HOUR));

    // A restart keeps the ledger: the history comes back from the store and the flow sleeps on. The
    // store is used on the real clock again (its pool times out under a paused one).
    tokio::time::resume();
    controller.executions(None, &Page::default()).await.expect("flush");
    controller.shutdown().await;
    drop(controller);
    let restarted = self::controller(store, clock).await;
    settle().await;
    tokio::time::pause();
    advance(Duration::from_secs(3600)).await;
    let shop = restarted.savings(MONTH).flows.remove(0);
    let real =
        shop.asleep_ms.checked_sub(6 * HOUR + start).unwrap_or_else(|| panic!("at least six hours asleep (start {start} ms): {shop:?}"));
    assert!(real < 5_000, "five hours before the restart, one after, and the real time the restart took: {shop:?}");
    assert!((shop.saved - 0.60).abs() < 1e-3, "{shop:?}");
}
