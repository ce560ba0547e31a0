//! Every manifest in `deploy/` is checked against the Kubernetes OpenAPI v3 specs in `tests/schemas/`
//! (types, required fields, and — stricter than the API server's pruning — no unknown fields). Kinds whose
//! spec is not among those files (RBAC, CustomResourceDefinition) are checked by a lossless round trip
//! through k8s-openapi's types.

use std::path::{Path, PathBuf};

use leannodes_harness::schemas::{builtin_schema as schema_of, unknown_fields};
use serde::Deserialize;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every YAML document of every file under `deploy/` (but `deploy/prometheus/` and `deploy/helm/`).
fn manifests() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    // deploy/prometheus holds Prometheus rule files, not Kubernetes objects (promtool checks them:
    // tests/metrics.rs). deploy/helm holds the chart: its templates are not manifests until Helm renders
    // them, and tests/helm.rs validates what it renders (and its crds/, which is deploy/crds' file).
    let rules = root().join("deploy/prometheus");
    let chart = root().join("deploy/helm");
    let mut files: Vec<PathBuf> =
        walk(&root().join("deploy")).into_iter().filter(|f| !f.starts_with(&rules) && !f.starts_with(&chart)).collect();
    files.sort();
    for file in files.into_iter().filter(|f| f.extension().is_some_and(|e| e == "yaml" || e == "yml")) {
        let text = std::fs::read_to_string(&file).expect("read manifest");
        for (i, doc) in serde_norway::Deserializer::from_str(&text).enumerate() {
            let value = Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: document {i}: {e}", file.display()));
            if !value.is_null() {
                out.push((format!("{} #{i}", file.strip_prefix(root()).unwrap_or(&file).display()), value));
            }
        }
    }
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() { out.extend(walk(&path)) } else { out.push(path) }
    }
    out
}

/// A lossless round trip through a typed struct: every field known, every type right.
fn round_trips<T: serde::de::DeserializeOwned + serde::Serialize>(value: &Value) -> Result<(), String> {
    let typed: T = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
    let back = serde_json::to_value(typed).map_err(|e| e.to_string())?;
    if back == *value { Ok(()) } else { Err(format!("fields were lost in the round trip:\n  in:  {value}\n  out: {back}")) }
}

#[test]
fn every_deploy_manifest_validates_against_the_upstream_schemas() {
    let manifests = manifests();
    assert!(manifests.len() >= 10, "deploy/ holds the manifests ({} found)", manifests.len());
    let mut problems = Vec::new();
    for (place, value) in &manifests {
        let api_version = value["apiVersion"].as_str().unwrap_or_default();
        let kind = value["kind"].as_str().unwrap_or_default();
        if let Some((doc, component)) = schema_of(api_version, kind) {
            assert!(doc.pointer(&format!("/components/schemas/{component}")).is_some(), "{place}: no schema {component}");
            let schema = serde_json::json!({"$ref": format!("#/components/schemas/{component}"), "components": doc["components"]});
            let validator = jsonschema::validator_for(&schema).expect("schema compiles");
            for error in validator.iter_errors(value) {
                problems.push(format!("{place} ({kind}): {} at {}", error, error.instance_path));
            }
            let mut unknown = Vec::new();
            unknown_fields(&doc, &schema, value, kind, &mut unknown);
            problems.extend(unknown.into_iter().map(|u| format!("{place}: unknown field {u}")));
            continue;
        }
        let checked = match (api_version, kind) {
            ("rbac.authorization.k8s.io/v1", "ClusterRole") => round_trips::<k8s_openapi::api::rbac::v1::ClusterRole>(value),
            ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => round_trips::<k8s_openapi::api::rbac::v1::ClusterRoleBinding>(value),
            ("rbac.authorization.k8s.io/v1", "Role") => round_trips::<k8s_openapi::api::rbac::v1::Role>(value),
            ("rbac.authorization.k8s.io/v1", "RoleBinding") => round_trips::<k8s_openapi::api::rbac::v1::RoleBinding>(value),
            ("apiextensions.k8s.io/v1", "CustomResourceDefinition") => {
                round_trips::<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>(value)
            }
            _ => Err(format!(
                "no schema for {api_version} {kind}: add its OpenAPI spec to tests/schemas (with its source in SOURCES.md) or a typed check here"
            )),
        };
        if let Err(e) = checked {
            problems.push(format!("{place} ({kind}): {e}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_validation_catches_mistakes() {
    let (doc, component) = schema_of("apps/v1", "Deployment").expect("apps/v1");
    let schema = serde_json::json!({"$ref": format!("#/components/schemas/{component}"), "components": doc["components"]});
    let validator = jsonschema::validator_for(&schema).expect("compiles");
    let wrong_type = serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}, "spec": {"replicas": "two", "selector": {}, "template": {}}});
    assert!(validator.iter_errors(&wrong_type).next().is_some(), "a string replica count is rejected");
    let typo = serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}, "spec": {"replics": 2, "selector": {}, "template": {}}});
    let mut unknown = Vec::new();
    unknown_fields(&doc, &schema, &typo, "Deployment", &mut unknown);
    assert_eq!(unknown, ["Deployment.spec.replics"]);
    assert!(round_trips::<k8s_openapi::api::rbac::v1::ClusterRole>(&serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "x"}, "rulez": []})).is_err());
}

