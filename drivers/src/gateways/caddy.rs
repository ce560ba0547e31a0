//! Caddy: a site per flow with `forward_auth` before `reverse_proxy`.

use std::fmt::Write as _;

use super::*;

pub(super) fn caddy(flows: &[&Flow], target: &Target, t: u64) -> String {
    let (check_host, check_port, check_path) = split_url(&target.check_url);
    let mut out = format!(
        "# Rendered by `leannodes gateway render caddy`: Caddy asks LeanNodes (forward_auth) before proxying.\n\
         # The check may hold while the flow wakes: its response timeout ({t}s) covers the flows' hold_timeout.\n"
    );
    let token = target.check_token.as_ref().map_or_else(String::new, |t| format!("\t\theader_up {CHECK_TOKEN_HEADER} \"{t}\"\n"));
    for flow in flows {
        let (app_host, app_port) = upstream(flow);
        let sites = hosts(&[flow]).iter().map(|h| format!("http://{h}:8080")).collect::<Vec<_>>().join(", ");
        let _ = write!(
            out,
            "{sites} {{\n\tforward_auth {check_host}:{check_port} {{\n\t\turi {check_path}\n{token}\t\ttransport http {{\n\t\t\tresponse_header_timeout {t}s\n\t\t}}\n\t}}\n\treverse_proxy {app_host}:{app_port}\n}}\n"
        );
    }
    out
}
