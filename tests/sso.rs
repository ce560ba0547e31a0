//! Single sign-on end to end against real identity providers started by the test: `oidc-provider`
//! (OpenID Connect: authorization code + PKCE + state + nonce, discovery, JWKS-signed ID tokens) and a
//! pysaml2 IdP with xmlsec1 (SAML 2.0: signed assertions). Groups map to roles; an unmapped user signs
//! in with no access; sign-ins cannot be finished in another browser, replayed or forged.

use std::time::Duration;

use leannodes_harness::idp::Idp;
use leannodes_harness::{Serve, free_port, workdir};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_leannodes");

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// The absolute URL of a `Location` relative to `base`.
fn resolve(base: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.to_string();
    }
    let origin: String = base.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
    format!("{origin}{location}")
}

/// Follows redirects from `start` until the next one would go to a URL starting with `stop`; returns
/// that URL.
async fn follow_until(client: &reqwest::Client, start: String, stop: &str) -> String {
    let mut url = start;
    for _ in 0..20 {
        let response = client.get(&url).send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let location = response.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_string);
        let Some(location) = location else {
            let status = response.status();
            panic!("{url} answered {status} without a redirect: {}", response.text().await.unwrap_or_default());
        };
        let next = resolve(&url, &location);
        if next.starts_with(stop) {
            return next;
        }
        url = next;
    }
    panic!("too many redirects")
}

fn oidc_config(issuer: &str, extra: &str) -> String {
    format!(
        "[server.auth]\n\
         [[server.auth.oidc]]\nname = \"corp\"\nlabel = \"Corp SSO\"\nissuer = \"{issuer}\"\nclient_id = \"leannodes\"\nclient_secret = \"env:CORP_OIDC_SECRET\"\n\
         role_map = {{ admins = \"admin\", sre = \"operator\" }}\n{extra}"
    )
}

