//! The answers the proxy writes itself (everything that is not the backend's response): JSON errors,
//! the warm-up page, gRPC trailers-only UNAVAILABLE, and the live status JSON.

use bytes::Bytes;
use leannodes_config::PublicStatus;
use leannodes_control::{FlowHandle, FlowStatus};
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::protocols::http::server::Session as HttpSession;
use pingora::proxy::Session;
use serde::Serialize;
use serde_json::json;

/// The warm-up page template (placeholders `{{FLOW}}`, `{{FLOW_JSON}}`, `{{STATUS_JSON}}`, `{{PREFIX}}`).
const WARMUP_TEMPLATE: &str = include_str!("../assets/warmup.html");

/// The reserved prefix for live status on every proxied host.
pub const STATUS_PREFIX: &str = "/.well-known/leannodes";

/// An answer LeanNodes gives itself instead of the backend's (every front door renders the same one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Further headers (`Retry-After`, `grpc-status`, …); `Cache-Control: no-store` always goes with it.
    pub headers: Vec<(&'static str, String)>,
    /// Body (empty for gRPC's trailers-only answer).
    pub body: Bytes,
    /// gRPC trailers-only (`grpc-status` in the headers).
    pub grpc: bool,
}

impl Reply {
    /// The value of one of its headers.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The reply for a callout (forward-auth, ext_authz), where `200` means "allow": a gRPC answer keeps
    /// its `grpc-status` headers but becomes `503`, which gateways pass on and gRPC clients read as
    /// UNAVAILABLE.
    pub fn for_callout(mut self) -> Reply {
        if self.grpc {
            self.status = 503;
        }
        self
    }
}

/// What kind of client asked, which decides the shape of answers and the hold budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// `GET` with `Accept: text/html`: gets the warm-up page at `fast_hold`.
    Browser,
    /// `content-type: application/grpc*`: gets trailers-only `grpc-status: 14`.
    Grpc,
    /// Anything else: JSON, waits up to `hold_timeout`.
    Api,
}

impl Client {
    /// Classifies a request.
    pub fn of(req: &pingora::http::RequestHeader) -> Client {
        let header = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
        Client::classify(req.method.as_str(), header("accept"), header("content-type"))
    }

    /// Classifies a request from its method, `Accept` and `Content-Type`.
    pub fn classify(method: &str, accept: &str, content_type: &str) -> Client {
        if content_type.starts_with("application/grpc") {
            Client::Grpc
        } else if method.eq_ignore_ascii_case("GET") && accept.contains("text/html") {
            Client::Browser
        } else {
            Client::Api
        }
    }
}

/// What anyone on the internet may see of a flow's status (`[server] public_status`): progress keeps
/// node names and states and drops probe details and failure messages (which can name internal
/// addresses); off keeps only the flow's state. The reason label of a failure (`exited`, `timeout`, …)
/// stays: it names no address.
pub fn public_view(status: &FlowStatus, level: PublicStatus) -> FlowStatus {
    let mut shown = status.clone();
    if level == PublicStatus::Detailed {
        return shown;
    }
    shown.execution = None;
    for node in &mut shown.nodes {
        node.detail = None;
    }
    if level == PublicStatus::Off {
        shown.nodes.clear();
    }
    if let Some(f) = &mut shown.failure {
        f.message =
            if level == PublicStatus::Off { "the flow failed to wake".into() } else { format!("node `{}` failed ({})", f.node, f.reason) };
        if level == PublicStatus::Off {
            f.node.clear();
        }
    }
    shown
}

/// The status the warm-up page and the status endpoints show.
#[derive(Debug, Serialize)]
pub(crate) struct LiveStatus<'a> {
    flow: &'a str,
    #[serde(flatten)]
    status: &'a FlowStatus,
    retry_in_ms: Option<u64>,
    elapsed_ms: u64,
}

