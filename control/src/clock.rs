//! The wall clock keep-warm schedules and the savings ledger read.

use tokio::time::Instant;

/// Where wall-clock time comes from: the system clock in production; in tests, a fixed wall time that
/// advances with tokio's clock, so a paused clock controls schedules and savings.
#[derive(Debug, Clone, Copy, Default)]
pub enum WallClock {
    /// The system clock.
    #[default]
    System,
    /// `unix_ms` at `at`, advancing with tokio's clock.
    Anchored {
        /// The wall time at `at` (Unix milliseconds).
        unix_ms: i64,
        /// The tokio instant it corresponds to.
        at: Instant,
    },
}

impl WallClock {
    /// A clock that reads `unix_ms` now and then advances with tokio's clock (call within a runtime).
    pub fn anchored(unix_ms: i64) -> WallClock {
        WallClock::Anchored { unix_ms, at: Instant::now() }
    }

    /// The time now, in Unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        match self {
            WallClock::System => crate::unix_ms(),
            WallClock::Anchored { unix_ms, at } => unix_ms.saturating_add(i64::try_from(at.elapsed().as_millis()).unwrap_or(i64::MAX)),
        }
    }
}
