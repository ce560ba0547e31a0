//! The DAG executor: one wake execution of one flow.
//!
//! A node is asked to wake as soon as all of its `after` nodes are ready, so independent branches start
//! in parallel. Each node has its own timeout. The first failure cancels the nodes still waking, rolls
//! back what this execution started (per `on_failure`), and arms the flow's backoff.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use leannodes_config::{NodeKind, OnFailure};
use leannodes_drivers::{Failure, FailureKind};
use leannodes_store::{ExecutionRecord, Lease, LeaseRequest, Outcome, StepRecord};
use tokio::time::Instant;

use crate::controller::Inner;
use crate::coordination::{self, ClaimEnd};
use crate::flow::{FlowFailure, FlowHandle, FlowState, NodeState, Trigger};
use crate::workload::{Woke, WorkloadRuntime};
use crate::{ExecutionEvent, Notice, NoticeKind, unix_ms};

/// A new execution id: sortable by start time, unique within the process.
fn execution_id() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    format!("{:012x}{:04x}", unix_ms(), SEQ.fetch_add(1, Ordering::Relaxed) & 0xffff)
}

/// Runs one execution of `flow`, which the caller has moved to `waking`.
pub(crate) async fn run(inner: Arc<Inner>, flow: Arc<FlowHandle>, trigger: Trigger) {
    let _lifecycle = flow.lifecycle.lock().await;
    if flow.state() != FlowState::Waking {
        return;
    }
    let mut exec = Execution::begin(&inner, &flow, trigger);
    let mut status = flow.subscribe();
    let removed = async move {
        let _ = status.wait_for(|s| s.removed).await;
    };
    // A manual drain asks a running wake to stop; a request made before this wake began counts too.
    let cancelled = {
        let flow = flow.clone();
        async move {
            let signal = flow.cancel_signal.notified();
            tokio::pin!(signal);
            signal.as_mut().enable();
            if !flow.cancel_wake.load(Ordering::Acquire) {
                signal.await;
            }
        }
    };
    // A flow removed by a reload stops waking at once: nobody can reach it any more.
    let coordinated = inner.coordinated(&flow);
    let result = tokio::select! {
        result = exec.wake(coordinated) => result.map_err(Stop::Failed),
        () = removed => Err(Stop::Removed),
        () = cancelled => Err(Stop::Drained),
    };
    exec.finish(result).await;
}

/// While the flow stays awake, watches its workloads; when one stops on its own (a crash), the flow goes
/// back to asleep so the next request wakes it again instead of failing against a dead upstream. A node
/// that dies by itself (exits, is killed) again before the flow has stayed up for
/// [`STEADY`](crate::backoff::STEADY) is a crash loop: the flow fails with the reason and is retried after
/// its backoff, not on every request. A flow that stays up that long, or is drained, forgets its failures.
async fn watch_for_loss(flow: Arc<FlowHandle>, losses: Vec<futures::future::BoxFuture<'static, Failure>>) {
    if losses.is_empty() {
        flow.backoff().succeed();
        return;
    }
    let mut status = flow.subscribe();
    let execution = status.borrow().execution.clone();
    let indexed = losses.into_iter().enumerate().map(|(i, lost)| Box::pin(async move { (i, lost.await) }));
    let mut lost = futures::future::select_all(indexed);
    let steady = tokio::time::sleep(crate::backoff::STEADY);
    tokio::pin!(steady);
    let mut is_steady = false;
    loop {
        tokio::select! {
            ((i, failure), _, _) = &mut lost => {
                let node = &flow.spec.nodes[i].name;
                let crashed = !is_steady && matches!(failure.kind, FailureKind::Exited | FailureKind::Signaled);
                let mut retry_at = None;
                let still_awake = flow.status.send_if_modified(|s| {
                    if s.state != FlowState::Awake || s.execution != execution || s.removed {
                        return false;
                    }
                    retry_at = if crashed { flow.backoff().crashed() } else { None };
                    let detail = format!("stopped while serving: {failure}");
                    match retry_at {
                        None => {
                            s.state = FlowState::Asleep;
                            if let Some(n) = s.nodes.get_mut(i) {
                                n.state = NodeState::Asleep;
                                n.detail = Some(detail);
                            }
                        }
                        Some(at) => {
                            s.state = FlowState::Failed;
                            s.retry_at = Some(at);
                            s.failure = Some(FlowFailure {
                                node: node.clone(),
                                reason: failure.label().to_string(),
                                message: format!("node `{node}` keeps stopping right after it is woken (crash loop): {failure}"),
                            });
                            if let Some(n) = s.nodes.get_mut(i) {
                                n.state = NodeState::Failed;
                                n.detail = Some(detail);
                            }
                        }
                    }
                    true
                });
                match (still_awake, retry_at) {
                    (false, _) => {}
                    (true, None) => tracing::warn!(flow = flow.name(), node = %node, "node stopped while serving ({failure}); the next request wakes the flow again"),
                    (true, Some(at)) => tracing::warn!(
                        flow = flow.name(),
                        node = %node,
                        retry_in = ?at.saturating_duration_since(Instant::now()),
                        "node stopped right after the wake again ({failure}): crash loop; retrying after the backoff"
                    ),
                }
                return;
            }
            () = &mut steady, if !is_steady => {
                is_steady = true;
                flow.backoff().succeed();
            }
            _ = status.wait_for(|s| s.state != FlowState::Awake || s.removed || s.execution != execution) => {
                // Drained or replaced, not crashed.
                if !is_steady {
                    flow.backoff().succeed();
                }
                return;
            }
        }
    }
}

