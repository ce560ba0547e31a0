//! The operator CLI's side of the management API: `leannodes status`, `flows`, `warm FLOW` (with a live
//! view of the DAG filling node by node, from the event stream), `drain`, `pin`, `unpin`, `explain FLOW`
//! and `executions FLOW` against a running server. Each command returns a [`Report`]: what to print (human
//! text, or the API's JSON with `--output json`) and an exit code scripts can rely on ([`exit`]). The
//! binary only parses the command line and prints.

pub mod render;
mod sse;

use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Exit codes (also in `leannodes --help` and docs/operations.md).
pub mod exit {
    /// Done.
    pub const OK: u8 = 0;
    /// The operation ran and failed (a wake failed or did not finish in time).
    pub const FAILED: u8 = 1;
    /// The command line was wrong (clap's own code).
    pub const USAGE: u8 = 2;
    /// The server could not be reached.
    pub const UNREACHABLE: u8 = 3;
    /// Not signed in (no or a bad token), or not allowed.
    pub const DENIED: u8 = 4;
    /// No such flow (or execution).
    pub const NOT_FOUND: u8 = 5;
    /// The server refused the request for another reason (the message says why).
    pub const REFUSED: u8 = 6;
}

/// How to print answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Text for people.
    Human,
    /// The API's JSON (for scripts).
    Json,
}

/// What went wrong talking to the server.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No answer.
    #[error("cannot reach LeanNodes at {url}: {source} (check --url or LEANNODES_URL)")]
    Unreachable {
        /// The URL tried.
        url: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// An error answer of the API.
    #[error("{message} ({status} {code}){hint}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The API's error code.
        code: String,
        /// The API's message.
        message: String,
        /// What to do about it, when we know.
        hint: &'static str,
    },
    /// An answer that is not what the API documents.
    #[error("unexpected answer from {url}: {detail}")]
    Unexpected {
        /// The URL.
        url: String,
        /// What was wrong with it.
        detail: String,
    },
}

impl ClientError {
    /// The exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::Unreachable { .. } => exit::UNREACHABLE,
            ClientError::Refused { status: 401 | 403, .. } => exit::DENIED,
            ClientError::Refused { status: 404, .. } => exit::NOT_FOUND,
            ClientError::Refused { .. } | ClientError::Unexpected { .. } => exit::REFUSED,
        }
    }
}

/// What a command prints and how it exits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The text to print on standard output.
    pub text: String,
    /// The exit code ([`exit`]).
    pub code: u8,
}

impl Report {
    fn ok(text: String) -> Report {
        Report { text, code: exit::OK }
    }
}

/// An operation on one flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Drain now.
    Drain,
    /// Never drain.
    Pin,
    /// Drain when idle again.
    Unpin,
}

impl Operation {
    fn path(self) -> &'static str {
        match self {
            Operation::Drain => "drain",
            Operation::Pin => "pin",
            Operation::Unpin => "unpin",
        }
    }
}

/// A client of one server's management API, authenticated with a personal access token.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