const OIDC_SECRET: &str = "corp-client-secret-1234";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_sign_in_maps_groups_to_roles_and_unmapped_users_get_no_access() {
    let dir = workdir();
    let admin_port = free_port();
    let callback = format!("http://127.0.0.1:{admin_port}/api/v1/auth/oidc/corp/callback");
    let users = json!([
        { "sub": "alice", "email": "alice@example.com", "name": "Alice", "groups": ["admins", "users"] },
        { "sub": "bob", "email": "bob@example.com", "name": "Bob", "groups": ["guests"] },
    ]);
    let idp = Idp::oidc(OIDC_SECRET, &callback, &users);
    let down = format!("http://127.0.0.1:{}", free_port());
    let extra = format!("[[server.auth.oidc]]\nname = \"down\"\nissuer = \"{down}\"\nclient_id = \"x\"\nclient_secret = \"y\"\n");
    let serve = Serve::start_with_env(
        BIN,
        dir.path(),
        &format!("admin_listen = \"127.0.0.1:{admin_port}\"\n{}", oidc_config(&idp.url, &extra)),
        "",
        &[("CORP_OIDC_SECRET", OIDC_SECRET)],
    );
    let providers: Value =
        browser().get(serve.admin_url("/api/v1/auth/providers")).send().await.expect("providers").json().await.expect("json");
    assert_eq!(providers["sso"][0]["label"], "Corp SSO");

    // Alice: an admin through her group.
    let alice = browser();
    let start = serve.admin_url("/api/v1/auth/oidc/corp/start?login_hint=alice&return_to=/flows");
    let first = alice.get(&start).send().await.expect("start");
    assert_eq!(first.status(), 303);
    let to_idp = first.headers()["location"].to_str().expect("location").to_string();
    for part in ["code_challenge_method=S256", "code_challenge=", "state=", "nonce=", "response_type=code", "login_hint=alice"] {
        assert!(to_idp.contains(part), "{part} in {to_idp}");
    }
    assert!(to_idp.starts_with(&idp.url));
    let back = follow_until(&alice, to_idp, &callback).await;
    let finished = alice.get(&back).send().await.expect("callback");
    assert_eq!(finished.status(), 303, "{}", finished.text().await.unwrap_or_default());
    assert_eq!(finished.headers()["location"], "/flows");
    let me: Value = alice.get(serve.admin_url("/api/v1/auth/me")).send().await.expect("me").json().await.expect("json");
    assert_eq!(me["user"]["email"], "alice@example.com", "{me}");
    assert_eq!(me["user"]["sso_roles"], json!(["admin"]));
    assert_eq!(me["user"]["identity"], "oidc:corp:alice");
    assert!(me["permissions"].as_array().is_some_and(|p| p.iter().any(|p| p == "users.manage")), "{me}");
    let replay = alice.get(&back).send().await.expect("replay");
    assert_eq!(replay.status(), 400, "a callback works once");
    assert_eq!(replay.json::<Value>().await.expect("json")["error"], "sso_state_invalid");

    // Bob: signs in, but no mapping covers his groups — no access until granted.
    let bob = browser();
    let to_idp = bob.get(serve.admin_url("/api/v1/auth/oidc/corp/start?login_hint=bob")).send().await.expect("start").headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    let back = follow_until(&bob, to_idp, &callback).await;
    assert_eq!(bob.get(&back).send().await.expect("callback").status(), 303);
    let me: Value = bob.get(serve.admin_url("/api/v1/auth/me")).send().await.expect("me").json().await.expect("json");
    assert_eq!(me["permissions"], json!([]), "{me}");
    let flows: Value = bob.get(serve.admin_url("/api/v1/flows")).send().await.expect("flows").json().await.expect("json");
    assert_eq!(flows["flows"], json!([]));
    assert_eq!(bob.get(serve.admin_url("/api/v1/users")).send().await.expect("users").status(), 403);

    // A sign-in started in one browser cannot be finished in another (login CSRF).
    let victim = browser();
    let attacker = browser();
    let to_idp =
        attacker.get(serve.admin_url("/api/v1/auth/oidc/corp/start?login_hint=bob")).send().await.expect("start").headers()["location"]
            .to_str()
            .expect("location")
            .to_string();
    let back = follow_until(&attacker, to_idp, &callback).await;
    let stolen = victim.get(&back).send().await.expect("callback in another browser");
    assert_eq!(stolen.status(), 400);
    assert_eq!(stolen.json::<Value>().await.expect("json")["error"], "sso_browser_mismatch");
    assert_eq!(victim.get(serve.admin_url("/api/v1/auth/me")).send().await.expect("me").status(), 401);

    // A forged callback (made-up state) and an unknown or unreachable provider.
    let forged = alice.get(format!("{callback}?code=x&state=made-up")).send().await.expect("forged");
    assert_eq!(forged.status(), 400);
    let unknown = browser().get(serve.admin_url("/api/v1/auth/oidc/nope/start")).send().await.expect("unknown");
    assert_eq!(unknown.status(), 404);
    let unreachable = browser().get(serve.admin_url("/api/v1/auth/oidc/down/start")).send().await.expect("down");
    assert_eq!(unreachable.status(), 503);
    let mallory = browser();
    let to_idp =
        mallory.get(serve.admin_url("/api/v1/auth/oidc/corp/start?login_hint=mallory")).send().await.expect("start").headers()["location"]
            .to_str()
            .expect("location")
            .to_string();
    let back = follow_until(&mallory, to_idp, &callback).await;
    let denied = mallory.get(&back).send().await.expect("denied");
    assert_eq!(denied.status(), 401, "the provider's access_denied");

    let audit: Value = browser()
        .get(serve.admin_url("/api/v1/audit?action=auth.login"))
        .bearer_auth(serve.token())
        .send()
        .await
        .expect("audit")
        .json()
        .await
        .expect("json");
    let methods: Vec<&str> = audit["items"].as_array().expect("items").iter().filter_map(|i| i["detail"]["method"].as_str()).collect();
    assert_eq!(methods.iter().filter(|m| **m == "oidc:corp").count(), 2, "{audit}");
    let text = audit.to_string();
    assert!(!text.contains(OIDC_SECRET), "no secret in the audit");
}

