//! The audit log (`audit.read`): filtered, paged, newest first; and a verification of the whole hash
//! chain that names the first altered or missing record.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use leannodes_store::{AuditQuery, AuditRecord, Page, Store};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

use super::Registrar;
use crate::authz::{Permission, Rule};
use crate::error::ApiError;
use crate::extract::Query;

pub(super) fn routes(r: Registrar) -> Registrar {
    r.add(Rule::Global(Permission::AuditRead), routes!(list)).add(Rule::Global(Permission::AuditRead), routes!(verify))
}

/// `?actor=&action=&target=&limit=&cursor=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditFilter {
    /// Only this actor (`user:ID`, `token:ID`, `anonymous`, `cli:NAME`, `system`).
    actor: Option<String>,
    /// Only this action (`auth.login`, `flow.drain`, …).
    action: Option<String>,
    /// Only this target (`flow/shop`, `user/ID`, …).
    target: Option<String>,
    /// Records per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
    /// The `next` of the previous page (a sequence number).
    #[param(pattern = "^[0-9]{0,19}$")]
    cursor: Option<String>,
}

/// One audit record.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuditItem {
    /// Position in the chain.
    sequence: u64,
    /// When (Unix milliseconds).
    at_ms: i64,
    /// Who.
    actor: String,
    /// From where.
    source: String,
    /// What.
    action: String,
    /// To what.
    target: String,
    /// Before/after summary (secrets removed).
    #[schema(value_type = Object)]
    detail: serde_json::Value,
    /// Hash of the previous record.
    prev_hash: String,
    /// This record's hash.
    hash: String,
}

impl From<AuditRecord> for AuditItem {
    fn from(r: AuditRecord) -> AuditItem {
        AuditItem {
            sequence: r.seq,
            at_ms: r.at_ms,
            detail: serde_json::from_str(&r.entry.detail).unwrap_or(serde_json::Value::String(r.entry.detail.clone())),
            actor: r.entry.actor,
            source: r.entry.source,
            action: r.entry.action,
            target: r.entry.target,
            prev_hash: r.prev_hash,
            hash: r.hash,
        }
    }
}

/// A page of the audit log.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuditPage {
    /// Newest first.
    items: Vec<AuditItem>,
    /// Cursor of the next (older) page.
    next: Option<String>,
}

/// The audit log, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditFilter), responses((status = 200, body = AuditPage)))]
async fn list(State(store): State<Arc<dyn Store>>, Query(f): Query<AuditFilter>) -> Result<Json<AuditPage>, ApiError> {
    let page = crate::extract::Paging { limit: f.limit, cursor: f.cursor.clone() }.page()?;
    if page.after.as_deref().is_some_and(|c| c.parse::<u64>().is_err()) {
        return Err(ApiError::invalid_field("cursor", "not a cursor of this listing; use the `next` of the previous page"));
    }
    let query = AuditQuery { actor: f.actor, action: f.action, target: f.target, newest_first: true };
    let listing = store.audit(&query, &page).await?;
    Ok(Json(AuditPage { items: listing.items.into_iter().map(AuditItem::from).collect(), next: listing.next }))
}

/// Where the chain breaks.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Broken {
    /// The first sequence number that is missing, altered or unlinked.
    sequence: u64,
    /// What is wrong there.
    reason: String,
}

/// The result of a verification.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Verification {
    /// Whether the whole chain is intact.
    ok: bool,
    /// Records checked.
    checked: u64,
    /// The first problem.
    first_broken: Option<Broken>,
}

/// Verifies the whole hash chain: every record's hash, every link, no gaps.
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit", responses((status = 200, body = Verification)))]
async fn verify(State(store): State<Arc<dyn Store>>) -> Result<Json<Verification>, ApiError> {
    let mut page = Page::first(500);
    let mut prev: Option<AuditRecord> = None;
    let mut checked = 0u64;
    loop {
        let listing = store.audit(&AuditQuery::chain(), &page).await?;
        if let Err(b) = AuditRecord::verify_after(prev.as_ref(), &listing.items) {
            return Ok(Json(Verification { ok: false, checked, first_broken: Some(Broken { sequence: b.sequence, reason: b.reason }) }));
        }
        checked += listing.items.len() as u64;
        prev = listing.items.last().cloned().or(prev);
        match listing.next {
            Some(next) => page.after = Some(next),
            None => return Ok(Json(Verification { ok: true, checked, first_broken: None })),
        }
    }
}