/// `text` with everything but letters, digits, `-`, `_`, `~` and `.` percent-escaped.
fn urlencoding(text: &str) -> String {
    text.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-_~.".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

fn flow_path(flow: &str, rest: &str) -> String {
    format!("/api/v1/flows/{}{rest}", urlencoding(flow))
}

impl Client {
    /// A client of the server at `url` (the admin listener, e.g. `http://127.0.0.1:9090`).
    pub fn new(url: &str, token: Option<String>) -> Client {
        let http = reqwest::Client::builder().connect_timeout(Duration::from_secs(5)).build().unwrap_or_default();
        Client { http, base: url.trim_end_matches('/').to_string(), token: token.filter(|t| !t.is_empty()) }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let builder = self.http.request(method, format!("{}{path}", self.base)).header("accept", "application/json");
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    async fn send(&self, builder: reqwest::RequestBuilder, path: &str) -> Result<reqwest::Response, ClientError> {
        let url = format!("{}{path}", self.base);
        let response = builder.send().await.map_err(|source| ClientError::Unreachable { url: url.clone(), source })?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let hint = match status {
            401 if self.token.is_none() => "; set LEANNODES_TOKEN or --token (create one in the dashboard under Settings → Tokens)",
            401 => "; the token is wrong, expired or revoked",
            _ => "",
        };
        Err(ClientError::Refused {
            status,
            code: body["error"].as_str().unwrap_or("http_error").to_string(),
            message: body["message"].as_str().unwrap_or("the server refused the request").to_string(),
            hint,
        })
    }

    async fn json(&self, method: reqwest::Method, path: &str) -> Result<Value, ClientError> {
        let response = self.send(self.request(method, path), path).await?;
        response.json().await.map_err(|e| ClientError::Unexpected { url: format!("{}{path}", self.base), detail: e.to_string() })
    }

    /// `leannodes status`.
    pub async fn status(&self, output: Output) -> Result<Report, ClientError> {
        let status = self.json(reqwest::Method::GET, "/api/v1/status").await?;
        Ok(Report::ok(match output {
            Output::Json => render::json(&status),
            Output::Human => render::status(&status),
        }))
    }

    /// `leannodes flows`.
    pub async fn flows(&self, output: Output) -> Result<Report, ClientError> {
        let flows = self.json(reqwest::Method::GET, "/api/v1/flows").await?;
        Ok(Report::ok(match output {
            Output::Json => render::json(&flows),
            Output::Human => render::flows(&flows),
        }))
    }

    /// `leannodes executions FLOW`.
    pub async fn executions(&self, flow: &str, output: Output) -> Result<Report, ClientError> {
        let list = self.json(reqwest::Method::GET, &flow_path(flow, "/executions")).await?;
        Ok(Report::ok(match output {
            Output::Json => render::json(&list),
            Output::Human => render::executions(&list),
        }))
    }

    /// `leannodes explain FLOW`.
    pub async fn explain(&self, flow: &str, output: Output) -> Result<Report, ClientError> {
        let explanation = self.json(reqwest::Method::GET, &flow_path(flow, "/explain")).await?;
        Ok(Report::ok(match output {
            Output::Json => render::json(&explanation),
            Output::Human => render::explanation(&explanation),
        }))
    }

    /// `leannodes savings show`: what sleeping saved each flow over `window` (e.g. `30d`).
    pub async fn savings(&self, window: &str, output: Output) -> Result<Report, ClientError> {
        let path = format!("/api/v1/savings?window={}", urlencoding(window));
        let savings = self.json(reqwest::Method::GET, &path).await?;
        Ok(Report::ok(match output {
            Output::Json => render::json(&savings),
            Output::Human => render::savings(&savings),
        }))
    }

    /// `leannodes drain|pin|unpin FLOW`.
    pub async fn operate(&self, flow: &str, operation: Operation, output: Output) -> Result<Report, ClientError> {
        let answer = self.json(reqwest::Method::POST, &flow_path(flow, &format!("/{}", operation.path()))).await?;
        Ok(Report::ok(match output {
            Output::Json => render::json(&answer),
            Output::Human => render::operated(flow, &answer),
        }))
    }

    /// `leannodes warm FLOW`: wakes the flow and follows the wake node by node on `progress` (human
    /// output) until it settles or `budget` runs out. Exit code 1 when the wake fails or does not end
    /// in time.
    pub async fn warm(
        &self,
        flow: &str,
        output: Output,
        budget: Duration,
        progress: &mut (dyn Write + Send),
    ) -> Result<Report, ClientError> {
        // Subscribe first, so not a single event of the wake is missed.
        let mut events = sse::Stream::open(self.send(self.request(reqwest::Method::GET, "/api/v1/events"), "/api/v1/events").await?);
        let answer = self.json(reqwest::Method::POST, &flow_path(flow, "/warm")).await?;
        let started = Instant::now();
        let mut wake = render::Wake::new(flow);
        if answer["state"] == "awake" {
            return Ok(Report::ok(wake.summary(output, "already_awake", None, 0)));
        }
        let deadline = tokio::time::Instant::now() + budget;
        loop {
            let event = match tokio::time::timeout_at(deadline, events.next()).await {
                Err(_) => {
                    let text = wake.summary(
                        output,
                        "timed_out",
                        Some(&format!("still waking after {}", humantime::format_duration(budget))),
                        elapsed(started),
                    );
                    return Ok(Report { text, code: exit::FAILED });
                }
                Ok(Ok(Some(event))) => event,
                Ok(Ok(None)) => {
                    return Err(ClientError::Unexpected {
                        url: format!("{}/api/v1/events", self.base),
                        detail: "the event stream ended during the wake".into(),
                    });
                }
                Ok(Err(detail)) => return Err(ClientError::Unexpected { url: format!("{}/api/v1/events", self.base), detail }),
            };
            if event.data["flow"] != flow {
                continue;
            }
            if output == Output::Human {
                if let Some(line) = wake.line(&event.name, &event.data) {
                    let _ = writeln!(progress, "{line}");
                    let _ = progress.flush();
                }
            } else {
                wake.line(&event.name, &event.data);
            }
            if event.name == "execution_finished" {
                let outcome = event.data["outcome"].as_str().unwrap_or("failed").to_string();
                let error = event.data["error"].as_str().map(str::to_string);
                let ms = event.data["elapsed_ms"].as_u64().unwrap_or_else(|| elapsed(started));
                let code = if outcome == "succeeded" { exit::OK } else { exit::FAILED };
                return Ok(Report { text: wake.summary(output, &outcome, error.as_deref(), ms), code });
            }
        }
    }
}

fn elapsed(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
