//! Test harness for LeanNodes end-to-end tests: ephemeral ports, demo-backend process nodes, start/stop
//! logs, process liveness, and `assert_eventually!` with a patience that slow machines can raise through
//! `LEANNODES_TEST_PATIENCE_MS`.

pub mod idp;
pub mod receiver;
pub mod schemas;
pub mod smtp;
pub mod stores;
pub mod tls;
pub mod toxic;

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
///
/// Ports come from below Linux's ephemeral range (32768+): a port the kernel just handed out by
/// `bind(0)` and released is soon reused as the source port of some outgoing connection, and the child
/// then fails to bind it. Each test process walks its own stretch of 20000–32767 (seeded by its pid) and
/// skips ports that do not bind.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_768;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(u32::MAX, (std::process::id().wrapping_mul(7_919)) % SPAN, Ordering::Relaxed, Ordering::Relaxed);
    for _ in 0..SPAN {
        let offset = NEXT.fetch_add(1, Ordering::Relaxed) % SPAN;
        let port = u16::try_from(LOW + offset).unwrap_or(20_000);
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
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

    /// The node as the API takes it (a `[[flow.node]]` table as JSON).
    pub fn json(&self, bin: &str, logs: &Path) -> serde_json::Value {
        let mut node = serde_json::json!({ "name": self.name, "kind": "process", "command": self.command(bin, logs), "port": self.port });
        if !self.after.is_empty() {
            node["after"] = serde_json::json!(self.after);
        }
        if let Some(t) = &self.timeout {
            node["timeout"] = serde_json::json!(t);
        }
        node
    }

    /// The `[[flow.node]]` table. `logs` is the folder holding `start.log` and `stop.log`.
    pub fn toml(&self, bin: &str, logs: &Path) -> String {
        let command = self.command(bin, logs);
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

    /// The node's command line.
    fn command(&self, bin: &str, logs: &Path) -> Vec<String> {
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
        if self.ignore_sigterm {
            let quoted: Vec<String> = argv.iter().map(|a| format!("'{a}'")).collect();
            vec!["sh".to_string(), "-c".to_string(), format!("trap '' TERM; exec {}", quoted.join(" "))]
        } else {
            argv
        }
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

/// The first administrator every [`Serve`] is started with (`LEANNODES_SUPER_ADMIN_*`).
pub const ADMIN_EMAIL: &str = "admin@leannodes.test";
/// Its password.
pub const ADMIN_PASSWORD: &str = "correct horse battery staple";

/// A running `leannodes serve` process with its own ports, folder and log.
#[derive(Debug)]
pub struct Serve {
    child: std::process::Child,
    /// Proxy listener.
    pub proxy: SocketAddr,
    /// Admin listener.
    pub admin: SocketAddr,
    /// The config file.
    pub config: std::path::PathBuf,
    log: std::path::PathBuf,
    header: String,
    token: std::sync::OnceLock<String>,
}

impl Serve {
    /// Writes `[server]` (fresh ports, SQLite in `dir`, 1 thread, short grace) plus `body` (flows) and starts
    /// `leannodes serve`; returns once the admin API answers. `server_extra` lines go into `[server]`.
    pub fn start(bin: &str, dir: &Path, server_extra: &str, body: &str) -> Serve {
        Serve::start_with_env(bin, dir, server_extra, body, &[])
    }

    /// Like [`Serve::start`], with extra environment variables (e.g. `KUBECONFIG`).
    pub fn start_with_env(bin: &str, dir: &Path, server_extra: &str, body: &str, env: &[(&str, &str)]) -> Serve {
        let proxy = SocketAddr::from(([127, 0, 0, 1], free_port()));
        // The extra settings may choose the admin listener (e.g. for an SSO redirect URL known up front).
        let chosen = server_extra
            .lines()
            .find_map(|l| l.trim().strip_prefix("admin_listen = \"").and_then(|rest| rest.strip_suffix('"')))
            .and_then(|addr| addr.parse::<SocketAddr>().ok());
        let admin = chosen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], free_port())));
        let admin_line = if chosen.is_some() { String::new() } else { format!("admin_listen = \"{admin}\"\n") };
        // A local SQLite store unless the extra settings name another.
        let store = if server_extra.contains("store =") { "" } else { "store = \"sqlite://state.db\"\n" };
        let header = format!("[server]\nlisten = [\"{proxy}\"]\n{admin_line}{store}threads = 1\nshutdown_grace = \"3s\"\n{server_extra}\n");
        let config = dir.join("leannodes.toml");
        std::fs::write(&config, format!("{header}{body}")).expect("write config");
        let log = dir.join("serve.log");
        let child = std::process::Command::new(bin)
            .args(["serve", "--config"])
            .arg(&config)
            .env("LEANNODES_LOG", "info")
            .env("LEANNODES_SUPER_ADMIN_EMAIL", ADMIN_EMAIL)
            .env("LEANNODES_SUPER_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start leannodes serve");
        let mut serve = Serve { child, proxy, admin, config, log, header, token: std::sync::OnceLock::new() };
        let deadline = std::time::Instant::now() + patience();
        loop {
            if let Ok(Some(status)) = serve.child.try_wait() {
                panic!("leannodes serve exited with {status}:\n{}", serve.log());
            }
            if http_get(admin, "/healthz").is_some_and(|(code, _)| code == 200) && std::net::TcpStream::connect(proxy).is_ok() {
                return serve;
            }
            assert!(std::time::Instant::now() < deadline, "leannodes serve did not come up:\n{}", serve.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `http://PROXY{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.proxy)
    }

    /// `http://ADMIN{path}`.
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin)
    }

    /// A personal access token of the first administrator (signs in and creates it on first use).
    pub fn token(&self) -> String {
        self.token.get_or_init(|| admin_token(self.admin, ADMIN_EMAIL, ADMIN_PASSWORD)).clone()
    }

    /// Drains `flow` now (`POST /api/v1/flows/{flow}/drain` as the first administrator) and checks that
    /// it is asleep, so a test starts from a drained flow.
    pub fn drain(&self, flow: &str) {
        let bearer = self.bearer();
        let answer = http_request(self.admin, "POST", &format!("/api/v1/flows/{flow}/drain"), &[("authorization", &bearer)], None)
            .unwrap_or_else(|| panic!("drain {flow}: no answer"))
            .json();
        assert_eq!(answer["state"], "asleep", "drain {flow}: {answer}");
    }

    /// `Authorization: Bearer …` of [`Serve::token`].
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.token())
    }

    /// Replaces the flows in the config file (the `[server]` table stays).
    pub fn rewrite(&self, body: &str) {
        let tmp = self.config.with_extension("tmp");
        std::fs::write(&tmp, format!("{}{body}", self.header)).expect("write config");
        std::fs::rename(&tmp, &self.config).expect("replace config");
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Process id.
    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).unwrap_or_default()
    }

    /// Sends a signal.
    pub fn signal(&self, signal: i32) {
        // kill(1) keeps this crate free of unsafe code.
        let _ = std::process::Command::new("kill").arg(format!("-{signal}")).arg(self.pid().to_string()).status();
    }

    /// Waits for the process to exit (up to the patience).
    pub fn wait(&mut self) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + patience();
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.signal(15);
            if self.wait().is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}

