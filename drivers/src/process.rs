//! The `process` driver: runs a node's command as a local process in its own process group.
//!
//! Guarantees:
//! - the command runs in a new process group, so a stop reaches everything it forked;
//! - stdout and stderr go to a bounded in-memory log whose tail explains failures;
//! - stop is SIGTERM to the group, then SIGKILL after the grace period;
//! - no process outlives LeanNodes: the group is killed when the driver is dropped or its runtime shuts
//!   down, and each child carries a parent-death signal (SIGKILL) for the case where LeanNodes itself is
//!   killed. The parent-death signal reaches the direct child only; programs that daemonize away from
//!   their process group are out of reach, as with any supervisor that is not PID 1.

use std::collections::HashMap;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::FutureExt;
use futures::future::BoxFuture;
use futures::stream::{self, BoxStream, StreamExt};
use leannodes_config::{Workload, WorkloadId, WorkloadSpec};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use parking_lot::Mutex;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::watch;

use crate::log::LogRing;
use crate::{Driver, DriverError, Failure, FailureKind, Readiness, probe};

/// Tunables of the process driver.
#[derive(Debug, Clone)]
pub struct ProcessOptions {
    /// Time between SIGTERM and SIGKILL when stopping.
    pub stop_grace: Duration,
    /// Output lines kept per process.
    pub log_lines: usize,
    /// Output lines attached to a failure.
    pub failure_lines: usize,
}

impl Default for ProcessOptions {
    fn default() -> Self {
        ProcessOptions { stop_grace: Duration::from_secs(10), log_lines: 500, failure_lines: 20 }
    }
}

/// Runs `kind = "process"` workloads.
#[derive(Debug, Default)]
pub struct ProcessDriver {
    options: ProcessOptions,
    running: Mutex<HashMap<WorkloadId, Arc<Running>>>,
}

/// One started process.
#[derive(Debug)]
struct Running {
    pid: i32,
    log: LogRing,
    /// `Some` once the process has exited.
    exited: watch::Receiver<Option<Failure>>,
}

impl Running {
    fn has_exited(&self) -> bool {
        self.exited.borrow().is_some()
    }
}

/// Kills a process group when dropped: at the end of the task that waits for the group leader, whether
/// the leader exited or the task was dropped with its runtime.
struct GroupGuard(i32);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        let _ = killpg(Pid::from_raw(self.0), Signal::SIGKILL);
    }
}

impl ProcessDriver {
    /// A driver with these options.
    pub fn new(options: ProcessOptions) -> ProcessDriver {
        ProcessDriver { options, running: Mutex::new(HashMap::new()) }
    }

    fn entry(&self, id: &WorkloadId) -> Option<Arc<Running>> {
        self.running.lock().get(id).cloned()
    }

    /// Process id of a running workload (tests and status).
    pub fn pid(&self, workload: &Workload) -> Option<u32> {
        self.entry(&workload.id).filter(|r| !r.has_exited()).and_then(|r| u32::try_from(r.pid).ok())
    }

    /// The last `n` output lines of a workload, oldest first.
    pub fn log_tail(&self, workload: &Workload, n: usize) -> Vec<String> {
        self.entry(&workload.id).map(|r| r.log.tail(n)).unwrap_or_default()
    }

    fn spawn(&self, workload: &Workload) -> Result<Arc<Running>, DriverError> {
        let WorkloadSpec::Process(spec) = &workload.spec else {
            return Err(DriverError::WrongKind { workload: workload.id.to_string(), kind: workload.kind().as_str(), driver: "process" });
        };
        let (program, args) = spec.command.split_first().ok_or_else(|| DriverError::Spawn {
            workload: workload.id.to_string(),
            program: String::new(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty command"),
        })?;
        let mut command = tokio::process::Command::new(program);
        command
            .args(args)
            .envs(&spec.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if let Some(cwd) = &spec.cwd {
            command.current_dir(cwd);
        }
        set_parent_death_signal(&mut command);
        let mut child =
            command.spawn().map_err(|source| DriverError::Spawn { workload: workload.id.to_string(), program: program.clone(), source })?;
        let pid = child.id().and_then(|p| i32::try_from(p).ok()).unwrap_or_default();
        let log = LogRing::new(self.options.log_lines);
        if let Some(out) = child.stdout.take() {
            tokio::spawn(collect_lines(out, "stdout", log.clone(), workload.id.clone()));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(collect_lines(err, "stderr", log.clone(), workload.id.clone()));
        }
        let (tx, rx) = watch::channel(None);
        let failure_lines = self.options.failure_lines;
        let waiter_log = log.clone();
        let id = workload.id.clone();
        tokio::spawn(async move {
            let _group = GroupGuard(pid);
            let status = child.wait().await;
            // Give the output readers a moment to drain the pipes so the tail explains the exit.
            tokio::time::sleep(Duration::from_millis(20)).await;
            let mut failure = exit_failure(status);
            failure.log_tail = waiter_log.tail(failure_lines);
            tracing::info!(workload = %id, pid, reason = %failure.message, "process exited");
            tx.send_replace(Some(failure));
        });
        tracing::info!(workload = %workload.id, pid, command = %spec.command.join(" "), "process started");
        Ok(Arc::new(Running { pid, log, exited: rx }))
    }
}

/// Makes the kernel send SIGKILL to the child when LeanNodes dies, even by SIGKILL.
#[allow(unsafe_code)]
fn set_parent_death_signal(command: &mut tokio::process::Command) {
    // SAFETY: `pre_exec` runs in the forked child before exec, where only async-signal-safe calls are
    // allowed; prctl(PR_SET_PDEATHSIG) is a single raw syscall that allocates nothing and takes no locks.
    unsafe {
        command.pre_exec(|| nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from));
    }
}

fn exit_failure(status: std::io::Result<ExitStatus>) -> Failure {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(s) => match (s.code(), s.signal()) {
            (Some(code), _) => Failure::new(FailureKind::Exited, format!("exited with status {code}")),
            (None, Some(sig)) => {
                let name = Signal::try_from(sig).map_or_else(|_| sig.to_string(), |s| s.as_str().to_string());
                Failure::new(FailureKind::Signaled, format!("killed by signal {name}"))
            }
            (None, None) => Failure::new(FailureKind::Exited, "exited"),
        },
        Err(e) => Failure::new(FailureKind::Exited, format!("lost track of the process: {e}")),
    }
}

