//! `leannodes serve`: wires the parts together — the store, the drivers, the controller, the reload
//! actor, the proxy tier (pingora, on its own runtimes), the callout listeners and the management API
//! (on the control runtime) — and runs until SIGTERM/SIGINT. SIGHUP reloads.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use leannodes_api::{Api, ApiParts, SuperAdmin};
use leannodes_config::{Config, DriverKind, LoadError};
use leannodes_control::{Controller, ControllerOptions, ReloadCause, Reloader, Sources};
use leannodes_drivers::flow_resources::FlowResources;
use leannodes_drivers::{Drivers, ProcessDriver};
use leannodes_notify::{Notifier, Options as NotifyOptions};
use leannodes_proxy::tls::ListenerCerts;
use leannodes_proxy::{Callouts, ProxyServer, ProxyState, ServerOptions, ShutdownHandle, UpstreamTimeouts};
use tokio::signal::unix::{SignalKind, signal};

/// How often the TLS listeners' certificate files are checked for changes.
const CERT_CHECK_INTERVAL: Duration = Duration::from_secs(2);

/// How often memory freed since is given back to the OS (`leannodes_alloc::give_back`).
const GIVE_BACK_INTERVAL: Duration = Duration::from_secs(5);

/// What runs on the control runtime.
struct Control {
    controller: Arc<Controller>,
    proxy: Arc<ProxyState>,
    reloader: Reloader,
    api: Api,
    callouts: Arc<Callouts>,
}

