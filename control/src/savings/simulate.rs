//! The savings simulator: replays the request times of an access log against candidate idle windows
//! and tells, for each, the hours the flow would have slept, the cold starts it would have taken and the
//! cost saved — so a team can choose `idle_after` from its own traffic.
//!
//! Reads JSON lines from Envoy (`start_time`), nginx (`time_iso8601`, `msec` or `time_local` in a JSON
//! `log_format`), LeanNodes' own access log (`timestamp`, lines of target `leannodes::access`) and
//! similar (`@timestamp`, `time`, `ts`), and nginx's default text format (`[30/Nov/2026:10:00:00 +0000]`).
//! A line without a readable time is counted and skipped.

use std::io::BufRead;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

/// JSON keys that hold a request's time, in the order they are tried.
const TIME_KEYS: &[&str] = &["start_time", "time_iso8601", "@timestamp", "timestamp", "time", "ts", "msec", "time_local"];

/// JSON keys that hold a request's host (for `--host`).
const HOST_KEYS: &[&str] = &["host", "authority", ":authority", "http_host", "server_name"];

/// What was read from an access log.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccessLog {
    /// Request times (Unix milliseconds), sorted.
    pub times_ms: Vec<i64>,
    /// Lines read.
    pub lines: u64,
    /// Lines that are not requests of the flow (other log lines, other hosts).
    pub other: u64,
    /// Lines skipped because no time could be read from them.
    pub malformed: u64,
    /// The first malformed line.
    pub first_malformed: Option<Malformed>,
}

/// A line skipped for want of a readable time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Malformed {
    /// Its number (from 1).
    pub line: u64,
    /// Why.
    pub reason: String,
}

/// One candidate idle window, replayed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    /// The idle window, as written (`15m`).
    pub idle_after: String,
    /// The idle window (milliseconds).
    pub idle_after_ms: u64,
    /// Time the flow would have slept between the first and the last request (milliseconds).
    pub asleep_ms: u64,
    /// Requests that would have found it asleep (the first request included).
    pub cold_starts: u64,
    /// Estimated cost saved.
    pub saved: f64,
}

/// A request's time from a nginx `time_local` (`30/Nov/2026:10:00:00 +0000`).
fn time_local(text: &str) -> Option<i64> {
    jiff::fmt::strtime::parse("%d/%b/%Y:%H:%M:%S %z", text.trim()).ok()?.to_timestamp().ok().map(|t| t.as_millisecond())
}

/// A time as RFC 3339 text, nginx `time_local`, or seconds (or milliseconds) since the epoch.
fn time_of(value: &Value) -> Option<i64> {
    #[allow(clippy::cast_possible_truncation)]
    let from_number = |n: f64| if n > 1e12 { n as i64 } else { (n * 1000.0) as i64 };
    match value {
        Value::Number(n) => n.as_f64().filter(|n| n.is_finite() && *n > 0.0).map(from_number),
        Value::String(s) => s
            .parse::<jiff::Timestamp>()
            .ok()
            .map(|t| t.as_millisecond())
            .or_else(|| time_local(s))
            .or_else(|| s.trim().parse::<f64>().ok().filter(|n| n.is_finite() && *n > 0.0).map(from_number)),
        _ => None,
    }
}

enum Line {
    Request(i64),
    Other,
    Malformed(String),
}

fn classify(line: &str, host: Option<&str>) -> Line {
    let line = line.trim();
    if line.is_empty() {
        return Line::Other;
    }
    if line.starts_with('{') {
        let Ok(doc) = serde_json::from_str::<Value>(line) else { return Line::Malformed("not valid JSON".into()) };
        // LeanNodes' own log: only access lines are requests; its fields sit under `fields`.
        if let Some(target) = doc.get("target").and_then(Value::as_str) {
            if target != "leannodes::access" {
                return Line::Other;
            }
        }
        if let Some(wanted) = host {
            let fields = doc.get("fields");
            let found = HOST_KEYS.iter().find_map(|k| doc.get(*k).or_else(|| fields.and_then(|f| f.get(*k))).and_then(Value::as_str));
            // `host` may carry a port (`shop.example.com:443`).
            if found.is_none_or(|h| !h.eq_ignore_ascii_case(wanted) && h.split(':').next().is_none_or(|h| !h.eq_ignore_ascii_case(wanted)))
            {
                return Line::Other;
            }
        }
        return match TIME_KEYS.iter().find_map(|k| doc.get(*k)) {
            None => Line::Malformed(format!("no time field (looked for {})", TIME_KEYS.join(", "))),
            Some(v) => time_of(v).map_or_else(|| Line::Malformed(format!("unreadable time {v}")), Line::Request),
        };
    }
    if host.is_some() {
        return Line::Malformed("a text line has no host to match --host".into());
    }
    // nginx/Apache text formats: `… [30/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" …`.
    let inside = line.split_once('[').and_then(|(_, rest)| rest.split_once(']')).map(|(t, _)| t);
    match inside.and_then(time_local) {
        Some(ms) => Line::Request(ms),
        None => Line::Malformed("neither JSON nor a text line with a [day/Mon/year:hh:mm:ss zone] time".into()),
    }
}

