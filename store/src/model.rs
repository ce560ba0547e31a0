//! Records the store keeps. Timestamps are Unix milliseconds (wall clock).

use serde::{Deserialize, Serialize};

/// Runtime state of one flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowStateRecord {
    /// Flow name.
    pub flow: String,
    /// Last known state (`asleep`, `waking`, `awake`, `draining`, `failed`).
    pub state: String,
    /// Pin override set at run time (`None`: as configured).
    pub pinned: Option<bool>,
    /// Disable override set at run time (`None`: as configured).
    pub disabled: Option<bool>,
    /// When this record was written.
    pub updated_ms: i64,
}

/// One wake execution of a flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionRecord {
    /// Unique id (sortable by start time).
    pub id: String,
    /// Flow name.
    pub flow: String,
    /// What started it (`request`, `manual`).
    pub trigger: String,
    /// How it went.
    pub outcome: Outcome,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// Start time.
    pub started_ms: i64,
    /// End time, once finished.
    pub finished_ms: Option<i64>,
    /// One step per node, in the flow's topological order.
    pub steps: Vec<StepRecord>,
}

/// How an execution went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Still going.
    Running,
    /// Every node became ready.
    Succeeded,
    /// A node failed.
    Failed,
    /// Interrupted (shutdown, flow removed).
    Cancelled,
}

impl Outcome {
    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Running => "running",
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::Cancelled => "cancelled",
        }
    }

    /// Parses the stored word.
    pub fn parse(s: &str) -> Option<Outcome> {
        Some(match s {
            "running" => Outcome::Running,
            "succeeded" => Outcome::Succeeded,
            "failed" => Outcome::Failed,
            "cancelled" => Outcome::Cancelled,
            _ => return None,
        })
    }
}

/// One node within an execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Node name.
    pub node: String,
    /// Workload identity.
    pub workload: String,
    /// `pending`, `starting`, `ready`, `failed`, `skipped`.
    pub state: String,
    /// Failure reason, when failed.
    pub reason: Option<String>,
    /// When its dependencies were ready and the wake was requested.
    pub requested_ms: Option<i64>,
    /// When the driver accepted the wake.
    pub started_ms: Option<i64>,
    /// When the platform placed the workload (Kubernetes: every pod scheduled onto a node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_ms: Option<i64>,
    /// When it became ready.
    pub ready_ms: Option<i64>,
    /// When it failed.
    pub failed_ms: Option<i64>,
}

impl StepRecord {
    /// A step that has not started yet.
    pub fn pending(node: impl Into<String>, workload: impl Into<String>) -> StepRecord {
        StepRecord {
            node: node.into(),
            workload: workload.into(),
            state: "pending".into(),
            reason: None,
            requested_ms: None,
            started_ms: None,
            scheduled_ms: None,
            ready_ms: None,
            failed_ms: None,
        }
    }
}

/// A page of a listing: up to `limit` items after the cursor `after` (the `next` of the previous page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Cursor: the `next` value of the previous [`Listing`]; `None` for the first page.
    pub after: Option<String>,
    /// Most items to return (at least 1).
    pub limit: u32,
}

impl Default for Page {
    fn default() -> Self {
        Page { after: None, limit: 50 }
    }
}

impl Page {
    /// The first page of `limit` items.
    pub fn first(limit: u32) -> Page {
        Page { after: None, limit }
    }

