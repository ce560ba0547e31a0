//! HAProxy (2.5+ with Lua): an ACL per flow host and a Lua callout that keeps LeanNodes' answer.

use std::fmt::Write as _;

use super::*;

pub(super) fn haproxy(flows: &[&Flow], target: &Target, t: u64) -> String {
    let mut acls = String::new();
    let mut routes = String::new();
    let mut backends = String::new();
    for flow in flows {
        for h in hosts(&[flow]) {
            let matcher = if let Some(s) = h.strip_prefix("*.") {
                format!("hdr_dom(host) -m end .{s}")
            } else {
                format!("hdr(host),field(1,:) -m str {h}")
            };
            let _ = writeln!(acls, "    acl leannodes_flow {matcher}\n    acl flow_{name} {matcher}", name = flow.name);
        }
        let _ = writeln!(routes, "    use_backend flow_{name} if flow_{name}", name = flow.name);
        let (app_host, app_port) = upstream(flow);
        let _ = write!(backends, "\nbackend flow_{name}\n    server app1 {app_host}:{app_port}\n", name = flow.name);
    }
    format!(
        "# Rendered by `leannodes gateway render haproxy` (HAProxy >= 2.5 with Lua): HAProxy asks LeanNodes\n\
         # before proxying. The Lua callout waits up to {t}s (the flows' hold_timeout and a margin); HAProxy's\n\
         # client and http-request timers do not run while it waits. A refusal (503 while waking, the JSON\n\
         # body, Retry-After) is returned to the client as LeanNodes wrote it.\n\
         global\n    lua-load leannodes.lua\n\ndefaults\n    mode http\n    timeout connect 5s\n    timeout client {t}s\n    timeout server {t}s\n\nfrontend leannodes_flows\n    bind :8080\n{acls}    http-request lua.leannodes_check {check} {ms} {token} if leannodes_flow\n    http-request return status 503 content-type application/json string '{{\"error\":\"check_failed\",\"message\":\"LeanNodes did not answer\"}}' if leannodes_flow !{{ var(txn.leannodes_status) -m found }}\n    http-request use-service lua.leannodes_deny if leannodes_flow !{{ var(txn.leannodes_status) -m int 200 }}\n{routes}{backends}",
        check = target.check_url,
        ms = t * 1000,
        // The Lua action takes three arguments; `-` means no token.
        token = target.check_token.as_deref().unwrap_or("-"),
    )
}

/// The HAProxy Lua callout (`core.httpclient`, HAProxy >= 2.5).
pub(super) const HAPROXY_LUA: &str = r#"-- Rendered by `leannodes gateway render haproxy`: asks LeanNodes' /check and keeps its answer.
core.register_action("leannodes_check", { "http-req" }, function(txn, url, timeout_ms, token)
  local hc = core.httpclient()
  local headers = {
    ["x-forwarded-method"] = { txn.sf:method() },
    ["x-forwarded-uri"] = { txn.sf:pathq() },
    ["x-forwarded-host"] = { txn.sf:req_fhdr("host") or "" },
    ["accept"] = { txn.sf:req_fhdr("accept") or "" },
    ["content-type"] = { txn.sf:req_fhdr("content-type") or "" },
    ["user-agent"] = { txn.sf:req_fhdr("user-agent") or "" },
  }
  if token ~= "-" then headers["x-leannodes-check-token"] = { token } end
  local res = hc:get{ url = url, timeout = tonumber(timeout_ms), headers = headers }
  if not res or not res.status then return end
  txn:set_var("txn.leannodes_status", res.status)
  txn:set_var("txn.leannodes_body", res.body or "")
  local function header(name)
    local h = res.headers and res.headers[name]
    return h and h[0] or ""
  end
  txn:set_var("txn.leannodes_content_type", header("content-type"))
  txn:set_var("txn.leannodes_retry_after", header("retry-after"))
end, 3)

-- Returns LeanNodes' refusal to the client as it was written.
core.register_service("leannodes_deny", "http", function(applet)
  local body = applet:get_var("txn.leannodes_body") or ""
  applet:set_status(tonumber(applet:get_var("txn.leannodes_status")) or 503)
  local content_type = applet:get_var("txn.leannodes_content_type")
  if content_type and content_type ~= "" then applet:add_header("content-type", content_type) end
  local retry_after = applet:get_var("txn.leannodes_retry_after")
  if retry_after and retry_after ~= "" then applet:add_header("retry-after", retry_after) end
  applet:add_header("cache-control", "no-store")
  applet:add_header("content-length", tostring(#body))
  applet:start_response()
  applet:send(body)
end)
"#;
