//! HAProxy (2.5+ with Lua): ACLs per host and path, a `use_backend` per route (most specific host and
//! longest path first) to the route's flow's backend, and a Lua callout that keeps LeanNodes' answer.

use leannodes_config::HostPattern;

use super::conf::{Conf, Directive, Syntax};
use super::{Context, Driver, File, PathMatch, RenderError, upstream};

/// HAProxy's driver (a plain config file: no detection).
pub(super) const DRIVER: Driver = Driver::plain(render);

/// The ACL that is true for every host of the flows (those requests are checked).
const FLOW_HOSTS: &str = "leannodes_flow";

fn render(ctx: &Context<'_>) -> Result<Vec<File>, RenderError> {
    let t = ctx.timeout;
    let sites = ctx.sites();
    // The proxy's host precedence: exact hosts, then wildcards, the longest suffix first.
    let mut hosts: Vec<(&HostPattern, &super::Site<'_>)> = sites.iter().flat_map(|s| s.hosts.iter().map(move |&h| (h, s))).collect();
    hosts.sort_by_key(|(h, _)| match h {
        HostPattern::Exact(_) => (0, 0),
        HostPattern::Wildcard(s) => (1, usize::MAX - s.len()),
    });
    let mut acls = Vec::new();
    let mut paths: Vec<&str> = Vec::new();
    let mut routes = Vec::new();
    for (i, (host, site)) in hosts.iter().enumerate() {
        let host_acl = format!("host_{i}");
        for name in [FLOW_HOSTS, host_acl.as_str()] {
            // The Host header without its port, in any case.
            let (method, value) = match host {
                HostPattern::Exact(h) => ("str", h.clone()),
                HostPattern::Wildcard(s) => ("end", format!(".{s}")),
            };
            acls.push(Directive::new("acl", [name, "hdr(host),field(1,:)", "-i", "-m", method, &value]));
        }
        for route in &site.routes {
            let mut condition = vec!["if".to_string(), host_acl.clone()];
            if route.path != "/" {
                let index = paths.iter().position(|p| *p == route.path).unwrap_or_else(|| {
                    paths.push(route.path);
                    paths.len() - 1
                });
                condition.push(format!("path_{index}"));
            }
            routes.push(Directive::new("use_backend", std::iter::once(backend(&route.flow.name)).chain(condition)));
        }
    }
    for (i, path) in paths.iter().enumerate() {
        for m in PathMatch::of(path) {
            let (fetch, value) = match m {
                PathMatch::Exact(p) => ("path", p),
                PathMatch::Prefix(p) => ("path_beg", p),
            };
            acls.push(Directive::new("acl", [format!("path_{i}"), fetch.to_string(), value]));
        }
    }
    let when = ["if", FLOW_HOSTS];
    let mut frontend = vec![Directive::new("bind", [":8080"])];
    frontend.extend(acls);
    let (check, ms) = (ctx.target.check_url.as_str(), (t * 1000).to_string());
    // The Lua action takes three arguments; `-` means no token.
    let token = ctx.token().unwrap_or("-");
    frontend.push(Directive::new("http-request", ["lua.leannodes_check", check, ms.as_str(), token].into_iter().chain(when)));
    let refusal = r#"{"error":"check_failed","message":"LeanNodes did not answer"}"#;
    let unanswered = ["!{", "var(txn.leannodes_status)", "-m", "found", "}"];
    let respond = ["return", "status", "503", "content-type", "application/json", "string", refusal];
    frontend.push(Directive::new("http-request", respond.into_iter().chain(when).chain(unanswered)));
    let refused = ["!{", "var(txn.leannodes_status)", "-m", "int", "200", "}"];
    frontend.push(Directive::new("http-request", ["use-service", "lua.leannodes_deny"].into_iter().chain(when).chain(refused)));
    frontend.extend(routes);

    let timeout = |what: &str| Directive::new("timeout", [what.to_string(), format!("{t}s")]);
    let mut sections = vec![
        Directive::block("global", Vec::<String>::new(), vec![Directive::new("lua-load", ["leannodes.lua"])]),
        Directive::block(
            "defaults",
            Vec::<String>::new(),
            vec![Directive::new("mode", ["http"]), Directive::new("timeout", ["connect", "5s"]), timeout("client"), timeout("server")],
        ),
        Directive::block("frontend", ["leannodes_flows"], frontend),
    ];
    for flow in ctx.flows {
        let (host, port) = upstream(flow);
        sections.push(Directive::block(
            "backend",
            [backend(&flow.name)],
            vec![Directive::new("server", ["app1".into(), format!("{host}:{port}")])],
        ));
    }
    let conf = Conf {
        syntax: Syntax::Haproxy,
        comment: format!(
            "Rendered by `leannodes gateway render haproxy` (HAProxy >= 2.5 with Lua): HAProxy asks LeanNodes\n\
             before proxying. The Lua callout waits up to {t}s (the flows' hold_timeout and a margin); HAProxy's\n\
             client and http-request timers do not run while it waits. A refusal (503 while waking, the JSON\n\
             body, Retry-After) is returned to the client as LeanNodes wrote it."
        ),
        directives: sections,
    };
    Ok(vec![File::new("haproxy.cfg", conf.to_string()), File::new("leannodes.lua", HAPROXY_LUA)])
}

/// The backend of a flow.
fn backend(flow: &str) -> String {
    format!("flow_{flow}")
}

/// The HAProxy Lua callout (`core.httpclient`, HAProxy >= 2.5).
const HAPROXY_LUA: &str = r#"-- Rendered by `leannodes gateway render haproxy`: asks LeanNodes' /check and keeps its answer.
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