/// The value of a hidden input in the IdP's auto-post form.
fn hidden(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let value = &html[start..start + html[start..].find('"')?];
    Some(value.replace("&amp;", "&").replace("&quot;", "\"").replace("&#x27;", "'").replace("&lt;", "<").replace("&gt;", ">"))
}

/// Starts a SAML sign-in in `browser`, lets the IdP answer with `options` (e.g. `user=alice`), and
/// returns the form the IdP would post to the ACS: (action, SAMLResponse, RelayState).
async fn saml_answer(serve: &Serve, browser: &reqwest::Client, options: &str) -> (String, String, String) {
    let start = browser.get(serve.admin_url("/api/v1/auth/saml/login?return_to=/after")).send().await.expect("login");
    assert_eq!(start.status(), 303);
    let to_idp = start.headers()["location"].to_str().expect("location").to_string();
    assert!(to_idp.contains("SAMLRequest=") && to_idp.contains("RelayState=id-"), "{to_idp}");
    let html = browser.get(format!("{to_idp}&{options}")).send().await.expect("idp").text().await.expect("html");
    let action = html.split("action=\"").nth(1).and_then(|a| a.split('"').next()).expect("form action").to_string();
    (action, hidden(&html, "SAMLResponse").expect("SAMLResponse"), hidden(&html, "RelayState").expect("RelayState"))
}

