//! The activity tracker: when a flow last saw a request start or finish, or bytes on an upgraded
//! connection, and how many requests of each kind are open now (for `explain`). [`Activity::record`]
//! sits on the proxy's hot path: one clock read and one atomic `fetch_max`, no locks, no allocation;
//! [`Activity::open`] and [`Activity::close`] are one atomic add each.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Last activity of one flow, as milliseconds from the tracker's creation (negative: before it, e.g.
/// carried over from the flow's previous definition; tokio's clock, so tests can pause and advance time).
#[derive(Debug)]
pub struct Activity {
    origin: Instant,
    last_ms: AtomicI64,
    /// Requests being proxied now, by [`Connection`] kind.
    open: [AtomicU64; 4],
    /// The last requests that counted, newest last (for explain).
    recent: parking_lot::Mutex<std::collections::VecDeque<SeenRequest>>,
    /// Requests an `ignore` rule matched, and the last of them.
    ignored: AtomicU64,
    last_ignored: parking_lot::Mutex<Option<SeenRequest>>,
}

/// How many recent requests a flow keeps for explain.
const RECENT: usize = 5;

/// A request a flow answered, as explain shows it (this replica only).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SeenRequest {
    /// When it ended (Unix milliseconds).
    pub at_ms: i64,
    /// Its method.
    pub method: String,
    /// Its path, without the query.
    pub path: String,
    /// The status answered (0: none, 499: the client went away).
    pub status: u16,
}

/// The kind of a proxied request, as `explain` names what keeps a flow awake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Connection {
    /// An upgraded connection (WebSocket).
    Websocket,
    /// A Server-Sent Events stream (`Accept: text/event-stream`).
    Sse,
    /// A gRPC call (`Content-Type: application/grpc…`), possibly a long stream.
    Grpc,
    /// Any other request.
    Request,
}

impl Connection {
    /// Every kind, in the order [`OpenNow`] lists them.
    pub const ALL: [Connection; 4] = [Connection::Websocket, Connection::Sse, Connection::Grpc, Connection::Request];

    /// The kind of a request from its upgrade flag and headers.
    pub fn of(upgrade: bool, accept: Option<&str>, content_type: Option<&str>) -> Connection {
        if upgrade {
            Connection::Websocket
        } else if accept.is_some_and(|a| a.contains("text/event-stream")) {
            Connection::Sse
        } else if content_type.is_some_and(|c| c.starts_with("application/grpc")) {
            Connection::Grpc
        } else {
            Connection::Request
        }
    }
}

/// Requests of a flow being proxied now, by kind (on this replica).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct OpenNow {
    /// Open WebSocket connections.
    pub websocket: u64,
    /// Open Server-Sent Events streams.
    pub sse: u64,
    /// gRPC calls in progress.
    pub grpc: u64,
    /// Other requests in progress.
    pub request: u64,
}

impl Default for Activity {
    fn default() -> Self {
        Activity::new()
    }
}

impl Activity {
    /// A tracker whose last activity is now.
    pub fn new() -> Activity {
        Activity {
            origin: Instant::now(),
            last_ms: AtomicI64::new(0),
            open: Default::default(),
            recent: parking_lot::Mutex::default(),
            ignored: AtomicU64::new(0),
            last_ignored: parking_lot::Mutex::default(),
        }
    }

    /// Notes a finished request for explain: among the recent ones when it `counted` as activity, else as
    /// ignored. Skipped (never waited for) when another request is noting at the same moment; `describe`
    /// is called only when noted, so the request path allocates nothing otherwise.
    pub fn note(&self, counted: bool, describe: impl FnOnce() -> SeenRequest) {
        if counted {
            if let Some(mut recent) = self.recent.try_lock() {
                if recent.len() == RECENT {
                    recent.pop_front();
                }
                recent.push_back(describe());
            }
        } else {
            self.ignored.fetch_add(1, Ordering::Relaxed);
            if let Some(mut last) = self.last_ignored.try_lock() {
                *last = Some(describe());
            }
        }
    }

    /// The last requests that counted as activity on this replica, newest first.
    pub fn recent(&self) -> Vec<SeenRequest> {
        self.recent.lock().iter().rev().cloned().collect()
    }

    /// How many requests an `ignore` rule matched on this replica, and the last of them.
    pub fn ignored(&self) -> (u64, Option<SeenRequest>) {
        let last = self.last_ignored.lock().clone();
        (self.ignored.load(Ordering::Relaxed), last)
    }

