//! Soak (issue #16): warm traffic, cold starts, drains and a configuration reload every 100 ms, all at
//! once, for `LEANNODES_SOAK_SECONDS` (default 30; `scripts/soak` runs the long form).
//!
//! - `warm` is pinned: a few keep-alive clients hammer it the whole time.
//! - `cold1`, `cold2` (two nodes, `after`) and `cold3` drain after 1 s of idleness; a task per flow hits
//!   each with a burst of concurrent requests at varying pauses, so they are found awake, draining or
//!   asleep, and held requests must get the real backend's body.
//! - The config file is rewritten and `SIGHUP`ed every 100 ms, alternating between two variants: a
//!   fourth flow added and removed, and a setting of `warm` and of `cold1` changed (their handles are
//!   replaced while requests go through and are held).
//!
//! Every response must be `200` with the backend's body. The load runs twice: a warm-up round, then the
//! soak itself. After each, once the base configuration is applied again, the cold flows are drained
//! (no demo-backend process of theirs alive) and no request is in flight, the server's RSS, file
//! descriptors and threads are sampled: the soak's sample must not exceed the warm-up's beyond
//! allocator noise (see the `*_SLACK` constants). SIGTERM at the end leaves no process behind.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use leannodes_harness::{DemoNode, Serve, alive, assert_eventually, http_request, lines_of, patience, read_log, workdir};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_leannodes");
/// Keep-alive clients on the pinned flow, each sending one request after another.
const WARM_CLIENTS: usize = 3;
/// Pause between two requests of one warm client (pacing, so that the 2-core machines stay responsive).
const WARM_PACE: Duration = Duration::from_millis(2);
/// The cold flows.
const COLD: [&str; 3] = ["cold1", "cold2", "cold3"];
/// Concurrent requests of one hit on a cold flow.
const BURST: usize = 3;
/// Pauses between two hits on a cold flow (cycled; `idle_after` is 1 s): the flow is found awake,
/// draining or asleep.
const PAUSES_MS: [u64; 6] = [2_600, 400, 1_300, 3_000, 700, 2_000];
/// How often the config file is rewritten (and `SIGHUP` sent).
const RELOAD_EVERY: Duration = Duration::from_millis(100);
/// Allowed RSS growth over the baseline: the larger of 20 MiB and 15 % (mimalloc keeps freed pages
/// for reuse, and its arenas grow in steps; a leak per request or per reload outgrows both in the
/// long form).
const RSS_SLACK_KB: u64 = 20 * 1024;
const RSS_SLACK_RATIO: f64 = 0.15;
/// Allowed growth in open file descriptors and in threads (a connection or a blocking-pool thread
/// that is just being let go).
const FD_SLACK: usize = 2;
const THREAD_SLACK: usize = 2;
/// Server log lines shown with a failure.
const LOG_TAIL: usize = 80;
/// Failures printed in full.
const SHOWN: u64 = 10;

