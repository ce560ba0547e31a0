use serde_json::json;

use super::*;

fn spec(value: serde_json::Value) -> FlowSpec {
    serde_json::from_value(value).expect("a flow spec")
}

fn shop(upstream: &str) -> serde_json::Value {
    json!({
        "hosts": ["shop.test"],
        "upstream": upstream,
        "node": [
            { "name": "db", "kind": "external", "port": 5432 },
            { "name": "web", "kind": "external", "port": 8080, "after": ["db"] },
            { "name": "web2", "kind": "external", "port": 8081, "after": ["db"] },
        ],
    })
}

#[test]
fn the_same_definition_has_no_difference() {
    assert!(diff(&spec(shop("web")), &spec(shop("web"))).is_empty());
}

#[test]
fn a_changed_upstream_is_exactly_one_field() {
    let d = diff(&spec(shop("web")), &spec(shop("web2")));
    assert_eq!(d.fields, vec![FieldChange { path: "/upstream".into(), from: json!("web"), to: json!("web2") }]);
    assert_eq!(d.nodes, NodeDiff::default());
    assert_eq!(d.edges, EdgeDiff::default());
}

#[test]
fn nodes_are_matched_by_name_and_edges_by_their_ends() {
    let mut after = shop("web");
    let nodes = after["node"].as_array_mut().expect("nodes");
    nodes.retain(|n| n["name"] != "web2");
    nodes.push(json!({ "name": "cache", "kind": "external", "port": 6379, "after": ["db"] }));
    nodes[1]["after"] = json!(["db", "cache"]);
    nodes[1]["port"] = json!(9090);
    // Order does not matter: move db last.
    let db = nodes.remove(0);
    nodes.push(db);
    after["idle_after"] = json!("10m");
    let d = diff(&spec(shop("web")), &spec(after));
    assert_eq!(d.fields, vec![FieldChange { path: "/idle_after".into(), from: json!(null), to: json!("10m") }]);
    assert_eq!(d.nodes.added, vec!["cache".to_string()]);
    assert_eq!(d.nodes.removed, vec!["web2".to_string()]);
    assert_eq!(d.nodes.changed.len(), 1);
    assert_eq!(d.nodes.changed[0].name, "web");
    let paths: Vec<&str> = d.nodes.changed[0].fields.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, vec!["/after", "/port"]);
    let edge = |from: &str, to: &str| Edge { from: from.into(), to: to.into() };
    assert_eq!(d.edges.added, vec![edge("cache", "web"), edge("db", "cache")]);
    assert_eq!(d.edges.removed, vec![edge("db", "web2")]);
}

#[test]
fn environment_values_can_be_redacted() {
    let mut before = shop("web");
    before["node"][0]["kind"] = json!("process");
    before["node"][0]["command"] = json!(["db"]);
    before["node"][0]["env"] = json!({ "PASSWORD": "old", "MODE": "a" });
    let mut after = before.clone();
    after["node"][0]["env"] = json!({ "PASSWORD": "new" });
    let mut d = diff(&spec(before), &spec(after));
    assert_eq!(d.nodes.changed[0].fields.len(), 2, "{d:?}");
    d.redact_env();
    let fields = &d.nodes.changed[0].fields;
    assert_eq!(fields[0], FieldChange { path: "/env/MODE".into(), from: json!("(redacted)"), to: json!(null) });
    assert_eq!(fields[1], FieldChange { path: "/env/PASSWORD".into(), from: json!("(redacted)"), to: json!("(redacted)") });
}
