//! Prometheus metrics of the control plane (wake durations per node, wake failures, flow states) and the
//! pieces every crate renders its own families with: a lock-free [`Histogram`] and label escaping.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use parking_lot::Mutex;

use crate::ExecutionEvent;
use crate::events::EventBus;

/// Upper bounds (seconds) of the duration histogram buckets.
pub const BUCKETS: [f64; 14] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0];

/// A fixed-bucket histogram of durations with atomic counters.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(u64::try_from(d.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Writes the `_bucket`, `_sum` and `_count` lines with `labels` (e.g. `flow="shop"`).
    pub fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (i, bound) in BUCKETS.iter().enumerate() {
            cumulative += self.buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
}

/// Escapes a Prometheus label value.
pub fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Histograms by flow, node and stage (`start`, `scheduled` for Kubernetes workloads, `ready`).
type StageHistograms = Mutex<BTreeMap<(String, String, &'static str), Arc<Histogram>>>;

/// Wake durations per flow and node (node `*`: the whole execution) and failures per flow, node and
/// reason, fed from the event bus.
#[derive(Debug, Default)]
pub(crate) struct WakeMetrics {
    durations: Mutex<BTreeMap<(String, String), Arc<Histogram>>>,
    stages: StageHistograms,
    failures: Mutex<BTreeMap<(String, String, String), u64>>,
    drains: Mutex<BTreeMap<String, u64>>,
}

impl WakeMetrics {
    fn observe(&self, flow: &str, node: &str, ms: u64) {
        let histogram = self.durations.lock().entry((flow.to_string(), node.to_string())).or_default().clone();
        histogram.observe(Duration::from_millis(ms));
    }

    fn observe_stage(&self, flow: &str, node: &str, stage: &'static str, ms: u64) {
        let key = (flow.to_string(), node.to_string(), stage);
        let histogram = self.stages.lock().entry(key).or_default().clone();
        histogram.observe(Duration::from_millis(ms));
    }

    /// Counts a drain of `flow` (idle or asked for) that stopped it.
    pub(crate) fn drained(&self, flow: &str) {
        *self.drains.lock().entry(flow.to_string()).or_default() += 1;
    }

    /// Follows the bus until the metrics are dropped.
    pub(crate) async fn record(metrics: std::sync::Weak<WakeMetrics>, bus: EventBus) {
        let mut events = tokio_stream::wrappers::BroadcastStream::new(bus.subscribe());
        while let Some(event) = events.next().await {
            let Some(metrics) = metrics.upgrade() else { return };
            match event {
                Ok(ExecutionEvent::NodeReady { flow, node, elapsed_ms, start_ms, scheduled_ms, .. }) => {
                    metrics.observe(&flow, &node, elapsed_ms);
                    if let Some(start) = start_ms {
                        metrics.observe_stage(&flow, &node, "start", start);
                        // Kubernetes: start → scheduled (pods placed) → ready; processes: start → ready.
                        let ready_from = match scheduled_ms {
                            Some(placed) => {
                                let placed = placed.max(start);
                                metrics.observe_stage(&flow, &node, "scheduled", placed - start);
                                placed
                            }
                            None => start,
                        };
                        metrics.observe_stage(&flow, &node, "ready", elapsed_ms.saturating_sub(ready_from));
                    }
                }
                Ok(ExecutionEvent::ExecutionFinished { flow, elapsed_ms, outcome, .. }) if outcome == "succeeded" => {
                    metrics.observe(&flow, "*", elapsed_ms)
                }
                Ok(ExecutionEvent::NodeFailed { flow, node, label, .. }) => {
                    *metrics.failures.lock().entry((flow, node, label)).or_default() += 1;
                }
                _ => {}
            }
        }
    }

    /// Writes the wake families.
    pub(crate) fn render(&self, out: &mut String) {
        out.push_str("# HELP leannodes_wake_duration_seconds Time from a node's wake request to ready (node=\"*\": the whole execution).\n# TYPE leannodes_wake_duration_seconds histogram\n");
        for ((flow, node), h) in self.durations.lock().iter() {
            h.render(out, "leannodes_wake_duration_seconds", &format!("flow=\"{}\",node=\"{}\"", escape(flow), escape(node)));
        }
        out.push_str("# HELP leannodes_wake_stage_seconds Each stage of a node's cold start: stage=\"start\" from the wake request until the platform took it (process spawned, workload scaled up), stage=\"scheduled\" (Kubernetes) from then until every pod was scheduled onto a node, stage=\"ready\" from then until the readiness probe passed.\n# TYPE leannodes_wake_stage_seconds histogram\n");
        for ((flow, node, stage), h) in self.stages.lock().iter() {
            h.render(
                out,
                "leannodes_wake_stage_seconds",
                &format!("flow=\"{}\",node=\"{}\",stage=\"{stage}\"", escape(flow), escape(node)),
            );
        }
        out.push_str("# HELP leannodes_drains_total Drains that put a flow to sleep (idle or asked for), by flow.\n# TYPE leannodes_drains_total counter\n");
        for (flow, n) in self.drains.lock().iter() {
            let _ = writeln!(out, "leannodes_drains_total{{flow=\"{}\"}} {n}", escape(flow));
        }
        out.push_str("# HELP leannodes_wake_failures_total Node wakes that failed, by flow, node and reason.\n# TYPE leannodes_wake_failures_total counter\n");
        for ((flow, node, reason), n) in self.failures.lock().iter() {
            let (flow, node, reason) = (escape(flow), escape(node), escape(reason));
            let _ = writeln!(out, "leannodes_wake_failures_total{{flow=\"{flow}\",node=\"{node}\",reason=\"{reason}\"}} {n}");
        }
    }
}

/// What the data plane tells the management plane (implemented by the proxy tier; the binary hands it
/// to the API): held requests, in-flight requests, shutdown, and its own metric families.
pub trait TrafficView: Send + Sync + 'static {
    /// Requests of `flow` held right now.
    fn held(&self, flow: &str) -> u64;
    /// Requests being handled now (held or proxied).
    fn in_flight(&self) -> u64;
    /// Whether a graceful shutdown has begun.
    fn shutting_down(&self) -> bool;
    /// Writes the data plane's metric families in Prometheus text format.
    fn render_metrics(&self, out: &mut String);
}

#[cfg(test)]
mod tests;
