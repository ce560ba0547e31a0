//! Every gateway's artifact, read back the way the gateway reads it: routing artifacts must send each
//! flow's hosts and paths to that flow's own upstream and nowhere else (compared, request by request,
//! with the proxy's own routing), policies must attach to every flow's route, and the line-based
//! configuration model must read back what it printed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use leannodes_config::binding::{BindingIndex, prefix_matches};
use leannodes_config::{Config, GatewayKind};
use serde_json::Value;

use super::conf::{self, Conf, Directive, Syntax};
use super::{RBAC_RULES, Target, driver, render};

/// Three flows with different upstreams: `shop` (two hosts, `/`), `api` (several paths, on hosts of its
/// own, one shared with `shop` and one under `docs`' wildcard) and `docs` (a wildcard host). Their hold
/// fits every gateway, so every gateway renders.
const FLOWS: &str = r#"
[server]
driver = "kubernetes"

[defaults]
hold_timeout = "15s"

[[flow]]
name = "shop"
hosts = ["shop.test", "www.shop.test"]
upstream = "web"

  [[flow.node]]
  name = "web"
  kind = "deployment"
  ref = "shop/web"
  port = 8080

[[flow]]
name = "api"
hosts = ["api.test", "shop.test", "x.docs.test"]
paths = ["/v1", "/admin"]
upstream = "backend"

  [[flow.node]]
  name = "backend"
  kind = "deployment"
  ref = "api/backend"
  port = 9000

[[flow]]
name = "docs"
hosts = ["*.docs.test"]
upstream = "cms"

  [[flow.node]]
  name = "cms"
  kind = "deployment"
  ref = "docs/cms"
  port = 3000
"#;

fn config() -> Config {
    leannodes_config::parse_toml(FLOWS, "flows.toml", Path::new(".")).unwrap_or_else(|d| panic!("{d}"))
}

/// Where each flow's requests must go: its Service in the cluster (Kubernetes artifacts name the Service
/// in their own namespace; the others its cluster address).
fn upstream_of(kind: GatewayKind, flow: &str) -> String {
    let (service, namespace, port) = match flow {
        "shop" => ("web", "shop", 8080),
        "api" => ("backend", "api", 9000),
        "docs" => ("cms", "docs", 3000),
        other => panic!("no flow {other}"),
    };
    if driver(kind).is_kubernetes() { format!("{service}:{port}") } else { format!("{service}.{namespace}.svc.cluster.local:{port}") }
}

/// Requests to try: every host (a sample for the wildcard, and one no flow serves) with paths at, below,
/// beside and outside every flow's prefixes.
fn probes() -> Vec<(&'static str, &'static str)> {
    let hosts = ["shop.test", "www.shop.test", "api.test", "x.docs.test", "a.docs.test", "docs.test", "other.test"];
    let paths = ["/", "/cart", "/v1", "/v1/users", "/v1x", "/admin", "/admin/", "/admin/x", "/administrator"];
    hosts.iter().flat_map(|h| paths.iter().map(move |p| (*h, *p))).collect()
}

/// The upstream a request (host, path) reaches through a gateway, if any.
type Destination = Box<dyn Fn(&str, &str) -> Option<String>>;
/// Whether a request (host, path) is checked.
type Checked = Box<dyn Fn(&str, &str) -> bool>;
/// Route matches (as the artifact writes them) and the upstream each sends to.
type Matches = Vec<(Value, String)>;

/// What an artifact does with a request.
enum Routing {
    /// Routes it.
    Routes(Destination),
    /// Only decides which requests are checked (the gateway's own routes stay).
    Checks(Checked),
    /// Attaches the callout to these routes of the flows (by name; they keep routing).
    Attaches(BTreeSet<String>),
    /// A single object the operator attaches to the flows' routes; it names no flow.
    Global,
}

