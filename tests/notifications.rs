//! Notifications against a real `leannodes serve`, delivered to local HTTP endpoints standing in for
//! Slack, Teams, PagerDuty and the rest: each kind's payload, event and flow filters, retries of a
//! failing endpoint (500s, then a 429 with `Retry-After`), an endpoint that takes 10 s not slowing the
//! wake, Send Test through every webhook format, and the secrets (URLs, header values, keys) absent from
//! every API answer, the audit log and the server's log.

use std::path::Path;
use std::time::Duration;

use leannodes_harness::receiver::{Receiver, Reply};
use leannodes_harness::{DemoNode, Serve, assert_eventually, http_request, workdir};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_leannodes");

/// The secrets of the routes; none may show anywhere.
const SLACK_PATH: &str = "/services/T000/B000/slack-s3cr3t";
const HOOK_PATH: &str = "/hooks/hook-s3cr3t-path";
const HOOK_TOKEN: &str = "Bearer t0ken-s3cr3t";
const PD_KEY: &str = "PDKEY-s3cr3t-0123";

const FORMATS: [(&str, &str); 20] = [
    ("generic", "/event"),
    ("google_chat", "/text"),
    ("webex", "/markdown"),
    ("mattermost", "/username"),
    ("rocket_chat", "/alias"),
    ("zulip", "/text"),
    ("pagerduty", "/routing_key"),
    ("opsgenie", "/alias"),
    ("grafana_oncall", "/alert_uid"),
    ("servicenow", "/records/0/message_key"),
    ("jira_service_management", "/alias"),
    ("datadog", "/alert_type"),
    ("splunk_hec", "/sourcetype"),
    ("new_relic", "/0/eventType"),
    ("elastic", "/@timestamp"),
    ("sumo_logic", "/event"),
    ("n8n", "/event"),
    ("zapier", "/event"),
    ("workato", "/event"),
    ("mulesoft", "/event"),
];

struct Endpoints {
    slack: Receiver,
    teams: Receiver,
    pager: Receiver,
    hook: Receiver,
    slow: Receiver,
    limited: Receiver,
    formats: Receiver,
}

fn secret_file(dir: &Path, name: &str, value: &str) -> String {
    std::fs::write(dir.join(name), format!("{value}\n")).expect("write secret");
    format!("file:{name}")
}

fn config(dir: &Path, e: &Endpoints) -> String {
    let mut text = String::new();
    let flow = |name: &str, node: &str, demo: DemoNode| {
        format!("\n[[flow]]\nname = \"{name}\"\nhosts = [\"{name}.test\"]\nupstream = \"{node}\"\n{}", demo.toml(BIN, dir))
    };
    text.push_str(&flow("shop", "web", DemoNode::new("web")));
    text.push_str(&flow("other", "api", DemoNode::new("api")));
    text.push_str(&flow("broken", "crash", DemoNode::new("crash").args(&["--exit-after", "0s", "--exit-code", "3"])));
    let slack = secret_file(dir, "slack-url", &e.slack.url(SLACK_PATH));
    let hook = secret_file(dir, "hook-url", &e.hook.url(HOOK_PATH));
    let token = secret_file(dir, "hook-token", HOOK_TOKEN);
    let key = secret_file(dir, "pd-key", PD_KEY);
    text.push_str(&format!(
        r#"
[[notification]]
name = "ops-slack"
kind = "slack"
url = "{slack}"
flows = ["shop"]

[[notification]]
name = "teams"
kind = "teams"
url = "{teams}"
events = ["wake_succeeded"]

[[notification]]
name = "pager"
kind = "webhook"
format = "pagerduty"
url = "{pager}"
routing_key = "{key}"
events = ["wake_failed", "wake_succeeded"]

[[notification]]
name = "hook"
kind = "webhook"
url = "{hook}"
headers = {{ Authorization = "{token}" }}
events = ["wake_started"]
flows = ["other"]

[[notification]]
name = "slow"
kind = "webhook"
url = "{slow}"
events = ["wake_started"]
flows = ["shop"]

[[notification]]
name = "limited"
kind = "webhook"
format = "datadog"
url = "{limited}"
events = ["flow_drained"]
"#,
        teams = e.teams.url("/webhook"),
        pager = e.pager.url("/v2/enqueue"),
        slow = e.slow.url("/slow"),
        limited = e.limited.url("/api/v1/events"),
    ));
    for (format, _) in FORMATS {
        text.push_str(&format!(
            "\n[[notification]]\nname = \"fmt-{format}\"\nkind = \"webhook\"\nformat = \"{format}\"\nurl = \"{}\"\nrouting_key = \"{key}\"\nevents = [\"test\"]\n",
            e.formats.url(&format!("/fmt/{format}"))
        ));
    }
    text
}

