use super::*;
use leannodes_config::binding::normalize_host;

fn table(flows: &[(&str, &[&str], &[&str])]) -> RouteTable {
    let mut table = RouteTable::new();
    for (i, (name, hosts, paths)) in flows.iter().enumerate() {
        let hosts = hosts.iter().map(|h| format!("\"{h}\"")).collect::<Vec<_>>().join(", ");
        let paths = paths.iter().map(|p| format!("\"{p}\"")).collect::<Vec<_>>().join(", ");
        let text = format!("[[flow]]\nname = \"{name}\"\nhosts = [{hosts}]\npaths = [{paths}]\nupstream = \"127.0.0.1:{}\"\n", 1000 + i);
        let config = leannodes_config::parse_toml(&text, "t", std::path::Path::new(".")).expect("valid");
        let flow = config.flows[0].clone();
        let route = Arc::new(Route {
            flow: Arc::new(FlowHandle::detached(flow.clone())),
            upstream: Upstream::fixed(SocketAddr::from(([127, 0, 0, 1], 1000 + i as u16))),
            metrics: Arc::default(),
            transport: UpstreamTransport::default(),
        });
        table.insert(&flow.bindings, route);
    }
    table
}

fn find<'a>(t: &'a RouteTable, host: &str, path: &str) -> Option<&'a str> {
    t.find(host, path).map(|r| r.flow.name())
}

#[test]
fn exact_beats_wildcard_and_case_and_port_are_ignored() {
    let t = table(&[("exact", &["shop.example.com"], &["/"]), ("wild", &["*.example.com"], &["/"])]);
    assert_eq!(find(&t, "shop.example.com", "/"), Some("exact"));
    assert_eq!(find(&t, "SHOP.Example.com:8080", "/x"), Some("exact"));
    assert_eq!(find(&t, "shop.example.com.", "/"), Some("exact"));
    assert_eq!(find(&t, "api.example.com", "/"), Some("wild"));
    assert_eq!(find(&t, "a.b.example.com", "/"), Some("wild"));
    assert_eq!(find(&t, "example.com", "/"), None, "a wildcard needs a label before the suffix");
    assert_eq!(find(&t, "other.org", "/"), None);
}

#[test]
fn longest_wildcard_suffix_wins() {
    let t = table(&[("broad", &["*.example.com"], &["/"]), ("narrow", &["*.eu.example.com"], &["/"])]);
    assert_eq!(find(&t, "x.eu.example.com", "/"), Some("narrow"));
    assert_eq!(find(&t, "x.us.example.com", "/"), Some("broad"));
}

#[test]
fn longest_path_prefix_wins_on_segment_boundaries() {
    let t = table(&[("root", &["a.test"], &["/"]), ("api", &["a.test"], &["/api"]), ("v2", &["a.test"], &["/api/v2/"])]);
    assert_eq!(find(&t, "a.test", "/"), Some("root"));
    assert_eq!(find(&t, "a.test", "/api"), Some("api"));
    assert_eq!(find(&t, "a.test", "/api/users"), Some("api"));
    assert_eq!(find(&t, "a.test", "/apix"), Some("root"));
    assert_eq!(find(&t, "a.test", "/api/v2/x"), Some("v2"));
    assert_eq!(find(&t, "a.test", "/api/v2"), Some("api"), "`/api/v2/` needs the slash");
}

#[test]
fn exact_host_without_matching_path_falls_back_to_wildcard() {
    let t = table(&[("api", &["shop.test"], &["/api"]), ("wild", &["*.test"], &["/"])]);
    assert_eq!(find(&t, "shop.test", "/api/x"), Some("api"));
    assert_eq!(find(&t, "shop.test", "/home"), Some("wild"));
}

#[test]
fn ipv6_hosts_keep_their_brackets() {
    assert_eq!(normalize_host("[::1]:8080"), "[::1]");
    assert_eq!(normalize_host("[::1]"), "[::1]");
    assert_eq!(normalize_host("Host:80"), "host");
}