/// Reads the artifact of `kind` the way that gateway does. The match is exhaustive: a new gateway must
/// say how its artifact routes.
fn routing(kind: GatewayKind, files: &BTreeMap<String, String>) -> Routing {
    let file = |name: &str| files.get(name).unwrap_or_else(|| panic!("{kind} renders {name}: {files:?}")).clone();
    match kind {
        GatewayKind::Envoy | GatewayKind::EnvoyGrpc => envoy(&file("envoy.yaml")),
        GatewayKind::Nginx => nginx(&file("leannodes.conf")),
        GatewayKind::Caddy => caddy(&file("Caddyfile")),
        GatewayKind::Haproxy => haproxy(&file("haproxy.cfg")),
        GatewayKind::Skipper => skipper(&file("skipper.eskip")),
        GatewayKind::IngressNginx => ingress_nginx(&file("ingress-nginx.yaml")),
        GatewayKind::Contour => contour(&file("contour.yaml")),
        GatewayKind::Apisix => apisix(&file("apisix.yaml")),
        GatewayKind::Istio => istio(&file("authorizationpolicy.yaml")),
        GatewayKind::EnvoyGateway => Routing::Attaches(
            yaml(&file("securitypolicy.yaml"))
                .iter()
                .map(|p| {
                    let name = p["spec"]["targetRefs"][0]["name"].as_str().expect("target").to_string();
                    assert_eq!(p["metadata"]["name"], format!("leannodes-{name}"), "one policy per flow's route");
                    name
                })
                .collect(),
        ),
        GatewayKind::Kgateway => {
            let docs = yaml(&file("kgateway.yaml"));
            let policy = docs.iter().find(|d| d["kind"] == "TrafficPolicy").expect("TrafficPolicy");
            Routing::Attaches(policy["spec"]["targetRefs"].as_array().expect("refs").iter().map(|r| str(&r["name"])).collect())
        }
        GatewayKind::Traefik | GatewayKind::Emissary | GatewayKind::Kong => Routing::Global,
    }
}

#[test]
fn every_artifact_routes_each_flows_hosts_and_paths_to_its_own_upstream() {
    let config = config();
    let flows: Vec<&leannodes_config::Flow> = config.flows.iter().map(|f| &**f).collect();
    let mut index = BindingIndex::new();
    for flow in &flows {
        for binding in &flow.bindings {
            index.insert(binding, flow.name.clone());
        }
    }
    let names: BTreeSet<String> = flows.iter().map(|f| f.name.clone()).collect();
    for kind in GatewayKind::ALL {
        let artifact = render(kind, &flows, &Target::default()).unwrap_or_else(|e| panic!("{kind}: {e}"));
        let files: BTreeMap<String, String> = artifact.files.into_iter().map(|f| (f.name, f.content)).collect();
        let text = files.values().cloned().collect::<Vec<_>>().join("\n");
        let mut wrong = Vec::new();
        match routing(kind, &files) {
            Routing::Routes(route) => {
                for (host, path) in probes() {
                    let expected = index.find(host, path).map(|flow| upstream_of(kind, flow));
                    let actual = route(host, path);
                    if actual != expected {
                        wrong.push(format!("{host}{path}: expected {expected:?}, the gateway sends it to {actual:?}"));
                    }
                }
            }
            Routing::Checks(checked) => {
                for (host, path) in probes() {
                    if checked(host, path) != index.find(host, path).is_some() {
                        wrong.push(format!("{host}{path}: checked = {}", checked(host, path)));
                    }
                }
            }
            Routing::Attaches(routes) => assert_eq!(routes, names, "{kind} attaches to every flow's route:\n{text}"),
            Routing::Global => {
                for flow in &names {
                    assert!(!text.contains(&upstream_of(kind, flow)), "{kind} names no upstream:\n{text}");
                }
            }
        }
        assert!(wrong.is_empty(), "{kind}:\n{}\n\n{text}", wrong.join("\n"));
    }
}

/// Whether `host` matches a host pattern as written in an artifact (`*.suffix` covers any depth).
fn host_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => host.strip_suffix(suffix).is_some_and(|rest| rest.len() > 1 && rest.ends_with('.')),
        None => pattern == host,
    }
}

/// Like [`host_matches`], where a wildcard covers one label only (Kubernetes Ingress, Contour, Caddy).
fn host_matches_one_label(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => host.split_once('.').is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
        None => pattern == host,
    }
}

/// Of the host patterns, the one a gateway picks for `host`: the exact host, else the longest wildcard.
fn pick_host<'a>(patterns: impl IntoIterator<Item = &'a str>, host: &str, matches: fn(&str, &str) -> bool) -> Option<&'a str> {
    patterns.into_iter().filter(|p| matches(p, host)).max_by_key(|p| (!p.starts_with("*."), p.len()))
}

