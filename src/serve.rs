//! `leannodes serve`: the proxy tier (pingora, on its own runtimes), the control plane and the admin API
//! (on the control runtime), hot reload, and graceful shutdown.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use leannodes_config::{Config, LoadError};
use leannodes_control::{Controller, ControllerOptions};
use leannodes_drivers::{Drivers, ProcessDriver};
use leannodes_proxy::{ProxyServer, ProxyState, RouteTable, ServerOptions, ShutdownHandle, UpstreamTimeouts};
use tokio::signal::unix::{SignalKind, signal};

use crate::admin::{self, Admin, ReloadStatus};

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
    let control = tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name("leannodes-control").enable_all().build()?;
    let (admin, state) = control.block_on(start_control(&config, config_path))?;
    let options = ServerOptions {
        listen: config.server.listen.clone(),
        threads: config.server.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        grace: config.server.shutdown_grace,
    };
    let server = ProxyServer::new(state.clone(), &options)?;
    let shutdown = server.shutdown_handle();
    control.spawn(serve_http(admin_listener, admin::router(admin.clone()), "admin"));
    if let Some(listener) = check_listener {
        control.spawn(serve_http(listener, admin::check_router(admin.clone()), "check"));
    }
    if let Some(listener) = ext_authz_listener {
        let admin = admin.clone();
        control.spawn(async move {
            match tokio::net::TcpListener::from_std(listener) {
                Ok(listener) => crate::callout::serve_ext_authz(listener, admin).await,
                Err(e) => tracing::error!("cannot serve ext_authz: {e}"),
            }
        });
    }
    control.spawn(watch_config(admin.clone(), config_path.to_path_buf()));
    control.spawn(handle_signals(admin.clone(), shutdown, config.server.shutdown_grace));
    tracing::info!(listen = ?options.listen, admin = %config.server.admin_listen, threads = options.threads, flows = config.flows.len(), "leannodes serving");
    server.run();
    control.block_on(admin.controller.shutdown());
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

async fn start_control(config: &Config, config_path: &Path) -> anyhow::Result<(Arc<Admin>, Arc<ProxyState>)> {
    let store = leannodes_store::open(&config.server.store).await?;
    let client = match config.server.driver {
        leannodes_config::DriverKind::Kubernetes => {
            Some(kube::Client::try_default().await.context("cannot reach Kubernetes (in-cluster config or KUBECONFIG)")?)
        }
        leannodes_config::DriverKind::Process => None,
    };
    let hostname = gethostname::gethostname().to_string_lossy().into_owned();
    let options = ControllerOptions::from_config(&config.server, &hostname);
    let controller = Arc::new(Controller::start(config, drivers(client.clone()).await, store, options).await?);
    let flows: Vec<_> = config.flows.iter().filter_map(|f| controller.flow(&f.name)).collect();
    let endpoints = |w: &Arc<leannodes_config::Workload>| controller.endpoints(w);
    let routes = RouteTable::build(&flows, None, &endpoints).await?;
    let default_upstream = match &config.server.default_upstream {
        Some(hp) => Some(leannodes_proxy::resolve(hp).await.map_err(|e| anyhow::anyhow!("cannot resolve default_upstream {hp}: {e}"))?),
        None => None,
    };
    let state = Arc::new(ProxyState::new(controller.clone(), routes, default_upstream, UpstreamTimeouts::default()));
    let crd = match (&client, config.server.flows_from_crd) {
        (Some(client), true) => Some(crate::crd_flows::CrdFlows::new(client.clone())),
        _ => None,
    };
    let admin = Admin::new(
        controller,
        state.clone(),
        config_path.display().to_string(),
        crd.clone(),
        config.server.check_allows_unmatched,
        client.clone(),
    );
    if let Some(crd) = crd {
        tokio::spawn(crd.clone().watch(admin.clone()));
        tokio::spawn(crd.report_status(admin.clone()));
    }
    Ok((admin, state))
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
fn bind(addr: std::net::SocketAddr, what: &str) -> anyhow::Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(addr)
        .with_context(|| format!("cannot listen on {what} address {addr} (is another process using it?)"))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Serves `router` on `listener` (the admin API, or `/check` alone).
async fn serve_http(listener: std::net::TcpListener, router: axum::Router, what: &'static str) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("{what} listener: {e}");
            return;
        }
    };
    if let Err(e) = axum::serve(listener, router).await {
        tracing::error!("{what} server stopped: {e}");
    }
}

