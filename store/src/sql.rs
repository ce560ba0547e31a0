//! The SQL both relational backends share: SQLite and Postgres run the same statements (`$N`
//! placeholders, `ON CONFLICT … DO UPDATE … WHERE`, `RETURNING`), so [`impl_sql_store!`] writes the
//! [`crate::Store`] implementation once for both. Each backend brings its pool (`self.pool`) and
//! `self.serialized()`, a transaction that no other writer of the audit chain can interleave with
//! (SQLite: `BEGIN IMMEDIATE`; Postgres: an advisory transaction lock).

use crate::{Expect, Family, Item, Result, StoreError};

/// Maps a driver error of `operation` to [`StoreError::Query`].
pub(crate) fn query_error(operation: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Query { operation, source }
}

/// The exclusive upper bound of keys starting with `prefix` (`None`: no bound). Keys compare as bytes
/// (UTF-8 keeps code point order), so every key that starts with `prefix` sorts below it.
pub(crate) fn prefix_end(prefix: &str) -> Option<String> {
    (!prefix.is_empty()).then(|| format!("{prefix}{}", char::MAX))
}

/// Why a conditional write or delete found nothing to change, given what is there now.
pub(crate) fn condition_failed(family: Family, key: &str, expect: Expect, current: Option<Item>) -> StoreError {
    let (family, key) = (family.as_str().to_string(), key.to_string());
    match (expect, current) {
        (Expect::Version(_) | Expect::Any, None) => StoreError::NotFound { family, key },
        (Expect::Absent, _) => StoreError::Conflict { family, key, reason: "it already exists".into() },
        (Expect::Version(v), Some(item)) => {
            StoreError::Conflict { family, key, reason: format!("expected version {v}, found version {} (written since)", item.version) }
        }
        (Expect::Any, Some(_)) => StoreError::Conflict { family, key, reason: "changed concurrently".into() },
    }
}

/// Parses a stored version or sequence number.
pub(crate) fn to_u64(what: &'static str, n: i64) -> Result<u64> {
    u64::try_from(n).map_err(|_| StoreError::Corrupt { what, value: n.to_string() })
}

/// Parses a numeric page cursor.
pub(crate) fn numeric_cursor(cursor: Option<&str>) -> Result<i64> {
    cursor.map_or(Ok(0), |c| c.parse().map_err(|_| StoreError::Invalid(format!("`{c}` is not a cursor of this listing"))))
}

