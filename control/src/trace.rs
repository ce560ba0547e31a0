//! Spans for OpenTelemetry: one per wake, a child per node and, under each node, one per stage of its
//! cold start (`start`, `scheduled` on Kubernetes, `ready`), built from the execution when it ends; and
//! the proxy's span of each held request, linked to the wake it waited for. They are published on a bus;
//! exporting them (OTLP) is not this crate's job.

use std::sync::atomic::{AtomicU64, Ordering};

use leannodes_store::ExecutionRecord;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::broadcast;

/// A trace id (16 bytes).
pub type TraceId = [u8; 16];
/// A span id (8 bytes).
pub type SpanId = [u8; 8];

/// One finished span.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpanData {
    /// Its trace.
    pub trace_id: TraceId,
    /// Its id.
    pub span_id: SpanId,
    /// Its parent in the trace, if any.
    pub parent: Option<SpanId>,
    /// Its name (`wake shop`, `node db`, `start`, `GET /cart`).
    pub name: String,
    /// `server` for a request, `internal` otherwise.
    pub server: bool,
    /// Start (Unix nanoseconds).
    pub start_ns: u64,
    /// End (Unix nanoseconds).
    pub end_ns: u64,
    /// Attributes (`leannodes.flow`, `http.request.method`, …).
    pub attributes: Vec<(String, String)>,
    /// Spans of other traces it relates to (a held request → its wake).
    pub links: Vec<(TraceId, SpanId)>,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

/// How many finished spans wait for a subscriber that falls behind before the oldest are lost.
const SPAN_BUFFER: usize = 4096;

/// Broadcasts finished spans; a subscriber that falls behind loses the oldest. The buffer (about 700 KB)
/// exists only once somebody subscribes: without tracing, publishing costs one atomic load.
#[derive(Debug, Default)]
pub struct SpanBus {
    sender: std::sync::OnceLock<broadcast::Sender<SpanData>>,
}

impl SpanBus {
    /// Publishes spans (dropped when nobody listens: tracing off).
    pub fn publish(&self, spans: impl IntoIterator<Item = SpanData>) {
        let Some(sender) = self.sender.get().filter(|s| s.receiver_count() > 0) else {
            return;
        };
        for span in spans {
            let _ = sender.send(span);
        }
    }

    /// Whether anyone exports spans (tracing is on).
    pub fn enabled(&self) -> bool {
        self.sender.get().is_some_and(|s| s.receiver_count() > 0)
    }

    /// A new subscription, starting with the next span.
    pub fn subscribe(&self) -> broadcast::Receiver<SpanData> {
        self.sender.get_or_init(|| broadcast::channel(SPAN_BUFFER).0).subscribe()
    }
}

fn digest(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
        h.update([0]);
    }
    h.finalize().into()
}

fn span_id(parts: &[&[u8]]) -> SpanId {
    let d = digest(parts);
    let mut id = [0; 8];
    id.copy_from_slice(&d[..8]);
    id
}

/// The trace and span ids of a wake, derived from its execution id: a held request finds the wake it
/// waited for without asking anyone.
pub fn wake_ids(execution: &str) -> (TraceId, SpanId) {
    let d = digest(&[b"trace", execution.as_bytes()]);
    let mut trace = [0; 16];
    trace.copy_from_slice(&d[..16]);
    (trace, span_id(&[b"wake", execution.as_bytes()]))
}

/// Fresh random-looking ids (unique: a process-wide counter, the time and the process id, hashed).
pub fn new_ids() -> (TraceId, SpanId) {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed).to_le_bytes();
    let now = crate::unix_ms().to_le_bytes();
    let pid = std::process::id().to_le_bytes();
    let d = digest(&[&seq, &now, &pid]);
    let (mut trace, mut span) = ([0; 16], [0; 8]);
    trace.copy_from_slice(&d[..16]);
    span.copy_from_slice(&d[16..24]);
    (trace, span)
}

fn ns(ms: i64) -> u64 {
    u64::try_from(ms).unwrap_or(0).saturating_mul(1_000_000)
}

