//! The configuration file: any text either loads (and then no two flows own a host and path) or is
//! refused with problems that say where and how to fix them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    // Relative file references (CA files) resolve inside an empty directory.
    let dir = tempfile::tempdir().expect("a temporary directory");
    match leannodes_config::parse_toml(text, "fuzz.toml", dir.path()) {
        Ok(config) => leannodes_fuzz::check_accepted(&config),
        Err(d) => leannodes_fuzz::check_refusal(&d),
    }
});
