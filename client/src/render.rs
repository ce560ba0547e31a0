//! Human text for the API's answers (tables with aligned columns), and the live view of a wake; also of
//! the binary's offline `savings simulate` report, which is JSON like the API's answers.

use std::fmt::Write;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Value, json};

/// The JSON as the API answered it, pretty-printed.
pub fn json(value: &Value) -> String {
    format!("{}\n", serde_json::to_string_pretty(value).unwrap_or_default())
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// A time as RFC 3339 (UTC, seconds).
fn when(ms: &Value) -> String {
    ms.as_u64().map_or("-".into(), |ms| humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string())
}

/// A duration in milliseconds as "850 ms" or "3.2 s".
pub(crate) fn duration(ms: u64) -> String {
    if ms < 1000 { format!("{ms} ms") } else { format!("{:.1} s", ms as f64 / 1000.0) }
}

/// Rows under a header, each column as wide as its widest cell.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
        let padded: Vec<String> = cells.zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        let _ = writeln!(out, "{}", padded.join("  ").trim_end());
    };
    line(&mut out, &mut header.iter().copied());
    for row in rows {
        line(&mut out, &mut row.iter().map(String::as_str));
    }
    out
}

/// `leannodes status`.
pub(crate) fn status(s: &Value) -> String {
    let reload = &s["last_reload"];
    let mut out = String::new();
    let _ = writeln!(out, "LeanNodes {} · {} driver · {} store", text(&s["version"]), text(&s["driver"]), text(&s["store"]));
    let leader = if s["replica"]["leader"] == true { " (drain leader)" } else { "" };
    let _ = writeln!(out, "replica:      {}{leader}", text(&s["replica"]["id"]));
    let _ = writeln!(out, "flows:        {}", text(&s["flows"]));
    let _ = writeln!(out, "in flight:    {}", text(&s["in_flight"]));
    let applied = if reload["ok"] == true { "applied" } else { "FAILED" };
    let _ = writeln!(out, "last reload:  {applied} ({}) at {}", text(&reload["cause"]), when(&reload["at_ms"]));
    for error in reload["errors"].as_array().into_iter().flatten() {
        let _ = writeln!(out, "  {}", text(error));
    }
    if s["shutting_down"] == true {
        let _ = writeln!(out, "shutting down");
    }
    out
}

/// `leannodes flows`.
pub(crate) fn flows(list: &Value) -> String {
    let rows: Vec<Vec<String>> = list["flows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            let mut state = text(&f["state"]);
            for flag in ["pinned", "disabled"] {
                if f[flag] == true {
                    state.push_str(&format!(" ({flag})"));
                }
            }
            let source = match f["version"].as_u64() {
                Some(v) => format!("{} v{v}", text(&f["source"])),
                None => text(&f["source"]),
            };
            let hosts: Vec<String> = f["hosts"].as_array().into_iter().flatten().map(text).collect();
            let nodes = f["nodes"].as_array().map_or(0, Vec::len);
            vec![text(&f["name"]), state, source, hosts.join(","), nodes.to_string()]
        })
        .collect();
    let mut out = table(&["FLOW", "STATE", "SOURCE", "HOSTS", "NODES"], &rows);
    for f in list["inactive"].as_array().into_iter().flatten() {
        let _ = writeln!(out, "{}: not active yet ({} version(s))", text(&f["name"]), text(&f["latest_version"]));
    }
    out
}

/// `leannodes executions FLOW`.
pub(crate) fn executions(list: &Value) -> String {
    let rows: Vec<Vec<String>> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let took = match (e["started_ms"].as_u64(), e["finished_ms"].as_u64()) {
                (Some(a), Some(b)) => duration(b.saturating_sub(a)),
                _ => "running".into(),
            };
            let outcome = match e["error"].as_str() {
                Some(error) => format!("{}: {error}", text(&e["outcome"])),
                None => text(&e["outcome"]),
            };
            vec![text(&e["id"]), when(&e["started_ms"]), text(&e["trigger"]), took, outcome]
        })
        .collect();
    if rows.is_empty() {
        return "no wake yet\n".into();
    }
    table(&["EXECUTION", "STARTED", "TRIGGER", "TOOK", "OUTCOME"], &rows)
}

/// Hours with one decimal.
fn hours(ms: u64) -> String {
    format!("{:.1} h", ms as f64 / 3_600_000.0)
}

/// `leannodes savings show`.
pub(crate) fn savings(s: &Value) -> String {
    let currency = text(&s["currency"]);
    let money = |v: &Value| format!("{:.2} {currency}", v.as_f64().unwrap_or(0.0));
    let rows: Vec<Vec<String>> = s["flows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            let observed = f["observed_ms"].as_u64().unwrap_or(0);
            let asleep = f["asleep_ms"].as_u64().unwrap_or(0);
            let share = if observed == 0 { "-".to_string() } else { format!("{:.0} %", asleep as f64 * 100.0 / observed as f64) };
            vec![text(&f["flow"]), hours(asleep), share, text(&f["cpu"]), money(&f["saved"])]
        })
        .collect();
    let mut out = table(&["FLOW", "ASLEEP", "OF WATCHED", "CPU", "SAVED"], &rows);
    let _ = writeln!(
        out,
        "total {} over the last {} (node-hour {}, {} cores per node)",
        money(&s["total"]),
        humantime::format_duration(Duration::from_millis(s["window_ms"].as_u64().unwrap_or(0))),
        money(&s["node_hourly_cost"]),
        text(&s["node_cpu"])
    );
    out
}

