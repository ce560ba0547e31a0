//! Why a workload did not become ready.

use std::fmt;

/// A failure reason, with enough detail to show in a 503 body and the execution history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What happened.
    pub kind: FailureKind,
    /// One line for humans.
    pub message: String,
    /// The last lines the workload logged, oldest first (process workloads).
    pub log_tail: Vec<String>,
    /// The platform's own reason, when it has one (`ImagePullBackOff`, `Unschedulable`, …).
    pub reason: Option<String>,
}

/// Categories of failure, each with a stable label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// The process exited before it was ready (or while it was serving).
    Exited,
    /// The process was killed by a signal.
    Signaled,
    /// The process could not be started.
    Spawn,
    /// Not ready within the node's timeout.
    Timeout,
    /// A dependency failed, so this node was never started.
    DependencyFailed,
    /// A platform-specific reason (e.g. ImagePullBackOff).
    Platform,
}

impl FailureKind {
    /// Stable, low-cardinality label (metrics, JSON).
    pub fn label(self) -> &'static str {
        match self {
            FailureKind::Exited => "exited",
            FailureKind::Signaled => "signaled",
            FailureKind::Spawn => "spawn_failed",
            FailureKind::Timeout => "timeout",
            FailureKind::DependencyFailed => "dependency_failed",
            FailureKind::Platform => "platform",
        }
    }
}

impl Failure {
    /// A failure without log lines.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Failure {
        Failure { kind, message: message.into(), log_tail: Vec::new(), reason: None }
    }

    /// The same failure with the platform's own reason.
    pub fn with_reason(mut self, reason: impl Into<String>) -> Failure {
        self.reason = Some(reason.into());
        self
    }

    /// A short, bounded label: the platform's reason when there is one, else the kind's label.
    pub fn label(&self) -> &str {
        self.reason.as_deref().unwrap_or(self.kind.label())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(last) = self.log_tail.last() {
            write!(f, " (last log line: {last})")?;
        }
        Ok(())
    }
}
