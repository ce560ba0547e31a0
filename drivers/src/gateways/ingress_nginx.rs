//! ingress-nginx: an `Ingress` per flow, routing the flow's hosts and paths to its Service, with the
//! `auth-url` annotation and a snippet that raises the check's timeout.

use std::collections::BTreeMap;

use kube::api::DynamicObject;
use leannodes_config::Flow;
use serde::Serialize;

use super::k8s::{ResourceType, Spec};
use super::{CHECK_TOKEN_HEADER, Context, Detection, Driver, Evidence, File, Placement, RenderError, service};

/// ingress-nginx's driver: found by an IngressClass of its controller; applied when the first flow's
/// Ingress carries the `auth-url` annotation.
pub(super) const DRIVER: Driver = Driver::kubernetes(
    Detection {
        evidence: Evidence::IngressClass("k8s.io/ingress-nginx"),
        artifact: INGRESS,
        placement: Placement::PerFlow(""),
        applied: has_auth_url,
    },
    render,
);

const INGRESS: ResourceType = ResourceType { group: "networking.k8s.io", version: "v1", kind: "Ingress", plural: "ingresses" };
const AUTH_URL: &str = "nginx.ingress.kubernetes.io/auth-url";

/// Whether an Ingress carries the ingress-nginx auth annotation.
fn has_auth_url(ingress: &DynamicObject) -> bool {
    ingress.metadata.annotations.as_ref().is_some_and(|a| a.contains_key(AUTH_URL))
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct IngressSpec {
    ingress_class_name: &'static str,
    rules: Vec<IngressRule>,
}

#[derive(Debug, Serialize)]
struct IngressRule {
    host: String,
    http: HttpRule,
}

#[derive(Debug, Serialize)]
struct HttpRule {
    paths: Vec<HttpPath>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct HttpPath {
    path: String,
    /// `Prefix` matches on segment boundaries, like the proxy's prefixes.
    path_type: &'static str,
    backend: Backend,
}

#[derive(Debug, Clone, Serialize)]
struct Backend {
    service: ServiceBackend,
}

#[derive(Debug, Clone, Serialize)]
struct ServiceBackend {
    name: String,
    port: ServicePort,
}

#[derive(Debug, Clone, Serialize)]
struct ServicePort {
    number: u16,
}

/// The Ingress rules of `flow`: its routes of every site (a host's table also holds the routes of the
/// wildcards covering it, as ingress-nginx never falls back from a host to a wildcard).
fn rules(ctx: &Context<'_>, flow: &Flow) -> Vec<IngressRule> {
    let (name, number) = service(flow);
    let mut rules = Vec::new();
    for site in ctx.sites() {
        let paths: Vec<HttpPath> = site
            .routes
            .iter()
            .filter(|r| r.flow.name == flow.name)
            .map(|r| HttpPath {
                path: r.path.to_string(),
                path_type: "Prefix",
                backend: Backend { service: ServiceBackend { name: name.clone(), port: ServicePort { number } } },
            })
            .collect();
        if paths.is_empty() {
            continue;
        }
        for host in &site.hosts {
            rules.push(IngressRule { host: host.to_string(), http: HttpRule { paths: paths.clone() } });
        }
    }
    rules
}

fn render(ctx: &Context<'_>) -> Result<Vec<File>, RenderError> {
    let t = ctx.timeout;
    let mut snippet = format!("proxy_read_timeout {t}s;\nproxy_send_timeout {t}s;\n");
    if let Some(token) = ctx.token() {
        snippet.push_str(&format!("proxy_set_header {CHECK_TOKEN_HEADER} \"{token}\";\n"));
    }
    let mut stream = ctx.yaml();
    let mut comment = format!(
        "Rendered by `leannodes gateway render ingress-nginx`: an Ingress per flow. ingress-nginx gives the auth\n\
         subrequest nginx's built-in 60s read timeout; only a snippet raises it. The auth-snippet annotation needs\n\
         the controller ConfigMap keys allow-snippet-annotations: \"true\" and annotations-risk-level: Critical;\n\
         without them, put `proxy_read_timeout {t}s;` in the ConfigMap's http-snippet, or wakes longer than 60s\n\
         fail. ingress-nginx passes 401/403 and turns a 503 (still waking) into 500."
    );
    for flow in ctx.flows {
        let mut ingress = INGRESS.object(
            &ctx.target.namespace,
            &flow.name,
            Spec { spec: IngressSpec { ingress_class_name: "nginx", rules: rules(ctx, flow) } },
        );
        ingress.metadata.annotations = BTreeMap::from([
            (AUTH_URL.to_string(), ctx.target.check_url.clone()),
            ("nginx.ingress.kubernetes.io/auth-response-headers".to_string(), String::new()),
            ("nginx.ingress.kubernetes.io/auth-snippet".to_string(), snippet.clone()),
        ]);
        stream = stream.doc(&std::mem::take(&mut comment), &ingress)?;
    }
    Ok(vec![File::new("ingress-nginx.yaml", stream.finish())])
}
