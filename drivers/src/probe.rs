//! Readiness probes (`tcp`, `http`, `exec`) and the loop that turns them into a readiness stream.

use std::sync::OnceLock;
use std::time::Duration;

use futures::stream::{self, BoxStream, StreamExt};
use leannodes_config::{HostPort, Probe};
use tokio::sync::watch;

use crate::{Failure, Readiness};

/// Longest a single probe attempt may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// Pauses between attempts: the first, then growing by half each time up to the last. TCP probes are
/// one cheap connect, so they run often (a ready port is seen within ~2 ms); HTTP and exec probes cost
/// more and back off further.
pub fn intervals(probe: &Probe) -> (Duration, Duration) {
    match probe {
        Probe::Tcp(_) => (Duration::from_millis(1), Duration::from_millis(2)),
        Probe::Http(_) => (Duration::from_millis(10), Duration::from_millis(100)),
        Probe::Exec(_) => (Duration::from_millis(50), Duration::from_millis(500)),
    }
}

/// Runs one probe attempt: `Ok` when ready, else what was seen.
pub async fn check(probe: &Probe) -> Result<(), String> {
    match tokio::time::timeout(ATTEMPT_TIMEOUT, attempt(probe)).await {
        Ok(result) => result,
        Err(_) => Err(format!("{probe}: no answer within {}", humantime::format_duration(ATTEMPT_TIMEOUT))),
    }
}

async fn attempt(probe: &Probe) -> Result<(), String> {
    match probe {
        Probe::Tcp(target) => tcp(target).await,
        Probe::Http(url) => http(url).await,
        Probe::Exec(command) => exec(command).await,
    }
}

async fn tcp(target: &HostPort) -> Result<(), String> {
    let result = match target.socket_addr() {
        Some(addr) => tokio::net::TcpStream::connect(addr).await,
        None => tokio::net::TcpStream::connect((target.host.as_str(), target.port)).await,
    };
    result.map(drop).map_err(|e| format!("tcp {target}: {e}"))
}

