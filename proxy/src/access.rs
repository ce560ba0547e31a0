//! The access log, off the request path.
//!
//! A request that ends puts its line's fields into a bounded queue and goes on; one writer thread takes
//! them out and emits each as the same `leannodes::access` tracing event as before (so the text and JSON
//! formats, the filter and the destination are unchanged). Formatting and the write to stderr — about a
//! quarter of the proxy's time per request when they ran inline — happen on that thread. When the queue
//! is full (the log cannot keep up, e.g. a blocked stderr pipe), the line is dropped and counted in
//! `leannodes_access_log_dropped_total`: a request never waits for the log.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

/// Lines the queue holds before new ones are dropped.
pub const QUEUE: usize = 16 * 1024;

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
            upstream = %self.upstream.map_or_else(|| "-".to_string(), |a| a.to_string()),
            error = %self.error.as_deref().unwrap_or_default(),
        );
    }
}

/// The queue in front of the writer thread.
#[derive(Debug)]
pub struct AccessLog {
    queue: SyncSender<Entry>,
    dropped: AtomicU64,
}

/// What goes through the queue.
enum Entry {
    Line(AccessLine),
    /// Answered once every line queued before it is written.
    Flush(std::sync::mpsc::Sender<()>),
}

impl AccessLog {
    /// A queue of `capacity` lines, written by a thread that emits each line as a tracing event.
    pub fn start(capacity: usize) -> AccessLog {
        AccessLog::with_writer(capacity, |line| line.emit())
    }

    /// A queue of `capacity` lines, taken out by `write` on its own thread (which ends when the log is
    /// dropped).
    pub fn with_writer(capacity: usize, mut write: impl FnMut(AccessLine) + Send + 'static) -> AccessLog {
        let (queue, entries): (SyncSender<Entry>, Receiver<Entry>) = sync_channel(capacity);
        let spawned = std::thread::Builder::new().name("leannodes-access-log".into()).spawn(move || {
            for entry in entries {
                match entry {
                    Entry::Line(line) => write(line),
                    Entry::Flush(done) => {
                        let _ = done.send(());
                    }
                }
            }
        });
        if let Err(e) = spawned {
            // Without the thread every line would be dropped and counted; say why once.
            tracing::error!("cannot start the access-log writer thread ({e}); access lines are dropped");
        }
        AccessLog { queue, dropped: AtomicU64::new(0) }
    }

    /// Whether access lines are wanted at all (the `LEANNODES_LOG` filter lets `leannodes::access` through).
    pub fn enabled() -> bool {
        tracing::enabled!(target: "leannodes::access", tracing::Level::INFO)
    }

    /// Queues a line; drops and counts it when the queue is full. Never blocks.
    pub fn record(&self, line: AccessLine) {
        if self.queue.try_send(Entry::Line(line)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Waits until every line queued so far is written, or `patience` has passed (at shutdown, so the
    /// last lines are not lost with the process). Returns whether they were written.
    pub fn flush(&self, patience: Duration) -> bool {
        let deadline = Instant::now() + patience;
        let (done, written) = std::sync::mpsc::channel();
        let mut marker = Entry::Flush(done);
        // The marker queues behind the lines; a full queue makes room as the writer goes on.
        loop {
            match self.queue.try_send(marker) {
                Ok(()) => break,
                Err(TrySendError::Disconnected(_)) => return false,
                Err(TrySendError::Full(back)) => {
                    if Instant::now() >= deadline {
                        return false;
                    }
                    marker = back;
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
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
