//! Store-managed flows: create, draft with lock and If-Match, commit, activate, roll back, branch, diff,
//! validation before activation, read-only sources, process nodes, and the audit trail of it all.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};

use super::{Answer, Harness};

/// A flow of one external node (nothing runs).
fn spec(host: &str, upstream: &str) -> Value {
    json!({
        "hosts": [host],
        "upstream": upstream,
        "node": [
            { "name": "web", "kind": "external", "port": 9, "ready": { "tcp": "127.0.0.1:9" } },
            { "name": "web2", "kind": "external", "port": 10, "ready": { "tcp": "127.0.0.1:10" } },
        ],
    })
}

impl Harness {
    async fn put_draft(&self, flow: &str, token: &str, version: u64, body: Value) -> Answer {
        let request = Request::builder()
            .method(Method::PUT)
            .uri(format!("/api/v1/flows/{flow}/draft"))
            .header("authorization", format!("Bearer {token}"))
            .header("if-match", format!("\"{version}\""))
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .expect("request");
        self.send(request).await
    }

    /// Locks, saves `spec` and commits it; returns the version number.
    async fn commit_spec(&self, flow: &str, token: &str, spec: Value, activate: bool) -> Answer {
        let locked = self.post(&format!("/api/v1/flows/{flow}/draft/lock"), token, json!({})).await;
        assert_eq!(locked.status, StatusCode::OK, "{}", locked.body);
        let saved = self.put_draft(flow, token, locked.body["version"].as_u64().expect("version"), json!({ "spec": spec })).await;
        assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
        self.post(&format!("/api/v1/flows/{flow}/draft/commit"), token, json!({ "message": "change", "activate": activate })).await
    }

    /// Creates the store-managed flow `blog` (upstream `web`) and commits and activates version 1.
    async fn blog_v1(&self) {
        let created = self.post("/api/v1/flows", &self.admin, json!({ "name": "blog", "spec": spec("blog.test", "web") })).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        let v1 = self.post("/api/v1/flows/blog/draft/commit", &self.admin, json!({ "message": "v1", "activate": true })).await;
        assert_eq!(v1.status, StatusCode::CREATED, "{}", v1.body);
    }

