//! Workload drivers for LeanNodes: the one [`Driver`] trait every platform implements (wake, drain,
//! readiness as a stream of events, failure reasons), the `process` driver that runs local commands in
//! their own process groups, the `external` driver that only probes, and the readiness probes they share.
//!
//! Drivers know nothing about flows: they act on one [`Workload`] at a time. Ordering, single flight,
//! timeouts and rollback belong to the control plane.
//!
//! Two more platform edges live here because they talk to the cluster: [`gateways`] (the native
//! artifact each gateway needs for callout mode, one file per gateway, and detection of the gateways a
//! cluster runs) and [`flow_resources`] (the `Flow` custom resources, watched and given a status).

mod external;
mod failure;
pub mod flow_resources;
pub mod gateways;
pub mod kubernetes;
mod log;
pub mod probe;
mod process;

use std::sync::Arc;

use async_trait::async_trait;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use leannodes_config::{NodeKind, Workload};

pub use external::ExternalDriver;
pub use failure::{Failure, FailureKind};
pub use kubernetes::KubernetesDriver;
pub use process::{ProcessDriver, ProcessOptions};

/// The addresses that serve a workload right now, kept current by its driver (Kubernetes endpoints).
/// Cloning shares the same set; reading is one atomic load.
#[derive(Debug, Clone, Default)]
pub struct EndpointSet(Arc<arc_swap::ArcSwap<Vec<std::net::SocketAddr>>>);

impl EndpointSet {
    /// The current addresses.
    pub fn load(&self) -> Arc<Vec<std::net::SocketAddr>> {
        self.0.load_full()
    }

    /// Replaces the addresses (drivers).
    pub fn store(&self, addrs: Vec<std::net::SocketAddr>) {
        if **self.0.load() != addrs {
            self.0.store(Arc::new(addrs));
        }
    }
}

/// A readiness observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Not ready yet; the detail says what the last check saw (e.g. "connection refused").
    Pending(String),
    /// The platform placed the workload (Kubernetes: every pod is scheduled onto a node); not ready yet.
    /// At most once, before `Ready`; platforms that place nothing never say it.
    Scheduled,
    /// Ready to serve.
    Ready,
    /// Will not become ready without intervention.
    Failed(Failure),
}

/// Errors of a driver operation.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The command could not be started.
    #[error("cannot start `{program}` for {workload}: {source}")]
    Spawn {
        /// Workload identity.
        workload: String,
        /// The program that was to be run.
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Sending a signal failed.
    #[error("cannot signal process group {pgid} of {workload}: {source}")]
    Signal {
        /// Workload identity.
        workload: String,
        /// The process group.
        pgid: i32,
        /// Why.
        #[source]
        source: nix::Error,
    },
    /// The workload is of a kind this driver does not run.
    #[error("{workload} is a {kind} workload, which the {driver} driver does not run")]
    WrongKind {
        /// Workload identity.
        workload: String,
        /// Its kind.
        kind: &'static str,
        /// The driver asked.
        driver: &'static str,
    },
    /// The platform refused or failed an operation.
    #[error("{workload}: {message}")]
    Platform {
        /// Workload identity.
        workload: String,
        /// What the platform said.
        message: String,
    },
    /// No driver is configured for this kind.
    #[error("no driver is configured for {kind} workloads (set [server] driver)")]
    NoDriver {
        /// The kind.
        kind: &'static str,
    },
}

impl DriverError {
    /// A short, bounded label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            DriverError::Spawn { .. } => "spawn",
            DriverError::Signal { .. } => "signal",
            DriverError::WrongKind { .. } => "wrong_kind",
            DriverError::Platform { .. } => "platform",
            DriverError::NoDriver { .. } => "no_driver",
        }
    }
}

