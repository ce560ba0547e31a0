use leannodes_config::file::{NotificationKind, WebhookFormat};
use leannodes_config::{NotificationRoute, Secret};
use leannodes_control::{Notice, NoticeKind};

use super::*;

fn route(kind: NotificationKind, format: WebhookFormat) -> NotificationRoute {
    NotificationRoute {
        name: "r".into(),
        kind,
        format,
        url: Secret::new("https://hooks.example.com/T000/secret"),
        headers: vec![],
        routing_key: Some(Secret::new("R0UT1NGKEY")),
        events: vec![],
        flows: vec![],
    }
}

fn failed() -> Notice {
    let mut n =
        Notice::new(NoticeKind::WakeFailed, Some("shop"), "shop failed to wake".into(), "node db: exited with status 3".into(), "r1");
    n.at_ms = 1_800_000_000_000;
    n
}

fn hook(format: WebhookFormat, notice: &Notice) -> Value {
    payload(&route(NotificationKind::Webhook, format), notice, Some("https://ln.example.com/flows/shop"))
}

#[test]
fn slack_is_block_kit_with_a_fallback_text() {
    let body = payload(&route(NotificationKind::Slack, WebhookFormat::Generic), &failed(), Some("https://ln.example.com/flows/shop"));
    assert_eq!(body["blocks"][0]["type"], "header");
    assert_eq!(body["blocks"][0]["text"]["text"], "shop failed to wake");
    assert_eq!(body["blocks"][1]["text"]["type"], "mrkdwn");
    assert_eq!(body["blocks"][1]["accessory"]["url"], "https://ln.example.com/flows/shop");
    assert!(body["blocks"][2]["elements"][0]["text"].as_str().is_some_and(|t| t.contains("`wake_failed`") && t.contains("flow *shop*")));
    assert!(body["text"].as_str().is_some_and(|t| t.starts_with(":red_circle: shop failed to wake")));
}

#[test]
fn teams_is_an_adaptive_card_in_a_message() {
    let body = payload(&route(NotificationKind::Teams, WebhookFormat::Generic), &failed(), None);
    assert_eq!(body["type"], "message");
    let attachment = &body["attachments"][0];
    assert_eq!(attachment["contentType"], "application/vnd.microsoft.card.adaptive");
    assert_eq!(attachment["content"]["type"], "AdaptiveCard");
    assert_eq!(attachment["content"]["body"][0]["color"], "Attention");
    assert_eq!(attachment["content"]["body"][2]["facts"][1], json!({ "title": "Flow", "value": "shop" }));
    assert!(attachment["content"].get("actions").is_none(), "no link without a public URL");
}

#[test]
fn incident_tools_trigger_and_resolve_by_key() {
    let body = hook(WebhookFormat::Pagerduty, &failed());
    assert_eq!((body["routing_key"].as_str(), body["event_action"].as_str()), (Some("R0UT1NGKEY"), Some("trigger")));
    assert_eq!((body["dedup_key"].as_str(), body["payload"]["severity"].as_str()), (Some("leannodes/shop/wake"), Some("critical")));
    assert_eq!(body["payload"]["timestamp"], "2027-01-15T08:00:00Z");
    let mut woke = Notice::new(NoticeKind::WakeSucceeded, Some("shop"), "shop is awake".into(), "ready".into(), "r1");
    woke.at_ms = 1_800_000_000_000;
    assert_eq!(hook(WebhookFormat::Pagerduty, &woke)["event_action"], "resolve");
    assert_eq!(hook(WebhookFormat::GrafanaOncall, &woke)["state"], "ok");
    assert_eq!(hook(WebhookFormat::GrafanaOncall, &failed())["alert_uid"], "leannodes/shop/wake");
    for format in [WebhookFormat::Opsgenie, WebhookFormat::JiraServiceManagement] {
        let body = hook(format, &failed());
        assert_eq!(
            (body["alias"].as_str(), body["priority"].as_str(), body["entity"].as_str()),
            (Some("leannodes/shop/wake"), Some("P1"), Some("shop"))
        );
    }
    let record = &hook(WebhookFormat::Servicenow, &failed())["records"][0];
    assert_eq!((record["severity"].as_str(), record["time_of_event"].as_str()), (Some("1"), Some("2027-01-15 08:00:00")));
    assert_eq!(hook(WebhookFormat::Servicenow, &woke)["records"][0]["severity"], "0");
}

#[test]
fn chat_and_log_platforms_get_their_shapes() {
    let n = failed();
    assert!(hook(WebhookFormat::GoogleChat, &n)["text"].as_str().is_some_and(|t| t.starts_with("*shop failed to wake*\n")));
    assert!(hook(WebhookFormat::Webex, &n)["markdown"].as_str().is_some_and(|t| t.starts_with("**shop failed to wake**")));
    assert_eq!(hook(WebhookFormat::Mattermost, &n)["username"], "LeanNodes");
    assert_eq!(hook(WebhookFormat::RocketChat, &n)["alias"], "LeanNodes");
    assert!(hook(WebhookFormat::Zulip, &n)["text"].is_string());
    let dd = hook(WebhookFormat::Datadog, &n);
    assert_eq!((dd["alert_type"].as_str(), dd["date_happened"].as_i64()), (Some("error"), Some(1_800_000_000)));
    assert!(dd["tags"].as_array().is_some_and(|t| t.contains(&json!("flow:shop"))));
    let hec = hook(WebhookFormat::SplunkHec, &n);
    assert_eq!((hec["sourcetype"].as_str(), hec["event"]["event"].as_str()), (Some("leannodes:notice"), Some("wake_failed")));
    assert_eq!(hook(WebhookFormat::NewRelic, &n)[0]["eventType"], "LeanNodesNotice");
    let doc = hook(WebhookFormat::Elastic, &n);
    assert_eq!((doc["@timestamp"].as_str(), doc["event"]["action"].as_str()), (Some("2027-01-15T08:00:00Z"), Some("wake_failed")));
    for format in [
        WebhookFormat::Generic,
        WebhookFormat::SumoLogic,
        WebhookFormat::N8n,
        WebhookFormat::Zapier,
        WebhookFormat::Workato,
        WebhookFormat::Mulesoft,
    ] {
        let body = hook(format, &n);
        assert_eq!(
            (body["event"].as_str(), body["flow"].as_str(), body["severity"].as_str()),
            (Some("wake_failed"), Some("shop"), Some("critical"))
        );
        assert_eq!(body["link"], "https://ln.example.com/flows/shop");
    }
}

#[test]
fn no_payload_carries_a_secret_but_pagerdutys_own_key() {
    for format in
        [WebhookFormat::Generic, WebhookFormat::Opsgenie, WebhookFormat::Datadog, WebhookFormat::SplunkHec, WebhookFormat::Elastic]
    {
        let text = hook(format, &failed()).to_string();
        assert!(!text.contains("secret") && !text.contains("R0UT1NGKEY"), "{format:?}: {text}");
    }
}
