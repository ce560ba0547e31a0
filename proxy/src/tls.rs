//! TLS on both sides of the proxy.
//!
//! Downstream: each `[[server.tls]]` listener answers with the certificate whose DNS names match the
//! name the client asks for (SNI; exact names before wildcards), else its first certificate. The
//! certificates sit behind an `ArcSwap`: [`CertWatch`] re-reads the files and swaps a new set in when
//! they change (a rotated Kubernetes Secret), so open connections keep theirs and new handshakes get
//! the new one. A set that does not load (a half-written file, a key that does not match) is logged and
//! the previous one keeps serving. Protocols are rustls' defaults as pingora sets them: TLS 1.2 and 1.3
//! with forward-secret AEAD suites only.
//!
//! Upstream: [`UpstreamTransport`] is what a flow's `upstream_protocol` and `upstream_tls` mean for a
//! pingora peer; [`TlsFailure`] names why a TLS upstream was refused, for the 502 and the metric.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use leannodes_config::file::UpstreamProtocol;
use leannodes_config::{CertificatePaths, TlsListener};
use pingora::tls::ResolvesServerCert;
use pingora::utils::tls::WrappedX509;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::ClientHello;
use rustls::sign::CertifiedKey;

/// Why a TLS listener's certificates could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("TLS listener {listen}: {problem}")]
pub struct ListenerCertError {
    /// The listener.
    pub listen: SocketAddr,
    /// What is wrong.
    #[source]
    pub problem: CertError,
}

/// Why a certificate and key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// A file cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The certificate file holds no PEM certificate.
    #[error("no certificate in {} (expected a PEM block \"-----BEGIN CERTIFICATE-----\")", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// A certificate cannot be parsed.
    #[error("the certificate in {} cannot be parsed: {reason}", path.display())]
    BadCertificate {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        reason: String,
    },
    /// The key file holds no PEM private key.
    #[error("no private key in {} (expected a PEM block \"-----BEGIN PRIVATE KEY-----\", RSA or EC)", path.display())]
    NoKey {
        /// The file.
        path: PathBuf,
    },
    /// The key cannot be used with the certificate.
    #[error("the key in {} does not belong to the certificate in {} ({reason})", key.display(), cert.display())]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls' message.
        reason: String,
    },
}

/// A host name a certificate serves.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Name {
    Exact(String),
    /// `*.suffix`: one label before `.suffix`.
    Wildcard(String),
}

impl Name {
    fn parse(dns: &str) -> Name {
        let dns = dns.trim_end_matches('.').to_ascii_lowercase();
        match dns.strip_prefix("*.") {
            Some(suffix) => Name::Wildcard(suffix.to_string()),
            None => Name::Exact(dns),
        }
    }
}

/// One loaded certificate with the names it serves.
#[derive(Debug)]
struct Entry {
    names: Vec<Name>,
    key: Arc<CertifiedKey>,
}

/// The certificates of one listener, in configuration order (the first is the default).
#[derive(Debug)]
struct CertSet(Vec<Entry>);

impl CertSet {
    fn load(files: &[CertificatePaths]) -> Result<CertSet, CertError> {
        files.iter().map(|f| load_pair(&f.cert, &f.key)).collect::<Result<Vec<_>, _>>().map(CertSet)
    }

    fn pick(&self, server_name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let fallback = || self.0.first().map(|e| e.key.clone());
        let Some(name) = server_name.map(str::to_ascii_lowercase) else { return fallback() };
        let exact = self.0.iter().find(|e| e.names.iter().any(|n| matches!(n, Name::Exact(x) if *x == name)));
        let wildcard = || {
            let (_, parent) = name.split_once('.')?;
            self.0.iter().find(|e| e.names.iter().any(|n| matches!(n, Name::Wildcard(s) if s == parent)))
        };
        exact.or_else(wildcard).map(|e| e.key.clone()).or_else(fallback)
    }
}

fn read(path: &Path) -> Result<Vec<u8>, CertError> {
    std::fs::read(path).map_err(|source| CertError::Read { path: path.to_path_buf(), source })
}