/// One platform's way of running workloads.
#[async_trait]
pub trait Driver: Send + Sync + 'static {
    /// Starts the workload. Idempotent: a workload that is already running is left alone.
    async fn wake(&self, workload: &Arc<Workload>) -> Result<(), DriverError>;

    /// Observes readiness until the workload is ready or has failed. The stream yields any number of
    /// [`Readiness::Pending`] and ends with one [`Readiness::Ready`] or [`Readiness::Failed`]. It never
    /// ends by itself otherwise: the caller applies the timeout.
    fn readiness(&self, workload: &Arc<Workload>) -> BoxStream<'static, Readiness>;

    /// Stops the workload and returns once it is gone. Idempotent.
    async fn drain(&self, workload: &Arc<Workload>) -> Result<(), DriverError>;

    /// Why the workload failed, if it has (e.g. the process exited).
    fn failure(&self, workload: &Workload) -> Option<Failure>;

    /// Whether the workload is running (started and not stopped or exited).
    fn is_running(&self, workload: &Workload) -> bool;

    /// Resolves, with the reason, when the running workload stops on its own (a process exits or
    /// crashes). Also resolves after an intended stop, so callers check their own state. Never resolves
    /// for a workload that is not running or whose loss cannot be observed.
    fn lost(&self, workload: &Arc<Workload>) -> BoxFuture<'static, Failure>;

    /// For workloads the proxy reaches at changing addresses (Kubernetes endpoints), the live set of
    /// those addresses. `None` when the address is fixed by the configuration.
    fn endpoints(&self, _workload: &Arc<Workload>) -> Option<EndpointSet> {
        None
    }

    /// Conditions an operator should know about that do not stop a wake (e.g. an autoscaler that also
    /// scales the workload). Empty by default.
    async fn warnings(&self, _workload: &Arc<Workload>) -> Vec<String> {
        Vec::new()
    }

    /// Why the workload a node names cannot be used, when the platform can tell now (e.g. the
    /// Deployment does not exist). `None` when it exists, or when that cannot be known (the platform
    /// does not answer): checked before a flow is activated.
    async fn missing(&self, _workload: &Arc<Workload>) -> Option<String> {
        None
    }

    /// The CPU (cores) the workload requests when awake, when the platform says (Kubernetes: the pod
    /// template's container requests × the replicas a wake restores). `None` when unknown.
    fn cpu_request(&self, _workload: &Workload) -> Option<f64> {
        None
    }

    /// Whether the platform answers now (`Err` says why not). Local drivers always do.
    async fn health(&self) -> Result<(), String> {
        Ok(())
    }
}

/// A CPU quantity as Kubernetes writes it (`"250m"`, `"1"`, `"1.5"`) in cores.
pub fn parse_cpu(quantity: &str) -> Option<f64> {
    let q = quantity.trim();
    let cores = match q.strip_suffix('m') {
        Some(milli) => milli.parse::<f64>().ok()? / 1000.0,
        None => q.parse::<f64>().ok()?,
    };
    (cores.is_finite() && cores >= 0.0).then_some(cores)
}

/// The drivers of one LeanNodes instance, chosen by node kind.
#[derive(Clone)]
pub struct Drivers {
    process: Arc<dyn Driver>,
    external: Arc<dyn Driver>,
    kubernetes: Option<Arc<dyn Driver>>,
}

impl std::fmt::Debug for Drivers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Drivers").field("kubernetes", &self.kubernetes.is_some()).finish_non_exhaustive()
    }
}

impl Drivers {
    /// Local drivers only: processes and external probes.
    pub fn local(process: ProcessDriver) -> Drivers {
        Drivers { process: Arc::new(process), external: Arc::new(ExternalDriver), kubernetes: None }
    }

    /// Builds from explicit drivers (tests and platforms).
    pub fn new(process: Arc<dyn Driver>, external: Arc<dyn Driver>, kubernetes: Option<Arc<dyn Driver>>) -> Drivers {
        Drivers { process, external, kubernetes }
    }

    /// The platform drivers to watch the health of, by name (`kubernetes` when configured).
    pub fn platforms(&self) -> Vec<(&'static str, Arc<dyn Driver>)> {
        self.kubernetes.iter().map(|k| ("kubernetes", k.clone())).collect()
    }

    /// The driver for a kind.
    pub fn for_kind(&self, kind: NodeKind) -> Result<&Arc<dyn Driver>, DriverError> {
        match kind {
            NodeKind::Process => Ok(&self.process),
            NodeKind::External => Ok(&self.external),
            NodeKind::Deployment | NodeKind::Statefulset | NodeKind::Job => {
                self.kubernetes.as_ref().ok_or(DriverError::NoDriver { kind: kind.as_str() })
            }
        }
    }
}
