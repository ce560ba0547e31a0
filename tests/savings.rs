//! Savings and keep-warm schedules against a real `leannodes serve`: `GET /savings` (the cost model, the
//! flow's CPU, hours asleep; bad windows refused), the `leannodes_savings` gauge, `leannodes savings show`,
//! a flow's keep-warm schedule and next wake in `GET /flows/{name}` and explain; and `leannodes savings
//! simulate` on a generated access log with a known answer, in every log format it reads.

use std::process::{Command, Output};

use leannodes_harness::{DemoNode, Serve, assert_eventually, http_request, workdir};

const BIN: &str = env!("CARGO_BIN_EXE_leannodes");

fn get(serve: &Serve, path: &str) -> (u16, serde_json::Value) {
    let answer = http_request(serve.admin, "GET", path, &[("authorization", &serve.bearer())], None).expect("get");
    (answer.status, answer.json())
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).env_remove("LEANNODES_TOKEN").output().expect("run leannodes")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn savings_and_keep_warm_through_the_api_the_cli_and_metrics() {
    let dir = workdir();
    // 29 February: the next window is years away, whenever this runs (but not on that day).
    let body = format!(
        "\n[[flow]]\nname = \"shop\"\nhosts = [\"shop.test\"]\nupstream = \"web\"\nkeep_warm = [{{ cron = \"0 0 29 2 *\", for = \"1h\" }}]\n{}cpu = 3\n",
        DemoNode::new("web").toml(BIN, dir.path())
    );
    let serve = Serve::start(BIN, dir.path(), "[server.savings]\nnode_hourly_cost = 0.5\nnode_cpu = 2\ncurrency = \"EUR\"\n", &body);

    // Asleep since the start: all of the watched time was asleep.
    assert_eventually!(
        get(&serve, "/api/v1/savings?window=30d").1["flows"][0]["asleep_ms"].as_u64().unwrap_or(0) > 0,
        "asleep time counts"
    );
    let (status, savings) = get(&serve, "/api/v1/savings?window=30d");
    assert_eq!(status, 200, "{savings}");
    assert_eq!(
        (savings["currency"].as_str(), savings["node_cpu"].as_f64(), savings["window_ms"].as_u64()),
        (Some("EUR"), Some(2.0), Some(30 * 86_400_000))
    );
    let shop = &savings["flows"][0];
    assert_eq!((shop["flow"].as_str(), shop["cpu"].as_f64()), (Some("shop"), Some(3.0)), "{savings}");
    let asleep_h = shop["asleep_ms"].as_f64().expect("ms") / 3_600_000.0;
    assert!(shop["observed_ms"].as_u64() >= shop["asleep_ms"].as_u64(), "{savings}");
    // hours × (3 cores / 2 per node) × 0.5 EUR.
    let expected = asleep_h * 1.5 * 0.5;
    assert!((shop["saved"].as_f64().expect("saved") - expected).abs() < 1e-3 * expected.max(1e-6) + 1e-9, "{savings}");
    for bad in ["forever", "0s", "365d"] {
        let (status, error) = get(&serve, &format!("/api/v1/savings?window={bad}"));
        assert_eq!((status, error["error"].as_str()), (400, Some("invalid_field")), "{bad}: {error}");
        assert!(error["message"].as_str().is_some_and(|m| m.contains("up to 90d")), "{error}");
    }

    let metrics = http_request(serve.admin, "GET", "/metrics", &[("authorization", &serve.bearer())], None).expect("metrics").body;
    assert!(metrics.lines().any(|l| l.starts_with("leannodes_savings{flow=\"shop\"} ")), "{metrics}");
    assert!(metrics.lines().any(|l| l == "leannodes_asleep_ratio{flow=\"shop\"} 1"), "{metrics}");

    let url = format!("http://{}", serve.admin);
    let shown = run(&["savings", "show", "--url", &url, "--token", &serve.token()]);
    let human = text(&shown.stdout);
    assert_eq!(shown.status.code(), Some(0), "{human}{}", text(&shown.stderr));
    assert!(human.starts_with("FLOW") && human.lines().any(|l| l.starts_with("shop ") && l.ends_with(" EUR")), "{human}");
    assert!(human.contains("over the last 30days"), "{human}");
    let refused = run(&["savings", "show", "--window", "1y", "--url", &url, "--token", &serve.token()]);
    assert_eq!(refused.status.code(), Some(6), "{}", text(&refused.stderr));
    assert!(text(&refused.stderr).contains("up to 90d"), "{}", text(&refused.stderr));

    // The schedule and its next wake: two minutes before midnight UTC on the next 29 February.
    let (_, flow) = get(&serve, "/api/v1/flows/shop");
    let schedule = &flow["keep_warm"][0];
    assert_eq!(
        (schedule["cron"].as_str(), schedule["tz"].as_str(), schedule["for_ms"].as_u64(), schedule["ahead_ms"].as_u64()),
        (Some("0 0 29 2 *"), Some("UTC"), Some(3_600_000), Some(120_000)),
        "{flow}"
    );
    let next = flow["next_keep_warm_ms"].as_i64().expect("next wake");
    let when = jiff::Timestamp::from_millisecond(next).expect("time").to_zoned(jiff::tz::TimeZone::UTC);
    assert_eq!((when.month(), when.day(), when.hour(), when.minute()), (2, 28, 23, 58), "{flow}");
    assert!(flow["keep_warm_until_ms"].is_null());
    let (_, explained) = get(&serve, "/api/v1/flows/shop/explain");
    let reason =
        explained["reasons"].as_array().and_then(|r| r.iter().find(|r| r["kind"] == "schedule")).expect("a schedule reason").clone();
    assert!(reason["message"].as_str().is_some_and(|m| m.contains("wakes it next at") && m.contains("-02-28T23:58:00Z")), "{reason}");
    assert_eq!(explained["next_keep_warm_ms"].as_i64(), Some(next));
}

