//! A request head on the proxy listener, read as Pingora reads it and as the parker reads a connection's
//! first head, turned into what the gate asks (host, path, kind of client, version) and routed. Both
//! readings must ask the gate the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static ROUTES: LazyLock<leannodes_config::Config> = LazyLock::new(leannodes_fuzz::routes);

fuzz_target!(|data: &[u8]| {
    let parked = leannodes_proxy::fuzzing::parked_inquiry(data);
    let Some(head) = leannodes_fuzz::parse_head(data) else { return };
    let inquiry = leannodes_proxy::fuzzing::proxy_inquiry(&head);
    if let Some(parked) = &parked {
        let same = (&parked.host, &parked.path, parked.client, &parked.user_agent, &parked.version)
            == (&inquiry.host, &inquiry.path, inquiry.client, &inquiry.user_agent, &inquiry.version);
        assert!(same, "the parker asks {parked:?}, the proxy {inquiry:?}");
    }
    assert!(!inquiry.path.contains('?'), "the query is not part of the path: {inquiry:?}");
    let mut index = leannodes_config::binding::BindingIndex::new();
    for flow in &ROUTES.flows {
        for binding in &flow.bindings {
            index.insert(binding, flow.name.as_str());
        }
    }
    if let Some(m) = index.lookup(&inquiry.host, &inquiry.path) {
        assert!(leannodes_config::binding::prefix_matches(m.path, &inquiry.path));
    }
});
