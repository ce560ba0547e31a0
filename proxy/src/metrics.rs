//! Request metrics of the proxy tier: lock-free counters per flow, rendered as Prometheus text.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

pub use leannodes_control::metrics::{Histogram, escape};

use crate::tls::TlsFailure;

/// How a request ended, as a low-cardinality label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Proxied to an awake flow.
    Proxied,
    /// Held during a cold start, then proxied.
    ColdStart,
    /// Answered `cold_start_timeout` (or the warm-up page, or gRPC UNAVAILABLE) at the budget.
    ColdStartTimeout,
    /// Answered `cold_start_failed`.
    ColdStartFailed,
    /// Answered `hold_queue_full`.
    HoldQueueFull,
    /// Answered `flow_disabled`.
    FlowDisabled,
    /// Ignored request to a sleeping flow, answered `asleep`.
    Asleep,
    /// The flow was removed while the request was held.
    FlowRemoved,
    /// The server shut down while the request was held.
    ShuttingDown,
    /// The client went away while held (logged as 499).
    ClientClosed,
    /// The upstream failed.
    UpstreamError,
    /// `X-LeanNodes-Version` asked for a version no test session serves.
    NoTestSession,
}

impl Outcome {
    /// All outcomes, in label order.
    pub const ALL: [Outcome; 12] = [
        Outcome::Proxied,
        Outcome::ColdStart,
        Outcome::ColdStartTimeout,
        Outcome::ColdStartFailed,
        Outcome::HoldQueueFull,
        Outcome::FlowDisabled,
        Outcome::Asleep,
        Outcome::FlowRemoved,
        Outcome::ShuttingDown,
        Outcome::ClientClosed,
        Outcome::UpstreamError,
        Outcome::NoTestSession,
    ];

    /// The label.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Proxied => "proxied",
            Outcome::ColdStart => "cold_start",
            Outcome::ColdStartTimeout => "cold_start_timeout",
            Outcome::ColdStartFailed => "cold_start_failed",
            Outcome::HoldQueueFull => "hold_queue_full",
            Outcome::FlowDisabled => "flow_disabled",
            Outcome::Asleep => "asleep",
            Outcome::FlowRemoved => "flow_removed",
            Outcome::ShuttingDown => "shutting_down",
            Outcome::ClientClosed => "client_closed",
            Outcome::UpstreamError => "upstream_error",
            Outcome::NoTestSession => "no_test_session",
        }
    }

    fn index(self) -> usize {
        Outcome::ALL.iter().position(|o| *o == self).unwrap_or(0)
    }
}

/// Counters of one flow.
#[derive(Debug, Default)]
pub struct FlowMetrics {
    requests: [AtomicU64; Outcome::ALL.len()],
    held: AtomicI64,
    /// How long held requests waited.
    pub hold_duration: Histogram,
    /// For requests held through a wake: from their arrival to the first byte of the backend's answer.
    pub first_byte: Histogram,
    tls_failures: [AtomicU64; TlsFailure::ALL.len()],
}

