//! What sleeping saves. Each flow's asleep intervals are kept in a ledger (saved in the store, so a
//! restart keeps the history); over a window, a flow saves its hours asleep × (its CPU / `node_cpu`) ×
//! `node_hourly_cost`. A flow's CPU is the sum of its nodes': declared `cpu`, else what the platform
//! says the workload requests (Kubernetes), else 0.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use leannodes_store::SleepLedger;
use parking_lot::Mutex;
use serde::Serialize;

use crate::controller::{Controller, Inner};

pub mod simulate;
#[cfg(test)]
mod tests;
use crate::flow::{FlowHandle, FlowState};

/// How much history a ledger keeps.
pub const HISTORY: Duration = Duration::from_secs(90 * 24 * 3600);

/// One flow's savings over a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowSavings {
    /// The flow.
    pub flow: String,
    /// Time asleep within the window (milliseconds).
    pub asleep_ms: u64,
    /// The part of the window the ledger covers (milliseconds): shorter than the window for a flow
    /// that is newer than it.
    pub observed_ms: u64,
    /// CPU cores the flow uses while awake.
    pub cpu: f64,
    /// Estimated cost saved (`currency`).
    pub saved: f64,
}

/// Every flow's savings over a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SavingsReport {
    /// The window (milliseconds up to now).
    pub window_ms: u64,
    /// The currency of `saved`.
    pub currency: String,
    /// Cost of one node-hour, as configured.
    pub node_hourly_cost: f64,
    /// Cores per node, as configured.
    pub node_cpu: f64,
    /// Saved by all flows.
    pub total: f64,
    /// Per flow, largest saving first.
    pub flows: Vec<FlowSavings>,
}

/// The ledgers of all flows, by name.
#[derive(Debug, Default)]
pub(crate) struct Ledgers(Mutex<HashMap<String, SleepLedger>>);

impl Ledgers {
    /// Takes the ledgers saved in the store.
    pub(crate) fn load(&self, saved: Vec<SleepLedger>) {
        let mut map = self.0.lock();
        for ledger in saved {
            map.insert(ledger.flow.clone(), ledger);
        }
    }

    /// Records that `flow` is asleep (`true`) or not from `now_ms`; returns the ledger to save when
    /// that changed it.
    pub(crate) fn mark(&self, flow: &str, asleep: bool, now_ms: i64) -> Option<SleepLedger> {
        let mut map = self.0.lock();
        let ledger = map.entry(flow.to_string()).or_insert_with(|| SleepLedger {
            flow: flow.to_string(),
            tracked_since_ms: now_ms,
            intervals: Vec::new(),
            asleep_since_ms: None,
        });
        match (asleep, ledger.asleep_since_ms) {
            (true, None) => ledger.asleep_since_ms = Some(now_ms),
            (false, Some(since)) => {
                ledger.asleep_since_ms = None;
                if now_ms > since {
                    ledger.intervals.push([since, now_ms]);
                }
                let keep_from = now_ms.saturating_sub(i64::try_from(HISTORY.as_millis()).unwrap_or(i64::MAX));
                ledger.intervals.retain(|[_, to]| *to > keep_from);
                ledger.tracked_since_ms = ledger.tracked_since_ms.max(keep_from);
            }
            _ => return None,
        }
        Some(ledger.clone())
    }

    /// The ledger of `flow`, if it has one.
    pub(crate) fn get(&self, flow: &str) -> Option<SleepLedger> {
        self.0.lock().get(flow).cloned()
    }

    /// `(asleep, observed)` milliseconds of `flow` within `[from_ms, now_ms)`.
    fn asleep(&self, flow: &str, from_ms: i64, now_ms: i64) -> (u64, u64) {
        let map = self.0.lock();
        let Some(ledger) = map.get(flow) else { return (0, 0) };
        let overlap = |a: i64, b: i64| u64::try_from(b.min(now_ms).saturating_sub(a.max(from_ms))).unwrap_or(0);
        let closed: u64 = ledger.intervals.iter().map(|[a, b]| overlap(*a, *b)).sum();
        let open = ledger.asleep_since_ms.map_or(0, |since| overlap(since, now_ms));
        (closed + open, overlap(ledger.tracked_since_ms, now_ms))
    }
}

/// Keeps `flow`'s ledger current with its state until the flow is removed or the controller goes.
pub(crate) async fn ledger_loop(inner: Weak<Inner>, flow: Arc<FlowHandle>) {
    let mut status = flow.subscribe();
    loop {
        let (state, removed) = {
            let s = status.borrow_and_update();
            (s.state, s.removed)
        };
        if removed {
            return;
        }
        let Some(i) = inner.upgrade() else { return };
        if let Some(ledger) = i.ledgers.mark(flow.name(), state == FlowState::Asleep, i.options.clock.now_ms())
            && i.may_drain(&flow)
        {
            i.persist_ledger(ledger);
        }
        drop(i);
        if status.changed().await.is_err() {
            return;
        }
    }
}

impl Controller {
    /// What each flow saved by sleeping over the last `window`.
    pub fn savings(&self, window: Duration) -> SavingsReport {
        let model = &self.inner.options.savings;
        let now_ms = self.inner.options.clock.now_ms();
        let from_ms = now_ms.saturating_sub(i64::try_from(window.as_millis()).unwrap_or(i64::MAX));
        let mut flows: Vec<FlowSavings> = self
            .inner
            .all_flows()
            .iter()
            .map(|flow| {
                let cpu: f64 =
                    flow.spec.nodes.iter().map(|n| n.cpu.or_else(|| self.inner.workload(&n.workload).cpu_request()).unwrap_or(0.0)).sum();
                let (asleep_ms, observed_ms) = self.inner.ledgers.asleep(flow.name(), from_ms, now_ms);
                #[allow(clippy::cast_precision_loss)]
                let hours = asleep_ms as f64 / 3_600_000.0;
                FlowSavings {
                    flow: flow.name().to_string(),
                    asleep_ms,
                    observed_ms,
                    cpu,
                    saved: hours * cpu / model.node_cpu * model.node_hourly_cost,
                }
            })
            .collect();
        flows.sort_by(|a, b| b.saved.total_cmp(&a.saved).then_with(|| a.flow.cmp(&b.flow)));
        SavingsReport {
            window_ms: u64::try_from(window.as_millis()).unwrap_or(u64::MAX),
            currency: model.currency.clone(),
            node_hourly_cost: model.node_hourly_cost,
            node_cpu: model.node_cpu,
            total: flows.iter().map(|f| f.saved).sum(),
            flows,
        }
    }
}
