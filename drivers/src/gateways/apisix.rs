//! APISIX: a `forward-auth` `ApisixPluginConfig`, and an `ApisixRoute` per flow sending the flow's hosts
//! and paths to its Service through that plugin config.

use std::collections::BTreeMap;
use std::time::Duration;

use leannodes_config::Flow;
use serde::Serialize;

use super::k8s::{ResourceType, Spec};
use super::{CHECK_TOKEN_HEADER, Context, Detection, Driver, File, NAME, PathMatch, Placement, RenderError, service};

/// APISIX's driver: forward-auth's `timeout` has a schema maximum of 60000 ms; found by its
/// ApisixPluginConfig CRD.
pub(super) const DRIVER: Driver =
    Driver::kubernetes(Detection::crd(PLUGIN_CONFIG, Placement::AppNamespace(NAME)), render).capped(Duration::from_secs(60));

const PLUGIN_CONFIG: ResourceType =
    ResourceType { group: "apisix.apache.org", version: "v2", kind: "ApisixPluginConfig", plural: "apisixpluginconfigs" };
const ROUTE: ResourceType = ResourceType { group: "apisix.apache.org", version: "v2", kind: "ApisixRoute", plural: "apisixroutes" };

#[derive(Debug, Serialize)]
struct PluginConfigSpec {
    plugins: Vec<Plugin>,
}

#[derive(Debug, Serialize)]
struct Plugin {
    name: &'static str,
    enable: bool,
    config: ForwardAuth,
}

#[derive(Debug, Serialize)]
struct ForwardAuth {
    uri: String,
    timeout: u64,
    request_headers: [&'static str; 3],
    client_headers: [&'static str; 3],
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    extra_headers: BTreeMap<&'static str, String>,
}

#[derive(Debug, Serialize)]
struct RouteSpec {
    http: Vec<HttpRoute>,
}

#[derive(Debug, Serialize)]
struct HttpRoute {
    name: String,
    #[serde(rename = "match")]
    matcher: Match,
    backends: Vec<Backend>,
    plugin_config_name: &'static str,
}

#[derive(Debug, Serialize)]
struct Match {
    hosts: Vec<String>,
    paths: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Backend {
    service_name: String,
    service_port: u16,
}

/// The HTTP routes of `flow`: its routes of every site (a host's table also holds the routes of the
/// wildcards covering it), `/api` matching `/api` and `/api/*`.
fn http_routes(ctx: &Context<'_>, flow: &Flow) -> Vec<HttpRoute> {
    let (service_name, service_port) = service(flow);
    let mut out = Vec::new();
    for site in ctx.sites() {
        for route in site.routes.iter().filter(|r| r.flow.name == flow.name) {
            let paths = PathMatch::of(route.path).into_iter().map(PathMatch::glob).collect();
            out.push(HttpRoute {
                name: format!("{}-{}", flow.name, out.len()),
                matcher: Match { hosts: site.hosts.iter().map(|h| h.to_string()).collect(), paths },
                backends: vec![Backend { service_name: service_name.clone(), service_port }],
                plugin_config_name: NAME,
            });
        }
    }
    out
}

fn render(ctx: &Context<'_>) -> Result<Vec<File>, RenderError> {
    let t = ctx.timeout;
    let ns = &ctx.target.namespace;
    let plugin = PluginConfigSpec {
        plugins: vec![Plugin {
            name: "forward-auth",
            enable: true,
            config: ForwardAuth {
                uri: ctx.target.check_url.clone(),
                timeout: t * 1000,
                request_headers: ["Accept", "Content-Type", "User-Agent"],
                client_headers: ["Retry-After", "Cache-Control", "Content-Type"],
                extra_headers: ctx.token().map(|t| (CHECK_TOKEN_HEADER, t.to_string())).into_iter().collect(),
            },
        }],
    };
    let mut stream = ctx.yaml().doc(
        &format!(
            "Rendered by `leannodes gateway render apisix`: APISIX's forward-auth waits at most 60s (schema\n\
             maximum); {t}s covers these flows' hold_timeout. Each flow's ApisixRoute uses the plugin config."
        ),
        &PLUGIN_CONFIG.object(ns, NAME, Spec { spec: plugin }),
    )?;
    for flow in ctx.flows {
        stream = stream.doc("", &ROUTE.object(ns, &flow.name, Spec { spec: RouteSpec { http: http_routes(ctx, flow) } }))?;
    }
    Ok(vec![File::new("apisix.yaml", stream.finish())])
}
