//! The HTTP side: URL parsing, CRUD, subresources, list and watch, `/sim/stats`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::resources::{self, Resource};
use crate::selector::Selector;
use crate::store::{ApiError, Store};

pub(crate) fn router(store: Arc<Store>) -> Router {
    Router::new()
        .route("/sim/stats", get(stats))
        .route("/version", get(|| async { axum::Json(json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0-kube-sim"})) }))
        .fallback(handle)
        .with_state(store)
}

async fn stats(State(store): State<Arc<Store>>) -> axum::Json<Value> {
    let stats = store.stats();
    let (scales, jobs): (HashMap<_, _>, HashMap<_, _>) = stats.into_iter().partition(|(k, _)| k.starts_with("scale:"));
    axum::Json(json!({
        "scale_requests": scales.into_iter().map(|(k, v)| (k.trim_start_matches("scale:").to_string(), v)).collect::<HashMap<_, _>>(),
        "jobs_created": jobs.get("jobs_created").copied().unwrap_or(0),
    }))
}

fn error(e: ApiError) -> Response {
    (StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), axum::Json(e.status())).into_response()
}

fn ok(code: StatusCode, value: Value) -> Response {
    (code, axum::Json(value)).into_response()
}

/// A parsed resource URL.
struct Target {
    resource: &'static Resource,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

fn parse(path: &str) -> Option<Target> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segments.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, plural, tail @ ..] => (Some(ns.to_string()), [&[*plural][..], tail].concat()),
        other => (None, other.to_vec()),
    };
    let resource = resources::find(group, version, rest.first()?)?;
    Some(Target { resource, namespace, name: rest.get(1).map(|s| s.to_string()), subresource: rest.get(2).map(|s| s.to_string()) })
}

async fn handle(
    State(store): State<Arc<Store>>,
    method: Method,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(target) = parse(uri.path()) else {
        return error(ApiError::new(404, "NotFound", format!("the server could not find the requested resource ({})", uri.path())));
    };
    let resource = target.resource;
    let namespace = target.namespace.clone().unwrap_or_default();
    let body_json =
        || serde_json::from_slice::<Value>(&body).map_err(|e| ApiError::new(400, "BadRequest", format!("invalid JSON body: {e}")));
    let result = match (&method, target.name.as_deref(), target.subresource.as_deref()) {
        (&Method::GET, None, _) => return list_or_watch(store, resource, target.namespace.as_deref(), &query).await,
        (&Method::GET, Some(name), None) => store.get(resource, &namespace, name).map(|o| (StatusCode::OK, o)),
        (&Method::GET, Some(name), Some("scale")) if resource.scale => {
            store.get(resource, &namespace, name).map(|o| (StatusCode::OK, scale_of(&o)))
        }
        (&Method::GET, Some(name), Some("status")) => store.get(resource, &namespace, name).map(|o| (StatusCode::OK, o)),
        (&Method::POST, None, None) => body_json().and_then(|o| store.create(resource, &namespace, o)).map(|o| (StatusCode::CREATED, o)),
        (&Method::PUT, Some(name), None) => {
            body_json().and_then(|o| store.replace(resource, &namespace, name, o, false)).map(|o| (StatusCode::OK, o))
        }
        (&Method::PUT, Some(name), Some("status")) => {
            body_json().and_then(|o| store.replace(resource, &namespace, name, o, true)).map(|o| (StatusCode::OK, o))
        }
        (&Method::PUT, Some(name), Some("scale")) if resource.scale => {
            body_json().and_then(|o| set_replicas(&store, resource, &namespace, name, &o["spec"]["replicas"]))
        }
        (&Method::PATCH, Some(name), sub) => {
            let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
            if content_type.starts_with("application/json-patch+json") {
                Err(ApiError::new(
                    415,
                    "UnsupportedMediaType",
                    "kube-sim supports merge, strategic-merge (as merge) and apply (as merge) patches",
                ))
            } else {
                match body_json() {
                    Err(e) => Err(e),
                    Ok(patch) => match sub {
                        Some("scale") if resource.scale => set_replicas(&store, resource, &namespace, name, &patch["spec"]["replicas"]),
                        Some("status") => store.patch(resource, &namespace, name, &patch, true).map(|o| (StatusCode::OK, o)),
                        None => match store.patch(resource, &namespace, name, &patch, false) {
                            // Server-side apply creates what does not exist.
                            Err(e) if e.code == 404 && content_type.starts_with("application/apply-patch") => {
                                let mut object = patch.clone();
                                object["metadata"]["name"] = json!(name);
                                store.create(resource, &namespace, object).map(|o| (StatusCode::CREATED, o))
                            }
                            other => other.map(|o| (StatusCode::OK, o)),
                        },
                        Some(other) => Err(ApiError::new(404, "NotFound", format!("no subresource {other}"))),
                    },
                }
            }
        }
        (&Method::DELETE, Some(name), None) => store.delete(resource, &namespace, name).map(|o| (StatusCode::OK, o)),
        _ => Err(ApiError::new(405, "MethodNotAllowed", format!("{method} is not supported on {}", uri.path()))),
    };
    match result {
        Ok((code, value)) => {
            if method == Method::POST && resource.plural == "jobs" {
                store.count("jobs_created");
            }
            ok(code, value)
        }
        Err(e) => error(e),
    }
}

/// The `autoscaling/v1` Scale view of a workload.
fn scale_of(object: &Value) -> Value {
    let selector = object["spec"]["selector"]["matchLabels"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default())).collect::<Vec<_>>().join(","))
        .unwrap_or_default();
    json!({
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": {"name": object["metadata"]["name"], "namespace": object["metadata"]["namespace"], "resourceVersion": object["metadata"]["resourceVersion"], "uid": object["metadata"]["uid"]},
        "spec": {"replicas": object["spec"]["replicas"].as_i64().unwrap_or(1)},
        "status": {"replicas": object["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector},
    })
}

fn set_replicas(
    store: &Store,
    resource: &Resource,
    namespace: &str,
    name: &str,
    replicas: &Value,
) -> Result<(StatusCode, Value), ApiError> {
    let replicas = replicas
        .as_i64()
        .filter(|r| *r >= 0)
        .ok_or_else(|| ApiError::new(422, "Invalid", "spec.replicas: must be a non-negative integer"))?;
    store.count(&format!("scale:{namespace}/{}/{name}", resource.kind.to_ascii_lowercase()));
    let object = store.patch(resource, namespace, name, &json!({"spec": {"replicas": replicas}}), false)?;
    Ok((StatusCode::OK, scale_of(&object)))
}

fn field_matches(object: &Value, field_selector: Option<&str>) -> bool {
    let Some(selector) = field_selector.filter(|s| !s.is_empty()) else { return true };
    selector.split(',').all(|part| match part.split_once('=') {
        Some(("metadata.name", v)) => object["metadata"]["name"] == v.trim_start_matches('='),
        Some(("metadata.namespace", v)) => object["metadata"]["namespace"] == v.trim_start_matches('='),
        _ => true,
    })
}

async fn list_or_watch(
    store: Arc<Store>,
    resource: &'static Resource,
    namespace: Option<&str>,
    query: &HashMap<String, String>,
) -> Response {
    let Some(selector) = Selector::parse(query.get("labelSelector").map_or("", String::as_str)) else {
        return error(ApiError::new(400, "BadRequest", "unable to parse labelSelector"));
    };
    let fields = query.get("fieldSelector").cloned();
    if query.get("watch").is_none_or(|w| w != "true" && w != "1") {
        let (items, rv) = store.list(resource, namespace, &selector);
        let items: Vec<Value> = items.into_iter().filter(|o| field_matches(o, fields.as_deref())).collect();
        return ok(
            StatusCode::OK,
            json!({"apiVersion": resource.api_version(), "kind": format!("{}List", resource.kind), "metadata": {"resourceVersion": rv.to_string()}, "items": items}),
        );
    }
    let since = query.get("resourceVersion").and_then(|v| v.parse::<u64>().ok()).unwrap_or_else(|| store.resource_version());
    let bookmarks = query.get("allowWatchBookmarks").is_some_and(|v| v == "true");
    let timeout = query.get("timeoutSeconds").and_then(|v| v.parse::<u64>().ok()).map_or(Duration::from_secs(300), Duration::from_secs);
    let namespace = namespace.map(str::to_string);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(256);
    let key = resource.key();
    tokio::spawn(async move {
        let line = |v: Value| Ok(Bytes::from(format!("{v}\n")));
        let (past, mut live) = match store.since(&key, since) {
            Ok(found) => found,
            Err(oldest) => {
                let status = ApiError::new(410, "Expired", format!("too old resource version: {since} ({oldest})")).status();
                let _ = tx.send(line(json!({"type": "ERROR", "object": status}))).await;
                return;
            }
        };
        let wanted = |o: &Value| {
            namespace.as_deref().is_none_or(|n| o["metadata"]["namespace"] == n)
                && selector.matches(o["metadata"].get("labels"))
                && field_matches(o, fields.as_deref())
        };
        let mut last = since;
        for event in past {
            last = event.rv;
            if wanted(&event.object) && tx.send(line(json!({"type": event.kind.as_str(), "object": event.object}))).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => return,
                _ = tick.tick() => {
                    if bookmarks {
                        let rv = store.resource_version().max(last);
                        let bookmark = json!({"type": "BOOKMARK", "object": {"apiVersion": resource.api_version(), "kind": resource.kind, "metadata": {"resourceVersion": rv.to_string()}}});
                        if tx.send(line(bookmark)).await.is_err() { return; }
                    }
                }
                event = live.recv() => match event {
                    Ok(event) if event.resource == key && event.rv > last => {
                        last = event.rv;
                        if wanted(&event.object) && tx.send(line(json!({"type": event.kind.as_str(), "object": event.object}))).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        let status = ApiError::new(410, "Expired", "watch fell behind; relist").status();
                        let _ = tx.send(line(json!({"type": "ERROR", "object": status}))).await;
                        return;
                    }
                    Err(_) => return,
                }
            }
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .unwrap_or_default()
}