fn api(serve: &Serve, method: &str, path: &str) -> (u16, Value) {
    let answer = http_request(serve.admin, method, path, &[("authorization", &serve.bearer())], None).expect("api");
    (answer.status, answer.json())
}

fn route(serve: &Serve, name: &str) -> Value {
    let (_, list) = api(serve, "GET", "/api/v1/notifications");
    list["routes"].as_array().and_then(|r| r.iter().find(|r| r["name"] == name)).cloned().unwrap_or(Value::Null)
}

fn events(receiver: &Receiver, pointer: &str) -> Vec<String> {
    receiver.received().iter().filter_map(|r| r.body.pointer(pointer).and_then(Value::as_str).map(str::to_string)).collect()
}

#[test]
fn notices_reach_each_kind_of_route_filtered_retried_and_without_secrets() {
    let dir = workdir();
    let e = Endpoints {
        slack: Receiver::start(vec![]),
        teams: Receiver::start(vec![]),
        pager: Receiver::start(vec![]),
        hook: Receiver::start(vec![Reply::status(500), Reply::status(503)]),
        slow: Receiver::start(vec![Reply::slow(200, Duration::from_secs(10))]),
        limited: Receiver::start(vec![Reply::status(429).header("retry-after", "1")]),
        formats: Receiver::start(vec![]),
    };
    let serve = Serve::start(BIN, dir.path(), "", &config(dir.path(), &e));

    // A wake is not slowed by the endpoint that takes 10 s to answer its wake_started.
    let answer = http_request(serve.proxy, "GET", "/", &[("host", "shop.test")], None).expect("shop");
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(e.slow.answered(), 0, "the slow endpoint has not answered, yet the request was served");
    assert_eventually!(e.slow.received().len() == 1, "the slow endpoint got wake_started");

    // Slack: Block Kit for shop's wake_started and wake_succeeded (the route covers only shop).
    assert_eventually!(events(&e.slack, "/blocks/0/text/text").len() == 2, "slack: {:?}", e.slack.received());
    assert_eq!(events(&e.slack, "/blocks/0/text/text"), ["shop is waking", "shop is awake"]);
    assert_eq!(e.slack.received()[0].path, SLACK_PATH);
    assert_eq!(e.slack.received()[1].body["blocks"][1]["text"]["type"], "mrkdwn");
    // Teams: an Adaptive Card, wake_succeeded only.
    assert_eventually!(!e.teams.received().is_empty(), "teams got the wake");
    let card = &e.teams.received()[0].body["attachments"][0];
    assert_eq!(
        (card["contentType"].as_str(), card["content"]["body"][0]["text"].as_str()),
        (Some("application/vnd.microsoft.card.adaptive"), Some("shop is awake"))
    );

    // The generic webhook of `other` fails twice (500, 503), then succeeds: three attempts, with the header.
    let other = http_request(serve.proxy, "GET", "/", &[("host", "other.test")], None).expect("other");
    assert_eq!(other.status, 200);
    assert_eventually!(route(&serve, "hook")["delivered"] == 1, "hook: {}", route(&serve, "hook"));
    let hook = route(&serve, "hook");
    assert_eq!(
        (hook["last"]["attempts"].as_u64(), hook["last"]["status"].as_u64(), hook["failed"].as_u64()),
        (Some(3), Some(200), Some(0)),
        "{hook}"
    );
    let received = e.hook.received();
    assert_eq!(received.len(), 3);
    assert!(received.iter().all(|r| r.header("authorization") == Some(HOOK_TOKEN) && r.path == HOOK_PATH));
    assert_eq!(
        (received[2].body["event"].as_str(), received[2].body["flow"].as_str(), received[2].body["source"].as_str()),
        (Some("wake_started"), Some("other"), Some("leannodes"))
    );
    assert!(e.slack.received().iter().all(|r| !r.body.to_string().contains("other")), "slack covers shop only");

    // PagerDuty: a failed wake triggers with the routing key; shop's wake resolved the same key earlier.
    let broken = http_request(serve.proxy, "GET", "/", &[("host", "broken.test"), ("accept", "application/json")], None).expect("broken");
    assert!(broken.status >= 500, "{}", broken.status);
    assert_eventually!(events(&e.pager, "/event_action").contains(&"trigger".to_string()), "pager: {:?}", e.pager.received());
    let trigger = e.pager.received().into_iter().find(|r| r.body["event_action"] == "trigger").expect("trigger");
    assert_eq!((trigger.body["routing_key"].as_str(), trigger.body["dedup_key"].as_str()), (Some(PD_KEY), Some("leannodes/broken/wake")));
    assert_eq!(
        (trigger.body["payload"]["severity"].as_str(), trigger.body["payload"]["class"].as_str()),
        (Some("critical"), Some("wake_failed"))
    );
    assert!(events(&e.pager, "/event_action").contains(&"resolve".to_string()), "shop's wake resolves its key");

    // A drain goes to Datadog, which answers 429 with Retry-After once.
    let drained = api(&serve, "POST", "/api/v1/flows/shop/drain");
    assert_eq!(drained.0, 200, "{}", drained.1);
    assert_eventually!(route(&serve, "limited")["delivered"] == 1, "limited: {}", route(&serve, "limited"));
    assert_eq!(route(&serve, "limited")["last"]["attempts"], 2);
    assert_eq!(e.limited.received()[1].body["title"], "shop was drained");

    // Send Test through every webhook format.
    for (format, field) in FORMATS {
        let (status, delivery) = api(&serve, "POST", &format!("/api/v1/notifications/fmt-{format}/test"));
        assert_eq!((status, delivery["ok"].as_bool(), delivery["event"].as_str()), (200, Some(true), Some("test")), "{format}: {delivery}");
        let got = e
            .formats
            .received()
            .into_iter()
            .find(|r| r.path == format!("/fmt/{format}"))
            .unwrap_or_else(|| panic!("{format} not received"));
        assert!(got.body.pointer(field).is_some_and(|v| !v.is_null()), "{format}: {field} missing in {}", got.body);
    }
    let (status, error) = api(&serve, "POST", "/api/v1/notifications/nope/test");
    assert_eq!((status, error["error"].as_str()), (404, Some("unknown_route")));

    // The routes show hosts and header names, never the secrets; nor do the audit log and the server log.
    let (_, list) = api(&serve, "GET", "/api/v1/notifications");
    assert_eq!(route(&serve, "hook")["headers"], serde_json::json!(["Authorization"]));
    assert_eq!(route(&serve, "ops-slack")["host"], e.slack.addr.to_string());
    assert!(list["events"].as_array().is_some_and(|e| e.contains(&Value::from("wake_failed"))), "{list}");
    let (_, audit) = api(&serve, "GET", "/api/v1/audit?action=notification.test");
    assert_eq!(audit["items"].as_array().map(Vec::len), Some(FORMATS.len()), "every Send Test is audited: {audit}");
    let metrics = http_request(serve.admin, "GET", "/metrics", &[("authorization", &serve.bearer())], None).expect("metrics").body;
    assert!(metrics.contains("leannodes_notifications_total{route=\"hook\",result=\"delivered\"} 1"), "{metrics}");
    for (what, text) in
        [("the routes", list.to_string()), ("the audit log", audit.to_string()), ("the server log", serve.log()), ("the metrics", metrics)]
    {
        for secret in ["slack-s3cr3t", "hook-s3cr3t-path", "t0ken-s3cr3t", PD_KEY] {
            assert!(!text.contains(secret), "{secret} shows in {what}");
        }
    }
}