fn http_client() -> Result<&'static reqwest::Client, String> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(ATTEMPT_TIMEOUT)
                .user_agent(concat!("leannodes-probe/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| format!("cannot build the HTTP probe client: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

async fn http(url: &str) -> Result<(), String> {
    let response = http_client()?.get(url).send().await.map_err(|e| format!("http {url}: {}", error_chain(&e)))?;
    let status = response.status();
    if status.is_success() || status.is_redirection() { Ok(()) } else { Err(format!("http {url}: status {status}")) }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

async fn exec(command: &[String]) -> Result<(), String> {
    let Some((program, args)) = command.split_first() else { return Err("exec probe without a command".into()) };
    let output = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("exec {program}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().last().unwrap_or_default();
        Err(format!("exec {program}: {} {last}", output.status).trim_end().to_string())
    }
}

/// Probes until ready. `failed` reports a failure of the workload itself (e.g. its process exited); it is
/// checked before every attempt and watched while waiting, so an exit ends the stream at once.
/// Without a probe the workload is ready as soon as it has not failed.
pub fn until_ready(probe: Option<Probe>, failed: Option<watch::Receiver<Option<Failure>>>) -> BoxStream<'static, Readiness> {
    struct State {
        probe: Option<Probe>,
        failed: Option<watch::Receiver<Option<Failure>>>,
        interval: Duration,
        max_interval: Duration,
        last_detail: Option<String>,
        done: bool,
    }
    let (first, max_interval) = probe.as_ref().map_or((Duration::from_millis(10), Duration::from_millis(100)), intervals);
    let state = State { probe, failed, interval: first, max_interval, last_detail: None, done: false };
    stream::unfold(state, |mut s| async move {
        if s.done {
            return None;
        }
        loop {
            if let Some(failure) = s.failed.as_ref().and_then(|rx| rx.borrow().clone()) {
                s.done = true;
                return Some((Readiness::Failed(failure), s));
            }
            let result = match &s.probe {
                Some(probe) => check(probe).await,
                None => Ok(()),
            };
            // The workload may have died while the probe ran (a probe can succeed against a stale port).
            if let Some(failure) = s.failed.as_ref().and_then(|rx| rx.borrow().clone()) {
                s.done = true;
                return Some((Readiness::Failed(failure), s));
            }
            match result {
                Ok(()) => {
                    s.done = true;
                    return Some((Readiness::Ready, s));
                }
                Err(detail) => {
                    let fresh = s.last_detail.as_deref() != Some(detail.as_str());
                    let pause = s.interval;
                    s.interval = (s.interval * 3 / 2).min(s.max_interval);
                    wait_or_fail(&mut s.failed, pause).await;
                    if fresh {
                        s.last_detail = Some(detail.clone());
                        return Some((Readiness::Pending(detail), s));
                    }
                }
            }
        }
    })
    .boxed()
}

/// Sleeps for `pause`, waking early when the failure watch changes.
async fn wait_or_fail(failed: &mut Option<watch::Receiver<Option<Failure>>>, pause: Duration) {
    match failed {
        Some(rx) => {
            let _ = tokio::time::timeout(pause, rx.changed()).await;
        }
        None => tokio::time::sleep(pause).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FailureKind;

    #[tokio::test]
    async fn tcp_probe_sees_a_listener() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let probe = Probe::Tcp(HostPort { host: "127.0.0.1".into(), port });
        assert_eq!(check(&probe).await, Ok(()));
        drop(listener);
        let err = check(&probe).await.expect_err("closed port");
        assert!(err.contains("refused"), "{err}");
    }

    #[tokio::test]
    async fn exec_probe_uses_the_exit_status() {
        assert_eq!(check(&Probe::Exec(vec!["true".into()])).await, Ok(()));
        assert!(check(&Probe::Exec(vec!["false".into()])).await.is_err());
        assert!(check(&Probe::Exec(vec!["/nonexistent/probe".into()])).await.is_err());
    }

    #[tokio::test]
    async fn http_probe_accepts_2xx_and_3xx_only() {
        async fn serve(status: &'static str) -> String {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let url = format!("http://{}/health", listener.local_addr().expect("addr"));
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                while let Ok((mut socket, _)) = listener.accept().await {
                    let mut buf = [0u8; 1024];
                    let _ = socket.read(&mut buf).await;
                    let reply = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                    let _ = socket.write_all(reply.as_bytes()).await;
                }
            });
            url
        }
        assert_eq!(check(&Probe::Http(serve("200 OK").await)).await, Ok(()));
        assert_eq!(check(&Probe::Http(serve("302 Found").await)).await, Ok(()));
        let err = check(&Probe::Http(serve("503 Service Unavailable").await)).await.expect_err("503");
        assert!(err.contains("503"), "{err}");
    }

    #[tokio::test]
    async fn stream_reports_pending_then_ready() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let mut events = until_ready(Some(Probe::Tcp(HostPort { host: "127.0.0.1".into(), port: addr.port() })), None);
        assert!(matches!(events.next().await, Some(Readiness::Pending(_))));
        let _listener = tokio::net::TcpListener::bind(addr).await.expect("rebind");
        let rest: Vec<_> = events.collect().await;
        assert_eq!(rest.last(), Some(&Readiness::Ready));
    }

    #[tokio::test]
    async fn stream_ends_at_once_on_failure() {
        let (tx, rx) = watch::channel(None);
        let probe = Probe::Exec(vec!["false".into()]);
        let events = until_ready(Some(probe), Some(rx));
        let handle = tokio::spawn(events.collect::<Vec<_>>());
        tokio::time::sleep(Duration::from_millis(30)).await;
        tx.send_replace(Some(Failure::new(FailureKind::Exited, "exited with status 3")));
        let events = handle.await.expect("join");
        assert!(matches!(events.last(), Some(Readiness::Failed(f)) if f.kind == FailureKind::Exited), "{events:?}");
    }
}
