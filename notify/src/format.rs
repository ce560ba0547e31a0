//! The payload of a notice for each kind of route: Slack (Block Kit), Teams (an Adaptive Card in a
//! message), and for webhooks LeanNodes' generic JSON or the documented shape of each platform.

use std::time::{Duration, UNIX_EPOCH};

use leannodes_config::NotificationRoute;
use leannodes_config::file::{NotificationKind, WebhookFormat};
use leannodes_control::{Notice, NoticeKind, Severity};
use serde_json::{Value, json};

#[cfg(test)]
mod tests;

/// What a payload may link to: the flow's page in the dashboard.
pub(crate) fn link(base_url: &str, notice: &Notice) -> Option<String> {
    let base = base_url.trim_end_matches('/');
    (!base.is_empty()).then(|| match &notice.flow {
        Some(flow) => format!("{base}/flows/{flow}"),
        None => format!("{base}/"),
    })
}

fn rfc3339(ms: i64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))).to_string()
}

#[allow(clippy::cast_precision_loss)]
fn seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// At most `max` characters (platforms cap titles).
fn cap(text: &str, max: usize) -> String {
    if text.chars().count() <= max { text.to_string() } else { text.chars().take(max.saturating_sub(1)).collect::<String>() + "…" }
}

/// LeanNodes' own JSON: the shape of `webhook` routes with `format = "generic"` (and n8n, Zapier,
/// Workato, MuleSoft, Sumo Logic).
pub fn generic(notice: &Notice, link: Option<&str>) -> Value {
    json!({
        "source": "leannodes",
        "event": notice.kind.as_str(),
        "severity": notice.severity().as_str(),
        "flow": notice.flow,
        "title": notice.title,
        "detail": notice.detail,
        "at": rfc3339(notice.at_ms),
        "at_ms": notice.at_ms,
        "replica": notice.replica,
        "key": notice.key,
        "link": link,
    })
}

fn slack(notice: &Notice, link: Option<&str>) -> Value {
    let mark = match notice.severity() {
        Severity::Critical => ":red_circle:",
        Severity::Warning => ":large_yellow_circle:",
        Severity::Info => ":large_blue_circle:",
    };
    let mut section = json!({ "type": "section", "text": { "type": "mrkdwn", "text": notice.detail } });
    if let Some(url) = link {
        section["accessory"] = json!({ "type": "button", "text": { "type": "plain_text", "text": "Open in LeanNodes" }, "url": url });
    }
    let secs = notice.at_ms / 1000;
    let mut context = format!("`{}`", notice.kind.as_str());
    if let Some(flow) = &notice.flow {
        context.push_str(&format!(" · flow *{flow}*"));
    }
    context.push_str(&format!(
        " · replica {} · <!date^{secs}^{{date_short_pretty}} {{time_secs}}|{}>",
        notice.replica,
        rfc3339(notice.at_ms)
    ));
    json!({
        "text": format!("{mark} {}: {}", notice.title, notice.detail),
        "blocks": [
            { "type": "header", "text": { "type": "plain_text", "text": cap(&notice.title, 150), "emoji": true } },
            section,
            { "type": "context", "elements": [{ "type": "mrkdwn", "text": context }] },
        ],
    })
}

fn teams(notice: &Notice, link: Option<&str>) -> Value {
    let color = match notice.severity() {
        Severity::Critical => "Attention",
        Severity::Warning => "Warning",
        Severity::Info => "Default",
    };
    let mut facts = vec![json!({ "title": "Event", "value": notice.kind.as_str() })];
    if let Some(flow) = &notice.flow {
        facts.push(json!({ "title": "Flow", "value": flow }));
    }
    facts.push(json!({ "title": "Replica", "value": notice.replica }));
    facts.push(json!({ "title": "At", "value": rfc3339(notice.at_ms) }));
    let mut card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            { "type": "TextBlock", "size": "Medium", "weight": "Bolder", "text": notice.title, "wrap": true, "color": color },
            { "type": "TextBlock", "text": notice.detail, "wrap": true },
            { "type": "FactSet", "facts": facts },
        ],
    });
    if let Some(url) = link {
        card["actions"] = json!([{ "type": "Action.OpenUrl", "title": "Open in LeanNodes", "url": url }]);
    }
    json!({
        "type": "message",
        "attachments": [{ "contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": null, "content": card }],
    })
}

/// Whether the notice ends the condition its key names (a wake that succeeded after failing).
fn resolves(notice: &Notice) -> bool {
    notice.kind == NoticeKind::WakeSucceeded
}

/// Opsgenie's alert, which Jira Service Management's alerts API also takes.
fn opsgenie(notice: &Notice) -> Value {
    let priority = match notice.severity() {
        Severity::Critical => "P1",
        Severity::Warning => "P3",
        Severity::Info => "P5",
    };
    json!({
        "message": cap(&notice.title, 130),
        "alias": notice.key,
        "description": notice.detail,
        "priority": priority,
        "source": "LeanNodes",
        "entity": notice.flow,
        "tags": ["leannodes", notice.kind.as_str()],
        "details": { "event": notice.kind.as_str(), "flow": notice.flow, "replica": notice.replica, "at": rfc3339(notice.at_ms) },
    })
}