/// `leannodes savings simulate`: what was read, then one row per candidate window.
pub fn simulation(s: &Value) -> String {
    let (from, to) = (s["from_ms"].as_i64().unwrap_or(0), s["to_ms"].as_i64().unwrap_or(0));
    let span = u64::try_from(to - from).unwrap_or(0);
    let mut out = format!(
        "{} requests from {} to {} ({}); {} other and {} unreadable lines left out\n",
        text(&s["requests"]),
        when(&s["from_ms"]),
        when(&s["to_ms"]),
        humantime::format_duration(Duration::from_secs(span / 1000)),
        text(&s["other"]),
        text(&s["malformed"]),
    );
    let currency = text(&s["currency"]);
    let rows: Vec<Vec<String>> = s["candidates"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let asleep = c["asleep_ms"].as_u64().unwrap_or(0);
            let share = if span == 0 { "-".into() } else { format!("{:.0} %", asleep as f64 * 100.0 / span as f64) };
            vec![
                text(&c["idle_after"]),
                hours(asleep),
                share,
                text(&c["cold_starts"]),
                format!("{:.2} {currency}", c["saved"].as_f64().unwrap_or(0.0)),
            ]
        })
        .collect();
    out.push_str(&table(&["IDLE AFTER", "ASLEEP", "OF SPAN", "COLD STARTS", "SAVED"], &rows));
    out
}

/// `leannodes explain FLOW`.
pub(crate) fn explanation(e: &Value) -> String {
    let mut out = format!("{} is {}\n", text(&e["flow"]), text(&e["state"]));
    for reason in e["reasons"].as_array().into_iter().flatten() {
        let _ = writeln!(out, "- {}", text(&reason["message"]));
    }
    let recent: Vec<&Value> = e["recent_requests"].as_array().into_iter().flatten().collect();
    if !recent.is_empty() {
        let _ = writeln!(out, "recent requests on this replica:");
        for r in recent {
            let _ = writeln!(out, "  {}  {} {}  {}", when(&r["at_ms"]), text(&r["method"]), text(&r["path"]), text(&r["status"]));
        }
    }
    match e["drains_in_ms"].as_u64() {
        Some(ms) => {
            let _ = writeln!(out, "drains in {} if nothing else arrives", duration(ms));
        }
        None if e["state"] == "awake" => {
            let _ = writeln!(out, "does not drain by itself now");
        }
        None => {}
    }
    out
}

/// After `drain`, `pin` or `unpin`.
pub(crate) fn operated(flow: &str, answer: &Value) -> String {
    let mut flags = Vec::new();
    for flag in ["pinned", "disabled"] {
        if answer[flag] == true {
            flags.push(flag);
        }
    }
    let flags = if flags.is_empty() { String::new() } else { format!(" ({})", flags.join(", ")) };
    format!("{flow}: {}{flags}\n", text(&answer["state"]))
}

/// The live view of one wake, built from its events.
#[derive(Debug)]
pub(crate) struct Wake {
    flow: String,
    /// Node name → (state, time to ready, failure).
    nodes: Vec<(String, Value)>,
}

impl Wake {
    pub(crate) fn new(flow: &str) -> Wake {
        Wake { flow: flow.to_string(), nodes: Vec::new() }
    }

    fn node(&mut self, name: &str) -> &mut Value {
        if let Some(i) = self.nodes.iter().position(|(n, _)| n == name) {
            return &mut self.nodes[i].1;
        }
        self.nodes.push((name.to_string(), json!({ "node": name, "state": "pending" })));
        &mut self.nodes.last_mut().expect("just pushed").1
    }

    /// Takes in one event of the flow; returns the line a person sees for it.
    pub(crate) fn line(&mut self, event: &str, data: &Value) -> Option<String> {
        let node = text(&data["node"]);
        match event {
            "execution_started" => {
                let names: Vec<String> = data["nodes"].as_array().into_iter().flatten().map(text).collect();
                for name in &names {
                    self.node(name);
                }
                Some(format!("waking {} ({}): {}", self.flow, text(&data["trigger"]), names.join(", ")))
            }
            "node_started" => {
                self.node(&node)["state"] = "starting".into();
                Some(format!("  {node:<16} starting"))
            }
            "node_ready" => {
                let ms = data["elapsed_ms"].as_u64().unwrap_or_default();
                let entry = self.node(&node);
                entry["state"] = "ready".into();
                entry["elapsed_ms"] = ms.into();
                Some(format!("  {node:<16} ready in {}", duration(ms)))
            }
            "node_failed" => {
                let entry = self.node(&node);
                entry["state"] = "failed".into();
                entry["reason"] = data["reason"].clone();
                entry["message"] = data["message"].clone();
                Some(format!("  {node:<16} failed: {} — {}", text(&data["reason"]), text(&data["message"])))
            }
            _ => None,
        }
    }

    /// The final report.
    pub(crate) fn summary(&self, output: crate::Output, outcome: &str, error: Option<&str>, ms: u64) -> String {
        match output {
            crate::Output::Json => json(&json!({
                "flow": self.flow,
                "outcome": outcome,
                "elapsed_ms": ms,
                "error": error,
                "nodes": self.nodes.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>(),
            })),
            crate::Output::Human => match (outcome, error) {
                ("already_awake", _) => format!("{} is awake already\n", self.flow),
                ("succeeded", _) => format!("{} is awake ({})\n", self.flow, duration(ms)),
                (_, Some(error)) => format!("{} did not wake ({outcome}): {error}\n", self.flow),
                _ => format!("{} did not wake ({outcome})\n", self.flow),
            },
        }
    }
}
