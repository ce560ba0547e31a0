//! Helpers shared by the LeanNodes benchmarks: synthetic configurations of any size.

use std::sync::Arc;

use leannodes_config::Config;
use leannodes_control::FlowHandle;
use leannodes_proxy::RouteTable;

/// A configuration with `flows` flows, each binding `hosts_per_flow` exact hosts, one wildcard and two
/// paths (so `flows * (hosts_per_flow + 1) * 2` bindings).
pub fn config(flows: usize, hosts_per_flow: usize) -> Config {
    let mut text = String::new();
    for f in 0..flows {
        let hosts: Vec<String> = (0..hosts_per_flow)
            .map(|h| format!("\"h{h}.f{f}.example.com\""))
            .chain(std::iter::once(format!("\"*.w{f}.example.com\"")))
            .collect();
        text.push_str(&format!(
            "[[flow]]\nname = \"f{f}\"\nhosts = [{}]\npaths = [\"/\", \"/api\"]\nupstream = \"127.0.0.1:{}\"\n\n",
            hosts.join(", "),
            10_000 + f % 50_000
        ));
    }
    leannodes_config::parse_toml(&text, "bench.toml", std::path::Path::new(".")).unwrap_or_else(|d| panic!("{d}"))
}

/// A route table over detached flow handles.
pub fn routes(config: &Config) -> RouteTable {
    let flows: Vec<Arc<FlowHandle>> = config.flows.iter().map(|f| Arc::new(FlowHandle::detached(f.clone()))).collect();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| panic!("{e}"));
    runtime.block_on(RouteTable::build(&flows, None, &|_| None)).unwrap_or_else(|e| panic!("{e}"))
}
