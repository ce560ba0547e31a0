//! Exponential backoff between failed wakes: 1 s, 2 s, 4 s … capped at 60 s, reset by a success.

use std::time::Duration;

use tokio::time::Instant;

/// First retry delay.
pub(crate) const FIRST: Duration = Duration::from_secs(1);
/// Longest retry delay.
pub(crate) const MAX: Duration = Duration::from_secs(60);

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
}
