//! Persistence for LeanNodes: the [`Store`] trait and its SQLite backend.
//!
//! The store keeps what must survive a restart or be shared between replicas: per-flow runtime state
//! (pin/disable overrides, last known state), the history of wake executions with per-node steps and
//! timings, and the last activity per flow. It is never on the request path: the control plane writes to
//! it from background tasks. Backends are chosen by URL (`sqlite://PATH` today; Postgres and DynamoDB
//! implement the same trait and pass the same conformance suite).

mod model;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use leannodes_config::StoreUrl;

pub use model::*;
pub use sqlite::SqliteStore;

/// Errors of a store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be opened.
    #[error("cannot open store {url}: {source}")]
    Open {
        /// The URL (or path) that was opened.
        url: String,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
    /// Schema migration failed.
    #[error("cannot migrate store {url}: {source}")]
    Migrate {
        /// The store.
        url: String,
        /// Why.
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// A query failed.
    #[error("store operation `{operation}` failed: {source}")]
    Query {
        /// Which operation.
        operation: &'static str,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
    /// A stored value could not be read back.
    #[error("store holds an unreadable {what}: {value:?}")]
    Corrupt {
        /// What kind of value.
        what: &'static str,
        /// The value.
        value: String,
    },
    /// This backend is not available in this build.
    #[error("the {backend} store is not available yet in this version; use sqlite://PATH")]
    Unsupported {
        /// Backend name.
        backend: &'static str,
    },
}

impl StoreError {
    /// A short, bounded label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            StoreError::Open { .. } => "open",
            StoreError::Migrate { .. } => "migrate",
            StoreError::Query { .. } => "query",
            StoreError::Corrupt { .. } => "corrupt",
            StoreError::Unsupported { .. } => "unsupported",
        }
    }
}

/// Result of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What LeanNodes persists. Every method is safe to call concurrently.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Runtime state of every flow that has any.
    async fn flow_states(&self) -> Result<Vec<FlowStateRecord>>;

    /// Saves a flow's runtime state (insert or replace).
    async fn put_flow_state(&self, record: &FlowStateRecord) -> Result<()>;

    /// Saves an execution and its steps (insert or replace), e.g. on start, on each step, on finish.
    async fn put_execution(&self, record: &ExecutionRecord) -> Result<()>;

    /// One execution.
    async fn execution(&self, id: &str) -> Result<Option<ExecutionRecord>>;

    /// Executions, newest first, optionally of one flow.
    async fn executions(&self, flow: Option<&str>, page: Page) -> Result<Vec<ExecutionRecord>>;

    /// Raises a flow's last activity to `at_ms` (never lowers it).
    async fn record_activity(&self, flow: &str, at_ms: i64) -> Result<()>;

    /// Last activity of every flow.
    async fn activity(&self) -> Result<Vec<(String, i64)>>;
}

/// Opens (and migrates) the store a configuration names.
pub async fn open(url: &StoreUrl) -> Result<Arc<dyn Store>> {
    match url {
        StoreUrl::Sqlite(path) => Ok(Arc::new(SqliteStore::open(path).await?)),
        StoreUrl::Postgres(_) => Err(StoreError::Unsupported { backend: "postgres" }),
        StoreUrl::DynamoDb(_) => Err(StoreError::Unsupported { backend: "dynamodb" }),
    }
}
