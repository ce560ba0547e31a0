//! The management plane through `leannodes serve` and real sockets: signing in with a cookie and a CSRF
//! token, access tokens, invitations and resets mailed through a real SMTP server, throttling and
//! sessions shared by replicas on Postgres, the route × role matrix over HTTP, audit tampering found in
//! SQLite and Postgres, the first administrator's setup link, and the offline recovery commands.

use std::time::Duration;

use leannodes_harness::smtp::SmtpSink;
use leannodes_harness::stores::TestPostgres;
use leannodes_harness::{ADMIN_EMAIL, ADMIN_PASSWORD, DemoNode, Serve, workdir};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_leannodes");

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

fn one_flow(dir: &std::path::Path) -> String {
    format!("\n[[flow]]\nname = \"shop\"\nhosts = [\"127.0.0.1\"]\nupstream = \"web\"\n{}", DemoNode::new("web").toml(BIN, dir))
}

/// A signed-in browser: its session cookie and CSRF token.
struct Browser {
    cookie: String,
    csrf: String,
}

async fn sign_in(serve: &Serve, email: &str, password: &str) -> Result<Browser, (u16, Value)> {
    let r = client()
        .post(serve.admin_url("/api/v1/auth/login"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .expect("login");
    let status = r.status().as_u16();
    let cookie = r.headers().get("set-cookie").and_then(|v| v.to_str().ok()).and_then(|c| c.split(';').next()).map(str::to_string);
    let body: Value = r.json().await.unwrap_or_default();
    match (status, cookie) {
        (200, Some(cookie)) => Ok(Browser { cookie, csrf: body["csrf_token"].as_str().unwrap_or_default().to_string() }),
        _ => Err((status, body)),
    }
}

/// The link in a mail (quoted-printable soft breaks undone).
fn link_in(mail: &str, page: &str) -> String {
    let text = mail.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=");
    let start = text.find(&format!("/{page}#token=")).expect("a link in the mail");
    let begin = text[..start].rfind("http").expect("link start");
    text[begin..].split_whitespace().next().expect("link").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_signs_in_and_acts_with_its_cookie_and_csrf_token() {
    let dir = workdir();
    let serve = Serve::start(BIN, dir.path(), "", &one_flow(dir.path()));
    let c = client();
    // Without credentials, nothing.
    let anonymous = c.get(serve.admin_url("/api/v1/flows")).send().await.expect("flows");
    assert_eq!(anonymous.status(), 401);
    assert_eq!(anonymous.json::<Value>().await.expect("json")["error"], "unauthenticated");
    assert_eq!(c.post(serve.admin_url("/api/v1/flows/shop/disable")).send().await.expect("disable").status(), 401);

    let browser = sign_in(&serve, ADMIN_EMAIL, ADMIN_PASSWORD).await.expect("signed in");
    let flows = c.get(serve.admin_url("/api/v1/flows")).header("cookie", &browser.cookie).send().await.expect("flows");
    assert_eq!(flows.status(), 200);
    let no_csrf = c.post(serve.admin_url("/api/v1/flows/shop/disable")).header("cookie", &browser.cookie).send().await.expect("post");
    assert_eq!(no_csrf.status(), 403, "a cookie alone cannot change anything");
    let disabled = c
        .post(serve.admin_url("/api/v1/flows/shop/disable"))
        .header("cookie", &browser.cookie)
        .header("x-csrf-token", &browser.csrf)
        .send()
        .await
        .expect("disable");
    assert_eq!(disabled.status(), 200);
    let proxied = c.get(serve.url("/")).send().await.expect("proxy");
    assert_eq!(proxied.json::<Value>().await.expect("json")["error"], "flow_disabled", "the action took effect");

    // The audit names the user and the client's address.
    let audit: Value = c
        .get(serve.admin_url("/api/v1/audit?action=flow.disable"))
        .header("cookie", &browser.cookie)
        .send()
        .await
        .expect("audit")
        .json()
        .await
        .expect("json");
    let item = &audit["items"][0];
    assert!(item["actor"].as_str().is_some_and(|a| a.starts_with("user:")), "{audit}");
    assert_eq!(item["source"], "127.0.0.1");
    let login: Value = c
        .get(serve.admin_url("/api/v1/audit?action=auth.login"))
        .bearer_auth(serve.token())
        .send()
        .await
        .expect("audit")
        .json()
        .await
        .expect("json");
    assert_eq!(login["items"][0]["source"], "127.0.0.1");

    // Token lifecycle over HTTP: create with the session, shown once, used, revoked.
    let created: Value = c
        .post(serve.admin_url("/api/v1/tokens"))
        .header("cookie", &browser.cookie)
        .header("x-csrf-token", &browser.csrf)
        .json(&json!({ "name": "ci", "scopes": ["flows.read", "flows.operate"] }))
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    let token = created["token"].as_str().expect("token").to_string();
    let listed: Value =
        c.get(serve.admin_url("/api/v1/tokens")).bearer_auth(&token).send().await.expect("list").json().await.expect("json");
    assert!(listed["tokens"].as_array().is_some_and(|t| t.iter().any(|t| t["id"] == created["id"])));
    assert!(!listed.to_string().contains(&token), "never shown again");
    assert_eq!(
        c.post(serve.admin_url("/api/v1/flows/shop/enable")).bearer_auth(&token).send().await.expect("enable").status(),
        200,
        "no CSRF for tokens"
    );
    assert_eq!(
        c.get(serve.admin_url("/api/v1/users")).bearer_auth(&token).send().await.expect("users").status(),
        403,
        "outside its scopes"
    );
    let revoked = c
        .delete(serve.admin_url(&format!("/api/v1/tokens/{}", created["id"].as_str().expect("id"))))
        .bearer_auth(&token)
        .send()
        .await
        .expect("revoke");
    assert_eq!(revoked.status(), 204);
    assert_eq!(c.get(serve.admin_url("/api/v1/flows")).bearer_auth(&token).send().await.expect("flows").status(), 401);

    let out = c
        .post(serve.admin_url("/api/v1/auth/logout"))
        .header("cookie", &browser.cookie)
        .header("x-csrf-token", &browser.csrf)
        .send()
        .await
        .expect("out");
    assert_eq!(out.status(), 204);
    assert_eq!(c.get(serve.admin_url("/api/v1/auth/me")).header("cookie", &browser.cookie).send().await.expect("me").status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invitations_and_resets_are_mailed_through_smtp_and_work_once() {
    let dir = workdir();
    let sink = SmtpSink::start(dir.path().join("mail"));
    let smtp = format!(
        "\n[server.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nfrom = \"LeanNodes <leannodes@example.com>\"\n",
        sink.port
    );
    let serve = Serve::start(
        BIN,
        dir.path(),
        &format!("[server.auth]\nexternal_url = \"http://leannodes.example.com\"\n{smtp}"),
        &one_flow(dir.path()),
    );
    let c = client();
    let invited: Value = c
        .post(serve.admin_url("/api/v1/invitations"))
        .bearer_auth(serve.token())
        .json(&json!({ "email": "grace@example.com", "role": "operator" }))
        .send()
        .await
        .expect("invite")
        .json()
        .await
        .expect("json");
    assert_eq!(invited["mailed"], true, "{invited}");
    assert!(invited["url"].is_null(), "a mailed link is not shown");
    leannodes_harness::assert_eventually!(!sink.messages().is_empty(), "the invitation arrives");
    let mail = sink.messages().remove(0);
    assert!(mail.contains("To: grace@example.com") && mail.contains("Subject: Your invitation to LeanNodes"), "{mail}");
    let link = link_in(&mail, "invite");
    assert!(link.starts_with("http://leannodes.example.com/invite#token="), "{link}");
    let secret = link.split("#token=").nth(1).expect("secret");
    let accept = c
        .post(serve.admin_url(&format!("/api/v1/invitations/{secret}/accept")))
        .json(&json!({ "name": "Grace", "password": "grace's long password" }))
        .send()
        .await
        .expect("accept");
    assert_eq!(accept.status(), 201);
    let again = c
        .post(serve.admin_url(&format!("/api/v1/invitations/{secret}/accept")))
        .json(&json!({ "password": "grace's long password" }))
        .send()
        .await
        .expect("again");
    assert_eq!(again.status(), 404, "single use");
    let grace = sign_in(&serve, "grace@example.com", "grace's long password").await.expect("grace signs in");
    let me: Value =
        c.get(serve.admin_url("/api/v1/auth/me")).header("cookie", &grace.cookie).send().await.expect("me").json().await.expect("json");
    assert_eq!(me["permissions"], json!(["flows.read", "flows.operate"]));

    // Forgotten password: the same answer for an unknown address, a mail for a known one.
    let unknown =
        c.post(serve.admin_url("/api/v1/auth/password-reset")).json(&json!({ "email": "nobody@example.com" })).send().await.expect("reset");
    let known =
        c.post(serve.admin_url("/api/v1/auth/password-reset")).json(&json!({ "email": "grace@example.com" })).send().await.expect("reset");
    assert_eq!((unknown.status(), known.status()), (reqwest::StatusCode::ACCEPTED, reqwest::StatusCode::ACCEPTED));
    assert_eq!(unknown.text().await.expect("body"), known.text().await.expect("body"));
    leannodes_harness::assert_eventually!(sink.messages().len() == 2, "the reset mail arrives (and only one)");
    let reset = link_in(&sink.messages()[1], "reset");
    let secret = reset.split("#token=").nth(1).expect("secret");
    let done = c
        .post(serve.admin_url(&format!("/api/v1/auth/reset/{secret}")))
        .json(&json!({ "password": "grace's new long password" }))
        .send()
        .await
        .expect("reset");
    assert_eq!(done.status(), 200);
    assert_eq!(
        c.get(serve.admin_url("/api/v1/auth/me")).header("cookie", &grace.cookie).send().await.expect("me").status(),
        401,
        "old sessions ended"
    );
    assert!(sign_in(&serve, "grace@example.com", "grace's new long password").await.is_ok());
    assert_eq!(sink.messages().len(), 2, "no mail for the unknown address");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_tokens_and_throttling_are_shared_by_replicas_on_postgres() {
    let db = TestPostgres::create();
    let dirs = [workdir(), workdir()];
    let store = format!("store = \"{}\"", db.url);
    let a = Serve::start(BIN, dirs[0].path(), &format!("{store}\nreplica_id = \"a\""), &one_flow(dirs[0].path()));
    let b = Serve::start(BIN, dirs[1].path(), &format!("{store}\nreplica_id = \"b\""), &one_flow(dirs[1].path()));
    let c = client();
    let browser = sign_in(&a, ADMIN_EMAIL, ADMIN_PASSWORD).await.expect("signed in on a");
    let on_b = c
        .post(b.admin_url("/api/v1/flows/shop/pin"))
        .header("cookie", &browser.cookie)
        .header("x-csrf-token", &browser.csrf)
        .send()
        .await
        .expect("pin");
    assert_eq!(on_b.status(), 200, "a session made on a works on b");
    let token = a.token();
    assert_eq!(c.get(b.admin_url("/api/v1/flows")).bearer_auth(&token).send().await.expect("b").status(), 200, "and a token");
    for _ in 0..5 {
        let failed = sign_in(&a, "victim@example.com", "guess guess guess").await.err().map(|e| e.0);
        assert_eq!(failed, Some(401));
    }
    let blocked = c
        .post(b.admin_url("/api/v1/auth/login"))
        .json(&json!({ "email": "victim@example.com", "password": "x" }))
        .send()
        .await
        .expect("login on b");
    assert_eq!(blocked.status(), 429, "failures counted on a block on b");
    assert!(blocked.headers().contains_key("retry-after"));
    // One audit chain for both replicas.
    let verify: Value =
        c.get(b.admin_url("/api/v1/audit/verify")).bearer_auth(&token).send().await.expect("verify").json().await.expect("json");
    assert_eq!(verify["ok"], true, "{verify}");
    assert!(verify["checked"].as_u64() >= Some(8), "{verify}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_times_every_role_over_http() {
    let dir = workdir();
    let serve = Serve::start(BIN, dir.path(), "", &one_flow(dir.path()));
    let c = client();
    let mut callers: Vec<(String, Option<String>, leannodes_api::PermissionSet)> =
        vec![("unauthenticated".into(), None, leannodes_api::PermissionSet::EMPTY)];
    for (role, _, perms) in leannodes_api::built_in_roles() {
        let email = format!("{role}@example.com");
        let created = c
            .post(serve.admin_url("/api/v1/users"))
            .bearer_auth(serve.token())
            .json(&json!({ "email": email, "password": "a long enough password", "roles": [role] }))
            .send()
            .await
            .expect("user");
        assert_eq!(created.status(), 201);
        let token = leannodes_harness::admin_token(serve.admin, &email, "a long enough password");
        callers.push((role.to_string(), Some(token), perms));
    }
    for route in leannodes_api::route_rules() {
        if route.path.ends_with("/events") {
            continue; // a stream; covered by the in-process matrix
        }
        let path = route.path.replace("{name}", "shop").replace("{kind}", "nginx");
        let path = ["{id}", "{token}", "{group}", "{role}"].iter().fold(path, |p, param| p.replace(param, "missing"));
        let method = reqwest::Method::from_bytes(route.method.as_bytes()).expect("method");
        for (who, token, perms) in &callers {
            let mut request = c.request(method.clone(), serve.admin_url(&path));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            if matches!(route.method, "POST" | "PUT" | "PATCH") {
                request = request.json(&json!({}));
            }
            let response = request.send().await.expect("answer");
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or_default();
            let what = format!("{} {path} as {who}: {status} {body}", route.method);
            use leannodes_api::Rule;
            let denied = match route.rule {
                Rule::Public => false,
                _ if token.is_none() => {
                    assert_eq!(status, 401, "{what}");
                    continue;
                }
                Rule::Authenticated => false,
                Rule::Global(p) | Rule::Flow(p) => !perms.contains(p),
            };
            if denied {
                assert!(status == 403 || (status == 404 && body["error"] == "unknown_flow"), "{what}");
            } else {
                assert!(status != 401 && status != 403, "{what}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_altered_or_deleted_audit_record_is_found_in_sqlite() {
    let dir = workdir();
    let serve = Serve::start(BIN, dir.path(), "", &one_flow(dir.path()));
    let c = client();
    for action in ["pin", "unpin", "pin", "unpin"] {
        c.post(serve.admin_url(&format!("/api/v1/flows/shop/{action}"))).bearer_auth(serve.token()).send().await.expect("act");
    }
    let verify = || async {
        c.get(serve.admin_url("/api/v1/audit/verify"))
            .bearer_auth(serve.token())
            .send()
            .await
            .expect("verify")
            .json::<Value>()
            .await
            .expect("json")
    };
    assert_eq!(verify().await["ok"], true);
    let db = dir.path().join("state.db");
    let sql = |statement: &'static str| {
        let db = db.clone();
        async move {
            use sqlx::Connection as _;
            let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display())).await.expect("open the database");
            sqlx::query(statement).execute(&mut conn).await.expect("tamper");
        }
    };
    sql("UPDATE audit SET actor = 'user:mallory' WHERE seq = 3").await;
    let broken = verify().await;
    assert_eq!((broken["ok"].as_bool(), broken["first_broken"]["sequence"].as_u64()), (Some(false), Some(3)), "{broken}");
    assert!(broken["first_broken"]["reason"].as_str().is_some_and(|r| r.contains("altered")), "{broken}");
    sql("DELETE FROM audit WHERE seq IN (2, 3)").await;
    let missing = verify().await;
    assert_eq!(missing["first_broken"]["sequence"], 2, "{missing}");
    assert!(missing["first_broken"]["reason"].as_str().is_some_and(|r| r.contains("missing")), "{missing}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_altered_or_deleted_audit_record_is_found_in_postgres() {
    let db = TestPostgres::create();
    let dir = workdir();
    let serve = Serve::start(BIN, dir.path(), &format!("store = \"{}\"", db.url), &one_flow(dir.path()));
    let c = client();
    for action in ["pin", "unpin", "pin"] {
        c.post(serve.admin_url(&format!("/api/v1/flows/shop/{action}"))).bearer_auth(serve.token()).send().await.expect("act");
    }
    let verify = || async {
        c.get(serve.admin_url("/api/v1/audit/verify"))
            .bearer_auth(serve.token())
            .send()
            .await
            .expect("verify")
            .json::<Value>()
            .await
            .expect("json")
    };
    assert_eq!(verify().await["ok"], true);
    let psql = |statement: &str| {
        let out =
            std::process::Command::new("psql").arg(&db.url).args(["-v", "ON_ERROR_STOP=1", "-q", "-c", statement]).output().expect("psql");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    psql("UPDATE audit SET detail = '{\"after\":{\"pinned\":false}}' WHERE seq = 4");
    let broken = verify().await;
    assert_eq!(broken["first_broken"]["sequence"], 4, "{broken}");
    psql("DELETE FROM audit WHERE seq = 2");
    assert_eq!(verify().await["first_broken"]["sequence"], 2);
}

#[test]
fn without_credentials_in_the_environment_a_one_time_setup_link_is_logged() {
    let dir = workdir();
    let serve = Serve::start_with_env(
        BIN,
        dir.path(),
        "",
        &one_flow(dir.path()),
        &[("LEANNODES_SUPER_ADMIN_EMAIL", ""), ("LEANNODES_SUPER_ADMIN_PASSWORD", "")],
    );
    let log = serve.log();
    let token = log
        .split("\"token\": \"")
        .nth(1)
        .and_then(|t| t.split('"').next())
        .unwrap_or_else(|| panic!("a setup token in the log:\n{log}"))
        .to_string();
    assert!(log.contains("/setup#token="), "{log}");
    let body = json!({ "token": token, "email": "first@example.com", "password": "the first long password" }).to_string();
    let created = leannodes_harness::http_request(serve.admin, "POST", "/api/v1/auth/setup", &[], Some(&body)).expect("setup");
    assert_eq!(created.status, 201, "{}", created.body);
    let again = leannodes_harness::http_request(serve.admin, "POST", "/api/v1/auth/setup", &[], Some(&body)).expect("setup");
    assert_eq!(again.status, 409, "{}", again.body);
    let token = leannodes_harness::admin_token(serve.admin, "first@example.com", "the first long password");
    let me = leannodes_harness::http_request(serve.admin, "GET", "/api/v1/auth/me", &[("authorization", &format!("Bearer {token}"))], None)
        .expect("me");
    assert!(me.body.contains("users.manage"), "{}", me.body);
}