/// Applies the config file again. An invalid file keeps the running configuration.
pub(crate) async fn reload(admin: &Admin) {
    let path = Path::new(&admin.config_path);
    let at_ms = crate::unix_ms();
    let reject = |errors: Vec<String>| {
        for line in &errors {
            tracing::error!("reload rejected: {line}");
        }
        admin.set_reload(ReloadStatus { ok: false, at_ms, errors });
    };
    let config = match leannodes_config::load_file(path) {
        Ok(c) => c,
        Err(e) => {
            let errors: Vec<String> = match &e {
                LoadError::Invalid(d) => d.to_string().lines().filter(|l| !l.starts_with("  help:")).map(str::to_string).collect(),
                other => vec![other.to_string()],
            };
            return reject(errors);
        }
    };
    let config = match &admin.crd {
        None => config,
        Some(crd) => {
            if !config.server.flows_from_file && !config.flows.is_empty() {
                return reject(vec![format!("{}: flows_from does not include \"file\", but the file has [[flow]] tables", path.display())]);
            }
            match with_resource_flows(path, config.flows.len(), crd) {
                Ok(c) => c,
                Err(errors) => return reject(errors),
            }
        }
    };
    let proxy = &admin.proxy;
    let reload = admin.controller.apply(&config);
    let flows: Vec<_> = config.flows.iter().filter_map(|f| admin.controller.flow(&f.name)).collect();
    let endpoints = |w: &Arc<leannodes_config::Workload>| admin.controller.endpoints(w);
    let routes = match RouteTable::build(&flows, Some(&proxy.routes.load()), &endpoints).await {
        Ok(r) => r,
        Err(e) => {
            // The controller already holds the new flows; routes keep pointing at the old handles, which
            // stay valid, so nothing is dropped. The next good reload fixes both.
            tracing::error!("reload: {e}");
            admin.set_reload(ReloadStatus { ok: false, at_ms, errors: vec![e.to_string()] });
            return;
        }
    };
    let default_upstream = match &config.server.default_upstream {
        Some(hp) => leannodes_proxy::resolve(hp).await.ok(),
        None => None,
    };
    proxy.routes.store(Arc::new(routes));
    proxy.default_upstream.store(Arc::new(default_upstream));
    let removed = reload.removed();
    tracing::info!(changed = ?reload.added, removed = ?removed, "configuration reloaded");
    reload.finish();
    admin.set_reload(ReloadStatus { ok: true, at_ms, errors: vec![] });
}

/// Validates the file together with the `Flow` resources. A resource that does not validate (alone or
/// with the others) is left out and its problems are reported on it; the rest applies.
fn with_resource_flows(path: &Path, file_flows: usize, crd: &crate::crd_flows::CrdFlows) -> Result<Config, Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| vec![format!("cannot read {}: {e}", path.display())])?;
    let base = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut candidates = crd.specs();
    let mut problems: std::collections::BTreeMap<String, Vec<String>> = std::collections::BTreeMap::new();
    loop {
        let specs: Vec<_> = candidates.iter().map(|(_, s)| s.clone()).collect();
        match leannodes_config::parse_toml_with_flows(&text, &path.display().to_string(), base, &specs) {
            Ok(config) => {
                crd.set_problems(problems);
                return Ok(config);
            }
            Err(d) => {
                let mut blamed = std::collections::BTreeSet::new();
                for item in &d.items {
                    let index =
                        item.pointer.strip_prefix("/flow/").and_then(|rest| rest.split('/').next()).and_then(|i| i.parse::<usize>().ok());
                    if let Some(i) = index.and_then(|i| i.checked_sub(file_flows)).filter(|i| *i < candidates.len()) {
                        problems.entry(candidates[i].0.clone()).or_default().push(format!(
                            "{}: {}",
                            item.pointer.replacen(&format!("/flow/{}", i + file_flows), "spec", 1),
                            item.message
                        ));
                        blamed.insert(i);
                    }
                }
                if blamed.is_empty() {
                    return Err(d.to_string().lines().filter(|l| !l.starts_with("  help:")).map(str::to_string).collect());
                }
                for i in blamed.into_iter().rev() {
                    candidates.remove(i);
                }
            }
        }
    }
}

/// Reloads when the config file changes (modification time or size), checked twice a second.
async fn watch_config(admin: Arc<Admin>, path: PathBuf) {
    let stamp = |p: &Path| std::fs::metadata(p).ok().map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()));
    let mut last = stamp(&path);
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        let now = stamp(&path);
        if now != last && now.is_some() {
            last = now;
            reload(&admin).await;
        }
    }
}

/// SIGHUP reloads; SIGTERM and SIGINT shut down gracefully: held requests are answered at once, the
/// listeners close, in-flight requests get the grace period, process nodes are stopped.
async fn handle_signals(admin: Arc<Admin>, server: ShutdownHandle, grace: Duration) {
    let (Ok(mut hup), Ok(mut term), Ok(mut int)) =
        (signal(SignalKind::hangup()), signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    loop {
        tokio::select! {
            _ = hup.recv() => reload(&admin).await,
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    tracing::info!(grace = ?grace, "shutting down");
    admin.proxy.begin_shutdown();
    server.graceful();
    // Pingora waits out the whole grace period; when nothing is in flight any more there is no reason to.
    let deadline = tokio::time::Instant::now() + grace;
    while tokio::time::Instant::now() < deadline {
        if admin.proxy.in_flight() == 0 {
            admin.controller.shutdown().await;
            tracing::info!("stopped");
            std::process::exit(0);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
