//! Users, groups, custom roles and invitations — and that nobody gives more than they have.

use axum::http::{Method, StatusCode};
use serde_json::json;

use super::{Harness, PASSWORD};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_created_changed_and_deleted_without_escalation() {
    let h = Harness::new("").await;
    let created = h
        .post("/api/v1/users", &h.admin, json!({ "email": "Bob@Example.com", "name": "Bob", "password": PASSWORD, "roles": ["viewer"] }))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!((created.body["email"].as_str(), created.body["has_password"].as_bool()), (Some("bob@example.com"), Some(true)));
    let again = h.post("/api/v1/users", &h.admin, json!({ "email": "bob@example.com" })).await;
    assert_eq!((again.status, again.code()), (StatusCode::CONFLICT, "email_taken"));
    let weak = h.post("/api/v1/users", &h.admin, json!({ "email": "w@example.com", "password": "short" })).await;
    assert_eq!(weak.body["details"]["fields"][0]["path"], "password");

    // A custom role that manages users but has nothing else cannot hand out admin.
    let role = h.post("/api/v1/roles", &h.admin, json!({ "name": "people", "permissions": ["users.manage", "flows.read"] })).await;
    assert_eq!(role.status, StatusCode::CREATED, "{}", role.body);
    let manager = h.user("manager@example.com", &["people"]).await;
    let escalate = h.post("/api/v1/users", &manager, json!({ "email": "x@example.com", "roles": ["admin"] })).await;
    assert_eq!(escalate.status, StatusCode::FORBIDDEN);
    let own_id = h.user_id("manager@example.com").await;
    let self_promote = h.call(Method::PATCH, &format!("/api/v1/users/{own_id}"), Some(&manager), Some(json!({ "roles": ["admin"] }))).await;
    assert_eq!(self_promote.status, StatusCode::FORBIDDEN);
    let admin_id = h.user_id(super::ADMIN).await;
    let demote = h.call(Method::PATCH, &format!("/api/v1/users/{admin_id}"), Some(&manager), Some(json!({ "disabled": true }))).await;
    assert_eq!(demote.status, StatusCode::FORBIDDEN, "someone with more permissions cannot be changed");
    let ok = h.post("/api/v1/users", &manager, json!({ "email": "v@example.com", "roles": ["viewer"] })).await;
    assert_eq!(ok.status, StatusCode::CREATED);

    // The last administrator stays.
    let last = h.call(Method::PATCH, &format!("/api/v1/users/{admin_id}"), Some(&h.admin), Some(json!({ "roles": ["viewer"] }))).await;
    assert_eq!((last.status, last.code()), (StatusCode::CONFLICT, "last_admin"));
    let gone = h.call(Method::DELETE, &format!("/api/v1/users/{admin_id}"), Some(&h.admin), None).await;
    assert_eq!(gone.code(), "last_admin");

    // Disabling a user stops its tokens at once.
    let bob_token =
        crate::accounts::issue_token(&*h.store, "bob@example.com", "t", std::time::Duration::from_secs(60)).await.expect("token");
    assert_eq!(h.get("/api/v1/flows", &bob_token).await.status, StatusCode::OK);
    let bob = created.body["id"].as_str().expect("id");
    let disabled = h.call(Method::PATCH, &format!("/api/v1/users/{bob}"), Some(&h.admin), Some(json!({ "disabled": true }))).await;
    assert_eq!(disabled.status, StatusCode::OK);
    assert_eq!(h.get("/api/v1/flows", &bob_token).await.status, StatusCode::UNAUTHORIZED);
    let deleted = h.call(Method::DELETE, &format!("/api/v1/users/{bob}"), Some(&h.admin), None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(h.get(&format!("/api/v1/users/{bob}"), &h.admin).await.code(), "unknown_user");
    let reuse = h.post("/api/v1/users", &h.admin, json!({ "email": "bob@example.com" })).await;
    assert_eq!(reuse.status, StatusCode::CREATED, "the address is free again");
    let actions: Vec<String> = h.audit().await.into_iter().map(|r| r.entry.action).collect();
    for action in ["user.create", "user.update", "user.delete", "role.create"] {
        assert!(actions.contains(&action.to_string()), "{action}: {actions:?}");
    }
    assert!(!h.audit().await.iter().any(|r| r.entry.detail.contains(PASSWORD)), "no password in the audit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_give_their_roles_and_roles_in_use_stay() {
    let h = Harness::new("").await;
    let dana = h.user("dana@example.com", &[]).await;
    assert_eq!(h.get("/api/v1/flows", &dana).await.body["flows"], json!([]));
    let id = h.user_id("dana@example.com").await;
    let group = h.post("/api/v1/groups", &h.admin, json!({ "name": "ops", "members": [id], "roles": ["operator"] })).await;
    assert_eq!(group.status, StatusCode::CREATED, "{}", group.body);
    assert_eq!(h.post("/api/v1/flows/shop/pin", &dana, json!({})).await.status, StatusCode::OK, "operator through the group");
    let unknown_member = h.post("/api/v1/groups", &h.admin, json!({ "name": "ghosts", "members": ["nobody"] })).await;
    assert_eq!(unknown_member.body["details"]["fields"][0]["path"], "members/0");
    let version = group.body["version"].as_u64().expect("version");
    let stale = h.call(Method::PUT, "/api/v1/groups/ops", Some(&h.admin), Some(json!({ "members": [], "roles": [] }))).await;
    assert_eq!(stale.status, StatusCode::OK, "no If-Match: last write wins");
    assert!(stale.body["version"].as_u64() > Some(version));
    assert_eq!(h.post("/api/v1/flows/shop/pin", &dana, json!({})).await.code(), "unknown_flow", "no longer in the group");

    let role = h.post("/api/v1/roles", &h.admin, json!({ "name": "drainer", "permissions": ["flows.read", "flows.operate"] })).await;
    assert_eq!(role.status, StatusCode::CREATED);
    let builtin = h.post("/api/v1/roles", &h.admin, json!({ "name": "admin", "permissions": ["flows.read"] })).await;
    assert_eq!(builtin.code(), "role_exists");
    h.call(Method::PUT, "/api/v1/groups/ops", Some(&h.admin), Some(json!({ "members": [id], "roles": ["drainer"] }))).await;
    let in_use = h.call(Method::DELETE, "/api/v1/roles/drainer", Some(&h.admin), None).await;
    assert_eq!((in_use.status, in_use.code()), (StatusCode::CONFLICT, "role_in_use"));
    let roles = h.get("/api/v1/roles", &dana).await;
    assert_eq!(roles.body["roles"].as_array().map(Vec::len), Some(5), "four built in and one custom");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitation_creates_an_account_once() {
    let h = Harness::new("").await;
    let invited = h.post("/api/v1/invitations", &h.admin, json!({ "email": "new@example.com", "role": "editor" })).await;
    assert_eq!(invited.status, StatusCode::CREATED, "{}", invited.body);
    assert_eq!(invited.body["mailed"], false);
    let url = invited.body["url"].as_str().expect("shown once without mail").to_string();
    assert!(url.starts_with("http://127.0.0.1:9090/invite#token="), "{url}");
    let secret = url.split("#token=").nth(1).expect("secret");
    let pending = h.get("/api/v1/invitations", &h.admin).await;
    assert_eq!(pending.body["invitations"][0]["email"], "new@example.com");
    assert!(!pending.body.to_string().contains(secret), "the secret is not stored");
    let accept = h
        .call(Method::POST, &format!("/api/v1/invitations/{secret}/accept"), None, Some(json!({ "name": "New", "password": PASSWORD })))
        .await;
    assert_eq!(accept.status, StatusCode::CREATED, "{}", accept.body);
    assert_eq!(accept.body["user"]["roles"], json!(["editor"]));
    assert!(accept.headers.contains_key("set-cookie"), "signed in");
    let twice = h.call(Method::POST, &format!("/api/v1/invitations/{secret}/accept"), None, Some(json!({ "password": PASSWORD }))).await;
    assert_eq!((twice.status, twice.code()), (StatusCode::NOT_FOUND, "invalid_link"));
    assert_eq!(h.get("/api/v1/invitations", &h.admin).await.body["invitations"], json!([]));
    let taken = h.post("/api/v1/invitations", &h.admin, json!({ "email": "new@example.com" })).await;
    assert_eq!(taken.code(), "email_taken");
    let viewer = h.user("viewer@example.com", &["viewer"]).await;
    assert_eq!(h.post("/api/v1/invitations", &viewer, json!({ "email": "x@example.com" })).await.status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_link_is_refused() {
    use leannodes_store::{Invitation, LinkPurpose};
    let h = Harness::new("").await;
    let secret = "an-expired-invitation-secret";
    let expired = Invitation {
        token_hash: crate::auth::secret::sha256_hex(secret),
        purpose: LinkPurpose::Invitation,
        email: "late@example.com".into(),
        roles: vec!["viewer".into()],
        created_by: "user:x".into(),
        created_ms: 0,
        expires_ms: crate::unix_ms() - 1,
    };
    h.store.records::<Invitation>().upsert(&expired).await.expect("write");
    let accept = h.call(Method::POST, &format!("/api/v1/invitations/{secret}/accept"), None, Some(json!({ "password": PASSWORD }))).await;
    assert_eq!((accept.status, accept.code()), (StatusCode::NOT_FOUND, "invalid_link"));
    assert_eq!(h.store.records::<leannodes_store::Login>().get("email/late@example.com").await.expect("read"), None, "no account");
}
