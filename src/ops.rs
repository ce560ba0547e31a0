//! The operator commands (`status`, `flows`, `warm`, `drain`, `pin`, `unpin`, `explain`, `executions`): command-line
//! arguments for [`leannodes_client`], which talks to a running server and renders the answers.

use std::process::ExitCode;
use std::time::Duration;

use leannodes_client::{Client, ClientError, Operation, Output, Report};

/// Where the server is and how to sign in; shared by every operator command.
#[derive(Debug, clap::Args)]
pub(crate) struct Server {
    /// The admin listener of the server.
    #[arg(long, env = "LEANNODES_URL", default_value = "http://127.0.0.1:9090")]
    url: String,
    /// A personal access token (create one in the dashboard: Settings → Tokens).
    #[arg(long, env = "LEANNODES_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// `human` (default) or `json` (the API's answer, for scripts).
    #[arg(long, short, value_enum, default_value = "human")]
    output: Format,
}

/// Output formats.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum Format {
    /// Text for people.
    Human,
    /// JSON.
    Json,
}

/// An operator command.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Op {
    /// This server: version, store, driver, replica and leadership, last reload.
    Status {
        #[command(flatten)]
        server: Server,
    },
    /// Every flow you may read, with its state.
    Flows {
        #[command(flatten)]
        server: Server,
    },
    /// Wake a flow now and follow it node by node until it is awake (exit 1 if the wake fails).
    Warm {
        /// The flow.
        flow: String,
        #[command(flatten)]
        server: Server,
        /// Give up after this long (exit 1).
        #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
        timeout: Duration,
    },
    /// Drain a flow now; returns when it is asleep.
    Drain {
        /// The flow.
        flow: String,
        #[command(flatten)]
        server: Server,
    },
    /// Pin a flow: it is never drained.
    Pin {
        /// The flow.
        flow: String,
        #[command(flatten)]
        server: Server,
    },
    /// Unpin a flow.
    Unpin {
        /// The flow.
        flow: String,
        #[command(flatten)]
        server: Server,
    },
    /// Why a flow is in its state: pins, open connections, recent activity, a failed wake, shared
    /// workloads, and when it drains.
    Explain {
        /// The flow.
        flow: String,
        #[command(flatten)]
        server: Server,
    },
    /// A flow's recent wakes, newest first.
    Executions {
        /// The flow.
        flow: String,
        #[command(flatten)]
        server: Server,
    },
}

/// Runs an operator command; prints its answer and returns its exit code (0 done, 1 the operation
/// failed, 3 unreachable, 4 not signed in or not allowed, 5 no such flow, 6 refused otherwise).
pub(crate) async fn run(op: Op) -> anyhow::Result<ExitCode> {
    let (Op::Status { server }
    | Op::Flows { server }
    | Op::Warm { server, .. }
    | Op::Drain { server, .. }
    | Op::Pin { server, .. }
    | Op::Unpin { server, .. }
    | Op::Explain { server, .. }
    | Op::Executions { server, .. }) = &op;
    let client = Client::new(&server.url, server.token.clone());
    let output = match server.output {
        Format::Human => Output::Human,
        Format::Json => Output::Json,
    };
    let result: Result<Report, ClientError> = match &op {
        Op::Status { .. } => client.status(output).await,
        Op::Flows { .. } => client.flows(output).await,
        Op::Warm { flow, timeout, .. } => client.warm(flow, output, *timeout, &mut std::io::stdout()).await,
        Op::Drain { flow, .. } => client.operate(flow, Operation::Drain, output).await,
        Op::Pin { flow, .. } => client.operate(flow, Operation::Pin, output).await,
        Op::Unpin { flow, .. } => client.operate(flow, Operation::Unpin, output).await,
        Op::Explain { flow, .. } => client.explain(flow, output).await,
        Op::Executions { flow, .. } => client.executions(flow, output).await,
    };
    Ok(match result {
        Ok(report) => {
            crate::print_out(&report.text);
            ExitCode::from(report.code)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    })
}
