//! `leannodes demo-backend`: a small backend whose start-up can be delayed or made to fail, used by the
//! demo and by the end-to-end tests as a process node.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::{Method, Uri};
use axum::routing::any;

/// Options of `leannodes demo-backend`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Port to listen on.
    #[arg(long)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Name put in every response body and in the start log.
    #[arg(long, default_value = "demo")]
    name: String,
    /// Wait this long before listening (humantime, e.g. "800ms").
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    startup_delay: Duration,
    /// Append `UNIX_MILLIS NAME PID` to this file the moment the process starts.
    #[arg(long)]
    start_log: Option<PathBuf>,
    /// Append `UNIX_MILLIS NAME PID` to this file on SIGTERM, then exit (lets tests see stop order).
    #[arg(long)]
    stop_log: Option<PathBuf>,
    /// Append `UNIX_MICROS NAME PID` to this file the moment the listener is bound (benchmarks).
    #[arg(long)]
    listen_log: Option<PathBuf>,
    /// Exit after this long (humantime; "0s" exits before ever listening).
    #[arg(long, value_parser = humantime::parse_duration, requires = "exit_code")]
    exit_after: Option<Duration>,
    /// Exit status used with --exit-after.
    #[arg(long, requires = "exit_after")]
    exit_code: Option<u8>,
}

pub(crate) async fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(path) = &args.start_log {
        append_line(path, &args.name)?;
    }
    let stop = async {
        match &args.stop_log {
            Some(path) => {
                let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
                term.recv().await;
                append_line(path, &args.name)?;
                anyhow::Ok(())
            }
            None => std::future::pending().await,
        }
    };
    // An exit due before the listener would open happens without ever listening.
    if let (Some(after), Some(code)) = (args.exit_after, args.exit_code) {
        if after <= args.startup_delay {
            tokio::time::sleep(after).await;
            eprintln!("{} exiting with status {code} before listening, as asked", args.name);
            return Ok(ExitCode::from(code));
        }
    }
    let exit = async {
        match (args.exit_after, args.exit_code) {
            (Some(after), Some(code)) => {
                tokio::time::sleep(after).await;
                code
            }
            _ => std::future::pending().await,
        }
    };
    let name = args.name.clone();
    let serve = async move {
        tokio::time::sleep(args.startup_delay).await;
        let addr = SocketAddr::new(args.host, args.port);
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
        if let Some(path) = &args.listen_log {
            let micros = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros());
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            file.write_all(format!("{micros} {name} {}\n", std::process::id()).as_bytes())?;
        }
        println!("{name} listening on {addr}");
        // Requests being answered now, reported in `x-demo-in-flight` (for the load-spreading tests).
        let in_flight = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let app = Router::new().route("/ws", any(websocket)).fallback(any(
            move |method: Method, uri: Uri, headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let name = name.clone();
                let in_flight = in_flight.clone();
                async move {
                    let now = in_flight.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                    // `?sleep_ms=N` answers after N ms (a request that keeps the backend busy).
                    let sleep =
                        uri.query().and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("sleep_ms="))).and_then(|n| n.parse().ok());
                    if let Some(ms) = sleep {
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                    }
                    in_flight.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                    let path = uri.path_and_query().map_or("/", |p| p.as_str());
                    let text = if uri.path() == "/traceparent" {
                        // What trace context reached the backend (for the tracing tests).
                        let seen = headers.get("traceparent").and_then(|v| v.to_str().ok()).unwrap_or("-");
                        format!("{name} traceparent {seen}\n")
                    } else if body.is_empty() {
                        format!("{name} {method} {path}\n")
                    } else {
                        format!("{name} {method} {path} {} bytes\n", body.len())
                    };
                    ([("x-demo-pid", std::process::id().to_string()), ("x-demo-in-flight", now.to_string())], text)
                }
            },
        ));
        axum::serve(listener, app).await.context("serving")?;
        anyhow::Ok(())
    };
    tokio::select! {
        biased;
        stopped = stop => stopped.map(|()| ExitCode::SUCCESS),
        code = exit => {
            eprintln!("{} exiting with status {code} as asked", args.name);
            Ok(ExitCode::from(code))
        }
        served = serve => served.map(|()| ExitCode::SUCCESS),
    }
}

/// Appends `UNIX_MILLIS NAME PID` in one write (appends of one short line do not interleave).
fn append_line(path: &std::path::Path, name: &str) -> anyhow::Result<()> {
    let millis = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let line = format!("{millis} {name} {}\n", std::process::id());
    let mut file =
        std::fs::OpenOptions::new().create(true).append(true).open(path).with_context(|| format!("cannot open {}", path.display()))?;
    file.write_all(line.as_bytes()).with_context(|| format!("cannot write {}", path.display()))
}

async fn websocket(upgrade: WebSocketUpgrade) -> axum::response::Response {
    upgrade.on_upgrade(echo)
}

async fn echo(mut socket: WebSocket) {
    while let Some(Ok(message)) = socket.recv().await {
        let reply = match message {
            Message::Text(_) | Message::Binary(_) => message,
            Message::Ping(p) => Message::Pong(p),
            Message::Close(_) => break,
            Message::Pong(_) => continue,
        };
        if socket.send(reply).await.is_err() {
            break;
        }
    }
}
