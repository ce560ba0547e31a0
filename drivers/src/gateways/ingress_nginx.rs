//! ingress-nginx: an `Ingress` with the `auth-url` annotation and a snippet that raises the timeout.

use super::*;

pub(super) fn ingress_nginx(flows: &[&Flow], target: &Target, t: u64) -> String {
    let (app_host, app_port) = upstream(flows[0]);
    let service = app_host.split('.').next().unwrap_or("app");
    let rules = hosts(flows)
        .iter()
        .map(|h| {
            format!(
                "  - host: \"{h}\"\n    http:\n      paths:\n      - path: /\n        pathType: Prefix\n        backend:\n          service:\n            name: {service}\n            port:\n              number: {app_port}\n"
            )
        })
        .collect::<String>();
    format!(
        "# Rendered by `leannodes gateway render ingress-nginx`. ingress-nginx gives the auth subrequest nginx's\n\
         # built-in 60s read timeout; only a snippet raises it. The auth-snippet annotation needs the controller\n\
         # ConfigMap keys allow-snippet-annotations: \"true\" and annotations-risk-level: Critical; without\n\
         # them, put `proxy_read_timeout {t}s;` in the ConfigMap's http-snippet, or wakes longer than 60s fail.\n\
         # ingress-nginx passes 401/403 and turns a 503 (still waking) into 500.\n\
         apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: {name}\n  namespace: {ns}\n  annotations:\n    nginx.ingress.kubernetes.io/auth-url: \"{check}\"\n    nginx.ingress.kubernetes.io/auth-response-headers: \"\"\n    nginx.ingress.kubernetes.io/auth-snippet: |\n      proxy_read_timeout {t}s;\n      proxy_send_timeout {t}s;\n{token}spec:\n  ingressClassName: nginx\n  rules:\n{rules}",
        name = flows[0].name,
        ns = target.namespace,
        check = target.check_url,
        token = target.check_token.as_ref().map_or_else(String::new, |t| format!("      proxy_set_header {CHECK_TOKEN_HEADER} \"{t}\";\n")),
    )
}
