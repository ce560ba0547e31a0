//! Test harness for LeanNodes end-to-end tests: ephemeral ports, demo-backend process nodes, start/stop
//! logs, process liveness, and `assert_eventually!` with a patience that slow machines can raise through
//! `LEANNODES_TEST_PATIENCE_MS`.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::time::Duration;

/// How long `assert_eventually!` waits (default 10 s; `LEANNODES_TEST_PATIENCE_MS` overrides).
pub fn patience() -> Duration {
    std::env::var("LEANNODES_TEST_PATIENCE_MS").ok().and_then(|v| v.parse().ok()).map_or(Duration::from_secs(10), Duration::from_millis)
}

/// Retries a condition every 10 ms until it holds or the patience runs out, then panics with the message.
#[macro_export]
macro_rules! assert_eventually {
    ($cond:expr, $($msg:tt)+) => {{
        let deadline = std::time::Instant::now() + $crate::patience();
        loop {
            if $cond {
                break;
            }
            if std::time::Instant::now() > deadline {
                panic!("not true within {:?}: {}", $crate::patience(), format!($($msg)+));
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }};
}

/// Binds `127.0.0.1:0` and returns the listener with its address (no port race for in-process servers).
pub fn bind_ephemeral() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    let addr = listener.local_addr().expect("local address");
    (listener, addr)
}

/// A port that was free a moment ago, for child processes that must bind it themselves.
pub fn free_port() -> u16 {
    bind_ephemeral().1.port()
}

/// One line of a start or stop log: `UNIX_MILLIS NAME PID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Unix milliseconds.
    pub millis: u64,
    /// Backend name.
    pub name: String,
    /// Process id.
    pub pid: i32,
}

/// Reads a start/stop log written by `leannodes demo-backend` (missing file = no lines).
pub fn read_log(path: &Path) -> Vec<LogLine> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            Some(LogLine { millis: parts.next()?.parse().ok()?, name: parts.next()?.to_string(), pid: parts.next()?.parse().ok()? })
        })
        .collect()
}

/// Lines of `name` in a log.
pub fn lines_of<'a>(log: &'a [LogLine], name: &str) -> Vec<&'a LogLine> {
    log.iter().filter(|l| l.name == name).collect()
}

/// Whether a process is alive (and not a zombie).
pub fn alive(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Field 3 is the state; the command name in field 2 may contain spaces but is parenthesised.
    match stat.rsplit_once(')') {
        Some((_, rest)) => !matches!(rest.split_whitespace().next(), Some("Z" | "X") | None),
        None => false,
    }
}

/// A demo-backend process node, rendered as a `[[flow.node]]` table.
#[derive(Debug, Clone)]
pub struct DemoNode {
    /// Node name (also the backend's `--name`).
    pub name: String,
    /// Port it listens on.
    pub port: u16,
    /// `after` edges.
    pub after: Vec<String>,
    /// Extra demo-backend arguments.
    pub extra_args: Vec<String>,
    /// Wrap the command in `sh -c "trap '' TERM; exec …"` so it ignores SIGTERM (slow stops).
    pub ignore_sigterm: bool,
    /// Node `timeout`.
    pub timeout: Option<String>,
}

impl DemoNode {
    /// A node on a fresh port.
    pub fn new(name: &str) -> DemoNode {
        DemoNode { name: name.into(), port: free_port(), after: vec![], extra_args: vec![], ignore_sigterm: false, timeout: None }
    }

    /// Adds `after` edges.
    pub fn after(mut self, deps: &[&str]) -> DemoNode {
        self.after = deps.iter().map(|d| d.to_string()).collect();
        self
    }

    /// Adds demo-backend arguments.
    pub fn args(mut self, args: &[&str]) -> DemoNode {
        self.extra_args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// Makes the node ignore SIGTERM.
    pub fn ignoring_sigterm(mut self) -> DemoNode {
        self.ignore_sigterm = true;
        self
    }

    /// Sets the node timeout.
    pub fn timeout(mut self, t: &str) -> DemoNode {
        self.timeout = Some(t.into());
        self
    }

    /// The `[[flow.node]]` table. `logs` is the folder holding `start.log` and `stop.log`.
    pub fn toml(&self, bin: &str, logs: &Path) -> String {
        let mut argv: Vec<String> = vec![
            bin.into(),
            "demo-backend".into(),
            "--port".into(),
            self.port.to_string(),
            "--name".into(),
            self.name.clone(),
            "--start-log".into(),
            logs.join("start.log").display().to_string(),
        ];
        if !self.ignore_sigterm {
            argv.extend(["--stop-log".into(), logs.join("stop.log").display().to_string()]);
        }
        argv.extend(self.extra_args.iter().cloned());
        let command = if self.ignore_sigterm {
            let quoted: Vec<String> = argv.iter().map(|a| format!("'{a}'")).collect();
            vec!["sh".to_string(), "-c".to_string(), format!("trap '' TERM; exec {}", quoted.join(" "))]
        } else {
            argv
        };
        let mut out = format!(
            "\n  [[flow.node]]\n  name = \"{}\"\n  kind = \"process\"\n  command = {}\n  port = {}\n",
            self.name,
            toml_list(&command),
            self.port
        );
        if !self.after.is_empty() {
            out.push_str(&format!("  after = {}\n", toml_list(&self.after)));
        }
        if let Some(t) = &self.timeout {
            out.push_str(&format!("  timeout = \"{t}\"\n"));
        }
        out
    }
}

/// A TOML array of strings.
pub fn toml_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| serde_json::to_string(i).unwrap_or_default()).collect();
    format!("[{}]", quoted.join(", "))
}

/// A temporary folder for one test's logs, config and store.
pub fn workdir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("leannodes-test-").tempdir().expect("temp dir")
}
