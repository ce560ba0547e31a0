use std::collections::BTreeMap;

use leannodes_config::{HostPort, Probe, ProcessSpec};

use super::*;

fn shell(name: &str, script: &str, probe: Option<Probe>) -> Arc<Workload> {
    Arc::new(Workload {
        id: WorkloadId::process(name),
        spec: WorkloadSpec::Process(ProcessSpec {
            command: vec!["sh".into(), "-c".into(), script.into()],
            env: BTreeMap::new(),
            cwd: None,
        }),
        port: None,
        probe,
    })
}

/// Running and not a zombie (orphans may stay zombies when PID 1 does not reap them).
fn alive(pid: i32) -> bool {
    nix::sys::signal::kill(Pid::from_raw(pid), None).is_ok() && !is_zombie(pid)
}

async fn last(driver: &ProcessDriver, w: &Arc<Workload>) -> Readiness {
    driver.readiness(w).collect::<Vec<_>>().await.pop().expect("a final event")
}

#[tokio::test]
async fn exit_before_ready_carries_code_and_log_lines() {
    let driver = ProcessDriver::default();
    let w = shell(
        "early-exit",
        "echo starting; echo 'config missing' >&2; exit 3",
        Some(Probe::Tcp(HostPort { host: "127.0.0.1".into(), port: 1 })),
    );
    driver.wake(&w).await.expect("spawn");
    let Readiness::Failed(failure) = last(&driver, &w).await else { panic!("should fail") };
    assert_eq!(failure.kind, FailureKind::Exited);
    assert_eq!(failure.message, "exited with status 3");
    assert!(failure.log_tail.iter().any(|l| l == "[stderr] config missing"), "{:?}", failure.log_tail);
    assert!(failure.log_tail.iter().any(|l| l == "[stdout] starting"), "{:?}", failure.log_tail);
    assert_eq!(driver.failure(&w), Some(failure));
    assert!(!driver.is_running(&w));
}

#[tokio::test]
async fn env_and_cwd_are_applied() {
    let dir = std::env::temp_dir();
    let driver = ProcessDriver::default();
    let never = Some(Probe::Tcp(HostPort { host: "127.0.0.1".into(), port: 1 }));
    let mut w = (*shell("env", "echo \"$GREETING $(pwd)\"; exit 0", never)).clone();
    if let WorkloadSpec::Process(spec) = &mut w.spec {
        spec.env.insert("GREETING".into(), "hello".into());
        spec.cwd = Some(dir.clone());
    }
    let w = Arc::new(w);
    driver.wake(&w).await.expect("spawn");
    let Readiness::Failed(failure) = last(&driver, &w).await else { panic!("exits") };
    let canonical = dir.canonicalize().expect("temp dir");
    assert!(failure.log_tail.contains(&format!("[stdout] hello {}", canonical.display())), "{:?}", failure.log_tail);
}

#[tokio::test]
async fn stop_sends_sigterm_then_sigkill_to_the_whole_group() {
    let driver = ProcessDriver::new(ProcessOptions { stop_grace: Duration::from_millis(300), ..ProcessOptions::default() });
    // The leader ignores SIGTERM and forks a grandchild; both must be gone after drain.
    let w = shell("stubborn", "trap '' TERM; sleep 300 & echo child $!; wait", None);
    driver.wake(&w).await.expect("spawn");
    assert_eq!(last(&driver, &w).await, Readiness::Ready);
    let leader = i32::try_from(driver.pid(&w).expect("running")).expect("pid");
    let child = loop {
        if let Some(line) = driver.log_tail(&w, 5).iter().find_map(|l| l.strip_prefix("[stdout] child ").map(str::to_string)) {
            break line.parse::<i32>().expect("pid");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(alive(leader) && alive(child));
    let started = tokio::time::Instant::now();
    driver.drain(&w).await.expect("drain");
    assert!(started.elapsed() >= Duration::from_millis(300), "waited out the grace period before SIGKILL");
    assert!(!alive(leader), "leader killed");
    for _ in 0..100 {
        if !alive(child) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!alive(child), "grandchild in the group killed");
    assert!(!driver.is_running(&w));
}

#[tokio::test]
async fn wake_is_idempotent_while_running() {
    let driver = ProcessDriver::default();
    let w = shell("sleeper", "exec sleep 300", None);
    driver.wake(&w).await.expect("spawn");
    let pid = driver.pid(&w);
    driver.wake(&w).await.expect("again");
    assert_eq!(driver.pid(&w), pid);
    driver.drain(&w).await.expect("drain");
    driver.drain(&w).await.expect("drain twice");
}

#[tokio::test]
async fn missing_program_is_a_spawn_error() {
    let driver = ProcessDriver::default();
    let mut w = (*shell("missing", "", None)).clone();
    if let WorkloadSpec::Process(spec) = &mut w.spec {
        spec.command = vec!["/nonexistent/leannodes-test-program".into()];
    }
    let err = driver.wake(&Arc::new(w)).await.expect_err("no such program");
    assert!(err.to_string().contains("/nonexistent/leannodes-test-program"), "{err}");
}

#[test]
fn dropping_the_runtime_kills_the_group() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let w = shell("orphan", "sleep 300 & exec sleep 300", None);
    let driver = Arc::new(ProcessDriver::default());
    let pid = runtime.block_on(async {
        driver.wake(&w).await.expect("spawn");
        i32::try_from(driver.pid(&w).expect("pid")).expect("pid")
    });
    assert!(alive(pid));
    drop(runtime);
    // Reap and check: the guard sent SIGKILL to the group when its waiting task was dropped.
    for _ in 0..200 {
        if !alive(pid) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!alive(pid), "process survived its runtime");
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.split_whitespace().nth(2) == Some("Z"))
}
