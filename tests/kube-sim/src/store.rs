//! The object store: every object as JSON, one global resourceVersion, a bounded history of changes for
//! watches that resume, and a broadcast of live changes.

use std::collections::{BTreeMap, HashMap, VecDeque};

use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::resources::{self, Resource};

/// How many past changes a watch can resume from; older resourceVersions get `410 Gone`.
const HISTORY: usize = 2048;

/// Kind of change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Created.
    Added,
    /// Changed.
    Modified,
    /// Removed.
    Deleted,
}

impl EventType {
    /// The watch protocol's word.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change.
#[derive(Debug, Clone)]
pub struct Event {
    /// What happened.
    pub kind: EventType,
    /// Resource key (`group/version/plural`).
    pub resource: String,
    /// The object after the change (before, for deletions).
    pub object: Value,
    /// Its resourceVersion.
    pub rv: u64,
}

/// An API error, rendered as a `Status` object.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub code: u16,
    /// `reason` (`NotFound`, `AlreadyExists`, `Conflict`, `Invalid`, `Gone`, `BadRequest`).
    pub reason: &'static str,
    /// Human message.
    pub message: String,
}

impl ApiError {
    pub(crate) fn new(code: u16, reason: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { code, reason, message: message.into() }
    }

    /// The `Status` object.
    pub fn status(&self) -> Value {
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": self.message, "reason": self.reason, "code": self.code})
    }
}

type Key = (String, String, String);

#[derive(Debug, Default)]
struct State {
    rv: u64,
    objects: BTreeMap<Key, Value>,
    history: VecDeque<Event>,
    uid: u64,
}

/// All objects of the simulated cluster.
#[derive(Debug)]
pub struct Store {
    state: Mutex<State>,
    events: broadcast::Sender<Event>,
    /// Scale requests per `namespace/kind/name` and jobs created, for `/sim/stats`.
    stats: Mutex<HashMap<String, u64>>,
}

impl Default for Store {
    fn default() -> Self {
        Store::new()
    }
}

impl Store {
    /// An empty store.
    pub fn new() -> Store {
        Store { state: Mutex::new(State::default()), events: broadcast::channel(8192).0, stats: Mutex::new(HashMap::new()) }
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, State> {
        self.state.lock()
    }

    /// Subscribes to live changes.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.lock().rv
    }

    /// Counts a statistic.
    pub fn count(&self, name: &str) {
        *self.stats.lock().entry(name.to_string()).or_default() += 1;
    }

    /// All statistics.
    pub fn stats(&self) -> HashMap<String, u64> {
        self.stats.lock().clone()
    }

    pub(crate) fn seed_namespace(&self, name: &str) {
        let _ = self.create(resources::find("", "v1", "namespaces").expect("namespaces"), "", json!({"metadata": {"name": name}}));
    }

    /// Creates an object given with `apiVersion` and `kind`.
    pub fn create_object(&self, object: Value) -> Result<Value, ApiError> {
        let api_version = object["apiVersion"].as_str().unwrap_or_default();
        let kind = object["kind"].as_str().unwrap_or_default();
        let resource = resources::of_kind(api_version, kind)
            .ok_or_else(|| ApiError::new(400, "BadRequest", format!("unknown kind {api_version}/{kind}")))?;
        let namespace = object["metadata"]["namespace"].as_str().unwrap_or(if resource.namespaced { "default" } else { "" }).to_string();
        self.create(resource, &namespace, object)
    }

    fn commit(&self, state: &mut State, kind: EventType, resource: &Resource, object: Value) {
        let event = Event { kind, resource: resource.key(), rv: state.rv, object };
        state.history.push_back(event.clone());
        if state.history.len() > HISTORY {
            state.history.pop_front();
        }
        let _ = self.events.send(event);
    }