async fn collect_lines(stream: impl AsyncRead + Unpin, name: &'static str, log: LogRing, id: WorkloadId) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::debug!(workload = %id, stream = name, "{line}");
        log.push(name, &line);
    }
}

fn signal_group(workload: &Workload, pid: i32, signal: Signal) -> Result<(), DriverError> {
    match killpg(Pid::from_raw(pid), signal) {
        Ok(()) | Err(nix::Error::ESRCH) => Ok(()),
        Err(source) => Err(DriverError::Signal { workload: workload.id.to_string(), pgid: pid, source }),
    }
}

#[async_trait]
impl Driver for ProcessDriver {
    async fn wake(&self, workload: &Arc<Workload>) -> Result<(), DriverError> {
        let mut running = self.running.lock();
        if running.get(&workload.id).is_some_and(|r| !r.has_exited()) {
            return Ok(());
        }
        let started = self.spawn(workload)?;
        running.insert(workload.id.clone(), started);
        Ok(())
    }

    fn readiness(&self, workload: &Arc<Workload>) -> BoxStream<'static, Readiness> {
        match self.entry(&workload.id) {
            Some(r) => probe::until_ready(workload.probe.clone(), Some(r.exited.clone())),
            None => stream::iter([Readiness::Failed(Failure::new(FailureKind::Exited, "not started"))]).boxed(),
        }
    }

    async fn drain(&self, workload: &Arc<Workload>) -> Result<(), DriverError> {
        let Some(r) = self.running.lock().remove(&workload.id) else {
            return Ok(());
        };
        let mut exited = r.exited.clone();
        if !r.has_exited() {
            signal_group(workload, r.pid, Signal::SIGTERM)?;
            let graceful = tokio::time::timeout(self.options.stop_grace, exited.wait_for(Option::is_some)).await.is_ok();
            if !graceful {
                tracing::warn!(workload = %workload.id, pid = r.pid, grace = ?self.options.stop_grace, "no exit after SIGTERM; sending SIGKILL");
            }
        }
        // Whatever is left of the group (children that ignored SIGTERM, or the leader) is killed now.
        signal_group(workload, r.pid, Signal::SIGKILL)?;
        let _ = tokio::time::timeout(Duration::from_secs(5), exited.wait_for(Option::is_some)).await;
        tracing::info!(workload = %workload.id, pid = r.pid, "process stopped");
        Ok(())
    }

    fn failure(&self, workload: &Workload) -> Option<Failure> {
        self.entry(&workload.id).and_then(|r| r.exited.borrow().clone())
    }

    fn is_running(&self, workload: &Workload) -> bool {
        self.entry(&workload.id).is_some_and(|r| !r.has_exited())
    }

    fn lost(&self, workload: &Arc<Workload>) -> BoxFuture<'static, Failure> {
        let Some(mut exited) = self.entry(&workload.id).map(|r| r.exited.clone()) else {
            return futures::future::pending().boxed();
        };
        async move {
            match exited.wait_for(Option::is_some).await {
                Ok(failure) => failure.clone().unwrap_or_else(|| Failure::new(FailureKind::Exited, "exited")),
                Err(_) => Failure::new(FailureKind::Exited, "lost track of the process"),
            }
        }
        .boxed()
    }
}

impl Drop for ProcessDriver {
    fn drop(&mut self) {
        let running = self.running.get_mut();
        for r in running.values() {
            let _ = killpg(Pid::from_raw(r.pid), Signal::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests;