/// The soak's duration (`LEANNODES_SOAK_SECONDS`, default 30).
fn soak_duration() -> Duration {
    Duration::from_secs(std::env::var("LEANNODES_SOAK_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(30))
}

fn unix_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The flows and their nodes (ports fixed for the whole test).
struct Topology {
    warm: DemoNode,
    c1: DemoNode,
    c2db: DemoNode,
    c2web: DemoNode,
    c3: DemoNode,
    extra: DemoNode,
}

impl Topology {
    fn new() -> Topology {
        Topology {
            warm: DemoNode::new("warm"),
            c1: DemoNode::new("c1").args(&["--startup-delay", "200ms"]),
            c2db: DemoNode::new("c2db").args(&["--startup-delay", "100ms"]),
            c2web: DemoNode::new("c2web").after(&["c2db"]).args(&["--startup-delay", "100ms"]),
            c3: DemoNode::new("c3").args(&["--startup-delay", "300ms"]),
            extra: DemoNode::new("extra"),
        }
    }

    /// The flows of variant `v`: even ones (0 is the base) have no `extra` flow; odd ones add it and
    /// change a setting of `warm` and of `cold1`.
    fn body(&self, logs: &Path, v: u64) -> String {
        let odd = v % 2 == 1;
        let mut text = flow(logs, "warm", &format!("pinned = true\nfast_hold = \"{}s\"", if odd { 21 } else { 20 }), &[&self.warm]);
        text.push_str(&flow(
            logs,
            "cold1",
            &format!("idle_after = \"1s\"\nhold_timeout = \"{}s\"", if odd { 61 } else { 60 }),
            &[&self.c1],
        ));
        text.push_str(&flow(logs, "cold2", "idle_after = \"1s\"\nhold_timeout = \"60s\"", &[&self.c2db, &self.c2web]));
        text.push_str(&flow(logs, "cold3", "idle_after = \"1s\"\nhold_timeout = \"60s\"", &[&self.c3]));
        if odd {
            text.push_str(&flow(logs, "extra", "idle_after = \"1s\"", &[&self.extra]));
        }
        text
    }

    /// The backend that answers for a cold flow.
    fn cold_upstream(&self, index: usize) -> &str {
        [&self.c1, &self.c2web, &self.c3][index].name.as_str()
    }

    /// The process nodes of the cold flows.
    fn cold_nodes(&self) -> [&str; 4] {
        [self.c1.name.as_str(), self.c2db.name.as_str(), self.c2web.name.as_str(), self.c3.name.as_str()]
    }
}

fn flow(logs: &Path, name: &str, settings: &str, nodes: &[&DemoNode]) -> String {
    let upstream = nodes.last().map_or("127.0.0.1:9", |n| n.name.as_str());
    let mut text = format!("\n[[flow]]\nname = \"{name}\"\nhosts = [\"{name}.test\"]\nupstream = \"{upstream}\"\n{settings}\n");
    for node in nodes {
        text.push_str(&node.toml(BIN, logs));
    }
    text
}

/// What one round of load saw.
#[derive(Default)]
struct Tally {
    warm_ok: AtomicU64,
    cold_ok: AtomicU64,
    failed: AtomicU64,
    /// Hits on each cold flow that were held (a cold start).
    cold_starts: [AtomicU64; 3],
}

/// Counters and the first failures of a round, shared by its tasks.
struct Round {
    tally: Tally,
    failures: mpsc::Sender<String>,
    end: tokio::time::Instant,
}

impl Round {
    fn fail(&self, what: String) {
        if self.tally.failed.fetch_add(1, Ordering::Relaxed) < SHOWN {
            let _ = self.failures.send(what);
        }
    }
}

/// A GET through the proxy that must answer `200` with `expected`; whether it was held (cold start).
async fn check(client: &reqwest::Client, url: &str, host: &str, expected: &str) -> Result<bool, String> {
    let started = Instant::now();
    let response =
        client.get(url).header("host", host).send().await.map_err(|e| format!("{host} {url}: {e:?} after {:?}", started.elapsed()))?;
    let status = response.status().as_u16();
    let held = response.headers().get("x-leannodes-cold-start").map(|v| v.to_str().unwrap_or_default().to_string());
    let body = response.text().await.map_err(|e| format!("{host} {url}: body: {e:?} after {:?}", started.elapsed()))?;
    if status != 200 || body != expected {
        return Err(format!(
            "{host} {url}: {status} {body:?} (expected 200 {expected:?}), cold start header {held:?}, after {:?}",
            started.elapsed()
        ));
    }
    Ok(held.is_some())
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().pool_max_idle_per_host(BURST).timeout(Duration::from_secs(90)).build().expect("client")
}

async fn warm_client(round: Arc<Round>, proxy: std::net::SocketAddr, id: usize) {
    let client = client();
    let mut i = 0u64;
    while tokio::time::Instant::now() < round.end {
        let path = format!("/w/{id}/{i}");
        match check(&client, &format!("http://{proxy}{path}"), "warm.test", &format!("warm GET {path}\n")).await {
            Ok(_) => {
                round.tally.warm_ok.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => round.fail(e),
        }
        i += 1;
        tokio::time::sleep(WARM_PACE).await;
    }
}

async fn cold_hitter(round: Arc<Round>, proxy: std::net::SocketAddr, index: usize, upstream: String) {
    let client = client();
    let host = format!("{}.test", COLD[index]);
    let mut hit = 0u64;
    loop {
        // Each flow walks the pauses from its own offset, so the three are out of step.
        let pause = Duration::from_millis(PAUSES_MS[(index * 2 + usize::try_from(hit).unwrap_or(0)) % PAUSES_MS.len()]);
        let next = tokio::time::Instant::now() + pause;
        if next >= round.end {
            break;
        }
        tokio::time::sleep_until(next).await;
        let requests = (0..BURST).map(|j| {
            let path = format!("/c/{hit}/{j}");
            let (client, host, expected) = (&client, &host, format!("{upstream} GET {path}\n"));
            async move { check(client, &format!("http://{proxy}{path}"), host, &expected).await }
        });
        let mut held = false;
        for result in futures::future::join_all(requests).await {
            match result {
                Ok(cold) => {
                    round.tally.cold_ok.fetch_add(1, Ordering::Relaxed);
                    held |= cold;
                }
                Err(e) => round.fail(e),
            }
        }
        if held {
            round.tally.cold_starts[index].fetch_add(1, Ordering::Relaxed);
        }
        hit += 1;
    }
}

/// What a round did.
struct Report {
    name: &'static str,
    seconds: f64,
    warm_ok: u64,
    cold_ok: u64,
    failed: u64,
    first_failures: Vec<String>,
    cold_starts: [u64; 3],
    rewrites: u64,
    /// When the base configuration was written back (Unix ms).
    base_written_ms: i64,
}

impl Report {
    fn print(&self) {
        println!(
            "soak {}: {:.0} s, warm requests ok {} ({:.0}/s), cold requests ok {}, cold starts {:?}, config rewrites+SIGHUP {}, FAILED {}",
            self.name,
            self.seconds,
            self.warm_ok,
            self.warm_ok as f64 / self.seconds.max(1.0),
            self.cold_ok,
            self.cold_starts,
            self.rewrites,
            self.failed
        );
        for failure in &self.first_failures {
            println!("  failed: {failure}");
        }
    }
}

/// Runs the load for `duration`: warm clients, cold hitters and the reloader; ends with the base
/// configuration written back.
fn round(
    runtime: &tokio::runtime::Runtime,
    serve: &Serve,
    topology: &Topology,
    logs: &Path,
    name: &'static str,
    duration: Duration,
) -> Report {
    let started = Instant::now();
    let (failures, first) = mpsc::channel();
    let round = Arc::new(Round { tally: Tally::default(), failures, end: tokio::time::Instant::now() + duration });
    let proxy = serve.proxy;
    let (rewrites, base_written_ms) = std::thread::scope(|scope| {
        let reloader = scope.spawn(|| {
            let mut variant = 1u64;
            while started.elapsed() < duration {
                serve.rewrite(&topology.body(logs, variant));
                serve.signal(1);
                variant += 1;
                std::thread::sleep(RELOAD_EVERY);
            }
            serve.rewrite(&topology.body(logs, 0));
            let written = unix_ms();
            serve.signal(1);
            (variant - 1, written)
        });
        runtime.block_on(async {
            let mut tasks = Vec::new();
            for id in 0..WARM_CLIENTS {
                tasks.push(tokio::spawn(warm_client(round.clone(), proxy, id)));
            }
            for index in 0..COLD.len() {
                tasks.push(tokio::spawn(cold_hitter(round.clone(), proxy, index, topology.cold_upstream(index).to_string())));
            }
            for task in tasks {
                task.await.expect("load task");
            }
        });
        reloader.join().expect("reloader")
    });
    let tally = &round.tally;
    Report {
        name,
        seconds: started.elapsed().as_secs_f64(),
        warm_ok: tally.warm_ok.load(Ordering::Relaxed),
        cold_ok: tally.cold_ok.load(Ordering::Relaxed),
        failed: tally.failed.load(Ordering::Relaxed),
        first_failures: first.try_iter().collect(),
        cold_starts: [0, 1, 2].map(|i| tally.cold_starts[i].load(Ordering::Relaxed)),
        rewrites,
        base_written_ms,
    }
}

/// The server's last log lines apart from access and reload lines (for a failure's message).
fn log_tail(serve: &Serve) -> String {
    let log = serve.log();
    let lines: Vec<&str> = log.lines().filter(|l| !l.contains("leannodes::access") && !l.contains("configuration reloaded")).collect();
    format!(
        "leannodes serve's last log lines (without access and reload lines):\n{}",
        lines[lines.len().saturating_sub(LOG_TAIL)..].join("\n")
    )
}

fn api(serve: &Serve, path: &str) -> Value {
    http_request(serve.admin, "GET", path, &[("authorization", &serve.bearer())], None).map(|a| a.json()).unwrap_or_default()
}

/// `leannodes_reloads_total{result=…}`.
fn reloads(serve: &Serve, result: &str) -> u64 {
    let text =
        http_request(serve.admin, "GET", "/metrics", &[("authorization", &serve.bearer())], None).map(|a| a.body).unwrap_or_default();
    let line = format!("leannodes_reloads_total{{result=\"{result}\"}}");
    text.lines().find_map(|l| l.strip_prefix(&line)).and_then(|v| v.trim().parse().ok()).unwrap_or(u64::MAX)
}

fn flow_states(serve: &Serve) -> Vec<(String, String)> {
    api(serve, "/api/v1/flows")["flows"]
        .as_array()
        .map(|flows| {
            flows.iter().map(|f| (f["name"].as_str().unwrap_or_default().into(), f["state"].as_str().unwrap_or_default().into())).collect()
        })
        .unwrap_or_default()
}

/// Demo-backend processes of the cold flows still alive.
fn cold_processes_alive(topology: &Topology, logs: &Path) -> Vec<(String, i32)> {
    let log = read_log(&logs.join("start.log"));
    topology.cold_nodes().iter().flat_map(|name| lines_of(&log, name)).filter(|l| alive(l.pid)).map(|l| (l.name.clone(), l.pid)).collect()
}

/// Waits until the base configuration is applied, nothing is in flight, and the cold flows are
/// drained with none of their processes alive.
fn settle(serve: &Serve, topology: &Topology, logs: &Path, report: &Report) {
    // A reload that began after the base was written back read it (reloads run one at a time).
    assert_eventually!(
        api(serve, "/api/v1/status")["last_reload"]["at_ms"].as_i64().is_some_and(|at| at > report.base_written_ms),
        "the base configuration is applied again: {}",
        api(serve, "/api/v1/status")["last_reload"]
    );
    let status = api(serve, "/api/v1/status");
    assert_eq!(status["last_reload"]["ok"], true, "the last reload was applied: {status}");
    let names = || {
        let mut names: Vec<String> = flow_states(serve).into_iter().map(|(name, _)| name).collect();
        names.sort();
        names
    };
    assert_eventually!(names() == ["cold1", "cold2", "cold3", "warm"], "the base configuration's flows serve: {:?}", flow_states(serve));
    assert_eventually!(api(serve, "/api/v1/status")["in_flight"] == 0, "no request in flight: {}", api(serve, "/api/v1/status"));
    assert_eventually!(
        flow_states(serve).iter().all(|(name, state)| if name == "warm" { state == "awake" } else { state == "asleep" }),
        "the cold flows drain and the pinned one stays awake: {:?}",
        flow_states(serve)
    );
    assert_eventually!(
        cold_processes_alive(topology, logs).is_empty(),
        "cold flows' processes stopped: {:?}",
        cold_processes_alive(topology, logs)
    );
}

/// The server's resident memory, open file descriptors and threads.
#[derive(Debug, Clone, Copy)]
struct Sample {
    rss_kb: u64,
    fds: usize,
    threads: usize,
}

impl Sample {
    fn of(pid: i32) -> Sample {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
        let rss_kb = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS");
        let count = |dir: &str| std::fs::read_dir(format!("/proc/{pid}/{dir}")).map(|d| d.count()).expect("/proc/PID dir");
        Sample { rss_kb, fds: count("fd"), threads: count("task") }
    }

    fn rss_limit_kb(&self) -> u64 {
        self.rss_kb + RSS_SLACK_KB.max((self.rss_kb as f64 * RSS_SLACK_RATIO) as u64)
    }

    fn within(&self, baseline: &Sample) -> bool {
        self.fds <= baseline.fds + FD_SLACK && self.threads <= baseline.threads + THREAD_SLACK && self.rss_kb <= baseline.rss_limit_kb()
    }
}

#[test]
fn warm_traffic_cold_starts_drains_and_reloads_together_fail_nothing_and_leak_nothing() {
    let duration = soak_duration();
    // The warm-up exercises the same paths so that pools, caches and arenas reach their size first.
    let warmup = (duration / 10).clamp(Duration::from_secs(8), Duration::from_secs(30));
    let dir = workdir();
    let logs = dir.path();
    let topology = Topology::new();
    let mut serve = Serve::start(BIN, logs, "", &topology.body(logs, 0));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let pid = serve.pid();

    let first = round(&runtime, &serve, &topology, logs, "warm-up", warmup);
    first.print();
    assert_eq!(first.failed, 0, "requests failed during the warm-up:\n{}\n{}", first.first_failures.join("\n"), log_tail(&serve));
    settle(&serve, &topology, logs, &first);
    let baseline = Sample::of(pid);
    let applied_before = reloads(&serve, "applied");
    let stops_before = read_log(&logs.join("stop.log")).len();
    println!("soak baseline after the warm-up: {baseline:?}");

    let soak = round(&runtime, &serve, &topology, logs, "soak", duration);
    soak.print();
    settle(&serve, &topology, logs, &soak);
    // Connections just closed and idle blocking-pool threads take a moment to go: wait (a while, but
    // not forever) for the sample to come within the slack, then judge the last one taken.
    let budget = Instant::now() + Duration::from_secs(30).max(patience() * 3);
    let end = loop {
        let sample = Sample::of(pid);
        if sample.within(&baseline) || Instant::now() > budget {
            break sample;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let applied = reloads(&serve, "applied").saturating_sub(applied_before);
    let failed_reloads = reloads(&serve, "failed");
    let stops = read_log(&logs.join("stop.log")).len() - stops_before;
    let warm_starts = lines_of(&read_log(&logs.join("start.log")), "warm").len();
    println!("soak end, after the load stopped and the cold flows drained: {end:?}");
    println!(
        "soak growth: RSS {:+} kB (limit +{} kB), fds {:+} (limit +{FD_SLACK}), threads {:+} (limit +{THREAD_SLACK})",
        end.rss_kb as i64 - baseline.rss_kb as i64,
        baseline.rss_limit_kb() - baseline.rss_kb,
        end.fds as i64 - baseline.fds as i64,
        end.threads as i64 - baseline.threads as i64
    );
    println!("soak reloads applied during the soak {applied}, failed since start {failed_reloads}; drains (process stops) {stops}");

    assert_eq!(soak.failed, 0, "requests failed during the soak:\n{}\n{}", soak.first_failures.join("\n"), log_tail(&serve));
    assert_eq!(failed_reloads, 0, "every reload is applied:\n{}", log_tail(&serve));
    // At least one reload a second took effect (SIGHUP every 100 ms; reloads queued behind a running
    // one are answered together).
    assert!(applied as f64 >= soak.seconds, "{applied} reloads applied in {:.0} s", soak.seconds);
    assert!(soak.warm_ok > 0, "warm traffic went through");
    for (i, starts) in soak.cold_starts.iter().enumerate() {
        assert!(*starts >= 2, "{} was drained and woken again under load (cold starts {starts})", COLD[i]);
    }
    assert_eq!(warm_starts, 1, "the pinned flow's node was never stopped and restarted");
    assert!(end.rss_kb <= baseline.rss_limit_kb(), "RSS grew from {} kB to {} kB", baseline.rss_kb, end.rss_kb);
    assert!(end.fds <= baseline.fds + FD_SLACK, "open file descriptors grew from {} to {}", baseline.fds, end.fds);
    assert!(end.threads <= baseline.threads + THREAD_SLACK, "threads grew from {} to {}", baseline.threads, end.threads);

    serve.signal(15);
    let status = serve.wait().expect("exited after SIGTERM");
    assert!(status.success(), "exit status {status}:\n{}", serve.log());
    for line in read_log(&logs.join("start.log")) {
        assert_eventually!(!alive(line.pid), "{} (pid {}) outlived the server", line.name, line.pid);
    }
}
