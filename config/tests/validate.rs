//! `leannodes validate` diagnostics: one test per kind of problem, each asserting the exact line and column.

use std::path::Path;
use std::time::Duration;

use leannodes_config::{Config, HostPattern, Upstream, WorkloadSpec, parse_toml};

/// `(line, column, message)` of every problem in `text`.
fn problems(text: &str) -> Vec<(usize, usize, String)> {
    let diagnostics = parse_toml(text, "test.toml", Path::new("/etc/leannodes")).expect_err("config should be invalid");
    let out: Vec<_> = diagnostics
        .items
        .iter()
        .map(|d| {
            let p = diagnostics.position(d);
            assert!(!d.help.is_empty(), "every problem says how to fix it: {d:?}");
            (p.line, p.col, d.message.clone())
        })
        .collect();
    assert!(!out.is_empty());
    out
}

fn single(text: &str) -> (usize, usize, String) {
    let all = problems(text);
    assert_eq!(all.len(), 1, "expected exactly one problem, got {all:#?}");
    all.into_iter().next().expect("one problem")
}

fn valid(text: &str) -> Config {
    parse_toml(text, "test.toml", Path::new("/etc/leannodes")).unwrap_or_else(|d| panic!("config should be valid:\n{d}"))
}

const FLOW_HEAD: &str = r#"[[flow]]
name = "shop"
hosts = ["shop.example.com"]
upstream = "web"
"#;

const WEB: &str = r#"
  [[flow.node]]
  name = "web"
  kind = "process"
  command = ["web"]
  port = 8080
"#;

#[test]
fn toml_syntax_error() {
    let (line, col, msg) = single("[server]\nlisten = [\"0.0.0.0:8080\"\n");
    assert_eq!((line, col), (2, 25), "{msg}");
    assert!(msg.starts_with("invalid TOML"), "{msg}");
}

#[test]
fn unknown_key_points_at_the_key_and_suggests_the_right_one() {
    let text = format!("{FLOW_HEAD}idel_after = \"5m\"\n{WEB}");
    let (line, col, msg) = single(&text);
    assert_eq!((line, col), (5, 1));
    assert_eq!(msg, "unknown key `idel_after` in [[flow]]");
    let d = parse_toml(&text, "t", Path::new(".")).expect_err("invalid");
    assert_eq!(d.items[0].help, "did you mean `idle_after`?");
}

#[test]
fn unknown_key_in_a_node() {
    let text = format!("{FLOW_HEAD}{WEB}  replica = 2\n");
    assert_eq!(single(&text), (11, 3, "unknown key `replica` in [[flow.node]]".into()));
}

#[test]
fn missing_required_field() {
    let text = "[[flow]]\nname = \"shop\"\nhosts = [\"a.example.com\"]\n\n  [[flow.node]]\n  name = \"web\"\n  kind = \"process\"\n  command = [\"x\"]\n";
    let (line, col, msg) = single(text);
    assert_eq!(msg, "missing required key `upstream` in [[flow]]");
    assert_eq!((line, col), (1, 1));
}

#[test]
fn bad_duration() {
    let text = format!("[defaults]\nidle_after = \"15 minutes\"\nhold_timeout = \"2x\"\n\n{FLOW_HEAD}{WEB}    timeout = \"soon\"\n");
    let all = problems(&text);
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_eq!((all[0].0, all[0].1), (3, 16));
    assert!(all[0].2.starts_with("`hold_timeout` is not a duration: \"2x\""), "{}", all[0].2);
    assert_eq!((all[1].0, all[1].1), (15, 15));
    assert!(all[1].2.starts_with("`timeout` is not a duration"), "{}", all[1].2);
}

#[test]
fn wrong_type() {
    let text = format!("{FLOW_HEAD}max_held = \"many\"\n{WEB}");
    assert_eq!(single(&text), (5, 12, "`max_held` must be an integer, not a string".into()));
}

#[test]
fn unknown_enum_value() {
    let text = format!("{FLOW_HEAD}{WEB}").replace("kind = \"process\"", "kind = \"daemon\"");
    let (line, col, msg) = single(&text);
    assert_eq!((line, col), (8, 10));
    assert!(msg.starts_with("`kind` must be one of \"process\", \"deployment\""), "{msg}");
}