/// Three-hour gaps between bursts of ten requests a minute apart, eight bursts, written in every
/// format the simulator reads, plus lines it must leave out or skip.
fn generated_log() -> String {
    let mut lines = Vec::new();
    let mut t = jiff::Timestamp::from_second(1_800_000_000).expect("time");
    let minute = jiff::SignedDuration::from_mins(1);
    for burst in 0..8 {
        for i in 0..10 {
            let line = match (burst + i) % 5 {
                0 => format!(r#"{{"start_time":"{t}","authority":"shop.example.com","method":"GET"}}"#),
                1 => format!(
                    r#"{{"time_iso8601":"{}","http_host":"shop.example.com"}}"#,
                    t.to_zoned(jiff::tz::TimeZone::fixed(jiff::tz::offset(2))).strftime("%Y-%m-%dT%H:%M:%S%:z")
                ),
                2 => format!(r#"{{"msec":"{}.000","host":"shop.example.com"}}"#, t.as_second()),
                3 => format!(r#"{{"timestamp":"{t}","target":"leannodes::access","fields":{{"host":"shop.example.com","flow":"shop"}}}}"#),
                _ => format!(r#"{{"time_local":"{}","server_name":"shop.example.com"}}"#, t.strftime("%d/%b/%Y:%H:%M:%S %z")),
            };
            lines.push(line);
            t = t.checked_add(minute).expect("time");
        }
        t = t.checked_add(minute * 179).expect("time");
    }
    lines.insert(3, r#"{"timestamp":"2027-01-15T08:00:00Z","target":"leannodes::reload","fields":{"message":"reloaded"}}"#.into());
    lines.insert(7, r#"{"start_time":"2027-01-15T08:00:00Z","authority":"blog.example.com"}"#.into());
    lines.insert(11, r#"{"start_time":"not a time","authority":"shop.example.com"}"#.into());
    lines.insert(20, "garbage".into());
    lines.join("\n") + "\n"
}

#[test]
fn the_simulator_replays_an_access_log_against_candidate_windows() {
    let dir = workdir();
    let log = dir.path().join("access.log");
    std::fs::write(&log, generated_log()).expect("write log");
    let log = log.to_str().expect("path");

    let out = run(&[
        "savings",
        "simulate",
        "--access-log",
        log,
        "--idle-after",
        "15m,1h,4h",
        "--host",
        "shop.example.com",
        "--cpu",
        "2",
        "--node-hourly-cost",
        "0.4",
        "--node-cpu",
        "4",
        "-o",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        (report["requests"].as_u64(), report["other"].as_u64(), report["malformed"].as_u64()),
        (Some(80), Some(2), Some(2)),
        "{report}"
    );
    assert_eq!(report["first_malformed"]["line"].as_u64(), Some(12), "{report}");
    assert!(text(&out.stderr).contains("skipped 2 line(s) without a readable time; the first is line 12"), "{}", text(&out.stderr));
    let candidate = |i: usize| (report["candidates"][i]["asleep_ms"].as_u64(), report["candidates"][i]["cold_starts"].as_u64());
    // 15 m: 7 gaps × 2 h 45 m asleep, 8 cold starts; 1 h: 7 × 2 h; 4 h: never asleep, one cold start.
    assert_eq!(candidate(0), (Some(7 * 165 * 60_000), Some(8)), "{report}");
    assert_eq!(candidate(1), (Some(7 * 120 * 60_000), Some(8)), "{report}");
    assert_eq!(candidate(2), (Some(0), Some(1)), "{report}");
    let saved = report["candidates"][0]["saved"].as_f64().expect("saved");
    assert!((saved - 7.0 * 2.75 * (2.0 / 4.0) * 0.4).abs() < 1e-9, "{report}");

    // The cost model from a configuration file, human output.
    let config = dir.path().join("leannodes.toml");
    std::fs::write(&config, "[server.savings]\nnode_hourly_cost = 1.0\nnode_cpu = 2\ncurrency = \"EUR\"\n").expect("write config");
    let out = run(&["savings", "simulate", "--access-log", log, "--idle-after", "15m", "--config", config.to_str().expect("path")]);
    let human = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{human}{}", text(&out.stderr));
    assert!(human.starts_with("81 requests from "), "without --host the other host counts too: {human}");
    assert!(human.lines().any(|l| l.starts_with("IDLE AFTER")), "{human}");
    assert!(human.lines().any(|l| l.starts_with("15m ") && l.ends_with(" EUR")), "{human}");

    let missing = run(&["savings", "simulate", "--access-log", "/nonexistent/access.log"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("cannot read /nonexistent/access.log"), "{}", text(&missing.stderr));
    let empty = dir.path().join("empty.log");
    std::fs::write(&empty, "garbage\n").expect("write");
    let none = run(&["savings", "simulate", "--access-log", empty.to_str().expect("path")]);
    assert_eq!(none.status.code(), Some(1));
    assert!(text(&none.stderr).contains("no requests in"), "{}", text(&none.stderr));
}
