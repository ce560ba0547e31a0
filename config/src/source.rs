//! From TOML text to a JSON document plus the position of every key and value, and the structural checks
//! (syntax, unknown keys, missing keys, wrong types) done against the JSON Schema of [`crate::ConfigFile`].
//!
//! Structural problems are pruned from the document (unknown keys removed, wrong values replaced by a
//! placeholder) so that the semantic checks can still run and every problem is reported in one pass.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::OnceLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use serde_json::{Map, Value};
use toml::de::{DeTable, DeValue};

use crate::diagnostic::Diagnostic;

/// Byte spans of the values and keys of a parsed document, by JSON pointer.
#[derive(Debug, Default)]
pub(crate) struct SpanIndex {
    values: HashMap<String, Range<usize>>,
    keys: HashMap<String, Range<usize>>,
}

impl SpanIndex {
    /// Span of the value at `pointer`, or of its nearest ancestor that has one.
    pub(crate) fn value(&self, pointer: &str) -> Option<Range<usize>> {
        let mut p = pointer;
        loop {
            if let Some(span) = self.values.get(p) {
                return Some(span.clone());
            }
            p = &p[..p.rfind('/')?];
        }
    }

    /// Span of the key that names the value at `pointer`, falling back to the value.
    pub(crate) fn key(&self, pointer: &str) -> Option<Range<usize>> {
        self.keys.get(pointer).cloned().or_else(|| self.value(pointer))
    }
}

/// Escapes one JSON-pointer segment (RFC 6901).
pub(crate) fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Parses TOML into JSON and a span index; syntax errors are all returned.
pub(crate) fn parse_toml(text: &str) -> Result<(Value, SpanIndex), Vec<Diagnostic>> {
    let (doc, errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        return Err(errors
            .into_iter()
            .map(|e| Diagnostic {
                pointer: String::new(),
                span: e.span(),
                message: format!("invalid TOML: {}", e.message().trim_end()),
                help: "fix the TOML syntax at this position (https://toml.io/en/v1.0.0)".into(),
            })
            .collect());
    }
    let mut spans = SpanIndex::default();
    spans.values.insert(String::new(), doc.span());
    let json = table_to_json(doc.get_ref(), "", &mut spans);
    Ok((json, spans))
}

fn table_to_json(table: &DeTable<'_>, pointer: &str, spans: &mut SpanIndex) -> Value {
    let mut map = Map::new();
    for (key, value) in table {
        let child = format!("{pointer}/{}", escape(key.get_ref()));
        spans.keys.insert(child.clone(), key.span());
        spans.values.insert(child.clone(), value.span());
        map.insert(key.get_ref().to_string(), value_to_json(value.get_ref(), &child, spans));
    }
    Value::Object(map)
}

fn value_to_json(value: &DeValue<'_>, pointer: &str, spans: &mut SpanIndex) -> Value {
    match value {
        DeValue::String(s) => Value::String(s.to_string()),
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).map_or_else(|_| Value::String(i.to_string()), Value::from),
        DeValue::Float(f) => f.as_str().parse::<f64>().ok().and_then(serde_json::Number::from_f64).map_or(Value::Null, Value::Number),
        DeValue::Boolean(b) => Value::Bool(*b),
        DeValue::Datetime(d) => Value::String(d.to_string()),
        DeValue::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let child = format!("{pointer}/{i}");
                    spans.values.insert(child.clone(), item.span());
                    value_to_json(item.get_ref(), &child, spans)
                })
                .collect(),
        ),
        DeValue::Table(t) => table_to_json(t, pointer, spans),
    }
}

/// The JSON Schema of the configuration file, generated once.
pub(crate) fn schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let mut schema = serde_json::to_value(schemars::schema_for!(crate::ConfigFile)).unwrap_or_default();
        strip_null(&mut schema);
        schema
    })
}