#[test]
fn duplicate_flow_names() {
    let text = format!("{FLOW_HEAD}{WEB}\n[[flow]]\nname = \"shop\"\nhosts = [\"other.example.com\"]\nupstream = \"10.0.0.1:80\"\n");
    assert_eq!(single(&text), (13, 8, "duplicate flow name `shop` (also flow #1 in this file)".into()));
}

#[test]
fn duplicate_node_names() {
    let text = format!("{FLOW_HEAD}{WEB}{WEB}");
    assert_eq!(single(&text), (13, 10, "duplicate node name `web` in flow `shop`".into()));
}

#[test]
fn after_names_an_unknown_node() {
    let text = format!("{FLOW_HEAD}{WEB}  after = [\"db\"]\n");
    assert_eq!(single(&text), (11, 12, "`after` names unknown node `db` in flow `shop`".into()));
}

#[test]
fn cycle_is_named() {
    let text = format!(
        "{FLOW_HEAD}{WEB}  after = [\"x\"]\n{}{}{}",
        "\n  [[flow.node]]\n  name = \"x\"\n  kind = \"process\"\n  command = [\"x\"]\n  after = [\"z\"]\n",
        "\n  [[flow.node]]\n  name = \"y\"\n  kind = \"process\"\n  command = [\"y\"]\n  after = [\"x\"]\n",
        "\n  [[flow.node]]\n  name = \"z\"\n  kind = \"process\"\n  command = [\"z\"]\n  after = [\"y\"]\n",
    );
    let (line, col, msg) = single(&text);
    assert_eq!(msg, "dependency cycle in flow `shop`: x → z → y → x");
    assert_eq!((line, col), (17, 11));
}

#[test]
fn overlapping_bindings_name_both_flows() {
    let text = format!(
        "{FLOW_HEAD}{WEB}\n[[flow]]\nname = \"admin\"\nhosts = [\"admin.example.com\", \"Shop.Example.com\"]\nupstream = \"10.0.0.1:80\"\n"
    );
    assert_eq!(single(&text), (14, 31, "flows `shop` and `admin` both bind host \"Shop.Example.com\" with path \"/\"".into()));
}

#[test]
fn same_host_with_different_paths_is_fine() {
    let text = format!(
        "{FLOW_HEAD}{WEB}\n[[flow]]\nname = \"api\"\nhosts = [\"shop.example.com\"]\npaths = [\"/api\"]\nupstream = \"10.0.0.1:80\"\n"
    );
    assert_eq!(valid(&text).flows.len(), 2);
}

#[test]
fn upstream_neither_node_nor_address() {
    let text = format!("{FLOW_HEAD}{WEB}").replace("upstream = \"web\"", "upstream = \"frontend\"");
    assert_eq!(single(&text), (4, 12, "upstream \"frontend\" is neither a node of flow `shop` nor a host:port".into()));
}

#[test]
fn process_node_without_command() {
    let text = format!("{FLOW_HEAD}{WEB}").replace("  command = [\"web\"]\n", "");
    assert_eq!(single(&text), (6, 3, "process node `web` has no `command`".into()));
}

#[test]
fn kubernetes_node_without_namespaced_ref() {
    let text = format!(
        "[server]\ndriver = \"kubernetes\"\n\n{FLOW_HEAD}\n  [[flow.node]]\n  name = \"web\"\n  kind = \"deployment\"\n  ref = \"web\"\n  port = 80\n"
    );
    assert_eq!(single(&text), (12, 9, "deployment node `web` needs `ref = \"namespace/name\"` (found \"web\")".into()));
    let missing = text.replace("  ref = \"web\"\n", "");
    assert_eq!(single(&missing), (9, 3, "deployment node `web` needs `ref = \"namespace/name\"`".into()));
}

#[test]
fn kubernetes_node_needs_the_kubernetes_driver() {
    let text = format!("{FLOW_HEAD}\n  [[flow.node]]\n  name = \"web\"\n  kind = \"deployment\"\n  ref = \"shop/web\"\n  port = 80\n");
    assert_eq!(single(&text), (8, 10, "deployment node `web` needs the Kubernetes driver".into()));
}

#[test]
fn process_node_defined_differently_in_two_flows() {
    let other = "\n[[flow]]\nname = \"admin\"\nhosts = [\"admin.example.com\"]\nupstream = \"web\"\n";
    let same = format!("{FLOW_HEAD}{WEB}{other}{WEB}");
    assert_eq!(valid(&same).flows[1].nodes[0].workload, valid(&same).flows[0].nodes[0].workload);
    let different = format!("{FLOW_HEAD}{WEB}{other}{}", WEB.replace("8080", "8081"));
    assert_eq!(single(&different), (18, 10, "process node `web` is defined differently in flows `shop` and `admin`".into()));
}