impl<'a> LiveStatus<'a> {
    /// Status of `flow` after waiting `elapsed_ms`.
    pub(crate) fn new(flow: &'a FlowHandle, status: &'a FlowStatus, elapsed_ms: u64) -> LiveStatus<'a> {
        let retry_in_ms = status
            .retry_at
            .and_then(|at| at.checked_duration_since(tokio::time::Instant::now()))
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        LiveStatus { flow: flow.name(), status, retry_in_ms, elapsed_ms }
    }

    /// As JSON text.
    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }
}

/// Writes a complete response with these extra headers.
pub(crate) async fn respond(session: &mut Session, status: u16, content_type: &str, headers: &[(&str, String)], body: Bytes) -> Result<()> {
    let mut h = ResponseHeader::build(status, Some(4 + headers.len()))?;
    h.insert_header("content-type", content_type)?;
    h.insert_header("content-length", body.len().to_string())?;
    h.insert_header("cache-control", "no-store")?;
    for (name, value) in headers {
        h.insert_header(name.to_string(), value.as_str())?;
    }
    let head_only = session.req_header().method == http::Method::HEAD;
    session.write_response_header(Box::new(h), head_only).await?;
    if !head_only {
        session.write_response_body(Some(body), true).await?;
    }
    Ok(())
}

/// Writes `reply` to the client.
pub(crate) async fn write(session: &mut Session, reply: &Reply) -> Result<()> {
    if !reply.grpc {
        return respond(session, reply.status, reply.content_type, &reply.headers, reply.body.clone()).await;
    }
    let mut h = ResponseHeader::build(reply.status, Some(1 + reply.headers.len()))?;
    h.insert_header("content-type", reply.content_type)?;
    for (name, value) in &reply.headers {
        h.insert_header(name.to_string(), value.as_str())?;
    }
    match session.as_downstream_mut() {
        // Trailers-only: one HEADERS frame carrying END_STREAM.
        HttpSession::H2(h2) => h2.write_response_header(Box::new(h), true),
        _ => {
            h.insert_header("content-length", "0")?;
            session.write_response_header(Box::new(h), true).await?;
            session.write_response_body(None, true).await
        }
    }
}

/// A JSON error answer: `{"error": code, "flow": …, "message": …, …extra}`.
pub fn json_reply(status: u16, code: &str, flow: Option<&str>, message: &str, retry_after: Option<u64>, extra: serde_json::Value) -> Reply {
    let mut body = json!({ "error": code, "flow": flow, "message": message });
    if let (Some(map), serde_json::Value::Object(more)) = (body.as_object_mut(), extra) {
        map.extend(more);
    }
    let headers = retry_after.map(|s| ("retry-after", s.to_string())).into_iter().collect();
    Reply { status, content_type: "application/json", headers, body: Bytes::from(body.to_string()), grpc: false }
}

/// Writes a JSON error answer (see [`json_reply`]).
pub(crate) async fn json_error(
    session: &mut Session,
    status: u16,
    code: &str,
    flow: Option<&str>,
    message: &str,
    retry_after: Option<u64>,
    extra: serde_json::Value,
) -> Result<()> {
    write(session, &json_reply(status, code, flow, message, retry_after, extra)).await
}

/// The warm-up page (503, `Retry-After`, `Cache-Control: no-store`).
pub(crate) fn warmup_reply(flow: &FlowHandle, status: &FlowStatus, elapsed_ms: u64, retry_after: u64) -> Reply {
    // `<` only occurs inside JSON strings, where `\u003c` means the same and cannot close the script.
    let script_safe = |json: String| json.replace('<', "\\u003c");
    let page = render_template(
        WARMUP_TEMPLATE,
        &[
            ("FLOW_JSON", script_safe(serde_json::to_string(flow.name()).unwrap_or_default())),
            ("STATUS_JSON", script_safe(LiveStatus::new(flow, status, elapsed_ms).to_json())),
            ("PREFIX", STATUS_PREFIX.to_string()),
            ("FLOW", html_escape(flow.name())),
        ],
    );
    Reply {
        status: 503,
        content_type: "text/html; charset=utf-8",
        headers: vec![("retry-after", retry_after.to_string())],
        body: Bytes::from(page),
        grpc: false,
    }
}

