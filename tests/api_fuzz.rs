//! The served OpenAPI document driven by schemathesis (PyPI, installed by `scripts/setup`) against
//! `leannodes serve` with an administrator's token: no answer may be a 5xx, and every answer must have
//! a documented status, content type and shape. This is the short form run in CI; `scripts/fuzz-api`
//! runs the long one.
//!
//! Two checks are left out, with reason: `ignored_auth` sends a made-up session cookie next to the
//! token given on the command line and expects a refusal, but a valid token authenticates the request
//! whatever cookie comes with it; `positive_data_acceptance` expects every schema-valid body to be
//! accepted, which references (roles, users, groups) that do not exist cannot be.

use std::process::Command;

use leannodes_harness::stores::workspace_root;
use leannodes_harness::{DemoNode, Serve, workdir};

const BIN: &str = env!("CARGO_BIN_EXE_leannodes");

#[test]
fn schemathesis_finds_no_server_error_and_no_undocumented_answer() {
    let dir = workdir();
    let body = format!(
        "\n[[flow]]\nname = \"shop\"\nhosts = [\"shop.test\"]\nupstream = \"web\"\n{}\n[[flow]]\nname = \"api\"\nhosts = [\"api.test\"]\nupstream = \"127.0.0.1:9\"\n",
        DemoNode::new("web").toml(BIN, dir.path())
    );
    let serve = Serve::start(BIN, dir.path(), "", &body);
    let st = workspace_root().join(".tools/venv/bin/st");
    assert!(st.exists(), "schemathesis is missing: run scripts/setup");
    let examples = std::env::var("LEANNODES_FUZZ_EXAMPLES").unwrap_or_else(|_| "15".into());
    let out = Command::new(st)
        .args(["run", &serve.admin_url("/api/v1/openapi.json")])
        .args(["--header", &format!("Authorization: {}", serve.bearer())])
        .args(["--checks", "all", "--exclude-checks", "ignored_auth,positive_data_acceptance"])
        .args(["--phases", "examples,coverage,fuzzing", "--max-examples", &examples, "--workers", "1"])
        .args(["--exclude-path-regex", "/events$", "--seed", "20261129", "--no-color"])
        .env("NO_COLOR", "1")
        .output()
        .expect("run schemathesis");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "schemathesis found problems:\n{text}\n--- server log ---\n{}", serve.log());
    assert!(text.contains("Tested: "), "{text}");
    assert!(!serve.log().contains("panicked"), "{}", serve.log());
}
