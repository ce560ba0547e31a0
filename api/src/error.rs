//! The one error shape of the API: `{"error": "snake_code", "message": "…", "details": {…}}` with the
//! status that fits, produced by [`ApiError`]'s `IntoResponse`. Handlers return `Result<_, ApiError>`;
//! errors of the layers below convert into it here, so no handler decides a status code by itself.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A stable, snake_case code (`unauthenticated`, `forbidden`, `invalid_body`, `version_conflict`, …).
    pub error: String,
    /// What went wrong and how to fix it, in words.
    pub message: String,
    /// More about it (for validation errors: `fields`, a list of `{path, message}`).
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

/// An API error: a status, a code, a message and details.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: serde_json::Value,
    retry_after: Option<u64>,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into(), details: serde_json::json!({}), retry_after: None }
    }

    /// Adds details.
    pub fn with_details(mut self, details: serde_json::Value) -> ApiError {
        self.details = details;
        self
    }

    /// `400`: the request itself is wrong.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// `400 invalid_field`: one field of the body is wrong.
    pub fn invalid_field(path: &str, message: impl Into<String>) -> ApiError {
        let message = message.into();
        ApiError::bad_request("invalid_field", format!("{path}: {message}"))
            .with_details(serde_json::json!({ "fields": [{ "path": path, "message": message }] }))
    }

    /// `401 unauthenticated`.
    pub fn unauthenticated(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }

    /// `403 forbidden`.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// `404` with a resource-specific code.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, code, message)
    }

    /// `409` with a code.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, code, message)
    }

    /// `429 too_many_requests` with `Retry-After`.
    pub fn too_many_requests(retry_after_s: u64, message: impl Into<String>) -> ApiError {
        let mut e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", message);
        e.retry_after = Some(retry_after_s.max(1));
        e
    }

    /// `500`: something below failed; the message says what, never a secret.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", message)
    }

    /// `503`: a dependency (the store, the cluster) cannot be reached.
    pub fn unavailable(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The code.
    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = self.status.as_u16(), code = self.code, "{}", self.message);
        }
        let body = ErrorBody { error: self.code.to_string(), message: self.message, details: self.details };
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(s) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        response
    }
}

impl From<leannodes_store::StoreError> for ApiError {
    fn from(e: leannodes_store::StoreError) -> ApiError {
        use leannodes_store::StoreError;
        match e {
            StoreError::Conflict { .. } => ApiError::conflict("version_conflict", format!("{e}; read it again and retry")),
            StoreError::NotFound { .. } => ApiError::not_found("not_found", e.to_string()),
            StoreError::Invalid(message) => ApiError::bad_request("invalid_cursor", message),
            other => ApiError::unavailable("store_unavailable", format!("the store failed: {other}")),
        }
    }
}

impl From<leannodes_control::WakeError> for ApiError {
    fn from(e: leannodes_control::WakeError) -> ApiError {
        use leannodes_control::WakeError;
        match e {
            WakeError::UnknownFlow(_) => ApiError::not_found("unknown_flow", e.to_string()),
            WakeError::Disabled(_) => ApiError::conflict("flow_disabled", e.to_string()),
        }
    }
}
