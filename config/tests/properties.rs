//! Property tests of the routing rules and the configuration parser, against small reference models:
//! matching (exact host beats wildcard, the longest wildcard suffix, the longest path prefix on segment
//! boundaries) for any set of bindings and any request; validation never lets two flows own the same
//! host and path; durations round-trip; and no input, however mangled, makes the parser panic.

use std::collections::HashSet;
use std::path::Path;

use leannodes_config::binding::BindingIndex;
use leannodes_config::{Binding, HostPattern};
use proptest::prelude::*;

const LABELS: &[&str] = &["a", "b", "shop", "api"];
const BINDING_PATHS: &[&str] = &["/", "/api", "/api/", "/api/v1", "/apix", "/x/y"];
const REQUEST_PATHS: &[&str] = &["/", "/api", "/api/", "/api/v1/z", "/apix", "/apix/1", "/x", "/x/y/z", "/q"];

fn labels(range: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = Vec<&'static str>> {
    prop::collection::vec(prop::sample::select(LABELS), range)
}

/// A host pattern under `.test`.
fn pattern() -> impl Strategy<Value = HostPattern> {
    prop_oneof![
        labels(1..=3).prop_map(|l| HostPattern::Exact(format!("{}.test", l.join(".")))),
        labels(0..=2).prop_map(|l| HostPattern::Wildcard(if l.is_empty() { "test".into() } else { format!("{}.test", l.join(".")) })),
    ]
}

/// A request's `Host`: any case, maybe a port.
fn request_host() -> impl Strategy<Value = String> {
    (labels(1..=4), any::<bool>(), any::<u64>()).prop_map(|(l, port, case)| {
        let host: String = format!("{}.test", l.join("."))
            .chars()
            .enumerate()
            .map(|(i, ch)| if case >> (i % 64) & 1 == 1 { ch.to_ascii_uppercase() } else { ch })
            .collect();
        if port { format!("{host}:8080") } else { host }
    })
}

/// The rules, written the slow and obvious way.
fn reference(bindings: &[(HostPattern, &str, usize)], host: &str, path: &str) -> Option<usize> {
    let host = host.split(':').next().unwrap_or_default().to_ascii_lowercase();
    let segment_prefix =
        |prefix: &str| path == prefix || (path.starts_with(prefix) && (prefix.ends_with('/') || path[prefix.len()..].starts_with('/')));
    let best = |candidates: Vec<&(HostPattern, &str, usize)>| candidates.into_iter().max_by_key(|(_, p, _)| p.len()).map(|(_, _, v)| *v);
    let exact: Vec<_> = bindings.iter().filter(|(h, p, _)| *h == HostPattern::Exact(host.clone()) && segment_prefix(p)).collect();
    if let Some(v) = best(exact) {
        return Some(v);
    }
    // Wildcards: the longest suffix of the host that has a matching path wins.
    let mut suffixes: Vec<&str> = host.match_indices('.').map(|(i, _)| &host[i + 1..]).collect();
    suffixes.sort_by_key(|s| std::cmp::Reverse(s.len()));
    suffixes.into_iter().find_map(|suffix| {
        best(bindings.iter().filter(|(h, p, _)| *h == HostPattern::Wildcard(suffix.to_string()) && segment_prefix(p)).collect())
    })
}

/// `PROPTEST_CASES` for a longer run, else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A configuration using most of the file's features.
const SAMPLE: &str = r#"
[server]
listen = ["127.0.0.1:8080"]
admin_listen = "127.0.0.1:9090"
store = "sqlite://state.db"
check_listen = "127.0.0.1:9091"
public_status = "detailed"

[[server.tls]]
listen = "127.0.0.1:8443"
certs = [{ cert = "tls/a.pem", key = "tls/a.key" }, { cert = "tls/b.pem", key = "tls/b.key" }]

[server.savings]
node_hourly_cost = 0.2
node_cpu = 4

[defaults]
idle_after = "15m"
hold_timeout = "2m"
max_held = 100

[[notification]]
name = "ops"
kind = "webhook"
format = "generic"
url = "http://127.0.0.1:9/hook"
events = ["wake_failed"]

[[flow]]
name = "shop"
hosts = ["shop.example.com", "*.shop.example.com"]
paths = ["/", "/api"]
upstream = "web"
upstream_protocol = "h2"
upstream_tls = { sni = "web.internal" }
ignore = { user_agents = ["kube-probe/*"], paths = ["/healthz"] }
keep_warm = [{ cron = "0 8 * * 1-5", for = "10h", tz = "Europe/Berlin" }]

  [[flow.node]]
  name = "db"
  kind = "process"
  command = ["sleep", "3600"]
  port = 5432
  ready = { tcp = "127.0.0.1:5432" }

  [[flow.node]]
  name = "web"
  kind = "process"
  command = ["sleep", "3600"]
  port = 8081
  after = ["db"]
  timeout = "90s"
  max_concurrency = 20
