//! The dashboard in a real browser: `leannodes serve` (the binary cargo built, with the dashboard
//! embedded) serves a 4-node flow of demo-backend process nodes; `web/e2e/dashboard.mjs` drives Debian's
//! Chromium through playwright-core against it (sign-in and return to a deep link, the live graph of a
//! wake, the execution timeline, an operation, a wake that fails and says why, a flow made in the visual editor (nodes, edges, upstream, a
//! racing save, commit and activate, its wake, a change and its side-by-side diff, roll back),
//! keyboard-only navigation, both themes, a viewer without operations or edit controls (and with
//! operations on the one flow an administrator granted it), the versions of a store-managed flow, an invitation link that creates an account and works
//! once) and saves screenshots in `target/test-artifacts/dashboard/`. Also checked here without a
//! browser: content types, caching, deep links and the JSON 404 of unknown API paths.

use std::path::Path;
use std::process::Command;

use leannodes_harness::receiver::Receiver;
use leannodes_harness::{ADMIN_EMAIL, ADMIN_PASSWORD, DemoNode, Serve, http_request, workdir};

const BIN: &str = env!("CARGO_BIN_EXE_leannodes");
const VIEWER_EMAIL: &str = "viewer@leannodes.test";
const VIEWER_PASSWORD: &str = "a viewer's long password";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The diamond db → {cache, search} → web on 127.0.0.1 (so a plain request reaches it).
fn flow(dir: &Path) -> String {
    let nodes = [
        DemoNode::new("db").args(&["--startup-delay", "700ms"]),
        DemoNode::new("cache").after(&["db"]).args(&["--startup-delay", "200ms"]),
        DemoNode::new("search").after(&["db"]).args(&["--startup-delay", "300ms"]),
        DemoNode::new("web").after(&["cache", "search"]),
    ];
    let mut text = "\n[[flow]]\nname = \"shop\"\nhosts = [\"127.0.0.1\"]\nupstream = \"web\"\n".to_string();
    for node in &nodes {
        text.push_str(&node.toml(BIN, dir));
    }
    // A flow whose only node exits with status 3 before it ever listens: every wake fails.
    text.push_str("\n[[flow]]\nname = \"broken\"\nhosts = [\"broken.test\"]\nupstream = \"crash\"\n");
    text.push_str(&DemoNode::new("crash").args(&["--exit-after", "0s", "--exit-code", "3"]).toml(BIN, dir));
    text
}

/// A store-managed flow `blog` with two versions (upstream `blue`, then `green`), the first active.
fn store_flow(serve: &Serve) {
    let call = |method: &str, path: &str, extra: &[(&str, &str)], body: serde_json::Value| {
        let bearer = serve.bearer();
        let mut headers = vec![("authorization", bearer.as_str()), ("content-type", "application/json")];
        headers.extend_from_slice(extra);
        let answer = http_request(serve.admin, method, path, &headers, Some(&body.to_string())).expect("management API");
        assert!(answer.status < 300, "{method} {path}: {} {}", answer.status, answer.body);
        answer.json()
    };
    let node = |name: &str, port: u16| serde_json::json!({ "name": name, "kind": "external", "port": port, "ready": { "tcp": format!("127.0.0.1:{port}") } });
    let spec =
        |upstream: &str| serde_json::json!({ "hosts": ["blog.test"], "upstream": upstream, "node": [node("blue", 9), node("green", 10)] });
    call("POST", "/api/v1/flows", &[], serde_json::json!({ "name": "blog", "spec": spec("blue") }));
    call("POST", "/api/v1/flows/blog/draft/commit", &[], serde_json::json!({ "message": "blue", "activate": true }));
    let draft = call("POST", "/api/v1/flows/blog/draft/lock", &[], serde_json::json!({}));
    let version = draft["version"].to_string();
    call("PUT", "/api/v1/flows/blog/draft", &[("if-match", &version)], serde_json::json!({ "spec": spec("green") }));
    call("POST", "/api/v1/flows/blog/draft/commit", &[], serde_json::json!({ "message": "send traffic to green" }));
}