/// TOML has no null: turns `Option<T>`'s `anyOf: [T, null]` and `type: [T, "null"]` into plain `T`, so
/// editors and error messages speak of the real type.
fn strip_null(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let single = types.remove(0);
                    map.insert("type".into(), single);
                }
            }
            let null = serde_json::json!({ "type": "null" });
            if let Some(Value::Array(branches)) = map.get("anyOf") {
                let rest: Vec<Value> = branches.iter().filter(|b| **b != null).cloned().collect();
                if rest.len() == 1 && rest.len() < branches.len() {
                    map.remove("anyOf");
                    if let Value::Object(inner) = &rest[0] {
                        for (k, v) in inner {
                            map.entry(k.clone()).or_insert_with(|| v.clone());
                        }
                    }
                }
            }
            map.values_mut().for_each(strip_null);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_null),
        _ => {}
    }
}

/// The schema validator, compiled per use (validation only runs at start-up and on reloads) from
/// [`validation_schema`].
fn validator() -> Option<jsonschema::Validator> {
    static BARE: OnceLock<Value> = OnceLock::new();
    jsonschema::validator_for(BARE.get_or_init(validation_schema)).ok()
}

/// The schema the configuration is checked against: [`schema`] without its annotations, declared as
/// draft 7. jsonschema checks every schema against its draft's meta-schema first, and keeps that
/// meta-schema's compiled validator for the life of the process: for draft 2020-12 (what schemars
/// declares) about 40 MB, most of an idle server's memory; for draft 7, a fraction of it. The schema
/// uses nothing draft 7 lacks (`$defs` is reached as a JSON pointer; `$ref` has no sibling keywords
/// once the annotations are gone), and the tests compare both verdicts. Without the annotations,
/// compiling also copies a third as much: jsonschema copies the document a `$ref` points into.
fn validation_schema() -> Value {
    let mut bare = without_annotations(schema());
    if let Some(map) = bare.as_object_mut() {
        map.insert("$schema".into(), Value::String("http://json-schema.org/draft-07/schema#".into()));
    }
    bare
}

/// Keywords that describe a schema without constraining what it accepts.
const ANNOTATIONS: [&str; 6] = ["description", "title", "examples", "default", "deprecated", "$comment"];

/// `schema` without [`ANNOTATIONS`]; property names (a property may well be called `description`) and
/// `enum`/`const` values are kept as they are.
fn without_annotations(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(key, _)| !ANNOTATIONS.contains(&key.as_str()))
                .map(|(key, value)| {
                    let value = match (key.as_str(), value) {
                        ("enum" | "const", _) => value.clone(),
                        ("properties" | "patternProperties" | "$defs" | "definitions", Value::Object(named)) => {
                            Value::Object(named.iter().map(|(name, s)| (name.clone(), without_annotations(s))).collect())
                        }
                        _ => without_annotations(value),
                    };
                    (key.clone(), value)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_annotations).collect()),
        other => other.clone(),
    }
}

