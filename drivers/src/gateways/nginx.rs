//! nginx: an `auth_request` server block per flow.

use std::fmt::Write as _;

use super::*;

pub(super) fn nginx_server_names(flows: &[&Flow]) -> String {
    hosts(flows).iter().map(|h| if let Some(s) = h.strip_prefix("*.") { format!(".{s}") } else { h.clone() }).collect::<Vec<_>>().join(" ")
}

pub(super) fn nginx(flows: &[&Flow], target: &Target, t: u64) -> String {
    let mut out = format!(
        "# Rendered by `leannodes gateway render nginx`: include inside `http {{ }}`.\n\
         # nginx asks LeanNodes (auth_request) before proxying; the check may hold while the flow wakes,\n\
         # so its proxy_read_timeout ({t}s) covers the flows' hold_timeout (nginx's default is 60s).\n\
         # nginx passes 401/403 from the check and turns any other refusal (503 while waking) into 500.\n"
    );
    for flow in flows {
        let (app_host, app_port) = upstream(flow);
        let _ = write!(
            out,
            "server {{\n    listen 8080;\n    server_name {names};\n\n    location / {{\n        auth_request /_leannodes_check;\n        proxy_pass http://{app_host}:{app_port};\n        proxy_set_header Host $host;\n    }}\n\n    location = /_leannodes_check {{\n        internal;\n        proxy_pass {check};\n        proxy_pass_request_body off;\n        proxy_set_header Content-Length \"\";\n        proxy_set_header X-Forwarded-Host $host;\n        proxy_set_header X-Forwarded-Uri $request_uri;\n        proxy_set_header X-Forwarded-Method $request_method;\n{token}        proxy_connect_timeout 5s;\n        proxy_read_timeout {t}s;\n        proxy_send_timeout {t}s;\n    }}\n}}\n",
            names = nginx_server_names(&[flow]),
            check = target.check_url,
            token = target
                .check_token
                .as_ref()
                .map_or_else(String::new, |t| format!("        proxy_set_header {CHECK_TOKEN_HEADER} \"{t}\";\n")),
        );
    }
    out
}
