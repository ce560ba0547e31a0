//! Exponential backoff between failed wakes: 1 s, 2 s, 4 s … capped at 60 s, reset once a woken flow has
//! stayed up for [`STEADY`]. A node that dies on its own right after a wake counts too (a crash loop): the
//! first such crash is woken again at once, every further one waits out the backoff.

use std::time::Duration;

use tokio::time::Instant;

/// First retry delay.
pub(crate) const FIRST: Duration = Duration::from_secs(1);
/// Longest retry delay.
pub(crate) const MAX: Duration = Duration::from_secs(60);

/// How long a woken flow must stay up before its past failures are forgotten.
pub(crate) const STEADY: Duration = Duration::from_secs(60);

/// Consecutive failures of one flow and when the next attempt is allowed.
#[derive(Debug, Clone, Default)]
pub struct Backoff {
    failures: u32,
    retry_at: Option<Instant>,
}

impl Backoff {
    /// Records a failure now; returns when a retry is allowed.
    pub fn fail(&mut self) -> Instant {
        self.failures = self.failures.saturating_add(1);
        let delay = FIRST.saturating_mul(1u32 << (self.failures - 1).min(16)).min(MAX);
        let at = Instant::now() + delay;
        self.retry_at = Some(at);
        at
    }

    /// Records that a node died on its own soon after a successful wake. The first time (no failure since
    /// the flow was last steady) it may be woken again at once: `None`. Every further time is a crash
    /// loop: a failure, and when a retry is allowed.
    pub fn crashed(&mut self) -> Option<Instant> {
        if self.failures == 0 {
            self.failures = 1;
            self.retry_at = None;
            return None;
        }
        Some(self.fail())
    }

    /// Forgets past failures.
    pub fn succeed(&mut self) {
        *self = Backoff::default();
    }

    /// Whether a new attempt may start now.
    pub fn ready(&self) -> bool {
        self.retry_at.is_none_or(|at| Instant::now() >= at)
    }

    /// When the next attempt may start, if it is held back.
    pub fn retry_at(&self) -> Option<Instant> {
        self.retry_at.filter(|at| Instant::now() < *at)
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn doubles_from_one_second_to_a_minute() {
        let mut backoff = Backoff::default();
        assert!(backoff.ready());
        let mut delays = Vec::new();
        for _ in 0..9 {
            let at = backoff.fail();
            delays.push((at - Instant::now()).as_secs());
        }
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert!(!backoff.ready());
        tokio::time::advance(Duration::from_secs(59)).await;
        assert!(!backoff.ready());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(backoff.ready());
        backoff.succeed();
        assert_eq!((backoff.fail() - Instant::now()).as_secs(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_crash_after_a_wake_is_retried_at_once_and_a_crash_loop_backs_off() {
        let mut backoff = Backoff::default();
        assert_eq!(backoff.crashed(), None, "a first crash is woken again at once");
        let delays: Vec<u64> = (0..3).map(|_| backoff.crashed().map(|at| (at - Instant::now()).as_secs()).unwrap_or(0)).collect();
        assert_eq!(delays, [2, 4, 8], "then it backs off, and keeps growing");
        backoff.succeed();
        assert_eq!(backoff.crashed(), None, "once steady, a crash is a first crash again");
        let mut failing = Backoff::default();
        failing.fail();
        assert!(failing.crashed().is_some(), "a crash right after failed wakes backs off too");
    }
}
