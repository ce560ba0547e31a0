//! The `leannodes` command line: `validate` and `schema`, run as a user would.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_leannodes");

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).output().expect("run leannodes");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn validate_reports_every_problem_as_path_line_col_with_help() {
    let dir = leannodes_harness::workdir();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[[flow]]\nname = \"shop\"\nhosts = [\"shop.example.com\"]\nupstream = \"web\"\nidle_afterr = \"5m\"\n\n  [[flow.node]]\n  name = \"web\"\n  kind = \"process\"\n  port = 8080\n  after = [\"db\"]\n",
    )
    .expect("write");
    let (code, stdout, _) = run(&["validate", path.to_str().expect("utf-8 path")]);
    assert_eq!(code, 1);
    let p = path.display();
    let expected = format!(
        "{p}:5:1: error: unknown key `idle_afterr` in [[flow]]\n  help: did you mean `idle_after`?\n\
         {p}:7:3: error: process node `web` has no `command`\n  help: add command = [\"program\", \"arg\", …]\n\
         {p}:11:12: error: `after` names unknown node `db` in flow `shop`\n  help: use one of the flow's nodes (web) or add a node named `db`\n"
    );
    assert_eq!(stdout, expected);
}

#[test]
fn validate_summarises_a_good_file() {
    let dir = leannodes_harness::workdir();
    let path = dir.path().join("good.toml");
    std::fs::write(&path, "[[flow]]\nname = \"shop\"\nhosts = [\"shop.example.com\"]\nupstream = \"web\"\n\n  [[flow.node]]\n  name = \"web\"\n  kind = \"process\"\n  command = [\"web\"]\n  port = 8080\n").expect("write");
    let (code, stdout, _) = run(&["validate", path.to_str().expect("utf-8 path")]);
    assert_eq!((code, stdout), (0, format!("{}: ok: 1 flow(s), 1 node(s)\n", path.display())));
}

#[test]
fn validate_explains_an_unreadable_file() {
    let (code, _, stderr) = run(&["validate", "/nonexistent/leannodes.toml"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("cannot read config file /nonexistent/leannodes.toml"), "{stderr}");
}

#[test]
fn schema_is_json_schema_of_the_config() {
    let (code, stdout, _) = run(&["schema"]);
    assert_eq!(code, 0);
    let schema: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
    for key in ["server", "defaults", "flow"] {
        assert!(schema["properties"][key].is_object(), "{key} documented");
    }
    let node = &schema["$defs"]["NodeSpec"]["properties"];
    for key in ["name", "kind", "command", "env", "cwd", "ref", "replicas", "port", "ready", "after", "timeout"] {
        assert!(node[key]["description"].is_string(), "node.{key} documented");
    }
}

#[test]
fn demo_backend_exits_before_listening_when_asked() {
    let dir = leannodes_harness::workdir();
    let log = dir.path().join("start.log");
    let port = leannodes_harness::free_port().to_string();
    let (code, stdout, _) = run(&[
        "demo-backend",
        "--port",
        &port,
        "--name",
        "quick",
        "--start-log",
        log.to_str().expect("path"),
        "--exit-after",
        "0s",
        "--exit-code",
        "4",
    ]);
    assert_eq!(code, 4);
    assert!(!stdout.contains("listening"), "{stdout}");
    let lines = leannodes_harness::read_log(&log);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].name, "quick");
}

#[test]
fn the_committed_crd_is_what_leannodes_crd_prints() {
    let (code, stdout, _) = run(&["crd"]);
    assert_eq!(code, 0);
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/crds/flows.leannodes.io.yaml")).expect("deploy/crds");
    assert!(
        stdout == committed,
        "deploy/crds/flows.leannodes.io.yaml is stale: run `cargo run -- crd > deploy/crds/flows.leannodes.io.yaml`"
    );
    assert!(stdout.contains("kind: CustomResourceDefinition") && stdout.contains("name: flows.leannodes.io"));
}

