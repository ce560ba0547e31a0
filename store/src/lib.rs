//! Persistence for LeanNodes: the [`Store`] trait and its SQLite, Postgres and DynamoDB backends.
//!
//! The store keeps what must survive a restart or be shared between replicas: per-flow runtime state,
//! the history of wake executions, the last activity per flow, leases (locks, cold-start claims, the
//! drain leader), the audit hash chain, and the generic record families of the management API (flows,
//! versions, drafts, users, invitations, groups, roles, per-flow ACLs, settings, access tokens,
//! notification routes). It is never on the request path: the control plane uses it from background
//! tasks. Backends are chosen by URL and pass one conformance suite (`store/tests/conformance.rs`).

mod dynamo;
mod model;
mod postgres;
mod records;
mod sql;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use leannodes_config::StoreUrl;

pub use dynamo::{AwsCredentials, DynamoStore, DynamoTarget};
pub use model::*;
pub use postgres::PostgresStore;
pub use records::*;
pub use sqlite::SqliteStore;

/// Errors of a backend's client library, boxed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

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
    /// The store URL cannot be used.
    #[error("invalid store URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL.
        url: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// A DynamoDB request failed.
    #[error("DynamoDB `{operation}` failed: {message}")]
    DynamoDb {
        /// Which operation.
        operation: &'static str,
        /// What the service or the client said.
        message: String,
        /// The client's error.
        #[source]
        source: BoxError,
    },
    /// A conditional write lost: the item exists, or changed since it was read.
    #[error("conflict on {family} `{key}`: {reason}")]
    Conflict {
        /// Family (or table) of the item.
        family: String,
        /// Its key.
        key: String,
        /// What did not match.
        reason: String,
    },
    /// The item to update or delete does not exist.
    #[error("no {family} `{key}`")]
    NotFound {
        /// Family of the item.
        family: String,
        /// Its key.
        key: String,
    },
    /// The operation cannot be asked this way.
    #[error("invalid store request: {0}")]
    Invalid(String),
    /// The store did not answer in time (it accepts connections but hangs): see [`within`].
    #[error("store operation `{operation}` had no answer within {after:?}")]
    TimedOut {
        /// Which operation.
        operation: &'static str,
        /// How long it was given.
        after: std::time::Duration,
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
            StoreError::InvalidUrl { .. } => "invalid_url",
            StoreError::DynamoDb { .. } => "dynamodb",
            StoreError::Conflict { .. } => "conflict",
            StoreError::NotFound { .. } => "not_found",
            StoreError::Invalid(_) => "invalid",
            StoreError::TimedOut { .. } => "timed_out",
        }
    }
}