async fn post_acs(browser: &reqwest::Client, action: &str, response: &str, relay: &str) -> reqwest::Response {
    browser.post(action).form(&[("SAMLResponse", response), ("RelayState", relay)]).send().await.expect("acs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saml_accepts_only_signed_assertions_for_its_own_requests() {
    let dir = workdir();
    let idp = Idp::saml();
    let metadata = reqwest::get(format!("{}/metadata", idp.url)).await.expect("metadata").text().await.expect("xml");
    std::fs::write(dir.path().join("idp.xml"), &metadata).expect("write metadata");
    let admin_port = free_port();
    let serve = Serve::start(
        BIN,
        dir.path(),
        &format!(
            "admin_listen = \"127.0.0.1:{admin_port}\"\n[server.auth.saml]\nidp_metadata = \"idp.xml\"\nentity_id = \"http://127.0.0.1:{admin_port}/saml\"\nrole_map = {{ admins = \"admin\", developers = \"viewer\" }}\n"
        ),
        "",
    );
    let sp_metadata = browser().get(serve.admin_url("/api/v1/auth/saml/metadata")).send().await.expect("sp metadata");
    assert_eq!(sp_metadata.headers()["content-type"], "application/samlmetadata+xml");
    let sp_metadata = sp_metadata.text().await.expect("xml");
    assert!(
        sp_metadata.contains(&format!("entityID=\"http://127.0.0.1:{admin_port}/saml\"")) && sp_metadata.contains("/api/v1/auth/saml/acs"),
        "{sp_metadata}"
    );
    assert!(sp_metadata.contains("WantAssertionsSigned=\"true\""), "{sp_metadata}");

    // A signed assertion for alice, in answer to this browser's request: an admin.
    let alice = browser();
    let (action, response, relay) = saml_answer(&serve, &alice, "user=alice").await;
    assert_eq!(action, serve.admin_url("/api/v1/auth/saml/acs"));
    let signed_in = post_acs(&alice, &action, &response, &relay).await;
    assert_eq!(signed_in.status(), 303, "{}", signed_in.text().await.unwrap_or_default());
    assert_eq!(signed_in.headers()["location"], "/after");
    let me: Value = alice.get(serve.admin_url("/api/v1/auth/me")).send().await.expect("me").json().await.expect("json");
    assert_eq!(
        (me["user"]["email"].as_str(), me["user"]["identity"].as_str()),
        (Some("alice@example.com"), Some("saml:alice@example.com")),
        "{me}"
    );
    assert!(me["permissions"].as_array().is_some_and(|p| p.iter().any(|p| p == "users.manage")), "{me}");
    let replay = post_acs(&browser(), &action, &response, &relay).await;
    assert_eq!(replay.status(), 400, "a response is used once");

    // bob maps to viewer; carol has no group and no access.
    let bob = browser();
    let (action, response, relay) = saml_answer(&serve, &bob, "user=bob").await;
    assert_eq!(post_acs(&bob, &action, &response, &relay).await.status(), 303);
    let me: Value = bob.get(serve.admin_url("/api/v1/auth/me")).send().await.expect("me").json().await.expect("json");
    assert_eq!(me["permissions"], json!(["flows.read"]));
    let carol = browser();
    let (action, response, relay) = saml_answer(&serve, &carol, "user=carol").await;
    assert_eq!(post_acs(&carol, &action, &response, &relay).await.status(), 303);
    let me: Value = carol.get(serve.admin_url("/api/v1/auth/me")).send().await.expect("me").json().await.expect("json");
    assert_eq!(me["permissions"], json!([]), "unmapped: no access");

    // Unsigned, tampered: refused. A wrapped forgery: only the signed assertion counts.
    for (options, what) in [
        ("unsigned=1", "unsigned"),
        ("tamper=1", "tampered after signing"),
        ("tamper=1&sign_response=0", "tampered, only the assertion signed"),
    ] {
        let mallory = browser();
        let (action, response, relay) = saml_answer(&serve, &mallory, &format!("user=bob&{options}")).await;
        let refused = post_acs(&mallory, &action, &response, &relay).await;
        assert_eq!(refused.status(), 401, "{what}");
        assert_eq!(refused.json::<Value>().await.expect("json")["error"], "sso_failed", "{what}");
        assert_eq!(mallory.get(serve.admin_url("/api/v1/auth/me")).send().await.expect("me").status(), 401, "{what}: not signed in");
    }
    let wrapper = browser();
    let (action, response, relay) = saml_answer(&serve, &wrapper, "user=bob&wrap=1").await;
    let wrapped = post_acs(&wrapper, &action, &response, &relay).await;
    assert_eq!(wrapped.status(), 303, "the genuine signed assertion (bob's) is what counts");
    let me: Value = wrapper.get(serve.admin_url("/api/v1/auth/me")).send().await.expect("me").json().await.expect("json");
    assert_eq!(me["user"]["email"], "bob@example.com", "the unsigned forged assertion (evil@example.com, admins) is never read: {me}");
    assert_eq!(me["permissions"], json!(["flows.read"]), "{me}");

    // A response finished in another browser, or without a request of ours, is refused.
    let (action, response, relay) = saml_answer(&serve, &browser(), "user=alice").await;
    let elsewhere = post_acs(&browser(), &action, &response, &relay).await;
    assert_eq!(elsewhere.status(), 400);
    assert_eq!(elsewhere.json::<Value>().await.expect("json")["error"], "sso_browser_mismatch");
    let unsolicited = browser().post(&action).form(&[("SAMLResponse", response.as_str())]).send().await.expect("idp-initiated");
    assert_eq!(unsolicited.status(), 400);

    let failed: Value = browser()
        .get(serve.admin_url("/api/v1/audit?action=auth.login_failed"))
        .bearer_auth(serve.token())
        .send()
        .await
        .expect("audit")
        .json()
        .await
        .expect("json");
    assert!(failed["items"].as_array().is_some_and(|i| i.len() >= 3), "refusals are audited: {failed}");
}
