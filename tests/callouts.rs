//! The three front doors — the proxy, forward-auth `/check` and Envoy `ext_authz` gRPC — answer every
//! row of the behaviour contract (DESIGN §4) the same way, because they run the same gate. "Allow" is
//! the backend's body through the proxy, and `200` with an empty body (or gRPC `OK`) from a callout.

use std::collections::BTreeMap;
use std::time::Duration;

use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest};
use leannodes_harness::{DemoNode, Serve, free_port};

const BIN: &str = env!("CARGO_BIN_EXE_leannodes");

/// The front doors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Door {
    Proxy,
    Check,
    ExtAuthz,
}

const DOORS: [Door; 3] = [Door::Proxy, Door::Check, Door::ExtAuthz];

/// A request as a client sends it.
#[derive(Debug, Clone)]
struct Ask {
    method: &'static str,
    path: &'static str,
    headers: Vec<(&'static str, &'static str)>,
}

fn ask(method: &'static str, path: &'static str, headers: &[(&'static str, &'static str)]) -> Ask {
    Ask { method, path, headers: headers.to_vec() }
}

/// What came back, reduced to what the contract specifies.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    status: u16,
    /// `error` of a JSON body, `html` for the warm-up page, `empty`, or the body text.
    body: String,
    headers: BTreeMap<String, String>,
}

fn seen(status: u16, headers: impl IntoIterator<Item = (String, String)>, body: &str) -> Seen {
    let wanted = ["retry-after", "cache-control", "grpc-status"];
    let headers = headers.into_iter().filter(|(k, _)| wanted.contains(&k.as_str())).collect();
    let body = if body.is_empty() {
        "empty".to_string()
    } else if body.starts_with("<!doctype html") || body.starts_with("<!DOCTYPE html") {
        "html".to_string()
    } else if let Ok(json) = serde_json::from_str::<serde_json::Value>(body) {
        json["error"].as_str().map_or_else(|| body.to_string(), |e| format!("error:{e}"))
    } else {
        body.to_string()
    };
    Seen { status, body, headers }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(30)).build().expect("client")
}

/// Sends an HTTP request with the client's headers and reduces the answer.
async fn seen_http(mut request: reqwest::RequestBuilder, a: &Ask) -> Seen {
    for (k, v) in &a.headers {
        request = request.header(*k, *v);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let headers: Vec<_> =
        response.headers().iter().map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or_default().to_string())).collect();
    seen(status, headers, &response.text().await.unwrap_or_default())
}

/// Sends `a` for `host` through `door`.
async fn send(serve: &Serve, ext_authz: u16, door: Door, host: &str, a: &Ask) -> Seen {
    match door {
        Door::Proxy => {
            let method = reqwest::Method::from_bytes(a.method.as_bytes()).expect("method");
            seen_http(client().request(method, serve.url(a.path)).header("host", host), a).await
        }
        Door::Check => {
            // As Caddy and Traefik send it: GET /check with the client's headers and X-Forwarded-*.
            let request = client()
                .get(serve.admin_url("/check"))
                .header("x-forwarded-host", host)
                .header("x-forwarded-uri", a.path)
                .header("x-forwarded-method", a.method);
            seen_http(request, a).await
        }
        Door::ExtAuthz => {
            let mut grpc = AuthorizationClient::connect(format!("http://127.0.0.1:{ext_authz}")).await.expect("connect ext_authz");
            let headers = a.headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            let http = HttpRequest { method: a.method.into(), path: a.path.into(), host: host.into(), headers, ..Default::default() };
            let request = CheckRequest {
                attributes: Some(AttributeContext {
                    request: Some(Request { http: Some(http), ..Default::default() }),
                    ..Default::default()
                }),
            };
            let response = grpc.check(request).await.expect("Check").into_inner();
            match response.http_response {
                Some(HttpResponse::DeniedResponse(denied)) => {
                    let headers = denied
                        .headers
                        .iter()
                        .filter_map(|h| h.header.as_ref())
                        .map(|h| (h.key.clone(), h.value.clone()))
                        .collect::<Vec<_>>();
                    seen(u16::try_from(denied.status.map_or(403, |s| s.code)).unwrap_or(0), headers, &denied.body)
                }
                _ => {
                    assert_eq!(response.status.map(|s| s.code), Some(0), "an allow is status OK");
                    seen(200, Vec::new(), "")
                }
            }
        }
    }
}

