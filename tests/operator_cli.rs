//! The operator CLI against a real `leannodes serve` with demo-backend process nodes: `warm` follows the
//! wake node by node and exits 0, a failing wake exits 1 naming the node and reason, `flows`, `status`,
//! `executions`, `drain`, `pin` and `unpin` in both output formats, and the exit codes scripts rely on
//! (no token, a bad token, an unknown flow, an unreachable server).

use std::process::{Command, Output};

use leannodes_harness::{DemoNode, Serve, free_port, workdir};

const BIN: &str = env!("CARGO_BIN_EXE_leannodes");

fn flows(dir: &std::path::Path) -> String {
    let mut text = "\n[[flow]]\nname = \"shop\"\nhosts = [\"shop.test\"]\nupstream = \"web\"\n".to_string();
    for node in [DemoNode::new("db").args(&["--startup-delay", "300ms"]), DemoNode::new("web").after(&["db"])] {
        text.push_str(&node.toml(BIN, dir));
    }
    text.push_str("\n[[flow]]\nname = \"broken\"\nhosts = [\"broken.test\"]\nupstream = \"crash\"\n");
    text.push_str(&DemoNode::new("crash").args(&["--exit-after", "0s", "--exit-code", "3"]).toml(BIN, dir));
    text
}

/// Runs `leannodes ARGS` against the server (its admin URL and the admin's token in the environment).
fn cli(serve: &Serve, token: Option<&str>, args: &[&str]) -> Output {
    let mut command = Command::new(BIN);
    command.args(args).env("LEANNODES_URL", format!("http://{}", serve.admin)).env_remove("LEANNODES_TOKEN");
    if let Some(token) = token {
        command.env("LEANNODES_TOKEN", token);
    }
    command.output().expect("run leannodes")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn warm_follows_the_wake_node_by_node_and_the_other_commands_answer_in_both_formats() {
    let dir = workdir();
    let serve = Serve::start(BIN, dir.path(), "", &flows(dir.path()));
    let token = serve.token();
    let token = Some(token.as_str());

    let warm = cli(&serve, token, &["warm", "shop"]);
    let text = stdout(&warm);
    assert_eq!(warm.status.code(), Some(0), "{text}{}", stderr(&warm));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.first(), Some(&"waking shop (manual): db, web"), "{text}");
    let at = |needle: &str| lines.iter().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("no line with {needle:?} in:\n{text}"));
    assert!(at("  db ") < at("  web "), "db before web:\n{text}");
    assert!(at("  web ") < at("shop is awake ("), "{text}");
    assert!(text.lines().any(|l| l.starts_with("  db") && l.contains("ready in")), "{text}");

    let again = cli(&serve, token, &["warm", "shop", "--output", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&again.stdout).expect("json");
    assert_eq!((again.status.code(), report["outcome"].as_str()), (Some(0), Some("already_awake")), "{report}");

    let listed = cli(&serve, token, &["flows", "-o", "json"]);
    let list: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("json");
    let shop = list["flows"].as_array().and_then(|f| f.iter().find(|f| f["name"] == "shop")).expect("shop listed").clone();
    assert_eq!(shop["state"], "awake");
    let human = stdout(&cli(&serve, token, &["flows"]));
    assert!(human.starts_with("FLOW") && human.lines().any(|l| l.starts_with("shop ") && l.contains("awake")), "{human}");

    let history = stdout(&cli(&serve, token, &["executions", "shop"]));
    assert!(history.lines().nth(1).is_some_and(|l| l.contains("manual") && l.contains("succeeded")), "{history}");
    let status = stdout(&cli(&serve, token, &["status"]));
    assert!(status.starts_with("LeanNodes ") && status.contains("last reload:  applied"), "{status}");

    let pinned = cli(&serve, token, &["pin", "shop"]);
    assert_eq!((pinned.status.code(), stdout(&pinned).as_str()), (Some(0), "shop: awake (pinned)\n"));
    assert_eq!(stdout(&cli(&serve, token, &["unpin", "shop"])), "shop: awake\n");
    let drained = cli(&serve, token, &["drain", "shop", "-o", "json"]);
    let answer: serde_json::Value = serde_json::from_slice(&drained.stdout).expect("json");
    assert_eq!((drained.status.code(), answer["state"].as_str()), (Some(0), Some("asleep")));
}

#[test]
fn failures_have_exit_codes_scripts_can_rely_on() {
    let dir = workdir();
    let serve = Serve::start(BIN, dir.path(), "", &flows(dir.path()));
    let token = serve.token();
    let token = Some(token.as_str());

    let failed = cli(&serve, token, &["warm", "broken"]);
    let text = stdout(&failed);
    assert_eq!(failed.status.code(), Some(1), "{text}{}", stderr(&failed));
    assert!(text.lines().any(|l| l.starts_with("  crash") && l.contains("failed: ")), "the failing node and its reason:\n{text}");
    assert!(text.contains("broken did not wake (failed)"), "{text}");

    let nobody = cli(&serve, None, &["flows"]);
    assert_eq!(nobody.status.code(), Some(4));
    assert!(stderr(&nobody).contains("LEANNODES_TOKEN"), "says how to sign in: {}", stderr(&nobody));
    let forged = cli(&serve, Some("lnp_not-a-real-token"), &["flows"]);
    assert_eq!(forged.status.code(), Some(4), "{}", stderr(&forged));
    let unknown = cli(&serve, token, &["drain", "nowhere"]);
    assert_eq!(unknown.status.code(), Some(5), "{}", stderr(&unknown));
    assert!(stderr(&unknown).contains("nowhere"), "{}", stderr(&unknown));

    let closed = Command::new(BIN).args(["status", "--url", &format!("http://127.0.0.1:{}", free_port())]).output().expect("run");
    assert_eq!(closed.status.code(), Some(3));
    assert!(stderr(&closed).contains("cannot reach LeanNodes"), "{}", stderr(&closed));
    let usage = Command::new(BIN).args(["warm"]).output().expect("run");
    assert_eq!(usage.status.code(), Some(2));
}
