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
pub mod schedule;
mod source;
mod validate;

use std::path::{Path, PathBuf};

pub use diagnostic::{Diagnostic, Diagnostics, LineCol};
pub use file::ConfigFile;
pub use model::*;
pub use reference::reference_markdown;
pub use validate::defaults;

/// Validates a notification route given through the management API (secrets taken literally, never read
/// from the environment or files); every problem, with pointers relative to the route.
pub fn notification_from_api(spec: &file::NotificationSpec) -> Result<NotificationRoute, Vec<Diagnostic>> {
    validate::api_notification(spec)
}

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

/// The format of flows being imported or exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlowFormat {
    /// `[[flow]]` tables, as in the configuration file.
    Toml,
    /// `{"flow": [ … ]}` (or a bare array), the same keys as JSON.
    Json,
}

/// Reads flows to import: only `[[flow]]` tables (no `[server]` or `[defaults]`), checked as a file's
/// flows are (syntax, shape, the DAG, references, bindings among themselves). Problems carry spans, so
/// [`Diagnostics::position`] gives their line and column (for JSON, syntax errors only; the others
/// have JSON pointers such as `/flow/0/upstream`).
pub fn parse_flows(text: &str, format: FlowFormat) -> Result<Vec<file::FlowSpec>, Diagnostics> {
    let origin = match format {
        FlowFormat::Toml => "import.toml",
        FlowFormat::Json => "import.json",
    };
    let fail = |items: Vec<Diagnostic>| Diagnostics { origin: origin.into(), text: text.into(), items };
    let only_flows = |server: bool, defaults: bool| -> Result<(), Diagnostics> {
        let mut items = Vec::new();
        for (present, key) in [(server, "server"), (defaults, "defaults")] {
            if present {
                items.push(Diagnostic::new(
                    format!("/{key}"),
                    format!("an import holds only flows, not `[{key}]`"),
                    "remove the table; settings of this instance are edited in its configuration file",
                ));
            }
        }
        if items.is_empty() { Ok(()) } else { Err(fail(items)) }
    };
    match format {
        FlowFormat::Toml => {
            let config = parse_toml(text, origin, Path::new("."));
            let file: ConfigFile = toml::from_str(text).map_err(|e| {
                let mut d = Diagnostic::new("", format!("not valid TOML: {}", e.message()), "fix the syntax at this position");
                d.span = e.span();
                config.as_ref().err().cloned().unwrap_or_else(|| fail(vec![d]))
            })?;
            only_flows(file.server.is_some(), file.defaults.is_some())?;
            config?;
            Ok(file.flow)
        }
        FlowFormat::Json => {
            let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
                let offset =
                    text.lines().take(e.line().saturating_sub(1)).map(|l| l.len() + 1).sum::<usize>() + e.column().saturating_sub(1);
                let mut d = Diagnostic::new("", format!("not valid JSON: {e}"), "fix the syntax at this position");
                d.span = Some(offset.min(text.len())..offset.min(text.len()));
                fail(vec![d])
            })?;
            let list = match &value {
                serde_json::Value::Array(items) => items.clone(),
                serde_json::Value::Object(map) => {
                    only_flows(map.contains_key("server"), map.contains_key("defaults"))?;
                    match map.get("flow") {
                        Some(serde_json::Value::Array(items)) => items.clone(),
                        _ => {
                            return Err(fail(vec![Diagnostic::new("/flow", "expected `flow`: a list of flows", "send {\"flow\": [ … ]}")]));
                        }
                    }
                }
                _ => return Err(fail(vec![Diagnostic::new("", "expected a list of flows", "send {\"flow\": [ … ]}")])),
            };
            let mut specs = Vec::new();
            let mut items = Vec::new();
            for (i, value) in list.iter().enumerate() {
                match flow_spec_from_json(value) {
                    Ok(spec) => specs.push(spec),
                    Err(problems) => items.extend(problems.into_iter().map(|mut d| {
                        d.pointer = format!("/flow/{i}{}", d.pointer);
                        d
                    })),
                }
            }
            if !items.is_empty() {
                return Err(fail(items));
            }
            let sourced: Vec<SourcedFlow> =
                specs.iter().map(|s| SourcedFlow { origin: FlowOrigin::Store { version: 0 }, spec: s.clone() }).collect();
            parse_toml_with_flows("", origin, Path::new("."), &sourced).map_err(|d| fail(d.items))?;
            Ok(specs)
        }
    }
}

/// The JSON Schema of the configuration file (for editors and `leannodes schema`).
pub fn json_schema() -> serde_json::Value {
    source::schema().clone()
}