"#;

#[test]
fn the_sample_is_valid() {
    leannodes_config::parse_toml(SAMPLE, "sample.toml", Path::new(".")).expect("the sample the mangling starts from is valid");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(512), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_index_matches_like_the_rules_say(
        raw in prop::collection::vec((pattern(), prop::sample::select(BINDING_PATHS)), 0..12),
        requests in prop::collection::vec((request_host(), prop::sample::select(REQUEST_PATHS)), 1..16),
    ) {
        // One value per distinct binding (validation refuses the same host and path twice).
        let mut seen = HashSet::new();
        let bindings: Vec<(HostPattern, &str, usize)> = raw
            .into_iter()
            .filter(|(h, p)| seen.insert((h.clone(), *p)))
            .enumerate()
            .map(|(i, (h, p))| (h, p, i))
            .collect();
        let mut index = BindingIndex::new();
        for (host, path, value) in &bindings {
            index.insert(&Binding { host: host.clone(), path: path.to_string() }, *value);
        }
        for (host, path) in &requests {
            prop_assert_eq!(index.find(host, path).copied(), reference(&bindings, host, path), "{} {}", host, path);
        }
    }

    #[test]
    fn validation_never_lets_two_flows_own_the_same_host_and_path(
        flows in prop::collection::vec(
            (prop::collection::vec((pattern(), any::<bool>()), 1..3), prop::collection::vec(prop::sample::select(BINDING_PATHS), 1..3)),
            1..5,
        ),
    ) {
        let mut text = String::new();
        let mut declared: Vec<(String, String, usize)> = Vec::new();
        for (i, (hosts, paths)) in flows.iter().enumerate() {
            let hosts: Vec<String> = hosts
                .iter()
                .map(|(h, upper)| {
                    let h = h.to_string();
                    if *upper { h.to_ascii_uppercase() } else { h }
                })
                .collect();
            for h in &hosts {
                for p in paths {
                    declared.push((h.to_ascii_lowercase(), p.to_string(), i));
                }
            }
            let list = |items: &[String]| items.iter().map(|s| format!("\"{s}\"")).collect::<Vec<_>>().join(", ");
            let paths: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
            text.push_str(&format!(
                "[[flow]]\nname = \"f{i}\"\nhosts = [{}]\npaths = [{}]\nupstream = \"127.0.0.1:{}\"\n\n",
                list(&hosts),
                list(&paths),
                9000 + i
            ));
        }
        let shared = declared.iter().any(|(h, p, i)| declared.iter().any(|(h2, p2, j)| h == h2 && p == p2 && i != j));
        match leannodes_config::parse_toml(&text, "prop.toml", Path::new(".")) {
            Ok(config) => {
                prop_assert!(!shared, "accepted two flows on one host and path:\n{}", text);
                let mut owners = HashSet::new();
                for flow in &config.flows {
                    for b in &flow.bindings {
                        prop_assert!(owners.insert((b.host.clone(), b.path.clone())) || flow.bindings.iter().filter(|o| *o == b).count() > 1);
                    }
                }
            }
            Err(e) => {
                prop_assert!(shared, "refused a configuration without shared bindings:\n{}\n{}", text, e);
                prop_assert!(e.to_string().contains("both bind host"), "{}", e);
            }
        }
    }

    #[test]
    fn durations_round_trip_and_bad_ones_are_errors(ms in 1u64..(400 * 24 * 3600 * 1000), junk in "[a-z0-9 .]{0,12}") {
        let written = humantime::format_duration(std::time::Duration::from_millis(ms)).to_string();
        let flow = "[[flow]]\nname = \"f\"\nhosts = [\"f.test\"]\nupstream = \"127.0.0.1:9\"\n";
        let text = format!("[defaults]\nidle_after = \"{written}\"\n\n{flow}");
        let config = leannodes_config::parse_toml(&text, "d.toml", Path::new(".")).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(config.flows[0].idle_after, std::time::Duration::from_millis(ms));
        // Anything else is either a duration or an error that names the key; never a panic.
        let text = format!("[defaults]\nidle_after = \"{junk}\"\n\n{flow}");
        if let Err(e) = leannodes_config::parse_toml(&text, "d.toml", Path::new(".")) {
            prop_assert!(e.to_string().contains("idle_after"), "{}", e);
        }
    }

    #[test]
    fn the_parser_never_panics_on_mangled_input(cut in 0usize..2000, noise in prop::collection::vec(any::<u8>(), 0..64), at in 0usize..2000) {
        // A valid file, cut anywhere and with noise spliced in anywhere.
        let base = SAMPLE;
        let mut bytes = base.as_bytes()[..cut.min(base.len())].to_vec();
        let at = at.min(bytes.len());
        bytes.splice(at..at, noise);
        let text = String::from_utf8_lossy(&bytes);
        let _ = leannodes_config::parse_toml(&text, "mangled.toml", Path::new("."));
    }
}
