//! Kong OSS: a `pre-function` `KongPlugin` that calls `/check` with `resty.http`.

use super::*;

pub(super) fn kong(target: &Target, t: u64) -> String {
    let lua = format!(
        "local http = require \"resty.http\"\nlocal httpc = http.new()\nhttpc:set_timeouts(5000, 5000, {ms})\nlocal res, err = httpc:request_uri(\"{check}\", {{\n  method = \"GET\",\n  headers = {{\n    [\"X-Forwarded-Host\"] = kong.request.get_host(),\n    [\"X-Forwarded-Uri\"] = kong.request.get_path_with_query(),\n    [\"X-Forwarded-Method\"] = kong.request.get_method(),\n    [\"Accept\"] = kong.request.get_header(\"accept\"),\n    [\"Content-Type\"] = kong.request.get_header(\"content-type\"),\n    [\"User-Agent\"] = kong.request.get_header(\"user-agent\"),\n{token}  }},\n}})\nif not res then\n  return kong.response.exit(503, {{ error = \"check_failed\", message = err }})\nend\nif res.status ~= 200 then\n  return kong.response.exit(res.status, res.body, {{\n    [\"Content-Type\"] = res.headers[\"Content-Type\"],\n    [\"Retry-After\"] = res.headers[\"Retry-After\"],\n    [\"Cache-Control\"] = \"no-store\",\n  }})\nend\n",
        ms = t * 1000,
        check = target.check_url,
        token = target.check_token.as_ref().map_or_else(String::new, |t| format!("    [\"{CHECK_TOKEN_HEADER}\"] = \"{t}\",\n")),
    );
    let indented = lua.lines().map(|l| format!("      {l}\n")).collect::<String>();
    format!(
        "# Rendered by `leannodes gateway render kong`: Kong OSS has no forward-auth plugin, so a pre-function\n\
         # calls LeanNodes with resty.http (kong.conf: untrusted_lua_sandbox_requires = resty.http). The read\n\
         # timeout ({t}s) covers the flows' hold_timeout (Lua sockets default to 60s). Attach with the\n\
         # annotation konghq.com/plugins: leannodes on the flows' Ingresses or Services.\n\
         apiVersion: configuration.konghq.com/v1\nkind: KongPlugin\nmetadata:\n  name: leannodes\n  namespace: {ns}\nplugin: pre-function\nconfig:\n  access:\n  - |\n{indented}",
        ns = target.namespace,
    )
}
