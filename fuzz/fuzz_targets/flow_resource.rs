//! A `Flow` resource as the Kubernetes API returns it: deserialized as the watch does, then composed
//! with the file's flows as a tenant's flow; accepted (no two flows own a host and path) or refused.
#![no_main]

use leannodes_config::crd::Flow;
use leannodes_config::{FlowOrigin, SourcedFlow};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(resource) = serde_json::from_slice::<Flow>(data) else { return };
    let mut spec = resource.spec.0.clone();
    if spec.name.is_empty() {
        spec.name = resource.metadata.name.clone().unwrap_or_default();
    }
    let namespace = resource.metadata.namespace.clone().unwrap_or_else(|| "team-a".into());
    let extra = [SourcedFlow { origin: FlowOrigin::Resource { namespace }, spec }];
    match leannodes_config::parse_toml_with_flows(leannodes_fuzz::ROUTES, "routes.toml", std::path::Path::new("."), &extra) {
        Ok(config) => leannodes_fuzz::check_accepted(&config),
        Err(d) => leannodes_fuzz::check_refusal(&d),
    }
});
