//! Coordination between LeanNodes replicas that share a store (Postgres or DynamoDB), through the store
//! and the platform only, never a consensus of our own:
//!
//! - **Cold-start claims**: a wake of a shared flow (every node a Kubernetes or external workload) first
//!   claims the lease `claim/FLOW`. The claimant runs the DAG and renews the lease while it works; the
//!   other replicas run the same DAG in *follower* mode, observing readiness without asking to scale,
//!   and release their own held requests when the nodes are ready. If the claim vanishes without a
//!   successful execution behind it (the claimant died and its lease expired), a follower claims it and
//!   resumes the wake. If the claimant's execution failed, the followers fail with its reason.
//! - **Activity merge**: every replica writes its flows' last activity to the store every
//!   `activity_flush` and raises its own to the latest of all replicas (max), so a flow busy on one
//!   replica is idle on none.
//! - **Drain leader**: one replica holds the lease `leader/drainer` and alone drains shared flows,
//!   including those it never woke itself. Flows with process nodes are local to each replica and
//!   drained by it.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use leannodes_store::{ExecutionRecord, Lease, LeaseRequest, Outcome, Store};
use tokio::time::Instant;

use crate::controller::Inner;
use crate::unix_ms;

/// The lease of the drain leader.
pub(crate) const LEADER_LEASE: &str = "leader/drainer";

/// The lease that claims a flow's cold start.
pub(crate) fn claim_name(flow: &str) -> String {
    format!("claim/{flow}")
}

/// How often a lease of time to live `ttl` is renewed.
fn renew_every(ttl: Duration) -> Duration {
    ttl / 3
}

/// The longest a wake (claiming, flushing its record, releasing its claim) or a lease renewal waits for
/// one store call before it goes on as if the store had failed: half a lease's time to live, at most 5 s.
/// A store that accepts connections but never answers must not hold requests for the hold budget; a
/// claim taken later than this would need renewing before it is even returned; and a claimant's flush
/// at the end of a wake (at most a third of the time to live after the last renewal) ends while its
/// claim still lives.
pub(crate) fn store_patience(ttl: Duration) -> Duration {
    (ttl / 2).min(Duration::from_secs(5))
}

/// How often a follower looks at the claim it follows.
fn poll_every(ttl: Duration) -> Duration {
    (ttl / 6).clamp(Duration::from_millis(100), Duration::from_secs(1))
}

/// Renews `lease` until dropped (the claimant drops it when its execution ends).
pub(crate) async fn keep_renewed(store: Arc<dyn Store>, mut lease: Lease, ttl: Duration) -> Infallible {
    loop {
        tokio::time::sleep(renew_every(ttl)).await;
        match leannodes_store::within(store_patience(ttl), "renew lease", store.renew_lease(&lease, ttl)).await {
            Ok(Some(renewed)) => lease = renewed,
            Ok(None) => {
                tracing::warn!(lease = %lease.name, "claim lost (expired before renewal); another replica may resume this wake");
                return std::future::pending().await;
            }
            Err(e) => tracing::warn!(lease = %lease.name, "cannot renew claim: {e}"),
        }
    }
}

/// How a followed claim ended, when it ended without the nodes becoming ready here first.
#[derive(Debug)]
pub(crate) enum ClaimEnd {
    /// The claimant's execution failed.
    Failed {
        /// The node that failed, when the record says.
        node: Option<String>,
        /// Why.
        message: String,
    },
    /// The claimant's execution succeeded: every node was ready when it finished.
    Succeeded,
    /// The claim is gone without a finished execution: its holder died. Claim it.
    Abandoned,
}

/// Watches the claim `name` (held by another replica) until it ends.
pub(crate) async fn watch_claim(store: Arc<dyn Store>, name: String, ttl: Duration) -> ClaimEnd {
    let mut last: Option<Lease> = None;
    loop {
        match store.lease(&name).await {
            Ok(Some(lease)) => last = Some(lease),
            Ok(None) => {
                let Some(claim) = &last else { return ClaimEnd::Abandoned };
                match store.execution(&claim.data).await {
                    Ok(Some(record)) if record.outcome == Outcome::Succeeded => return ClaimEnd::Succeeded,
                    Ok(Some(record)) if record.outcome == Outcome::Failed => return failed(&claim.holder, &record),
                    Ok(_) => {
                        tracing::warn!(claim = %name, holder = %claim.holder, "the replica that claimed this wake is gone; resuming it");
                        return ClaimEnd::Abandoned;
                    }
                    Err(e) => tracing::warn!(claim = %name, "cannot read the claimant's execution: {e}"),
                }
            }
            Err(e) => tracing::warn!(claim = %name, "cannot read the claim: {e}"),
        }
        tokio::time::sleep(poll_every(ttl)).await;
    }
}

fn failed(holder: &str, record: &ExecutionRecord) -> ClaimEnd {
    let step = record.steps.iter().find(|s| s.state == "failed");
    ClaimEnd::Failed {
        node: step.map(|s| s.node.clone()),
        message: format!(
            "replica `{holder}` ran this wake and it failed: {}",
            step.and_then(|s| s.reason.clone()).or_else(|| record.error.clone()).unwrap_or_else(|| "no reason recorded".into())
        ),
    }
}

