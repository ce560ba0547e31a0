//! Notices: the operational events operators are told about (the notification catalogue), published on
//! their own bus where they happen — wakes by the replica that runs them (not by replicas following a
//! shared cold start), drains by the replica that drains, refused reloads by the drain leader, leadership
//! by the new leader, full hold queues by the replica whose queue is full — so that each event is told
//! once however many replicas run. Delivery is not this crate's job: the notifier subscribes to
//! [`NoticeBus`].

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::Mutex;

pub use leannodes_config::file::NoticeKind;
use serde::Serialize;
use tokio::sync::broadcast;
use tokio::time::Instant;

/// The least time between two notices of one kind about one flow that would otherwise repeat (a full
/// hold queue refuses many requests in a row).
const REPEAT_AFTER: Duration = Duration::from_secs(60);

/// How urgent a notice is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// For the record.
    Info,
    /// Worth a look.
    Warning,
    /// Users are affected now.
    Critical,
}

impl Severity {
    /// The severity of an event.
    pub fn of(kind: NoticeKind) -> Severity {
        match kind {
            NoticeKind::WakeFailed | NoticeKind::HoldQueueFull => Severity::Critical,
            NoticeKind::ReloadFailed | NoticeKind::FlowDisabled | NoticeKind::LeaderChanged => Severity::Warning,
            _ => Severity::Info,
        }
    }

    /// The word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// One notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    /// The event.
    pub kind: NoticeKind,
    /// The flow it is about, if any.
    pub flow: Option<String>,
    /// One line (`shop failed to wake`).
    pub title: String,
    /// What happened, in a sentence or two.
    pub detail: String,
    /// When (Unix milliseconds).
    pub at_ms: i64,
    /// The replica that saw it.
    pub replica: String,
    /// Groups notices about one condition (incident tools deduplicate and resolve by it):
    /// `leannodes/FLOW/wake` for wake_failed and wake_succeeded, `leannodes/FLOW/EVENT` otherwise.
    pub key: String,
}

impl Notice {
    /// A notice of `kind` about `flow`, now.
    pub fn new(kind: NoticeKind, flow: Option<&str>, title: String, detail: String, replica: &str) -> Notice {
        let topic = match kind {
            NoticeKind::WakeFailed | NoticeKind::WakeSucceeded | NoticeKind::WakeStarted => "wake",
            other => other.as_str(),
        };
        Notice {
            key: format!("leannodes/{}/{topic}", flow.unwrap_or("-")),
            kind,
            flow: flow.map(str::to_string),
            title,
            detail,
            at_ms: crate::unix_ms(),
            replica: replica.to_string(),
        }
    }

    /// How urgent it is.
    pub fn severity(&self) -> Severity {
        Severity::of(self.kind)
    }
}

/// Broadcasts notices; a subscriber that falls behind loses the oldest.
#[derive(Debug)]
pub struct NoticeBus {
    sender: broadcast::Sender<Notice>,
    /// When each (event, flow) that may repeat was last published.
    last: Mutex<HashMap<(NoticeKind, String), Instant>>,
}

impl Default for NoticeBus {
    fn default() -> Self {
        NoticeBus { sender: broadcast::channel(1024).0, last: Mutex::new(HashMap::new()) }
    }
}

impl NoticeBus {
    /// Publishes a notice (dropped when nobody listens).
    pub fn publish(&self, notice: Notice) {
        let _ = self.sender.send(notice);
    }

    /// Publishes a notice unless one of its kind about its flow went out within the last minute.
    pub fn publish_unrepeated(&self, notice: Notice) {
        let key = (notice.kind, notice.flow.clone().unwrap_or_default());
        {
            let mut last = self.last.lock();
            let now = Instant::now();
            if last.get(&key).is_some_and(|at| now.duration_since(*at) < REPEAT_AFTER) {
                return;
            }
            last.insert(key, now);
        }
        self.publish(notice);
    }

    /// A new subscription, starting with the next notice.
    pub fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.sender.subscribe()
    }
}
