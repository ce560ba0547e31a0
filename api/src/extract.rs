//! Extractors that answer bad input with the API's error shape (axum's own rejections are plain text):
//! JSON bodies (content type, size limit, unknown fields, wrong types — each with the field's path),
//! query strings, path parameters, `If-Match`, the caller, and paging.

use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;
use utoipa::IntoParams;

use crate::auth::Caller;
use crate::authz::Principal;
use crate::error::ApiError;

/// Largest request body accepted.
pub(crate) const BODY_LIMIT: usize = 1024 * 1024;

/// A JSON request body.
#[derive(Debug, Clone)]
pub(crate) struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let json =
            req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).and_then(|v| v.split(';').next()).is_some_and(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
            });
        if !json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with `Content-Type: application/json`",
            ));
        }
        let bytes = axum::body::to_bytes(req.into_body(), BODY_LIMIT).await.map_err(|_| {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", format!("the body is larger than {} KiB", BODY_LIMIT / 1024))
        })?;
        parse_json(&bytes).map(Body)
    }
}

/// Parses JSON, naming the path of the first problem.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string();
        let message = message.split(" at line ").next().unwrap_or(&message).to_string();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::bad_request("invalid_json", format!("the body is not valid JSON: {message}"))
        } else {
            let path = if path == "." { String::new() } else { path };
            let place = if path.is_empty() { "the body as a whole".to_string() } else { format!("`{path}`") };
            ApiError::bad_request("invalid_body", format!("{place}: {message} (the shape each route takes is in /api/v1/openapi.json)"))
                .with_details(serde_json::json!({ "fields": [{ "path": path, "message": message }] }))
        }
    })?;
    de.end().map_err(|e| ApiError::bad_request("invalid_json", format!("the body is not valid JSON: {e}")))?;
    Ok(value)
}

/// Query-string parameters.
#[derive(Debug, Clone)]
pub(crate) struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| Query(q.0))
            .map_err(|e| ApiError::bad_request("invalid_query", format!("bad query string: {}", e.body_text())))
    }
}

/// Path parameters.
#[derive(Debug, Clone)]
pub(crate) struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|e| ApiError::bad_request("invalid_path", format!("bad path parameter: {}", e.body_text())))
    }
}

/// The caller (set by the authentication layer).
impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| ApiError::internal("the request was not authenticated"))
    }
}

/// The authenticated caller (`401` otherwise).
#[derive(Debug, Clone)]
pub(crate) struct Authed(pub Arc<Principal>, pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let principal = caller.require()?.clone();
        Ok(Authed(principal, caller))
    }
}

/// The version in `If-Match` (`"3"`, `W/"3"` or `3`), when sent.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IfMatch(pub Option<u64>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(header::IF_MATCH) else { return Ok(IfMatch(None)) };
        let text = value.to_str().unwrap_or_default().trim();
        let text = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
        text.parse::<u64>().map(|v| IfMatch(Some(v))).map_err(|_| {
            ApiError::bad_request("invalid_if_match", format!("If-Match must be the resource's version, e.g. \"3\" (got `{text}`)"))
        })
    }
}

impl IfMatch {
    /// Checks the sent version against the current one: `409 version_conflict` when stale.
    pub(crate) fn check(self, current: u64) -> Result<(), ApiError> {
        match self.0 {
            Some(v) if v != current => Err(ApiError::conflict(
                "version_conflict",
                format!("the resource is at version {current}, not {v}: someone changed it; read it again and retry"),
            )
            .with_details(serde_json::json!({ "current_version": current }))),
            _ => Ok(()),
        }
    }
}

/// The client's `User-Agent`.
#[derive(Debug, Clone)]
pub(crate) struct UserAgent(pub String);

impl<S: Send + Sync> FromRequestParts<S> for UserAgent {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(UserAgent(parts.headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()))
    }
}

/// `?limit=&cursor=` of a listing.
#[derive(Debug, Clone, Default, serde::Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct Paging {
    /// Items per page, 1 to 500 (default 50).
    pub limit: Option<u32>,
    /// The `next` of the previous page.
    pub cursor: Option<String>,
}

impl Paging {
    /// The store page, or `400` for a limit out of range.
    pub(crate) fn page(&self) -> Result<leannodes_store::Page, ApiError> {
        let limit = self.limit.unwrap_or(50);
        if !(1..=500).contains(&limit) {
            return Err(ApiError::invalid_field("limit", "must be between 1 and 500"));
        }
        Ok(leannodes_store::Page { after: self.cursor.clone().filter(|c| !c.is_empty()), limit })
    }
}