/// Checks `doc` against the schema, returning every problem and pruning `doc` so that it deserializes.
/// Also returns the pointers covered by a structural problem, so later checks do not report them again
/// (an entry ending in `/*` covers everything below it).
pub(crate) fn check_structure(doc: &mut Value, spans: &SpanIndex) -> (Vec<Diagnostic>, Vec<String>) {
    let Some(validator) = validator() else {
        return (vec![Diagnostic::new("", "internal error: the configuration schema does not compile", "report this as a bug")], vec![]);
    };
    let mut diagnostics = Vec::new();
    let mut covered = Vec::new();
    let mut repairs = Vec::new();
    for error in validator.iter_errors(doc) {
        let at = error.instance_path.as_str().to_string();
        let name = last_segment(&at);
        let place = place_name(&at);
        match &error.kind {
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                let known = known_keys(&at);
                for key in unexpected {
                    let pointer = format!("{at}/{}", escape(key));
                    diagnostics.push(Diagnostic {
                        span: spans.key(&pointer),
                        message: format!("unknown key `{key}` in {place}"),
                        help: unknown_key_help(key, &known),
                        pointer: pointer.clone(),
                    });
                    repairs.push(Repair::Remove(pointer.clone()));
                    covered.push(pointer);
                }
            }
            ValidationErrorKind::Required { property } => {
                let key = property.as_str().unwrap_or_default();
                let pointer = format!("{at}/{}", escape(key));
                diagnostics.push(Diagnostic {
                    span: spans.value(&at),
                    message: format!("missing required key `{key}` in {place}"),
                    help: format!("add `{key} = …` to this table ({})", key_hint(key)),
                    pointer: pointer.clone(),
                });
                repairs.push(Repair::Placeholder(pointer.clone()));
                covered.push(pointer);
                covered.push(at);
            }
            kind => {
                let (message, help) = value_problem(kind, &name, &error.instance);
                diagnostics.push(Diagnostic { span: spans.value(&at), message, help, pointer: at.clone() });
                repairs.push(Repair::Placeholder(at.clone()));
                if name == "kind" {
                    // Without a valid kind nothing else about the node can be judged.
                    if let Some((node, _)) = at.rsplit_once('/') {
                        covered.push(format!("{node}/*"));
                    }
                }
                covered.push(at);
            }
        }
    }
    for repair in repairs {
        repair.apply(doc);
    }
    (diagnostics, covered)
}

/// How a structural problem is taken out of the document so the rest can still be checked.
enum Repair {
    /// Delete the key.
    Remove(String),
    /// Put a value of the right type in its place (or delete it when it is optional).
    Placeholder(String),
}

impl Repair {
    fn apply(self, doc: &mut Value) {
        let pointer = match &self {
            Repair::Remove(p) | Repair::Placeholder(p) => p.as_str(),
        };
        let Some((parent, last)) = pointer.rsplit_once('/') else { return };
        let last = last.replace("~1", "/").replace("~0", "~");
        let placeholder = match self {
            Repair::Remove(_) => None,
            Repair::Placeholder(ref p) => placeholder_for(p),
        };
        match (doc.pointer_mut(parent), placeholder) {
            (Some(Value::Object(map)), None) => {
                map.remove(&last);
            }
            (Some(Value::Object(map)), Some(v)) => {
                map.insert(last, v);
            }
            (Some(Value::Array(items)), Some(v)) => {
                if let Some(slot) = last.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                    *slot = v;
                }
            }
            _ => {}
        }
    }
}

/// A stand-in for a missing or wrong value: `None` (delete) when the key is optional, else a value of the
/// expected type that later checks recognise as already reported.
fn placeholder_for(pointer: &str) -> Option<Value> {
    let name = last_segment(pointer);
    match name.as_str() {
        "name" | "upstream" => Some(Value::String(format!("\u{1}{pointer}"))),
        "hosts" => Some(Value::Array(vec![])),
        "kind" => Some(Value::String("external".into())),
        _ if name.parse::<usize>().is_ok() => Some(Value::String(format!("\u{1}{pointer}"))),
        _ => None,
    }
}

/// Whether a string is a placeholder put in by [`check_structure`].
pub(crate) fn is_placeholder(s: &str) -> bool {
    s.starts_with('\u{1}')
}

fn last_segment(pointer: &str) -> String {
    pointer.rsplit('/').next().unwrap_or_default().replace("~1", "/").replace("~0", "~")
}

/// A human name for the table at `pointer`: `[[flow.node]]`, `[server]`, `ready`…
fn place_name(pointer: &str) -> String {
    let segments: Vec<&str> = pointer.split('/').filter(|s| !s.is_empty()).collect();
    let names: Vec<&str> = segments.iter().copied().filter(|s| s.parse::<usize>().is_err()).collect();
    if names.is_empty() {
        return "the top level".into();
    }
    if segments.last().is_some_and(|s| s.parse::<usize>().is_ok()) {
        format!("[[{}]]", names.join("."))
    } else if names.len() == 1 {
        format!("[{}]", names[0])
    } else {
        format!("`{}`", names.join("."))
    }
}

