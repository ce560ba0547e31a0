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

/// `leannodes savings …`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum SavingsCommand {
    /// What sleeping saved each flow you may read over a window (`[server.savings]` cost model).
    Show {
        /// How far back: `24h`, `7d`, `30d` (at most `90d`).
        #[arg(long, default_value = "30d")]
        window: String,
        #[command(flatten)]
        server: Server,
    },
    /// Replay an access log (nginx, Envoy or LeanNodes; JSON lines or nginx's text format) against
    /// candidate idle windows: hours asleep, cold starts and cost saved for each. Offline.
    Simulate(SimulateArgs),
}

/// `leannodes savings simulate`.
#[derive(Debug, clap::Args)]
pub(crate) struct SimulateArgs {
    /// The access log: JSON lines (Envoy, nginx `log_format … escape=json`, LeanNodes) or nginx's text format.
    #[arg(long)]
    access_log: std::path::PathBuf,
    /// Candidate idle windows, comma-separated.
    #[arg(long, value_delimiter = ',', value_parser = humantime::parse_duration, default_value = "5m,15m,1h")]
    idle_after: Vec<Duration>,
    /// Count only requests for this host (JSON logs: `host`, `authority`, `http_host` or `server_name`).
    #[arg(long)]
    host: Option<String>,
    /// CPU cores the flow uses while awake.
    #[arg(long, default_value_t = 1.0)]
    cpu: f64,
    /// Take the cost model from this configuration file's `[server.savings]`.
    #[arg(long, short)]
    config: Option<std::path::PathBuf>,
    /// Cost of one node-hour (overrides the configuration).
    #[arg(long)]
    node_hourly_cost: Option<f64>,
    /// Cores per node (overrides the configuration).
    #[arg(long)]
    node_cpu: Option<f64>,
    /// `human` (default) or `json`.
    #[arg(long, short, value_enum, default_value = "human")]
    output: Format,
}

/// `leannodes savings simulate`: exit 0 with the table, 1 when the log holds no request, 2 on bad usage
/// (a missing file, bad numbers).
pub(crate) fn simulate(args: &SimulateArgs) -> ExitCode {
    use leannodes_control::savings::simulate;
    let usage = |message: String| {
        eprintln!("error: {message}");
        ExitCode::from(2)
    };
    let mut model = match &args.config {
        None => leannodes_config::Savings::default(),
        Some(path) => match leannodes_config::load_file(path) {
            Ok(config) => config.server.savings,
            Err(e) => return usage(e.to_string()),
        },
    };
    model.node_hourly_cost = args.node_hourly_cost.unwrap_or(model.node_hourly_cost);
    model.node_cpu = args.node_cpu.unwrap_or(model.node_cpu);
    let valid = |v: f64, least: f64| v.is_finite() && v >= least;
    if !valid(model.node_cpu, 0.001) || !valid(model.node_hourly_cost, 0.0) || !valid(args.cpu, 0.0) {
        return usage("--node-cpu must be at least 0.001, --node-hourly-cost and --cpu at least 0".into());
    }
    if args.idle_after.iter().any(Duration::is_zero) {
        return usage("--idle-after windows must be longer than zero".into());
    }
    let read =
        std::fs::File::open(&args.access_log).and_then(|f| simulate::read_access_log(std::io::BufReader::new(f), args.host.as_deref()));
    let log = match read {
        Ok(log) => log,
        Err(e) => return usage(format!("cannot read {}: {e}", args.access_log.display())),
    };
    if let Some(first) = &log.first_malformed {
        eprintln!("warning: skipped {} line(s) without a readable time; the first is line {}: {}", log.malformed, first.line, first.reason);
    }
    if log.times_ms.is_empty() {
        eprintln!("error: no requests in {} ({} lines read)", args.access_log.display(), log.lines);
        return ExitCode::FAILURE;
    }
    let report = serde_json::to_value(simulate::run(log, &args.idle_after, args.cpu, &model)).unwrap_or_default();
    crate::print_out(&match args.output {
        Format::Json => leannodes_client::render::json(&report),
        Format::Human => leannodes_client::render::simulation(&report),
    })
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
    let (client, output) = server.client();
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
    Ok(exit(result))
}

/// `leannodes savings show`.
pub(crate) async fn savings(window: &str, server: &Server) -> anyhow::Result<ExitCode> {
    let (client, output) = server.client();
    Ok(exit(client.savings(window, output).await))
}

impl Server {
    fn client(&self) -> (Client, Output) {
        let output = match self.output {
            Format::Human => Output::Human,
            Format::Json => Output::Json,
        };
        (Client::new(&self.url, self.token.clone()), output)
    }
}

/// Prints a command's answer (or its error) and gives its exit code.
fn exit(result: Result<Report, ClientError>) -> ExitCode {
    match result {
        Ok(report) => {
            crate::print_out(&report.text);
            ExitCode::from(report.code)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