/// Replaces `{{NAME}}` placeholders in one pass, so substituted text is never expanded again.
fn render_template(template: &str, values: &[(&str, String)]) -> String {
    let mut out = String::with_capacity(template.len() + 1024);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}").and_then(|end| values.iter().find(|(name, _)| *name == &after[..end]).map(|(_, v)| (end, v))) {
            Some((end, value)) => {
                out.push_str(value);
                rest = &after[end + 2..];
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// gRPC's answer when the backend cannot be reached in time: HTTP 200, trailers-only, `grpc-status: 14`.
pub(crate) fn grpc_reply(message: &str) -> Reply {
    Reply {
        status: 200,
        content_type: "application/grpc",
        headers: vec![("grpc-status", "14".into()), ("grpc-message", percent_encode(message))],
        body: Bytes::new(),
        grpc: true,
    }
}

/// gRPC's message encoding (percent-encoding of non-printable ASCII and `%`).
fn percent_encode(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for b in message.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Escapes text for HTML.
pub(crate) fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// The nodes of a status as JSON, for error bodies.
pub(crate) fn nodes_json(status: &FlowStatus) -> serde_json::Value {
    serde_json::to_value(&status.nodes).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_messages_are_percent_encoded() {
        assert_eq!(percent_encode("cold start: 50% done\n"), "cold start: 50%25 done%0A");
    }

    #[test]
    fn templates_render_in_one_pass() {
        let out = render_template("a {{X}} b {{Y}} {{Z}}", &[("X", "{{Y}}".into()), ("Y", "y".into())]);
        assert_eq!(out, "a {{Y}} b y {{Z}}");
    }

    #[test]
    fn public_views_drop_details_but_keep_progress() {
        use leannodes_control::{FlowFailure, FlowState, NodeState, NodeStatus};
        let status = FlowStatus {
            state: FlowState::Failed,
            nodes: vec![NodeStatus { name: "db".into(), state: NodeState::Failed, detail: Some("tcp 10.1.2.3:5432: refused".into()) }],
            execution: Some("e1".into()),
            failure: Some(FlowFailure {
                node: "db".into(),
                reason: "timeout".into(),
                message: "db at 10.1.2.3:5432 never answered".into(),
            }),
            retry_at: None,
            removed: false,
            last_wake_ms: None,
        };
        assert_eq!(public_view(&status, PublicStatus::Detailed), status);
        let progress = public_view(&status, PublicStatus::Progress);
        assert_eq!(
            (progress.nodes[0].name.as_str(), progress.nodes[0].state, progress.nodes[0].detail.as_deref()),
            ("db", NodeState::Failed, None)
        );
        assert_eq!(progress.failure.as_ref().map(|f| f.message.as_str()), Some("node `db` failed (timeout)"));
        assert_eq!(progress.execution, None);
        let off = public_view(&status, PublicStatus::Off);
        assert!(off.nodes.is_empty() && off.failure.as_ref().is_some_and(|f| f.node.is_empty() && !f.message.contains("db")));
        assert!(!serde_json::to_string(&off).unwrap_or_default().contains("10.1.2.3"));
        assert!(!serde_json::to_string(&progress).unwrap_or_default().contains("10.1.2.3"));
    }

    #[test]
    fn template_has_every_placeholder() {
        for p in ["{{FLOW}}", "{{FLOW_JSON}}", "{{STATUS_JSON}}", "{{PREFIX}}"] {
            assert!(WARMUP_TEMPLATE.contains(p), "{p}");
        }
        assert!(!WARMUP_TEMPLATE.contains("http://") && !WARMUP_TEMPLATE.contains("https://"), "no external assets");
    }
}