/// How long deletion marks and expired records stay before the leader purges them.
const PURGE_AFTER: Duration = Duration::from_secs(24 * 3600);
/// How often the leader purges.
const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// Holds (or tries to take) the drain leadership while the controller lives; the leader also purges
/// long-expired records now and then.
pub(crate) async fn leader_loop(inner: Weak<Inner>) {
    let mut lease: Option<Lease> = None;
    let mut last_purge: Option<Instant> = None;
    loop {
        let Some(strong) = inner.upgrade() else { return };
        let options = strong.options.clone();
        // Bounded: a store that hangs must not leave this replica believing it still leads after its
        // lease has expired (another replica may take it then).
        let patience = store_patience(options.claim_ttl);
        let next = match &lease {
            Some(held) => leannodes_store::within(patience, "renew lease", strong.store.renew_lease(held, options.claim_ttl)).await,
            None => {
                let request = LeaseRequest { name: LEADER_LEASE, holder: &options.replica_id, ttl: options.claim_ttl, data: "" };
                leannodes_store::within(patience, "acquire lease", strong.store.acquire_lease(request)).await
            }
        };
        let leading = match next {
            Ok(next) => {
                lease = next;
                lease.is_some()
            }
            Err(e) => {
                // Unknown: stop draining until the store answers again.
                tracing::warn!("cannot renew or take the drain leadership: {e}");
                false
            }
        };
        if strong.leader.swap(leading, Ordering::Relaxed) != leading {
            tracing::info!(replica = %options.replica_id, leading, "drain leadership changed");
            if leading {
                strong.notices.publish(crate::Notice::new(
                    crate::NoticeKind::LeaderChanged,
                    None,
                    format!("{} took the drain leadership", options.replica_id),
                    format!("Replica {} now drains shared flows and runs the housekeeping.", options.replica_id),
                    &options.replica_id,
                ));
            }
        }
        *strong.leader_lease.lock() = lease.clone().filter(|_| leading);
        if leading && last_purge.is_none_or(|at| at.elapsed() >= PURGE_EVERY) {
            last_purge = Some(Instant::now());
            let before = unix_ms().saturating_sub(i64::try_from(PURGE_AFTER.as_millis()).unwrap_or(i64::MAX));
            match strong.store.purge_expired(before).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(records = n, "purged long-expired records"),
                Err(e) => tracing::warn!("cannot purge expired records: {e}"),
            }
        }
        drop(strong);
        tokio::time::sleep(renew_every(options.claim_ttl)).await;
    }
}

/// The wall-clock time of an instant of tokio's clock.
fn wall_ms(at: Instant) -> i64 {
    let age = i64::try_from(Instant::now().saturating_duration_since(at).as_millis()).unwrap_or(i64::MAX);
    unix_ms().saturating_sub(age)
}

/// The instant of tokio's clock at a wall-clock time (`None`: before this process's clock began).
fn instant_of(ms: i64) -> Option<Instant> {
    let age = u64::try_from(unix_ms().saturating_sub(ms)).unwrap_or(0);
    Instant::now().checked_sub(Duration::from_millis(age))
}

/// Writes local activity to the store and takes in every replica's, every `activity_flush`.
pub(crate) async fn activity_loop(inner: Weak<Inner>) {
    // Per flow: the latest activity the store already has from or for us.
    let mut known: HashMap<String, Instant> = HashMap::new();
    loop {
        let Some(strong) = inner.upgrade() else { return };
        let every = strong.options.activity_flush;
        for flow in strong.all_flows() {
            let last = flow.activity.last();
            if known.get(flow.name()).is_some_and(|k| *k >= last) {
                continue;
            }
            match strong.store.record_activity(flow.name(), wall_ms(last)).await {
                Ok(()) => {
                    known.insert(flow.name().to_string(), last);
                }
                Err(e) => tracing::warn!(flow = flow.name(), "cannot flush activity: {e}"),
            }
        }
        match strong.store.activity().await {
            Ok(merged) => {
                for (name, ms) in merged {
                    let (Some(flow), Some(at)) = (strong.flow(&name), instant_of(ms)) else { continue };
                    flow.activity.record_at(at);
                    let k = known.entry(name).or_insert(at);
                    *k = (*k).max(at);
                }
            }
            Err(e) => tracing::warn!("cannot read merged activity: {e}"),
        }
        drop(strong);
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wall_clock_and_tokio_clock_convert_both_ways() {
        let then = Instant::now().checked_sub(Duration::from_secs(3)).expect("3 s ago");
        let ms = wall_ms(then);
        let back = instant_of(ms).expect("instant");
        let error = if back > then { back - then } else { then - back };
        assert!(error < Duration::from_millis(50), "round trip within a few ms, was {error:?}");
        assert!((unix_ms() - ms - 3_000).abs() < 50);
    }

    #[test]
    fn followers_poll_faster_than_leases_renew() {
        for ttl in [Duration::from_secs(1), Duration::from_secs(15), Duration::from_secs(60)] {
            assert!(poll_every(ttl) <= renew_every(ttl));
        }
    }
}