/// Why an execution stopped before every node was ready.
enum Stop {
    /// Node `.0` failed.
    Failed((usize, Failure)),
    /// The flow was removed from the configuration.
    Removed,
    /// An operator drained the flow while it woke.
    Drained,
}

/// When the platform took a node's wake request and when it placed the workload (Unix milliseconds).
#[derive(Debug, Clone, Copy)]
struct Stamps {
    spawned: Option<i64>,
    placed: Option<i64>,
}

/// This replica's part in an execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The flow is not shared with other replicas: wake it.
    Local,
    /// This replica claimed the shared cold start: wake it, record it.
    Claimant,
    /// Another replica claimed it: observe readiness, record nothing.
    Follower,
}

struct Execution<'a> {
    inner: &'a Inner,
    role: Role,
    /// The cold-start claim, while this replica is the claimant.
    claim: Option<Lease>,
    flow: &'a Arc<FlowHandle>,
    workloads: Vec<Arc<WorkloadRuntime>>,
    record: ExecutionRecord,
    started: Instant,
    /// Per node: asked to wake in this execution.
    requested: Vec<bool>,
    /// Per node: ready.
    ready: Vec<bool>,
    /// Per node: started by this execution (rollback candidates).
    started_here: Vec<bool>,
}

impl<'a> Execution<'a> {
    fn begin(inner: &'a Inner, flow: &'a Arc<FlowHandle>, trigger: Trigger) -> Execution<'a> {
        let nodes = &flow.spec.nodes;
        let workloads: Vec<_> = nodes.iter().map(|n| inner.workload(&n.workload)).collect();
        for w in &workloads {
            w.acquire(flow.name());
        }
        let id = execution_id();
        flow.status.send_modify(|s| {
            s.execution = Some(id.clone());
            s.failure = None;
            s.retry_at = None;
            for node in &mut s.nodes {
                node.state = NodeState::Pending;
                node.detail = None;
            }
        });
        let record = ExecutionRecord {
            id: id.clone(),
            flow: flow.name().to_string(),
            trigger: trigger.as_str().to_string(),
            outcome: Outcome::Running,
            error: None,
            started_ms: unix_ms(),
            finished_ms: None,
            steps: nodes.iter().map(|n| StepRecord::pending(n.name.clone(), n.workload.id.to_string())).collect(),
        };
        tracing::info!(flow = flow.name(), execution = %id, trigger = trigger.as_str(), "wake started");
        inner.events.publish(ExecutionEvent::ExecutionStarted {
            execution: id,
            flow: flow.name().to_string(),
            trigger: trigger.as_str().to_string(),
            nodes: nodes.iter().map(|n| n.name.clone()).collect(),
        });
        let n = nodes.len();
        Execution {
            inner,
            role: Role::Local,
            claim: None,
            flow,
            workloads,
            record,
            started: Instant::now(),
            requested: vec![false; n],
            ready: vec![false; n],
            started_here: vec![false; n],
        }
    }

    /// Queues the record for the store, unless another replica records this wake.
    fn save(&self) {
        if self.role != Role::Follower {
            self.inner.persist(self.record.clone());
        }
    }

    /// Wakes every node, coordinating with other replicas when the flow is shared.
    async fn wake(&mut self, coordinated: bool) -> Result<(), (usize, Failure)> {
        if coordinated {
            return self.wake_coordinated().await;
        }
        self.save();
        self.notice_started();
        self.wake_all().await
    }

    /// Tells operators the wake began; only the replica that wakes the flow does (followers do not), so
    /// a shared cold start is told once.
    fn notice_started(&self) {
        let nodes: Vec<&str> = self.flow.spec.nodes.iter().map(|n| n.name.as_str()).collect();
        self.inner.notices.publish(Notice::new(
            NoticeKind::WakeStarted,
            Some(self.flow.name()),
            format!("{} is waking", self.flow.name()),
            format!("Woken by {}: nodes {} (execution {}).", self.record.trigger, nodes.join(", "), self.record.id),
            &self.inner.options.replica_id,
        ));
    }

    /// Claims the cold start and wakes the flow, or follows the replica that claimed it (see
    /// [`crate::coordination`]).
    async fn wake_coordinated(&mut self) -> Result<(), (usize, Failure)> {
        let store = self.inner.store.clone();
        let options = self.inner.options.clone();
        let name = coordination::claim_name(self.flow.name());
        loop {
            let request = LeaseRequest { name: &name, holder: &options.replica_id, ttl: options.claim_ttl, data: &self.record.id };
            // Bounded: a store that hangs is a store that fails, not a wake that waits out the hold budget.
            let patience = coordination::store_patience(options.claim_ttl);
            match leannodes_store::within(patience, "acquire lease", store.acquire_lease(request)).await {
                Err(e) => {
                    // A Job must run once across replicas: without a claim another replica could run it too.
                    let job = self.flow.spec.nodes.iter().position(|n| n.workload.kind() == NodeKind::Job);
                    if let Some(i) = job {
                        let node = &self.flow.spec.nodes[i].name;
                        tracing::warn!(
                            flow = self.flow.name(),
                            "cannot claim the cold start ({e}); job node `{node}` does not run without a claim"
                        );
                        let message = format!(
                            "the store is unavailable, so the cold start cannot be claimed ({e}); job node `{node}` runs only under a claim (another replica could run it too) — the next request after the store is back wakes the flow"
                        );
                        return Err((i, Failure::new(FailureKind::Platform, message).with_reason("StoreUnavailable")));
                    }
                    // Better a wake that may be asked twice (scaling is idempotent) than none.
                    tracing::warn!(flow = self.flow.name(), "cannot claim the cold start ({e}); waking without coordination");
                    self.role = Role::Local;
                    self.save();
                    self.notice_started();
                    return self.wake_all().await;
                }
                Ok(Some(claim)) => {
                    tracing::info!(flow = self.flow.name(), execution = %self.record.id, token = claim.token, "claimed the cold start");
                    self.role = Role::Claimant;
                    self.claim = Some(claim.clone());
                    self.save();
                    self.notice_started();
                    let renew = coordination::keep_renewed(store.clone(), claim, options.claim_ttl);
                    return tokio::select! {
                        result = self.wake_all() => result,
                        never = renew => match never {},
                    };
                }
                Ok(None) => {
                    self.role = Role::Follower;
                    let watch = coordination::watch_claim(store.clone(), name.clone(), options.claim_ttl);
                    let end = tokio::select! {
                        result = self.wake_all() => return result,
                        end = watch => end,
                    };
                    match end {
                        ClaimEnd::Failed { node, message } => {
                            let i = node.and_then(|n| self.flow.spec.nodes.iter().position(|x| x.name == n)).unwrap_or(0);
                            return Err((i, Failure::new(FailureKind::Platform, message)));
                        }
                        // The claimant saw every node ready; this replica's own watches may lag a moment
                        // (the proxy waits briefly for an endpoint).
                        ClaimEnd::Succeeded => {
                            for i in 0..self.ready.len() {
                                if !self.ready[i] {
                                    self.ready[i] = true;
                                    self.flow.set_node(i, NodeState::Ready, Some("ready (seen by the replica that woke it)".into()));
                                }
                            }
                            return Ok(());
                        }
                        // Claim it and go on from what is ready already.
                        ClaimEnd::Abandoned => self.requested.clone_from(&self.ready),
                    }
                }
            }
        }
    }

    /// Wakes every node in dependency order; returns the first failure.
    async fn wake_all(&mut self) -> Result<(), (usize, Failure)> {
        let nodes = &self.flow.spec.nodes;
        let mut waking = FuturesUnordered::new();
        loop {
            for (i, node) in nodes.iter().enumerate() {
                if !self.requested[i] && node.after.iter().all(|d| self.ready[*d]) {
                    self.requested[i] = true;
                    waking.push(self.wake_node(i));
                }
            }
            let Some((i, started_at, stamps, result)) = waking.next().await else { return Ok(()) };
            let step = &mut self.record.steps[i];
            step.requested_ms = Some(started_at);
            step.started_ms = Some(stamps.spawned.unwrap_or(started_at));
            step.scheduled_ms = stamps.placed;
            match result {
                Ok(woke) => {
                    self.ready[i] = true;
                    self.started_here[i] = woke == Woke::Started;
                    step.state = "ready".into();
                    step.ready_ms = Some(unix_ms());
                    self.flow.set_node(i, NodeState::Ready, None);
                    self.inner.events.publish(ExecutionEvent::NodeReady {
                        execution: self.record.id.clone(),
                        flow: self.flow.name().to_string(),
                        node: nodes[i].name.clone(),
                        elapsed_ms: u64::try_from(step.ready_ms.unwrap_or_default() - started_at).unwrap_or_default(),
                        start_ms: stamps.spawned.and_then(|at| u64::try_from(at - started_at).ok()),
                        scheduled_ms: stamps.placed.and_then(|at| u64::try_from(at - started_at).ok()),
                    });
                    self.save();
                }
                Err(failure) => return Err((i, failure)),
            }
        }
    }

    /// Wakes node `i` within its timeout. Returns the node, when it was asked, when the platform took
    /// the request and placed it (not known when another replica owns the wake), and the result.
    fn wake_node(&self, i: usize) -> impl Future<Output = (usize, i64, Stamps, Result<Woke, Failure>)> + 'a {
        let flow = self.flow;
        let node = &flow.spec.nodes[i];
        let workload = self.workloads[i].clone();
        let events = &self.inner.events;
        let execution = self.record.id.clone();
        let follow = self.role == Role::Follower;
        async move {
            let asked = unix_ms();
            flow.set_node(i, NodeState::Starting, None);
            events.publish(ExecutionEvent::NodeStarted { execution, flow: flow.name().to_string(), node: node.name.clone() });
            let progress = |detail: &str| flow.set_node(i, NodeState::Starting, Some(detail.to_string()));
            let spawned = std::sync::atomic::AtomicI64::new(0);
            let placed = std::sync::atomic::AtomicI64::new(0);
            let took = || spawned.store(unix_ms(), std::sync::atomic::Ordering::Relaxed);
            let scheduled = || {
                let _ = placed.compare_exchange(0, unix_ms(), std::sync::atomic::Ordering::Relaxed, std::sync::atomic::Ordering::Relaxed);
            };
            let waking = async { if follow { workload.observe(progress).await } else { workload.wake(progress, took, scheduled).await } };
            let result = match tokio::time::timeout(node.timeout, waking).await {
                Ok(result) => result,
                Err(_) => {
                    let last = flow.status.borrow().nodes.get(i).and_then(|n| n.detail.clone());
                    Err(workload.timeout_failure(node.timeout, last.as_deref()))
                }
            };
            let spawned = Some(spawned.load(std::sync::atomic::Ordering::Relaxed)).filter(|at| *at > 0);
            let placed = Some(placed.load(std::sync::atomic::Ordering::Relaxed)).filter(|at| *at > 0);
            (i, asked, Stamps { spawned, placed }, result)
        }
    }

    async fn finish(mut self, result: Result<(), Stop>) {
        let elapsed_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let flow = self.flow;
        // The record is queued before the state changes, so whoever wakes up on the new state and reads
        // the history finds the finished execution.
        let settled = match result {
            Ok(()) => {
                // The backoff is forgotten once the flow stays up (`watch_for_loss`): a backend that dies
                // right after every wake is a crash loop, not a string of successes.
                flow.activity.record();
                self.record.outcome = Outcome::Succeeded;
                tracing::info!(flow = flow.name(), execution = %self.record.id, elapsed_ms, "wake succeeded");
                None
            }
            Err(stop @ (Stop::Removed | Stop::Drained)) => {
                let why =
                    if matches!(stop, Stop::Removed) { "the flow was removed from the configuration" } else { "the flow was drained" };
                tracing::info!(flow = flow.name(), execution = %self.record.id, "wake cancelled: {why}");
                self.cancel_unfinished(usize::MAX);
                self.roll_back().await;
                self.record.outcome = Outcome::Cancelled;
                self.record.error = Some(why.into());
                None
            }
            Err(Stop::Failed((i, failure))) => {
                let node = &flow.spec.nodes[i];
                let message = format!("node `{}`: {failure}", node.name);
                tracing::warn!(flow = flow.name(), execution = %self.record.id, node = %node.name, reason = failure.label(), "wake failed: {failure}");
                let step = &mut self.record.steps[i];
                step.state = "failed".into();
                step.reason = Some(failure.to_string());
                step.failed_ms = Some(unix_ms());
                flow.set_node(i, NodeState::Failed, Some(failure.to_string()));
                self.inner.events.publish(ExecutionEvent::NodeFailed {
                    execution: self.record.id.clone(),
                    flow: flow.name().to_string(),
                    node: node.name.clone(),
                    label: failure.label().to_string(),
                    reason: failure.to_string(),
                });
                self.cancel_unfinished(i);
                if flow.spec.on_failure == OnFailure::Rollback {
                    self.roll_back().await;
                }
                self.record.outcome = Outcome::Failed;
                self.record.error = Some(message.clone());
                Some(FlowFailure { node: node.name.clone(), reason: failure.label().to_string(), message })
            }
        };
        self.record.finished_ms = Some(unix_ms());
        let finished = ExecutionEvent::ExecutionFinished {
            execution: self.record.id.clone(),
            flow: flow.name().to_string(),
            outcome: self.record.outcome.as_str().to_string(),
            elapsed_ms,
            error: self.record.error.clone(),
        };
        let cancelled = self.record.outcome == Outcome::Cancelled;
        if self.role != Role::Follower && self.inner.spans.enabled() {
            self.inner.spans.publish(crate::trace::wake_spans(&self.record, &self.inner.options.replica_id));
        }
        if self.role != Role::Follower {
            let name = flow.name();
            let notice = match &settled {
                _ if cancelled => None,
                None => Some((
                    NoticeKind::WakeSucceeded,
                    format!("{name} is awake"),
                    format!(
                        "Every node is ready after {} (execution {}).",
                        humantime::format_duration(Duration::from_millis(elapsed_ms)),
                        self.record.id
                    ),
                )),
                Some(failure) => Some((
                    NoticeKind::WakeFailed,
                    format!("{name} failed to wake"),
                    format!("{} (execution {}). Requests get an error until a retry succeeds.", failure.message, self.record.id),
                )),
            };
            if let Some((kind, title, detail)) = notice {
                self.inner.notices.publish(Notice::new(kind, Some(name), title, detail, &self.inner.options.replica_id));
            }
        }
        self.save();
        // Held requests learn the outcome first: they never wait for the store.
        match settled {
            None if cancelled => flow.status.send_modify(|s| s.state = FlowState::Asleep),
            None => {
                flow.status.send_modify(|s| {
                    s.state = FlowState::Awake;
                    s.failure = None;
                    s.retry_at = None;
                    s.last_wake_ms = Some(unix_ms());
                });
                let losses: Vec<_> = self.workloads.iter().map(|w| w.lost()).collect();
                self.inner.spawn(watch_for_loss(flow.clone(), losses));
            }
            Some(failure) => {
                let retry_at = flow.backoff().fail();
                flow.status.send_modify(|s| {
                    s.state = FlowState::Failed;
                    s.retry_at = Some(retry_at);
                    s.failure = Some(failure);
                });
            }
        }
        self.inner.events.publish(finished);
        if let Some(claim) = self.claim.take() {
            // Followers that see the claim gone read the outcome: it must be stored first. A store that
            // does not take it in time gets the claim left to expire by itself (followers then resume
            // the wake and find its nodes ready).
            let patience = coordination::store_patience(self.inner.options.claim_ttl);
            if tokio::time::timeout(patience, self.inner.flush()).await.is_err() {
                tracing::warn!(
                    flow = flow.name(),
                    "the store did not take the execution record within {patience:?}; the cold-start claim is left to expire"
                );
                return;
            }
            if let Err(e) = leannodes_store::within(patience, "release lease", self.inner.store.release_lease(&claim)).await {
                tracing::warn!(flow = flow.name(), "cannot release the cold-start claim (it expires by itself): {e}");
            }
        }
    }

    /// Marks nodes that were still waking or never asked when the execution failed.
    fn cancel_unfinished(&mut self, failed: usize) {
        for i in 0..self.record.steps.len() {
            if i == failed || self.ready[i] {
                continue;
            }
            let state = if self.requested[i] { "cancelled" } else { "skipped" };
            self.record.steps[i].state = state.into();
            self.flow.set_node(i, NodeState::Asleep, Some(format!("{state}: another node failed")));
        }
    }

    /// Stops, in reverse order, what this execution started and no other flow uses. A reload that
    /// replaced the flow's definition while it woke hands the nodes both definitions share to the new one
    /// (which wakes next and adopts them): those are neither stopped nor released.
    async fn roll_back(&self) {
        let flow = self.flow;
        let successor = self.inner.flow(flow.name()).filter(|current| !Arc::ptr_eq(current, flow));
        let handed_over =
            |i: usize| successor.as_ref().is_some_and(|s| s.spec.nodes.iter().any(|n| n.workload.id == flow.spec.nodes[i].workload.id));
        if self.role == Role::Follower {
            // Nothing here was started by this replica.
            for w in &self.workloads {
                if !w.is_running() {
                    w.release(flow.name());
                }
            }
            return;
        }
        for i in (0..self.workloads.len()).rev() {
            let w = &self.workloads[i];
            if handed_over(i) {
                continue;
            }
            let ours = self.started_here[i] || (self.requested[i] && !self.ready[i]);
            if ours && w.other_users(flow.name()).is_empty() {
                if let Err(e) = w.stop().await {
                    tracing::warn!(flow = flow.name(), node = %flow.spec.nodes[i].name, "rollback stop failed: {e}");
                }
                if self.ready[i] {
                    flow.set_node(i, NodeState::Asleep, Some("rolled back".into()));
                }
            }
            if !w.is_running() {
                w.release(flow.name());
            }
        }
    }
}