#[test]
fn malformed_host_patterns() {
    let text =
        format!("{FLOW_HEAD}{WEB}").replace("hosts = [\"shop.example.com\"]", "hosts = [\"shop.*.com\", \"http://x.com\", \"*.ok.com\"]");
    let all = problems(&text);
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_eq!((all[0].0, all[0].1), (3, 10));
    assert!(all[0].2.contains("`*` is only allowed as a leading `*.`"));
    assert_eq!((all[1].0, all[1].1), (3, 24));
    assert_eq!(all[1].2, "malformed host pattern \"http://x.com\"");
}

#[test]
fn paths_must_start_with_a_slash() {
    let text = format!("{FLOW_HEAD}paths = [\"/\", \"api\"]\n{WEB}");
    assert_eq!(single(&text), (5, 15, "path \"api\" does not start with `/`".into()));
}

#[test]
fn several_mistakes_are_all_reported() {
    let text = r#"[server]
listen = ["0.0.0.0:8080"]
bogus = true

[[flow]]
name = "shop"
hosts = ["shop.example.com", "a*.b.com"]
paths = ["api"]
upstream = "web"
idle_after = "ten minutes"

  [[flow.node]]
  name = "db"
  kind = "process"
  port = "5432"

  [[flow.node]]
  name = "web"
  kind = "process"
  command = ["web"]
  port = 8080
  after = ["db", "cache"]
"#;
    let all = problems(text);
    let positions: Vec<(usize, usize)> = all.iter().map(|p| (p.0, p.1)).collect();
    assert_eq!(positions, vec![(3, 1), (7, 30), (8, 10), (10, 14), (12, 3), (15, 10), (22, 18)], "{all:#?}");
}

#[test]
fn cli_format_is_path_line_col_error_then_help() {
    let text = format!("{FLOW_HEAD}{WEB}  after = [\"db\"]\n");
    let rendered = parse_toml(&text, "conf/app.toml", Path::new("conf")).expect_err("invalid").to_string();
    assert_eq!(
        rendered,
        "conf/app.toml:11:12: error: `after` names unknown node `db` in flow `shop`\n  help: use one of the flow's nodes (web) or add a node named `db`\n"
    );
}

#[test]
fn defaults_are_inherited_and_overridden() {
    let text = format!("[defaults]\nidle_after = \"10m\"\nhold_timeout = \"30s\"\n\n{FLOW_HEAD}hold_timeout = \"45s\"\n{WEB}");
    let config = valid(&text);
    let flow = &config.flows[0];
    assert_eq!(flow.idle_after, Duration::from_secs(600));
    assert_eq!(flow.hold_timeout, Duration::from_secs(45));
    assert_eq!(flow.fast_hold, leannodes_config::defaults::FAST_HOLD);
    assert_eq!(flow.nodes[0].timeout, leannodes_config::defaults::NODE_TIMEOUT);
}

#[test]
fn valid_diamond_is_ordered_topologically() {
    let text = r#"
[server]
store = "sqlite://state/ln.db"

[[flow]]
name = "shop"
hosts = ["Shop.example.com", "*.shop.example.com"]
upstream = "web"
ignore = { user_agents = ["kube-probe/*"], paths = ["/healthz"] }

  [[flow.node]]
  name = "web"
  kind = "process"
  command = ["web"]
  port = 8080
  after = ["cache", "search"]

  [[flow.node]]
  name = "cache"
  kind = "process"
  command = ["cache"]
  after = ["db"]
  ready = { exec = ["true"] }

  [[flow.node]]
  name = "search"
  kind = "external"
  after = ["db"]
  ready = { http = "http://127.0.0.1:9200/" }

  [[flow.node]]
  name = "db"
  kind = "process"
  command = ["db"]
  cwd = "data"
  port = 5432
"#;
    let config = valid(text);
    assert_eq!(config.server.store, leannodes_config::StoreUrl::Sqlite("/etc/leannodes/state/ln.db".into()));
    let flow = &config.flows[0];
    let names: Vec<&str> = flow.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["db", "cache", "search", "web"]);
    assert_eq!(flow.nodes[3].after, vec![1, 2]);
    assert_eq!(flow.upstream, Upstream::Node(3));
    assert_eq!(flow.bindings[0].host, HostPattern::Exact("shop.example.com".into()));
    assert_eq!(flow.bindings[1].host, HostPattern::Wildcard("shop.example.com".into()));
    assert!(flow.ignore.matches(Some("kube-probe/1.30"), "/"));
    let WorkloadSpec::Process(db) = &flow.nodes[0].workload.spec else { panic!("db is a process") };
    assert_eq!(db.cwd.as_deref(), Some(Path::new("/etc/leannodes/data")));
    assert_eq!(config.node_count(), 4);
}

