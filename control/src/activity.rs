//! The activity tracker: when a flow last saw a request start or finish, or bytes on an upgraded
//! connection. [`Activity::record`] sits on the proxy's hot path: one clock read and one atomic
//! `fetch_max`, no locks, no allocation.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Last activity of one flow, as milliseconds since the tracker's creation (tokio's clock, so tests can
/// pause and advance time).
#[derive(Debug)]
pub struct Activity {
    origin: Instant,
    last_ms: AtomicU64,
}

impl Default for Activity {
    fn default() -> Self {
        Activity::new()
    }
}

impl Activity {
    /// A tracker whose last activity is now.
    pub fn new() -> Activity {
        Activity { origin: Instant::now(), last_ms: AtomicU64::new(0) }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Records activity now. Lock-free and cheap.
    #[inline]
    pub fn record(&self) {
        self.last_ms.fetch_max(self.now_ms(), Ordering::Relaxed);
    }

    /// Records activity that happened at `at` (e.g. on another replica); never moves the last activity back.
    pub fn record_at(&self, at: Instant) {
        let ms = at.checked_duration_since(self.origin).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.last_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// Takes over another tracker's last activity (a flow replaced by a reload).
    pub fn carry_over(&self, other: &Activity) {
        self.record_at(other.last());
    }

    /// When the last activity happened.
    pub fn last(&self) -> Instant {
        self.origin + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }

    /// How long the flow has been idle.
    pub fn idle_for(&self) -> Duration {
        Duration::from_millis(self.now_ms().saturating_sub(self.last_ms.load(Ordering::Relaxed)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn idle_time_follows_the_clock_and_resets_on_record() {
        let activity = Activity::new();
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(activity.idle_for(), Duration::from_secs(30));
        activity.record();
        assert_eq!(activity.idle_for(), Duration::ZERO);
        tokio::time::advance(Duration::from_millis(1500)).await;
        assert_eq!(activity.idle_for(), Duration::from_millis(1500));
        assert_eq!(activity.last() + Duration::from_millis(1500), Instant::now());
    }

    #[test]
    fn concurrent_records_never_move_backwards() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime");
        let _guard = rt.enter();
        let activity = std::sync::Arc::new(Activity::new());
        std::thread::scope(|s| {
            for _ in 0..4 {
                let a = activity.clone();
                let handle = rt.handle().clone();
                s.spawn(move || {
                    let _g = handle.enter();
                    for _ in 0..10_000 {
                        a.record();
                    }
                });
            }
        });
        assert!(activity.idle_for() < Duration::from_secs(5));
    }
}