fn send(serve: &Serve, method: &str, path: &str, body: &Value) -> (u16, Value) {
    let text = body.to_string();
    let answer = http_request(serve.admin, method, path, &[("authorization", &serve.bearer())], Some(&text)).expect("api");
    (answer.status, answer.json())
}

#[test]
fn routes_made_through_the_api_keep_their_secrets_write_only_and_survive_a_restart() {
    let dir = workdir();
    let file_endpoint = Receiver::start(vec![]);
    let endpoint = Receiver::start(vec![]);
    let body = format!(
        "\n[[flow]]\nname = \"shop\"\nhosts = [\"shop.test\"]\nupstream = \"web\"\n{}\n[[notification]]\nname = \"from-file\"\nkind = \"webhook\"\nurl = \"{}\"\n",
        DemoNode::new("web").toml(BIN, dir.path()),
        file_endpoint.url("/file")
    );
    let serve = Serve::start(BIN, dir.path(), "", &body);
    let url = endpoint.url("/hooks/api-s3cr3t");
    let new_route = serde_json::json!({
        "name": "api-hook", "kind": "webhook", "url": url, "headers": { "X-Token": "hdr-s3cr3t" }, "events": ["flow_drained"],
    });
    let (status, created) = send(&serve, "POST", "/api/v1/notifications", &new_route);
    assert_eq!(status, 201, "{created}");
    assert_eq!((created["source"].as_str(), created["host"].as_str()), (Some("api"), Some(endpoint.addr.to_string().as_str())));
    assert_eq!(created["headers"], serde_json::json!(["X-Token"]));
    let (status, again) = send(&serve, "POST", "/api/v1/notifications", &new_route);
    assert_eq!((status, again["error"].as_str()), (409, Some("route_exists")));

    // Send Test reaches it with its header; a PUT without secrets keeps them and changes the shape.
    assert_eq!(api(&serve, "POST", "/api/v1/notifications/api-hook/test").1["ok"], true);
    assert_eq!(endpoint.received()[0].header("x-token"), Some("hdr-s3cr3t"));
    let (status, changed) = send(
        &serve,
        "PUT",
        "/api/v1/notifications/api-hook",
        &serde_json::json!({ "kind": "webhook", "format": "datadog", "events": ["flow_drained"] }),
    );
    assert_eq!((status, changed["format"].as_str()), (200, Some("datadog")), "{changed}");
    assert_eq!(api(&serve, "POST", "/api/v1/notifications/api-hook/test").1["ok"], true);
    let second = &endpoint.received()[1];
    assert_eq!(
        (second.path.as_str(), second.header("x-token"), second.body["source_type_name"].as_str()),
        ("/hooks/api-s3cr3t", Some("hdr-s3cr3t"), Some("leannodes"))
    );

    // An API route is live: a drain reaches it.
    assert_eq!(http_request(serve.proxy, "GET", "/", &[("host", "shop.test")], None).expect("shop").status, 200);
    assert_eq!(api(&serve, "POST", "/api/v1/flows/shop/drain").0, 200);
    assert_eventually!(endpoint.received().iter().any(|r| r.body["title"] == "shop was drained"), "drained: {:?}", endpoint.received());

    // Secrets are values, never references the server would resolve; file routes are read-only here.
    for bad in ["file:/etc/passwd", "env:HOME", "ftp://example.com/x"] {
        let (status, refused) =
            send(&serve, "POST", "/api/v1/notifications", &serde_json::json!({ "name": "bad", "kind": "slack", "url": bad }));
        assert_eq!((status, refused["error"].as_str()), (422, Some("invalid_route")), "{bad}: {refused}");
        assert!(refused["details"]["fields"][0]["path"] == "/url" && !refused.to_string().contains(bad), "{refused}");
    }
    let (status, pd) = send(
        &serve,
        "POST",
        "/api/v1/notifications",
        &serde_json::json!({ "name": "pd", "kind": "webhook", "format": "pagerduty", "url": "https://events.pagerduty.com/v2/enqueue" }),
    );
    assert_eq!((status, pd["details"]["fields"][0]["path"].as_str()), (422, Some("/routing_key")), "{pd}");
    for (method, path) in
        [("POST", "/api/v1/notifications"), ("PUT", "/api/v1/notifications/from-file"), ("DELETE", "/api/v1/notifications/from-file")]
    {
        let (status, refused) =
            send(&serve, method, path, &serde_json::json!({ "name": "from-file", "kind": "webhook", "url": "https://x.example.com" }));
        assert_eq!((status, refused["error"].as_str()), (409, Some("route_in_file")), "{method} {path}: {refused}");
    }

    // A restart reads it back from the store, secrets and all.
    let config = serve.config.clone();
    drop(serve);
    let text = std::fs::read_to_string(&config).expect("config");
    let body = text.split_once("\n[[flow]]").map(|(_, rest)| format!("\n[[flow]]{rest}")).expect("flows");
    let serve = Serve::start(BIN, dir.path(), "", &body);
    assert_eq!(route(&serve, "api-hook")["source"], "api");
    assert_eq!(api(&serve, "POST", "/api/v1/notifications/api-hook/test").1["ok"], true);
    assert_eq!(endpoint.received().last().and_then(|r| r.header("x-token")), Some("hdr-s3cr3t"));

    assert_eq!(api(&serve, "DELETE", "/api/v1/notifications/api-hook").0, 204);
    assert_eq!(route(&serve, "api-hook"), Value::Null);
    assert_eq!(api(&serve, "POST", "/api/v1/notifications/api-hook/test").0, 404);
    let (_, audit) = api(&serve, "GET", "/api/v1/audit?target=notification/api-hook");
    let actions: Vec<&str> = audit["items"].as_array().into_iter().flatten().filter_map(|i| i["action"].as_str()).collect();
    for action in ["notification.create", "notification.update", "notification.delete", "notification.test"] {
        assert!(actions.contains(&action), "{action} audited: {actions:?}");
    }
    let (_, list) = api(&serve, "GET", "/api/v1/notifications");
    for (what, text) in [("the audit log", audit.to_string()), ("the routes", list.to_string()), ("the server log", serve.log())] {
        for secret in ["api-s3cr3t", "hdr-s3cr3t"] {
            assert!(!text.contains(secret), "{secret} shows in {what}");
        }
    }
}