/// The body to POST for `notice` on `route`; `routing_key` is PagerDuty's.
pub fn payload(route: &NotificationRoute, notice: &Notice, link: Option<&str>) -> Value {
    match route.kind {
        NotificationKind::Slack => return slack(notice, link),
        NotificationKind::Teams => return teams(notice, link),
        NotificationKind::Webhook => {}
    }
    let line = format!("{}\n{}", notice.title, notice.detail);
    let flow = notice.flow.as_deref().unwrap_or("leannodes");
    match route.format {
        WebhookFormat::Generic
        | WebhookFormat::SumoLogic
        | WebhookFormat::N8n
        | WebhookFormat::Zapier
        | WebhookFormat::Workato
        | WebhookFormat::Mulesoft => generic(notice, link),
        WebhookFormat::GoogleChat => {
            json!({ "text": format!("*{}*\n{}{}", notice.title, notice.detail, link.map(|l| format!("\n<{l}|Open in LeanNodes>")).unwrap_or_default()) })
        }
        WebhookFormat::Webex => {
            json!({ "markdown": format!("**{}**\n\n{}{}", notice.title, notice.detail, link.map(|l| format!("\n\n[Open in LeanNodes]({l})")).unwrap_or_default()) })
        }
        WebhookFormat::Mattermost => json!({ "username": "LeanNodes", "text": format!("#### {}\n{}", notice.title, notice.detail) }),
        WebhookFormat::RocketChat => json!({ "alias": "LeanNodes", "text": format!("*{}*\n{}", notice.title, notice.detail) }),
        WebhookFormat::Zulip => json!({ "text": format!("**{}**\n{}", notice.title, notice.detail) }),
        WebhookFormat::Pagerduty => {
            let key = route.routing_key.as_ref().map(|k| k.expose().to_string()).unwrap_or_default();
            let severity = match notice.severity() {
                Severity::Critical => "critical",
                Severity::Warning => "warning",
                Severity::Info => "info",
            };
            let mut body = json!({
                "routing_key": key,
                "event_action": if resolves(notice) { "resolve" } else { "trigger" },
                "dedup_key": notice.key,
                "payload": {
                    "summary": cap(&format!("{}: {}", notice.title, notice.detail), 1024),
                    "source": format!("leannodes/{}", notice.replica),
                    "severity": severity,
                    "timestamp": rfc3339(notice.at_ms),
                    "component": flow,
                    "group": "leannodes",
                    "class": notice.kind.as_str(),
                    "custom_details": generic(notice, link),
                },
            });
            if let Some(l) = link {
                body["links"] = json!([{ "href": l, "text": "Open in LeanNodes" }]);
            }
            body
        }
        WebhookFormat::Opsgenie | WebhookFormat::JiraServiceManagement => opsgenie(notice),
        WebhookFormat::GrafanaOncall => json!({
            "alert_uid": notice.key,
            "title": notice.title,
            "message": notice.detail,
            "state": if resolves(notice) { "ok" } else { "alerting" },
            "link_to_upstream_details": link,
        }),
        WebhookFormat::Servicenow => {
            // ServiceNow severities: 0 clear, 1 critical, 4 warning, 5 info.
            let severity = if resolves(notice) {
                "0"
            } else {
                match notice.severity() {
                    Severity::Critical => "1",
                    Severity::Warning => "4",
                    Severity::Info => "5",
                }
            };
            let time = rfc3339(notice.at_ms).replace('T', " ").trim_end_matches('Z').to_string();
            json!({ "records": [{
                "source": "LeanNodes",
                "event_class": "leannodes",
                "node": flow,
                "resource": flow,
                "type": notice.kind.as_str(),
                "severity": severity,
                "description": line,
                "message_key": notice.key,
                "time_of_event": time,
                "additional_info": generic(notice, link).to_string(),
            }] })
        }
        WebhookFormat::Datadog => {
            let alert_type = if resolves(notice) {
                "success"
            } else {
                match notice.severity() {
                    Severity::Critical => "error",
                    Severity::Warning => "warning",
                    Severity::Info => "info",
                }
            };
            let mut tags = vec!["source:leannodes".to_string(), format!("event:{}", notice.kind.as_str())];
            if let Some(f) = &notice.flow {
                tags.push(format!("flow:{f}"));
            }
            json!({
                "title": notice.title,
                "text": notice.detail,
                "alert_type": alert_type,
                "source_type_name": "leannodes",
                "aggregation_key": notice.key,
                "date_happened": notice.at_ms / 1000,
                "tags": tags,
            })
        }
        WebhookFormat::SplunkHec => json!({
            "time": seconds(notice.at_ms),
            "host": notice.replica,
            "source": "leannodes",
            "sourcetype": "leannodes:notice",
            "event": generic(notice, link),
        }),
        WebhookFormat::NewRelic => json!([{
            "eventType": "LeanNodesNotice",
            "event": notice.kind.as_str(),
            "severity": notice.severity().as_str(),
            "flow": notice.flow,
            "title": notice.title,
            "detail": notice.detail,
            "replica": notice.replica,
            "timestamp": notice.at_ms / 1000,
        }]),
        WebhookFormat::Elastic => {
            // ECS: event.severity is a number, lower is more severe.
            let severity = match notice.severity() {
                Severity::Critical => 2,
                Severity::Warning => 4,
                Severity::Info => 6,
            };
            json!({
                "@timestamp": rfc3339(notice.at_ms),
                "message": line,
                "event": { "kind": "event", "action": notice.kind.as_str(), "severity": severity, "dataset": "leannodes.notice" },
                "log": { "level": notice.severity().as_str() },
                "labels": { "flow": notice.flow, "replica": notice.replica, "key": notice.key },
                "service": { "name": "leannodes" },
                "url": { "full": link },
            })
        }
    }
}