/// An HTTP answer of [`http_request`].
#[derive(Debug, Clone)]
pub struct HttpAnswer {
    /// Status code.
    pub status: u16,
    /// Headers (names in lower case).
    pub headers: Vec<(String, String)>,
    /// Body (chunked transfer decoded).
    pub body: String,
}

impl HttpAnswer {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`null` when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_default()
    }
}

/// A minimal blocking HTTP/1.1 request, for the harness itself (tests use a real client library).
pub fn http_request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Option<HttpAnswer> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    // A `host` among `headers` replaces the default (the address).
    let host = headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("host")).map_or_else(|| addr.to_string(), |(_, v)| (*v).to_string());
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (name, value) in headers.iter().filter(|(n, _)| !n.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        head.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    head.push_str(body.unwrap_or_default());
    stream.write_all(head.as_bytes()).ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let (head, raw_body) = text.split_once("\r\n\r\n")?;
    let mut lines = head.lines();
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string())).collect();
    let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked { dechunk(raw_body) } else { raw_body.to_string() };
    Some(HttpAnswer { status, headers, body })
}

fn dechunk(mut raw: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = raw.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        raw = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Signs in at `admin` and creates a personal access token; panics with the answer when it cannot.
pub fn admin_token(admin: SocketAddr, email: &str, password: &str) -> String {
    let login = serde_json::json!({ "email": email, "password": password }).to_string();
    let answer = http_request(admin, "POST", "/api/v1/auth/login", &[], Some(&login)).expect("login answer");
    assert_eq!(answer.status, 200, "login: {}", answer.body);
    let cookie = answer.header("set-cookie").and_then(|c| c.split(';').next()).expect("session cookie").to_string();
    let csrf = answer.json()["csrf_token"].as_str().expect("csrf token").to_string();
    let request = serde_json::json!({ "name": "harness" }).to_string();
    let created =
        http_request(admin, "POST", "/api/v1/tokens", &[("cookie", &cookie), ("x-csrf-token", &csrf)], Some(&request)).expect("token");
    assert_eq!(created.status, 201, "token: {}", created.body);
    created.json()["token"].as_str().expect("token").to_string()
}

/// A minimal blocking HTTP/1.1 GET (status and body), for readiness checks without a client library.
pub fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Some((code, body))
}