fn yaml(text: &str) -> Vec<Value> {
    use serde::Deserialize;
    serde_norway::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{e}\n{text}")))
        .filter(|v| !v.is_null())
        .collect()
}

fn str(v: &Value) -> String {
    v.as_str().unwrap_or_else(|| panic!("a string: {v}")).to_string()
}

fn array(v: &Value) -> &Vec<Value> {
    v.as_array().unwrap_or_else(|| panic!("a list: {v}"))
}

/// Envoy: the virtual host by domain (exact, else the longest `*.` suffix), its first matching route,
/// that route's cluster's endpoint.
fn envoy(text: &str) -> Routing {
    let doc = yaml(text).remove(0);
    let resources = &doc["static_resources"];
    let hcm = &resources["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"];
    assert_eq!(hcm["http_filters"][0]["name"], "envoy.filters.http.ext_authz", "every request is checked first");
    let endpoints: BTreeMap<String, String> = array(&resources["clusters"])
        .iter()
        .map(|c| {
            let address = &c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"];
            (str(&c["name"]), format!("{}:{}", str(&address["address"]), address["port_value"]))
        })
        .collect();
    let hosts: Vec<(Vec<String>, Matches)> = array(&hcm["route_config"]["virtual_hosts"])
        .iter()
        .map(|v| {
            let routes = array(&v["routes"]).iter().map(|r| (r["match"].clone(), str(&r["route"]["cluster"]))).collect();
            (array(&v["domains"]).iter().map(str).collect(), routes)
        })
        .collect();
    Routing::Routes(Box::new(move |host, path| {
        let domain = pick_host(hosts.iter().flat_map(|(d, _)| d.iter().map(String::as_str)), host, host_matches)?;
        let (_, routes) = hosts.iter().find(|(d, _)| d.iter().any(|x| x == domain))?;
        let (_, cluster) = routes.iter().find(|(m, _)| match (m["prefix"].as_str(), m["path_separated_prefix"].as_str()) {
            (Some(prefix), _) => path.starts_with(prefix),
            (None, Some(prefix)) => path == prefix || path.starts_with(&format!("{prefix}/")),
            _ => panic!("unknown route match {m}"),
        })?;
        endpoints.get(cluster).cloned()
    }))
}

