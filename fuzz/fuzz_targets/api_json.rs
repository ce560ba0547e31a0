//! Every JSON body the management API takes: parsed, or refused with the API's `400` error naming the
//! problem (`invalid_json` or `invalid_body`), never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for refusal in leannodes_api::fuzzing::json_bodies(data).into_iter().flatten() {
        assert_eq!(refusal.0, 400, "{refusal:?}");
        assert!(matches!(refusal.1, "invalid_json" | "invalid_body"), "{refusal:?}");
    }
});