#[test]
fn rbac_grants_exactly_what_the_driver_uses() {
    let role = manifests()
        .into_iter()
        .map(|(_, v)| v)
        .find(|v| v["kind"] == "ClusterRole" && v["metadata"]["name"] == "leannodes")
        .expect("ClusterRole leannodes");
    let mut granted: Vec<(String, String, Vec<String>)> = Vec::new();
    for rule in role["rules"].as_array().expect("rules") {
        let verbs: Vec<String> =
            rule["verbs"].as_array().expect("verbs").iter().map(|v| v.as_str().unwrap_or_default().to_string()).collect();
        for group in rule["apiGroups"].as_array().expect("groups") {
            for resource in rule["resources"].as_array().expect("resources") {
                granted.push((group.as_str().unwrap_or_default().into(), resource.as_str().unwrap_or_default().into(), verbs.clone()));
            }
        }
    }
    let mut used: Vec<(String, String, Vec<String>)> = leannodes_drivers::kubernetes::RBAC_RULES
        .iter()
        .chain(leannodes_drivers::gateways::RBAC_RULES)
        .map(|(g, r, v)| (g.to_string(), r.to_string(), v.iter().map(|s| s.to_string()).collect()))
        .collect();
    granted.sort();
    used.sort();
    assert_eq!(granted, used, "deploy/rbac.yaml must grant exactly drivers::kubernetes::RBAC_RULES and drivers::gateways::RBAC_RULES");
}

#[test]
fn a_flow_resource_is_the_toml_model() {
    use kube::CustomResourceExt;
    let crd = leannodes_config::crd::Flow::crd();
    let schema = serde_json::to_value(&crd.spec.versions[0].schema).expect("schema");
    let spec = &schema["openAPIV3Schema"]["properties"]["spec"]["properties"];
    let toml_keys = leannodes_config::json_schema()["$defs"]["FlowSpec"]["properties"]
        .as_object()
        .map(|p| p.keys().cloned().collect::<Vec<_>>())
        .expect("keys");
    for key in &toml_keys {
        assert!(spec.get(key).is_some(), "the CRD spec has `{key}` like a [[flow]] table");
    }
    let object: leannodes_config::crd::Flow = serde_norway::from_str(
        "apiVersion: leannodes.io/v1alpha1\nkind: Flow\nmetadata:\n  name: shop\n  namespace: shop\nspec:\n  hosts: [shop.example.com]\n  upstream: web\n  idle_after: 10m\n  node:\n    - name: web\n      kind: deployment\n      ref: shop/web\n      port: 8080\n",
    )
    .expect("a Flow resource reads into the same types");
    assert_eq!(object.spec.0.hosts, ["shop.example.com"]);
    assert_eq!(object.spec.0.node[0].reference.as_deref(), Some("shop/web"));
}
