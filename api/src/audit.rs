//! The audit trail: every mutation made through the API (sign-ins and failed sign-ins included)
//! appends a hash-chained record to the store — who, from where, what, to what, and a summary of the
//! change with every secret removed.

use std::sync::Arc;

use leannodes_store::{AuditEntry, Store};

/// Keys whose values never reach the audit trail (or any API answer).
const SECRET_KEYS: [&str; 10] = [
    "password",
    "password_hash",
    "new_password",
    "current_password",
    "secret",
    "secret_hash",
    "token",
    "client_secret",
    "csrf_token",
    "url",
];

/// Appends audit records.
#[derive(Clone)]
pub struct Audit {
    store: Arc<dyn Store>,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit").finish_non_exhaustive()
    }
}

/// One thing to audit.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    /// Who (`user:ID`, `token:ID`, `anonymous`, `cli:NAME`, `system`).
    pub actor: String,
    /// From where (client address; empty for the system).
    pub source: &'a str,
    /// What (`auth.login`, `flow.drain`, `user.create`, …).
    pub action: &'a str,
    /// To what (`flow/shop`, `user/ID`, …).
    pub target: String,
    /// Details (before/after summaries); secrets are removed before writing.
    pub detail: serde_json::Value,
}

impl Audit {
    /// Audit records go to `store`.
    pub fn new(store: Arc<dyn Store>) -> Audit {
        Audit { store }
    }

    /// Appends a record of what `caller` did.
    pub(crate) async fn by(&self, caller: &crate::auth::Caller, action: &str, target: String, detail: serde_json::Value) {
        self.record(Event { actor: caller.actor(), source: &caller.address, action, target, detail }).await;
    }

    /// Appends a record. A failure is logged (the change it describes already happened).
    pub async fn record(&self, event: Event<'_>) {
        let mut detail = event.detail;
        redact(&mut detail);
        let entry = AuditEntry {
            actor: event.actor,
            source: event.source.to_string(),
            action: event.action.to_string(),
            target: event.target,
            detail: detail.to_string(),
        };
        if let Err(e) = self.store.append_audit(&entry).await {
            tracing::error!(action = %entry.action, target = %entry.target, "cannot append to the audit trail: {e}");
        }
    }
}

/// Removes secret values from a JSON document, wherever they are.
pub fn redact(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if SECRET_KEYS.contains(&key.as_str()) {
                    *v = serde_json::Value::String("(redacted)".into());
                } else {
                    redact(v);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}
