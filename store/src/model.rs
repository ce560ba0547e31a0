//! Records the store keeps. Timestamps are Unix milliseconds (wall clock).

use serde::{Deserialize, Serialize};

/// Runtime state of one flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowStateRecord {
    /// Flow name.
    pub flow: String,
    /// Last known state (`asleep`, `waking`, `awake`, `draining`, `failed`).
    pub state: String,
    /// Pin override set at run time (`None`: as configured).
    pub pinned: Option<bool>,
    /// Disable override set at run time (`None`: as configured).
    pub disabled: Option<bool>,
    /// When this record was written.
    pub updated_ms: i64,
}

/// One wake execution of a flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionRecord {
    /// Unique id (sortable by start time).
    pub id: String,
    /// Flow name.
    pub flow: String,
    /// What started it (`request`, `manual`).
    pub trigger: String,
    /// How it went.
    pub outcome: Outcome,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// Start time.
    pub started_ms: i64,
    /// End time, once finished.
    pub finished_ms: Option<i64>,
    /// One step per node, in the flow's topological order.
    pub steps: Vec<StepRecord>,
}

/// How an execution went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Still going.
    Running,
    /// Every node became ready.
    Succeeded,
    /// A node failed.
    Failed,
    /// Interrupted (shutdown, flow removed).
    Cancelled,
}

impl Outcome {
    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Running => "running",
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::Cancelled => "cancelled",
        }
    }

    /// Parses the stored word.
    pub fn parse(s: &str) -> Option<Outcome> {
        Some(match s {
            "running" => Outcome::Running,
            "succeeded" => Outcome::Succeeded,
            "failed" => Outcome::Failed,
            "cancelled" => Outcome::Cancelled,
            _ => return None,
        })
    }
}

/// One node within an execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Node name.
    pub node: String,
    /// Workload identity.
    pub workload: String,
    /// `pending`, `starting`, `ready`, `failed`, `skipped`.
    pub state: String,
    /// Failure reason, when failed.
    pub reason: Option<String>,
    /// When its dependencies were ready and the wake was requested.
    pub requested_ms: Option<i64>,
    /// When the driver accepted the wake.
    pub started_ms: Option<i64>,
    /// When it became ready.
    pub ready_ms: Option<i64>,
    /// When it failed.
    pub failed_ms: Option<i64>,
}

impl StepRecord {
    /// A step that has not started yet.
    pub fn pending(node: impl Into<String>, workload: impl Into<String>) -> StepRecord {
        StepRecord {
            node: node.into(),
            workload: workload.into(),
            state: "pending".into(),
            reason: None,
            requested_ms: None,
            started_ms: None,
            ready_ms: None,
            failed_ms: None,
        }
    }
}

/// A page of a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Items to skip.
    pub offset: u32,
    /// Most items to return.
    pub limit: u32,
}

impl Default for Page {
    fn default() -> Self {
        Page { offset: 0, limit: 50 }
    }
}
