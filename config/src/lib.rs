//! Flow configuration for LeanNodes: the TOML file users write, its JSON Schema, and the validation that
//! turns it into the checked internal model every other crate uses.
//!
//! Two layers, kept apart on purpose: [`file`] holds the external serde types (what users write, and what
//! `leannodes schema` describes), [`model`] the validated internal types (parsed durations and addresses,
//! node references as indexes, nodes in topological order). [`parse_toml`] goes from text to [`Config`]
//! and reports **all** problems at once, each with its line, column, message and a fix.

pub mod binding;
pub mod crd;
pub mod diagnostic;
pub mod file;
pub mod model;
mod reference;
mod source;
mod validate;

use std::path::{Path, PathBuf};

pub use diagnostic::{Diagnostic, Diagnostics, LineCol};
pub use file::ConfigFile;
pub use model::*;
pub use reference::reference_markdown;
pub use validate::defaults;

/// Why a configuration file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file was read but has problems.
    #[error("{} problem(s) in {}", .0.items.len(), .0.origin)]
    Invalid(Diagnostics),
}

/// Reads and validates a configuration file. Relative paths in it are resolved against its folder.
pub fn load_file(path: &Path) -> Result<Config, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read { path: path.to_path_buf(), source })?;
    parse_toml(&text, &path.display().to_string(), &validate::base_dir_of(path)).map_err(LoadError::Invalid)
}

/// Validates TOML text. `origin` names the source in diagnostics; `base_dir` resolves relative paths.
pub fn parse_toml(text: &str, origin: &str, base_dir: &Path) -> Result<Config, Diagnostics> {
    parse_toml_with_flows(text, origin, base_dir, &[])
}

/// A flow from outside the file: a `Flow` resource ([`FlowOrigin::Resource`]) or an active version of a
/// store-managed flow ([`FlowOrigin::Store`]). Tenant flows (resources) may not run local processes or
/// `exec` probes, must send their traffic to one of their own nodes (no literal addresses), and reach
/// Kubernetes workloads only in their own namespace (`ref = "name"` means that namespace). Store flows
/// are checked like the file's (who may save one is the API's concern).
#[derive(Debug, Clone, PartialEq)]
pub struct SourcedFlow {
    /// Where it comes from (never [`FlowOrigin::File`]).
    pub origin: FlowOrigin,
    /// The flow.
    pub spec: file::FlowSpec,
}

/// Validates TOML text together with flows from other sources, appended after the file's own flows:
/// diagnostics about them have pointers `/flow/N` with `N` ≥ the file's flow count. Where an appended
/// flow conflicts with an earlier flow (name, host and path), the later one is blamed.
pub fn parse_toml_with_flows(text: &str, origin: &str, base_dir: &Path, extra: &[SourcedFlow]) -> Result<Config, Diagnostics> {
    let mut diagnostics = Diagnostics { origin: origin.to_string(), text: text.to_string(), items: Vec::new() };
    let (mut doc, spans) = match source::parse_toml(text) {
        Ok(parsed) => parsed,
        Err(items) => {
            diagnostics.items = items;
            return Err(diagnostics);
        }
    };
    let mut origins = std::collections::BTreeMap::new();
    if !extra.is_empty() {
        if let Some(root) = doc.as_object_mut() {
            let flows = root.entry("flow").or_insert_with(|| serde_json::Value::Array(Vec::new()));
            if let Some(list) = flows.as_array_mut() {
                for flow in extra {
                    origins.insert(list.len(), flow.origin.clone());
                    list.push(serde_json::to_value(&flow.spec).unwrap_or_default());
                }
            }
        }
    }
    let (structural, covered) = source::check_structure(&mut doc, &spans);
    diagnostics.items = structural;
    match serde_json::from_value::<ConfigFile>(doc) {
        Ok(file) => match validate::validate(&file, base_dir, &covered, &origins) {
            Ok(config) if diagnostics.items.is_empty() => return Ok(config),
            Ok(_) => {}
            Err(items) => diagnostics.items.extend(items.into_iter().map(|mut d| {
                d.span = spans.value(&d.pointer);
                d
            })),
        },
        Err(e) if diagnostics.items.is_empty() => {
            diagnostics.items.push(Diagnostic::new(
                "",
                format!("configuration does not match its model: {e}"),
                "see `leannodes schema` for the expected shape",
            ));
        }
        Err(_) => {}
    }
    diagnostics.sort();
    Err(diagnostics)
}

/// Checks a flow name (as the file's validation does), saying how to fix a bad one.
pub fn check_flow_name(name: &str) -> Result<(), String> {
    if name.len() > 63 {
        return Err(format!("flow name \"{name}\" is longer than 63 characters"));
    }
    if validate::valid_name(name) { Ok(()) } else { Err(format!("invalid flow name \"{name}\": {}", validate::NAME_HELP)) }
}

/// Reads one flow given as JSON (the keys of a `[[flow]]` table, as the API takes it) and checks its
/// shape against the schema: unknown keys, missing keys and wrong types, each reported with a JSON
/// pointer into `value`. The semantic checks (the DAG, references, bindings) need the rest of the
/// configuration; they run when the flow is composed with it ([`parse_toml_with_flows`]).
pub fn flow_spec_from_json(value: &serde_json::Value) -> Result<file::FlowSpec, Vec<Diagnostic>> {
    let mut doc = serde_json::json!({ "flow": [value] });
    let (mut problems, _) = source::check_structure(&mut doc, &source::SpanIndex::default());
    for p in &mut problems {
        p.pointer = p.pointer.strip_prefix("/flow/0").unwrap_or(&p.pointer).to_string();
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    serde_json::from_value(doc["flow"][0].take()).map_err(|e| {
        vec![Diagnostic::new("", format!("the flow does not match its model: {e}"), "see `leannodes schema` for the expected shape")]
    })
}

/// The JSON Schema of the configuration file (for editors and `leannodes schema`).
pub fn json_schema() -> serde_json::Value {
    source::schema().clone()
}
