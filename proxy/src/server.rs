//! Running the proxy: a pingora `Server` with one proxy service on every listener (HTTP/1.1 and h2c on the
//! plain ones; HTTP/2 and HTTP/1.1 by ALPN on the TLS ones), started only after every address was checked
//! to bind and every certificate to load (pingora only logs bind failures and panics on bad
//! certificates), stopped by a signal the caller controls.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::apps::HttpServerOptions;
use pingora::listeners::ListenerConfig;
use pingora::listeners::tls::TlsSettings;
use pingora::protocols::l4::stream::L4BufferSettings;
use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch};
use pingora::services::listening::Service;
use tokio::sync::watch;

use crate::park::Parker;
use crate::service::{LeanProxy, ProxyState};
use crate::tls::{CertWatch, ListenerCerts};

/// Read buffer of each downstream connection: none. Pingora reads request heads and bodies into
/// buffers of its own, so a socket-level read buffer only copies the bytes once more — and a held
/// request would keep it for as long as it waits.
const READ_BUFFER: usize = 0;

/// How the proxy server runs.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Proxy listeners.
    pub listen: Vec<SocketAddr>,
    /// Worker threads (default: all cores).
    pub threads: usize,
    /// Grace period after a graceful shutdown signal, for in-flight requests to finish.
    pub grace: Duration,
    /// TLS listeners, their certificates loaded ([`ListenerCerts::load`]).
    pub tls: Vec<Arc<ListenerCerts>>,
    /// Time a connection's first request head may take to arrive (`[server] request_head_timeout`).
    pub head_timeout: Duration,
}

/// Errors starting the proxy.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A listener address cannot be bound.
    #[error("cannot listen on {addr}: {source} (is another process using it?)")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Pingora refused the TLS settings.
    #[error("TLS listener {listen}: {reason}")]
    TlsSettings {
        /// The listener.
        listen: SocketAddr,
        /// Pingora's message.
        reason: String,
    },
}

/// The proxy tier, ready to run.
pub struct ProxyServer {
    server: Server,
    trigger: watch::Sender<Option<ShutdownSignal>>,
    certs: Vec<Arc<ListenerCerts>>,
}

impl std::fmt::Debug for ProxyServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyServer").finish_non_exhaustive()
    }
}

/// Hands pingora the shutdown decided by the owner of a [`ShutdownHandle`].
struct Signal(watch::Receiver<Option<ShutdownSignal>>);

#[async_trait]
impl ShutdownSignalWatch for Signal {
    async fn recv(&self) -> ShutdownSignal {
        let mut rx = self.0.clone();
        match rx.wait_for(Option::is_some).await {
            Ok(signal) => match *signal {
                Some(ShutdownSignal::GracefulTerminate) => ShutdownSignal::GracefulTerminate,
                Some(ShutdownSignal::GracefulUpgrade) => ShutdownSignal::GracefulUpgrade,
                _ => ShutdownSignal::FastShutdown,
            },
            Err(_) => ShutdownSignal::FastShutdown,
        }
    }
}

/// Stops a running [`ProxyServer`].
#[derive(Debug, Clone)]
pub struct ShutdownHandle(watch::Sender<Option<ShutdownSignal>>);

impl ShutdownHandle {
    /// Graceful: listeners close, in-flight requests get the grace period.
    pub fn graceful(&self) {
        self.0.send_replace(Some(ShutdownSignal::GracefulTerminate));
    }

    /// Immediate.
    pub fn fast(&self) {
        self.0.send_replace(Some(ShutdownSignal::FastShutdown));
    }
}

impl ProxyServer {
    /// Checks that every listener binds, then builds the server.
    // `ServerConf` and `HttpServerOptions` are `#[non_exhaustive]`-style structs built from `default()`.
    #[allow(clippy::field_reassign_with_default)]
    pub fn new(state: Arc<ProxyState>, options: &ServerOptions) -> Result<ProxyServer, ServerError> {
        for addr in options.listen.iter().copied().chain(options.tls.iter().map(|t| t.listen())) {
            std::net::TcpListener::bind(addr).map_err(|source| ServerError::Bind { addr, source })?;
        }
        let certs = options.tls.clone();
        let mut conf = ServerConf::default();
        conf.threads = options.threads.max(1);
        // One single-threaded runtime per worker thread: no work-stealing overhead on the hot path.
        conf.work_stealing = false;
        conf.grace_period_seconds = Some(options.grace.as_secs());
        conf.graceful_shutdown_timeout_seconds = Some(1);
        let run_dir = std::env::temp_dir();
        conf.pid_file = run_dir.join(format!("leannodes-{}.pid", std::process::id())).display().to_string();
        conf.upgrade_sock = run_dir.join(format!("leannodes-{}-upgrade.sock", std::process::id())).display().to_string();
        let mut server = Server::new_with_opt_and_conf(None, conf);
        server.bootstrap();
        let mut http = HttpServerOptions::default();
        http.h2c = true;
        let mut proxy = pingora::proxy::http_proxy(&server.configuration, LeanProxy::new(state.clone()));
        proxy.server_options = Some(http);
        // Every connection meets the parker first; it hands the connection to the proxy.
        let parker = Parker::new(proxy, state, options.head_timeout);
        let mut service = Service::new("leannodes-proxy".to_string(), parker);
        // Pingora reads each downstream connection through a 64 KiB buffer by default, which held
        // requests would keep for as long as they wait.
        let buffers = || L4BufferSettings::new(READ_BUFFER, L4BufferSettings::default().write_capacity());
        for addr in &options.listen {
            service.add_listener(ListenerConfig::tcp(addr.to_string()).l4_buffer(buffers()));
        }
        for listener in &certs {
            // No paths: the resolver gives every handshake its certificate.
            let mut tls = TlsSettings::intermediate("", "")
                .map_err(|e| ServerError::TlsSettings { listen: listener.listen(), reason: e.to_string() })?;
            tls.set_cert_resolver(listener.clone());
            tls.enable_h2();
            service.add_listener(ListenerConfig::tcp(listener.listen().to_string()).tls(tls).l4_buffer(buffers()));
        }
        service.threads = Some(options.threads.max(1));
        server.add_service(service);
        let (trigger, _) = watch::channel(None);
        Ok(ProxyServer { server, trigger, certs })
    }

    /// Re-reads the TLS listeners' certificates when their files change (run it with
    /// [`CertWatch::run`]).
    pub fn cert_watch(&self) -> CertWatch {
        CertWatch::new(&self.certs)
    }

    /// A handle that stops the server.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.trigger.clone())
    }

    /// Execution phases of the server (to learn when listeners closed).
    pub fn phases(&self) -> tokio::sync::broadcast::Receiver<pingora::server::ExecutionPhase> {
        self.server.watch_execution_phase()
    }

    /// Runs until the shutdown handle fires. Blocks the calling thread, which must not be inside a tokio
    /// runtime.
    pub fn run(self) {
        let signal = Signal(self.trigger.subscribe());
        self.server.run(RunArgs { shutdown_signal: Box::new(signal) });
    }
}
