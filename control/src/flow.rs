//! Per-flow runtime: state published on a watch channel, activity, overrides and backoff.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use leannodes_config::Flow;
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use crate::{Activity, Backoff};

/// Lifecycle state of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowState {
    /// Drained (or never woken).
    Asleep,
    /// A wake execution is running.
    Waking,
    /// Every node is ready; requests are proxied.
    Awake,
    /// Nodes are being stopped.
    Draining,
    /// The last wake failed; the next request retries after the backoff.
    Failed,
}

impl FlowState {
    /// The word for this state.
    pub fn as_str(self) -> &'static str {
        match self {
            FlowState::Asleep => "asleep",
            FlowState::Waking => "waking",
            FlowState::Awake => "awake",
            FlowState::Draining => "draining",
            FlowState::Failed => "failed",
        }
    }

    /// Stable number for the flow-state gauge.
    pub fn gauge_value(self) -> i64 {
        match self {
            FlowState::Asleep => 0,
            FlowState::Waking => 1,
            FlowState::Awake => 2,
            FlowState::Draining => 3,
            FlowState::Failed => 4,
        }
    }
}

/// State of one node within its flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    /// Not running (as far as this flow knows).
    Asleep,
    /// Waiting for its `after` nodes.
    Pending,
    /// Asked to wake; not ready yet.
    Starting,
    /// Ready.
    Ready,
    /// Failed during the last wake.
    Failed,
    /// Being stopped by a drain.
    Stopping,
    /// Kept running by a drain because another flow needs it.
    Kept,
}

/// A node's state and detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeStatus {
    /// Node name.
    pub name: String,
    /// State.
    pub state: NodeState,
    /// What the last readiness check saw, or why it failed.
    pub detail: Option<String>,
}

/// Why the last wake failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowFailure {
    /// The node that failed.
    pub node: String,
    /// Stable reason label (`exited`, `timeout`, …).
    pub reason: String,
    /// Human message, including the node's last log line when there is one.
    pub message: String,
}

/// Everything a waiter needs to know about a flow, published on every change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowStatus {
    /// Lifecycle state.
    pub state: FlowState,
    /// Per-node states, in start order.
    pub nodes: Vec<NodeStatus>,
    /// The running or last execution.
    pub execution: Option<String>,
    /// Why the last wake failed (state `failed`).
    pub failure: Option<FlowFailure>,
    /// When the next wake may start, while held back after a failure.
    #[serde(skip)]
    pub retry_at: Option<Instant>,
    /// Set when the flow was removed from the configuration: waiters must give up.
    pub removed: bool,
    /// When the flow last finished waking (Unix milliseconds).
    pub last_wake_ms: Option<i64>,
}

impl FlowStatus {
    fn new(flow: &Flow) -> FlowStatus {
        FlowStatus {
            state: FlowState::Asleep,
            nodes: flow.nodes.iter().map(|n| NodeStatus { name: n.name.clone(), state: NodeState::Asleep, detail: None }).collect(),
            execution: None,
            failure: None,
            retry_at: None,
            removed: false,
            last_wake_ms: None,
        }
    }

    /// Whether a waiter can stop waiting: ready, failed or removed.
    pub fn is_settled(&self) -> bool {
        self.removed || matches!(self.state, FlowState::Awake | FlowState::Failed)
    }
}

/// What started a wake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// A request (proxy or callout).
    Request,
    /// An operator (`warm`).
    Manual,
    /// A new definition of an awake flow: what already runs is ready at once, new nodes start.
    Reload,
    /// A keep-warm window is about to open.
    Schedule,
}

impl Trigger {
    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Request => "request",
            Trigger::Manual => "manual",
            Trigger::Reload => "reload",
            Trigger::Schedule => "schedule",
        }
    }
}