    /// The limit as a row count (never 0).
    pub fn rows(&self) -> i64 {
        i64::from(self.limit.max(1))
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listing<T> {
    /// The items, in the listing's order.
    pub items: Vec<T>,
    /// Cursor of the next page; `None` when this was the last.
    pub next: Option<String>,
}

impl<T> Listing<T> {
    /// A page built from `limit + 1` fetched items: the extra one only says whether more follow.
    pub(crate) fn from_overfetch(mut items: Vec<T>, page: &Page, cursor: impl Fn(&T) -> String) -> Listing<T> {
        let limit = usize::try_from(page.rows()).unwrap_or(usize::MAX);
        let more = items.len() > limit;
        items.truncate(limit);
        let next = if more { items.last().map(cursor) } else { None };
        Listing { items, next }
    }

    /// Converts every item.
    pub fn try_map<U, E>(self, f: impl FnMut(T) -> Result<U, E>) -> Result<Listing<U>, E> {
        Ok(Listing { items: self.items.into_iter().map(f).collect::<Result<_, _>>()?, next: self.next })
    }
}

/// A stored record of one of the generic families (see [`crate::Family`]): its JSON value and the
/// version that conditional writes compare.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Item {
    /// Key within its family.
    pub key: String,
    /// The record.
    pub value: serde_json::Value,
    /// Starts at 1; every write adds 1.
    pub version: u64,
    /// When it was last written.
    pub updated_ms: i64,
    /// When it stops existing (`None`: never). Expired items are invisible to every read and write.
    pub expires_ms: Option<i64>,
}

/// The condition a write or delete requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Whatever is there.
    Any,
    /// Nothing (or only an expired item) under the key: create.
    Absent,
    /// The item exists with exactly this version: optimistic concurrency.
    Version(u64),
}

/// A write of a generic record.
#[derive(Debug, Clone, Copy)]
pub struct Put<'a> {
    /// Family.
    pub family: crate::Family,
    /// Key within the family.
    pub key: &'a str,
    /// The record.
    pub value: &'a serde_json::Value,
    /// Condition.
    pub expect: Expect,
    /// Expiry (`None`: never).
    pub expires_ms: Option<i64>,
}

/// A lease: a named, expiring claim held by one holder. Locks, cold-start claims and the leader are
/// leases. `token` grows with every acquisition of the name (a fencing token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// Name (`claim/FLOW`, `leader/drainer`, `lock/…`).
    pub name: String,
    /// Who holds it (a replica id, a user).
    pub holder: String,
    /// Fencing token: larger for every later acquisition.
    pub token: u64,
    /// What the holder attached (e.g. the execution id of a cold start).
    pub data: String,
    /// When this acquisition happened.
    pub acquired_ms: i64,
    /// When it expires unless renewed.
    pub expires_ms: i64,
}

/// A request for a lease.
#[derive(Debug, Clone, Copy)]
pub struct LeaseRequest<'a> {
    /// Name.
    pub name: &'a str,
    /// Who asks.
    pub holder: &'a str,
    /// How long it lasts unless renewed.
    pub ttl: std::time::Duration,
    /// What to attach.
    pub data: &'a str,
}

/// What an audit entry says happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Who did it (`user:ID`, `token:ID`, `cli:NAME`, `anonymous`, `system`).
    pub actor: String,
    /// Where from (the client's address; empty for the system and the command line).
    #[serde(default)]
    pub source: String,
    /// What (`flow.update`, `flow.wake`, `user.invite`, …).
    pub action: String,
    /// To what (`flow/shop`, `user/ada`).
    pub target: String,
    /// Details as a JSON document (stored as text, exactly as hashed).
    pub detail: String,
}

/// An audit entry as stored: numbered, timestamped and chained to the previous entry by its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Position in the chain, from 1.
    pub seq: u64,
    /// When it was appended.
    pub at_ms: i64,
    /// The entry.
    #[serde(flatten)]
    pub entry: AuditEntry,
    /// Hash of the previous record ([`AuditRecord::GENESIS`] for the first).
    pub prev_hash: String,
    /// SHA-256 (hex) over this record's fields and `prev_hash`.
    pub hash: String,
}

impl AuditRecord {
    /// The `prev_hash` of the first record.
    pub const GENESIS: &'static str = "0000000000000000000000000000000000000000000000000000000000000000";

