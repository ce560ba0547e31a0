use std::time::Duration;

use super::simulate::{read_access_log, simulate};

const MINUTE: i64 = 60_000;

#[test]
fn every_format_gives_the_same_time() {
    let lines = [
        r#"{"start_time":"2026-11-30T10:00:00.000Z","method":"GET","path":"/"}"#,
        r#"{"time_iso8601":"2026-11-30T11:00:00+01:00","request":"GET / HTTP/1.1"}"#,
        r#"{"msec":"1796032800.000","status":200}"#,
        r#"{"time_local":"30/Nov/2026:10:00:00 +0000"}"#,
        r#"{"timestamp":"2026-11-30T10:00:00.000000Z","level":"INFO","target":"leannodes::access","fields":{"flow":"shop"}}"#,
        r#"10.0.0.1 - - [30/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 612 "-" "curl/8.0""#,
    ];
    let log = read_access_log(lines.join("\n").as_bytes(), None).expect("read");
    let at = "2026-11-30T10:00:00Z".parse::<jiff::Timestamp>().expect("time").as_millisecond();
    assert_eq!(log.times_ms, vec![at; 6], "{log:?}");
    assert_eq!((log.lines, log.other, log.malformed), (6, 0, 0));
}

#[test]
fn other_lines_are_left_out_and_malformed_ones_counted() {
    let text = r#"{"timestamp":"2026-11-30T10:00:00Z","target":"leannodes::reload","fields":{"message":"reloaded"}}
{"start_time":"2026-11-30T10:00:00Z","authority":"shop.example.com"}
{"start_time":"2026-11-30T10:01:00Z","authority":"blog.example.com"}
{"start_time":"yesterday","authority":"shop.example.com"}
not a log line
{"start_time":"2026-11-30T10:02:00Z","authority":"shop.example.com:443"}
"#;
    let log = read_access_log(text.as_bytes(), Some("shop.example.com")).expect("read");
    assert_eq!(log.times_ms.len(), 2, "{log:?}");
    assert_eq!((log.lines, log.other, log.malformed), (6, 2, 2));
    assert_eq!(log.first_malformed.as_ref().map(|m| m.line), Some(4));
    assert!(log.first_malformed.expect("one").reason.contains("unreadable time"));
}

#[test]
fn a_generated_log_has_a_known_answer() {
    // Bursts of 10 requests a minute apart, with a 3 h gap after each burst: 8 bursts.
    let mut times = Vec::new();
    let mut t = 1_800_000_000_000;
    for _ in 0..8 {
        for _ in 0..10 {
            times.push(t);
            t += MINUTE;
        }
        t += 180 * MINUTE - MINUTE;
    }
    let model = leannodes_config::Savings { node_hourly_cost: 0.4, node_cpu: 4.0, currency: "USD".into() };
    // 15 m: each of the 7 gaps of 3 h sleeps 2 h 45 m; 8 cold starts.
    let c = simulate(&times, Duration::from_secs(15 * 60), 2.0, &model);
    assert_eq!((c.asleep_ms, c.cold_starts), (7 * 165 * MINUTE as u64, 8));
    assert!((c.saved - 7.0 * 2.75 * 0.5 * 0.4).abs() < 1e-9, "{c:?}");
    // 1 h: 2 h of each gap.
    assert_eq!(simulate(&times, Duration::from_secs(3600), 2.0, &model).asleep_ms, 7 * 120 * MINUTE as u64);
    // 30 s: the minute gaps inside a burst sleep too, and each is a cold start.
    let c = simulate(&times, Duration::from_secs(30), 2.0, &model);
    assert_eq!(c.cold_starts, 80);
    assert_eq!(c.asleep_ms, (7 * (180 * MINUTE - MINUTE / 2) + 8 * 9 * (MINUTE / 2)) as u64);
    // 4 h: never sleeps.
    let c = simulate(&times, Duration::from_secs(4 * 3600), 2.0, &model);
    assert_eq!((c.asleep_ms, c.cold_starts), (0, 1));
}