/// Loads a PEM chain and key and checks that they belong together.
fn load_pair(cert_path: &Path, key_path: &Path) -> Result<Entry, CertError> {
    let (cert_pem, key_pem) = (read(cert_path)?, read(key_path)?);
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| CertError::BadCertificate { path: cert_path.to_path_buf(), reason: e.to_string() })?;
    let leaf = chain.first().ok_or_else(|| CertError::NoCertificate { path: cert_path.to_path_buf() })?;
    let names = dns_names(leaf).map_err(|reason| CertError::BadCertificate { path: cert_path.to_path_buf(), reason })?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| CertError::NoKey { path: key_path.to_path_buf() })?;
    let provider = rustls::crypto::ring::default_provider();
    let certified = CertifiedKey::from_der(chain, key, &provider).map_err(|e| CertError::Mismatch {
        cert: cert_path.to_path_buf(),
        key: key_path.to_path_buf(),
        reason: e.to_string(),
    })?;
    Ok(Entry { names, key: Arc::new(certified) })
}

/// The DNS names of a certificate: its subject alternative names, else its common name.
fn dns_names(der: &CertificateDer<'_>) -> Result<Vec<Name>, String> {
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
    let (_, cert) = X509Certificate::from_der(der.as_ref()).map_err(|e| e.to_string())?;
    let mut names: Vec<Name> = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::DNSName(d) => Some(Name::parse(d)),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    if names.is_empty() {
        names.extend(cert.subject().iter_common_name().filter_map(|cn| cn.as_str().ok()).map(Name::parse));
    }
    Ok(names)
}

/// The certificate resolver of one TLS listener (what rustls asks during each handshake).
#[derive(Debug)]
pub struct ListenerCerts {
    listen: SocketAddr,
    files: Vec<CertificatePaths>,
    current: ArcSwap<CertSet>,
}

impl ListenerCerts {
    /// Loads a listener's certificates; any problem is an error (nothing starts with a broken listener).
    pub fn load(listener: &TlsListener) -> Result<Arc<ListenerCerts>, ListenerCertError> {
        let set = CertSet::load(&listener.certs).map_err(|problem| ListenerCertError { listen: listener.listen, problem })?;
        Ok(Arc::new(ListenerCerts { listen: listener.listen, files: listener.certs.clone(), current: ArcSwap::from_pointee(set) }))
    }

    /// The listener's address.
    pub fn listen(&self) -> SocketAddr {
        self.listen
    }

    /// The certificate this listener presents for a client asking for `server_name`.
    pub fn certificate_for(&self, server_name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        self.current.load().pick(server_name)
    }

    /// Every file of the listener's certificates, read now (to notice changes).
    fn snapshot(&self) -> FileContents {
        self.files.iter().flat_map(|f| [&f.cert, &f.key]).map(|p| std::fs::read(p).ok()).collect()
    }
}

impl ResolvesServerCert for ListenerCerts {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.certificate_for(client_hello.server_name())
    }
}

/// The contents of a listener's certificate and key files as last read (`None`: unreadable).
type FileContents = Vec<Option<Vec<u8>>>;

/// Re-reads the certificate files of every TLS listener when they change on disk.
#[derive(Debug)]
pub struct CertWatch {
    listeners: Vec<(Arc<ListenerCerts>, FileContents)>,
}

impl CertWatch {
    /// Watches these listeners' files.
    pub fn new(listeners: &[Arc<ListenerCerts>]) -> CertWatch {
        CertWatch { listeners: listeners.iter().map(|l| (l.clone(), l.snapshot())).collect() }
    }

    /// Checks every listener's files once; a listener whose files changed gets its new certificates if
    /// they all load, else keeps the old ones (the problem is logged once per change). Returns how many
    /// listeners took new certificates.
    pub fn check(&mut self) -> usize {
        let mut swapped = 0;
        for (listener, seen) in &mut self.listeners {
            let now = listener.snapshot();
            if now == *seen {
                continue;
            }
            *seen = now;
            match CertSet::load(&listener.files) {
                Ok(set) => {
                    listener.current.store(Arc::new(set));
                    swapped += 1;
                    tracing::info!(listen = %listener.listen, "TLS certificates re-read from disk");
                }
                Err(e) => {
                    tracing::error!(listen = %listener.listen, "TLS certificates changed on disk but do not load ({e}); the previous ones stay in use")
                }
            }
        }
        swapped
    }

    /// Checks every `interval` until the future is dropped.
    pub async fn run(mut self, interval: Duration) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            // Reading files blocks; a handful of small files per tick is fine on a blocking thread.
            self = match tokio::task::spawn_blocking(move || {
                self.check();
                self
            })
            .await
            {
                Ok(watch) => watch,
                Err(_) => return,
            };
        }
    }
}

