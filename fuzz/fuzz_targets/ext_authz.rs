//! An Envoy `ext_authz` `CheckRequest`, decoded from protobuf as the gRPC server does, turned into what
//! the gate asks and the check tokens it presents.
#![no_main]

use envoy_types::ext_authz::v3::pb::CheckRequest;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = CheckRequest::decode(data) else { return };
    let (inquiry, _tokens) = leannodes_proxy::fuzzing::ext_authz_inquiry(request);
    assert!(!inquiry.path.is_empty(), "an empty path: {inquiry:?}");
    assert!(!inquiry.path.contains('?') && !inquiry.path.contains('#'), "the query is not part of the path: {inquiry:?}");
});