/// A blocking byte stream a [`WebSocket`] runs over (plain TCP or TLS).
pub trait Stream: std::io::Read + std::io::Write + Send {}
impl<T: std::io::Read + std::io::Write + Send> Stream for T {}

/// A minimal WebSocket client over a blocking socket (text frames under 126 bytes).
pub struct WebSocket {
    stream: Box<dyn Stream>,
    /// The handshake response head (status line and headers).
    pub head: String,
}

impl WebSocket {
    /// Connects and performs the upgrade handshake on `path`.
    pub fn connect(addr: SocketAddr, host: &str, path: &str) -> std::io::Result<WebSocket> {
        let stream = std::net::TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(patience()))?;
        WebSocket::handshake(Box::new(stream), host, path)
    }

    /// Performs the upgrade handshake on `path` over an open stream (e.g. a TLS connection).
    pub fn handshake(mut stream: Box<dyn Stream>, host: &str, path: &str) -> std::io::Result<WebSocket> {
        use std::io::{Read, Write};
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )?;
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte)?;
            head.push(byte[0]);
        }
        Ok(WebSocket { stream, head: String::from_utf8_lossy(&head).into_owned() })
    }

    /// Sends one masked text frame.
    pub fn send(&mut self, message: &str) -> std::io::Result<()> {
        use std::io::Write;
        let payload = message.as_bytes();
        let mask = [1u8, 2, 3, 4];
        let mut frame = vec![0x81, 0x80 | u8::try_from(payload.len()).unwrap_or(125)];
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.write_all(&frame)
    }

    /// Receives one text frame.
    pub fn recv(&mut self) -> std::io::Result<String> {
        use std::io::Read;
        let mut header = [0u8; 2];
        self.stream.read_exact(&mut header)?;
        let mut data = vec![0u8; usize::from(header[1] & 0x7f)];
        self.stream.read_exact(&mut data)?;
        Ok(String::from_utf8_lossy(&data).into_owned())
    }
}

impl std::fmt::Debug for WebSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocket").field("head", &self.head).finish_non_exhaustive()
    }
}

/// Handshake on `path`, send one text message, return the echoed text and the handshake response head.
pub fn websocket_echo(addr: SocketAddr, host: &str, path: &str, message: &str) -> std::io::Result<(String, String)> {
    let mut ws = WebSocket::connect(addr, host, path)?;
    ws.send(message)?;
    Ok((ws.recv()?, ws.head))
}
