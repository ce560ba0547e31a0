//! The gate: the behaviour contract (DESIGN §4) as one decision over a request, shared by every front
//! door — the Pingora proxy, the forward-auth `/check` endpoint and Envoy `ext_authz`. It matches the
//! route, applies `disabled`, `ignore`, `max_held`, records activity, wakes the flow and holds until it
//! is awake, failed or out of budget, and says what to do: go ahead, or answer with a [`Reply`].
//! Front doors only translate their request into an [`Inquiry`] and the [`Verdict`] into their protocol.

use std::sync::Arc;
use std::time::Duration;

use leannodes_control::{FlowState, FlowStatus, NoticeKind, Trigger};
use serde_json::json;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::answer::{self, Client, Reply};
use crate::metrics::{HeldGuard, Outcome};
use crate::routes::Route;
use crate::service::ProxyState;

/// Retry-After (seconds) while a wake is still running.
const RETRY_AFTER_WAKING: u64 = 5;

/// The original request, as a front door knows it.
#[derive(Debug, Clone)]
pub struct Inquiry {
    /// Host, with or without a port.
    pub host: String,
    /// Path (without the query).
    pub path: String,
    /// Kind of client (decides the budget and the shape of answers).
    pub client: Client,
    /// `User-Agent`, for `ignore` rules.
    pub user_agent: Option<String>,
    /// `X-LeanNodes-Version`: the version of a store-managed flow asked for (served by its test
    /// session, or by the flow when it is the active version).
    pub version: Option<String>,
}

/// The header that asks for a version of a store-managed flow.
pub(crate) const VERSION_HEADER: &str = "x-leannodes-version";

/// What to do with a request.
#[derive(Debug)]
pub enum Verdict {
    /// Go ahead: the flow is awake (now, or after holding the request for `held_ms`).
    Allow {
        /// The flow's route (after a reload, the new one).
        route: Arc<Route>,
        /// Whether the request counts as activity (not when an `ignore` rule matched).
        counts: bool,
        /// How long the request was held, when it was.
        held_ms: Option<u64>,
        /// When the hold budget ends, for a request that was held (connect retries stay inside it).
        deadline: Option<Instant>,
    },
    /// No flow serves this host and path.
    Unmatched,
    /// Answer this instead of the backend.
    Answer {
        /// The flow's route, when one matched.
        route: Option<Arc<Route>>,
        /// For metrics and the access log.
        outcome: Outcome,
        /// The answer.
        reply: Reply,
    },
    /// The client went away while held; the wake goes on.
    ClientGone {
        /// The flow's route.
        route: Arc<Route>,
    },
}

/// Retry-After (seconds) for a failed wake: the remaining backoff, at least 1.
fn retry_after_failed(status: &FlowStatus) -> u64 {
    status.retry_at.and_then(|at| at.checked_duration_since(Instant::now())).map_or(1, |d| d.as_secs() + 1)
}

/// A 503 JSON refusal with the outcome's error code.
fn refuse(route: &Arc<Route>, outcome: Outcome, message: &str, retry_after: Option<u64>) -> Verdict {
    let reply = answer::json_reply(503, outcome.label(), Some(route.flow.name()), message, retry_after, json!({}));
    Verdict::Answer { route: Some(route.clone()), outcome, reply }
}

