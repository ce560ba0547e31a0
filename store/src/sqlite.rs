//! The SQLite backend: one file, WAL journal, embedded migrations.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{Row, Sqlite, Transaction};

use crate::{ExecutionRecord, FlowStateRecord, Outcome, Page, Result, StepRecord, Store, StoreError};

/// A store in one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

fn query_error(operation: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Query { operation, source }
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

    async fn steps(&self, id: &str) -> Result<Vec<StepRecord>> {
        let rows = sqlx::query("SELECT node, workload, state, reason, requested_ms, started_ms, ready_ms, failed_ms FROM execution_steps WHERE execution_id = ? ORDER BY position")
            .bind(id)
            .fetch_all(&self.pool)
            .await
            .map_err(query_error("read execution steps"))?;
        rows.iter().map(step_from_row).collect()
    }

    async fn with_steps(&self, rows: Vec<SqliteRow>) -> Result<Vec<ExecutionRecord>> {
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut record = execution_from_row(row)?;
            record.steps = self.steps(&record.id).await?;
            out.push(record);
        }
        Ok(out)
    }
}

fn step_from_row(row: &SqliteRow) -> Result<StepRecord> {
    let get = |e| StoreError::Query { operation: "decode execution step", source: e };
    Ok(StepRecord {
        node: row.try_get("node").map_err(get)?,
        workload: row.try_get("workload").map_err(get)?,
        state: row.try_get("state").map_err(get)?,
        reason: row.try_get("reason").map_err(get)?,
        requested_ms: row.try_get("requested_ms").map_err(get)?,
        started_ms: row.try_get("started_ms").map_err(get)?,
        ready_ms: row.try_get("ready_ms").map_err(get)?,
        failed_ms: row.try_get("failed_ms").map_err(get)?,
    })
}

fn execution_from_row(row: &SqliteRow) -> Result<ExecutionRecord> {
    let get = |e| StoreError::Query { operation: "decode execution", source: e };
    let outcome: String = row.try_get("outcome").map_err(get)?;
    Ok(ExecutionRecord {
        id: row.try_get("id").map_err(get)?,
        flow: row.try_get("flow").map_err(get)?,
        trigger: row.try_get("trigger").map_err(get)?,
        outcome: Outcome::parse(&outcome).ok_or(StoreError::Corrupt { what: "execution outcome", value: outcome })?,
        error: row.try_get("error").map_err(get)?,
        started_ms: row.try_get("started_ms").map_err(get)?,
        finished_ms: row.try_get("finished_ms").map_err(get)?,
        steps: Vec::new(),
    })
}

async fn replace_steps(tx: &mut Transaction<'_, Sqlite>, record: &ExecutionRecord) -> Result<()> {
    sqlx::query("DELETE FROM execution_steps WHERE execution_id = ?")
        .bind(&record.id)
        .execute(&mut **tx)
        .await
        .map_err(query_error("clear execution steps"))?;
    for (position, step) in record.steps.iter().enumerate() {
        sqlx::query("INSERT INTO execution_steps (execution_id, position, node, workload, state, reason, requested_ms, started_ms, ready_ms, failed_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
            .bind(&record.id)
            .bind(i64::try_from(position).unwrap_or(i64::MAX))
            .bind(&step.node)
            .bind(&step.workload)
            .bind(&step.state)
            .bind(&step.reason)
            .bind(step.requested_ms)
            .bind(step.started_ms)
            .bind(step.ready_ms)
            .bind(step.failed_ms)
            .execute(&mut **tx)
            .await
            .map_err(query_error("write execution step"))?;
    }
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    async fn flow_states(&self) -> Result<Vec<FlowStateRecord>> {
        let rows = sqlx::query("SELECT flow, state, pinned, disabled, updated_ms FROM flow_state ORDER BY flow")
            .fetch_all(&self.pool)
            .await
            .map_err(query_error("read flow states"))?;
        rows.iter()
            .map(|row| {
                let get = |e| StoreError::Query { operation: "decode flow state", source: e };
                Ok(FlowStateRecord {
                    flow: row.try_get("flow").map_err(get)?,
                    state: row.try_get("state").map_err(get)?,
                    pinned: row.try_get("pinned").map_err(get)?,
                    disabled: row.try_get("disabled").map_err(get)?,
                    updated_ms: row.try_get("updated_ms").map_err(get)?,
                })
            })
            .collect()
    }

    async fn put_flow_state(&self, record: &FlowStateRecord) -> Result<()> {
        sqlx::query("INSERT INTO flow_state (flow, state, pinned, disabled, updated_ms) VALUES (?, ?, ?, ?, ?) ON CONFLICT (flow) DO UPDATE SET state = excluded.state, pinned = excluded.pinned, disabled = excluded.disabled, updated_ms = excluded.updated_ms")
            .bind(&record.flow)
            .bind(&record.state)
            .bind(record.pinned)
            .bind(record.disabled)
            .bind(record.updated_ms)
            .execute(&self.pool)
            .await
            .map_err(query_error("write flow state"))?;
        Ok(())
    }

    async fn put_execution(&self, record: &ExecutionRecord) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(query_error("begin"))?;
        sqlx::query("INSERT INTO executions (id, flow, trigger, outcome, error, started_ms, finished_ms) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET outcome = excluded.outcome, error = excluded.error, finished_ms = excluded.finished_ms")
            .bind(&record.id)
            .bind(&record.flow)
            .bind(&record.trigger)
            .bind(record.outcome.as_str())
            .bind(&record.error)
            .bind(record.started_ms)
            .bind(record.finished_ms)
            .execute(&mut *tx)
            .await
            .map_err(query_error("write execution"))?;
        replace_steps(&mut tx, record).await?;
        tx.commit().await.map_err(query_error("commit execution"))?;
        Ok(())
    }

    async fn execution(&self, id: &str) -> Result<Option<ExecutionRecord>> {
        let rows = sqlx::query("SELECT * FROM executions WHERE id = ?")
            .bind(id)
            .fetch_all(&self.pool)
            .await
            .map_err(query_error("read execution"))?;
        Ok(self.with_steps(rows).await?.pop())
    }

    async fn executions(&self, flow: Option<&str>, page: Page) -> Result<Vec<ExecutionRecord>> {
        let rows =
            sqlx::query("SELECT * FROM executions WHERE (?1 IS NULL OR flow = ?1) ORDER BY started_ms DESC, id DESC LIMIT ?2 OFFSET ?3")
                .bind(flow)
                .bind(i64::from(page.limit))
                .bind(i64::from(page.offset))
                .fetch_all(&self.pool)
                .await
                .map_err(query_error("list executions"))?;
        self.with_steps(rows).await
    }

    async fn record_activity(&self, flow: &str, at_ms: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO activity (flow, last_ms) VALUES (?, ?) ON CONFLICT (flow) DO UPDATE SET last_ms = max(last_ms, excluded.last_ms)",
        )
        .bind(flow)
        .bind(at_ms)
        .execute(&self.pool)
        .await
        .map_err(query_error("record activity"))?;
        Ok(())
    }

    async fn activity(&self) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query("SELECT flow, last_ms FROM activity ORDER BY flow")
            .fetch_all(&self.pool)
            .await
            .map_err(query_error("read activity"))?;
        rows.iter()
            .map(|row| {
                let get = |e| StoreError::Query { operation: "decode activity", source: e };
                Ok((row.try_get("flow").map_err(get)?, row.try_get("last_ms").map_err(get)?))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