/// Three demo-backend nodes for the flow the browser test makes in the visual editor: their names,
/// command lines (as typed into the editor) and ports. Slow enough to watch them turn ready one by one.
fn editor_nodes(dir: &Path) -> String {
    let nodes = [
        // Not the names of flow shop's nodes: process nodes of one name are one shared workload.
        DemoNode::new("pg").args(&["--startup-delay", "600ms"]),
        DemoNode::new("api").args(&["--startup-delay", "300ms"]),
        DemoNode::new("frontend"),
    ];
    let list: Vec<serde_json::Value> = nodes
        .iter()
        .map(|node| {
            let spec = node.json(BIN, dir);
            let args: Vec<&str> = spec["command"].as_array().expect("command").iter().filter_map(|a| a.as_str()).collect();
            assert!(
                args.iter().all(|a| !a.is_empty() && !a.contains([' ', '\'', '"', '\\'])),
                "the editor test types these unquoted: {args:?}"
            );
            serde_json::json!({ "name": spec["name"], "command": args.join(" "), "port": spec["port"] })
        })
        .collect();
    serde_json::Value::Array(list).to_string()
}

fn built() -> bool {
    repo().join("web/dist/index.html").exists()
}

#[test]
fn the_binary_alone_serves_the_dashboard_with_the_right_headers_and_deep_links() {
    assert!(built(), "web/dist is missing: scripts/test builds the dashboard (npm ci && npm run build in web/) before cargo");
    let dir = workdir();
    // A copy of the binary in a folder of its own: the files it serves are inside it, not read from web/.
    let alone = dir.path().join("leannodes");
    std::fs::copy(BIN, &alone).expect("copy the binary");
    let binary = std::fs::read(&alone).expect("read the binary");
    let serve = Serve::start(alone.to_str().expect("path"), dir.path(), "", &flow(dir.path()));
    let index = http_request(serve.admin, "GET", "/", &[], None).expect("index");
    assert_eq!(index.status, 200);
    let built_index = std::fs::read_to_string(repo().join("web/dist/index.html")).expect("web/dist/index.html");
    assert_eq!(index.body, built_index, "the index.html of the last build");
    assert!(binary.windows(built_index.len()).any(|w| w == built_index.as_bytes()), "index.html is embedded in the binary");
    assert_eq!(index.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(index.header("cache-control"), Some("no-cache"));
    assert!(index.header("content-security-policy").is_some_and(|c| c.starts_with("default-src 'self'")));
    let deep = http_request(serve.admin, "GET", "/flows/shop", &[], None).expect("deep link");
    assert_eq!((deep.status, deep.body.as_str()), (200, index.body.as_str()), "a deep link gets the app");
    let script = index.body.split("src=\"").nth(1).and_then(|s| s.split('"').next()).expect("a script in index.html");
    assert!(script.starts_with("/assets/"), "{script}");
    let asset = http_request(serve.admin, "GET", script, &[], None).expect("asset");
    assert_eq!(asset.status, 200);
    assert_eq!(asset.header("content-type"), Some("text/javascript"));
    assert_eq!(asset.header("cache-control"), Some("public, max-age=31536000, immutable"));
    let missing = http_request(serve.admin, "GET", "/assets/nothing-here.js", &[], None).expect("missing");
    assert_eq!(missing.status, 404, "a missing file is not the app");
    let api = http_request(serve.admin, "GET", "/api/v1/nowhere", &[], None).expect("api");
    assert_eq!((api.status, api.json()["error"].as_str()), (404, Some("not_found")));
    for external in ["http://", "https://", "//fonts."] {
        assert!(!index.body.contains(external), "index.html loads nothing from elsewhere ({external})");
    }
}

#[test]
fn an_operator_and_a_viewer_use_the_dashboard_in_chromium() {
    assert!(built(), "web/dist is missing: scripts/test builds the dashboard (npm ci && npm run build in web/) before cargo");
    let dir = workdir();
    // A Slack route to a local endpoint, for Settings → Notifications and Send Test.
    let chat = Receiver::start(vec![]);
    let route = format!(
        "\n[[notification]]\nname = \"ops-chat\"\nkind = \"slack\"\nurl = \"{}\"\nevents = [\"wake_failed\"]\n",
        chat.url("/services/T0/B0/chat-s3cr3t")
    );
    let serve =
        Serve::start(BIN, dir.path(), "[server.savings]\nnode_hourly_cost = 0.4\ncurrency = \"EUR\"\n", &(flow(dir.path()) + &route));
    let body = serde_json::json!({ "email": VIEWER_EMAIL, "password": VIEWER_PASSWORD, "roles": ["viewer"] }).to_string();
    let created = http_request(
        serve.admin,
        "POST",
        "/api/v1/users",
        &[("authorization", &serve.bearer()), ("content-type", "application/json")],
        Some(&body),
    )
    .expect("create the viewer");
    assert_eq!(created.status, 201, "{}", created.body);
    let viewer_id = created.json()["id"].as_str().expect("the viewer's id").to_string();
    store_flow(&serve);
    let body = serde_json::json!({ "email": "newcomer@leannodes.test", "role": "viewer" }).to_string();
    let invitation = http_request(
        serve.admin,
        "POST",
        "/api/v1/invitations",
        &[("authorization", &serve.bearer()), ("content-type", "application/json")],
        Some(&body),
    )
    .expect("invite");
    assert_eq!(invitation.status, 201, "{}", invitation.body);
    let invite_url = invitation.json()["url"].as_str().expect("the link (no SMTP here)").to_string();
    let artifacts = repo().join("target/test-artifacts/dashboard");
    let output = Command::new("node")
        .arg(repo().join("web/e2e/dashboard.mjs"))
        .current_dir(repo().join("web"))
        .env("ADMIN_URL", format!("http://{}", serve.admin))
        .env("PROXY_URL", format!("http://{}", serve.proxy))
        .env("ADMIN_EMAIL", ADMIN_EMAIL)
        .env("ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("ADMIN_TOKEN", serve.token())
        .env("EDITOR_NODES", editor_nodes(dir.path()))
        .env("VIEWER_EMAIL", VIEWER_EMAIL)
        .env("VIEWER_PASSWORD", VIEWER_PASSWORD)
        .env("VIEWER_ID", &viewer_id)
        .env("INVITE_URL", &invite_url)
        .env("ARTIFACTS", &artifacts)
        .env("CHAT_URL", chat.url("/services/T0/B0/chat-s3cr3t"))
        .output()
        .expect("run node web/e2e/dashboard.mjs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the browser test failed:\n{stdout}\n{stderr}\nserver log:\n{}", serve.log());
    assert!(stdout.contains("dashboard: ok"), "{stdout}");
    let tests: Vec<_> =
        chat.received().into_iter().filter(|r| r.body["blocks"][0]["text"]["text"] == "LeanNodes test notification").collect();
    assert_eq!(tests.len(), 1, "Send Test in the dashboard posted one Block Kit message: {:?}", chat.received());
    let made: Vec<_> = chat.received().into_iter().filter(|r| r.path.ends_with("/made-s3cr3t")).collect();
    assert!(made.len() == 1 && made[0].body["source_type_name"] == "leannodes", "the route made in the form got a Datadog test: {made:?}");
    assert!(!serve.log().contains("s3cr3t"), "no route secret in the server log");
    for shot in [
        "login.png",
        "flow-detail.png",
        "editor.png",
        "editor-flow-awake.png",
        "diff.png",
        "overview.png",
        "workloads.png",
        "routing.png",
        "audit.png",
        "settings-users.png",
        "settings-tokens.png",
        "settings-notifications.png",
        "versions.png",
        "flows.png",
        "flow-detail-dark.png",
    ] {
        assert!(artifacts.join(shot).metadata().is_ok_and(|m| m.len() > 1000), "screenshot {shot}");
    }
}
