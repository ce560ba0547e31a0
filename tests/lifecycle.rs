//! End-to-end tests of store-managed flows through `leannodes serve`: a flow created, drafted, committed
//! and activated through the management API serves real demo-backend process nodes through the real
//! proxy; versions switch (forward and back) under concurrent load without a failed request; and with
//! three replicas on Postgres an activation on one reaches the others.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use leannodes_harness::stores::TestPostgres;
use leannodes_harness::{DemoNode, Serve, assert_eventually, workdir};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_leannodes");

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(60)).build().expect("client")
}

/// Calls the management API as the first administrator; returns the status and the JSON body.
async fn api(serve: &Serve, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = client().request(method, serve.admin_url(path)).bearer_auth(serve.token());
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("management API");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Takes the lock, saves `spec` as the draft, commits it (activating it when asked); returns the
/// version number.
async fn commit(serve: &Serve, flow: &str, spec: &Value, activate: bool) -> u64 {
    let (status, draft) = api(serve, reqwest::Method::POST, &format!("/api/v1/flows/{flow}/draft/lock"), None).await;
    assert_eq!(status, 200, "{draft}");
    let saved = client()
        .put(serve.admin_url(&format!("/api/v1/flows/{flow}/draft")))
        .bearer_auth(serve.token())
        .header("if-match", draft["version"].to_string())
        .json(&json!({ "spec": spec }))
        .send()
        .await
        .expect("save");
    assert_eq!(saved.status(), 200, "{}", saved.text().await.unwrap_or_default());
    let (status, version) = api(
        serve,
        reqwest::Method::POST,
        &format!("/api/v1/flows/{flow}/draft/commit"),
        Some(json!({ "message": "edit", "activate": activate })),
    )
    .await;
    assert_eq!(status, 201, "{version}");
    version["number"].as_u64().expect("number")
}

/// The body of a request for `/who` through `serve`'s proxy with this host.
async fn who(serve: &Serve, host: &str) -> Result<String, String> {
    let response = client().get(serve.url("/who")).header("host", host).send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response.text().await.map_err(|e| e.to_string())?;
    if status == 200 { Ok(body) } else { Err(format!("{status}: {body}")) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_made_through_the_api_serves_and_switches_versions_without_a_failed_request() {
    let dir = workdir();
    let serve = Serve::start(BIN, dir.path(), "", "");
    let db = DemoNode::new("db").args(&["--startup-delay", "300ms"]);
    let blue = DemoNode::new("blue").after(&["db"]);
    let green = DemoNode::new("green").after(&["db"]).args(&["--startup-delay", "200ms"]);
    let nodes: Vec<Value> = [&db, &blue, &green].iter().map(|n| n.json(BIN, dir.path())).collect();
    let v1_spec = json!({ "hosts": ["shop.test"], "upstream": "blue", "node": nodes });

    let (status, created) = api(&serve, reqwest::Method::POST, "/api/v1/flows", Some(json!({ "name": "shop", "spec": v1_spec }))).await;
    assert_eq!(status, 201, "{created}");
    assert!(who(&serve, "shop.test").await.is_err_and(|e| e.starts_with("404")), "nothing serves before an activation");
    let (status, v1) =
        api(&serve, reqwest::Method::POST, "/api/v1/flows/shop/draft/commit", Some(json!({ "message": "first", "activate": true }))).await;
    assert_eq!((status, v1["number"].as_u64()), (201, Some(1)), "{v1}");

    // The first request is held while db and blue wake, then gets blue's real body.
    let response = client().get(serve.url("/who")).header("host", "shop.test").send().await.expect("request");
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("x-leannodes-cold-start").is_some(), "it was held for a cold start");
    assert_eq!(response.text().await.expect("body"), "blue GET /who\n");

    let mut v2_spec = v1_spec.clone();
    v2_spec["upstream"] = json!("green");
    assert_eq!(commit(&serve, "shop", &v2_spec, false).await, 2);
    let (_, diff) = api(&serve, reqwest::Method::GET, "/api/v1/flows/shop/diff?from=1&to=2", None).await;
    assert_eq!(diff["fields"], json!([{ "path": "/upstream", "from": "blue", "to": "green" }]), "{diff}");
    assert_eq!(diff["nodes"], json!({ "added": [], "removed": [], "changed": [] }));
    assert_eq!(who(&serve, "shop.test").await.as_deref(), Ok("blue GET /who\n"), "a commit alone changes no traffic");

    // Concurrent load while v2 and then v1 are activated.
    let stop = Arc::new(AtomicBool::new(false));
    let mut loads = Vec::new();
    for _ in 0..4 {
        let (stop, url) = (stop.clone(), serve.url("/who"));
        loads.push(tokio::spawn(async move {
            let client = client();
            let (mut seen, mut failed) = (std::collections::BTreeSet::new(), Vec::new());
            while !stop.load(Ordering::Relaxed) {
                match client.get(&url).header("host", "shop.test").send().await {
                    Ok(r) if r.status() == 200 => {
                        seen.insert(r.text().await.unwrap_or_default());
                    }
                    Ok(r) => failed.push(format!("{}: {}", r.status(), r.text().await.unwrap_or_default())),
                    Err(e) => failed.push(e.to_string()),
                }
            }
            (seen, failed)
        }));
    }
    let (status, activated) = api(&serve, reqwest::Method::POST, "/api/v1/flows/shop/versions/2/activate", None).await;
    assert_eq!((status, activated["applied"].as_bool()), (200, Some(true)), "{activated}");
    assert_eventually!(who(&serve, "shop.test").await.as_deref() == Ok("green GET /who\n"), "traffic follows v2");
    let (status, rolled_back) = api(&serve, reqwest::Method::POST, "/api/v1/flows/shop/versions/1/activate", None).await;
    assert_eq!((status, rolled_back["active_version"].as_u64()), (200, Some(1)), "{rolled_back}");
    assert_eventually!(who(&serve, "shop.test").await.as_deref() == Ok("blue GET /who\n"), "traffic follows v1 again");
    stop.store(true, Ordering::Relaxed);
    let mut bodies = std::collections::BTreeSet::new();
    for load in loads {
        let (seen, failed) = load.await.expect("join");
        assert!(failed.is_empty(), "failed requests during the switches: {failed:?}");
        bodies.extend(seen);
    }
    assert!(bodies.contains("green GET /who\n") && bodies.contains("blue GET /who\n"), "the load saw both versions: {bodies:?}");

    let (_, listed) = api(&serve, reqwest::Method::GET, "/api/v1/flows?source=store", None).await;
    assert_eq!((listed["flows"][0]["name"].as_str(), listed["flows"][0]["version"].as_u64()), (Some("shop"), Some(1)), "{listed}");

    // After a restart the active version serves again, from the store, still pinned.
    let (status, _) = api(&serve, reqwest::Method::POST, "/api/v1/flows/shop/pin", None).await;
    assert_eq!(status, 200);
    drop(serve);
    let serve = Serve::start(BIN, dir.path(), "", "");
    assert_eq!(who(&serve, "shop.test").await.as_deref(), Ok("blue GET /who\n"), "v1 serves after a restart");
    let (_, listed) = api(&serve, reqwest::Method::GET, "/api/v1/flows", None).await;
    assert_eq!((listed["flows"][0]["version"].as_u64(), listed["flows"][0]["pinned"].as_bool()), (Some(1), Some(true)), "{listed}");
}

/// The body (or the error code) of a request for `/who` with `X-LeanNodes-Version`.
async fn who_version(serve: &Serve, host: &str, version: &str) -> Result<String, String> {
    let response = client()
        .get(serve.url("/who"))
        .header("host", host)
        .header("x-leannodes-version", version)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response.text().await.map_err(|e| e.to_string())?;
    if status == 200 { Ok(body) } else { Err(format!("{status}: {body}")) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_session_serves_a_version_beside_the_active_one_until_it_expires() {
    let dir = workdir();
    let serve = Serve::start(BIN, dir.path(), "", "");
    let nodes: Vec<Value> = [DemoNode::new("blue"), DemoNode::new("green")].iter().map(|n| n.json(BIN, dir.path())).collect();
    let spec = |upstream: &str| json!({ "hosts": ["shop.test"], "upstream": upstream, "node": nodes });
    let (status, created) =
        api(&serve, reqwest::Method::POST, "/api/v1/flows", Some(json!({ "name": "shop", "spec": spec("blue") }))).await;
    assert_eq!(status, 201, "{created}");
    let (status, _) =
        api(&serve, reqwest::Method::POST, "/api/v1/flows/shop/draft/commit", Some(json!({ "message": "v1", "activate": true }))).await;
    assert_eq!(status, 201);
    assert_eq!(commit(&serve, "shop", &spec("green"), false).await, 2);

    let (status, session) =
        api(&serve, reqwest::Method::POST, "/api/v1/flows/shop/versions/2/test-session", Some(json!({ "ttl": "4s" }))).await;
    assert_eq!(status, 201, "{session}");
    let host = session["host"].as_str().expect("host").to_string();
    assert_eq!(host, "v2--shop.test-sessions.shop.test");
    assert_eq!(who(&serve, &host).await.as_deref(), Ok("green GET /who\n"), "the test host serves v2");
    assert_eq!(who(&serve, "shop.test").await.as_deref(), Ok("blue GET /who\n"), "the flow's hosts still serve v1");
    assert_eq!(who_version(&serve, "shop.test", "2").await.as_deref(), Ok("green GET /who\n"), "the header reaches v2");
    assert_eq!(who_version(&serve, "shop.test", "1").await.as_deref(), Ok("blue GET /who\n"), "and the active version");
    let unknown = who_version(&serve, "shop.test", "9").await;
    assert!(unknown.as_ref().is_err_and(|e| e.starts_with("404") && e.contains("no_test_session")), "{unknown:?}");
    let (_, listed) = api(&serve, reqwest::Method::GET, "/api/v1/flows/shop/test-sessions", None).await;
    assert_eq!(listed["items"][0]["version"], 2, "{listed}");
    let (_, flows) = api(&serve, reqwest::Method::GET, "/api/v1/flows", None).await;
    assert_eq!(flows["flows"].as_array().map(Vec::len), Some(1), "sessions are listed under their flow: {flows}");

    // It ends by itself; the active version never stopped.
    assert_eventually!(who(&serve, &host).await.is_err_and(|e| e.starts_with("404")), "the test host stops serving at expiry");
    assert!(who_version(&serve, "shop.test", "2").await.is_err_and(|e| e.contains("no_test_session")));
    assert_eq!(who(&serve, "shop.test").await.as_deref(), Ok("blue GET /who\n"));
    let (_, listed) = api(&serve, reqwest::Method::GET, "/api/v1/flows/shop/test-sessions", None).await;
    assert_eq!(listed["items"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_on_postgres_follow_an_activation_made_on_one() {
    let db = TestPostgres::create();
    let dir = workdir();
    // Two real backends the flow's external nodes point at.
    let mut backends = Vec::new();
    let mut ports = Vec::new();
    for name in ["blue", "green"] {
        let port = leannodes_harness::free_port();
        backends.push(
            std::process::Command::new(BIN)
                .args(["demo-backend", "--port", &port.to_string(), "--name", name])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("backend"),
        );
        ports.push(port);
    }
    let node =
        |name: &str, port: u16| json!({ "name": name, "kind": "external", "port": port, "ready": { "tcp": format!("127.0.0.1:{port}") } });
    let spec =
        |upstream: &str| json!({ "hosts": ["shop.test"], "upstream": upstream, "node": [node("blue", ports[0]), node("green", ports[1])] });
    let extra = format!("store = \"{}\"\nactivity_flush = \"200ms\"", db.url);
    let mut replicas = Vec::new();
    for i in 0..3 {
        let folder = dir.path().join(format!("r{i}"));
        std::fs::create_dir_all(&folder).expect("folder");
        replicas.push(Serve::start(BIN, &folder, &format!("{extra}\nreplica_id = \"r{i}\""), ""));
    }
    let (status, created) =
        api(&replicas[0], reqwest::Method::POST, "/api/v1/flows", Some(json!({ "name": "shop", "spec": spec("blue") }))).await;
    assert_eq!(status, 201, "{created}");
    let (status, v1) =
        api(&replicas[0], reqwest::Method::POST, "/api/v1/flows/shop/draft/commit", Some(json!({ "message": "v1", "activate": true })))
            .await;
    assert_eq!(status, 201, "{v1}");
    for replica in &replicas {
        assert_eventually!(who(replica, "shop.test").await.as_deref() == Ok("blue GET /who\n"), "replica {} serves v1", replica.admin);
    }
    assert_eq!(commit(&replicas[1], "shop", &spec("green"), false).await, 2);
    let (status, activated) = api(&replicas[2], reqwest::Method::POST, "/api/v1/flows/shop/versions/2/activate", None).await;
    assert_eq!(status, 200, "{activated}");
    for replica in &replicas {
        assert_eventually!(who(replica, "shop.test").await.as_deref() == Ok("green GET /who\n"), "replica {} follows v2", replica.admin);
    }
    let (status, _) = api(&replicas[0], reqwest::Method::DELETE, "/api/v1/flows/shop", None).await;
    assert_eq!(status, 204);
    for replica in &replicas {
        assert_eventually!(who(replica, "shop.test").await.is_err_and(|e| e.starts_with("404")), "replica {} drops it", replica.admin);
    }
    for mut backend in backends {
        let _ = backend.kill();
        let _ = backend.wait();
    }
}