/// The keys the schema allows at `pointer` (an object).
fn known_keys(pointer: &str) -> Vec<String> {
    let root = schema();
    let mut node = root;
    for segment in pointer.split('/').filter(|s| !s.is_empty()) {
        node = resolve(root, node);
        let next = if segment.parse::<usize>().is_ok() { node.get("items") } else { node.get("properties").and_then(|p| p.get(segment)) };
        match next {
            Some(n) => node = n,
            None => return vec![],
        }
    }
    let node = resolve(root, node);
    let mut keys: Vec<String> = node.get("properties").and_then(Value::as_object).map(|p| p.keys().cloned().collect()).unwrap_or_default();
    keys.sort();
    keys
}

/// Follows `$ref` (to `#/$defs/…`).
fn resolve<'a>(root: &'a Value, mut node: &'a Value) -> &'a Value {
    for _ in 0..8 {
        if let Some(r) = node.get("$ref").and_then(Value::as_str) {
            match r.strip_prefix('#').and_then(|p| root.pointer(p)) {
                Some(n) => node = n,
                None => return node,
            }
        } else {
            return node;
        }
    }
    node
}

fn unknown_key_help(key: &str, known: &[String]) -> String {
    let closest = known.iter().map(|k| (edit_distance(key, k), k)).filter(|(d, _)| *d <= 2).min();
    match closest {
        Some((_, k)) => format!("did you mean `{k}`?"),
        None if known.is_empty() => "remove this key".into(),
        None => format!("remove it; keys allowed here: {}", known.join(", ")),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb { prev } else { 1 + prev.min(cur).min(row[j]) };
            prev = cur;
        }
    }
    row[b.len()]
}

fn key_hint(key: &str) -> &'static str {
    match key {
        "name" => "a unique name",
        "hosts" => "e.g. hosts = [\"app.example.com\"]",
        "upstream" => "a node name of this flow or a literal \"host:port\"",
        "kind" => "one of process, deployment, statefulset, job, external",
        _ => "see `leannodes schema`",
    }
}

fn value_problem(kind: &ValidationErrorKind, name: &str, instance: &Value) -> (String, String) {
    let found = json_type(instance);
    match kind {
        ValidationErrorKind::Type { kind } => {
            let expected = match kind {
                TypeKind::Single(t) => t.to_string(),
                TypeKind::Multiple(set) => set.iter().map(|t| t.to_string()).filter(|t| t != "null").collect::<Vec<_>>().join(" or "),
            };
            let target = if name.parse::<usize>().is_ok() { "each element".to_string() } else { format!("`{name}`") };
            (format!("{target} must be {} {expected}, not {found}", article(&expected)), format!("write {target} as {} {expected}", article(&expected)))
        }
        ValidationErrorKind::Enum { options } => {
            let options: Vec<String> = options.as_array().map(|a| a.iter().map(|o| o.to_string()).collect()).unwrap_or_default();
            (format!("`{name}` must be one of {}, not {instance}", options.join(", ")), format!("use one of {}", options.join(", ")))
        }
        ValidationErrorKind::OneOfNotValid { context } | ValidationErrorKind::AnyOf { context } if one_of_constants(context).is_some() => {
            let options = one_of_constants(context).unwrap_or_default().join(", ");
            (format!("`{name}` must be one of {options}, not {instance}"), format!("use one of {options}"))
        }
        ValidationErrorKind::OneOfNotValid { .. } | ValidationErrorKind::AnyOf { .. } if name == "ready" => (
            "`ready` must name exactly one probe".into(),
            "write ready = { tcp = \"127.0.0.1:8080\" }, ready = { http = \"http://127.0.0.1:8080/healthz\" } or ready = { exec = [\"cmd\", \"arg\"] }".into(),
        ),
        ValidationErrorKind::Minimum { limit } => (format!("`{name}` must be at least {limit}, not {instance}"), format!("set `{name}` to {limit} or more")),
        ValidationErrorKind::Maximum { limit } => (format!("`{name}` must be at most {limit}, not {instance}"), format!("set `{name}` to {limit} or less")),
        other => (format!("`{name}` is invalid: {}", describe(other, instance)), "see `leannodes schema` for the expected shape".into()),
    }
}