/// Implements [`crate::Store`] for a relational backend; see the module documentation.
macro_rules! impl_sql_store {
    ($store:ty, $db:ty) => {
        impl $store {
            async fn fetch_item(&self, family: $crate::Family, key: &str) -> $crate::Result<Option<$crate::Item>> {
                let row = sqlx::query::<$db>(
                    "SELECT key, value, version, updated_ms, expires_ms FROM records WHERE family = $1 AND key = $2 AND (expires_ms IS NULL OR expires_ms > $3)",
                )
                .bind(family.as_str())
                .bind(key)
                .bind($crate::now_ms())
                .fetch_optional(&self.pool)
                .await
                .map_err($crate::sql::query_error("read record"))?;
                row.map(|row| Self::item_from_row(&row)).transpose()
            }

            fn item_from_row(row: &<$db as sqlx::Database>::Row) -> $crate::Result<$crate::Item> {
                use sqlx::Row;
                let get = $crate::sql::query_error("decode record");
                let key: String = row.try_get("key").map_err(get)?;
                let text: String = row.try_get("value").map_err($crate::sql::query_error("decode record"))?;
                let value = serde_json::from_str(&text).map_err(|e| $crate::StoreError::Corrupt { what: "record", value: format!("{key}: {e}") })?;
                Ok($crate::Item {
                    version: $crate::sql::to_u64("record version", row.try_get("version").map_err($crate::sql::query_error("decode record"))?)?,
                    updated_ms: row.try_get("updated_ms").map_err($crate::sql::query_error("decode record"))?,
                    expires_ms: row.try_get("expires_ms").map_err($crate::sql::query_error("decode record"))?,
                    key,
                    value,
                })
            }

            fn lease_from_row(row: &<$db as sqlx::Database>::Row) -> $crate::Result<$crate::Lease> {
                use sqlx::Row;
                let get = || $crate::sql::query_error("decode lease");
                Ok($crate::Lease {
                    name: row.try_get("name").map_err(get())?,
                    holder: row.try_get("holder").map_err(get())?,
                    token: $crate::sql::to_u64("lease token", row.try_get("token").map_err(get())?)?,
                    data: row.try_get("data").map_err(get())?,
                    acquired_ms: row.try_get("acquired_ms").map_err(get())?,
                    expires_ms: row.try_get("expires_ms").map_err(get())?,
                })
            }

            fn audit_from_row(row: &<$db as sqlx::Database>::Row) -> $crate::Result<$crate::AuditRecord> {
                use sqlx::Row;
                let get = || $crate::sql::query_error("decode audit record");
                Ok($crate::AuditRecord {
                    seq: $crate::sql::to_u64("audit sequence", row.try_get("seq").map_err(get())?)?,
                    at_ms: row.try_get("at_ms").map_err(get())?,
                    entry: $crate::AuditEntry {
                        actor: row.try_get("actor").map_err(get())?,
                        source: row.try_get("source").map_err(get())?,
                        action: row.try_get("action").map_err(get())?,
                        target: row.try_get("target").map_err(get())?,
                        detail: row.try_get("detail").map_err(get())?,
                    },
                    prev_hash: row.try_get("prev_hash").map_err(get())?,
                    hash: row.try_get("hash").map_err(get())?,
                })
            }

            fn execution_from_row(row: &<$db as sqlx::Database>::Row) -> $crate::Result<$crate::ExecutionRecord> {
                use sqlx::Row;
                let get = || $crate::sql::query_error("decode execution");
                let outcome: String = row.try_get("outcome").map_err(get())?;
                let steps: String = row.try_get("steps").map_err(get())?;
                Ok($crate::ExecutionRecord {
                    id: row.try_get("id").map_err(get())?,
                    flow: row.try_get("flow").map_err(get())?,
                    trigger: row.try_get("trigger").map_err(get())?,
                    outcome: $crate::Outcome::parse(&outcome).ok_or($crate::StoreError::Corrupt { what: "execution outcome", value: outcome })?,
                    error: row.try_get("error").map_err(get())?,
                    started_ms: row.try_get("started_ms").map_err(get())?,
                    finished_ms: row.try_get("finished_ms").map_err(get())?,
                    steps: serde_json::from_str(&steps).map_err(|e| $crate::StoreError::Corrupt { what: "execution steps", value: e.to_string() })?,
                })
            }
        }

        #[async_trait::async_trait]
        impl $crate::Store for $store {
            fn backend(&self) -> &'static str {
                Self::BACKEND
            }

            async fn get(&self, family: $crate::Family, key: &str) -> $crate::Result<Option<$crate::Item>> {
                self.fetch_item(family, key).await
            }

            async fn put(&self, put: $crate::Put<'_>) -> $crate::Result<$crate::Item> {
                use sqlx::Row;
                let now = $crate::now_ms();
                let text = put.value.to_string();
                let upsert = "INSERT INTO records (family, key, value, version, updated_ms, expires_ms) VALUES ($1, $2, $3, 1, $4, $5) \
                    ON CONFLICT (family, key) DO UPDATE SET value = excluded.value, version = records.version + 1, \
                    updated_ms = excluded.updated_ms, expires_ms = excluded.expires_ms";
                let query = match put.expect {
                    $crate::Expect::Any => format!("{upsert} RETURNING version"),
                    // An expired item counts as absent.
                    $crate::Expect::Absent => format!("{upsert} WHERE records.expires_ms IS NOT NULL AND records.expires_ms <= $4 RETURNING version"),
                    $crate::Expect::Version(_) => "UPDATE records SET value = $3, version = version + 1, updated_ms = $4, expires_ms = $5 \
                        WHERE family = $1 AND key = $2 AND version = $6 AND (expires_ms IS NULL OR expires_ms > $4) RETURNING version"
                        .to_string(),
                };
                let expected = match put.expect {
                    $crate::Expect::Version(v) => i64::try_from(v).unwrap_or(i64::MAX),
                    _ => 0,
                };
                let mut q = sqlx::query::<$db>(&query).bind(put.family.as_str()).bind(put.key).bind(&text).bind(now).bind(put.expires_ms);
                if matches!(put.expect, $crate::Expect::Version(_)) {
                    q = q.bind(expected);
                }
                let row = q.fetch_optional(&self.pool).await.map_err($crate::sql::query_error("write record"))?;
                match row {
                    Some(row) => Ok($crate::Item {
                        key: put.key.to_string(),
                        value: put.value.clone(),
                        version: $crate::sql::to_u64("record version", row.try_get("version").map_err($crate::sql::query_error("write record"))?)?,
                        updated_ms: now,
                        expires_ms: put.expires_ms,
                    }),
                    None => Err($crate::sql::condition_failed(put.family, put.key, put.expect, self.fetch_item(put.family, put.key).await?)),
                }
            }

            async fn delete(&self, family: $crate::Family, key: &str, expect: $crate::Expect) -> $crate::Result<()> {
                let version = match expect {
                    $crate::Expect::Absent => return Err($crate::StoreError::Invalid("a delete cannot expect the item to be absent".into())),
                    $crate::Expect::Any => None,
                    $crate::Expect::Version(v) => Some(i64::try_from(v).unwrap_or(i64::MAX)),
                };
                // A delete expires the row now: it is invisible at once, and a later create continues its
                // version (a reader holding an old version can never match the new record). It is a write,
                // so it takes a version too: a conditional update whose clock reads earlier than the
                // delete's (another replica, or a timestamp taken before waiting for the connection)
                // would otherwise still see the row as live and bring it back.
                let done = sqlx::query::<$db>(
                    "UPDATE records SET expires_ms = $3, version = version + 1 WHERE family = $1 AND key = $2 AND (expires_ms IS NULL OR expires_ms > $3) \
                     AND ($4 IS NULL OR version = $4)",
                )
                .bind(family.as_str())
                .bind(key)
                .bind($crate::now_ms())
                .bind(version)
                .execute(&self.pool)
                .await
                .map_err($crate::sql::query_error("delete record"))?;
                if done.rows_affected() == 0 {
                    return Err($crate::sql::condition_failed(family, key, expect, self.fetch_item(family, key).await?));
                }
                Ok(())
            }

            async fn list(&self, family: $crate::Family, prefix: &str, page: &$crate::Page) -> $crate::Result<$crate::Listing<$crate::Item>> {
                let rows = sqlx::query::<$db>(
                    "SELECT key, value, version, updated_ms, expires_ms FROM records WHERE family = $1 AND key >= $2 AND ($3 IS NULL OR key < $3) \
                     AND ($4 IS NULL OR key > $4) AND (expires_ms IS NULL OR expires_ms > $5) ORDER BY key LIMIT $6",
                )
                .bind(family.as_str())
                .bind(prefix)
                .bind($crate::sql::prefix_end(prefix))
                .bind(page.after.as_deref())
                .bind($crate::now_ms())
                .bind(page.rows() + 1)
                .fetch_all(&self.pool)
                .await
                .map_err($crate::sql::query_error("list records"))?;
                let items = rows.iter().map(Self::item_from_row).collect::<$crate::Result<Vec<_>>>()?;
                Ok($crate::Listing::from_overfetch(items, page, |i| i.key.clone()))
            }

            async fn purge_expired(&self, before_ms: i64) -> $crate::Result<u64> {
                let done = sqlx::query::<$db>("DELETE FROM records WHERE expires_ms IS NOT NULL AND expires_ms < $1")
                    .bind(before_ms)
                    .execute(&self.pool)
                    .await
                    .map_err($crate::sql::query_error("purge expired records"))?;
                Ok(done.rows_affected())
            }

            async fn acquire_lease(&self, request: $crate::LeaseRequest<'_>) -> $crate::Result<Option<$crate::Lease>> {
                let now = $crate::now_ms();
                let row = sqlx::query::<$db>(
                    "INSERT INTO leases (name, holder, token, data, acquired_ms, expires_ms) VALUES ($1, $2, 1, $3, $4, $5) \
                     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, token = leases.token + 1, data = excluded.data, \
                     acquired_ms = excluded.acquired_ms, expires_ms = excluded.expires_ms \
                     WHERE leases.expires_ms <= excluded.acquired_ms OR leases.holder = excluded.holder \
                     RETURNING name, holder, token, data, acquired_ms, expires_ms",
                )
                .bind(request.name)
                .bind(request.holder)
                .bind(request.data)
                .bind(now)
                .bind(now.saturating_add($crate::ttl_ms(request.ttl)))
                .fetch_optional(&self.pool)
                .await
                .map_err($crate::sql::query_error("acquire lease"))?;
                row.map(|row| Self::lease_from_row(&row)).transpose()
            }

            async fn renew_lease(&self, lease: &$crate::Lease, ttl: std::time::Duration) -> $crate::Result<Option<$crate::Lease>> {
                let now = $crate::now_ms();
                let row = sqlx::query::<$db>(
                    "UPDATE leases SET expires_ms = $4 WHERE name = $1 AND holder = $2 AND token = $3 AND expires_ms > $5 \
                     RETURNING name, holder, token, data, acquired_ms, expires_ms",
                )
                .bind(&lease.name)
                .bind(&lease.holder)
                .bind(i64::try_from(lease.token).unwrap_or(i64::MAX))
                .bind(now.saturating_add($crate::ttl_ms(ttl)))
                .bind(now)
                .fetch_optional(&self.pool)
                .await
                .map_err($crate::sql::query_error("renew lease"))?;
                row.map(|row| Self::lease_from_row(&row)).transpose()
            }

            async fn release_lease(&self, lease: &$crate::Lease) -> $crate::Result<bool> {
                // The row stays (expired) so that the next holder's token is still larger.
                let done = sqlx::query::<$db>("UPDATE leases SET expires_ms = 0 WHERE name = $1 AND holder = $2 AND token = $3 AND expires_ms > $4")
                    .bind(&lease.name)
                    .bind(&lease.holder)
                    .bind(i64::try_from(lease.token).unwrap_or(i64::MAX))
                    .bind($crate::now_ms())
                    .execute(&self.pool)
                    .await
                    .map_err($crate::sql::query_error("release lease"))?;
                Ok(done.rows_affected() > 0)
            }

            async fn lease(&self, name: &str) -> $crate::Result<Option<$crate::Lease>> {
                let row = sqlx::query::<$db>("SELECT name, holder, token, data, acquired_ms, expires_ms FROM leases WHERE name = $1 AND expires_ms > $2")
                    .bind(name)
                    .bind($crate::now_ms())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err($crate::sql::query_error("read lease"))?;
                row.map(|row| Self::lease_from_row(&row)).transpose()
            }

            async fn append_audit(&self, entry: &$crate::AuditEntry) -> $crate::Result<$crate::AuditRecord> {
                use sqlx::Row;
                let mut tx = self.serialized().await?;
                let head = sqlx::query::<$db>("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err($crate::sql::query_error("read audit head"))?;
                let head = match head {
                    Some(row) => Some((
                        $crate::sql::to_u64("audit sequence", row.try_get("seq").map_err($crate::sql::query_error("read audit head"))?)?,
                        row.try_get::<String, _>("hash").map_err($crate::sql::query_error("read audit head"))?,
                    )),
                    None => None,
                };
                let record = $crate::AuditRecord::next(head.as_ref().map(|(s, h)| (*s, h.as_str())), $crate::now_ms(), entry);
                sqlx::query::<$db>(
                    "INSERT INTO audit (seq, at_ms, actor, source, action, target, detail, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(i64::try_from(record.seq).unwrap_or(i64::MAX))
                .bind(record.at_ms)
                .bind(&record.entry.actor)
                .bind(&record.entry.source)
                .bind(&record.entry.action)
                .bind(&record.entry.target)
                .bind(&record.entry.detail)
                .bind(&record.prev_hash)
                .bind(&record.hash)
                .execute(&mut *tx)
                .await
                .map_err($crate::sql::query_error("append audit"))?;
                tx.commit().await.map_err($crate::sql::query_error("commit audit"))?;
                Ok(record)
            }

            async fn audit(&self, query: &$crate::AuditQuery, page: &$crate::Page) -> $crate::Result<$crate::Listing<$crate::AuditRecord>> {
                let sql = if query.newest_first {
                    "SELECT * FROM audit WHERE seq < $1 AND ($2 IS NULL OR actor = $2) AND ($3 IS NULL OR action = $3) AND ($4 IS NULL OR target = $4) ORDER BY seq DESC LIMIT $5"
                } else {
                    "SELECT * FROM audit WHERE seq > $1 AND ($2 IS NULL OR actor = $2) AND ($3 IS NULL OR action = $3) AND ($4 IS NULL OR target = $4) ORDER BY seq LIMIT $5"
                };
                let cursor = match (page.after.as_deref(), query.newest_first) {
                    (None, true) => i64::MAX,
                    (cursor, _) => $crate::sql::numeric_cursor(cursor)?,
                };
                let rows = sqlx::query::<$db>(sql)
                    .bind(cursor)
                    .bind(query.actor.as_deref())
                    .bind(query.action.as_deref())
                    .bind(query.target.as_deref())
                    .bind(page.rows() + 1)
                    .fetch_all(&self.pool)
                    .await
                    .map_err($crate::sql::query_error("list audit"))?;
                let records = rows.iter().map(Self::audit_from_row).collect::<$crate::Result<Vec<_>>>()?;
                Ok($crate::Listing::from_overfetch(records, page, |r| r.seq.to_string()))
            }

            async fn flow_states(&self) -> $crate::Result<Vec<$crate::FlowStateRecord>> {
                use sqlx::Row;
                let rows = sqlx::query::<$db>("SELECT flow, state, pinned, disabled, updated_ms FROM flow_state ORDER BY flow")
                    .fetch_all(&self.pool)
                    .await
                    .map_err($crate::sql::query_error("read flow states"))?;
                rows.iter()
                    .map(|row| {
                        let get = || $crate::sql::query_error("decode flow state");
                        Ok($crate::FlowStateRecord {
                            flow: row.try_get("flow").map_err(get())?,
                            state: row.try_get("state").map_err(get())?,
                            pinned: row.try_get("pinned").map_err(get())?,
                            disabled: row.try_get("disabled").map_err(get())?,
                            updated_ms: row.try_get("updated_ms").map_err(get())?,
                        })
                    })
                    .collect()
            }

            async fn put_flow_state(&self, record: &$crate::FlowStateRecord) -> $crate::Result<()> {
                sqlx::query::<$db>(
                    "INSERT INTO flow_state (flow, state, pinned, disabled, updated_ms) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (flow) \
                     DO UPDATE SET state = excluded.state, pinned = excluded.pinned, disabled = excluded.disabled, updated_ms = excluded.updated_ms",
                )
                .bind(&record.flow)
                .bind(&record.state)
                .bind(record.pinned)
                .bind(record.disabled)
                .bind(record.updated_ms)
                .execute(&self.pool)
                .await
                .map_err($crate::sql::query_error("write flow state"))?;
                Ok(())
            }

            async fn put_execution(&self, record: &$crate::ExecutionRecord) -> $crate::Result<()> {
                let steps = serde_json::to_string(&record.steps).map_err(|e| $crate::StoreError::Corrupt { what: "execution steps", value: e.to_string() })?;
                sqlx::query::<$db>(
                    "INSERT INTO executions (id, flow, trigger, outcome, error, started_ms, finished_ms, steps) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                     ON CONFLICT (id) DO UPDATE SET outcome = excluded.outcome, error = excluded.error, finished_ms = excluded.finished_ms, steps = excluded.steps",
                )
                .bind(&record.id)
                .bind(&record.flow)
                .bind(&record.trigger)
                .bind(record.outcome.as_str())
                .bind(&record.error)
                .bind(record.started_ms)
                .bind(record.finished_ms)
                .bind(steps)
                .execute(&self.pool)
                .await
                .map_err($crate::sql::query_error("write execution"))?;
                Ok(())
            }

            async fn execution(&self, id: &str) -> $crate::Result<Option<$crate::ExecutionRecord>> {
                let row = sqlx::query::<$db>("SELECT * FROM executions WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err($crate::sql::query_error("read execution"))?;
                row.map(|row| Self::execution_from_row(&row)).transpose()
            }

            async fn executions(&self, flow: Option<&str>, page: &$crate::Page) -> $crate::Result<$crate::Listing<$crate::ExecutionRecord>> {
                let rows = sqlx::query::<$db>(
                    "SELECT * FROM executions WHERE ($1 IS NULL OR flow = $1) AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
                )
                .bind(flow)
                .bind(page.after.as_deref())
                .bind(page.rows() + 1)
                .fetch_all(&self.pool)
                .await
                .map_err($crate::sql::query_error("list executions"))?;
                let records = rows.iter().map(Self::execution_from_row).collect::<$crate::Result<Vec<_>>>()?;
                Ok($crate::Listing::from_overfetch(records, page, |r| r.id.clone()))
            }

            async fn record_activity(&self, flow: &str, at_ms: i64) -> $crate::Result<()> {
                sqlx::query::<$db>(
                    "INSERT INTO activity (flow, last_ms) VALUES ($1, $2) ON CONFLICT (flow) DO UPDATE SET last_ms = excluded.last_ms \
                     WHERE activity.last_ms < excluded.last_ms",
                )
                .bind(flow)
                .bind(at_ms)
                .execute(&self.pool)
                .await
                .map_err($crate::sql::query_error("record activity"))?;
                Ok(())
            }

            async fn activity(&self) -> $crate::Result<Vec<(String, i64)>> {
                use sqlx::Row;
                let rows = sqlx::query::<$db>("SELECT flow, last_ms FROM activity ORDER BY flow")
                    .fetch_all(&self.pool)
                    .await
                    .map_err($crate::sql::query_error("read activity"))?;
                rows.iter()
                    .map(|row| {
                        let get = || $crate::sql::query_error("decode activity");
                        Ok((row.try_get("flow").map_err(get())?, row.try_get("last_ms").map_err(get())?))
                    })
                    .collect()
            }
        }
    };
}

pub(crate) use impl_sql_store;
