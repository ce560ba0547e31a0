//! Trace export: the controller's and the proxy's finished spans, batched and POSTed to an OpenTelemetry
//! collector as OTLP over HTTP with the JSON encoding (`[server.tracing] otlp`). Off the request path: a
//! full batch or a collector that does not answer drops spans (with a log line), never blocks anything.

use std::time::Duration;

use leannodes_config::Tracing;
use leannodes_control::trace::{SpanData, hex};
use serde_json::{Value, json};
use tokio::sync::broadcast;

/// Spans per request to the collector.
const BATCH: usize = 512;
/// How long a batch waits for more spans.
const LINGER: Duration = Duration::from_millis(200);
/// Attempts per batch.
const ATTEMPTS: u32 = 3;

fn attribute(key: &str, value: &str) -> Value {
    json!({ "key": key, "value": { "stringValue": value } })
}

fn span(s: &SpanData) -> Value {
    let mut out = json!({
        "traceId": hex(&s.trace_id),
        "spanId": hex(&s.span_id),
        "name": s.name,
        // SPAN_KIND_SERVER = 2, SPAN_KIND_INTERNAL = 1.
        "kind": if s.server { 2 } else { 1 },
        "startTimeUnixNano": s.start_ns.to_string(),
        "endTimeUnixNano": s.end_ns.max(s.start_ns).to_string(),
        "attributes": s.attributes.iter().map(|(k, v)| attribute(k, v)).collect::<Vec<_>>(),
        "links": s.links.iter().map(|(t, id)| json!({ "traceId": hex(t), "spanId": hex(id) })).collect::<Vec<_>>(),
        // STATUS_CODE_ERROR = 2, STATUS_CODE_UNSET = 0.
        "status": match &s.error { Some(message) => json!({ "code": 2, "message": message }), None => json!({ "code": 0 }) },
    });
    if let Some(parent) = &s.parent {
        out["parentSpanId"] = Value::from(hex(parent));
    }
    out
}

/// The OTLP/JSON `ExportTraceServiceRequest` of `spans`.
pub fn export_request(service: &str, spans: &[SpanData]) -> Value {
    json!({ "resourceSpans": [{
        "resource": { "attributes": [attribute("service.name", service), attribute("service.version", env!("CARGO_PKG_VERSION"))] },
        "scopeSpans": [{ "scope": { "name": "leannodes", "version": env!("CARGO_PKG_VERSION") }, "spans": spans.iter().map(span).collect::<Vec<_>>() }],
    }] })
}

/// Exports what `spans` carries to `config`'s collector until the bus closes; call within a runtime.
pub fn start_exporter(config: Tracing, mut spans: broadcast::Receiver<SpanData>) {
    let client = reqwest::Client::builder().user_agent(concat!("LeanNodes/", env!("CARGO_PKG_VERSION"))).build().unwrap_or_default();
    tokio::spawn(async move {
        loop {
            let mut batch = Vec::new();
            match spans.recv().await {
                Ok(s) => batch.push(s),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(dropped = n, "trace export fell behind; spans dropped");
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
            let linger = tokio::time::sleep(LINGER);
            tokio::pin!(linger);
            while batch.len() < BATCH {
                tokio::select! {
                    () = &mut linger => break,
                    next = spans.recv() => match next {
                        Ok(s) => batch.push(s),
                        Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => break,
                    },
                }
            }
            send(&client, &config, &batch).await;
        }
    });
}

async fn send(client: &reqwest::Client, config: &Tracing, batch: &[SpanData]) {
    let body = export_request(&config.service_name, batch);
    let mut wait = Duration::from_secs(1);
    for attempt in 1..=ATTEMPTS {
        let mut request = client.post(&config.endpoint).timeout(Duration::from_secs(10)).json(&body);
        for (name, value) in &config.headers {
            request = request.header(name, value.expose());
        }
        let error = match request.send().await {
            Ok(r) if r.status().is_success() => return,
            Ok(r) => format!("HTTP {}", r.status().as_u16()),
            Err(e) => e.without_url().to_string(),
        };
        if attempt == ATTEMPTS {
            tracing::warn!(spans = batch.len(), "cannot export spans to the collector: {error}");
            return;
        }
        tokio::time::sleep(wait).await;
        wait *= 2;
    }
}
