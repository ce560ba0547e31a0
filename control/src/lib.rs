//! LeanNodes orchestration: the flow registry, per-flow state published on `tokio::sync::watch`, the
//! single-flight wake coordinator, the DAG executor, workload reference counting, the lock-free activity
//! tracker, the idle drainer, the event bus of execution events, and the reload actor through which every
//! configuration change is applied.
//!
//! This crate has no sockets and no pingora: the proxy reads [`FlowStatus`] from a watch channel and calls
//! [`Controller::wake`]; drivers and the store sit below it behind their traits.

mod activity;
mod backoff;
mod clock;
mod controller;
mod coordination;
mod drain;
mod events;
mod execution;
mod explain;
mod flow;
mod health;
pub mod metrics;
mod notice;
mod reload;
pub mod savings;
mod schedule;
pub mod trace;
mod workload;

pub use activity::{Activity, Connection, OpenNow, SeenRequest};
pub use backoff::Backoff;
pub use clock::WallClock;
pub use controller::{Controller, ControllerOptions, FlowView, NodeView, Reload, WakeError};
pub use events::{EventBus, ExecutionEvent};
pub use explain::{Explanation, Reason, ReasonKind};
pub use flow::{FlowFailure, FlowHandle, FlowState, FlowStatus, NodeState, NodeStatus, Trigger};
pub use leannodes_drivers::EndpointSet;
pub use metrics::TrafficView;
pub use notice::{Notice, NoticeBus, NoticeKind, Severity};
pub use reload::{ActivateError, ReloadCause, ReloadStatus, Reloader, RouteInstaller, Sources};
pub use savings::{FlowSavings, HISTORY as SAVINGS_HISTORY, SavingsReport};

/// Current wall-clock time in Unix milliseconds (for records and events; never for timing): the store's
/// clock, so that a test's clock skew (`leannodes_store::CLOCK_SKEW_VARIABLE`) moves everything this
/// replica writes alike.
pub(crate) fn unix_ms() -> i64 {
    leannodes_store::now_ms()
}
