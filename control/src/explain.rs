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
    /// Disabled: requests are refused and nothing wakes it.
    Disabled,
    /// Requests, streams or upgraded connections are open on this replica.
    Open,
    /// A request (or bytes on a connection) within the idle window.
    RecentActivity,
    /// One of its workloads runs because another flow holds it.
    SharedWorkload,
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
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn human(ms: u64) -> String {
    humantime::format_duration(Duration::from_millis(ms / 1000 * 1000)).to_string()
}

impl Controller {
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
        if view.state == FlowState::Awake && idle_ms < idle_after_ms {
            say(
                ReasonKind::RecentActivity,
                format!("last activity {} ago, within its idle window of {}", human(idle_ms), human(idle_after_ms)),
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
        let drains_in_ms = (view.state == FlowState::Awake && !view.pinned && may_drain).then(|| idle_after_ms.saturating_sub(idle_ms));
        Some(Explanation { flow: name.to_string(), state: view.state, reasons, idle_ms, idle_after_ms, drains_in_ms, open })
    }
}
