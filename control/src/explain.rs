//! Why a flow is in its state: the pins, requests open now, recent activity, a failed wake, workloads
//! other flows hold, and when it drains if nothing else arrives (`GET /flows/{name}/explain`,
//! `leannodes explain FLOW`).

use std::time::Duration;

use serde::Serialize;

use crate::activity::OpenNow;
use crate::controller::Controller;
use crate::flow::FlowState;

/// What a reason is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasonKind {
    /// Asleep: nothing asked for it since it was drained (or started).
    Asleep,
    /// A wake is in progress.
    Waking,
    /// Being drained now.
    Draining,
    /// The last wake failed.
    Failed,
    /// Pinned: never drained.
    Pinned,
    /// Inside a keep-warm window, or when the next one opens.
    Schedule,
    /// Disabled: requests are refused and nothing wakes it.
    Disabled,
    /// Requests, streams or upgraded connections are open on this replica.
    Open,
    /// A request (or bytes on a connection) within the idle window.
    RecentActivity,
    /// One of its workloads runs because another flow holds it.
    SharedWorkload,
    /// Requests matched its `ignore` rules: they neither wake it nor keep it awake.
    Ignored,
    /// This replica does not drain it: the drain leader does.
    NotLeader,
}

/// One reason, in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reason {
    /// What it is about.
    pub kind: ReasonKind,
    /// The sentence.
    pub message: String,
}

/// Why a flow is in its state.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    /// The flow.
    pub flow: String,
    /// Its state.
    pub state: FlowState,
    /// The reasons, the one that decides first.
    pub reasons: Vec<Reason>,
    /// Milliseconds since the last activity.
    pub idle_ms: u64,
    /// The idle window.
    pub idle_after_ms: u64,
    /// When it drains if nothing else arrives (milliseconds from now; `null` when it will not drain by
    /// itself: asleep, pinned, or another replica drains it).
    pub drains_in_ms: Option<u64>,
    /// Requests of the flow open on this replica, by kind.
    pub open: OpenNow,
    /// While a keep-warm window holds it awake: when the window closes (Unix milliseconds).
    pub keep_warm_until_ms: Option<i64>,
    /// Outside keep-warm windows: when the next window's wake starts (Unix milliseconds).
    pub next_keep_warm_ms: Option<i64>,
    /// The last requests that counted as activity on this replica, newest first.
    pub recent: Vec<crate::SeenRequest>,
    /// Requests its `ignore` rules matched on this replica.
    pub ignored: u64,
    /// The last of those.
    pub last_ignored: Option<crate::SeenRequest>,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn human(ms: u64) -> String {
    humantime::format_duration(Duration::from_millis(ms / 1000 * 1000)).to_string()
}

fn ms_between(from: i64, to: i64) -> u64 {
    u64::try_from(to.saturating_sub(from)).unwrap_or(0)
}

/// A Unix-millisecond time as RFC 3339 in UTC, to the second.
fn utc(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms / 1000 * 1000).map_or_else(|_| ms.to_string(), |t| t.to_string())
}

impl Controller {
    /// Where `flow` stands against its keep-warm schedules at `now_ms`: when the open window closes, or
    /// when the next one's wake starts (both `None` without schedules).
    pub(crate) fn keep_warm_now(&self, flow: &crate::FlowHandle, now_ms: i64) -> (Option<i64>, Option<i64>) {
        if flow.spec.keep_warm.is_empty() {
            return (None, None);
        }
        match flow.keep_warm_until() {
            Some(until) => (Some(until), None),
            None => match leannodes_config::schedule::combined_window(&flow.spec.keep_warm, now_ms) {
                leannodes_config::schedule::Window::Closed { next_ms } => (None, next_ms),
                // The schedule task has not marked it yet; it will within a moment.
                leannodes_config::schedule::Window::Open { until_ms } => (Some(until_ms), None),
            },
        }
    }