    /// Creates an object.
    pub fn create(&self, resource: &Resource, namespace: &str, mut object: Value) -> Result<Value, ApiError> {
        let mut state = self.lock();
        let name = match object["metadata"]["name"].as_str() {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => match object["metadata"]["generateName"].as_str() {
                Some(prefix) => format!("{prefix}{:05x}", state.uid + 1),
                None => return Err(ApiError::new(422, "Invalid", "metadata.name: Required value")),
            },
        };
        let key = (resource.key(), namespace.to_string(), name.clone());
        if state.objects.contains_key(&key) {
            return Err(ApiError::new(409, "AlreadyExists", format!("{} \"{name}\" already exists", resource.plural)));
        }
        state.rv += 1;
        state.uid += 1;
        let (rv, uid) = (state.rv, state.uid);
        object["apiVersion"] = json!(resource.api_version());
        object["kind"] = json!(resource.kind);
        let meta = &mut object["metadata"];
        meta["name"] = json!(name);
        if resource.namespaced {
            meta["namespace"] = json!(namespace);
        }
        meta["resourceVersion"] = json!(rv.to_string());
        meta["uid"] = json!(format!("00000000-0000-4000-8000-{uid:012x}"));
        meta["generation"] = json!(1);
        meta["creationTimestamp"] = json!(now_rfc3339());
        state.objects.insert(key, object.clone());
        self.commit(&mut state, EventType::Added, resource, object.clone());
        Ok(object)
    }

    /// One object.
    pub fn get(&self, resource: &Resource, namespace: &str, name: &str) -> Result<Value, ApiError> {
        self.lock()
            .objects
            .get(&(resource.key(), namespace.to_string(), name.to_string()))
            .cloned()
            .ok_or_else(|| not_found(resource, name))
    }

    /// Objects of a resource (all namespaces when `namespace` is `None`), with the list's resourceVersion.
    pub fn list(&self, resource: &Resource, namespace: Option<&str>, selector: &crate::Selector) -> (Vec<Value>, u64) {
        let state = self.lock();
        let key = resource.key();
        let items = state
            .objects
            .iter()
            .filter(|((r, ns, _), _)| *r == key && namespace.is_none_or(|n| n == ns))
            .filter(|(_, o)| selector.matches(o["metadata"].get("labels")))
            .map(|(_, o)| o.clone())
            .collect();
        (items, state.rv)
    }

    /// Replaces an object (optimistic concurrency on `metadata.resourceVersion` when given).
    /// `status_only` keeps the spec and takes only `status` (the `/status` subresource); otherwise the
    /// status is kept when the resource has a status subresource.
    pub fn replace(
        &self,
        resource: &Resource,
        namespace: &str,
        name: &str,
        mut object: Value,
        status_only: bool,
    ) -> Result<Value, ApiError> {
        let mut state = self.lock();
        let (key, current) = existing(&state, resource, namespace, name)?;
        if let Some(rv) = object["metadata"]["resourceVersion"].as_str() {
            if rv != current["metadata"]["resourceVersion"].as_str().unwrap_or_default() {
                return Err(ApiError::new(
                    409,
                    "Conflict",
                    format!("Operation cannot be fulfilled on {} \"{name}\": the object has been modified", resource.plural),
                ));
            }
        }
        if status_only {
            let status = object["status"].take();
            object = current.clone();
            object["status"] = status;
        } else if resource.status {
            object["status"] = current["status"].clone();
        }
        Ok(self.store_update(&mut state, resource, key, &current, object))
    }

    /// Writes an update: keeps identity, bumps resourceVersion (and generation when the spec changed).
    fn store_update(&self, state: &mut State, resource: &Resource, key: Key, current: &Value, mut object: Value) -> Value {
        state.rv += 1;
        let mut generation = current["metadata"]["generation"].as_i64().unwrap_or(1);
        if object.get("spec") != current.get("spec") {
            generation += 1;
        }
        for field in ["name", "namespace", "uid", "creationTimestamp"] {
            object["metadata"][field] = current["metadata"][field].clone();
        }
        if !resource.namespaced {
            if let Some(m) = object["metadata"].as_object_mut() {
                m.remove("namespace");
            }
        }
        object["apiVersion"] = json!(resource.api_version());
        object["kind"] = json!(resource.kind);
        object["metadata"]["resourceVersion"] = json!(state.rv.to_string());
        object["metadata"]["generation"] = json!(generation);
        state.objects.insert(key, object.clone());
        self.commit(state, EventType::Modified, resource, object.clone());
        object
    }

