//! Kong OSS: a `pre-function` `KongPlugin` that calls `/check` with `resty.http`, which the operator
//! attaches to the flows' Ingresses or Services (their routes stay as they are).

use serde::Serialize;

use super::k8s::ResourceType;
use super::{CHECK_TOKEN_HEADER, Context, Detection, Driver, File, NAME, Placement, RenderError};

/// Kong's driver: found by its KongPlugin CRD; applied when the plugin exists.
pub(super) const DRIVER: Driver = Driver::kubernetes(Detection::crd(PLUGIN, Placement::AppNamespace(NAME)), render);

const PLUGIN: ResourceType = ResourceType { group: "configuration.konghq.com", version: "v1", kind: "KongPlugin", plural: "kongplugins" };

/// A KongPlugin's body (no `spec`).
#[derive(Debug, Serialize)]
struct KongPlugin {
    plugin: &'static str,
    config: PreFunction,
}

#[derive(Debug, Serialize)]
struct PreFunction {
    /// Lua chunks run in the access phase.
    access: Vec<String>,
}

/// The callout: the original request's host, path and method, and the headers that classify the client.
fn lua(ctx: &Context<'_>) -> String {
    let read_ms = ctx.timeout * 1000;
    let check = &ctx.target.check_url;
    let mut headers = vec![
        ("X-Forwarded-Host", "kong.request.get_host()".to_string()),
        ("X-Forwarded-Uri", "kong.request.get_path_with_query()".to_string()),
        ("X-Forwarded-Method", "kong.request.get_method()".to_string()),
        ("Accept", "kong.request.get_header(\"accept\")".to_string()),
        ("Content-Type", "kong.request.get_header(\"content-type\")".to_string()),
        ("User-Agent", "kong.request.get_header(\"user-agent\")".to_string()),
    ];
    if let Some(token) = ctx.token() {
        headers.push((CHECK_TOKEN_HEADER, format!("\"{token}\"")));
    }
    let headers: String = headers.iter().map(|(name, value)| format!("    [\"{name}\"] = {value},\n")).collect();
    format!(
        r#"local http = require "resty.http"
local httpc = http.new()
httpc:set_timeouts(5000, 5000, {read_ms})
local res, err = httpc:request_uri("{check}", {{
  method = "GET",
  headers = {{
{headers}  }},
}})
if not res then
  return kong.response.exit(503, {{ error = "check_failed", message = err }})
end
if res.status ~= 200 then
  return kong.response.exit(res.status, res.body, {{
    ["Content-Type"] = res.headers["Content-Type"],
    ["Retry-After"] = res.headers["Retry-After"],
    ["Cache-Control"] = "no-store",
  }})
end
"#
    )
}

fn render(ctx: &Context<'_>) -> Result<Vec<File>, RenderError> {
    let t = ctx.timeout;
    let plugin = KongPlugin { plugin: "pre-function", config: PreFunction { access: vec![lua(ctx)] } };
    let text = ctx
        .yaml()
        .doc(
            &format!(
                "Rendered by `leannodes gateway render kong`: Kong OSS has no forward-auth plugin, so a pre-function\n\
                 calls LeanNodes with resty.http (kong.conf: untrusted_lua_sandbox_requires = resty.http). The read\n\
                 timeout ({t}s) covers the flows' hold_timeout (Lua sockets default to 60s). Attach with the\n\
                 annotation konghq.com/plugins: {NAME} on the flows' Ingresses or Services."
            ),
            &PLUGIN.object(&ctx.target.namespace, NAME, plugin),
        )?
        .finish();
    Ok(vec![File::new("kongplugin.yaml", text)])
}