/// One row of the contract: flow settings and node arguments, the request, and the expected answer
/// (`None`: allowed — the backend's body through the proxy, `200`/OK from callouts).
struct Row {
    name: &'static str,
    settings: &'static str,
    node_args: &'static [&'static str],
    ask: Ask,
    expect: Option<Seen>,
}

fn expect(status: u16, body: &str, headers: &[(&str, &str)]) -> Option<Seen> {
    Some(Seen { status, body: body.into(), headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect() })
}

fn rows() -> Vec<Row> {
    let json = &[("accept", "application/json")][..];
    vec![
        Row { name: "awake", settings: "", node_args: &[], ask: ask("GET", "/a", json), expect: None },
        Row { name: "cold", settings: "", node_args: &["--startup-delay", "300ms"], ask: ask("POST", "/b", json), expect: None },
        Row {
            name: "browser",
            settings: "fast_hold = \"300ms\"\n",
            node_args: &["--startup-delay", "3s"],
            ask: ask("GET", "/page", &[("accept", "text/html,application/xhtml+xml")]),
            expect: expect(503, "html", &[("retry-after", "5"), ("cache-control", "no-store")]),
        },
        Row {
            name: "timeout",
            settings: "hold_timeout = \"300ms\"\n",
            node_args: &["--startup-delay", "3s"],
            ask: ask("GET", "/api", json),
            expect: expect(503, "error:cold_start_timeout", &[("retry-after", "5"), ("cache-control", "no-store")]),
        },
        Row {
            name: "failed",
            settings: "",
            node_args: &["--exit-after", "0s", "--exit-code", "3"],
            ask: ask("GET", "/api", json),
            expect: expect(503, "error:cold_start_failed", &[("retry-after", "1"), ("cache-control", "no-store")]),
        },
        Row {
            name: "disabled",
            settings: "disabled = true\n",
            node_args: &[],
            ask: ask("GET", "/api", json),
            expect: expect(503, "error:flow_disabled", &[("cache-control", "no-store")]),
        },
        Row {
            name: "ignored",
            settings: "ignore = { user_agents = [\"kube-probe/*\"] }\n",
            node_args: &[],
            ask: ask("GET", "/healthz", &[("user-agent", "kube-probe/1.33")]),
            expect: expect(503, "error:asleep", &[("retry-after", "5"), ("cache-control", "no-store")]),
        },
        Row {
            name: "grpc",
            settings: "hold_timeout = \"300ms\"\n",
            node_args: &["--startup-delay", "3s"],
            ask: ask("POST", "/svc.Echo/Say", &[("content-type", "application/grpc")]),
            // The proxy answers trailers-only 200; callouts, where 200 means allow, answer 503 with the
            // same grpc-status (gateways pass it on, gRPC clients read UNAVAILABLE either way).
            expect: expect(200, "empty", &[("grpc-status", "14")]),
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_row_of_the_contract_is_answered_alike_by_all_three_front_doors() {
    let dir = leannodes_harness::workdir();
    let rows = rows();
    let mut body = String::new();
    for row in &rows {
        for door in DOORS {
            let name = format!("{}-{door:?}", row.name).to_lowercase();
            body.push_str(&format!("\n[[flow]]\nname = \"{name}\"\nhosts = [\"{name}.test\"]\nupstream = \"{name}\"\n{}", row.settings));
            body.push_str(&DemoNode::new(&name).args(row.node_args).toml(BIN, dir.path()));
        }
    }
    // One more flow for max_held, where a first request must be held while the second arrives.
    for door in DOORS {
        let name = format!("full-{door:?}").to_lowercase();
        body.push_str(&format!("\n[[flow]]\nname = \"{name}\"\nhosts = [\"{name}.test\"]\nupstream = \"{name}\"\nmax_held = 1\n"));
        body.push_str(&DemoNode::new(&name).args(&["--startup-delay", "3s"]).toml(BIN, dir.path()));
    }
    let ext_authz = free_port();
    let serve = Serve::start(BIN, dir.path(), &format!("ext_authz_listen = \"127.0.0.1:{ext_authz}\""), &body);
    for door in DOORS {
        let name = format!("awake-{door:?}").to_lowercase();
        let warm =
            client().post(serve.admin_url(&format!("/api/v1/flows/{name}/warm"))).bearer_auth(serve.token()).send().await.expect("warm");
        assert!(warm.status().is_success());
    }

    for row in &rows {
        for door in DOORS {
            let host = format!("{}-{door:?}.test", row.name).to_lowercase();
            let got = send(&serve, ext_authz, door, &host, &row.ask).await;
            let want = match (&row.expect, door) {
                (None, Door::Proxy) => Seen {
                    status: 200,
                    body: format!("{} {} {}\n", host.trim_end_matches(".test"), row.ask.method, row.ask.path),
                    headers: BTreeMap::new(),
                },
                (None, _) => Seen { status: 200, body: "empty".into(), headers: BTreeMap::new() },
                (Some(e), Door::Proxy) => e.clone(),
                (Some(e), _) if row.name == "grpc" => {
                    let mut headers = e.headers.clone();
                    headers.insert("cache-control".into(), "no-store".into());
                    Seen { status: 503, headers, ..e.clone() }
                }
                (Some(e), _) => e.clone(),
            };
            let mut got_cmp = got.clone();
            if want.headers.is_empty() {
                got_cmp.headers.clear(); // allowed answers carry the backend's (or no) headers
            }
            assert_eq!(got_cmp, want, "row `{}` through {door:?}\n{}", row.name, serve.log());
        }
    }

    // max_held: the second request while one is held.
    for door in DOORS {
        let host = format!("full-{door:?}.test").to_lowercase();
        let first = {
            let (serve_url, admin_url) = (serve.url("/one"), serve.admin_url("/check"));
            let host = host.clone();
            tokio::spawn(async move {
                let _ = match door {
                    Door::Proxy => client().get(serve_url).header("host", host).send().await,
                    _ => client().get(admin_url).header("x-forwarded-host", host).header("x-forwarded-uri", "/one").send().await,
                };
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        let got = send(&serve, ext_authz, door, &host, &ask("GET", "/two", &[("accept", "application/json")])).await;
        let want = expect(503, "error:hold_queue_full", &[("retry-after", "2"), ("cache-control", "no-store")]).expect("row");
        assert_eq!(got, want, "max_held through {door:?}");
        first.abort();
    }

    // Hosts no flow serves: the proxy says 404, callouts allow (their gateway proxies as usual).
    let unmatched = ask("GET", "/", &[("accept", "application/json")]);
    assert_eq!(send(&serve, ext_authz, Door::Proxy, "other.test", &unmatched).await.status, 404);
    assert_eq!(
        send(&serve, ext_authz, Door::Check, "other.test", &unmatched).await,
        Seen { status: 200, body: "empty".into(), headers: [("cache-control".to_string(), "no-store".to_string())].into() }
    );
    assert_eq!(send(&serve, ext_authz, Door::ExtAuthz, "other.test", &unmatched).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_check_releases_when_the_flow_is_ready_and_counts_as_activity() {
    let dir = leannodes_harness::workdir();
    let node = DemoNode::new("web").args(&["--startup-delay", "700ms"]);
    let body = format!("\n[[flow]]\nname = \"shop\"\nhosts = [\"shop.test\"]\nupstream = \"web\"\n{}", node.toml(BIN, dir.path()));
    let check_port = free_port();
    let serve = Serve::start(BIN, dir.path(), &format!("check_unmatched = \"deny\"\ncheck_listen = \"127.0.0.1:{check_port}\""), &body);
    // Envoy's HTTP mode: original method and Host, the path appended to /check.
    let started = std::time::Instant::now();
    let response = client().delete(serve.admin_url("/check/orders/7?x=1")).header("host", "shop.test").send().await.expect("check");
    assert_eq!(response.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(600), "held until the node listened");
    assert_eq!(response.text().await.expect("body"), "", "allow is an empty 200");
    assert_eq!(leannodes_harness::http_get(([127, 0, 0, 1], node.port).into(), "/x").map(|r| r.0), Some(200), "the node is up");
    let flows: serde_json::Value =
        client().get(serve.admin_url("/api/v1/flows")).bearer_auth(serve.token()).send().await.expect("flows").json().await.expect("json");
    let shop = &flows["flows"][0];
    assert_eq!(shop["state"], "awake");
    assert!(shop["idle_ms"].as_u64().expect("idle_ms") < 5_000, "the check counted as activity: {shop}");
    // check_unmatched = "deny".
    let other = client().get(serve.admin_url("/check")).header("x-forwarded-host", "other.test").send().await.expect("check");
    assert_eq!(other.status(), 404);
    // The check-only listener answers checks and nothing of the admin API.
    let only = format!("http://127.0.0.1:{check_port}");
    let allowed = client().get(format!("{only}/check")).header("x-forwarded-host", "shop.test").send().await.expect("check listener");
    assert_eq!(allowed.status(), 200);
    let api = client().get(format!("{only}/api/v1/flows")).send().await.expect("check listener");
    assert_eq!(api.status(), 404, "no admin API on the check listener");
    // HEAD checks (some gateways probe) get no body.
    let head = client().head(serve.admin_url("/check")).header("x-forwarded-host", "shop.test").send().await.expect("head");
    assert_eq!(head.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_check_token_callouts_without_it_are_refused() {
    const TOKEN: &str = "a-shared-check-token-0123456789";
    let dir = leannodes_harness::workdir();
    let node = DemoNode::new("web");
    let body = format!("\n[[flow]]\nname = \"shop\"\nhosts = [\"shop.test\"]\nupstream = \"web\"\n{}", node.toml(BIN, dir.path()));
    let (check_port, ext_authz) = (free_port(), free_port());
    let serve = Serve::start_with_env(
        BIN,
        dir.path(),
        &format!(
            "check_token = \"env:TEST_CHECK_TOKEN\"\ncheck_listen = \"127.0.0.1:{check_port}\"\next_authz_listen = \"127.0.0.1:{ext_authz}\""
        ),
        &body,
        &[("TEST_CHECK_TOKEN", TOKEN)],
    );
    for url in [format!("http://127.0.0.1:{check_port}/check"), serve.admin_url("/check")] {
        let bare = client().get(&url).header("x-forwarded-host", "shop.test").send().await.expect("check");
        assert_eq!(bare.status(), 401, "{url}");
        assert_eq!(bare.json::<serde_json::Value>().await.expect("json")["error"], "check_unauthenticated");
        let wrong = client()
            .get(&url)
            .header("x-forwarded-host", "shop.test")
            .header("x-leannodes-check-token", "nope")
            .send()
            .await
            .expect("check");
        assert_eq!(wrong.status(), 401);
        let right = client()
            .get(&url)
            .header("x-forwarded-host", "shop.test")
            .header("x-leannodes-check-token", TOKEN)
            .send()
            .await
            .expect("check");
        assert_eq!(right.status(), 200, "{url}");
    }
    let mut grpc = AuthorizationClient::connect(format!("http://127.0.0.1:{ext_authz}")).await.expect("connect ext_authz");
    let check = |context: Option<&str>| {
        let http = HttpRequest { method: "GET".into(), path: "/".into(), host: "shop.test".into(), ..Default::default() };
        CheckRequest {
            attributes: Some(AttributeContext {
                request: Some(Request { http: Some(http), ..Default::default() }),
                context_extensions: context.map(|t| [("x-leannodes-check-token".to_string(), t.to_string())].into()).unwrap_or_default(),
                ..Default::default()
            }),
        }
    };
    let denied = grpc.check(check(None)).await.expect("Check").into_inner();
    assert_eq!(denied.status.map(|s| s.code), Some(7), "denied without the token");
    let by_context = grpc.check(check(Some(TOKEN))).await.expect("Check").into_inner();
    assert_eq!(by_context.status.map(|s| s.code), Some(0), "a context extension carries it (Contour, Envoy Gateway, kgateway)");
    let mut with_metadata = tonic::Request::new(check(None));
    with_metadata.metadata_mut().insert("x-leannodes-check-token", TOKEN.parse().expect("metadata"));
    let by_metadata = grpc.check(with_metadata).await.expect("Check").into_inner();
    assert_eq!(by_metadata.status.map(|s| s.code), Some(0), "gRPC metadata carries it (Envoy initial_metadata)");
}
