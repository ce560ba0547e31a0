//! The event bus of execution events, for live progress (SSE, warm-up page, dashboard).

use serde::Serialize;
use tokio::sync::broadcast;

/// Something that happened during a wake execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ExecutionEvent {
    /// An execution began.
    ExecutionStarted {
        /// Execution id.
        execution: String,
        /// Flow name.
        flow: String,
        /// What started it.
        trigger: String,
        /// The flow's nodes in start order.
        nodes: Vec<String>,
    },
    /// A node's dependencies were ready and it was asked to wake.
    NodeStarted {
        /// Execution id.
        execution: String,
        /// Flow name.
        flow: String,
        /// Node name.
        node: String,
    },
    /// A node became ready.
    NodeReady {
        /// Execution id.
        execution: String,
        /// Flow name.
        flow: String,
        /// Node name.
        node: String,
        /// Time from start to ready.
        elapsed_ms: u64,
        /// Of that, the time until the platform took the request (a process spawned, a workload
        /// scaled up); absent when another replica owned the wake.
        #[serde(skip_serializing_if = "Option::is_none")]
        start_ms: Option<u64>,
        /// Of that, the time until the platform placed it (Kubernetes: every pod scheduled onto a node);
        /// absent for platforms that place nothing and when another replica owned the wake.
        #[serde(skip_serializing_if = "Option::is_none")]
        scheduled_ms: Option<u64>,
    },
    /// A node failed.
    NodeFailed {
        /// Execution id.
        execution: String,
        /// Flow name.
        flow: String,
        /// Node name.
        node: String,
        /// Short, bounded reason (`exited`, `timeout`, `ImagePullBackOff`, …).
        label: String,
        /// Why, in words.
        reason: String,
    },
    /// An execution ended.
    ExecutionFinished {
        /// Execution id.
        execution: String,
        /// Flow name.
        flow: String,
        /// `succeeded`, `failed` or `cancelled`.
        outcome: String,
        /// Total time.
        elapsed_ms: u64,
        /// Why it failed, when it did.
        error: Option<String>,
    },
}

impl ExecutionEvent {
    /// The flow the event is about.
    pub fn flow(&self) -> &str {
        match self {
            ExecutionEvent::ExecutionStarted { flow, .. }
            | ExecutionEvent::NodeStarted { flow, .. }
            | ExecutionEvent::NodeReady { flow, .. }
            | ExecutionEvent::NodeFailed { flow, .. }
            | ExecutionEvent::ExecutionFinished { flow, .. } => flow,
        }
    }
}

/// Broadcasts execution events to any number of subscribers; slow subscribers lose the oldest events.
#[derive(Debug, Clone)]
pub struct EventBus {
    sender: broadcast::Sender<ExecutionEvent>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus { sender: broadcast::channel(1024).0 }
    }
}

impl EventBus {
    /// Publishes an event (dropped when nobody listens).
    pub fn publish(&self, event: ExecutionEvent) {
        let _ = self.sender.send(event);
    }

    /// A new subscription, starting with the next event.
    pub fn subscribe(&self) -> broadcast::Receiver<ExecutionEvent> {
        self.sender.subscribe()
    }
}
