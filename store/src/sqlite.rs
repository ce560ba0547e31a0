//! The SQLite backend: one file, WAL journal, embedded migrations.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, Transaction};

use crate::sql::query_error;
use crate::{Result, StoreError};

/// A store in one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database at `path`. Its folder is created too.
    pub async fn open(path: &Path) -> Result<SqliteStore> {
        let url = format!("sqlite://{}", path.display());
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Open { url: url.clone(), source: sqlx::Error::Io(e) })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        Self::connect(options, &url, 4).await
    }

    /// A private in-memory database (tests).
    pub async fn in_memory() -> Result<SqliteStore> {
        let url = "sqlite::memory:";
        let options =
            SqliteConnectOptions::from_str(url).map_err(|source| StoreError::Open { url: url.into(), source })?.foreign_keys(true);
        // One connection: every connection to :memory: is a different database.
        Self::connect(options, url, 1).await
    }

    async fn connect(options: SqliteConnectOptions, url: &str, connections: u32) -> Result<SqliteStore> {
        if connections > 1 {
            // Switch to WAL and migrate on one connection first: several connections opening a new file
            // at once race for the lock that changing the journal mode takes ("database is locked").
            use sqlx::Connection;
            let mut first =
                sqlx::SqliteConnection::connect_with(&options).await.map_err(|source| StoreError::Open { url: url.into(), source })?;
            sqlx::migrate!("./migrations/sqlite")
                .run(&mut first)
                .await
                .map_err(|source| StoreError::Migrate { url: url.into(), source })?;
            let _ = first.close().await;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(connections)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open { url: url.into(), source })?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await.map_err(|source| StoreError::Migrate { url: url.into(), source })?;
        Ok(SqliteStore { pool })
    }

    /// A transaction that holds SQLite's write lock from its start, so reads inside it see the latest
    /// committed state and the commit cannot fail on a lock upgrade.
    async fn serialized(&self) -> Result<Transaction<'_, Sqlite>> {
        self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(query_error("begin"))
    }

    const BACKEND: &'static str = "sqlite";
}

crate::sql::impl_sql_store!(SqliteStore, Sqlite);