/// nginx: the server by `server_name`, then `location = path`, else the longest prefix location.
fn nginx(text: &str) -> Routing {
    let servers = conf::parse(Syntax::Nginx, text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    Routing::Routes(Box::new(move |host, path| {
        let names = servers.iter().flat_map(|s| s.children("server_name").flat_map(|d| d.args.iter().map(String::as_str)));
        let name = pick_host(names, host, host_matches)?;
        let server = servers.iter().find(|s| s.children("server_name").any(|d| d.args.iter().any(|a| a == name)))?;
        let locations: Vec<&Directive> = server.children("location").collect();
        let exact = locations.iter().find(|l| l.args.len() == 2 && l.args[0] == "=" && l.args[1] == path);
        let location = exact.or_else(|| {
            locations.iter().filter(|l| l.args.len() == 1 && path.starts_with(l.args[0].as_str())).max_by_key(|l| l.args[0].len())
        })?;
        assert!(location.children("auth_request").next().is_some(), "every location asks LeanNodes: {location:?}");
        let proxy = location.children("proxy_pass").next()?;
        proxy.args[0].strip_prefix("http://").map(str::to_string)
    }))
}

/// Caddy: the site by address, then its `handle` blocks in order (those with a path matcher first), the
/// first whose matcher matches.
fn caddy(text: &str) -> Routing {
    let sites = conf::parse(Syntax::Caddyfile, text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let address = |a: &str| a.trim_start_matches("http://").trim_end_matches(":8080").to_string();
    Routing::Routes(Box::new(move |host, path| {
        let addresses: Vec<String> = sites.iter().flat_map(|s| std::iter::once(&s.name).chain(&s.args)).map(|a| address(a)).collect();
        let picked = pick_host(addresses.iter().map(String::as_str), host, host_matches_one_label)?;
        let site = sites.iter().find(|s| std::iter::once(&s.name).chain(&s.args).any(|a| address(a) == picked))?;
        assert!(site.children("forward_auth").next().is_some(), "the site asks LeanNodes: {site:?}");
        let handles: Vec<&Directive> = site.children("handle").collect();
        let matched = |h: &&&Directive| match h.args.first() {
            None => true,
            Some(matcher) => {
                let m = site.children(matcher).next().unwrap_or_else(|| panic!("matcher {matcher} defined"));
                assert_eq!(m.args[0], "path");
                m.args[1..].iter().any(|p| p.strip_suffix('*').map_or(p == path, |prefix| path.starts_with(prefix)))
            }
        };
        let handle = handles.iter().filter(|h| !h.args.is_empty()).find(matched).or_else(|| handles.iter().find(|h| h.args.is_empty()))?;
        handle.children("reverse_proxy").next().map(|d| d.args[0].clone())
    }))
}

/// HAProxy: the first `use_backend` whose ACLs all match (each ACL: any of its lines), that backend's
/// server; a routed request must also be one the Lua callout checks.
fn haproxy(text: &str) -> Routing {
    let sections = conf::parse(Syntax::Haproxy, text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let frontend = sections.iter().find(|s| s.name == "frontend").expect("frontend").clone();
    let servers: BTreeMap<String, String> = sections
        .iter()
        .filter(|s| s.name == "backend")
        .map(|b| (b.args[0].clone(), b.children("server").next().expect("server").args[1].clone()))
        .collect();
    let check = frontend.children("http-request").find(|d| d.args[0] == "lua.leannodes_check").expect("the Lua callout").clone();
    assert_eq!(check.args[check.args.len() - 2..], ["if".to_string(), "leannodes_flow".to_string()]);
    Routing::Routes(Box::new(move |host, path| {
        let acl = |name: &str| {
            frontend.children("acl").filter(|a| a.args[0] == name).any(|a| {
                match a.args[1..].iter().map(String::as_str).collect::<Vec<_>>()[..] {
                    ["hdr(host),field(1,:)", "-i", "-m", "str", value] => host.eq_ignore_ascii_case(value),
                    ["hdr(host),field(1,:)", "-i", "-m", "end", value] => host.to_ascii_lowercase().ends_with(value),
                    ["path", value] => path == value,
                    ["path_beg", value] => path.starts_with(value),
                    ref other => panic!("unknown ACL {other:?}"),
                }
            })
        };
        let rule = frontend.children("use_backend").find(|u| {
            assert_eq!(u.args[1], "if");
            u.args[2..].iter().all(|a| acl(a))
        })?;
        assert!(acl("leannodes_flow"), "{host}{path} is routed, so it must be checked");
        servers.get(&rule.args[0]).cloned()
    }))
}

/// Skipper: of the routes whose `Host` and `PathSubtree` match, the longest subtree, then the heaviest;
/// two different backends left at the top would be a coin toss.
fn skipper(text: &str) -> Routing {
    let mut routes = Vec::new();
    for route in text.lines().filter(|l| !l.starts_with("//")).collect::<Vec<_>>().join("\n").split(';') {
        let route = route.trim();
        if route.is_empty() {
            continue;
        }
        let (_, rest) = route.split_once(": ").expect("id: route");
        let parts: Vec<&str> = rest.split("->").map(str::trim).collect();
        assert!(parts.iter().any(|p| p.starts_with("webhook(")), "every route asks LeanNodes: {route}");
        let arg = |name: &str| {
            let call = parts[0].split(" && ").find_map(|p| p.strip_prefix(&format!("{name}(")))?;
            Some(call.trim_end_matches(')').trim_matches('"').to_string())
        };
        let host = arg("Host").expect("Host()");
        let pattern = host.trim_start_matches('^').trim_end_matches('$').replace("[.]", ".");
        let pattern = pattern.strip_prefix(".*.").map_or(pattern.clone(), |s| format!("*.{s}"));
        let subtree = arg("PathSubtree").expect("PathSubtree()");
        let weight: usize = arg("Weight").expect("Weight()").parse().expect("number");
        let backend = parts.last().expect("backend").trim_matches('"').trim_start_matches("http://").to_string();
        routes.push((pattern, subtree, weight, backend));
    }
    Routing::Routes(Box::new(move |host, path| {
        let matching: Vec<&(String, String, usize, String)> =
            routes.iter().filter(|(h, subtree, _, _)| host_matches(h, host) && prefix_matches(subtree, path)).collect();
        let best = matching.iter().map(|(_, s, w, _)| (s.len(), *w)).max()?;
        let backends: BTreeSet<&String> = matching.iter().filter(|(_, s, w, _)| (s.len(), *w) == best).map(|r| &r.3).collect();
        assert_eq!(backends.len(), 1, "{host}{path}: one route wins, not {backends:?}");
        backends.into_iter().next().cloned()
    }))
}

/// ingress-nginx: the rules of the host (exact, else the one-label wildcard) across all Ingresses, the
/// longest `Prefix` path; every Ingress carries the callout.
fn ingress_nginx(text: &str) -> Routing {
    let mut rules: Vec<(String, String, String)> = Vec::new();
    for ingress in yaml(text) {
        assert!(ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/auth-url"].is_string(), "{ingress}");
        for rule in array(&ingress["spec"]["rules"]) {
            for p in array(&rule["http"]["paths"]) {
                assert_eq!(p["pathType"], "Prefix");
                let service = &p["backend"]["service"];
                rules.push((str(&rule["host"]), str(&p["path"]), format!("{}:{}", str(&service["name"]), service["port"]["number"])));
            }
        }
    }
    Routing::Routes(Box::new(move |host, path| {
        let picked = pick_host(rules.iter().map(|r| r.0.as_str()), host, host_matches_one_label)?;
        let rule = rules.iter().filter(|r| r.0 == picked && prefix_matches(&r.1, path)).max_by_key(|r| r.1.len())?;
        Some(rule.2.clone())
    }))
}

/// Contour: the HTTPProxy of the host (exact, else the one-label wildcard), an `exact` condition first,
/// else the longest `prefix`; every virtual host carries the authorization.
fn contour(text: &str) -> Routing {
    let mut proxies: Vec<(String, Matches)> = Vec::new();
    for proxy in yaml(text).into_iter().filter(|d| d["kind"] == "HTTPProxy") {
        assert_eq!(proxy["spec"]["virtualhost"]["authorization"]["extensionRef"]["name"], "leannodes", "{proxy}");
        let routes = array(&proxy["spec"]["routes"])
            .iter()
            .map(|r| {
                let service = &r["services"][0];
                (r["conditions"][0].clone(), format!("{}:{}", str(&service["name"]), service["port"]))
            })
            .collect();
        proxies.push((str(&proxy["spec"]["virtualhost"]["fqdn"]), routes));
    }
    Routing::Routes(Box::new(move |host, path| {
        let fqdn = pick_host(proxies.iter().map(|p| p.0.as_str()), host, host_matches_one_label)?;
        let (_, routes) = proxies.iter().find(|p| p.0 == fqdn)?;
        let exact = routes.iter().find(|(c, _)| c["exact"] == path);
        let prefix = || {
            routes
                .iter()
                .filter(|(c, _)| c["prefix"].as_str().is_some_and(|p| path.starts_with(p)))
                .max_by_key(|(c, _)| str(&c["prefix"]).len())
        };
        exact.or_else(prefix).map(|(_, upstream)| upstream.clone())
    }))
}

/// APISIX: the routes of the host (exact before wildcard), an exact path before the longest `*` prefix;
/// every route uses the forward-auth plugin config.
fn apisix(text: &str) -> Routing {
    let mut routes: Vec<(String, String, String)> = Vec::new();
    for route in yaml(text).into_iter().filter(|d| d["kind"] == "ApisixRoute") {
        for http in array(&route["spec"]["http"]) {
            assert_eq!(http["plugin_config_name"], "leannodes", "{http}");
            let backend = format!("{}:{}", str(&http["backends"][0]["serviceName"]), http["backends"][0]["servicePort"]);
            for host in array(&http["match"]["hosts"]) {
                for path in array(&http["match"]["paths"]) {
                    routes.push((str(host), str(path), backend.clone()));
                }
            }
        }
    }
    Routing::Routes(Box::new(move |host, path| {
        let picked = pick_host(routes.iter().map(|r| r.0.as_str()), host, host_matches)?;
        let candidates = routes.iter().filter(|r| r.0 == picked);
        let exact = candidates.clone().find(|r| r.1 == path);
        let prefix = || candidates.clone().filter(|r| r.1.strip_suffix('*').is_some_and(|p| path.starts_with(p))).max_by_key(|r| r.1.len());
        exact.or_else(prefix).map(|r| r.2.clone())
    }))
}

/// Istio: a request is checked when a rule's operation covers its host and (if listed) its path.
fn istio(text: &str) -> Routing {
    let policy = yaml(text).remove(0);
    assert_eq!(policy["spec"]["action"], "CUSTOM");
    let operations: Vec<(Vec<String>, Vec<String>)> = array(&policy["spec"]["rules"])
        .iter()
        .flat_map(|r| array(&r["to"]).iter().map(|t| &t["operation"]))
        .map(|o| {
            (array(&o["hosts"]).iter().map(str).collect(), o["paths"].as_array().map(|p| p.iter().map(str).collect()).unwrap_or_default())
        })
        .collect();
    Routing::Checks(Box::new(move |host, path| {
        operations.iter().any(|(hosts, paths): &(Vec<String>, Vec<String>)| {
            hosts.iter().any(|h| host_matches(h, host))
                && (paths.is_empty() || paths.iter().any(|p| p.strip_suffix('*').map_or(p == path, |prefix| path.starts_with(prefix))))
        })
    }))
}

#[test]
fn the_line_based_model_reads_back_what_it_printed() {
    let tricky = ["", "two words", "say \"hi\"", "it's", "a{b}", "x;y", "#hash", "$host", "back\\slash", "{", "}"];
    for syntax in [Syntax::Nginx, Syntax::Caddyfile, Syntax::Haproxy] {
        let inner = tricky.iter().map(|arg| Directive::new("set", ["k", arg])).collect();
        let directives = match syntax {
            // HAProxy sections hold simple directives only.
            Syntax::Haproxy => vec![Directive::block("frontend", ["a"], inner), Directive::block("backend", ["b"], vec![])],
            _ => vec![
                Directive::block("site", ["a"], vec![Directive::block("inner", Vec::<String>::new(), inner)]),
                Directive::new("top", ["x"]),
            ],
        };
        let conf = Conf { syntax, comment: "a comment\nover two lines".into(), directives: directives.clone() };
        let text = conf.to_string();
        assert_eq!(conf::parse(syntax, &text).unwrap_or_else(|e| panic!("{syntax:?}: {e}\n{text}")), directives, "{syntax:?}:\n{text}");
    }
}

#[test]
fn the_rbac_rules_are_what_detection_reads() {
    let mut needed = vec![("apiextensions.k8s.io", "customresourcedefinitions", "list"), ("networking.k8s.io", "ingressclasses", "list")];
    for kind in GatewayKind::ALL {
        if let Some(detection) = &driver(kind).detection {
            needed.push((detection.artifact.group, detection.artifact.plural, "get"));
        }
    }
    let granted: BTreeSet<(&str, &str, &str)> =
        RBAC_RULES.iter().flat_map(|(g, r, verbs)| verbs.iter().map(move |v| (*g, *r, *v))).collect();
    assert_eq!(granted, needed.into_iter().collect());
}

#[test]
fn every_kubernetes_gateway_is_detectable_and_every_gateway_is_named_once() {
    for kind in GatewayKind::ALL {
        assert_eq!(kind.as_str().parse::<GatewayKind>(), Ok(kind));
        assert_eq!(serde_json::to_value(kind).expect("json"), kind.as_str(), "the configuration's name is the CLI's");
    }
    let kubernetes: Vec<&str> = GatewayKind::ALL.into_iter().filter(|k| driver(*k).is_kubernetes()).map(GatewayKind::as_str).collect();
    assert_eq!(kubernetes, ["istio", "envoy-gateway", "ingress-nginx", "traefik", "contour", "emissary", "kgateway", "apisix", "kong"]);
    let err = "zuul".parse::<GatewayKind>().expect_err("unknown");
    assert!(err.to_string().starts_with("unknown gateway `zuul`; use one of: istio, envoy-gateway"), "{err}");
}