/// How a route's requests reach its upstream.
#[derive(Debug, Clone, Default)]
pub struct UpstreamTransport {
    /// The protocol.
    pub protocol: UpstreamProtocol,
    /// The name sent as SNI and verified (TLS only); `None`: the IP address connected to.
    pub sni: Option<String>,
    /// Trusted authorities instead of the system's (TLS only).
    pub ca: Option<Arc<[WrappedX509]>>,
    /// Separates pooled upstream connections by trust: pingora's pool does not tell peers with different
    /// CAs apart, so without it a flow could reuse a connection another flow's CA verified.
    pub pool_key: u64,
}

impl UpstreamTransport {
    /// The transport of a flow whose upstream is reached at `host` (the literal host of its address, when
    /// it has one). Fails when a CA certificate cannot be parsed.
    pub fn of(flow: &leannodes_config::Flow, host: Option<&str>) -> Result<UpstreamTransport, String> {
        let protocol = flow.upstream_protocol;
        let Some(tls) = flow.upstream_tls.as_ref().filter(|_| protocol.tls()) else {
            return Ok(UpstreamTransport { protocol, sni: None, ca: None, pool_key: 0 });
        };
        let ca = match &tls.ca {
            Some(certs) => {
                let mut wrapped = Vec::with_capacity(certs.len());
                for der in certs.iter() {
                    use x509_parser::prelude::{FromDer, X509Certificate};
                    X509Certificate::from_der(der).map_err(|e| format!("a certificate of upstream_tls.ca cannot be parsed: {e}"))?;
                    wrapped.push(WrappedX509::new(der.clone(), pingora::utils::tls::parse_x509));
                }
                Some(Arc::from(wrapped))
            }
            None => None,
        };
        let pool_key = {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            tls.ca.hash(&mut hasher);
            hasher.finish()
        };
        Ok(UpstreamTransport { protocol, sni: tls.sni.clone().or_else(|| host.map(str::to_string)), ca, pool_key })
    }
}

/// Why a TLS upstream's handshake failed, as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFailure {
    /// The certificate is past its validity.
    Expired,
    /// Signed by an authority that is not trusted.
    UnknownCa,
    /// Not issued for the name LeanNodes asked for.
    NameMismatch,
    /// Anything else (protocol versions, ALPN, a reset during the handshake).
    Handshake,
}

impl TlsFailure {
    /// All reasons, in label order.
    pub const ALL: [TlsFailure; 4] = [TlsFailure::Expired, TlsFailure::UnknownCa, TlsFailure::NameMismatch, TlsFailure::Handshake];

    /// Classifies a pingora error, `None` when it is not a TLS handshake failure.
    pub fn of(error: &pingora::Error) -> Option<TlsFailure> {
        if !matches!(error.etype(), pingora::ErrorType::TLSHandshakeFailure | pingora::ErrorType::InvalidCert) {
            return None;
        }
        let text = error.to_string().to_ascii_lowercase().replace([' ', '_'], "");
        Some(if text.contains("expired") {
            TlsFailure::Expired
        } else if text.contains("unknownissuer") || text.contains("unknownca") {
            TlsFailure::UnknownCa
        } else if text.contains("notvalidforname") {
            TlsFailure::NameMismatch
        } else {
            TlsFailure::Handshake
        })
    }

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            TlsFailure::Expired => "certificate_expired",
            TlsFailure::UnknownCa => "unknown_ca",
            TlsFailure::NameMismatch => "name_mismatch",
            TlsFailure::Handshake => "handshake",
        }
    }

    /// What the 502 says, with how to fix it.
    pub fn explain(self) -> &'static str {
        match self {
            TlsFailure::Expired => "the upstream's TLS certificate has expired (renew it on the backend)",
            TlsFailure::UnknownCa => {
                "the upstream's TLS certificate is signed by an authority LeanNodes does not trust (set upstream_tls.ca to its CA)"
            }
            TlsFailure::NameMismatch => {
                "the upstream's TLS certificate is not issued for the name LeanNodes asked for (set upstream_tls.sni to a name in the certificate)"
            }
            TlsFailure::Handshake => "the TLS handshake with the upstream failed (check upstream_protocol and the backend's TLS settings)",
        }
    }

    pub(crate) fn index(self) -> usize {
        TlsFailure::ALL.iter().position(|f| *f == self).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests;
