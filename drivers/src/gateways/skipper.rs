//! Skipper: eskip routes with the `webhook` filter.

use super::*;

pub(super) fn skipper(flows: &[&Flow], target: &Target) -> String {
    let (app_host, app_port) = upstream(flows[0]);
    let routes = hosts(flows)
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = if let Some(s) = h.strip_prefix("*.") { format!("^.*[.]{}$", s.replace('.', "[.]")) } else { format!("^{}$", h.replace('.', "[.]")) };
            format!(
                "leannodes_{i}: Host(\"{host}\")\n  -> setRequestHeader(\"X-Forwarded-Uri\", \"${{request.path}}\")\n  -> setRequestHeader(\"X-Forwarded-Method\", \"${{request.method}}\")\n  -> xforward()\n{token_set}  -> webhook(\"{check}\")\n{token_drop}  -> \"http://{app_host}:{app_port}\";\n",
                check = target.check_url,
                token_set = target
                    .check_token
                    .as_ref()
                    .map_or_else(String::new, |t| format!("  -> setRequestHeader(\"{CHECK_TOKEN_HEADER}\", \"{t}\")\n")),
                token_drop = if target.check_token.is_some() {
                    format!("  -> dropRequestHeader(\"{CHECK_TOKEN_HEADER}\")\n")
                } else {
                    String::new()
                },
            )
        })
        .collect::<String>();
    format!(
        "// Rendered by `leannodes gateway render skipper`. Skipper's webhook timeout is a global flag: start\n\
         // skipper with -webhook-timeout={t}s -write-timeout-server={t}s (defaults 2s and 60s), or wakes fail.\n\
         // Skipper turns refusals other than 403 into its own 401 (LeanNodes' body is not passed on).\n\
         {routes}",
        t = secs(flows.iter().map(|f| f.hold_timeout).max().unwrap_or_default() + MARGIN),
    )
}