    /// Builds the record that follows `prev` (`None`: the first).
    pub fn next(prev: Option<(u64, &str)>, at_ms: i64, entry: &AuditEntry) -> AuditRecord {
        let (seq, prev_hash) = prev.map_or((1, Self::GENESIS), |(seq, hash)| (seq + 1, hash));
        let hash = Self::digest(seq, at_ms, entry, prev_hash);
        AuditRecord { seq, at_ms, entry: entry.clone(), prev_hash: prev_hash.to_string(), hash }
    }

    fn digest(seq: u64, at_ms: i64, entry: &AuditEntry, prev_hash: &str) -> String {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        // Length-prefixed fields: no two different records hash the same bytes.
        for field in
            [&seq.to_string(), &at_ms.to_string(), &entry.actor, &entry.source, &entry.action, &entry.target, &entry.detail, prev_hash]
        {
            hasher.update((field.len() as u64).to_be_bytes());
            hasher.update(field.as_bytes());
        }
        hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Checks that `records` (oldest first) continue the chain after `prev` (`None`: from its start)
    /// without a gap, a changed record or a broken link; says where the first problem is.
    pub fn verify_after(prev: Option<&AuditRecord>, records: &[AuditRecord]) -> Result<(), ChainBreak> {
        let mut expected = prev.map_or((1, Self::GENESIS.to_string()), |p| (p.seq + 1, p.hash.clone()));
        for r in records {
            if r.seq > expected.0 {
                let reason = if r.seq == expected.0 + 1 {
                    format!("record {} is missing", expected.0)
                } else {
                    format!("records {} to {} are missing", expected.0, r.seq - 1)
                };
                return Err(ChainBreak { sequence: expected.0, reason });
            }
            if r.seq < expected.0 {
                return Err(ChainBreak { sequence: r.seq, reason: format!("record {} appears twice or out of order", r.seq) });
            }
            if Self::digest(r.seq, r.at_ms, &r.entry, &r.prev_hash) != r.hash {
                return Err(ChainBreak {
                    sequence: r.seq,
                    reason: format!("record {} was altered (its hash does not match its content)", r.seq),
                });
            }
            if r.prev_hash != expected.1 {
                return Err(ChainBreak {
                    sequence: r.seq,
                    reason: format!("record {} does not link to the record before it (a record was altered or replaced)", r.seq),
                });
            }
            expected = (r.seq + 1, r.hash.clone());
        }
        Ok(())
    }

    /// Checks that `records` (consecutive, oldest first, starting anywhere) form an unbroken chain.
    /// Returns the sequence number of the first record that does not fit.
    pub fn verify_chain(records: &[AuditRecord]) -> Result<(), u64> {
        for (i, r) in records.iter().enumerate() {
            if Self::digest(r.seq, r.at_ms, &r.entry, &r.prev_hash) != r.hash {
                return Err(r.seq);
            }
            let linked = match i.checked_sub(1).map(|p| &records[p]) {
                Some(prev) => prev.seq + 1 == r.seq && prev.hash == r.prev_hash,
                None => r.seq > 1 || r.prev_hash == Self::GENESIS,
            };
            if !linked {
                return Err(r.seq);
            }
        }
        Ok(())
    }
}

/// Where an audit chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainBreak {
    /// The first sequence number that is missing, altered or unlinked.
    pub sequence: u64,
    /// What is wrong there.
    pub reason: String,
}

/// Which audit records to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only this actor.
    pub actor: Option<String>,
    /// Only this action.
    pub action: Option<String>,
    /// Only this target.
    pub target: Option<String>,
    /// Newest first (the cursor then counts down).
    pub newest_first: bool,
}

impl AuditQuery {
    /// Every record, oldest first (what chain verification reads).
    pub fn chain() -> AuditQuery {
        AuditQuery::default()
    }

    /// Whether a record passes the filters.
    pub fn matches(&self, record: &AuditRecord) -> bool {
        let is = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        is(&self.actor, &record.entry.actor) && is(&self.action, &record.entry.action) && is(&self.target, &record.entry.target)
    }
}
