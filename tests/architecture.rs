//! The layering rule of docs/architecture.md, checked on the crates' manifests:
//! `config ← store, drivers ← control ← proxy, api ← binary`, proxy and api never import each other,
//! pingora only in the data plane, the store's database clients only in the store, and a binary that
//! only wires (no request handlers of its own, except the demo backend it ships for the demo and tests).

use std::collections::BTreeSet;
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The normal dependencies of a crate's manifest.
fn dependencies(dir: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(root().join(dir).join("Cargo.toml")).expect("manifest");
    let manifest: toml::Table = text.parse().expect("toml");
    manifest.get("dependencies").and_then(|d| d.as_table()).map(|t| t.keys().cloned().collect()).unwrap_or_default()
}

fn ours(deps: &BTreeSet<String>) -> BTreeSet<&str> {
    deps.iter().filter_map(|d| d.strip_prefix("leannodes-")).collect()
}

#[test]
fn crates_use_only_the_layers_below_them() {
    let rules: [(&str, &[&str]); 9] = [
        ("alloc", &[]),
        ("config", &[]),
        ("store", &["config"]),
        ("drivers", &["config"]),
        ("control", &["config", "store", "drivers"]),
        ("proxy", &["config", "control"]),
        ("notify", &["config", "store", "control"]),
        ("api", &["config", "store", "drivers", "control", "notify"]),
        // The operator CLI's client speaks only the HTTP API: none of the server's crates.
        ("client", &[]),
    ];
    for (krate, allowed) in rules {
        let deps = dependencies(krate);
        let uses = ours(&deps);
        let extra: Vec<&&str> = uses.iter().filter(|d| !allowed.contains(d)).collect();
        assert!(extra.is_empty(), "{krate} may use only {allowed:?}, but uses {extra:?}");
    }
    let binary_deps = dependencies(".");
    let binary = ours(&binary_deps);
    for part in ["alloc", "config", "store", "drivers", "control", "proxy", "api", "notify", "client"] {
        assert!(binary.contains(part), "the binary wires {part}");
    }
}

#[test]
fn pingora_and_the_database_clients_stay_in_their_crates() {
    for krate in ["config", "store", "drivers", "control", "api", "."] {
        assert!(!dependencies(krate).contains("pingora"), "{krate} must not depend on pingora (only proxy/)");
    }
    assert!(dependencies("proxy").contains("pingora"));
    for krate in ["config", "drivers", "control", "proxy", "api", "."] {
        let deps = dependencies(krate);
        for client in ["sqlx", "aws-sdk-dynamodb", "aws-config"] {
            assert!(!deps.contains(client), "{krate} must not use {client} (only store/)");
        }
    }
    for krate in ["proxy", "control"] {
        assert!(!dependencies(krate).contains("kube"), "{krate} must not talk to the cluster itself");
    }
}

#[test]
fn the_binary_only_wires() {
    let files: BTreeSet<String> = std::fs::read_dir(root().join("src"))
        .expect("src")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    let expected: BTreeSet<String> =
        ["main.rs", "serve.rs", "demo.rs", "demo_backend.rs", "ops.rs"].into_iter().map(String::from).collect();
    assert_eq!(
        files, expected,
        "the binary holds the command line, the wiring of `serve`, the demo and its backend, and the operator commands' arguments"
    );
    for file in ["main.rs", "serve.rs", "demo.rs", "ops.rs"] {
        let text = std::fs::read_to_string(root().join("src").join(file)).expect("source");
        for handler_sign in ["Router::new", ".route(", "#[utoipa::path", "impl IntoResponse"] {
            assert!(!text.contains(handler_sign), "src/{file} defines handlers ({handler_sign}); they belong in api/ or proxy/");
        }
    }
}

#[test]
fn unsafe_code_is_forbidden_except_for_two_documented_foreign_calls() {
    let text = std::fs::read_to_string(root().join("Cargo.toml")).expect("manifest");
    let workspace: toml::Table = text.parse().expect("toml");
    let unsafe_level =
        |lints: &toml::Value| lints.get("rust").and_then(|r| r.get("unsafe_code")).and_then(|l| l.as_str()).map(String::from);
    assert_eq!(unsafe_level(&workspace["workspace"]["lints"]).as_deref(), Some("forbid"));
    let members = workspace["workspace"]["members"].as_array().expect("members");
    let mut deny_only = BTreeSet::new();
    for member in members.iter().filter_map(|m| m.as_str()) {
        let text = std::fs::read_to_string(root().join(member).join("Cargo.toml")).expect("member manifest");
        let manifest: toml::Table = text.parse().expect("toml");
        let lints = manifest.get("lints").unwrap_or_else(|| panic!("{member} declares no [lints]"));
        if lints.get("workspace").and_then(|w| w.as_bool()) == Some(true) {
            continue;
        }
        assert_eq!(unsafe_level(lints).as_deref(), Some("deny"), "{member} must forbid or at least deny unsafe code");
        deny_only.insert(member);
    }
    // alloc: mimalloc's mi_collect; drivers: prctl(PR_SET_PDEATHSIG) before a process node's exec.
    assert_eq!(deny_only, BTreeSet::from(["alloc", "drivers"]), "a new crate that lets unsafe code in needs a reason here");
    for (krate, file) in [("alloc", "src/lib.rs"), ("drivers", "src/process.rs")] {
        let source = std::fs::read_to_string(root().join(krate).join(file)).expect("source");
        assert_eq!(source.matches("unsafe {").count(), 1, "{krate}/{file}: one unsafe block");
        assert!(source.contains("// SAFETY:"), "{krate}/{file}: the unsafe block says why it is sound");
    }
}
