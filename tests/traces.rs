//! Traces against a real `leannodes serve` exporting to a local OTLP/HTTP endpoint (JSON): a request
//! held through a cold start of db → web yields the span tree — the wake, a child per node, a child per
//! stage — and the held request's span, a child of the client's `traceparent`, linked to the wake; the
//! backend receives the trace context of that span.

use leannodes_harness::receiver::Receiver;
use leannodes_harness::{DemoNode, Serve, assert_eventually, http_request, workdir};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_leannodes");

/// Every span exported so far.
fn spans(collector: &Receiver) -> Vec<Value> {
    collector
        .received()
        .iter()
        .flat_map(|r| r.body["resourceSpans"].as_array().cloned().unwrap_or_default())
        .flat_map(|rs| rs["scopeSpans"].as_array().cloned().unwrap_or_default())
        .flat_map(|ss| ss["spans"].as_array().cloned().unwrap_or_default())
        .collect()
}

fn attr<'a>(span: &'a Value, key: &str) -> Option<&'a str> {
    span["attributes"].as_array()?.iter().find(|a| a["key"] == key)?["value"]["stringValue"].as_str()
}

#[test]
fn a_held_request_and_its_wake_make_a_span_tree_and_the_backend_gets_the_context() {
    let collector = Receiver::start(vec![]);
    let dir = workdir();
    let mut body = "\n[[flow]]\nname = \"shop\"\nhosts = [\"shop.test\"]\nupstream = \"web\"\n".to_string();
    for node in [DemoNode::new("db").args(&["--startup-delay", "200ms"]), DemoNode::new("web").after(&["db"])] {
        body.push_str(&node.toml(BIN, dir.path()));
    }
    let server = format!("[server.tracing]\notlp = \"{}\"\n", collector.url(""));
    let serve = Serve::start(BIN, dir.path(), &server, &body);

    let client_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let client_span = "00f067aa0ba902b7";
    let traceparent = format!("00-{client_trace}-{client_span}-01");
    let answer =
        http_request(serve.proxy, "GET", "/traceparent", &[("host", "shop.test"), ("traceparent", &traceparent)], None).expect("request");
    assert_eq!(answer.status, 200, "{}", answer.body);

    assert_eventually!(spans(&collector).iter().any(|s| s["kind"] == 2), "the held request's span is exported: {:?}", spans(&collector));
    assert_eventually!(spans(&collector).iter().any(|s| s["name"] == "wake shop"), "the wake's span is exported");
    let all = spans(&collector);
    assert_eq!(collector.received()[0].path, "/v1/traces");
    assert_eq!(collector.received()[0].body["resourceSpans"][0]["resource"]["attributes"][0]["value"]["stringValue"], "leannodes");

    // The wake: a root span, a child per node, a child per stage of each node.
    let wake = all.iter().find(|s| s["name"] == "wake shop").expect("wake span");
    assert!(wake.get("parentSpanId").is_none(), "{wake}");
    assert_eq!((attr(wake, "leannodes.trigger"), attr(wake, "leannodes.outcome")), (Some("request"), Some("succeeded")));
    let children = |parent: &Value| -> Vec<Value> {
        all.iter().filter(|s| s["parentSpanId"] == parent["spanId"] && s["traceId"] == parent["traceId"]).cloned().collect()
    };
    let mut nodes: Vec<String> = children(wake).iter().filter_map(|s| s["name"].as_str().map(str::to_string)).collect();
    nodes.sort();
    assert_eq!(nodes, ["node db", "node web"]);
    for node in children(wake) {
        let stages: Vec<String> = children(&node).iter().filter_map(|s| s["name"].as_str().map(str::to_string)).collect();
        assert_eq!(stages, ["start", "ready"], "{node}");
        let (start, end) = (node["startTimeUnixNano"].as_str().expect("start"), node["endTimeUnixNano"].as_str().expect("end"));
        assert!(start.parse::<u128>().expect("number") <= end.parse::<u128>().expect("number"), "{node}");
    }
    let db = all.iter().find(|s| s["name"] == "node db").expect("db");
    let db_ready = children(db).into_iter().find(|s| s["name"] == "ready").expect("ready stage");
    let took = db_ready["endTimeUnixNano"].as_str().and_then(|e| e.parse::<u128>().ok()).unwrap_or(0)
        - db_ready["startTimeUnixNano"].as_str().and_then(|s| s.parse::<u128>().ok()).unwrap_or(0);
    assert!(took >= 200_000_000, "db's ready stage holds its 200 ms start-up: {took} ns");

    // The held request: the client's trace, a child of its span, linked to the wake; the backend saw
    // the request span as its parent.
    let held = all.iter().find(|s| s["kind"] == 2).expect("request span");
    assert_eq!((held["traceId"].as_str(), held["parentSpanId"].as_str()), (Some(client_trace), Some(client_span)), "{held}");
    assert_eq!(held["links"][0]["traceId"], wake["traceId"], "{held}");
    assert_eq!(held["links"][0]["spanId"], wake["spanId"], "{held}");
    assert_eq!(
        (attr(held, "http.request.method"), attr(held, "url.path"), attr(held, "http.response.status_code")),
        (Some("GET"), Some("/traceparent"), Some("200"))
    );
    let span_id = held["spanId"].as_str().expect("span id");
    assert_eq!(answer.body, format!("web traceparent 00-{client_trace}-{span_id}-01\n"), "the upstream continues from the request's span");

    // A warm request is not held: its trace context passes through untouched.
    let warm =
        http_request(serve.proxy, "GET", "/traceparent", &[("host", "shop.test"), ("traceparent", &traceparent)], None).expect("warm");
    assert_eq!(warm.body, format!("web traceparent {traceparent}\n"));
}
