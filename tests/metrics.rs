//! The Prometheus exposition after real wakes (`leannodes serve` with demo-backend process nodes) passes
//! `promtool check metrics` and holds each cold-start stage per node and the held client's first byte, drains, wake failures by reason,
//! reload results, the hold limit, leadership and build info; the alert rules in deploy/prometheus pass
//! `promtool check rules` and their unit tests (`promtool test rules`). promtool comes from Debian's
//! `prometheus` package (scripts/setup installs it).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use leannodes_harness::{DemoNode, Serve, assert_eventually, http_request, workdir};

const BIN: &str = env!("CARGO_BIN_EXE_leannodes");

fn promtool() -> Command {
    assert!(
        Command::new("promtool").arg("--version").output().is_ok_and(|o| o.status.success()),
        "promtool is missing: run scripts/setup (Debian package prometheus)"
    );
    Command::new("promtool")
}

fn flows(dir: &Path) -> String {
    let mut text = "\n[[flow]]\nname = \"shop\"\nhosts = [\"127.0.0.1\"]\nupstream = \"web\"\nmax_held = 50\n".to_string();
    for node in [DemoNode::new("db").args(&["--startup-delay", "300ms"]), DemoNode::new("web").after(&["db"])] {
        text.push_str(&node.toml(BIN, dir));
    }
    text.push_str("\n[[flow]]\nname = \"broken\"\nhosts = [\"broken.test\"]\nupstream = \"crash\"\n");
    text.push_str(&DemoNode::new("crash").args(&["--exit-after", "0s", "--exit-code", "3"]).toml(BIN, dir));
    text
}

fn scrape(serve: &Serve) -> String {
    let answer = http_request(serve.admin, "GET", "/metrics", &[("authorization", &serve.bearer())], None).expect("scrape");
    assert_eq!(answer.status, 200);
    answer.body
}

/// The value of one series (`name{labels}` exactly as exposed), if present.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')).and_then(|v| v.trim().parse().ok()))
}

fn post(serve: &Serve, path: &str) -> u16 {
    http_request(serve.admin, "POST", path, &[("authorization", &serve.bearer())], None).expect("post").status
}

#[test]
fn the_exposition_after_real_wakes_passes_promtool_and_has_every_stage() {
    let dir = workdir();
    let serve = Serve::start(BIN, dir.path(), "", &flows(dir.path()));
    let woke = http_request(serve.proxy, "GET", "/hello", &[], None).expect("a request wakes shop");
    assert_eq!((woke.status, woke.body.as_str()), (200, "web GET /hello\n"));
    assert_eq!(post(&serve, "/api/v1/flows/broken/warm"), 200);
    assert_eventually!(
        value(&scrape(&serve), "leannodes_flow_state{flow=\"broken\"}") == Some(4.0),
        "the failing wake of broken ends failed"
    );
    assert_eq!(post(&serve, "/api/v1/flows/shop/drain"), 200);
    serve.rewrite("\n[[flow]]\nname = \"shop\"\nupstream = \"nowhere\"\n");
    assert_eventually!(value(&scrape(&serve), "leannodes_last_reload_success") == Some(0.0), "the broken file is refused");

    let text = scrape(&serve);
    for node in ["db", "web"] {
        for stage in ["start", "ready"] {
            let series = format!("leannodes_wake_stage_seconds_count{{flow=\"shop\",node=\"{node}\",stage=\"{stage}\"}}");
            assert_eq!(value(&text, &series), Some(1.0), "{series} in:\n{text}");
        }
    }
    // db listens 300 ms after it is spawned: the ready stage holds that time, the start stage does not.
    let db_ready_sum = value(&text, "leannodes_wake_stage_seconds_sum{flow=\"shop\",node=\"db\",stage=\"ready\"}").expect("sum");
    let db_start_sum = value(&text, "leannodes_wake_stage_seconds_sum{flow=\"shop\",node=\"db\",stage=\"start\"}").expect("sum");
    assert!(db_ready_sum >= 0.3 && db_start_sum < db_ready_sum, "start {db_start_sum} s, ready {db_ready_sum} s");
    assert_eq!(value(&text, "leannodes_drains_total{flow=\"shop\"}"), Some(1.0), "{text}");
    // The held request's whole cold start: at least db's 300 ms start-up.
    assert_eq!(value(&text, "leannodes_cold_start_first_byte_seconds_count{flow=\"shop\"}"), Some(1.0), "{text}");
    let first_byte = value(&text, "leannodes_cold_start_first_byte_seconds_sum{flow=\"shop\"}").expect("sum");
    assert!(first_byte >= db_ready_sum, "first byte after {first_byte} s, db ready after {db_ready_sum} s");
    assert!(text.lines().any(|l| l.starts_with("leannodes_wake_failures_total{flow=\"broken\",node=\"crash\",reason=")), "{text}");
    assert_eq!(value(&text, "leannodes_reloads_total{result=\"failed\"}"), Some(1.0), "{text}");
    assert_eq!(value(&text, "leannodes_held_requests_limit{flow=\"shop\"}"), Some(50.0));
    assert!(text.lines().any(|l| l.starts_with("leannodes_leader{replica=") && l.ends_with(" 1")), "{text}");
    assert!(text.lines().any(|l| l.starts_with("leannodes_build_info{version=") && l.ends_with(" 1")), "{text}");
    assert_eq!(value(&text, "leannodes_store_up"), Some(1.0), "{text}");

    let mut check = promtool()
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    check.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("feed promtool");
    let checked = check.wait_with_output().expect("promtool");
    assert!(
        checked.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
}

#[test]
fn the_alert_rules_pass_promtool_and_their_unit_tests() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus");
    for args in [&["check", "rules", "rules.yaml"][..], &["test", "rules", "rules.test.yaml"][..]] {
        let out = promtool().args(args).current_dir(&folder).output().expect("promtool");
        assert!(
            out.status.success(),
            "promtool {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn a_store_that_stops_answering_shows_as_down() {
    let db = leannodes_harness::stores::TestPostgres::create();
    let dir = workdir();
    let serve = Serve::start(BIN, dir.path(), &format!("store = \"{}\"", db.url), &flows(dir.path()));
    assert_eventually!(value(&scrape(&serve), "leannodes_store_up") == Some(1.0), "the store answers");
    // The database goes away (its connections are cut): the next health check fails.
    drop(db);
    assert_eventually!(value(&scrape(&serve), "leannodes_store_up") == Some(0.0), "the store is down");
    assert!(serve.log().contains("the store does not answer"), "{}", serve.log());
    // Flows awake or not, the proxy and /metrics still answer.
    assert!(scrape(&serve).contains("leannodes_build_info"));
}