impl FlowMetrics {
    /// Counts a finished request.
    pub fn count(&self, outcome: Outcome) {
        self.requests[outcome.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Requests finished with this outcome so far.
    pub fn requests(&self, outcome: Outcome) -> u64 {
        self.requests[outcome.index()].load(Ordering::Relaxed)
    }

    /// Counts a refused TLS upstream handshake.
    pub fn count_tls_failure(&self, failure: TlsFailure) {
        self.tls_failures[failure.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Refused TLS upstream handshakes so far, for this reason.
    pub fn tls_failures(&self, failure: TlsFailure) -> u64 {
        self.tls_failures[failure.index()].load(Ordering::Relaxed)
    }

    /// Requests held right now.
    pub fn held(&self) -> i64 {
        self.held.load(Ordering::Relaxed)
    }

    /// Admits one held request if fewer than `max` are held; the guard releases it.
    pub fn try_hold(self: &std::sync::Arc<Self>, max: usize) -> Option<HeldGuard> {
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        let mut current = self.held.load(Ordering::Relaxed);
        loop {
            if current >= max {
                return None;
            }
            match self.held.compare_exchange_weak(current, current + 1, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return Some(HeldGuard(self.clone())),
                Err(seen) => current = seen,
            }
        }
    }
}

/// One admitted held request; dropping it frees the slot.
#[derive(Debug)]
pub struct HeldGuard(std::sync::Arc<FlowMetrics>);

impl Drop for HeldGuard {
    fn drop(&mut self) {
        self.0.held.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Writes the proxy's metric families for the given flows (name, metrics, `max_held`).
pub fn render<'a>(out: &mut String, flows: impl Iterator<Item = (&'a str, &'a FlowMetrics, usize)> + Clone, unmatched: &'a FlowMetrics) {
    let limits = flows.clone().map(|(flow, _, max)| (flow, max));
    let flows = flows.map(|(flow, m, _)| (flow, m));
    out.push_str(
        "# HELP leannodes_requests_total Requests answered by the proxy, by flow and outcome.\n# TYPE leannodes_requests_total counter\n",
    );
    for (flow, m) in flows.clone().chain(std::iter::once(("", unmatched))) {
        for outcome in Outcome::ALL {
            let n = m.requests(outcome);
            if n > 0 || !flow.is_empty() {
                let _ = writeln!(out, "leannodes_requests_total{{flow=\"{}\",outcome=\"{}\"}} {n}", escape(flow), outcome.label());
            }
        }
    }
    out.push_str("# HELP leannodes_held_requests Requests held right now while their flow wakes.\n# TYPE leannodes_held_requests gauge\n");
    for (flow, m) in flows.clone() {
        let _ = writeln!(out, "leannodes_held_requests{{flow=\"{}\"}} {}", escape(flow), m.held());
    }
    out.push_str("# HELP leannodes_held_requests_limit Requests a flow may hold at once on this replica (max_held); beyond it requests get 503 hold_queue_full.\n# TYPE leannodes_held_requests_limit gauge\n");
    for (flow, max) in limits {
        let _ = writeln!(out, "leannodes_held_requests_limit{{flow=\"{}\"}} {max}", escape(flow));
    }
    out.push_str("# HELP leannodes_hold_duration_seconds How long requests were held.\n# TYPE leannodes_hold_duration_seconds histogram\n");
    for (flow, m) in flows.clone() {
        m.hold_duration.render(out, "leannodes_hold_duration_seconds", &format!("flow=\"{}\"", escape(flow)));
    }
    out.push_str("# HELP leannodes_upstream_tls_failures_total TLS handshakes with a flow's upstream that failed, by reason (certificate_expired, unknown_ca, name_mismatch, handshake).\n# TYPE leannodes_upstream_tls_failures_total counter\n");
    for (flow, m) in flows.clone() {
        for failure in TlsFailure::ALL {
            let _ = writeln!(
                out,
                "leannodes_upstream_tls_failures_total{{flow=\"{}\",reason=\"{}\"}} {}",
                escape(flow),
                failure.label(),
                m.tls_failures(failure)
            );
        }
    }
    out.push_str("# HELP leannodes_cold_start_first_byte_seconds For requests held through a wake: from their arrival to the first byte of the backend's answer (the whole cold start as the client sees it).\n# TYPE leannodes_cold_start_first_byte_seconds histogram\n");
    for (flow, m) in flows {
        m.first_byte.render(out, "leannodes_cold_start_first_byte_seconds", &format!("flow=\"{}\"", escape(flow)));
    }
}

/// Why the parker refused a connection's first request head before any flow was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadRefusal {
    /// The head did not complete within `[server] request_head_timeout` (`408`).
    Timeout,
    /// The head was too large or had too many headers (`431`).
    TooLarge,
}

impl HeadRefusal {
    /// All reasons, in label order.
    pub const ALL: [HeadRefusal; 2] = [HeadRefusal::Timeout, HeadRefusal::TooLarge];

    /// The label, which is also the error code of the answer.
    pub fn label(self) -> &'static str {
        match self {
            HeadRefusal::Timeout => "request_head_timeout",
            HeadRefusal::TooLarge => "request_head_too_large",
        }
    }

    /// The status of the answer.
    pub fn status(self) -> u16 {
        match self {
            HeadRefusal::Timeout => 408,
            HeadRefusal::TooLarge => 431,
        }
    }
}

/// Counters of refused request heads, by reason.
#[derive(Debug, Default)]
pub struct HeadRefusals([AtomicU64; HeadRefusal::ALL.len()]);

impl HeadRefusals {
    /// Counts one refusal.
    pub fn count(&self, refusal: HeadRefusal) {
        self.0[refusal as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Refusals so far for this reason.
    pub fn get(&self, refusal: HeadRefusal) -> u64 {
        self.0[refusal as usize].load(Ordering::Relaxed)
    }

    /// Writes `leannodes_request_heads_refused_total`.
    pub fn render(&self, out: &mut String) {
        out.push_str("# HELP leannodes_request_heads_refused_total Connections whose first request head was refused before routing: it did not complete within request_head_timeout (408) or was too large (431).\n# TYPE leannodes_request_heads_refused_total counter\n");
        for refusal in HeadRefusal::ALL {
            let _ = writeln!(out, "leannodes_request_heads_refused_total{{reason=\"{}\"}} {}", refusal.label(), self.get(refusal));
        }
    }
}

/// Writes the access log's drop counter.
pub fn render_access_log(out: &mut String, dropped: u64) {
    out.push_str("# HELP leannodes_access_log_dropped_total Access-log lines dropped because the log could not keep up (requests never wait for it).\n# TYPE leannodes_access_log_dropped_total counter\n");
    let _ = writeln!(out, "leannodes_access_log_dropped_total {dropped}");
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn hold_admission_is_bounded_and_released_on_drop() {
        let m = Arc::new(FlowMetrics::default());
        let a = m.try_hold(2).expect("first");
        let _b = m.try_hold(2).expect("second");
        assert!(m.try_hold(2).is_none(), "third is refused");
        drop(a);
        assert!(m.try_hold(2).is_some());
    }
}
