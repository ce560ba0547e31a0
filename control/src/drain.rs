//! The drainer: stops a flow's nodes after `idle_after` without activity (sliding window), in reverse
//! topological order, keeping workloads another flow still holds and re-checking activity right before
//! each stop. A wake that arrives during a drain is served: the drain stops where it is and the wake's
//! execution runs next.

use std::sync::{Arc, Weak};

use crate::controller::Inner;
use crate::flow::{FlowHandle, FlowState, NodeState, Trigger};

/// Why a drain runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Idle window elapsed: stop if activity comes back.
    Idle,
    /// Operator asked: ignore activity.
    Forced,
}

/// Watches one flow and drains it when it has been idle for `idle_after`. Ends when the controller goes.
///
/// A flow shared with other replicas is drained only by the drain leader, which also drains shared
/// flows that are running although this replica never woke them (woken through another replica).
pub(crate) async fn idle_loop(inner: Weak<Inner>, flow: Arc<FlowHandle>) {
    let mut status = flow.subscribe();
    // When this loop last drained the flow: workloads still shutting down after it are not adopted;
    // only activity since then (another replica woke it) makes a running flow ours to drain again.
    let mut drained_at: Option<tokio::time::Instant> = None;
    loop {
        if status.borrow().removed {
            return;
        }
        let state = status.borrow_and_update().state;
        let settings = flow.settings_changed.notified();
        let Some((coordinated, may_drain, tick, adoptable)) = inner.upgrade().map(|i| {
            let coordinated = i.coordinated(&flow);
            let may_drain = i.may_drain(&flow);
            let used_since = drained_at.is_none_or(|at| flow.activity.last() > at);
            let adoptable = coordinated && may_drain && state == FlowState::Asleep && used_since && runs_anything(&i, &flow);
            (coordinated, may_drain, i.options.activity_flush, adoptable)
        }) else {
            return;
        };
        // Coordinated flows are looked at again every activity flush: leadership and other replicas'
        // wakes change without a local status change.
        let recheck = async { if coordinated { tokio::time::sleep(tick).await } else { std::future::pending().await } };
        let awake = matches!(state, FlowState::Awake | FlowState::Failed) || adoptable;
        if !awake || flow.is_pinned() || flow.keep_warm_until().is_some() || !may_drain {
            tokio::select! {
                changed = status.changed() => if changed.is_err() { return },
                () = settings => {}
                () = recheck => {}
            }
            continue;
        }
        let deadline = flow.activity.last() + flow.spec.idle_after;
        if tokio::time::Instant::now() < deadline {
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {}
                changed = status.changed() => if changed.is_err() { return },
                () = settings => {}
                () = recheck => {}
            }
            continue;
        }
        let Some(inner) = inner.upgrade() else { return };
        tracing::info!(flow = flow.name(), idle_after = ?flow.spec.idle_after, adopted = adoptable, "idle; draining");
        drain_flow(&inner, &flow, Mode::Idle).await;
        drained_at = Some(tokio::time::Instant::now());
    }
}

/// Whether any workload of `flow` is running (as the platform reports it).
fn runs_anything(inner: &Inner, flow: &FlowHandle) -> bool {
    flow.spec.nodes.iter().any(|n| inner.workload(&n.workload).is_running())
}

/// Drains `flow`. Returns once done or interrupted.
pub(crate) async fn drain_flow(inner: &Arc<Inner>, flow: &Arc<FlowHandle>, mode: Mode) {
    // A forced drain does not wait out a wake in progress: it stops it (the wake rolls back).
    if mode == Mode::Forced && flow.state() == FlowState::Waking {
        flow.cancel_wake.store(true, std::sync::atomic::Ordering::Release);
        flow.cancel_signal.notify_waiters();
    }
    let _lifecycle = flow.lifecycle.lock().await;
    flow.cancel_wake.store(false, std::sync::atomic::Ordering::Release);
    // A shared flow may be running because another replica woke it: then it is asleep here, and the
    // drain leader drains it all the same.
    let adopt = inner.coordinated(flow) && runs_anything(inner, flow);
    let from: &[FlowState] =
        if adopt { &[FlowState::Awake, FlowState::Failed, FlowState::Asleep] } else { &[FlowState::Awake, FlowState::Failed] };
    if !flow.transition(from, FlowState::Draining) {
        return;
    }
    let mut stopped_any = false;
    for (i, node) in flow.spec.nodes.iter().enumerate().rev() {
        if flow.state() != FlowState::Draining {
            tracing::info!(flow = flow.name(), "drain interrupted by a wake");
            return;
        }
        if mode == Mode::Idle && flow.activity.idle_for() < flow.spec.idle_after {
            tracing::info!(flow = flow.name(), "activity during drain; staying awake");
            if stopped_any {
                inner.start_wake(flow, Trigger::Request);
            } else {
                flow.transition(&[FlowState::Draining], FlowState::Awake);
            }
            return;
        }
        let workload = inner.workload(&node.workload);
        // Another flow that holds the workload (waking, awake, or pinned and awake, on any replica) keeps
        // it running.
        if let Some(owner) = inner.holders(&workload, flow).first() {
            flow.set_node(i, NodeState::Kept, Some(format!("still needed by flow `{owner}`")));
        } else {
            flow.set_node(i, NodeState::Stopping, None);
            if let Err(e) = workload.stop().await {
                tracing::warn!(flow = flow.name(), node = %node.name, "stop failed: {e}");
            }
            stopped_any = true;
            flow.set_node(i, NodeState::Asleep, None);
        }
        workload.release(flow.name());
    }
    flow.transition(&[FlowState::Draining], FlowState::Asleep);
    inner.wake_metrics.drained(flow.name());
    let why = match mode {
        Mode::Idle => {
            format!("No request for {}: its workloads are stopped until the next one.", humantime::format_duration(flow.spec.idle_after))
        }
        Mode::Forced => "Drained by an operator: its workloads are stopped until the next request.".to_string(),
    };
    inner.notices.publish(crate::Notice::new(
        crate::NoticeKind::FlowDrained,
        Some(flow.name()),
        format!("{} was drained", flow.name()),
        why,
        &inner.options.replica_id,
    ));
    tracing::info!(flow = flow.name(), "drained");
}
