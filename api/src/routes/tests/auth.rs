//! Signing in and out, CSRF, throttling, tokens, setup, password changes and resets.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use leannodes_store::{AccessToken, AuditQuery, LinkPurpose, Page};
use serde_json::{Value, json};

use super::{ADMIN, Harness, PASSWORD};
use crate::auth::links;

/// Signs in; returns the cookie (`name=value`) and the CSRF token.
async fn login(h: &Harness, email: &str, password: &str) -> (StatusCode, Option<String>, Value) {
    let a = h.call(Method::POST, "/api/v1/auth/login", None, Some(json!({ "email": email, "password": password }))).await;
    let cookie = a.headers.get("set-cookie").and_then(|v| v.to_str().ok()).map(str::to_string);
    (a.status, cookie, a.body)
}

fn with_cookie(method: Method, path: &str, cookie: &str, csrf: Option<&str>) -> Request<Body> {
    let mut r = Request::builder().method(method).uri(path).header("cookie", cookie);
    if let Some(csrf) = csrf {
        r = r.header("x-csrf-token", csrf);
    }
    r.body(Body::empty()).expect("request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_cookie_signs_in_and_unsafe_requests_need_its_csrf_token() {
    let h = Harness::new("").await;
    let (status, set_cookie, body) = login(&h, ADMIN, PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let set_cookie = set_cookie.expect("a session cookie");
    for attribute in ["leannodes_session=", "HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=43200"] {
        assert!(set_cookie.contains(attribute), "{attribute} in {set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "no Secure behind plain http");
    let cookie = set_cookie.split(';').next().expect("pair").to_string();
    let csrf = body["csrf_token"].as_str().expect("csrf token").to_string();
    assert_eq!(body["user"]["email"], ADMIN);
    assert!(body["user"].get("password_hash").is_none(), "never the hash");

    let me = h.send(with_cookie(Method::GET, "/api/v1/auth/me", &cookie, None)).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!((me.body["via"].as_str(), me.body["csrf_token"].as_str()), (Some("session"), Some(csrf.as_str())));
    assert!(me.body["permissions"].as_array().is_some_and(|p| p.iter().any(|p| p == "users.manage")));

    let missing = h.send(with_cookie(Method::POST, "/api/v1/flows/shop/pin", &cookie, None)).await;
    assert_eq!((missing.status, missing.body["details"]["reason"].as_str()), (StatusCode::FORBIDDEN, Some("csrf_missing")));
    let wrong = h.send(with_cookie(Method::POST, "/api/v1/flows/shop/pin", &cookie, Some("0000"))).await;
    assert_eq!((wrong.status, wrong.body["details"]["reason"].as_str()), (StatusCode::FORBIDDEN, Some("csrf_invalid")));
    let pinned = h.send(with_cookie(Method::POST, "/api/v1/flows/shop/pin", &cookie, Some(&csrf))).await;
    assert_eq!((pinned.status, &pinned.body["pinned"]), (StatusCode::OK, &json!(true)));

    // A cross-site form post is refused before anything else, whatever it carries.
    let mut cross = with_cookie(Method::POST, "/api/v1/flows/shop/unpin", &cookie, Some(&csrf));
    cross.headers_mut().insert("origin", "https://evil.example".parse().expect("value"));
    cross.headers_mut().insert("host", "leannodes.example".parse().expect("value"));
    let refused = h.send(cross).await;
    assert_eq!((refused.status, refused.body["details"]["reason"].as_str()), (StatusCode::FORBIDDEN, Some("cross_origin")));

    let out = h.send(with_cookie(Method::POST, "/api/v1/auth/logout", &cookie, Some(&csrf))).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert!(out.headers.get("set-cookie").and_then(|v| v.to_str().ok()).is_some_and(|c| c.contains("Max-Age=0")));
    let after = h.send(with_cookie(Method::GET, "/api/v1/auth/me", &cookie, None)).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED, "the session is gone");
    let actions: Vec<String> = h.audit().await.into_iter().map(|r| r.entry.action).collect();
    for action in ["auth.login", "flow.pin", "auth.logout"] {
        assert!(actions.contains(&action.to_string()), "{action} audited: {actions:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sign_ins_are_throttled_the_same_whether_or_not_the_account_exists() {
    let h = Harness::new("").await;
    let mut existing = Vec::new();
    let mut unknown = Vec::new();
    for _ in 0..5 {
        existing.push(login(&h, ADMIN, "wrong password!").await);
        unknown.push(login(&h, "nobody@example.com", "wrong password!").await);
    }
    for (a, b) in existing.iter().zip(&unknown) {
        assert_eq!((a.0, &a.2["error"]), (StatusCode::UNAUTHORIZED, &json!("invalid_credentials")));
        assert_eq!((a.0, &a.2), (b.0, &b.2), "the same answer for an existing and an unknown account");
    }
    let blocked = h.call(Method::POST, "/api/v1/auth/login", None, Some(json!({ "email": ADMIN, "password": PASSWORD }))).await;
    assert_eq!(blocked.status, StatusCode::TOO_MANY_REQUESTS, "blocked even with the right password");
    let retry: u64 = blocked.headers["retry-after"].to_str().expect("value").parse().expect("seconds");
    assert!((1..=30).contains(&retry), "{retry}");
    let unknown_blocked = login(&h, "nobody@example.com", "wrong password!").await;
    assert_eq!((unknown_blocked.0, &unknown_blocked.2["error"]), (StatusCode::TOO_MANY_REQUESTS, &json!("too_many_requests")));
    // Another account from the same address is not blocked yet (the address allows 20).
    assert_eq!(login(&h, "third@example.com", "wrong password!").await.0, StatusCode::UNAUTHORIZED);
    let failed = h
        .store
        .audit(&AuditQuery { action: Some("auth.login_failed".into()), ..AuditQuery::default() }, &Page::first(50))
        .await
        .expect("audit");
    assert_eq!(failed.items.len(), 11, "every failed sign-in is audited");
    assert!(failed.items.iter().all(|r| r.entry.source == "unknown" && !r.entry.detail.contains("wrong")), "no password in the audit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_address_is_throttled_across_accounts() {
    let h = Harness::new("").await;
    for i in 0..20 {
        let (status, _, _) = login(&h, &format!("guess{i}@example.com"), "wrong password!").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let (status, _, body) = login(&h, ADMIN, PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_shown_once_stored_hashed_limited_to_their_scopes_and_revocable() {
    let h = Harness::new("").await;
    let created = h.post("/api/v1/tokens", &h.admin, json!({ "name": "ci", "expires_in": "30d", "scopes": ["flows.read"] })).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let token = created.body["token"].as_str().expect("token").to_string();
    let id = created.body["id"].as_str().expect("id").to_string();
    assert!(token.starts_with(&format!("lnp_{id}_")));
    let stored = h.store.records::<AccessToken>().get(&id).await.expect("read").expect("stored").value;
    assert!(!stored.secret_hash.is_empty() && !token.contains(&stored.secret_hash), "stored as a hash");
    let listed = h.get("/api/v1/tokens", &h.admin).await;
    assert!(listed.body.to_string().contains(&id) && !listed.body.to_string().contains(&token[4..]), "listed without the secret");

    assert_eq!(h.get("/api/v1/flows", &token).await.status, StatusCode::OK);
    // The use is recorded (off the request path).
    let mut last_used = None;
    for _ in 0..500 {
        last_used = h.store.records::<AccessToken>().get(&id).await.expect("read").and_then(|t| t.value.last_used_ms);
        if last_used.is_some() {
            break;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(last_used.is_some_and(|at| at > crate::unix_ms() - 60_000), "last use recorded: {last_used:?}");
    let listed = h.get("/api/v1/tokens", &h.admin).await;
    let mine = listed.body["tokens"].as_array().and_then(|t| t.iter().find(|t| t["id"] == id.as_str())).cloned().unwrap_or_default();
    assert!(mine["last_used_ms"].is_i64(), "{mine}");
    let pin = h.post("/api/v1/flows/shop/pin", &token, json!({})).await;
    assert_eq!(pin.status, StatusCode::FORBIDDEN, "read-only scope");
    let broader = h.post("/api/v1/tokens", &token, json!({ "name": "more" })).await;
    assert_eq!(broader.status, StatusCode::FORBIDDEN, "a scoped token cannot mint a broader one");
    let narrower = h.post("/api/v1/tokens", &token, json!({ "name": "same", "scopes": ["flows.read"] })).await;
    assert_eq!(narrower.status, StatusCode::CREATED);

    let forged = format!("lnp_{id}_{}", "A".repeat(43));
    assert_eq!(h.get("/api/v1/flows", &forged).await.code(), "invalid_token");
    assert_eq!(h.get("/api/v1/flows", "lnp_nonsense").await.status, StatusCode::UNAUTHORIZED);
    let bad_scheme =
        h.send(Request::get("/api/v1/flows").header("authorization", "Basic YWRtaW4=").body(Body::empty()).expect("req")).await;
    assert_eq!(bad_scheme.status, StatusCode::UNAUTHORIZED);

    let revoked = h.call(Method::DELETE, &format!("/api/v1/tokens/{id}"), Some(&h.admin), None).await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    assert_eq!(h.get("/api/v1/flows", &token).await.code(), "invalid_token", "revoked at once");

    // An expired token is gone.
    let mut expired = stored.clone();
    expired.id = "expired".into();
    expired.expires_ms = Some(crate::unix_ms() - 1);
    h.store.records::<AccessToken>().upsert(&expired).await.expect("write");
    let secretless = format!("lnp_expired_{}", "x".repeat(43));
    assert_eq!(h.get("/api/v1/flows", &secretless).await.code(), "invalid_token");

    let bad = h.post("/api/v1/tokens", &h.admin, json!({ "name": "x", "expires_in": "5y" })).await;
    assert_eq!((bad.status, bad.body["details"]["fields"][0]["path"].as_str()), (StatusCode::BAD_REQUEST, Some("expires_in")));
    let actions: Vec<String> = h.audit().await.into_iter().map(|r| r.entry.action).collect();
    assert!(actions.contains(&"token.create".into()) && actions.contains(&"token.revoke".into()), "{actions:?}");
    assert!(!h.audit().await.iter().any(|r| r.entry.detail.contains(&token[4..])), "no secret in the audit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_setup_link_creates_the_first_administrator_once() {
    let h = Harness::with("", "").await;
    // A fresh store would have printed a link; this one has the harness's admin, so set up a second
    // store's situation: remove every user first.
    let users: Vec<String> =
        crate::authz::all::<leannodes_store::User>(&*h.store).await.expect("users").into_iter().map(|u| u.id).collect();
    for id in users {
        h.store.records::<leannodes_store::User>().delete(&id, None).await.expect("delete");
    }
    let providers = h.call(Method::GET, "/api/v1/auth/providers", None, None).await;
    assert_eq!(providers.body["setup_required"], true);
    let (secret, _) = links::create(&*h.store, LinkPurpose::Setup, "", vec!["admin".into()], "system", std::time::Duration::from_secs(60))
        .await
        .expect("link");
    let body = json!({ "token": secret, "email": "root@example.com", "name": "Root", "password": PASSWORD });
    let wrong = h
        .call(Method::POST, "/api/v1/auth/setup", None, Some(json!({ "token": "nope", "email": "x@example.com", "password": PASSWORD })))
        .await;
    assert_eq!(wrong.code(), "invalid_link");
    let created = h.call(Method::POST, "/api/v1/auth/setup", None, Some(body.clone())).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["user"]["roles"], json!(["admin"]));
    assert!(created.headers.contains_key("set-cookie"), "signed in");
    let again = h.call(Method::POST, "/api/v1/auth/setup", None, Some(body)).await;
    assert_eq!(again.code(), "setup_done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_ends_other_sessions_and_a_reset_link_works_once() {
    let h = Harness::new("").await;
    h.user("ada@example.com", &["viewer"]).await;
    let (_, first, _) = login(&h, "ada@example.com", PASSWORD).await;
    let (_, second, body) = login(&h, "ada@example.com", PASSWORD).await;
    let first = first.expect("cookie").split(';').next().expect("pair").to_string();
    let second = second.expect("cookie").split(';').next().expect("pair").to_string();
    let csrf = body["csrf_token"].as_str().expect("csrf").to_string();
    let mut change = Request::post("/api/v1/auth/password")
        .header("cookie", &second)
        .header("x-csrf-token", &csrf)
        .header("content-type", "application/json")
        .body(Body::from(json!({ "current_password": "not it at all", "new_password": "another long password" }).to_string()))
        .expect("request");
    let refused = h.send(change).await;
    assert_eq!(
        (refused.status, refused.body["details"]["fields"][0]["path"].as_str()),
        (StatusCode::BAD_REQUEST, Some("current_password"))
    );
    change = Request::post("/api/v1/auth/password")
        .header("cookie", &second)
        .header("x-csrf-token", &csrf)
        .header("content-type", "application/json")
        .body(Body::from(json!({ "current_password": PASSWORD, "new_password": "another long password" }).to_string()))
        .expect("request");
    let changed = h.send(change).await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert!(changed.headers.contains_key("set-cookie"), "a new session for the one who changed it");
    assert_eq!(
        h.send(with_cookie(Method::GET, "/api/v1/auth/me", &first, None)).await.status,
        StatusCode::UNAUTHORIZED,
        "other sessions end"
    );
    assert_eq!(login(&h, "ada@example.com", PASSWORD).await.0, StatusCode::UNAUTHORIZED, "the old password is gone");

    let id = h.user_id("ada@example.com").await;
    let link = h.post(&format!("/api/v1/users/{id}/password-reset"), &h.admin, json!({})).await;
    assert_eq!(link.status, StatusCode::CREATED, "{}", link.body);
    assert_eq!(link.body["mailed"], false);
    let url = link.body["url"].as_str().expect("shown once without mail");
    let secret = url.split("#token=").nth(1).expect("secret");
    let reset =
        h.call(Method::POST, &format!("/api/v1/auth/reset/{secret}"), None, Some(json!({ "password": "third long password" }))).await;
    assert_eq!(reset.status, StatusCode::OK, "{}", reset.body);
    let twice =
        h.call(Method::POST, &format!("/api/v1/auth/reset/{secret}"), None, Some(json!({ "password": "fourth long password" }))).await;
    assert_eq!(twice.code(), "invalid_link", "single use");
    assert_eq!(login(&h, "ada@example.com", "third long password").await.0, StatusCode::OK);
    let weak = h.call(Method::POST, "/api/v1/auth/reset/whatever", None, Some(json!({ "password": "short" }))).await;
    assert_eq!(weak.code(), "invalid_link", "an unknown link is refused before the password is judged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_authentication_only_loopback_host_names_are_served() {
    let h = Harness::new("[server.auth]\nmode = \"none\"").await;
    let local = h.send(Request::get("/api/v1/flows").header("host", "127.0.0.1:9090").body(Body::empty()).expect("req")).await;
    assert_eq!(local.status, StatusCode::OK);
    let named = h.send(Request::get("/api/v1/users").header("host", "localhost:9090").body(Body::empty()).expect("req")).await;
    assert_eq!(named.status, StatusCode::OK, "anyone here is an administrator");
    let rebound = h.send(Request::get("/api/v1/flows").header("host", "attacker.example:9090").body(Body::empty()).expect("req")).await;
    assert_eq!(rebound.status, StatusCode::FORBIDDEN, "a DNS-rebound name is refused");
    let login = h.call(Method::POST, "/api/v1/auth/login", None, Some(json!({ "email": ADMIN, "password": PASSWORD }))).await;
    assert_eq!(login.code(), "auth_disabled");
}
