//! The configuration reference (`docs/configuration.md`), generated from the JSON Schema of the
//! external types so the documentation cannot drift from the code.

use serde_json::Value;

use crate::source::schema;

/// Sections of the reference: title, definition in `$defs`, and an introduction.
const SECTIONS: &[(&str, &str, &str)] = &[
    ("`[server]`", "ServerSection", "Listeners, store and platform of this LeanNodes instance."),
    ("`[server.auth]`", "AuthSection", "Authentication of the management API and the dashboard (see `docs/security.md`)."),
    ("`[[server.auth.oidc]]`", "OidcSection", "An OpenID Connect provider for single sign-on (authorization code + PKCE)."),
    ("`[server.auth.saml]`", "SamlSection", "LeanNodes as a SAML 2.0 service provider (signed assertions only)."),
    ("`[server.smtp]`", "SmtpSection", "The mail server for invitation and password-reset mails."),
    ("`[defaults]`", "FlowSettings", "Every flow inherits these; any of them may be set in a `[[flow]]` to override it."),
    ("`[[flow]]`", "FlowSpec", "A flow binds hosts and path prefixes to a DAG of nodes that is woken on demand."),
    ("`[[flow.node]]`", "NodeSpec", "A workload the flow needs."),
    ("`ignore`", "IgnoreSpec", "Requests that never wake the flow and never count as activity."),
];

/// The reference as Markdown.
pub fn reference_markdown() -> String {
    let root = schema();
    let mut out = String::from(
        "# Configuration reference\n\n\
         <!-- Generated from the config types by `leannodes schema --markdown`; do not edit by hand. -->\n\n\
         LeanNodes reads one TOML file (`leannodes serve --config FILE`, `leannodes validate FILE`). Durations are\n\
         humantime strings (`\"500ms\"`, `\"90s\"`, `\"15m\"`, `\"1h 30m\"`). Unknown keys are errors. `leannodes schema`\n\
         prints the JSON Schema for editor completion.\n",
    );
    for (title, def, intro) in SECTIONS {
        let Some(definition) = root.pointer(&format!("/$defs/{def}")) else { continue };
        out.push_str(&format!("\n## {title}\n\n{intro}\n\n| key | type | required | description |\n|---|---|---|---|\n"));
        let required: Vec<&str> =
            definition.get("required").and_then(Value::as_array).map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
        if let Some(props) = definition.get("properties").and_then(Value::as_object) {
            for (key, prop) in props {
                let description = prop.get("description").and_then(Value::as_str).unwrap_or_default().replace('\n', " ");
                let yes = if required.contains(&key.as_str()) { "yes" } else { "" };
                out.push_str(&format!("| `{key}` | {} | {yes} | {} |\n", type_of(root, prop), description.replace('|', "\\|")));
            }
        }
    }
    out.push_str(
        "\n## `ready` probes\n\nExactly one of:\n\n\
         - `ready = { tcp = \"127.0.0.1:5432\" }`: ready when a TCP connection succeeds;\n\
         - `ready = { http = \"http://127.0.0.1:8080/healthz\" }`: ready when a GET answers 2xx or 3xx;\n\
         - `ready = { exec = [\"pg_isready\", \"-h\", \"127.0.0.1\"] }`: ready when the command exits with status 0.\n\n\
         Process nodes without `ready` are probed with TCP on `127.0.0.1:PORT` when they have a `port`, and are ready\n\
         as soon as they run otherwise. External nodes must have a probe.\n",
    );
    out
}

fn type_of(root: &Value, prop: &Value) -> String {
    if let Some(r) = prop.get("$ref").and_then(Value::as_str) {
        let target = r.strip_prefix('#').and_then(|p| root.pointer(p));
        if let Some(options) = target.and_then(|t| t.get("oneOf")).and_then(Value::as_array) {
            let consts: Vec<String> = options.iter().filter_map(|o| o.get("const")).map(|c| format!("`{c}`")).collect();
            if !consts.is_empty() {
                return consts.join(" \\| ");
            }
        }
        return match r.rsplit('/').next() {
            Some("ReadySpec") => "probe".into(),
            Some("IgnoreSpec") => "table".into(),
            Some(other) => other.to_string(),
            None => "table".into(),
        };
    }
    match prop.get("type").and_then(Value::as_str) {
        Some("array") => {
            let item = prop.get("items").map(|i| type_of(root, i)).unwrap_or_default();
            format!("array of {item}")
        }
        Some("object") => "table".into(),
        Some(t) => t.to_string(),
        None => "value".into(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn docs_configuration_md_is_up_to_date() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/configuration.md");
        let generated = super::reference_markdown();
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(committed == generated, "docs/configuration.md is stale: run `cargo run -- schema --markdown > docs/configuration.md`");
    }
}