#[test]
fn migrate_creates_the_schema_of_each_backend_and_explains_bad_stores() {
    let dir = leannodes_harness::workdir();
    let file = dir.path().join("state.db");
    let (code, stdout, stderr) = run(&["migrate", "--store", &format!("sqlite://{}", file.display())]);
    assert_eq!((code, stdout.as_str()), (0, "sqlite store is ready (schema up to date)\n"), "{stderr}");
    assert!(file.exists());

    let db = leannodes_harness::stores::TestPostgres::create();
    let (code, stdout, stderr) = run(&["migrate", "--store", &db.url]);
    assert_eq!((code, stdout.as_str()), (0, "postgres store is ready (schema up to date)\n"), "{stderr}");
    let (code, _, _) = run(&["migrate", "--store", &db.url]);
    assert_eq!(code, 0, "migrating twice is fine");

    let (code, _, stderr) = run(&["migrate", "--store", "dynamodb://a b?region=x"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("invalid store URL `dynamodb://a b?region=x`: `a b` is not a DynamoDB table name"), "{stderr}");
    let (code, _, stderr) = run(&["migrate", "--store", "mysql://db/x"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("unsupported store URL \"mysql://db/x\""), "{stderr}");
    // Nothing listens on port 1: a clear error, quickly, with the password hidden.
    let (code, _, stderr) = run(&["migrate", "--store", "postgres://app:s3cret@127.0.0.1:1/leannodes"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("cannot open store postgres://app:***@127.0.0.1:1/leannodes"), "{stderr}");
    assert!(!stderr.contains("s3cret"));
    // The same for a DynamoDB endpoint that does not answer.
    let out = Command::new(BIN)
        .args(["migrate", "--store", "dynamodb://leannodes?region=us-east-1&endpoint=http://127.0.0.1:1"])
        .envs(leannodes_harness::stores::Moto::ENV)
        .output()
        .expect("run leannodes");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("DynamoDB `DescribeTable` failed") && stderr.contains("127.0.0.1:1"), "{stderr}");
}

/// Runs `leannodes` with `stdin` on its standard input.
fn run_with_stdin(args: &[&str], stdin: &str) -> (i32, String, String) {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run leannodes");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn offline_recovery_creates_users_resets_passwords_and_grants_roles() {
    let dir = leannodes_harness::workdir();
    let config = dir.path().join("leannodes.toml");
    let admin = leannodes_harness::free_port();
    std::fs::write(
        &config,
        format!(
            "[server]\nadmin_listen = \"127.0.0.1:{admin}\"\nlisten = [\"127.0.0.1:{}\"]\nstore = \"sqlite://state.db\"\n",
            leannodes_harness::free_port()
        ),
    )
    .expect("write");
    let c = config.to_str().expect("utf-8 path");
    let (code, stdout, stderr) = run_with_stdin(
        &["admin", "create-user", "--config", c, "--email", "ops@example.com", "--role", "viewer", "--password-stdin"],
        "first long password\n",
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("created user ops@example.com") && stdout.contains("[viewer]"), "{stdout}");
    let (code, stdout, _) = run(&["admin", "create-user", "--config", c, "--email", "ops@example.com"]);
    assert_eq!(code, 1, "the address is taken: {stdout}");
    let (code, stdout, stderr) = run(&["admin", "reset-password", "--config", c, "--email", "ops@example.com"]);
    assert_eq!(code, 0, "{stderr}");
    let generated = stdout.trim().rsplit(": ").next().expect("the new password").to_string();
    assert!(generated.len() >= 16, "{stdout}");
    let (code, stdout, stderr) = run(&["admin", "grant", "--config", c, "--email", "ops@example.com", "--role", "admin"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("[viewer, admin]"), "{stdout}");
    let (code, _, stderr) = run(&["admin", "grant", "--config", c, "--email", "ops@example.com", "--role", "wizard"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("no role named `wizard`"), "{stderr}");
    let (code, _, stderr) = run(&["admin", "grant", "--config", c, "--email", "nobody@example.com", "--role", "admin"]);
    assert!(code == 1 && stderr.contains("no user with `nobody@example.com`"), "{stderr}");

    // The server uses what the commands wrote (and no setup link is needed).
    let serve = leannodes_harness::Serve::start_with_env(BIN, dir.path(), "", "", &[("LEANNODES_SUPER_ADMIN_EMAIL", "")]);
    let token = leannodes_harness::admin_token(serve.admin, "ops@example.com", &generated);
    let audit = leannodes_harness::http_request(
        serve.admin,
        "GET",
        "/api/v1/audit?action=user.update",
        &[("authorization", &format!("Bearer {token}"))],
        None,
    )
    .expect("audit");
    assert!(audit.body.contains("\"actor\":\"cli:"), "recovery is audited: {}", audit.body);
    assert!(!serve.log().contains("/setup#token="), "a user exists: no setup link");
}

#[test]
fn authentication_can_only_be_switched_off_on_loopback() {
    let dir = leannodes_harness::workdir();
    let path = dir.path().join("open.toml");
    std::fs::write(&path, "[server]\nadmin_listen = \"0.0.0.0:9090\"\n[server.auth]\nmode = \"none\"\n").expect("write");
    let (code, stdout, _) = run(&["validate", path.to_str().expect("utf-8 path")]);
    assert_eq!(code, 1);
    assert!(stdout.contains("4:8: error: auth mode \"none\" would let anyone who reaches 0.0.0.0:9090 administer LeanNodes"), "{stdout}");
    std::fs::write(&path, "[server]\ncheck_token = \"short\"\n").expect("write");
    let (_, stdout, _) = run(&["validate", path.to_str().expect("utf-8 path")]);
    assert!(stdout.contains("`check_token` must be at least 16 printable characters"), "{stdout}");
    std::fs::write(&path, "[server]\ncheck_token = \"env:LEANNODES_TEST_UNSET_TOKEN\"\n").expect("write");
    let (_, stdout, _) = run(&["validate", path.to_str().expect("utf-8 path")]);
    assert!(stdout.contains("environment variable `LEANNODES_TEST_UNSET_TOKEN` is not set"), "{stdout}");
}

#[test]
fn the_demo_prints_credentials_that_work() {
    use std::io::{BufRead, BufReader};
    let (proxy, admin) = (leannodes_harness::free_port(), leannodes_harness::free_port());
    let dir = leannodes_harness::workdir();
    let log = dir.path().join("demo.log");
    let mut child = Command::new(BIN)
        .args(["demo", "--listen", &format!("127.0.0.1:{proxy}"), "--admin", &format!("127.0.0.1:{admin}")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("demo log"))
        .spawn()
        .expect("start the demo");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines().map_while(Result::ok);
    let mut token = None;
    let mut password = None;
    let mut dashboard = None;
    for line in lines.by_ref() {
        if let Some(t) = line.trim().strip_prefix("export LEANNODES_TOKEN=") {
            token = Some(t.to_string());
            break;
        }
        if let Some(rest) = line.split("sign in as admin@localhost / ").nth(1) {
            password = rest.split([')', ',', ' ']).next().map(str::to_string);
            dashboard = line.split_whitespace().find(|w| w.starts_with("http://")).map(str::to_string);
        }
    }
    // Keep reading: the demo must never find its stdout closed.
    std::thread::spawn(move || lines.for_each(drop));
    let (token, password) = (token.expect("a token is printed"), password.expect("a password is printed"));
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], admin));
    leannodes_harness::assert_eventually!(
        leannodes_harness::http_request(addr, "GET", "/api/v1/openapi.json", &[], None).is_some_and(|r| r.status == 200),
        "the demo's admin API answers (exit status {:?}; its log: {})",
        child.try_wait(),
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let flows = leannodes_harness::http_request(addr, "GET", "/api/v1/flows", &[("authorization", &format!("Bearer {token}"))], None)
        .expect("flows");
    assert_eq!(flows.status, 200, "{}", flows.body);
    assert!(flows.body.contains("\"name\":\"shop\""), "{}", flows.body);
    let unauthenticated = leannodes_harness::http_request(addr, "GET", "/api/v1/flows", &[], None).expect("flows");
    assert_eq!(unauthenticated.status, 401, "the demo is not open");
    leannodes_harness::admin_token(addr, "admin@localhost", &password);
    assert_eq!(dashboard, Some(format!("http://127.0.0.1:{admin}/")), "the demo prints the dashboard's URL");
    let page = leannodes_harness::http_request(addr, "GET", "/", &[], None).expect("dashboard");
    assert_eq!((page.status, page.header("content-type")), (200, Some("text/html; charset=utf-8")));
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
}
