//! Keep-warm schedules at run time: one task per flow with `keep_warm` wakes it when a window's lead
//! starts and marks it held awake (the drainer leaves it alone) until the window closes; then the flow
//! drains as usual once idle.

use std::sync::{Arc, Weak};
use std::time::Duration;

use leannodes_config::schedule::{Window, combined_window};

use crate::controller::Inner;
use crate::flow::{FlowHandle, Trigger};

/// The longest the task sleeps before looking at the wall clock again (it may be set or jump).
const RECHECK: Duration = Duration::from_secs(60);

/// Follows `flow`'s keep-warm schedules until the flow is removed or the controller goes.
///
/// A flow is woken when a window opens (including at start inside a window). A manual drain inside a
/// window is respected: the flow stays asleep until a request wakes it, and is then held awake to the
/// window's end.
pub(crate) async fn keep_warm_loop(inner: Weak<Inner>, flow: Arc<FlowHandle>) {
    if flow.spec.keep_warm.is_empty() {
        return;
    }
    let mut status = flow.subscribe();
    loop {
        if status.borrow_and_update().removed {
            return;
        }
        let Some(i) = inner.upgrade() else { return };
        let now = i.options.clock.now_ms();
        let (until, next) = match combined_window(&flow.spec.keep_warm, now) {
            Window::Open { until_ms } => (until_ms, until_ms),
            Window::Closed { next_ms } => (0, next_ms.unwrap_or(i64::MAX)),
        };
        let before = flow.keep_warm_until.swap(until, std::sync::atomic::Ordering::Relaxed);
        if (before != 0) != (until != 0) {
            if until != 0 {
                tracing::info!(flow = flow.name(), until_ms = until, "keep-warm window opens; waking");
                if !flow.is_disabled() {
                    i.start_wake(&flow, Trigger::Schedule);
                }
            } else {
                tracing::info!(flow = flow.name(), "keep-warm window closed; the flow drains once idle");
            }
            flow.settings_changed.notify_waiters();
        }
        drop(i);
        let wait = Duration::from_millis(u64::try_from(next.saturating_sub(now)).unwrap_or(0)).clamp(Duration::from_millis(1), RECHECK);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            changed = status.changed() => if changed.is_err() { return },
        }
    }
}