    /// Why `name` is in its state; `None` for an unknown flow.
    pub fn explain(&self, name: &str) -> Option<Explanation> {
        let flow = self.flow(name)?;
        let view = self.views().into_iter().find(|v| v.name == name)?;
        let open = flow.activity.open_now();
        let idle_ms = millis(flow.activity.idle_for());
        let idle_after_ms = millis(flow.spec.idle_after);
        let may_drain = self.inner.may_drain(&flow);
        let mut reasons = Vec::new();
        let mut say = |kind, message: String| reasons.push(Reason { kind, message });

        if view.disabled {
            let by = if flow.spec.disabled { "in its definition" } else { "by an operator" };
            say(ReasonKind::Disabled, format!("disabled {by}: requests get 503 flow_disabled and nothing wakes it"));
        }
        match view.state {
            FlowState::Asleep => say(ReasonKind::Asleep, "asleep: no request has asked for it since it was drained or started".into()),
            FlowState::Waking => say(ReasonKind::Waking, format!("waking now (execution {})", view.execution.as_deref().unwrap_or("?"))),
            FlowState::Draining => say(ReasonKind::Draining, "being drained now".into()),
            FlowState::Failed => {
                let failure = view.failure.as_ref().map_or_else(
                    || "its last wake failed".to_string(),
                    |f| format!("its last wake failed at node {}: {}", f.node, f.message),
                );
                let retry = view
                    .retry_in_ms
                    .map_or_else(|| "the next request retries".to_string(), |ms| format!("the next request retries in {}", human(ms)));
                say(ReasonKind::Failed, format!("{failure}; {retry}"));
            }
            FlowState::Awake => {}
        }
        if view.pinned {
            let by = if flow.spec.pinned { "in its definition" } else { "by an operator (`unpin` to let it drain)" };
            say(ReasonKind::Pinned, format!("pinned {by}: it is never drained"));
        }
        let now_ms = self.inner.options.clock.now_ms();
        let (keep_warm_until_ms, next_keep_warm_ms) = self.keep_warm_now(&flow, now_ms);
        let schedules = || {
            flow.spec
                .keep_warm
                .iter()
                .map(|w| format!("`{}` ({}) for {}", w.cron, w.tz_name, human(millis(w.length))))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if let (Some(until), FlowState::Asleep) = (keep_warm_until_ms, view.state) {
            say(
                ReasonKind::Schedule,
                format!(
                    "inside its keep-warm window {} until {}, but drained by an operator: the next request wakes it and it then stays awake until the window closes",
                    schedules(),
                    utc(until)
                ),
            );
        } else if let Some(until) = keep_warm_until_ms {
            say(
                ReasonKind::Schedule,
                format!(
                    "held awake by its keep-warm schedule {} until {} (in {})",
                    schedules(),
                    utc(until),
                    human(ms_between(now_ms, until))
                ),
            );
        } else if let Some(next) = next_keep_warm_ms {
            say(
                ReasonKind::Schedule,
                format!("its keep-warm schedule {} wakes it next at {} (in {})", schedules(), utc(next), human(ms_between(now_ms, next))),
            );
        }
        let streams = [
            (open.websocket, "WebSocket connection"),
            (open.sse, "event stream (SSE)"),
            (open.grpc, "gRPC call"),
            (open.request, "request"),
        ];
        let listed: Vec<String> =
            streams.iter().filter(|(n, _)| *n > 0).map(|(n, what)| format!("{n} {what}{}", if *n == 1 { "" } else { "s" })).collect();
        if !listed.is_empty() {
            say(
                ReasonKind::Open,
                format!(
                    "open on this replica: {}; they keep it awake while they carry data (a silent connection stops counting)",
                    listed.join(", ")
                ),
            );
        }
        let recent = flow.activity.recent();
        let (ignored, last_ignored) = flow.activity.ignored();
        if view.state == FlowState::Awake && idle_ms < idle_after_ms {
            // The newest activity is a request here, or came through another replica (merged from the store).
            let local = recent.first().filter(|r| now_ms.saturating_sub(r.at_ms) <= i64::try_from(idle_ms).unwrap_or(i64::MAX) + 1000);
            let what = match local {
                Some(r) => format!(
                    "the last request, {} {} ({}), came {} ago on this replica",
                    r.method,
                    r.path,
                    r.status,
                    human(ms_between(r.at_ms, now_ms))
                ),
                None if self.inner.coordinated(&flow) => format!("the last activity, {} ago, came through another replica", human(idle_ms)),
                None => format!("the last activity was {} ago", human(idle_ms)),
            };
            say(ReasonKind::RecentActivity, format!("{what}, within its idle window of {}", human(idle_after_ms)));
        }
        if let Some(last) = &last_ignored {
            say(
                ReasonKind::Ignored,
                format!(
                    "{ignored} request{} matched its ignore rules (the last, {} {}, {} ago): they neither wake it nor keep it awake",
                    if ignored == 1 { "" } else { "s" },
                    last.method,
                    last.path,
                    human(ms_between(last.at_ms, now_ms))
                ),
            );
        }
        for node in &view.nodes {
            let users = self.inner.workload_users(&flow, &node.name);
            if !users.is_empty() && node.running {
                say(
                    ReasonKind::SharedWorkload,
                    format!("node {} runs for {} too: it stays up while they need it", node.name, users.join(", ")),
                );
            }
        }
        if !may_drain {
            say(ReasonKind::NotLeader, "this replica does not drain it: the drain leader does, from every replica's activity".into());
        }
        let drains_in_ms = (view.state == FlowState::Awake && !view.pinned && keep_warm_until_ms.is_none() && may_drain)
            .then(|| idle_after_ms.saturating_sub(idle_ms));
        Some(Explanation {
            flow: name.to_string(),
            state: view.state,
            reasons,
            idle_ms,
            idle_after_ms,
            drains_in_ms,
            open,
            keep_warm_until_ms,
            next_keep_warm_ms,
            recent,
            ignored,
            last_ignored,
        })
    }
}
