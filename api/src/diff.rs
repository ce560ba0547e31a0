//! The difference between two definitions of a flow (two versions, or a version and the draft): the
//! settings that changed by JSON pointer, the nodes added, removed and changed (by name, not by
//! position), and the dependency edges added and removed.

use std::collections::{BTreeMap, BTreeSet};

use leannodes_config::file::{FlowSpec, NodeSpec};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// One value that changed.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FieldChange {
    /// JSON pointer into the flow (`/upstream`, `/hosts`) or, in a node's changes, into the node.
    pub path: String,
    /// The old value (`null`: it was not set).
    #[schema(value_type = Object)]
    pub from: Value,
    /// The new value (`null`: it is no longer set).
    #[schema(value_type = Object)]
    pub to: Value,
}

/// A node whose definition changed.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct NodeChange {
    /// The node.
    pub name: String,
    /// What changed in it.
    pub fields: Vec<FieldChange>,
}

/// The nodes that differ.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct NodeDiff {
    /// Names of the nodes only the newer definition has.
    pub added: Vec<String>,
    /// Names of the nodes only the older definition has.
    pub removed: Vec<String>,
    /// Nodes in both whose definitions differ.
    pub changed: Vec<NodeChange>,
}

/// A dependency: `to` starts after `from` is ready.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
pub struct Edge {
    /// The dependency.
    pub from: String,
    /// The node that waits for it.
    pub to: String,
}

/// The edges that differ.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct EdgeDiff {
    /// Edges only the newer definition has.
    pub added: Vec<Edge>,
    /// Edges only the older definition has.
    pub removed: Vec<Edge>,
}

/// Everything that differs between two definitions of a flow.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct FlowDiff {
    /// Flow-level values that changed (bindings, upstream, settings), by path.
    pub fields: Vec<FieldChange>,
    /// Nodes added, removed and changed.
    pub nodes: NodeDiff,
    /// Dependency edges added and removed.
    pub edges: EdgeDiff,
}

impl FlowDiff {
    /// Replaces the values of environment variables (which may hold secrets) with `"(redacted)"`.
    pub fn redact_env(&mut self) {
        let is_env = |path: &str| path == "/env" || path.starts_with("/env/");
        let scrub = |change: &mut FieldChange| {
            for value in [&mut change.from, &mut change.to] {
                if !value.is_null() {
                    *value = Value::String("(redacted)".into());
                }
            }
        };
        self.fields.iter_mut().filter(|c| is_env(&c.path)).for_each(scrub);
        for node in &mut self.nodes.changed {
            node.fields.iter_mut().filter(|c| is_env(&c.path)).for_each(scrub);
        }
    }

    /// Whether the two definitions are the same.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
            && self.nodes.added.is_empty()
            && self.nodes.removed.is_empty()
            && self.nodes.changed.is_empty()
            && self.edges.added.is_empty()
            && self.edges.removed.is_empty()
    }
}

/// What changes from `from` to `to`.
pub fn diff(from: &FlowSpec, to: &FlowSpec) -> FlowDiff {
    let mut fields = Vec::new();
    let without_nodes = |spec: &FlowSpec| {
        let mut value = serde_json::to_value(FlowSpec { node: Vec::new(), name: String::new(), ..spec.clone() }).unwrap_or_default();
        if let Some(object) = value.as_object_mut() {
            object.remove("node");
        }
        value
    };
    compare("", &without_nodes(from), &without_nodes(to), &mut fields);

    let nodes_of = |spec: &FlowSpec| -> BTreeMap<String, NodeSpec> { spec.node.iter().map(|n| (n.name.clone(), n.clone())).collect() };
    let (old, new) = (nodes_of(from), nodes_of(to));
    let mut nodes = NodeDiff {
        added: new.keys().filter(|n| !old.contains_key(*n)).cloned().collect(),
        removed: old.keys().filter(|n| !new.contains_key(*n)).cloned().collect(),
        changed: Vec::new(),
    };
    for (name, before) in &old {
        let Some(after) = new.get(name) else { continue };
        let mut changes = Vec::new();
        compare("", &serde_json::to_value(before).unwrap_or_default(), &serde_json::to_value(after).unwrap_or_default(), &mut changes);
        if !changes.is_empty() {
            nodes.changed.push(NodeChange { name: name.clone(), fields: changes });
        }
    }

    let edges_of = |spec: &FlowSpec| -> BTreeSet<Edge> {
        spec.node.iter().flat_map(|n| n.after.iter().map(|a| Edge { from: a.clone(), to: n.name.clone() })).collect()
    };
    let (old, new) = (edges_of(from), edges_of(to));
    let edges = EdgeDiff { added: new.difference(&old).cloned().collect(), removed: old.difference(&new).cloned().collect() };
    FlowDiff { fields, nodes, edges }
}

/// Appends the differences between two JSON values: objects key by key, anything else as a whole.
fn compare(path: &str, from: &Value, to: &Value, out: &mut Vec<FieldChange>) {
    match (from, to) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let escaped = key.replace('~', "~0").replace('/', "~1");
                compare(&format!("{path}/{escaped}"), a.get(key).unwrap_or(&Value::Null), b.get(key).unwrap_or(&Value::Null), out);
            }
        }
        (a, b) if a != b => {
            out.push(FieldChange { path: if path.is_empty() { "/".into() } else { path.into() }, from: a.clone(), to: b.clone() })
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests;