    /// Counts a request of `kind` as open (being proxied) until [`Activity::close`].
    #[inline]
    pub fn open(&self, kind: Connection) {
        self.open[kind as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The request of `kind` counted by [`Activity::open`] has ended.
    #[inline]
    pub fn close(&self, kind: Connection) {
        let _ = self.open[kind as usize].fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    /// Requests being proxied now, by kind.
    pub fn open_now(&self) -> OpenNow {
        let n = |kind: Connection| self.open[kind as usize].load(Ordering::Relaxed);
        OpenNow { websocket: n(Connection::Websocket), sse: n(Connection::Sse), grpc: n(Connection::Grpc), request: n(Connection::Request) }
    }

    fn now_ms(&self) -> i64 {
        self.offset_ms(Instant::now())
    }

    /// `at` as milliseconds from the tracker's creation.
    fn offset_ms(&self, at: Instant) -> i64 {
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        match at.checked_duration_since(self.origin) {
            Some(after) => ms(after),
            None => -ms(self.origin.duration_since(at)),
        }
    }

    /// Records activity now. Lock-free and cheap.
    #[inline]
    pub fn record(&self) {
        self.last_ms.fetch_max(self.now_ms(), Ordering::Relaxed);
    }

    /// Records activity that happened at `at` (e.g. on another replica); never moves the last activity back.
    pub fn record_at(&self, at: Instant) {
        self.last_ms.fetch_max(self.offset_ms(at), Ordering::Relaxed);
    }

    /// Takes over another tracker's last activity (a flow replaced by a reload), even when it is older
    /// than this tracker: a reload does not count as activity.
    pub fn carry_over(&self, other: &Activity) {
        self.last_ms.store(self.offset_ms(other.last()), Ordering::Relaxed);
    }

    /// When the last activity happened.
    pub fn last(&self) -> Instant {
        let ms = self.last_ms.load(Ordering::Relaxed);
        let by = Duration::from_millis(ms.unsigned_abs());
        if ms >= 0 { self.origin + by } else { self.origin.checked_sub(by).unwrap_or(self.origin) }
    }

    /// How long the flow has been idle.
    pub fn idle_for(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.now_ms().saturating_sub(self.last_ms.load(Ordering::Relaxed))).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_requests_are_counted_by_kind_and_never_below_zero() {
        let activity = Activity::new();
        let websocket = Connection::of(true, None, None);
        let sse = Connection::of(false, Some("text/event-stream"), None);
        let grpc = Connection::of(false, None, Some("application/grpc+proto"));
        for kind in [websocket, websocket, sse, grpc, Connection::of(false, Some("*/*"), Some("text/plain"))] {
            activity.open(kind);
        }
        activity.close(websocket);
        activity.close(Connection::Request);
        activity.close(Connection::Request);
        assert_eq!(activity.open_now(), OpenNow { websocket: 1, sse: 1, grpc: 1, request: 0 });
    }

    #[tokio::test(start_paused = true)]
    async fn idle_time_follows_the_clock_and_resets_on_record() {
        let activity = Activity::new();
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(activity.idle_for(), Duration::from_secs(30));
        activity.record();
        assert_eq!(activity.idle_for(), Duration::ZERO);
        tokio::time::advance(Duration::from_millis(1500)).await;
        assert_eq!(activity.idle_for(), Duration::from_millis(1500));
        assert_eq!(activity.last() + Duration::from_millis(1500), Instant::now());
    }

    #[tokio::test(start_paused = true)]
    async fn a_replaced_flow_keeps_its_idle_time_and_a_reload_is_not_activity() {
        let before = Activity::new();
        tokio::time::advance(Duration::from_secs(5)).await;
        // A reload replaces the flow's handle 5 s after its last request.
        let after = Activity::new();
        after.carry_over(&before);
        assert_eq!(after.idle_for(), Duration::from_secs(5));
        assert_eq!(after.last(), before.last());
        // Older activity reported later (another replica) moves nothing back; newer activity counts.
        after.record_at(before.last() - Duration::from_secs(1));
        assert_eq!(after.idle_for(), Duration::from_secs(5));
        after.record();
        assert_eq!(after.idle_for(), Duration::ZERO);
    }

    #[test]
    fn concurrent_records_never_move_backwards() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime");
        let _guard = rt.enter();
        let activity = std::sync::Arc::new(Activity::new());
        std::thread::scope(|s| {
            for _ in 0..4 {
                let a = activity.clone();
                let handle = rt.handle().clone();
                s.spawn(move || {
                    let _g = handle.enter();
                    for _ in 0..10_000 {
                        a.record();
                    }
                });
            }
        });
        assert!(activity.idle_for() < Duration::from_secs(5));
    }
}
