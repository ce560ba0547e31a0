use serde_json::json;

use super::render::{Wake, duration, explanation, table};
use super::sse::Parser;
use super::{ClientError, Output, exit};

#[test]
fn tables_align_columns_to_the_widest_cell() {
    let out = table(&["FLOW", "STATE"], &[vec!["shop".into(), "asleep".into()], vec!["review-42".into(), "awake (pinned)".into()]]);
    assert_eq!(out, "FLOW       STATE\nshop       asleep\nreview-42  awake (pinned)\n");
}

#[test]
fn durations_read_as_people_write_them() {
    assert_eq!((duration(850), duration(1000), duration(3249)), ("850 ms".into(), "1.0 s".into(), "3.2 s".into()));
}

#[test]
fn server_sent_events_are_split_across_chunks_and_keep_alives_skipped() {
    let mut parser = Parser::default();
    assert!(parser.feed(b":keep-alive\n\nevent: node_ready\ndata: {\"flow\":\"shop\",").is_empty());
    let events = parser.feed(b"\"node\":\"db\",\"elapsed_ms\":7}\r\n\r\nevent: x\ndata: not json\n\n");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!((events[0].name.as_str(), &events[0].data["node"]), ("node_ready", &json!("db")));
}

#[test]
fn a_wake_is_shown_node_by_node_and_summarised() {
    let mut wake = Wake::new("shop");
    let lines: Vec<Option<String>> = vec![
        wake.line("execution_started", &json!({ "flow": "shop", "trigger": "manual", "nodes": ["db", "web"] })),
        wake.line("node_started", &json!({ "node": "db" })),
        wake.line("node_ready", &json!({ "node": "db", "elapsed_ms": 712 })),
        wake.line("node_failed", &json!({ "node": "web", "reason": "exited", "message": "status 3" })),
    ];
    assert_eq!(lines[0].as_deref(), Some("waking shop (manual): db, web"));
    assert_eq!(lines[2].as_deref(), Some("  db               ready in 712 ms"));
    assert_eq!(lines[3].as_deref(), Some("  web              failed: exited — status 3"));
    assert_eq!(wake.summary(Output::Human, "failed", Some("web: exited"), 900), "shop did not wake (failed): web: exited\n");
    let report: serde_json::Value = serde_json::from_str(&wake.summary(Output::Json, "failed", Some("web: exited"), 900)).expect("json");
    assert_eq!(report["nodes"][0], json!({ "node": "db", "state": "ready", "elapsed_ms": 712 }));
    assert_eq!(report["nodes"][1]["reason"], "exited");
}

#[test]
fn errors_map_to_the_documented_exit_codes() {
    let refused = |status| ClientError::Refused { status, code: "x".into(), message: "m".into(), hint: "" };
    assert_eq!(
        [refused(401), refused(403), refused(404), refused(409)].map(|e| e.exit_code()),
        [exit::DENIED, exit::DENIED, exit::NOT_FOUND, exit::REFUSED]
    );
}

#[test]
fn an_explanation_reads_as_sentences() {
    let e = json!({
        "flow": "shop", "state": "awake", "drains_in_ms": 4200,
        "reasons": [{ "kind": "open", "message": "open on this replica: 1 WebSocket connection" }],
    });
    assert_eq!(explanation(&e), "shop is awake\n- open on this replica: 1 WebSocket connection\ndrains in 4.2 s if nothing else arrives\n");
    let pinned = json!({ "flow": "shop", "state": "awake", "drains_in_ms": null, "reasons": [] });
    assert!(explanation(&pinned).ends_with("does not drain by itself now\n"));
}
