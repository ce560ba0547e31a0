//! The `leannodes` command: parses the command line and runs the chosen part.

mod demo;
mod demo_backend;
mod ops;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use leannodes_drivers::gateways;

/// mimalloc (the `mimalloc` feature, on by default) or, with `--no-default-features`, glibc's malloc for
/// heap profilers; see `leannodes_alloc`.
#[global_allocator]
static ALLOCATOR: leannodes_alloc::Allocator = leannodes_alloc::ALLOCATOR;

/// Scale idle application stacks to zero and wake them on the first real request.
#[derive(Debug, Parser)]
#[command(
    name = "leannodes",
    version,
    about,
    after_help = "Operator commands (status, flows, warm, drain, pin, unpin, explain, executions) talk to a running server \
                  (--url or LEANNODES_URL, --token or LEANNODES_TOKEN) and exit with 0 done, 1 the operation failed, \
                  2 bad usage, 3 server unreachable, 4 not signed in or not allowed, 5 no such flow, 6 refused otherwise."
)]
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
        /// Also check that this gateway can hold every flow's requests (callout mode).
        #[arg(long)]
        gateway: Option<gateways::GatewayKind>,
    },
    /// Print the JSON Schema of the configuration file (for editor completion).
    Schema {
        /// Print the configuration reference as Markdown instead (docs/configuration.md).
        #[arg(long)]
        markdown: bool,
    },
    /// Print the `Flow` CustomResourceDefinition (YAML), generated from the configuration types.
    Crd,
    /// Print the OpenAPI 3.1 document of the management API (docs/openapi.json).
    Openapi {
        /// Print the route table with each route's rule instead (docs/routes.md).
        #[arg(long)]
        routes: bool,
    },
    /// Recovery of users, offline against the store (no server needed).
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Run the proxy tier, the control plane and the admin API.
    Serve {
        /// The TOML configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Create or upgrade the store's schema (SQLite file, Postgres tables, DynamoDB table), then exit.
    /// `serve` does the same at start; this is for running it ahead, e.g. in a deploy pipeline.
    Migrate {
        /// The TOML configuration file (its `[server] store` is migrated).
        #[arg(long, short, required_unless_present = "store", conflicts_with = "store")]
        config: Option<PathBuf>,
        /// A store URL instead of a configuration file.
        #[arg(long)]
        store: Option<String>,
    },
    /// Callout mode for existing gateways.
    #[command(subcommand)]
    Gateway(GatewayCommand),
    /// Start a ready-to-try demo: a 4-node diamond of demo backends behind the proxy.
    Demo(demo::Args),
    /// Run a small HTTP + WebSocket backend (used by the demo and the tests).
    DemoBackend(demo_backend::Args),
    /// Operator commands against a running server.
    #[command(flatten)]
    Op(ops::Op),
    /// What sleeping saves: per flow from a running server, or simulated from an access log.
    #[command(subcommand)]
    Savings(ops::SavingsCommand),
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Create a user (the password is read from stdin with --password-stdin, else generated and shown).
    CreateUser {
        /// The TOML configuration file (its store is used).
        #[arg(long, short)]
        config: PathBuf,
        /// E-mail address.
        #[arg(long)]
        email: String,
        /// Display name.
        #[arg(long, default_value = "")]
        name: String,
        /// Roles (repeat for several).
        #[arg(long = "role", default_value = "admin")]
        roles: Vec<String>,
        /// Read the password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a user's password and end its sessions.
    ResetPassword {
        /// The TOML configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// The user's e-mail address.
        #[arg(long)]
        email: String,
        /// Read the password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Give a user a role (and enable it).
    Grant {
        /// The TOML configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// The user's e-mail address.
        #[arg(long)]
        email: String,
        /// The role.
        #[arg(long)]
        role: String,
    },
}

#[derive(Debug, Subcommand)]
enum GatewayCommand {
    /// Print the native configuration that makes a gateway ask LeanNodes before proxying the flows.
    Render(RenderArgs),
    /// Report which gateways the cluster has (in-cluster config or KUBECONFIG) and whether their
    /// rendered artifact is applied.
    Detect(DetectArgs),
}

#[derive(Debug, clap::Args)]
struct DetectArgs {
    /// The TOML configuration file (the flows whose artifacts are looked for).
    #[arg(long, short)]
    config: PathBuf,
    /// Namespace of the flows' routes and policies.
    #[arg(long, default_value = "default")]
    namespace: String,
    /// Namespace LeanNodes runs in.
    #[arg(long, default_value = "leannodes")]
    leannodes_namespace: String,
}

#[derive(Debug, clap::Args)]
struct RenderArgs {
    /// The gateway (istio, envoy, nginx, …; an unknown name lists them all).
    kind: gateways::GatewayKind,
    /// The TOML configuration file (flows, hold timeouts).
    #[arg(long, short)]
    config: PathBuf,
    /// Only this flow (default: every flow).
    #[arg(long)]
    flow: Option<String>,
    /// Namespace of the flows' routes and policies.
    #[arg(long, default_value = "default")]
    namespace: String,
    /// Namespace LeanNodes runs in.
    #[arg(long, default_value = "leannodes")]
    leannodes_namespace: String,
    /// Forward-auth URL of LeanNodes (`/check` on the check listener or the admin listener).
    #[arg(long, default_value = "http://leannodes.leannodes.svc.cluster.local:9090/check")]
    check_url: String,
    /// `ext_authz` gRPC address of LeanNodes (`[server] ext_authz_listen`), as host:port.
    #[arg(long, default_value = "leannodes.leannodes.svc.cluster.local:9191")]
    grpc: String,
    /// Write the files into this folder instead of printing them.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    match cli.command {
        Command::Validate { file, gateway } => validate(&file, gateway),
        Command::Gateway(GatewayCommand::Render(args)) => render_gateway(&args),
        Command::Gateway(GatewayCommand::Detect(args)) => run_async(detect_gateways(args)),
        Command::Schema { markdown: true } => print_out(&leannodes_config::reference_markdown()),
        Command::Schema { markdown: false } => {
            let text = serde_json::to_string_pretty(&leannodes_config::json_schema()).unwrap_or_default();
            print_out(&format!("{text}\n"))
        }
        Command::DemoBackend(args) => run_async(demo_backend::run(args)),
        Command::Serve { config } => report(serve::run(&config)),
        Command::Crd => match crd_yaml() {
            Ok(text) => print_out(&text),
            Err(e) => {
                eprintln!("error: cannot render the CRD: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Demo(args) => report(demo::run(args)),
        Command::Openapi { routes: false } => print_out(&leannodes_api::openapi_json()),
        Command::Openapi { routes: true } => print_out(&leannodes_api::routes_markdown()),
        Command::Admin(command) => run_async(admin(command)),
        Command::Migrate { config, store } => run_async(migrate(config, store)),
        Command::Op(op) => run_async(ops::run(op)),
        Command::Savings(ops::SavingsCommand::Show { window, server }) => run_async(async move { ops::savings(&window, &server).await }),
        Command::Savings(ops::SavingsCommand::Simulate(args)) => ops::simulate(&args),
    }
}

/// `leannodes migrate`: opens the store, which creates or upgrades its schema.
async fn migrate(config: Option<PathBuf>, store: Option<String>) -> anyhow::Result<ExitCode> {
    let url = match (config, store) {
        (_, Some(url)) => leannodes_config::StoreUrl::parse(&url, &std::env::current_dir()?).ok_or_else(|| {
            anyhow::anyhow!("unsupported store URL \"{url}\": use sqlite://PATH, postgres://USER@HOST/DB or dynamodb://TABLE?region=REGION")
        })?,
        (Some(file), None) => match leannodes_config::load_file(&file) {
            Ok(config) => config.server.store,
            Err(leannodes_config::LoadError::Invalid(diagnostics)) => {
                print_out(&diagnostics.to_string());
                anyhow::bail!("{}: {} problem(s)", file.display(), diagnostics.items.len())
            }
            Err(e) => return Err(e.into()),
        },
        (None, None) => anyhow::bail!("give --config FILE or --store URL"),
    };
    let store = leannodes_store::open(&url).await?;
    print_out(&format!("{} store is ready (schema up to date)\n", store.backend()));
    Ok(ExitCode::SUCCESS)
}

/// `leannodes admin …`: recovery against the store of a configuration.
async fn admin(command: AdminCommand) -> anyhow::Result<ExitCode> {
    use leannodes_api::accounts::Recovery;
    let password = |from_stdin: bool| -> anyhow::Result<Option<String>> {
        if !from_stdin {
            return Ok(None);
        }
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        Ok(Some(line.trim_end_matches(['\r', '\n']).to_string()))
    };
    let (config, operation) = match command {
        AdminCommand::CreateUser { config, email, name, roles, password_stdin } => {
            (config, Recovery::CreateUser { email, name, roles, password: password(password_stdin)? })
        }
        AdminCommand::ResetPassword { config, email, password_stdin } => {
            (config, Recovery::ResetPassword { email, password: password(password_stdin)? })
        }
        AdminCommand::Grant { config, email, role } => (config, Recovery::Grant { email, role }),
    };
    let config = load_config(&config)?;
    let store = leannodes_store::open(&config.server.store).await?;
    let actor = format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "unknown".into()));
    let message = leannodes_api::accounts::recover(store, operation, &actor).await?;
    print_out(&format!("{message}\n"));
    Ok(ExitCode::SUCCESS)
}

/// Loads a configuration file; its problems are the error.
fn load_config(path: &std::path::Path) -> anyhow::Result<leannodes_config::Config> {
    match leannodes_config::load_file(path) {
        Ok(config) => Ok(config),
        Err(leannodes_config::LoadError::Invalid(d)) => anyhow::bail!("{}{} problem(s) in {}", d, d.items.len(), path.display()),
        Err(e) => Err(e.into()),
    }
}

/// `leannodes gateway detect`.
async fn detect_gateways(args: DetectArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(&args.config)?;
    let client = tokio::time::timeout(Duration::from_secs(5), kube::Client::try_default())
        .await
        .map_err(|_| anyhow::anyhow!("no Kubernetes cluster answered within 5s (in-cluster config or KUBECONFIG)"))??;
    let flows: Vec<&leannodes_config::Flow> = config.flows.iter().map(|f| &**f).collect();
    let target = gateways::Target { namespace: args.namespace, leannodes_namespace: args.leannodes_namespace, ..Default::default() };
    let found = gateways::detect(&client, &flows, &target).await?;
    let mut out = String::new();
    for d in &found {
        let line = match (&d.evidence, d.applied) {
            (None, _) => format!("{:<14} not installed\n", d.kind),
            (Some(e), Some(true)) => format!("{:<14} installed ({e}); artifact applied\n", d.kind),
            (Some(e), Some(false)) => {
                format!(
                    "{:<14} installed ({e}); artifact not applied: leannodes gateway render {} --config FILE | kubectl apply -f -\n",
                    d.kind, d.kind
                )
            }
            (Some(e), None) => format!("{:<14} installed ({e}); artifact unknown (cannot read it)\n", d.kind),
        };
        out.push_str(&line);
    }
    print_out(&out);
    Ok(ExitCode::SUCCESS)
}

/// `leannodes gateway render`.
fn render_gateway(args: &RenderArgs) -> ExitCode {
    let result = (|| -> anyhow::Result<gateways::Artifact> {
        let config = load_config(&args.config)?;
        let flows = gateways::select(&config.flows, args.flow.as_deref())?;
        let target = gateways::Target {
            check_url: args.check_url.clone(),
            grpc: args.grpc.clone(),
            namespace: args.namespace.clone(),
            leannodes_namespace: args.leannodes_namespace.clone(),
            check_token: config.server.check_token.as_ref().map(|t| t.expose().to_string()),
        };
        Ok(gateways::render(args.kind, &flows, &target)?)
    })();
    let artifact = match result {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    match &args.out {
        Some(dir) => {
            for f in &artifact.files {
                if let Err(e) = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(dir.join(&f.name), &f.content)) {
                    eprintln!("error: cannot write {}: {e}", dir.join(&f.name).display());
                    return ExitCode::FAILURE;
                }
                eprintln!("wrote {}", dir.join(&f.name).display());
            }
            ExitCode::SUCCESS
        }
        None if artifact.files.len() == 1 => print_out(&artifact.files[0].content),
        // Several files: YAML documents apart, each headed by its file name.
        None => print_out(&artifact.files.iter().map(|f| format!("---\n# ===== {} =====\n{}", f.name, f.content)).collect::<String>()),
    }
}

/// The `Flow` CRD as YAML, with a header saying it is generated.
fn crd_yaml() -> anyhow::Result<String> {
    use kube::CustomResourceExt;
    let crd = leannodes_config::crd::Flow::crd();
    Ok(format!("# Generated by `leannodes crd` from the configuration types; do not edit by hand.\n{}", serde_norway::to_string(&crd)?))
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

fn validate(file: &std::path::Path, gateway: Option<gateways::GatewayKind>) -> ExitCode {
    match leannodes_config::load_file(file) {
        Ok(config) => {
            // `--gateway`, else the configured callout gateway.
            let kind = gateway.or(config.server.callout_gateway);
            if let Some(kind) = kind {
                let problems = gateways::hold_problems(kind, &config.flows);
                for problem in &problems {
                    print_out(&format!("{}: error: {problem}\n", file.display()));
                }
                if !problems.is_empty() {
                    eprintln!("{}: {} flow(s) cannot be served through {}", file.display(), problems.len(), kind.as_str());
                    return ExitCode::FAILURE;
                }
            }
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

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("LEANNODES_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // `LEANNODES_LOG_FORMAT=json`: one JSON object per line (access lines included), for log shippers.
    // The proxy formats access lines itself, the way this subscriber would (off the request path).
    use leannodes_proxy::access::{AccessFormat, configure};
    if std::env::var("LEANNODES_LOG_FORMAT").is_ok_and(|f| f == "json") {
        configure(AccessFormat::Json);
        let _ = builder.json().flatten_event(true).try_init();
    } else {
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
        configure(if ansi { AccessFormat::Tracing } else { AccessFormat::Text });
        let _ = builder.with_ansi(ansi).try_init();
    }
}