/// The runtime of one flow. Cheap to share; the proxy holds one per route.
#[derive(Debug)]
pub struct FlowHandle {
    /// The validated configuration of the flow.
    pub spec: Arc<Flow>,
    /// Activity tracker (record on request start/finish and on upgraded-connection bytes).
    pub activity: Activity,
    pub(crate) status: watch::Sender<FlowStatus>,
    pub(crate) pinned: AtomicBool,
    pub(crate) disabled: AtomicBool,
    pub(crate) backoff: Mutex<Backoff>,
    /// Serializes executions and drains of this flow.
    pub(crate) lifecycle: tokio::sync::Mutex<()>,
    /// Wakes the drainer when pin state or activity rules change.
    pub(crate) settings_changed: Notify,
    /// Set by a manual drain: the running wake stops (and rolls back) instead of finishing.
    pub(crate) cancel_wake: AtomicBool,
    /// Tells a running wake to look at `cancel_wake`.
    pub(crate) cancel_signal: Notify,
    /// While a keep-warm window is open: when it closes (Unix milliseconds); 0 outside windows.
    pub(crate) keep_warm_until: AtomicI64,
}

impl FlowHandle {
    /// A handle not registered with any controller (route tables in tests and benchmarks).
    pub fn detached(spec: Arc<Flow>) -> FlowHandle {
        FlowHandle::new(spec)
    }

    pub(crate) fn new(spec: Arc<Flow>) -> FlowHandle {
        FlowHandle {
            status: watch::channel(FlowStatus::new(&spec)).0,
            activity: Activity::new(),
            pinned: AtomicBool::new(spec.pinned),
            disabled: AtomicBool::new(spec.disabled),
            backoff: Mutex::new(Backoff::default()),
            lifecycle: tokio::sync::Mutex::new(()),
            settings_changed: Notify::new(),
            cancel_wake: AtomicBool::new(false),
            cancel_signal: Notify::new(),
            keep_warm_until: AtomicI64::new(0),
            spec,
        }
    }

    /// Takes over what a previous handle of the same flow knew: activity, run-time pin/disable
    /// overrides, and its state when the nodes are unchanged (so an awake flow stays awake).
    pub(crate) fn carry_over(&self, previous: &FlowHandle) {
        self.activity.carry_over(&previous.activity);
        if previous.is_pinned() != previous.spec.pinned {
            self.pinned.store(previous.is_pinned(), Ordering::Relaxed);
        }
        if previous.is_disabled() != previous.spec.disabled {
            self.disabled.store(previous.is_disabled(), Ordering::Relaxed);
        }
        let status = previous.status();
        if previous.spec.nodes == self.spec.nodes && matches!(status.state, FlowState::Awake | FlowState::Asleep) {
            self.status.send_modify(|s| {
                s.state = status.state;
                s.nodes = status.nodes.clone();
            });
        }
    }

    /// Sets the state directly, bypassing the controller (benchmarks of the release path only).
    #[doc(hidden)]
    pub fn set_state_for_bench(&self, state: FlowState) {
        self.status.send_modify(|s| s.state = state);
    }

    /// The flow's name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Subscribes to the flow's status. The receiver sees the current value at once.
    pub fn subscribe(&self) -> watch::Receiver<FlowStatus> {
        self.status.subscribe()
    }

    /// The current status.
    pub fn status(&self) -> FlowStatus {
        self.status.borrow().clone()
    }

    /// The current state (cheap: no clone of the node list).
    pub fn state(&self) -> FlowState {
        self.status.borrow().state
    }

    /// Whether the flow is pinned (never drained).
    pub fn is_pinned(&self) -> bool {
        self.pinned.load(Ordering::Relaxed)
    }

    /// While a keep-warm window holds the flow awake: when it closes (Unix milliseconds).
    pub fn keep_warm_until(&self) -> Option<i64> {
        Some(self.keep_warm_until.load(Ordering::Relaxed)).filter(|ms| *ms != 0)
    }

    /// Whether the flow is disabled (requests refused, nothing woken).
    pub fn is_disabled(&self) -> bool {
        self.disabled.load(Ordering::Relaxed)
    }

    pub(crate) fn backoff(&self) -> parking_lot::MutexGuard<'_, Backoff> {
        self.backoff.lock()
    }

    pub(crate) fn set_node(&self, index: usize, state: NodeState, detail: Option<String>) {
        self.status.send_modify(|s| {
            if let Some(node) = s.nodes.get_mut(index) {
                node.state = state;
                node.detail = detail;
            }
        });
    }

    /// Moves to `to` when the current state is one of `from`; returns whether it did.
    pub(crate) fn transition(&self, from: &[FlowState], to: FlowState) -> bool {
        self.status.send_if_modified(|s| {
            if from.contains(&s.state) {
                s.state = to;
                true
            } else {
                false
            }
        })
    }
}
