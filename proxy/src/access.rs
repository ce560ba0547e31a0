//! The access log, off the request path.
//!
//! A request that ends puts its line's fields into a bounded queue and goes on; one writer thread takes
//! them out in batches (resting between them, so requests do not wake it one by one), formats them and
//! writes each batch to stderr with one write. When the queue is
//! full (the log cannot keep up, e.g. a blocked stderr pipe), the line is dropped and counted in
//! `leannodes_access_log_dropped_total`: a request never waits for the log.
//!
//! The lines are the `leannodes::access` events the tracing subscriber would print (the same text, or
//! the same JSON object with `LEANNODES_LOG_FORMAT=json`; `LEANNODES_LOG` still decides whether they
//! are written), formatted here without tracing's per-event machinery: the binary says which format its
//! subscriber uses with [`configure`]. On a terminal (coloured output) the lines go through tracing.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Lines the queue holds before new ones are dropped. The queue takes memory only for the lines that
/// wait (an idle server's is empty, not 16,384 slots of about 200 bytes).
pub const QUEUE: usize = 16 * 1024;

/// Most lines the writer takes out of the queue before it writes them.
const BATCH: usize = 512;

/// How long the writer rests after emptying the queue. A writer that waited on the queue was woken by
/// every request — a context switch each, about a fifth of the proxy's throughput on two cores — while
/// lines that wait this long cost nothing: 20 ms at 100,000 requests a second is 2,000 lines, far from
/// [`QUEUE`].
const PAUSE: Duration = Duration::from_millis(20);

/// How access lines are printed: as the binary's tracing subscriber prints events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessFormat {
    /// Through tracing itself (a subscriber this module does not imitate, e.g. coloured output).
    Tracing,
    /// tracing-subscriber's plain text lines.
    Text,
    /// tracing-subscriber's JSON lines with flattened fields.
    Json,
}

static FORMAT: OnceLock<AccessFormat> = OnceLock::new();

/// Says how the installed tracing subscriber prints events, once, before the proxy starts; without it
/// lines go through tracing ([`AccessFormat::Tracing`]).
pub fn configure(format: AccessFormat) {
    let _ = FORMAT.set(format);
}

/// Where the writer thread puts lines: each line, then a flush after every batch.
pub trait Sink: Send + 'static {
    /// Takes one line.
    fn line(&mut self, line: AccessLine);
    /// Writes what the lines since the last flush produced.
    fn flush(&mut self) {}
}

impl<F: FnMut(AccessLine) + Send + 'static> Sink for F {
    fn line(&mut self, line: AccessLine) {
        self(line)
    }
}

/// Formats lines into a buffer, written to stderr once per batch.
#[derive(Debug)]
pub struct Stderr {
    format: AccessFormat,
    buffer: Vec<u8>,
}

impl Stderr {
    /// A sink writing `format` to stderr.
    pub fn new(format: AccessFormat) -> Stderr {
        Stderr { format, buffer: Vec::with_capacity(64 * 1024) }
    }
}

impl Sink for Stderr {
    fn line(&mut self, line: AccessLine) {
        match self.format {
            AccessFormat::Tracing => line.emit(),
            AccessFormat::Text => line.write_text(&mut self.buffer, jiff::Timestamp::now()),
            AccessFormat::Json => line.write_json(&mut self.buffer, jiff::Timestamp::now()),
        }
    }

    fn flush(&mut self) {
        if !self.buffer.is_empty() {
            // Nowhere to report a failed write to stderr; the lines are lost, as tracing's would be.
            let _ = std::io::stderr().lock().write_all(&self.buffer);
            self.buffer.clear();
        }
    }
}

/// One access-log line's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLine {
    /// The flow (`-`: none matched).
    pub flow: String,
    /// Request method.
    pub method: http::Method,
    /// `Host` as the client sent it.
    pub host: String,
    /// Path, without the query.
    pub path: String,
    /// Status sent (499: the client went away; 0: none).
    pub status: u16,
    /// How the request ended (a metric label).
    pub outcome: &'static str,
    /// How long it was held.
    pub held_ms: u64,
    /// Where it went.
    pub upstream: Option<SocketAddr>,
    /// The error, when there was one.
    pub error: Option<String>,
}

impl AccessLine {
    /// Emits the line as the `leannodes::access` event.
    pub fn emit(&self) {
        tracing::info!(
            target: "leannodes::access",
            flow = self.flow.as_str(),
            method = %self.method,
            host = %self.host,
            path = %self.path,
            status = self.status,
            outcome = self.outcome,
            held_ms = self.held_ms,
            upstream = %Upstream(self.upstream),
            error = %self.error.as_deref().unwrap_or_default(),
        );
    }

    /// The line as tracing-subscriber's text format prints [`AccessLine::emit`]'s event (`&str` fields
    /// quoted as `Debug` does, `%` fields as they display).
    pub fn write_text(&self, out: &mut Vec<u8>, at: jiff::Timestamp) {
        let upstream = Upstream(self.upstream);
        let _ = writeln!(
            out,
            "{at:.6}  INFO leannodes::access: flow={:?} method={} host={} path={} status={} outcome={:?} held_ms={} upstream={upstream} error={}",
            self.flow,
            self.method,
            self.host,
            self.path,
            self.status,
            self.outcome,
            self.held_ms,
            self.error.as_deref().unwrap_or_default(),
        );
    }