/// The allowed values when every branch of a `oneOf`/`anyOf` is a `const` (how schemars writes documented
/// enums).
fn one_of_constants(context: &[Vec<jsonschema::ValidationError<'static>>]) -> Option<Vec<String>> {
    context
        .iter()
        .map(|branch| {
            branch.iter().find_map(|e| match &e.kind {
                ValidationErrorKind::Constant { expected_value } => Some(expected_value.to_string()),
                _ => None,
            })
        })
        .collect()
}

fn describe(kind: &ValidationErrorKind, instance: &Value) -> String {
    match kind {
        ValidationErrorKind::OneOfNotValid { .. } | ValidationErrorKind::AnyOf { .. } => {
            format!("{instance} matches none of the allowed forms")
        }
        _ => format!("{instance} does not match the schema"),
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a float",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "a table",
    }
}

fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("idle_afer", "idle_after"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn place_names_read_like_toml() {
        assert_eq!(place_name("/flow/0/node/1"), "[[flow.node]]");
        assert_eq!(place_name("/server"), "[server]");
        assert_eq!(place_name("/flow/0/ignore"), "`flow.ignore`");
        assert_eq!(place_name(""), "the top level");
    }

    #[test]
    fn the_validator_judges_as_the_annotated_draft_2020_12_schema_does() {
        let bare = validation_schema();
        assert!(bare.to_string().len() * 2 < schema().to_string().len(), "the annotations are most of the schema");
        assert_eq!(bare["$schema"], "http://json-schema.org/draft-07/schema#");
        let annotated = jsonschema::validator_for(schema()).expect("annotated compiles");
        let bare = jsonschema::validator_for(&bare).expect("bare compiles");
        let valid = serde_json::json!({ "flow": [{ "name": "a", "hosts": ["a.test"], "upstream": "127.0.0.1:1" }] });
        assert!(annotated.is_valid(&valid) && bare.is_valid(&valid));
        let invalid = [
            serde_json::json!({ "flow": [{ "name": "a", "hosts": "a.test", "upstream": 5 }] }),
            serde_json::json!({ "server": { "listen": ["x"], "threads": 0, "nope": 1 } }),
            serde_json::json!({ "flow": [{ "name": "a", "node": [{ "name": "n", "kind": "teleport" }] }] }),
            serde_json::json!({ "flow": [{ "hosts": ["a.test"] }], "notifications": 3 }),
        ];
        for case in invalid {
            let problems = |v: &jsonschema::Validator| {
                let mut p: Vec<String> = v.iter_errors(&case).map(|e| format!("{} {:?}", e.instance_path.as_str(), e.kind)).collect();
                p.sort();
                p
            };
            let expected = problems(&annotated);
            assert!(!expected.is_empty(), "the case is invalid: {case}");
            assert_eq!(problems(&bare), expected, "{case}");
        }
    }

    #[test]
    fn properties_named_like_annotations_and_enum_values_are_kept() {
        let schema = serde_json::json!({
            "description": "gone",
            "properties": {
                "description": { "type": "string", "title": "gone" },
                "mode": { "enum": [{ "title": "kept" }], "default": "gone" }
            }
        });
        let expected = serde_json::json!({
            "properties": { "description": { "type": "string" }, "mode": { "enum": [{ "title": "kept" }] } }
        });
        assert_eq!(without_annotations(&schema), expected);
    }

    #[test]
    fn known_keys_follow_refs() {
        let keys = known_keys("/flow/0/node/0");
        assert!(keys.contains(&"after".to_string()) && keys.contains(&"ref".to_string()), "{keys:?}");
        let keys = known_keys("/flow/0");
        assert!(keys.contains(&"idle_after".to_string()), "flattened settings are known: {keys:?}");
    }
}