#[test]
fn a_flow_without_a_name_is_reported_like_any_missing_key() {
    let text = "[[flow]]\nhosts = [\"a.example.com\"]\nupstream = \"10.0.0.1:80\"\n";
    assert_eq!(single(text), (1, 1, "missing required key `name` in [[flow]]".into()));
}

#[test]
fn replica_settings_are_checked_and_default_sensibly() {
    let text = "[server]\nreplica_id = \"pod 1\"\nclaim_ttl = \"500ms\"\nactivity_flush = \"10ms\"\n";
    let found = problems(text);
    assert_eq!(
        found.iter().map(|(line, _, m)| (*line, m.as_str())).collect::<Vec<_>>(),
        vec![
            (2, "invalid replica name \"pod 1\""),
            (3, "`claim_ttl` is below 1s: leases would expire between renewals"),
            (4, "`activity_flush` is below 100ms"),
        ]
    );
    let config = valid("[server]\nreplica_id = \"leannodes-0\"\nclaim_ttl = \"4s\"\n");
    assert_eq!(config.server.replica_id.as_deref(), Some("leannodes-0"));
    assert_eq!(config.server.claim_ttl, std::time::Duration::from_secs(4));
    assert_eq!(config.server.activity_flush, std::time::Duration::from_secs(5), "default");
}

#[test]
fn keep_warm_bad_cron_and_zone_point_at_the_value() {
    let text = format!(
        "{FLOW_HEAD}keep_warm = [\n  {{ cron = \"0 8 * * 1-8\", for = \"10h\", tz = \"Europe/Berlin\" }},\n  {{ cron = \"0 8 * * *\", for = \"1h\", tz = \"Mars/Olympus\" }},\n]\n{WEB}"
    );
    let all = problems(&text);
    assert_eq!(all.len(), 2, "{all:#?}");
    let (line, col, msg) = &all[0];
    assert_eq!((*line, *col), (6, 12), "{msg}");
    assert!(msg.contains("day of week: 8 is out of range 0–7"), "{msg}");
    let (line, col, msg) = &all[1];
    assert_eq!((*line, *col), (7, 42), "{msg}");
    assert!(msg.contains("no known time zone: \"Mars/Olympus\""), "{msg}");
}

#[test]
fn keep_warm_is_parsed_with_defaults() {
    let text = format!("{FLOW_HEAD}keep_warm = [{{ cron = \"0 8 * * 1-5\", for = \"10h\" }}]\n{WEB}");
    let config = valid(&text);
    let window = &config.flows[0].keep_warm[0];
    assert_eq!((window.cron.to_string().as_str(), window.tz_name.as_str()), ("0 8 * * 1-5", "UTC"));
    assert_eq!((window.length, window.ahead), (Duration::from_secs(36_000), Duration::from_secs(120)));
    let (_, _, msg) = single(&format!("{FLOW_HEAD}keep_warm = [{{ cron = \"@daily\", for = \"0s\" }}]\n{WEB}"));
    assert!(msg.contains("`for` must be longer than zero"), "{msg}");
}

#[test]
fn tracing_needs_an_http_collector_url() {
    let (line, col, msg) = single(&format!("[server.tracing]\notlp = \"otel-collector:4318\"\n\n{FLOW_HEAD}{WEB}"));
    assert_eq!((line, col), (2, 8), "{msg}");
    assert!(msg.contains("`otlp` is not an http:// or https:// URL"), "{msg}");
    let config = valid(&format!("[server.tracing]\notlp = \"http://otel-collector:4318/\"\n\n{FLOW_HEAD}{WEB}"));
    assert_eq!(config.server.tracing.expect("on").endpoint, "http://otel-collector:4318/v1/traces");
}