/// Resolves once shutdown has begun.
pub(crate) async fn shutting_down(rx: &mut watch::Receiver<bool>) {
    if rx.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// The first settled status (awake, failed or removed); `None` if the flow's channel closed.
async fn settled(rx: &mut watch::Receiver<FlowStatus>) -> Option<FlowStatus> {
    rx.wait_for(FlowStatus::is_settled).await.ok().map(|s| s.clone())
}

impl ProxyState {
    /// Decides what to do with `inquiry`, holding it while its flow wakes. `client_gone` resolves when
    /// the client goes away (pending forever where that cannot be seen).
    pub async fn gate(&self, inquiry: &Inquiry, client_gone: impl Future<Output = ()>) -> Verdict {
        let Some(mut route) = self.routes.load().find(&inquiry.host, &inquiry.path).cloned() else { return Verdict::Unmatched };
        if let Some(asked) = inquiry.version.as_deref() {
            match self.session_route(&route, asked) {
                Ok(session) => route = session,
                Err(verdict) => return verdict,
            }
        }
        let flow = &route.flow;
        if flow.is_disabled() {
            return refuse(&route, Outcome::FlowDisabled, "this flow is disabled", None);
        }
        if !flow.spec.ignore.is_empty() && flow.spec.ignore.matches(inquiry.user_agent.as_deref(), &inquiry.path) {
            if flow.state() == FlowState::Awake {
                return Verdict::Allow { route, counts: false, held_ms: None, deadline: None };
            }
            return refuse(&route, Outcome::Asleep, "the flow is asleep and this request does not wake it", Some(RETRY_AFTER_WAKING));
        }
        flow.activity.record();
        if flow.state() == FlowState::Awake {
            return Verdict::Allow { route, counts: true, held_ms: None, deadline: None };
        }
        self.hold(route, inquiry.client, client_gone).await
    }

    /// The route that serves version `asked` of `route`'s flow: the flow itself when that version is
    /// active, else its test session; `404 no_test_session` when neither serves it.
    fn session_route(&self, route: &Arc<Route>, asked: &str) -> Result<Arc<Route>, Verdict> {
        let spec = &route.flow.spec;
        let number = asked.trim().parse::<u64>().ok();
        if let (leannodes_config::FlowOrigin::Store { version }, Some(n)) = (&spec.origin, number) {
            if *version == n {
                return Ok(route.clone());
            }
            let name = leannodes_config::FlowOrigin::session_name(&spec.name, n);
            if let Some(session) = self.routes.load().flow(&name) {
                return Ok(session.clone());
            }
        }
        let message = format!("no test session serves version `{}` of flow `{}`", asked.trim(), spec.name);
        let reply = answer::json_reply(404, "no_test_session", Some(&spec.name), &message, None, json!({}));
        Err(Verdict::Answer { route: Some(route.clone()), outcome: Outcome::NoTestSession, reply })
    }

    /// Holds until the flow is awake, failed, or the budget is spent.
    async fn hold(&self, mut route: Arc<Route>, client: Client, client_gone: impl Future<Output = ()>) -> Verdict {
        let Some(_held): Option<HeldGuard> = route.metrics.try_hold(route.flow.spec.max_held.get()) else {
            let spec = &route.flow.spec;
            self.controller.publish_notice(
                NoticeKind::HoldQueueFull,
                Some(&spec.name),
                format!("{} is refusing requests: its hold queue is full", spec.name),
                format!("{} requests are already held while it wakes (max_held); more get 503 hold_queue_full.", spec.max_held),
            );
            return refuse(&route, Outcome::HoldQueueFull, "too many requests are waiting for this flow to wake", Some(2));
        };
        let spec = &route.flow.spec;
        let started = Instant::now();
        let budget = if client == Client::Browser { spec.fast_hold.min(spec.hold_timeout) } else { spec.hold_timeout };
        let deadline = started + budget;
        let hold_deadline = started + spec.hold_timeout;
        let Ok(mut rx) = self.controller.wake_flow(&route.flow, Trigger::Request) else {
            return refuse(&route, Outcome::FlowDisabled, "this flow is disabled", None);
        };
        let mut shutdown = self.shutdown.subscribe();
        tokio::pin!(client_gone);
        loop {
            let settled = tokio::select! {
                s = settled(&mut rx) => s,
                () = tokio::time::sleep_until(deadline) => None,
                () = shutting_down(&mut shutdown) => {
                    return refuse(&route, Outcome::ShuttingDown, "LeanNodes is shutting down; retry shortly", Some(2));
                }
                () = &mut client_gone => return Verdict::ClientGone { route },
            };
            let waited = started.elapsed();
            let waited_ms = u64::try_from(waited.as_millis()).unwrap_or(u64::MAX);
            let flow = route.flow.clone();
            match settled {
                Some(status) if status.removed => {
                    // Replaced by a reload: continue on the new flow of the same name, if any.
                    let next = self.routes.load().flow(flow.name()).filter(|r| !Arc::ptr_eq(&r.flow, &flow)).cloned();
                    let Some(next) = next else {
                        return refuse(
                            &route,
                            Outcome::FlowRemoved,
                            "the flow was removed from the configuration",
                            Some(RETRY_AFTER_WAKING),
                        );
                    };
                    route = next;
                    match self.controller.wake_flow(&route.flow, Trigger::Request) {
                        Ok(next_rx) => rx = next_rx,
                        Err(_) => return refuse(&route, Outcome::FlowDisabled, "this flow is disabled", None),
                    }
                }
                Some(status) if status.state == FlowState::Awake => {
                    route.metrics.hold_duration.observe(waited);
                    return Verdict::Allow { route, counts: true, held_ms: Some(waited_ms), deadline: Some(hold_deadline) };
                }
                Some(status) => {
                    route.metrics.hold_duration.observe(waited);
                    let status = self.shown(&status);
                    let failure = status.failure.clone();
                    let message = failure.as_ref().map_or_else(|| "the flow failed to wake".to_string(), |f| f.message.clone());
                    let reply = match client {
                        Client::Grpc => answer::grpc_reply(&format!("cold start failed: {message}")),
                        Client::Browser => answer::warmup_reply(&flow, &status, waited_ms, retry_after_failed(&status)),
                        Client::Api => {
                            let extra = json!({
                                "node": failure.as_ref().map(|f| f.node.clone()),
                                "reason": failure.as_ref().map(|f| f.reason.clone()),
                                "waited_ms": waited_ms,
                                "nodes": answer::nodes_json(&status),
                            });
                            answer::json_reply(
                                503,
                                "cold_start_failed",
                                Some(flow.name()),
                                &message,
                                Some(retry_after_failed(&status)),
                                extra,
                            )
                        }
                    };
                    return Verdict::Answer { route: Some(route), outcome: Outcome::ColdStartFailed, reply };
                }
                None => {
                    route.metrics.hold_duration.observe(waited);
                    let status = self.shown(&flow.status());
                    let reply = match client {
                        Client::Browser => answer::warmup_reply(&flow, &status, waited_ms, RETRY_AFTER_WAKING),
                        Client::Grpc => answer::grpc_reply(&format!("flow `{}` is still waking after {waited_ms} ms", flow.name())),
                        Client::Api => {
                            let extra = json!({ "waited_ms": waited_ms, "nodes": answer::nodes_json(&status) });
                            answer::json_reply(
                                503,
                                "cold_start_timeout",
                                Some(flow.name()),
                                "the flow did not wake within the hold budget; the wake continues",
                                Some(RETRY_AFTER_WAKING),
                                extra,
                            )
                        }
                    };
                    return Verdict::Answer { route: Some(route), outcome: Outcome::ColdStartTimeout, reply };
                }
            }
        }
    }
}

/// How long a callout may hold a request of a flow with this hold timeout: the gateway's own timeout
/// must be at least this (the hold budget plus a margin for the gateway's round trip).
pub fn callout_timeout(hold_timeout: Duration) -> Duration {
    hold_timeout + Duration::from_secs(10)
}
