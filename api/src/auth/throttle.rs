//! Login throttling, per account and per client address, kept in the store (so every replica counts
//! the same failures). A key that failed too often within the window is blocked for a time that
//! doubles with each further failure, up to a ceiling. The account key is derived from the e-mail
//! address as typed, whether or not such a user exists: the answer (`429` with `Retry-After`) never
//! tells which accounts exist.

use leannodes_store::{Store, StoreError, Throttle};

use super::secret::sha256_hex;
use crate::error::ApiError;

/// When a key gets blocked, and for how long.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Failures within the window that block.
    pub(crate) max_failures: u32,
    /// The counting window.
    pub(crate) window_ms: i64,
    /// The first block; doubled for every further failure.
    pub(crate) block_ms: i64,
    /// The longest block.
    pub(crate) max_block_ms: i64,
}

/// Per account: 5 failures in 15 minutes, then 30 s, 1 min, … up to 15 min.
pub(crate) const ACCOUNT: Limits = Limits { max_failures: 5, window_ms: 15 * 60_000, block_ms: 30_000, max_block_ms: 15 * 60_000 };
/// Per client address: 20 failures in 15 minutes, then 1 min, 2 min, … up to 15 min.
pub(crate) const ADDRESS: Limits = Limits { max_failures: 20, window_ms: 15 * 60_000, block_ms: 60_000, max_block_ms: 15 * 60_000 };

/// The throttle key of an account (by e-mail address, existing or not).
pub(crate) fn account_key(email: &str) -> String {
    format!("account/{}", sha256_hex(&email.trim().to_lowercase()))
}

/// The throttle key of a client address.
pub(crate) fn address_key(address: &str) -> String {
    format!("address/{address}")
}

/// Seconds until the first of `keys` stops being blocked (`None`: none is).
pub(crate) async fn blocked(store: &dyn Store, keys: &[&str], now_ms: i64) -> Result<Option<u64>, ApiError> {
    let mut longest = None;
    for key in keys {
        if let Some(t) = store.records::<Throttle>().get(key).await? {
            if t.value.blocked_until_ms > now_ms {
                let secs = u64::try_from((t.value.blocked_until_ms - now_ms + 999) / 1000).unwrap_or(1);
                longest = Some(longest.map_or(secs, |l: u64| l.max(secs)));
            }
        }
    }
    Ok(longest)
}

/// Counts one failure of `key`.
pub(crate) async fn fail(store: &dyn Store, key: &str, limits: Limits, now_ms: i64) -> Result<(), ApiError> {
    let records = store.records::<Throttle>();
    for _ in 0..20 {
        let current = records.get(key).await?;
        let (failures, window_start_ms) = match &current {
            Some(t) if now_ms - t.value.window_start_ms < limits.window_ms => (t.value.failures.saturating_add(1), t.value.window_start_ms),
            _ => (1, now_ms),
        };
        let blocked_until_ms = if failures >= limits.max_failures {
            let doublings = (failures - limits.max_failures).min(20);
            now_ms + limits.block_ms.saturating_mul(1 << doublings).min(limits.max_block_ms)
        } else {
            current.as_ref().map_or(0, |t| t.value.blocked_until_ms)
        };
        let record = Throttle {
            key: key.to_string(),
            failures,
            window_start_ms,
            blocked_until_ms,
            expires_ms: (window_start_ms + limits.window_ms).max(blocked_until_ms) + limits.window_ms,
        };
        let written = match &current {
            None => records.create(&record).await,
            Some(t) => records.update(&record, t.version).await,
        };
        match written {
            Ok(_) => return Ok(()),
            Err(StoreError::Conflict { .. } | StoreError::NotFound { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::unavailable("store_busy", "too many concurrent sign-ins; retry"))
}

/// Forgets the failures of `key` (after a successful sign-in).
pub(crate) async fn clear(store: &dyn Store, key: &str) {
    match store.records::<Throttle>().delete(key, None).await {
        Ok(()) | Err(StoreError::NotFound { .. }) => {}
        Err(e) => tracing::warn!("cannot reset the login throttle: {e}"),
    }
}
