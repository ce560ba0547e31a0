//! Link options of the `leannodes` binary (the binary only: no dependency is rebuilt for them).
//!
//! On Linux with glibc the relative relocations of the position-independent binary are packed
//! (`DT_RELR`, glibc ≥ 2.36, binutils ≥ 2.38): the dynamic loader reads every relocation at start-up, and
//! unpacked they are 2.1 MB of the file that stay resident for the life of the process; packed they are
//! a few kilobytes. The runtime image (distroless cc-debian12) has glibc 2.36.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    let gnu = std::env::var("CARGO_CFG_TARGET_ENV").is_ok_and(|env| env == "gnu");
    if linux && gnu {
        println!("cargo::rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
