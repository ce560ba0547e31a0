//! The `leannodes` command: parses the command line and runs the chosen part.

mod admin;
mod demo;
mod demo_backend;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc's allocator: the proxy allocates and frees small buffers on every request,
/// and malloc/free were the top user-space symbols in a profile of the warm path (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Scale idle application stacks to zero and wake them on the first real request.
#[derive(Debug, Parser)]
#[command(name = "leannodes", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a configuration file and report every problem in it.
    Validate {
        /// The TOML configuration file.
        file: PathBuf,
    },
    /// Print the JSON Schema of the configuration file (for editor completion).
    Schema {
        /// Print the configuration reference as Markdown instead (docs/configuration.md).
        #[arg(long)]
        markdown: bool,
    },
    /// Run the proxy tier, the control plane and the admin API.
    Serve {
        /// The TOML configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Start a ready-to-try demo: a 4-node diamond of demo backends behind the proxy.
    Demo(demo::Args),
    /// Run a small HTTP + WebSocket backend (used by the demo and the tests).
    DemoBackend(demo_backend::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    match cli.command {
        Command::Validate { file } => validate(&file),
        Command::Schema { markdown: true } => print_out(&leannodes_config::reference_markdown()),
        Command::Schema { markdown: false } => {
            let text = serde_json::to_string_pretty(&leannodes_config::json_schema()).unwrap_or_default();
            print_out(&format!("{text}\n"))
        }
        Command::DemoBackend(args) => run_async(demo_backend::run(args)),
        Command::Serve { config } => report(serve::run(&config)),
        Command::Demo(args) => report(demo::run(args)),
    }
}

/// Writes to stdout; a closed pipe (`leannodes schema | head`) is not an error.
fn print_out(text: &str) -> ExitCode {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot write to stdout: {e}");
            ExitCode::FAILURE
        }
    }
}

fn validate(file: &std::path::Path) -> ExitCode {
    match leannodes_config::load_file(file) {
        Ok(config) => {
            if config.server.driver == leannodes_config::DriverKind::Kubernetes {
                for warning in run_blocking(cluster_warnings(&config)) {
                    print_out(&format!("{}: warning: {warning}\n", file.display()));
                }
            }
            print_out(&format!("{}: ok: {} flow(s), {} node(s)\n", file.display(), config.flows.len(), config.node_count()))
        }
        Err(leannodes_config::LoadError::Invalid(diagnostics)) => {
            print_out(&diagnostics.to_string());
            eprintln!("{}: {} problem(s)", file.display(), diagnostics.items.len());
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Warnings about Kubernetes nodes (e.g. an autoscaler that also scales a workload), when a cluster is
/// reachable (in-cluster config or `KUBECONFIG`); nothing when it is not.
async fn cluster_warnings(config: &leannodes_config::Config) -> Vec<String> {
    use leannodes_drivers::Driver;
    let Ok(Ok(client)) = tokio::time::timeout(Duration::from_secs(3), kube::Client::try_default()).await else { return Vec::new() };
    let driver = std::sync::Arc::new(leannodes_drivers::KubernetesDriver::start(client).await);
    let mut out = Vec::new();
    for flow in &config.flows {
        for node in flow.nodes.iter().filter(|n| n.workload.kind().is_kubernetes()) {
            for w in driver.warnings(&node.workload).await {
                out.push(format!("node `{}` of flow `{}`: {w}", node.name, flow.name));
            }
        }
    }
    out
}

/// Runs a future on a short-lived runtime (for commands that are otherwise synchronous).
fn run_blocking<T: Default>(task: impl Future<Output = T>) -> T {
    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt.block_on(task),
        Err(e) => {
            eprintln!("warning: cannot start an async runtime: {e}");
            T::default()
        }
    }
}

fn run_async(task: impl Future<Output = anyhow::Result<ExitCode>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(task);
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn report(result: anyhow::Result<ExitCode>) -> ExitCode {
    result.unwrap_or_else(|e| {
        eprintln!("error: {e:#}");
        ExitCode::FAILURE
    })
}

/// Current wall-clock time in Unix milliseconds.
pub(crate) fn unix_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("LEANNODES_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // `LEANNODES_LOG_FORMAT=json`: one JSON object per line (access lines included), for log shippers.
    if std::env::var("LEANNODES_LOG_FORMAT").is_ok_and(|f| f == "json") {
        let _ = builder.json().flatten_event(true).try_init();
    } else {
        let _ = builder.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).try_init();
    }
}