/// The spans of a finished wake: the wake, a child per node that was asked to wake, and under each node
/// its stages.
pub(crate) fn wake_spans(record: &ExecutionRecord, replica: &str) -> Vec<SpanData> {
    let (trace_id, wake) = wake_ids(&record.id);
    let end = record.finished_ms.unwrap_or(record.started_ms);
    let mut spans = vec![SpanData {
        trace_id,
        span_id: wake,
        parent: None,
        name: format!("wake {}", record.flow),
        server: false,
        start_ns: ns(record.started_ms),
        end_ns: ns(end),
        attributes: vec![
            ("leannodes.flow".into(), record.flow.clone()),
            ("leannodes.execution".into(), record.id.clone()),
            ("leannodes.trigger".into(), record.trigger.clone()),
            ("leannodes.outcome".into(), record.outcome.as_str().into()),
            ("leannodes.replica".into(), replica.into()),
        ],
        links: vec![],
        error: record.error.clone(),
    }];
    for step in &record.steps {
        let Some(requested) = step.requested_ms else { continue };
        let finished = step.ready_ms.or(step.failed_ms).unwrap_or(end);
        let node = span_id(&[b"node", record.id.as_bytes(), step.node.as_bytes()]);
        spans.push(SpanData {
            trace_id,
            span_id: node,
            parent: Some(wake),
            name: format!("node {}", step.node),
            server: false,
            start_ns: ns(requested),
            end_ns: ns(finished),
            attributes: vec![
                ("leannodes.node".into(), step.node.clone()),
                ("leannodes.workload".into(), step.workload.clone()),
                ("leannodes.state".into(), step.state.clone()),
            ],
            links: vec![],
            error: step.reason.clone().filter(|_| step.failed_ms.is_some()),
        });
        let started = step.started_ms.unwrap_or(requested);
        let mut stages = vec![("start", requested, started)];
        let mut from = started;
        if let Some(placed) = step.scheduled_ms {
            stages.push(("scheduled", started, placed));
            from = placed;
        }
        if step.ready_ms.is_some() {
            stages.push(("ready", from, finished));
        }
        for (stage, a, b) in stages {
            spans.push(SpanData {
                trace_id,
                span_id: span_id(&[b"stage", record.id.as_bytes(), step.node.as_bytes(), stage.as_bytes()]),
                parent: Some(node),
                name: stage.into(),
                server: false,
                start_ns: ns(a),
                end_ns: ns(b.max(a)),
                attributes: vec![("leannodes.stage".into(), stage.into())],
                links: vec![],
                error: None,
            });
        }
    }
    spans
}

/// A W3C `traceparent` value.
pub fn traceparent(trace: &TraceId, span: &SpanId) -> String {
    format!("00-{}-{}-01", hex(trace), hex(span))
}

/// The trace and parent span of an incoming `traceparent` (version 00), if it is well-formed.
pub fn parse_traceparent(value: &str) -> Option<(TraceId, SpanId)> {
    let mut parts = value.trim().split('-');
    let (version, trace, span, _flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if version != "00" || trace.len() != 32 || span.len() != 16 {
        return None;
    }
    let mut t = [0; 16];
    let mut s = [0; 8];
    for (i, byte) in t.iter_mut().enumerate() {
        *byte = u8::from_str_radix(trace.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    for (i, byte) in s.iter_mut().enumerate() {
        *byte = u8::from_str_radix(span.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    (t != [0; 16] && s != [0; 8]).then_some((t, s))
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trips_and_bad_values_are_refused() {
        let (trace, span) = new_ids();
        assert_eq!(parse_traceparent(&traceparent(&trace, &span)), Some((trace, span)));
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-zzf067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        ] {
            assert_eq!(parse_traceparent(bad), None, "{bad}");
        }
        assert_ne!(new_ids(), new_ids(), "fresh ids differ");
        assert_eq!(wake_ids("01a2"), wake_ids("01a2"), "a wake's ids follow from its execution");
    }
}