/// Reads an access log, keeping the requests for `host` (all when `None`).
pub fn read_access_log(reader: impl BufRead, host: Option<&str>) -> std::io::Result<AccessLog> {
    let mut log = AccessLog::default();
    for line in reader.lines() {
        let line = line?;
        log.lines += 1;
        match classify(&line, host) {
            Line::Request(ms) => log.times_ms.push(ms),
            Line::Other => log.other += 1,
            Line::Malformed(why) => {
                log.malformed += 1;
                if log.first_malformed.is_none() {
                    log.first_malformed = Some(Malformed { line: log.lines, reason: why });
                }
            }
        }
    }
    log.times_ms.sort_unstable();
    Ok(log)
}

/// Replays sorted request times against `idle_after`: the flow wakes on a request that finds it asleep
/// and sleeps once `idle_after` passes without one. `cpu` is the flow's cores; the cost model is
/// `[server.savings]`.
pub fn simulate(times_ms: &[i64], idle_after: Duration, cpu: f64, model: &leannodes_config::Savings) -> Candidate {
    let window = i64::try_from(idle_after.as_millis()).unwrap_or(i64::MAX);
    let mut asleep_ms = 0u64;
    let mut cold_starts = u64::from(!times_ms.is_empty());
    for pair in times_ms.windows(2) {
        let gap = pair[1] - pair[0];
        if gap > window {
            asleep_ms += u64::try_from(gap - window).unwrap_or(0);
            cold_starts += 1;
        }
    }
    #[allow(clippy::cast_precision_loss)]
    let hours = asleep_ms as f64 / 3_600_000.0;
    Candidate {
        idle_after: humantime::format_duration(idle_after).to_string(),
        idle_after_ms: u64::try_from(idle_after.as_millis()).unwrap_or(u64::MAX),
        asleep_ms,
        cold_starts,
        saved: hours * cpu / model.node_cpu * model.node_hourly_cost,
    }
}

/// A simulation: what was read and each candidate window (`leannodes savings simulate`, whose `-o json`
/// prints it as is).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Simulation {
    /// Requests counted.
    pub requests: usize,
    /// Lines read.
    pub lines: u64,
    /// Lines that are not requests of the flow.
    pub other: u64,
    /// Lines skipped for want of a readable time.
    pub malformed: u64,
    /// The first of those.
    pub first_malformed: Option<Malformed>,
    /// The first request (Unix milliseconds).
    pub from_ms: Option<i64>,
    /// The last request (Unix milliseconds).
    pub to_ms: Option<i64>,
    /// The flow's CPU (cores).
    pub cpu: f64,
    /// Cores per node.
    pub node_cpu: f64,
    /// Cost of a node-hour.
    pub node_hourly_cost: f64,
    /// The currency of the amounts.
    pub currency: String,
    /// Each candidate window, in the order asked.
    pub candidates: Vec<Candidate>,
}

/// Replays `log` against each of `windows`.
pub fn run(log: AccessLog, windows: &[Duration], cpu: f64, model: &leannodes_config::Savings) -> Simulation {
    Simulation {
        requests: log.times_ms.len(),
        candidates: windows.iter().map(|w| simulate(&log.times_ms, *w, cpu, model)).collect(),
        lines: log.lines,
        other: log.other,
        malformed: log.malformed,
        first_malformed: log.first_malformed,
        from_ms: log.times_ms.first().copied(),
        to_ms: log.times_ms.last().copied(),
        cpu,
        node_cpu: model.node_cpu,
        node_hourly_cost: model.node_hourly_cost,
        currency: model.currency.clone(),
    }
}
