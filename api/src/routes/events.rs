//! Live execution events as Server-Sent Events, only of flows the caller may read.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use leannodes_control::Controller;
use utoipa_axum::routes;

use super::Registrar;
use crate::authz::{Permission, Rule};
use crate::extract::Authed;

pub(super) fn routes(r: Registrar) -> Registrar {
    r.add(Rule::Authenticated, routes!(events))
}

/// Execution events (`execution_started`, `node_started`, `node_ready`, `node_failed`,
/// `execution_finished`) of the flows the caller may read, as they happen.
#[utoipa::path(get, path = "/api/v1/events", tag = "flows", responses((status = 200, description = "An event stream", content_type = "text/event-stream", body = String)))]
async fn events(
    Authed(principal, _): Authed,
    State(controller): State<Arc<Controller>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = tokio_stream::wrappers::BroadcastStream::new(controller.events().subscribe()).filter_map(move |event| {
        let principal = principal.clone();
        async move {
            let event = event.ok()?;
            if !principal.can_on(Permission::FlowsRead, event.flow()) {
                return None;
            }
            let kind = serde_json::to_value(&event).ok()?.get("type")?.as_str()?.to_string();
            Some(Ok(Event::default().event(kind).json_data(&event).ok()?))
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
