//! APISIX: a `forward-auth` `ApisixPluginConfig` and an `ApisixRoute` per flow.

use std::fmt::Write as _;

use super::*;

pub(super) fn apisix(flows: &[&Flow], target: &Target, t: u64) -> String {
    let mut out = format!(
        "# Rendered by `leannodes gateway render apisix`: APISIX's forward-auth waits at most 60s (schema\n\
         # maximum); {t}s covers these flows' hold_timeout. Each flow's ApisixRoute uses the plugin config.\n\
         apiVersion: apisix.apache.org/v2\nkind: ApisixPluginConfig\nmetadata:\n  name: leannodes\n  namespace: {ns}\nspec:\n  plugins:\n  - name: forward-auth\n    enable: true\n    config:\n      uri: \"{check}\"\n      timeout: {ms}\n      request_headers: [Accept, Content-Type, User-Agent]\n      client_headers: [Retry-After, Cache-Control, Content-Type]\n{token}",
        ns = target.namespace,
        check = target.check_url,
        ms = t * 1000,
        token = target
            .check_token
            .as_ref()
            .map_or_else(String::new, |t| format!("      extra_headers:\n        {CHECK_TOKEN_HEADER}: \"{t}\"\n")),
    );
    for flow in flows {
        let (app_host, app_port) = upstream(flow);
        let _ = write!(
            out,
            "---\napiVersion: apisix.apache.org/v2\nkind: ApisixRoute\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  http:\n  - name: {name}\n    match:\n      hosts: [{hosts}]\n      paths: [\"/*\"]\n    backends:\n    - serviceName: {service}\n      servicePort: {app_port}\n    plugin_config_name: leannodes\n",
            name = flow.name,
            ns = target.namespace,
            hosts = quoted(&hosts(&[flow])),
            service = app_host.split('.').next().unwrap_or("app"),
        );
    }
    out
}
