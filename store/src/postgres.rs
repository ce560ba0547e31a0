//! The Postgres backend: a connection pool, embedded migrations (run under sqlx's advisory lock, so
//! replicas starting together migrate once), and the shared SQL of [`crate::sql`]. The audit chain
//! is appended under a transaction-scoped advisory lock.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};

use crate::sql::query_error;
use crate::{Result, StoreError};

/// The advisory lock key that serializes audit appends ("leannodes audit" in ASCII, truncated).
const AUDIT_LOCK: i64 = 0x6c65_616e_6175_6474;

/// A store in a Postgres database shared by every replica.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

/// `url` with its password replaced by `***`, for messages.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{path}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

impl PostgresStore {
    /// Connects to `url` (`postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?options]`) and migrates the
    /// schema. Fails within a few seconds when the server cannot be reached.
    pub async fn open(url: &str) -> Result<PostgresStore> {
        let shown = redact(url);
        let options = PgConnectOptions::from_str(url).map_err(|source| StoreError::Open { url: shown.clone(), source })?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open { url: shown.clone(), source })?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await.map_err(|source| StoreError::Migrate { url: shown, source })?;
        Ok(PostgresStore { pool })
    }

    /// A transaction holding the audit advisory lock until it ends.
    async fn serialized(&self) -> Result<Transaction<'_, Postgres>> {
        let mut tx = self.pool.begin().await.map_err(query_error("begin"))?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(AUDIT_LOCK).execute(&mut *tx).await.map_err(query_error("lock audit"))?;
        Ok(tx)
    }

    const BACKEND: &'static str = "postgres";
}

crate::sql::impl_sql_store!(PostgresStore, Postgres);

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(redact("postgres://app:s3cret@db.internal:5432/leannodes"), "postgres://app:***@db.internal:5432/leannodes");
        assert_eq!(redact("postgres://app@db/leannodes"), "postgres://app@db/leannodes");
        assert_eq!(redact("postgres://db/leannodes?user=x"), "postgres://db/leannodes?user=x");
    }
}