    /// Applies a JSON merge patch (RFC 7386). `status_only` patches only the status.
    pub fn patch(&self, resource: &Resource, namespace: &str, name: &str, patch: &Value, status_only: bool) -> Result<Value, ApiError> {
        let mut state = self.lock();
        let (key, current) = existing(&state, resource, namespace, name)?;
        let mut object = current.clone();
        if status_only {
            merge(&mut object["status"], &patch["status"]);
        } else {
            merge(&mut object, patch);
            if resource.status {
                object["status"] = current["status"].clone();
            }
        }
        Ok(self.store_update(&mut state, resource, key, &current, object))
    }

    /// Changes an object with a function (controllers); `None` when it does not exist.
    pub fn update_with(&self, resource: &Resource, namespace: &str, name: &str, change: impl FnOnce(&mut Value)) -> Option<Value> {
        let mut state = self.lock();
        let key = (resource.key(), namespace.to_string(), name.to_string());
        let current = state.objects.get(&key).cloned()?;
        let mut object = current.clone();
        change(&mut object);
        if object == current {
            return Some(current);
        }
        Some(self.store_update(&mut state, resource, key, &current, object))
    }

    /// Deletes an object.
    pub fn delete(&self, resource: &Resource, namespace: &str, name: &str) -> Result<Value, ApiError> {
        let mut state = self.lock();
        let key = (resource.key(), namespace.to_string(), name.to_string());
        let mut object = state.objects.remove(&key).ok_or_else(|| not_found(resource, name))?;
        state.rv += 1;
        object["metadata"]["resourceVersion"] = json!(state.rv.to_string());
        self.commit(&mut state, EventType::Deleted, resource, object.clone());
        Ok(object)
    }

    /// Forgets the change history, as etcd compaction does: watches from an older resourceVersion then
    /// get `410 Gone` and must list again.
    pub fn compact(&self) {
        self.lock().history.clear();
    }

    /// Changes after `rv` for a resource, or `Err(oldest)` when `rv` is older than the history.
    pub fn since(&self, resource: &str, rv: u64) -> Result<(Vec<Event>, broadcast::Receiver<Event>), u64> {
        let state = self.lock();
        let receiver = self.events.subscribe();
        let oldest = state.history.front().map_or(state.rv, |e| e.rv.saturating_sub(1));
        // A watch from exactly the current version needs no history.
        if rv < oldest {
            return Err(oldest);
        }
        let events = state.history.iter().filter(|e| e.rv > rv && e.resource == resource).cloned().collect();
        Ok((events, receiver))
    }
}

/// The key and current value of an object, or `404 NotFound`.
fn existing(state: &State, resource: &Resource, namespace: &str, name: &str) -> Result<(Key, Value), ApiError> {
    let key = (resource.key(), namespace.to_string(), name.to_string());
    let current = state.objects.get(&key).cloned().ok_or_else(|| not_found(resource, name))?;
    Ok((key, current))
}

fn not_found(resource: &Resource, name: &str) -> ApiError {
    ApiError::new(404, "NotFound", format!("{} \"{name}\" not found", resource.plural))
}

/// RFC 7386 JSON merge patch.
pub(crate) fn merge(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = json!({});
            }
            if let Value::Object(t) = target {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// Now as RFC 3339 (UTC, seconds).
pub(crate) fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(i64::try_from(days).unwrap_or(0));
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (era * 400 + yoe + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let mut doc = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge(&mut doc, &json!({"a": "z", "c": {"f": null}}));
        assert_eq!(doc, json!({"a": "z", "c": {"d": "e"}}));
    }

    #[test]
    fn dates_are_rfc_3339() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_415), (2025, 11, 23));
    }
}
