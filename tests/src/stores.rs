//! Real shared stores for tests: a throw-away Postgres database on a real server ([`postgres_server`]) and a
//! DynamoDB-protocol server (`moto`, installed into `.tools/venv` by `scripts/setup`).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// The Postgres server tests use, first found: the `LEANNODES_TEST_POSTGRES` environment variable, the
/// URL `scripts/setup` wrote to `.tools/pg/url` when it started a throw-away server of its own (no server
/// answered on 5432), or the machine's `postgres://postgres@127.0.0.1:5432`. A URL without a database.
pub fn postgres_server() -> String {
    let written = || std::fs::read_to_string(workspace_root().join(".tools/pg/url")).ok();
    std::env::var("LEANNODES_TEST_POSTGRES")
        .ok()
        .filter(|url| !url.trim().is_empty())
        .or_else(|| written().filter(|url| !url.trim().is_empty()))
        .map(|url| url.trim().trim_end_matches('/').to_string())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432".into())
}

fn psql(sql: &str) -> std::io::Result<std::process::Output> {
    Command::new("psql").arg(format!("{}/postgres", postgres_server())).args(["-v", "ON_ERROR_STOP=1", "-q", "-c", sql]).output()
}

/// A Postgres database created for one test and dropped (with its connections) when this goes.
#[derive(Debug)]
pub struct TestPostgres {
    name: String,
    /// Its connection URL.
    pub url: String,
}

impl TestPostgres {
    /// Creates a fresh, empty database.
    pub fn create() -> TestPostgres {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let name = format!("leannodes_test_{}_{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed));
        let out = psql(&format!("CREATE DATABASE {name}")).expect("run psql (scripts/setup installs postgresql-client)");
        assert!(
            out.status.success(),
            "cannot create database {name} on {} (scripts/setup starts a server): {}",
            postgres_server(),
            String::from_utf8_lossy(&out.stderr)
        );
        TestPostgres { url: format!("{}/{name}", postgres_server()), name }
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        let _ = psql(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
    }
}

/// The folder of the workspace (where `.tools/` lives).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().map(PathBuf::from).unwrap_or_default()
}

/// A `moto` DynamoDB-protocol server on a free loopback port, killed when this goes. It serves one
/// request at a time (`tests/support/dynamodb_server.py` says why).
#[derive(Debug)]
pub struct Moto {
    child: Child,
    /// Its endpoint URL.
    pub endpoint: String,
}

impl Moto {
    /// Environment a LeanNodes process needs to reach it (dummy credentials and a region).
    pub const ENV: [(&'static str, &'static str); 3] =
        [("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"), ("AWS_REGION", "us-east-1")];

    /// Starts the server and waits until it answers.
    pub fn start() -> Moto {
        let python = workspace_root().join(".tools/venv/bin/python");
        assert!(workspace_root().join(".tools/venv/bin/moto_server").exists(), "moto is missing: run scripts/setup");
        let port = crate::free_port();
        let child = Command::new(&python)
            .arg(workspace_root().join("tests/support/dynamodb_server.py"))
            .args(["127.0.0.1", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let moto = Moto { child, endpoint: format!("http://127.0.0.1:{port}") };
        crate::assert_eventually!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(), "moto_server listens on {port}");
        moto
    }

    /// A store URL for a table of this server.
    pub fn url(&self, table: &str) -> String {
        format!("dynamodb://{table}?region=us-east-1&endpoint={}", self.endpoint)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