    fn active_version(&self, flow: &str) -> Option<u64> {
        match self.controller.flow(flow)?.spec.origin {
            leannodes_config::FlowOrigin::Store { version } => Some(version),
            _ => None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_goes_from_draft_to_versions_and_back() {
    let h = Harness::new("").await;
    let created = h.post("/api/v1/flows", &h.admin, json!({ "name": "blog", "spec": spec("blog.test", "web") })).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["active_version"], Value::Null);
    assert!(h.controller.flow("blog").is_none(), "nothing serves before an activation");
    let listed = h.get("/api/v1/flows", &h.admin).await;
    assert_eq!(listed.body["inactive"][0]["name"], "blog", "the inventory shows it as inactive: {}", listed.body);
    assert_eq!(h.get("/api/v1/flows?state=awake", &h.admin).await.body["inactive"], json!([]));
    let viewer = h.user("viewer@example.com", &["viewer"]).await;
    assert_eq!(h.get("/api/v1/flows?q=blo", &viewer).await.body["inactive"][0]["name"], "blog");
    let nobody = h.user("nobody@example.com", &[]).await;
    assert_eq!(h.get("/api/v1/flows", &nobody).await.body["inactive"], json!([]), "only for those who may read it");
    let draft = h.get("/api/v1/flows/blog/draft", &h.admin).await;
    assert_eq!((draft.body["version"].as_u64(), draft.body["stale"].as_bool()), (Some(1), Some(false)), "{}", draft.body);
    assert_eq!(draft.body["problems"], json!([]), "the first draft would activate");

    let saved_without_lock = h.put_draft("blog", &h.admin, 1, json!({ "spec": spec("blog.test", "web") })).await;
    assert_eq!((saved_without_lock.status, saved_without_lock.code()), (StatusCode::CONFLICT, "draft_locked"));
    let v1 = h.post("/api/v1/flows/blog/draft/commit", &h.admin, json!({ "message": "first", "activate": true })).await;
    assert_eq!(v1.status, StatusCode::CREATED, "{}", v1.body);
    assert_eq!((v1.body["number"].as_u64(), v1.body["active"].as_bool()), (Some(1), Some(true)));
    assert_eq!(h.active_version("blog"), Some(1), "version 1 serves");
    let listed = h.get("/api/v1/flows?source=store", &h.admin).await;
    assert_eq!(listed.body["flows"][0]["name"], "blog");
    assert_eq!(listed.body["flows"][0]["version"], 1);
    assert_eq!(h.get("/api/v1/flows/blog/draft", &h.admin).await.code(), "no_draft", "a commit consumes the draft");
    assert_eq!(h.get("/api/v1/flows", &h.admin).await.body["inactive"], json!([]), "once active it is a serving flow");

    let v2 = h.commit_spec("blog", &h.admin, spec("blog.test", "web2"), false).await;
    assert_eq!((v2.status, v2.body["number"].as_u64(), v2.body["active"].as_bool()), (StatusCode::CREATED, Some(2), Some(false)));
    assert_eq!(h.active_version("blog"), Some(1), "a commit without activate changes no traffic");
    let diff = h.get("/api/v1/flows/blog/diff?from=1&to=2", &h.admin).await;
    assert_eq!(diff.status, StatusCode::OK, "{}", diff.body);
    assert_eq!(diff.body["fields"], json!([{ "path": "/upstream", "from": "web", "to": "web2" }]));
    assert_eq!(diff.body["nodes"], json!({ "added": [], "removed": [], "changed": [] }));
    assert_eq!(diff.body["edges"], json!({ "added": [], "removed": [] }));

    let activated = h.post("/api/v1/flows/blog/versions/2/activate", &h.admin, json!({})).await;
    assert_eq!(activated.status, StatusCode::OK, "{}", activated.body);
    assert_eq!((activated.body["previous_version"].as_u64(), activated.body["applied"].as_bool()), (Some(1), Some(true)));
    assert_eq!(h.active_version("blog"), Some(2));
    let handle = h.controller.flow("blog").expect("serving");
    assert!(matches!(handle.spec.upstream, leannodes_config::Upstream::Node(1)), "traffic goes to web2");
    let rolled_back = h.post("/api/v1/flows/blog/versions/1/activate", &h.admin, json!({})).await;
    assert_eq!(rolled_back.status, StatusCode::OK, "{}", rolled_back.body);
    assert_eq!(h.active_version("blog"), Some(1), "roll back = activate an older version");

    let versions = h.get("/api/v1/flows/blog/versions", &h.admin).await;
    let list: Vec<(u64, bool)> = versions.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|v| (v["number"].as_u64().unwrap_or(0), v["active"].as_bool().unwrap_or(false)))
        .collect();
    assert_eq!(list, vec![(1, true), (2, false)]);
    assert_eq!(h.get("/api/v1/flows/blog/versions/2", &h.admin).await.body["spec"]["upstream"], "web2");

    let branched = h.post("/api/v1/flows/blog/versions/2/branch", &h.admin, json!({})).await;
    assert_eq!(branched.status, StatusCode::OK, "{}", branched.body);
    assert_eq!((branched.body["branched_from"].as_u64(), branched.body["base"].as_u64()), (Some(2), Some(1)));
    assert_eq!(branched.body["spec"]["upstream"], "web2");
    assert_eq!(branched.body["lock"]["yours"], true, "branching takes the lock");
    let v3 = h.post("/api/v1/flows/blog/draft/commit", &h.admin, json!({ "message": "web2 again" })).await;
    assert_eq!(v3.body["number"], 3, "{}", v3.body);
    assert!(h.get("/api/v1/flows/blog/diff?from=2&to=3", &h.admin).await.body["fields"].as_array().is_some_and(Vec::is_empty));

    let actions: Vec<String> = h.audit().await.into_iter().filter(|r| r.entry.target == "flow/blog").map(|r| r.entry.action).collect();
    for action in ["flow.create", "flow.draft.lock", "flow.draft.save", "flow.commit", "flow.activate", "flow.branch"] {
        assert!(actions.iter().any(|a| a == action), "{action} audited: {actions:?}");
    }
    let commit = h.audit().await.into_iter().find(|r| r.entry.action == "flow.commit" && r.entry.detail.contains("\"version\":2"));
    let detail: Value = serde_json::from_str(&commit.expect("the second commit is audited").entry.detail).expect("json");
    assert_eq!(detail["change"]["fields"], json!([{ "path": "/upstream", "from": "web", "to": "web2" }]), "the change is summarised");

    let deleted = h.call(Method::DELETE, "/api/v1/flows/blog", Some(&h.admin), None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    assert!(h.controller.flow("blog").is_none(), "a deleted flow stops serving");
    assert_eq!(h.get("/api/v1/flows/blog/versions", &h.admin).await.code(), "unknown_flow");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_editor_at_a_time_and_no_save_over_a_newer_one() {
    let h = Harness::new("").await;
    let ada = h.user("ada@example.com", &["editor"]).await;
    let bob = h.user("bob@example.com", &["editor"]).await;
    assert_eq!(
        h.post("/api/v1/flows", &ada, json!({ "name": "blog", "spec": spec("blog.test", "web") })).await.status,
        StatusCode::CREATED
    );
    let locked = h.post("/api/v1/flows/blog/draft/lock", &ada, json!({})).await;
    assert_eq!((locked.status, locked.body["lock"]["yours"].as_bool()), (StatusCode::OK, Some(true)), "{}", locked.body);

    let seen_by_bob = h.get("/api/v1/flows/blog/draft", &bob).await;
    assert_eq!(seen_by_bob.body["lock"]["holder_email"], "ada@example.com", "others see who holds the lock");
    assert_eq!(seen_by_bob.body["lock"]["yours"], false);
    let bob_locks = h.post("/api/v1/flows/blog/draft/lock", &bob, json!({})).await;
    assert_eq!((bob_locks.status, bob_locks.code()), (StatusCode::CONFLICT, "draft_locked"));
    assert!(bob_locks.body["message"].as_str().is_some_and(|m| m.contains("ada@example.com")), "{}", bob_locks.body);
    let bob_saves = h.put_draft("blog", &bob, 1, json!({ "spec": spec("blog.test", "web2") })).await;
    assert_eq!((bob_saves.status, bob_saves.code()), (StatusCode::CONFLICT, "draft_locked"));
    assert_eq!(h.call(Method::DELETE, "/api/v1/flows/blog/draft", Some(&bob), None).await.code(), "draft_locked");

    let first = h.put_draft("blog", &ada, 1, json!({ "spec": spec("blog.test", "web2") })).await;
    assert_eq!((first.status, first.body["version"].as_u64()), (StatusCode::OK, Some(2)), "{}", first.body);
    let stale = h.put_draft("blog", &ada, 1, json!({ "spec": spec("blog.test", "web") })).await;
    assert_eq!((stale.status, stale.code()), (StatusCode::CONFLICT, "version_conflict"), "a save over a newer one");
    assert_eq!(stale.body["details"]["current_version"], 2);
    assert_eq!(h.get("/api/v1/flows/blog/draft", &bob).await.body["spec"]["upstream"], "web2", "nothing was lost");

    assert_eq!(h.call(Method::DELETE, "/api/v1/flows/blog/draft/lock", Some(&ada), None).await.status, StatusCode::NO_CONTENT);
    let now_bob = h.post("/api/v1/flows/blog/draft/lock", &bob, json!({})).await;
    assert_eq!(now_bob.body["lock"]["holder_email"], "bob@example.com", "{}", now_bob.body);
    let renewed = h.post("/api/v1/flows/blog/draft/lock?ttl=10m", &bob, json!({})).await;
    assert!(renewed.body["lock"]["expires_ms"].as_i64() > now_bob.body["lock"]["expires_ms"].as_i64(), "renewing extends it");
    assert_eq!(renewed.body["version"], 2, "taking the lock does not change the content version");
    assert_eq!(h.post("/api/v1/flows/blog/draft/lock?ttl=2d", &bob, json!({})).await.code(), "invalid_field");

    let viewer = h.user("vic@example.com", &["viewer"]).await;
    assert_eq!(h.post("/api/v1/flows/blog/draft/lock", &viewer, json!({})).await.status, StatusCode::FORBIDDEN);
    let commit = h.post("/api/v1/flows/blog/draft/commit", &bob, json!({ "message": "x", "activate": true })).await;
    assert_eq!((commit.status, commit.body["details"]["permission"].as_str()), (StatusCode::FORBIDDEN, Some("flows.activate")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draft_behind_the_active_version_must_be_rebased() {
    let h = Harness::new("").await;
    h.blog_v1().await;
    assert_eq!(h.commit_spec("blog", &h.admin, spec("blog.test", "web2"), false).await.status, StatusCode::CREATED);
    // A draft from the active v1; then someone activates v2 behind its back.
    let draft = h.post("/api/v1/flows/blog/draft/lock", &h.admin, json!({})).await;
    assert_eq!((draft.body["base"].as_u64(), draft.body["spec"]["upstream"].as_str()), (Some(1), Some("web")), "{}", draft.body);
    let kept = h.put_draft("blog", &h.admin, 1, json!({ "spec": spec("blog.test", "web2") })).await;
    assert_eq!(kept.status, StatusCode::OK);
    assert_eq!(h.post("/api/v1/flows/blog/versions/2/activate", &h.admin, json!({})).await.status, StatusCode::OK);

    let seen = h.get("/api/v1/flows/blog/draft", &h.admin).await;
    assert_eq!((seen.body["stale"].as_bool(), seen.body["active_version"].as_u64()), (Some(true), Some(2)));
    let refused = h.post("/api/v1/flows/blog/draft/commit", &h.admin, json!({ "message": "late" })).await;
    assert_eq!((refused.status, refused.code()), (StatusCode::CONFLICT, "draft_stale"), "{}", refused.body);
    assert_eq!(refused.body["details"]["active_version"], 2);
    let bad_rebase = h.put_draft("blog", &h.admin, 2, json!({ "spec": spec("blog.test", "web2"), "base": 1 })).await;
    assert_eq!(bad_rebase.code(), "invalid_field", "only onto the active version");
    let rebased = h.put_draft("blog", &h.admin, 2, json!({ "spec": spec("blog.test", "web2"), "base": 2 })).await;
    assert_eq!((rebased.status, rebased.body["stale"].as_bool()), (StatusCode::OK, Some(false)), "{}", rebased.body);
    let committed = h.post("/api/v1/flows/blog/draft/commit", &h.admin, json!({ "message": "rebased" })).await;
    assert_eq!((committed.status, committed.body["number"].as_u64()), (StatusCode::CREATED, Some(3)), "{}", committed.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_version_is_refused_with_every_problem_and_changes_nothing() {
    let h = Harness::new("").await;
    h.blog_v1().await;
    // Takes the file's host, waits for a node that does not exist and sends traffic to another.
    let broken = json!({
        "hosts": ["shop.test"],
        "upstream": "nowhere",
        "node": [{ "name": "web", "kind": "external", "port": 9, "after": ["ghost"] }],
    });
    let v2 = h.commit_spec("blog", &h.admin, broken.clone(), false).await;
    assert_eq!(v2.status, StatusCode::CREATED, "an invalid definition can be kept as a version: {}", v2.body);
    let refused = h.post("/api/v1/flows/blog/versions/2/activate", &h.admin, json!({})).await;
    assert_eq!((refused.status, refused.code()), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_flow"), "{}", refused.body);
    let paths: Vec<&str> =
        refused.body["details"]["fields"].as_array().expect("fields").iter().filter_map(|f| f["path"].as_str()).collect();
    for path in ["/upstream", "/node/0/after/0"] {
        assert!(paths.contains(&path), "{path} in {paths:?}");
    }
    assert!(paths.iter().any(|p| p.starts_with("/hosts")), "the binding taken from the file's `shop`: {paths:?}");
    assert_eq!(h.active_version("blog"), Some(1), "the active version keeps serving");
    assert!(h.controller.flow("shop").is_some(), "and so does the file's flow");

    let with_activate = h.commit_spec("blog", &h.admin, broken, true).await;
    assert_eq!(with_activate.code(), "invalid_flow", "commit + activate checks first");
    assert_eq!(h.get("/api/v1/flows/blog/versions", &h.admin).await.body["items"].as_array().map(Vec::len), Some(2), "and commits nothing");
    let draft = h.get("/api/v1/flows/blog/draft", &h.admin).await;
    assert!(draft.body["problems"].as_array().is_some_and(|p| p.len() >= 3), "the draft shows its problems: {}", draft.body);

    let not_a_flow = h.post("/api/v1/flows", &h.admin, json!({ "name": "x", "spec": { "hosts": "x.test", "upstrem": "web" } })).await;
    assert_eq!((not_a_flow.status, not_a_flow.code()), (StatusCode::BAD_REQUEST, "invalid_field"), "{}", not_a_flow.body);
    let paths: Vec<&str> =
        not_a_flow.body["details"]["fields"].as_array().expect("fields").iter().filter_map(|f| f["path"].as_str()).collect();
    assert!(paths.contains(&"/spec/upstrem") && paths.contains(&"/spec/hosts"), "{paths:?}");
    assert_eq!(h.post("/api/v1/flows", &h.admin, json!({ "name": "a/b", "spec": spec("c.test", "web") })).await.code(), "invalid_field");
    assert_eq!(h.post("/api/v1/flows", &h.admin, json!({ "name": "shop", "spec": spec("c.test", "web") })).await.code(), "flow_exists");
    assert_eq!(h.post("/api/v1/flows", &h.admin, json!({ "name": "blog", "spec": spec("c.test", "web") })).await.code(), "flow_exists");

    assert_eq!(h.get("/api/v1/flows/blog/diff?from=1&to=9", &h.admin).await.code(), "unknown_version");
    assert_eq!(h.get("/api/v1/flows/blog/diff?from=one&to=2", &h.admin).await.code(), "invalid_query");
    assert_eq!(h.post("/api/v1/flows/blog/versions/9/activate", &h.admin, json!({})).await.code(), "unknown_version");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_flows_are_read_only_and_process_nodes_need_an_admin() {
    let h = Harness::new("").await;
    for (method, path) in [
        (Method::GET, "/api/v1/flows/shop/draft"),
        (Method::POST, "/api/v1/flows/shop/draft/lock"),
        (Method::GET, "/api/v1/flows/shop/versions"),
        (Method::DELETE, "/api/v1/flows/shop"),
    ] {
        let answer = h.call(method.clone(), path, Some(&h.admin), Some(json!({}))).await;
        assert_eq!((answer.status, answer.code()), (StatusCode::CONFLICT, "read_only_source"), "{method} {path}: {}", answer.body);
        assert!(answer.body["message"].as_str().is_some_and(|m| m.contains("configuration file")), "{}", answer.body);
    }

    let process = json!({
        "hosts": ["run.test"],
        "upstream": "app",
        "node": [{ "name": "app", "kind": "process", "command": ["sleep", "60"], "port": 9 }],
    });
    let editor = h.user("ed@example.com", &["editor"]).await;
    let refused = h.post("/api/v1/flows", &editor, json!({ "name": "run", "spec": process.clone() })).await;
    assert_eq!(
        (refused.status, refused.body["details"]["reason"].as_str()),
        (StatusCode::FORBIDDEN, Some("process_nodes")),
        "{}",
        refused.body
    );
    assert!(refused.body["message"].as_str().is_some_and(|m| m.contains("`app`")), "{}", refused.body);
    let created = h.post("/api/v1/flows", &h.admin, json!({ "name": "run", "spec": process.clone() })).await;
    assert_eq!(created.status, StatusCode::CREATED, "an admin may: {}", created.body);
    let audited = h.audit().await.into_iter().find(|r| r.entry.action == "flow.create" && r.entry.target == "flow/run").expect("audited");
    assert!(audited.entry.detail.contains("sleep"), "the command is in the audit trail: {}", audited.entry.detail);
    let editor_lock = h.post("/api/v1/flows/run/draft/lock", &editor, json!({})).await;
    assert_eq!(editor_lock.status, StatusCode::OK);
    let editor_save = h.put_draft("run", &editor, 1, json!({ "spec": process })).await;
    assert_eq!(editor_save.body["details"]["reason"], "process_nodes", "an editor cannot change it either");
    h.call(Method::DELETE, "/api/v1/flows/run/draft/lock", Some(&editor), None).await;
    assert_eq!(h.post("/api/v1/flows/run/draft/commit", &h.admin, json!({ "message": "v1" })).await.status, StatusCode::CREATED);
    let role = json!({ "name": "releaser", "permissions": ["flows.read", "flows.edit", "flows.activate"] });
    assert_eq!(h.post("/api/v1/roles", &h.admin, role).await.status, StatusCode::CREATED);
    let releaser = h.user("rel@example.com", &["releaser"]).await;
    let activate = h.post("/api/v1/flows/run/versions/1/activate", &releaser, json!({})).await;
    assert_eq!(activate.status, StatusCode::FORBIDDEN, "activating a process node needs an admin too: {}", activate.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flows_export_and_import_as_toml_and_json_with_a_dry_run_first() {
    let source = Harness::new("").await;
    assert_eq!(
        source.post("/api/v1/flows", &source.admin, json!({ "name": "blog", "spec": spec("blog.test", "web") })).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        source.post("/api/v1/flows/blog/draft/commit", &source.admin, json!({ "message": "v1", "activate": true })).await.status,
        StatusCode::CREATED
    );
    let exported = source.get("/api/v1/flows/export?format=toml", &source.admin).await;
    assert_eq!(exported.status, StatusCode::OK);
    assert!(exported.headers["content-type"].to_str().is_ok_and(|t| t.starts_with("application/toml")));
    let toml = exported.body.as_str().expect("text").to_string();
    assert!(toml.contains("[[flow]]") && toml.contains("name = \"blog\"") && !toml.contains("shop"), "only store-managed flows: {toml}");

    let target = Harness::new("").await;
    let plan = target
        .post("/api/v1/flows/import", &target.admin, json!({ "format": "toml", "content": toml, "dry_run": true, "activate": true }))
        .await;
    assert_eq!(plan.status, StatusCode::OK, "{}", plan.body);
    assert_eq!((plan.body["flows"][0]["action"].as_str(), plan.body["flows"][0]["version"].as_u64()), (Some("create"), Some(1)));
    assert!(target.get("/api/v1/flows/blog/versions", &target.admin).await.code() == "unknown_flow", "a dry run changes nothing");
    let imported = target.post("/api/v1/flows/import", &target.admin, json!({ "format": "toml", "content": toml, "activate": true })).await;
    assert_eq!(imported.status, StatusCode::OK, "{}", imported.body);
    assert_eq!(target.active_version("blog"), Some(1), "imported and activated");
    let again = target.post("/api/v1/flows/import", &target.admin, json!({ "format": "toml", "content": toml })).await;
    assert_eq!(again.body["flows"][0]["action"], "unchanged", "{}", again.body);

    let as_json =
        json!({ "flow": [{ "name": "blog", "hosts": ["blog.test"], "upstream": "web2", "node": spec("blog.test", "web")["node"] }] });
    let plan = target
        .post("/api/v1/flows/import", &target.admin, json!({ "format": "json", "content": as_json.to_string(), "dry_run": true }))
        .await;
    assert_eq!(plan.body["flows"][0]["action"], "new_version", "{}", plan.body);
    assert_eq!(plan.body["flows"][0]["change"]["fields"], json!([{ "path": "/upstream", "from": "web", "to": "web2" }]));
    let json_export = target.get("/api/v1/flows/export?format=json", &target.admin).await;
    assert_eq!(json_export.body["flow"][0]["name"], "blog", "{}", json_export.body);

    let broken = target
        .post(
            "/api/v1/flows/import",
            &target.admin,
            json!({ "format": "toml", "content": "[[flow]]\nname = \"x\"\nhosts = [\"x.test\"\n" }),
        )
        .await;
    assert_eq!((broken.status, broken.code()), (StatusCode::BAD_REQUEST, "invalid_import"), "{}", broken.body);
    assert_eq!(broken.body["details"]["fields"][0]["line"], 3, "{}", broken.body);
    let broken_json = target
        .post("/api/v1/flows/import", &target.admin, json!({ "format": "json", "content": "{\"flow\": [\n  {\"name\": }\n]}" }))
        .await;
    assert_eq!(
        (broken_json.code(), broken_json.body["details"]["fields"][0]["line"].as_u64()),
        ("invalid_import", Some(2)),
        "{}",
        broken_json.body
    );
    let semantic = "[[flow]]\nname = \"y\"\nhosts = [\"y.test\"]\nupstream = \"ghost\"\n";
    let semantic = target.post("/api/v1/flows/import", &target.admin, json!({ "format": "toml", "content": semantic })).await;
    assert_eq!((semantic.code(), semantic.body["details"]["fields"][0]["line"].as_u64()), ("invalid_import", Some(4)), "{}", semantic.body);
    let server =
        target.post("/api/v1/flows/import", &target.admin, json!({ "format": "toml", "content": "[server]\nlisten = []\n" })).await;
    assert_eq!(server.code(), "invalid_import");
    let file_flow = "[[flow]]\nname = \"shop\"\nhosts = [\"other.test\"]\nupstream = \"127.0.0.1:9\"\n";
    let refused = target.post("/api/v1/flows/import", &target.admin, json!({ "format": "toml", "content": file_flow })).await;
    assert_eq!((refused.status, refused.code()), (StatusCode::CONFLICT, "read_only_source"), "{}", refused.body);
    assert_eq!(
        target.get("/api/v1/flows/blog/versions", &target.admin).await.body["items"].as_array().map(Vec::len),
        Some(1),
        "nothing half-imported"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_sessions_refuse_bad_input_and_are_audited() {
    let h = Harness::new("").await;
    h.blog_v1().await;
    assert_eq!(h.commit_spec("blog", &h.admin, spec("blog.test", "web2"), false).await.status, StatusCode::CREATED);
    assert_eq!(h.post("/api/v1/flows/blog/versions/9/test-session", &h.admin, json!({})).await.code(), "unknown_version");
    assert_eq!(h.post("/api/v1/flows/blog/versions/2/test-session", &h.admin, json!({ "ttl": "30d" })).await.code(), "invalid_field");
    assert_eq!(h.post("/api/v1/flows/shop/versions/1/test-session", &h.admin, json!({})).await.code(), "read_only_source");
    let started = h.post("/api/v1/flows/blog/versions/2/test-session", &h.admin, json!({ "ttl": "10m" })).await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.body);
    assert_eq!(started.body["header"], "X-LeanNodes-Version: 2");
    let session = h.controller.flow("blog~v2").expect("the session serves");
    assert!(matches!(session.spec.upstream, leannodes_config::Upstream::Node(1)), "version 2's upstream");
    assert_eq!(h.active_version("blog"), Some(1), "the active version is untouched");
    assert_eq!(h.get("/api/v1/flows/blog~v2/versions", &h.admin).await.code(), "read_only_source", "a session is not a flow to edit");
    let stopped = h.call(Method::DELETE, "/api/v1/flows/blog/test-sessions/2", Some(&h.admin), None).await;
    assert_eq!(stopped.status, StatusCode::NO_CONTENT);
    assert!(h.controller.flow("blog~v2").is_none(), "stopping ends it at once");
    assert_eq!(h.call(Method::DELETE, "/api/v1/flows/blog/test-sessions/2", Some(&h.admin), None).await.code(), "unknown_test_session");
    let actions: Vec<String> = h.audit().await.into_iter().map(|r| r.entry.action).collect();
    assert!(actions.iter().any(|a| a == "flow.test_session.start") && actions.iter().any(|a| a == "flow.test_session.stop"), "{actions:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_the_callout_gateway_cannot_hold_is_refused() {
    let h = Harness::new("callout_gateway = \"traefik\"").await;
    let mut long = spec("blog.test", "web");
    long["hold_timeout"] = json!("2m");
    assert_eq!(h.post("/api/v1/flows", &h.admin, json!({ "name": "blog", "spec": long })).await.status, StatusCode::CREATED);
    let refused = h.post("/api/v1/flows/blog/draft/commit", &h.admin, json!({ "message": "v1", "activate": true })).await;
    assert_eq!((refused.status, refused.code()), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_flow"), "{}", refused.body);
    assert_eq!(refused.body["details"]["fields"][0]["path"], "/hold_timeout");
    assert!(
        refused.body["message"].as_str().is_some_and(|m| m.contains("traefik cannot hold a request longer than 30s")),
        "{}",
        refused.body
    );
    let mut short = spec("blog.test", "web");
    short["hold_timeout"] = json!("20s");
    let accepted = h.commit_spec("blog", &h.admin, short, true).await;
    assert_eq!(accepted.status, StatusCode::CREATED, "{}", accepted.body);
    assert_eq!(h.active_version("blog"), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_values_are_shown_to_administrators_only() {
    let h = Harness::new("").await;
    let process = json!({
        "hosts": ["run.test"],
        "upstream": "app",
        "node": [{ "name": "app", "kind": "process", "command": ["sleep", "60"], "port": 9, "env": { "API_KEY": "s3cret-value" } }],
    });
    assert_eq!(h.post("/api/v1/flows", &h.admin, json!({ "name": "run", "spec": process.clone() })).await.status, StatusCode::CREATED);
    assert_eq!(h.get("/api/v1/flows/run/draft", &h.admin).await.body["spec"]["node"][0]["env"]["API_KEY"], "s3cret-value");
    let viewer = h.user("vic@example.com", &["viewer"]).await;
    assert_eq!(h.get("/api/v1/flows/run/draft", &viewer).await.body["spec"]["node"][0]["env"]["API_KEY"], "(redacted)");
    assert_eq!(h.post("/api/v1/flows/run/draft/commit", &h.admin, json!({ "message": "v1" })).await.status, StatusCode::CREATED);
    assert_eq!(h.get("/api/v1/flows/run/versions/1", &viewer).await.body["spec"]["node"][0]["env"]["API_KEY"], "(redacted)");
    let mut changed = process.clone();
    changed["node"][0]["env"]["API_KEY"] = json!("an0ther-value");
    assert_eq!(h.commit_spec("run", &h.admin, changed, false).await.status, StatusCode::CREATED);
    let diff = h.get("/api/v1/flows/run/diff?from=1&to=2", &viewer).await;
    assert_eq!(diff.body["nodes"]["changed"][0]["fields"][0]["to"], "(redacted)", "{}", diff.body);
    let export = h.get("/api/v1/flows/export?format=json", &viewer).await;
    assert_eq!(export.body["flow"][0]["node"][0]["env"]["API_KEY"], "(redacted)", "the viewer's export has the flow: {}", export.body);
    assert!(!export.body.to_string().contains("s3cret") && !export.body.to_string().contains("an0ther"), "{}", export.body);
    for record in h.audit().await {
        assert!(
            !record.entry.detail.contains("s3cret") && !record.entry.detail.contains("an0ther"),
            "{}: {}",
            record.entry.action,
            record.entry.detail
        );
    }
}