/// Result of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What LeanNodes persists. Every method is safe to call concurrently, from any number of replicas
/// sharing the backend. Times are Unix milliseconds of the caller's clock (replicas' clocks must agree
/// to well within a lease's time to live).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The backend's name (`sqlite`, `postgres`, `dynamodb`).
    fn backend(&self) -> &'static str;

    /// Whether several LeanNodes replicas can share this store (not an SQLite file).
    fn shared(&self) -> bool {
        self.backend() != "sqlite"
    }

    // --- generic record families ---

    /// The live (unexpired) item under `key`.
    async fn get(&self, family: Family, key: &str) -> Result<Option<Item>>;

    /// Writes an item if `put.expect` holds; returns it as stored (with its new version).
    /// [`StoreError::Conflict`] when the condition fails, [`StoreError::NotFound`] when a version was
    /// expected but there is no item.
    async fn put(&self, put: Put<'_>) -> Result<Item>;

    /// Deletes an item if `expect` holds ([`Expect::Any`] or [`Expect::Version`]); errors as [`Store::put`].
    /// A delete is a write: it takes the next version, so no write conditioned on an earlier version
    /// succeeds after it (whatever the writer's clock says), and a later create continues the versions.
    async fn delete(&self, family: Family, key: &str, expect: Expect) -> Result<()>;

    /// Live items whose key starts with `prefix`, in key (byte) order.
    async fn list(&self, family: Family, prefix: &str, page: &Page) -> Result<Listing<Item>>;

    /// Removes records (and deletion marks) that expired before `before_ms`; returns how many. After
    /// that, a key's version starts again at 1, so keep `before_ms` well in the past (the leader uses a
    /// day). DynamoDB removes expired items itself (TTL): there this does nothing.
    async fn purge_expired(&self, before_ms: i64) -> Result<u64>;

    // --- leases ---

    /// Takes the lease when it is free, expired, or already held by the same holder (which renews it
    /// with a new token). `None` when someone else holds it.
    async fn acquire_lease(&self, request: LeaseRequest<'_>) -> Result<Option<Lease>>;

    /// Extends a lease by `ttl` from now if `lease` (holder and token) still holds it. `None` when it was
    /// lost (taken over after expiring, or released).
    async fn renew_lease(&self, lease: &Lease, ttl: std::time::Duration) -> Result<Option<Lease>>;

    /// Gives the lease up if `lease` still holds it; returns whether it did.
    async fn release_lease(&self, lease: &Lease) -> Result<bool>;

    /// The current holder of a lease, if it is held and unexpired.
    async fn lease(&self, name: &str) -> Result<Option<Lease>>;

    // --- audit ---

    /// Appends an entry to the audit chain (concurrent appends are serialized into one chain).
    async fn append_audit(&self, entry: &AuditEntry) -> Result<AuditRecord>;

    /// Audit records that pass `query`'s filters, in its order; the cursor is a sequence number.
    async fn audit(&self, query: &AuditQuery, page: &Page) -> Result<Listing<AuditRecord>>;

    // --- runtime state ---

    /// Runtime state of every flow that has any.
    async fn flow_states(&self) -> Result<Vec<FlowStateRecord>>;

    /// Saves a flow's runtime state (insert or replace).
    async fn put_flow_state(&self, record: &FlowStateRecord) -> Result<()>;

    /// Saves an execution and its steps (insert or replace), e.g. on start, on each step, on finish.
    async fn put_execution(&self, record: &ExecutionRecord) -> Result<()>;

    /// One execution.
    async fn execution(&self, id: &str) -> Result<Option<ExecutionRecord>>;

    /// Executions, newest first (by id, which sorts by start time), optionally of one flow.
    async fn executions(&self, flow: Option<&str>, page: &Page) -> Result<Listing<ExecutionRecord>>;

    /// Raises a flow's last activity to `at_ms` (never lowers it).
    async fn record_activity(&self, flow: &str, at_ms: i64) -> Result<()>;

    /// Last activity of every flow.
    async fn activity(&self) -> Result<Vec<(String, i64)>>;
}

impl dyn Store {
    /// Typed operations on the records of `T`'s family.
    pub fn records<T: Record>(&self) -> Records<'_, T> {
        Records::of(self)
    }
}

/// Runs one store call, giving up after `limit` with [`StoreError::TimedOut`]. For callers that must not
/// wait on a store that accepts connections but never answers (a wake, a lease renewal): backends bound
/// connecting, not a query already sent. The call is dropped at the limit (a connection it held goes
/// back to its pool only once it answers a ping).
pub async fn within<T>(limit: std::time::Duration, operation: &'static str, call: impl Future<Output = Result<T>>) -> Result<T> {
    tokio::time::timeout(limit, call).await.unwrap_or_else(|_| Err(StoreError::TimedOut { operation, after: limit }))
}

/// The environment variable that sets this process's clock off by a number of milliseconds (signed), for
/// tests of replicas whose clocks disagree. Read once; never set it in production.
pub const CLOCK_SKEW_VARIABLE: &str = "LEANNODES_TEST_CLOCK_SKEW_MS";

/// The current wall-clock time in Unix milliseconds, as this process tells it to the store (lease
/// expiry, activity, records): the system clock, plus [`CLOCK_SKEW_VARIABLE`] when set.
pub fn now_ms() -> i64 {
    static SKEW_MS: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    let skew = *SKEW_MS.get_or_init(|| std::env::var(CLOCK_SKEW_VARIABLE).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(0));
    let system =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    system.saturating_add(skew)
}

/// `ttl` in milliseconds.
pub(crate) fn ttl_ms(ttl: std::time::Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)
}

/// Opens the store a configuration names, creating or upgrading its schema (tables, DynamoDB table)
/// when needed. An unreachable store or a bad URL is an error here, at start-up.
pub async fn open(url: &StoreUrl) -> Result<Arc<dyn Store>> {
    Ok(match url {
        StoreUrl::Sqlite(path) => Arc::new(SqliteStore::open(path).await?),
        StoreUrl::Postgres(url) => Arc::new(PostgresStore::open(url).await?),
        StoreUrl::DynamoDb(url) => Arc::new(DynamoStore::open(&DynamoTarget::parse(url)?).await?),
    })
}
