//! Validation of Kubernetes objects against the upstream schemas vendored in `tests/schemas/` (sources in
//! its `SOURCES.md`): the
//! Kubernetes OpenAPI v3 specs for built-in kinds and the CustomResourceDefinitions of gateways.
//! Types and required fields are checked by a JSON Schema validator, and — stricter than the API
//! server's pruning — fields the schema does not define are reported too.

use std::path::PathBuf;

use serde::Deserialize;
use serde_json::{Value, json};

/// `tests/schemas/`, the upstream schemas vendored into the repository (a fresh clone needs nothing else).
pub fn dir() -> PathBuf {
    crate::stores::workspace_root().join("tests/schemas")
}

/// The YAML documents of `text` (empty ones skipped).
pub fn yaml_documents(text: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .enumerate()
        .map(|(i, doc)| Value::deserialize(doc).unwrap_or_else(|e| panic!("YAML document {i}: {e}\n{text}")))
        .filter(|v| !v.is_null())
        .collect()
}

/// The OpenAPI document and component name of a built-in kind, when `tests/schemas/kubernetes` has it.
pub fn builtin_schema(api_version: &str, kind: &str) -> Option<(Value, String)> {
    let (file, component) = match api_version {
        "v1" => ("api__v1_openapi.json", format!("io.k8s.api.core.v1.{kind}")),
        "apps/v1" => ("apis__apps__v1_openapi.json", format!("io.k8s.api.apps.v1.{kind}")),
        "batch/v1" => ("apis__batch__v1_openapi.json", format!("io.k8s.api.batch.v1.{kind}")),
        "autoscaling/v2" => ("apis__autoscaling__v2_openapi.json", format!("io.k8s.api.autoscaling.v2.{kind}")),
        "discovery.k8s.io/v1" => ("apis__discovery.k8s.io__v1_openapi.json", format!("io.k8s.api.discovery.v1.{kind}")),
        "coordination.k8s.io/v1" => ("apis__coordination.k8s.io__v1_openapi.json", format!("io.k8s.api.coordination.v1.{kind}")),
        "networking.k8s.io/v1" => ("apis__networking.k8s.io__v1_openapi.json", format!("io.k8s.api.networking.v1.{kind}")),
        _ => return None,
    };
    let text = std::fs::read_to_string(dir().join("kubernetes").join(file)).expect("read OpenAPI spec");
    let doc: Value = serde_json::from_str(&text).expect("OpenAPI JSON");
    doc.pointer(&format!("/components/schemas/{component}")).is_some().then_some((doc, component))
}

/// The `openAPIV3Schema` of a custom resource kind, from the CRDs in `tests/schemas/`.
pub fn crd_schema(api_version: &str, kind: &str) -> Option<Value> {
    let (group, version) = api_version.split_once('/')?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir()).ok()?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    for file in files.into_iter().filter(|f| f.extension().is_some_and(|e| e == "yaml")) {
        let text = std::fs::read_to_string(&file).ok()?;
        for crd in yaml_documents(&text) {
            if crd["spec"]["group"] != group || crd["spec"]["names"]["kind"] != kind {
                continue;
            }
            let versions = crd["spec"]["versions"].as_array()?;
            if let Some(v) = versions.iter().find(|v| v["name"] == version) {
                return Some(v["schema"]["openAPIV3Schema"].clone());
            }
        }
    }
    None
}

/// Follows `$ref` and single-element `allOf` wrappers.
pub fn resolve<'a>(doc: &'a Value, mut schema: &'a Value) -> &'a Value {
    loop {
        if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
            schema = doc.pointer(r.trim_start_matches('#')).unwrap_or(schema);
        } else if let Some([only]) = schema.get("allOf").and_then(Value::as_array).map(Vec::as_slice) {
            schema = only;
        } else {
            return schema;
        }
    }
}

/// Reports keys the schema does not define (the API server would silently drop them).
pub fn unknown_fields(doc: &Value, schema: &Value, value: &Value, path: &str, out: &mut Vec<String>) {
    let schema = resolve(doc, schema);
    match value {
        Value::Object(map) => {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (k, v) in map {
                    match props.get(k) {
                        Some(s) => unknown_fields(doc, s, v, &format!("{path}.{k}"), out),
                        None => out.push(format!("{path}.{k}")),
                    }
                }
            } else if let Some(additional) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                for (k, v) in map {
                    unknown_fields(doc, additional, v, &format!("{path}.{k}"), out);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    unknown_fields(doc, item, v, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

/// Rewrites OpenAPI 3.0 keywords whose meaning changed in JSON Schema 2020-12: a boolean
/// `exclusiveMaximum`/`exclusiveMinimum` qualifies `maximum`/`minimum` there. Go (RE2) patterns that
/// are not ECMA-262 regular expressions are dropped: the validator cannot evaluate them.
fn from_openapi_30(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            if let Some(Value::String(pattern)) = map.get("pattern") {
                if jsonschema::validator_for(&json!({ "pattern": pattern })).is_err() {
                    map.remove("pattern");
                }
            }
            for (exclusive, bound) in [("exclusiveMaximum", "maximum"), ("exclusiveMinimum", "minimum")] {
                if let Some(Value::Bool(flag)) = map.get(exclusive).cloned() {
                    map.remove(exclusive);
                    if flag {
                        if let Some(limit) = map.remove(bound) {
                            map.insert(exclusive.to_string(), limit);
                        }
                    }
                }
            }
            map.values_mut().for_each(from_openapi_30);
        }
        Value::Array(items) => items.iter_mut().for_each(from_openapi_30),
        _ => {}
    }
}

/// Problems of one object against its upstream schema; `None` when no schema covers its kind.
pub fn problems(value: &Value) -> Option<Vec<String>> {
    let api_version = value["apiVersion"].as_str().unwrap_or_default();
    let kind = value["kind"].as_str().unwrap_or_default();
    let (doc, schema) = match builtin_schema(api_version, kind) {
        Some((doc, component)) => {
            let schema = json!({"$ref": format!("#/components/schemas/{component}"), "components": doc["components"]});
            (doc, schema)
        }
        None => {
            let mut schema = crd_schema(api_version, kind)?;
            from_openapi_30(&mut schema);
            (schema.clone(), schema)
        }
    };
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let mut out: Vec<String> = validator.iter_errors(value).map(|e| format!("{kind}: {e} at {}", e.instance_path)).collect();
    let mut unknown = Vec::new();
    unknown_fields(&doc, &schema, value, kind, &mut unknown);
    // Some CRD schemas leave out the fields every object has; the API server knows those.
    let common = ["apiVersion", "kind", "metadata"].map(|f| format!("{kind}.{f}"));
    out.extend(unknown.into_iter().filter(|u| !common.contains(u)).map(|u| format!("unknown field {u}")));
    Some(out)
}