/// Runs the server until SIGTERM/SIGINT. Must not be called inside a tokio runtime.
pub(crate) fn run(config_path: &Path) -> anyhow::Result<ExitCode> {
    let config = match leannodes_config::load_file(config_path) {
        Ok(c) => c,
        Err(LoadError::Invalid(d)) => {
            eprint!("{d}");
            anyhow::bail!("{} problem(s) in {}; nothing started", d.items.len(), config_path.display());
        }
        Err(e) => return Err(e.into()),
    };
    let admin_listener = bind(config.server.admin_listen, "admin")?;
    let check_listener = config.server.check_listen.map(|addr| bind(addr, "check")).transpose()?;
    let ext_authz_listener = config.server.ext_authz_listen.map(|addr| bind(addr, "ext_authz")).transpose()?;
    // Certificates first: a TLS listener that cannot serve stops the start before anything runs.
    let tls = config.server.tls.iter().map(ListenerCerts::load).collect::<Result<Vec<_>, _>>()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name("leannodes-control").enable_all().build()?;
    let control = runtime.block_on(start(&config, config_path))?;
    let options = ServerOptions {
        listen: config.server.listen.clone(),
        threads: config.server.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        grace: config.server.shutdown_grace,
        tls,
        head_timeout: config.server.request_head_timeout,
    };
    let server = ProxyServer::new(control.proxy.clone(), &options)?;
    runtime.spawn(server.cert_watch().run(CERT_CHECK_INTERVAL));
    runtime.spawn(give_back_memory());
    // The admin listener also answers /check, for gateways pointed at it.
    runtime.spawn(serve_http(admin_listener, control.api.router().merge(control.callouts.routes()), "admin"));
    if let Some(listener) = check_listener {
        runtime.spawn(serve_http(listener, control.callouts.listener(), "check"));
    }
    if let Some(listener) = ext_authz_listener {
        let callouts = control.callouts.clone();
        runtime.spawn(async move {
            match tokio::net::TcpListener::from_std(listener) {
                Ok(listener) => leannodes_proxy::serve_ext_authz(listener, callouts).await,
                Err(e) => tracing::error!("cannot serve ext_authz: {e}"),
            }
        });
    }
    let controller = control.controller.clone();
    let proxy = control.proxy.clone();
    runtime.spawn(handle_signals(control, server.shutdown_handle(), config.server.shutdown_grace));
    tracing::info!(listen = ?options.listen, tls = ?config.server.tls.iter().map(|t| t.listen).collect::<Vec<_>>(), admin = %config.server.admin_listen, threads = options.threads, flows = config.flows.len(), "leannodes serving");
    server.run();
    proxy.flush_access_log(Duration::from_secs(1));
    runtime.block_on(controller.shutdown());
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

async fn start(config: &Config, config_path: &Path) -> anyhow::Result<Control> {
    let store = leannodes_store::open(&config.server.store).await?;
    let kube = match config.server.driver {
        DriverKind::Kubernetes => {
            Some(kube::Client::try_default().await.context("cannot reach Kubernetes (in-cluster config or KUBECONFIG)")?)
        }
        DriverKind::Process => None,
    };
    let hostname = gethostname::gethostname().to_string_lossy().into_owned();
    let options = ControllerOptions::from_config(&config.server, &hostname);
    let controller = Arc::new(Controller::start(config, drivers(kube.clone()).await, store.clone(), options).await?);
    let proxy = ProxyState::start(controller.clone(), config, UpstreamTimeouts::default()).await?;
    let resources = match (&kube, config.server.flows_from_crd) {
        (Some(client), true) => Some(FlowResources::new(client.clone())),
        _ => None,
    };
    let sources = Sources { file: config_path.to_path_buf(), resources };
    let reloader = Reloader::start(controller.clone(), sources, proxy.clone());
    // The active versions of store-managed flows join before anything serves.
    let first = reloader.reload(ReloadCause::Store).await;
    if !first.ok {
        anyhow::bail!("cannot add the store-managed flows: {}", first.errors.join("; "));
    }
    let callouts = Callouts::new(proxy.clone(), config.server.check_allows_unmatched, config.server.check_token.clone());
    let notifier = Notifier::start(
        &config.notifications,
        controller.notices().subscribe(),
        NotifyOptions { base_url: config.server.auth.external_url.clone(), ..NotifyOptions::default() },
    );
    if let Some(tracing) = config.server.tracing.clone() {
        tracing::info!(collector = %tracing.endpoint, "exporting traces of wakes and held requests (OTLP/HTTP)");
        leannodes_notify::otlp::start_exporter(tracing, controller.spans().subscribe());
    }
    // Routes made through the API: other replicas' changes are picked up from a shared store.
    if store.shared() {
        notifier.follow_store(store.clone(), NOTIFICATION_ROUTES_REFRESH);
    } else {
        notifier.load_api_routes(&*store).await.context("cannot read the notification routes")?;
    }
    let parts = ApiParts {
        controller: controller.clone(),
        store,
        traffic: proxy.clone(),
        reloader: reloader.clone(),
        kube,
        server: config.server.clone(),
        config_path: config_path.to_path_buf(),
        notifier,
    };
    let api = Api::start(parts, super_admin()).await?;
    Ok(Control { controller, proxy, reloader, api, callouts })
}

/// Gives freed memory back to the OS every [`GIVE_BACK_INTERVAL`]: an idle server's allocator would
/// otherwise keep what start-up and reloads freed.
async fn give_back_memory() {
    let mut tick = tokio::time::interval(GIVE_BACK_INTERVAL);
    loop {
        tick.tick().await;
        leannodes_alloc::give_back();
    }
}

/// How often a replica re-reads the notification routes made through the API (a shared store).
const NOTIFICATION_ROUTES_REFRESH: std::time::Duration = std::time::Duration::from_secs(10);

/// The first administrator from `LEANNODES_SUPER_ADMIN_EMAIL` and `LEANNODES_SUPER_ADMIN_PASSWORD`.
fn super_admin() -> Option<SuperAdmin> {
    let email = std::env::var("LEANNODES_SUPER_ADMIN_EMAIL").ok().filter(|v| !v.is_empty())?;
    let password = std::env::var("LEANNODES_SUPER_ADMIN_PASSWORD").ok().filter(|v| !v.is_empty())?;
    Some(SuperAdmin { email, password })
}

/// The drivers: local processes always, Kubernetes when a cluster client is given.
async fn drivers(client: Option<kube::Client>) -> Drivers {
    let process: Arc<dyn leannodes_drivers::Driver> = Arc::new(ProcessDriver::default());
    let external: Arc<dyn leannodes_drivers::Driver> = Arc::new(leannodes_drivers::ExternalDriver);
    let kubernetes: Option<Arc<dyn leannodes_drivers::Driver>> = match client {
        Some(client) => Some(Arc::new(Arc::new(leannodes_drivers::KubernetesDriver::start(client).await))),
        None => None,
    };
    Drivers::new(process, external, kubernetes)
}

/// Binds a listener of the control runtime (non-blocking, for tokio), before anything starts.
fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(addr)
        .with_context(|| format!("cannot listen on {what} address {addr} (is another process using it?)"))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Serves `router` on `listener`, telling handlers the client's address.
async fn serve_http(listener: std::net::TcpListener, router: axum::Router, what: &'static str) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("{what} listener: {e}");
            return;
        }
    };
    if let Err(e) = axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await {
        tracing::error!("{what} server stopped: {e}");
    }
}

/// SIGHUP reloads; SIGTERM and SIGINT shut down gracefully: held requests are answered at once, the
/// listeners close, in-flight requests get the grace period, process nodes are stopped.
async fn handle_signals(control: Control, server: ShutdownHandle, grace: Duration) {
    let (Ok(mut hup), Ok(mut term), Ok(mut int)) =
        (signal(SignalKind::hangup()), signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    loop {
        tokio::select! {
            _ = hup.recv() => {
                control.reloader.reload(ReloadCause::Signal).await;
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    tracing::info!(grace = ?grace, "shutting down");
    control.proxy.drain(&server, grace).await;
    control.controller.shutdown().await;
    tracing::info!("stopped");
    std::process::exit(0);
}
