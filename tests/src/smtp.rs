//! A real SMTP server for tests: `aiosmtpd` (installed into `.tools/venv` by `scripts/setup`), run by
//! `tests/support/smtp_sink.py`, keeping every message it accepts as a file.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::stores::workspace_root;

/// An SMTP server on a free loopback port, stopped when this goes.
#[derive(Debug)]
pub struct SmtpSink {
    child: Child,
    /// Its port.
    pub port: u16,
    folder: PathBuf,
}

impl SmtpSink {
    /// Starts the server, keeping messages in `folder`, and waits until it listens.
    pub fn start(folder: PathBuf) -> SmtpSink {
        let python = workspace_root().join(".tools/venv/bin/python");
        let port = crate::free_port();
        let child = Command::new(&python)
            .arg(workspace_root().join("tests/support/smtp_sink.py"))
            .args(["127.0.0.1", &port.to_string()])
            .arg(&folder)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the SMTP server (scripts/setup installs aiosmtpd)");
        crate::assert_eventually!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(), "the SMTP server listens on {port}");
        SmtpSink { child, port, folder }
    }

    /// The messages received so far, oldest first (raw RFC 5322 text).
    pub fn messages(&self) -> Vec<String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.folder)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "eml")).collect())
            .unwrap_or_default();
        files.sort();
        files.iter().filter_map(|p| std::fs::read_to_string(p).ok()).collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}
