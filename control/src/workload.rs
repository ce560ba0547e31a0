//! Shared workloads: one runtime per workload across all flows, with single-flight start/stop and the set
//! of flows that currently use it (the reference count).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use leannodes_config::{NodeKind, Workload};
use leannodes_drivers::{Driver, DriverError, Failure, FailureKind, Readiness};
use parking_lot::Mutex;

/// Result of waking a workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Woke {
    /// It was already running and ready; someone else owns its start.
    AlreadyRunning,
    /// This call started it.
    Started,
}

/// Runtime of one workload, shared by every flow that contains it.
pub(crate) struct WorkloadRuntime {
    pub(crate) workload: Arc<Workload>,
    driver: Arc<dyn Driver>,
    /// Serializes start and stop: concurrent wakes from several flows start it once.
    lock: tokio::sync::Mutex<()>,
    /// Flows currently holding the workload (waking or awake).
    users: Mutex<BTreeSet<String>>,
    /// The driver's last warnings about this workload.
    warnings: Mutex<Vec<String>>,
}

impl std::fmt::Debug for WorkloadRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkloadRuntime").field("workload", &self.workload.id).finish_non_exhaustive()
    }
}

impl WorkloadRuntime {
    pub(crate) fn new(workload: Arc<Workload>, driver: Arc<dyn Driver>) -> WorkloadRuntime {
        WorkloadRuntime {
            workload,
            driver,
            lock: tokio::sync::Mutex::new(()),
            users: Mutex::new(BTreeSet::new()),
            warnings: Mutex::new(Vec::new()),
        }
    }

    fn users(&self) -> parking_lot::MutexGuard<'_, BTreeSet<String>> {
        self.users.lock()
    }

    pub(crate) fn acquire(&self, flow: &str) {
        self.users().insert(flow.to_string());
    }

    pub(crate) fn release(&self, flow: &str) {
        self.users().remove(flow);
    }

    /// Flows other than `flow` that hold this workload.
    pub(crate) fn other_users(&self, flow: &str) -> Vec<String> {
        self.users().iter().filter(|u| *u != flow).cloned().collect()
    }

    /// The CPU (cores) the platform says the workload requests when awake.
    pub(crate) fn cpu_request(&self) -> Option<f64> {
        self.driver.cpu_request(&self.workload)
    }

    pub(crate) fn is_running(&self) -> bool {
        self.driver.is_running(&self.workload)
    }

    /// Asks the driver for warnings and keeps them.
    pub(crate) async fn refresh_warnings(&self) {
        let warnings = self.driver.warnings(&self.workload).await;
        *self.warnings.lock() = warnings;
    }

    /// The last warnings.
    pub(crate) fn warnings(&self) -> Vec<String> {
        self.warnings.lock().clone()
    }

    /// The live addresses of the workload, when its driver tracks them.
    pub(crate) fn endpoints(&self) -> Option<leannodes_drivers::EndpointSet> {
        self.driver.endpoints(&self.workload)
    }

    /// Resolves when the running workload stops on its own (see [`Driver::lost`]).
    pub(crate) fn lost(&self) -> futures::future::BoxFuture<'static, Failure> {
        self.driver.lost(&self.workload)
    }

    /// Wakes the workload and waits until it is ready. `progress` receives each pending detail.
    /// The caller applies the timeout (dropping this future releases the start lock).
    /// `started` is called once the platform has taken the request (a process spawned, a workload
    /// scaled up): the end of the wake's first stage.
    /// `scheduled` is called when the platform has placed it (Kubernetes: every pod scheduled).
    pub(crate) async fn wake(&self, progress: impl Fn(&str), started: impl FnOnce(), scheduled: impl Fn()) -> Result<Woke, Failure> {
        let _serial = self.lock.lock().await;
        // External nodes are never started by us: always re-probe. Others that run are ready only if they
        // were ready before (a running process that is still starting is probed again below).
        let was_running = self.workload.kind() != NodeKind::External && self.driver.is_running(&self.workload);
        self.driver.wake(&self.workload).await.map_err(|e| spawn_failure(&e))?;
        started();
        self.ready(progress, scheduled).await?;
        Ok(if was_running { Woke::AlreadyRunning } else { Woke::Started })
    }

    /// Waits until the workload is ready without asking the platform for anything (another replica
    /// owns the wake).
    pub(crate) async fn observe(&self, progress: impl Fn(&str)) -> Result<Woke, Failure> {
        self.ready(progress, || {}).await?;
        Ok(Woke::AlreadyRunning)
    }

    async fn ready(&self, progress: impl Fn(&str), scheduled: impl Fn()) -> Result<(), Failure> {
        let mut events = self.driver.readiness(&self.workload);
        while let Some(event) = events.next().await {
            match event {
                Readiness::Pending(detail) => progress(&detail),
                Readiness::Scheduled => scheduled(),
                Readiness::Ready => return Ok(()),
                Readiness::Failed(failure) => return Err(failure),
            }
        }
        Err(Failure::new(FailureKind::Platform, "readiness stream ended without an answer"))
    }

    /// Stops the workload and waits until it is gone.
    pub(crate) async fn stop(&self) -> Result<(), DriverError> {
        let _serial = self.lock.lock().await;
        self.driver.drain(&self.workload).await
    }

    /// The wake budget message when a node is not ready in time.
    pub(crate) fn timeout_failure(&self, timeout: Duration, last_detail: Option<&str>) -> Failure {
        let mut message = format!("not ready within {}", humantime::format_duration(timeout));
        if let Some(detail) = last_detail {
            message.push_str(&format!(" (last check: {detail})"));
        }
        Failure::new(FailureKind::Timeout, message)
    }
}

fn spawn_failure(error: &DriverError) -> Failure {
    Failure::new(FailureKind::Spawn, error.to_string())
}

/// Stands in for a driver that is not configured: every wake fails with the reason.
pub(crate) struct Unavailable(pub(crate) String);

#[async_trait::async_trait]
impl Driver for Unavailable {
    async fn wake(&self, _workload: &Arc<Workload>) -> Result<(), DriverError> {
        Ok(())
    }

    fn readiness(&self, _workload: &Arc<Workload>) -> futures::stream::BoxStream<'static, Readiness> {
        futures::stream::iter([Readiness::Failed(Failure::new(FailureKind::Platform, self.0.clone()))]).boxed()
    }

    async fn drain(&self, _workload: &Arc<Workload>) -> Result<(), DriverError> {
        Ok(())
    }

    fn failure(&self, _workload: &Workload) -> Option<Failure> {
        Some(Failure::new(FailureKind::Platform, self.0.clone()))
    }

    fn is_running(&self, _workload: &Workload) -> bool {
        false
    }

    fn lost(&self, _workload: &Arc<Workload>) -> futures::future::BoxFuture<'static, Failure> {
        futures::future::pending().boxed()
    }
}