    /// The line as tracing-subscriber's JSON format (flattened) prints [`AccessLine::emit`]'s event.
    pub fn write_json(&self, out: &mut Vec<u8>, at: jiff::Timestamp) {
        let string = |out: &mut Vec<u8>, key: &str, value: &str| {
            let _ = write!(out, ",\"{key}\":");
            let _ = serde_json::to_writer(&mut *out, value);
        };
        let _ = write!(out, "{{\"timestamp\":\"{at:.6}\",\"level\":\"INFO\"");
        string(out, "flow", &self.flow);
        string(out, "method", self.method.as_str());
        string(out, "host", &self.host);
        string(out, "path", &self.path);
        let _ = write!(out, ",\"status\":{}", self.status);
        string(out, "outcome", self.outcome);
        let _ = write!(out, ",\"held_ms\":{}", self.held_ms);
        string(out, "upstream", &Upstream(self.upstream).to_string());
        string(out, "error", self.error.as_deref().unwrap_or_default());
        out.extend_from_slice(b",\"target\":\"leannodes::access\"}\n");
    }
}

/// An upstream address, `-` for none.
struct Upstream(Option<SocketAddr>);

impl std::fmt::Display for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(addr) => addr.fmt(f),
            None => f.write_str("-"),
        }
    }
}

/// The queue in front of the writer thread.
#[derive(Debug)]
pub struct AccessLog {
    queue: Sender<Entry>,
    /// Lines in the queue (the bound is kept here; the channel grows and shrinks with what waits).
    queued: Arc<AtomicUsize>,
    capacity: usize,
    dropped: AtomicU64,
}

/// What goes through the queue.
enum Entry {
    Line(AccessLine),
    /// Answered once every line queued before it is written.
    Flush(std::sync::mpsc::Sender<()>),
}

impl AccessLog {
    /// A queue of `capacity` lines, written to stderr in the [`configure`]d format.
    pub fn start(capacity: usize) -> AccessLog {
        AccessLog::with_writer(capacity, Stderr::new(FORMAT.get().copied().unwrap_or(AccessFormat::Tracing)))
    }

    /// A queue of `capacity` lines, taken out by `sink` on its own thread (which ends when the log is
    /// dropped): every line that is waiting (up to a batch), then a flush.
    pub fn with_writer(capacity: usize, mut sink: impl Sink) -> AccessLog {
        let (queue, entries): (Sender<Entry>, Receiver<Entry>) = channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let taken_out = queued.clone();
        let spawned = std::thread::Builder::new().name("leannodes-access-log".into()).spawn(move || {
            let mut flushed = Vec::new();
            while let Ok(first) = entries.recv() {
                let mut next = Some(first);
                while next.is_some() {
                    let mut taken = 0;
                    while let Some(entry) = next.take() {
                        match entry {
                            Entry::Line(line) => {
                                taken_out.fetch_sub(1, Ordering::Relaxed);
                                sink.line(line);
                            }
                            Entry::Flush(done) => flushed.push(done),
                        }
                        taken += 1;
                        next = entries.try_recv().ok();
                        if taken == BATCH {
                            break;
                        }
                    }
                    sink.flush();
                    // Flush markers are answered once the lines before them are written.
                    for done in flushed.drain(..) {
                        let _ = done.send(());
                    }
                }
                // Lines gather while the writer rests: woken once per pause, not once per request.
                std::thread::sleep(PAUSE);
            }
        });
        if let Err(e) = spawned {
            // Without the thread every line would be dropped and counted; say why once.
            tracing::error!("cannot start the access-log writer thread ({e}); access lines are dropped");
        }
        AccessLog { queue, queued, capacity, dropped: AtomicU64::new(0) }
    }

    /// Whether access lines are wanted at all (the `LEANNODES_LOG` filter lets `leannodes::access` through).
    pub fn enabled() -> bool {
        tracing::enabled!(target: "leannodes::access", tracing::Level::INFO)
    }

    /// Queues a line; drops and counts it when the queue is full. Never blocks.
    pub fn record(&self, line: AccessLine) {
        if self.queued.fetch_add(1, Ordering::Relaxed) >= self.capacity {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if self.queue.send(Entry::Line(line)).is_err() {
            // No writer thread.
            self.queued.fetch_sub(1, Ordering::Relaxed);
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Waits until every line queued so far is written, or `patience` has passed (at shutdown, so the
    /// last lines are not lost with the process). Returns whether they were written.
    pub fn flush(&self, patience: Duration) -> bool {
        let deadline = Instant::now() + patience;
        let (done, written) = channel();
        // The marker queues behind the lines (outside their bound).
        if self.queue.send(Entry::Flush(done)).is_err() {
            return false;
        }
        written.recv_timeout(deadline.saturating_duration_since(Instant::now())).is_ok()
    }

    /// Lines dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests;
