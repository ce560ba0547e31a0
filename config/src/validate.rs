//! Semantic checks that turn the external [`ConfigFile`] into the internal [`Config`], collecting every
//! problem instead of stopping at the first.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::diagnostic::Diagnostic;
use crate::file::{
    AuthMode, AuthSection, ConfigFile, DriverKind, FlowSettings, FlowSpec, KeepWarmSpec, NodeKind, NodeSpec, NotificationKind,
    NotificationSpec, OnFailure, PublicStatus, ReadySpec, SavingsSection, SmtpSection, SmtpTls, TlsListenerSection, TracingSection,
    UpstreamProtocol, WebhookFormat,
};
use crate::model::{
    Auth, Binding, CertificatePaths, Config, Flow, FlowOrigin, Glob, HostPattern, HostPort, IgnoreRules, Node, NotificationRoute,
    OidcProvider, Probe, ProcessSpec, Saml, Savings, Secret, Server, Smtp, StoreUrl, TlsListener, Tracing, Upstream, UpstreamTls, Workload,
    WorkloadId, WorkloadSpec,
};
use crate::schedule::{Cron, KeepWarm};
use crate::source::is_placeholder;

/// Built-in defaults, used where neither `[defaults]` nor the flow sets a value.
pub mod defaults {
    use std::time::Duration;

    /// Proxy listener.
    pub const LISTEN: &str = "0.0.0.0:8080";
    /// Admin listener.
    pub const ADMIN_LISTEN: &str = "127.0.0.1:9090";
    /// Store URL.
    pub const STORE: &str = "sqlite://leannodes.db";
    /// `idle_after`.
    pub const IDLE_AFTER: Duration = Duration::from_secs(15 * 60);
    /// `hold_timeout`.
    pub const HOLD_TIMEOUT: Duration = Duration::from_secs(120);
    /// `fast_hold`.
    pub const FAST_HOLD: Duration = Duration::from_secs(20);
    /// `max_held`.
    pub const MAX_HELD: usize = 10_000;
    /// `node_timeout`.
    pub const NODE_TIMEOUT: Duration = Duration::from_secs(300);
    /// `keep_warm[].ahead`: how long before a window the wake starts.
    pub const KEEP_WARM_AHEAD: Duration = Duration::from_secs(120);
    /// `shutdown_grace`.
    pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
    /// `request_head_timeout`.
    pub const REQUEST_HEAD_TIMEOUT: Duration = Duration::from_secs(30);
    /// `claim_ttl`.
    pub const CLAIM_TTL: Duration = Duration::from_secs(15);
    /// `activity_flush`.
    pub const ACTIVITY_FLUSH: Duration = Duration::from_secs(5);
    /// `session_ttl`.
    pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
    /// `invitation_ttl`.
    pub const INVITATION_TTL: Duration = Duration::from_secs(72 * 3600);
}

/// Collects diagnostics, dropping those at pointers already reported by the structural checks.
struct Checker<'a> {
    covered: &'a [String],
    out: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn error(&mut self, pointer: impl Into<String>, message: impl Into<String>, help: impl Into<String>) {
        let pointer = pointer.into();
        let message = message.into();
        // A message naming a placeholder is a consequence of a problem already reported.
        let covered = self.covered.iter().any(|c| match c.strip_suffix("/*") {
            Some(prefix) => pointer.starts_with(prefix),
            None => *c == pointer,
        });
        if !covered && !message.contains('\u{1}') {
            self.out.push(Diagnostic::new(pointer, message, help));
        }
    }

    fn duration(&mut self, pointer: String, value: Option<&String>, fallback: Duration) -> Duration {
        let Some(text) = value else { return fallback };
        match humantime::parse_duration(text.trim()) {
            Ok(d) if !d.is_zero() => d,
            Ok(_) => {
                let key = pointer.rsplit('/').next().unwrap_or_default().to_string();
                self.error(pointer, format!("`{key}` must be longer than zero"), "use a positive duration such as \"90s\" or \"15m\"");
                fallback
            }
            Err(e) => {
                let key = pointer.rsplit('/').next().unwrap_or_default().to_string();
                self.error(
                    pointer,
                    format!("`{key}` is not a duration: \"{text}\" ({e})"),
                    "write a duration such as \"500ms\", \"90s\", \"15m\" or \"1h 30m\"",
                );
                fallback
            }
        }
    }
}

/// Validates `file`. `base_dir` is the folder relative paths are resolved against; `covered` lists the
/// pointers whose problems were already reported; `origins` maps the index of each flow that is not the
/// file's own to where it comes from.
pub(crate) fn validate(
    file: &ConfigFile,
    base_dir: &Path,
    covered: &[String],
    origins: &BTreeMap<usize, FlowOrigin>,
) -> Result<Config, Vec<Diagnostic>> {
    let mut c = Checker { covered, out: Vec::new() };
    let server = check_server(&mut c, file, base_dir);
    let inherited = file.defaults.clone().unwrap_or_default();
    let inherited = Settings::resolve(&mut c, "/defaults", &inherited, None);

    let mut flows = Vec::new();
    let mut flow_names: HashMap<&str, usize> = HashMap::new();
    for (i, spec) in file.flow.iter().enumerate() {
        let at = format!("/flow/{i}");
        if spec.name.is_empty() {
            // Optional in the schema (a `Flow` resource takes its object's name), required in a file.
            c.error(at.clone(), "missing required key `name` in [[flow]]", "add `name = …` to this table (a unique name)");
        } else if !is_placeholder(&spec.name) {
            if !matches!(origins.get(&i), Some(FlowOrigin::TestSession { .. })) {
                check_name(&mut c, &format!("{at}/name"), "flow", &spec.name);
            }
            if let Some(first) = flow_names.get(spec.name.as_str()) {
                c.error(
                    format!("{at}/name"),
                    format!("duplicate flow name `{}` (also flow #{} in this file)", spec.name, first + 1),
                    "give every flow a unique name",
                );
            } else {
                flow_names.insert(&spec.name, i);
            }
        }
        flows.push(check_flow(&mut c, &at, spec, &inherited, server.driver, base_dir, origins.get(&i).unwrap_or(&FlowOrigin::File)));
    }
    check_overlapping_bindings(&mut c, &file.flow);
    check_shared_process_nodes(&mut c, &file.flow);

    let notifications = check_notifications(&mut c, &file.notification, base_dir);

    if c.out.is_empty() {
        Ok(Config {
            server,
            flows: flows.into_iter().map(Arc::new).collect(),
            notifications: notifications.into_iter().map(Arc::new).collect(),
        })
    } else {
        Err(c.out)
    }
}

fn check_notifications(c: &mut Checker<'_>, raw: &[NotificationSpec], base_dir: &Path) -> Vec<NotificationRoute> {
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut out = Vec::new();
    for (i, spec) in raw.iter().enumerate() {
        let at = format!("/notification/{i}");
        if let Some(first) = names.insert(&spec.name, i) {
            c.error(
                format!("{at}/name"),
                format!("duplicate notification route `{}` (also #{})", spec.name, first + 1),
                "give every route a unique name",
            );
        }
        out.extend(check_notification(c, &at, spec, Some(base_dir)));
    }
    out
}

/// Validates a notification route given through the API: its secrets are taken as written (an API
/// caller must not make the server read its environment or its files). Pointers are relative to the
/// route (`/url`, `/headers/Authorization`).
pub(crate) fn api_notification(spec: &NotificationSpec) -> Result<NotificationRoute, Vec<Diagnostic>> {
    let mut c = Checker { covered: &[], out: Vec::new() };
    let route = check_notification(&mut c, "", spec, None);
    match route {
        Some(route) if c.out.is_empty() => Ok(route),
        _ => Err(c.out),
    }
}

/// One route; secrets are resolved (`env:`, `file:` relative to `base_dir`) when `base_dir` is given,
/// else taken literally.
fn check_notification(c: &mut Checker<'_>, at: &str, spec: &NotificationSpec, base_dir: Option<&Path>) -> Option<NotificationRoute> {
    check_name(c, &format!("{at}/name"), "notification route", &spec.name);
    let format = match (spec.kind, spec.format) {
        (NotificationKind::Webhook, format) => format.unwrap_or(WebhookFormat::Generic),
        (_, None) => WebhookFormat::Generic,
        (kind, Some(_)) => {
            c.error(
                format!("{at}/format"),
                format!("`format` is for `kind = \"webhook\"`; a {kind:?} route has its own payload"),
                "remove `format`, or use `kind = \"webhook\"` with this format",
            );
            WebhookFormat::Generic
        }
    };
    let read = |c: &mut Checker<'_>, pointer: String, text: &str| match base_dir {
        Some(dir) => secret(c, &pointer, text, dir),
        None if text.is_empty() => {
            c.error(pointer, "the secret is empty", "give the value");
            None
        }
        None => Some(Secret::new(text)),
    };
    let url = read(c, format!("{at}/url"), &spec.url);
    if let Some(u) = &url {
        let value = u.expose();
        let valid = (value.starts_with("https://") || value.starts_with("http://")) && value.len() > "https://".len();
        if !valid {
            // The value is a secret: the message describes it without repeating it.
            let help = if base_dir.is_some() {
                "give the endpoint's full URL (or env:NAME / file:PATH holding it)"
            } else {
                "give the endpoint's full URL"
            };
            c.error(format!("{at}/url"), "`url` is not an http:// or https:// URL", help);
        }
    }
    let mut headers = Vec::new();
    for (name, value) in &spec.headers {
        let valid_name = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
        if !valid_name {
            c.error(format!("{at}/headers/{name}"), format!("`{name}` is not a header name"), "use letters, digits, `-` and `_`");
        }
        if let Some(v) = read(c, format!("{at}/headers/{name}"), value) {
            headers.push((name.clone(), v));
        }
    }
    let routing_key = spec.routing_key.as_ref().and_then(|k| read(c, format!("{at}/routing_key"), k));
    if format == WebhookFormat::Pagerduty && spec.routing_key.is_none() {
        c.error(
            if at.is_empty() { "/routing_key".to_string() } else { at.to_string() },
            "a PagerDuty route needs `routing_key`",
            "add `routing_key` (the integration key of an Events API v2 service)",
        );
    }
    Some(NotificationRoute {
        name: spec.name.clone(),
        kind: spec.kind,
        format,
        url: url?,
        headers,
        routing_key,
        events: spec.events.clone().unwrap_or_default(),
        flows: spec.flows.clone().unwrap_or_default(),
    })
}

fn check_server(c: &mut Checker<'_>, file: &ConfigFile, base_dir: &Path) -> Server {
    let raw = file.server.clone().unwrap_or_default();
    let listen = match &raw.listen {
        None => vec![parse_addr(defaults::LISTEN)],
        Some(list) => {
            if list.is_empty() {
                c.error(
                    "/server/listen",
                    "`listen` is empty: the proxy would accept nothing",
                    "list at least one address, e.g. listen = [\"0.0.0.0:8080\"]",
                );
            }
            list.iter().enumerate().filter_map(|(i, a)| socket_addr(c, &format!("/server/listen/{i}"), a)).collect()
        }
    };
    let admin_listen = raw
        .admin_listen
        .as_ref()
        .and_then(|a| socket_addr(c, "/server/admin_listen", a))
        .unwrap_or_else(|| parse_addr(defaults::ADMIN_LISTEN));
    let check_listen = raw.check_listen.as_ref().and_then(|a| socket_addr(c, "/server/check_listen", a));
    let ext_authz_listen = raw.ext_authz_listen.as_ref().and_then(|a| socket_addr(c, "/server/ext_authz_listen", a));
    let check_allows_unmatched = raw.check_unmatched != Some(crate::file::Unmatched::Deny);
    let store = raw.store.as_deref().unwrap_or(defaults::STORE);
    let store = match StoreUrl::parse(store, base_dir) {
        Some(url) => url,
        None => {
            c.error(
                "/server/store",
                format!("unsupported store URL \"{store}\""),
                "use sqlite://PATH, postgres://USER@HOST/DB or dynamodb://TABLE?region=REGION",
            );
            StoreUrl::Sqlite(base_dir.join("leannodes.db"))
        }
    };
    let default_upstream = raw.default_upstream.as_ref().and_then(|u| {
        let parsed = HostPort::parse(u);
        if parsed.is_none() {
            c.error(
                "/server/default_upstream",
                format!("`default_upstream` is not a host:port: \"{u}\""),
                "write it as \"10.0.0.9:80\" or \"backend.internal:8080\"",
            );
        }
        parsed
    });
    let shutdown_grace = c.duration("/server/shutdown_grace".into(), raw.shutdown_grace.as_ref(), defaults::SHUTDOWN_GRACE);
    let request_head_timeout =
        c.duration("/server/request_head_timeout".into(), raw.request_head_timeout.as_ref(), defaults::REQUEST_HEAD_TIMEOUT);
    if request_head_timeout.is_zero() {
        c.error(
            "/server/request_head_timeout",
            "`request_head_timeout` is 0: every connection would be answered 408",
            "use a few seconds, e.g. \"30s\"",
        );
    }
    let claim_ttl = c.duration("/server/claim_ttl".into(), raw.claim_ttl.as_ref(), defaults::CLAIM_TTL);
    if claim_ttl < Duration::from_secs(1) {
        c.error("/server/claim_ttl", "`claim_ttl` is below 1s: leases would expire between renewals", "use a few seconds, e.g. \"15s\"");
    }
    let activity_flush = c.duration("/server/activity_flush".into(), raw.activity_flush.as_ref(), defaults::ACTIVITY_FLUSH);
    if activity_flush < Duration::from_millis(100) {
        c.error("/server/activity_flush", "`activity_flush` is below 100ms", "use a few seconds, e.g. \"5s\"");
    }
    if let Some(id) = raw.replica_id.as_deref() {
        check_name(c, "/server/replica_id", "replica", id);
    }
    let sources = raw.flows_from.clone().unwrap_or_else(|| vec![crate::file::FlowSource::File]);
    let flows_from_crd = sources.contains(&crate::file::FlowSource::Crd);
    let flows_from_file = sources.contains(&crate::file::FlowSource::File);
    if sources.is_empty() {
        c.error("/server/flows_from", "`flows_from` is empty: there would be no flows", "use [\"file\"], [\"crd\"] or both");
    }
    if flows_from_crd && raw.driver != Some(DriverKind::Kubernetes) {
        c.error(
            "/server/flows_from",
            "`flows_from` includes \"crd\", which needs the Kubernetes driver",
            "set driver = \"kubernetes\" in [server]",
        );
    }
    let threads = raw.threads.and_then(|t| usize::try_from(t).ok());
    let check_token = raw.check_token.as_ref().and_then(|t| secret(c, "/server/check_token", t, base_dir));
    let callout_gateway = raw.callout_gateway.as_ref().and_then(|name| {
        let kind = name.parse::<crate::model::GatewayKind>().ok();
        if kind.is_none() {
            c.error(
                "/server/callout_gateway",
                format!("unknown gateway \"{name}\""),
                format!("use one of {}", crate::model::GatewayKind::names()),
            );
        }
        kind
    });
    if let Some(token) = &check_token {
        let value = token.expose();
        if value.len() < 16 || !value.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\'' | b'\\')) {
            c.error(
                "/server/check_token",
                "`check_token` must be at least 16 printable characters without spaces or quotes",
                "generate one, e.g. `openssl rand -hex 32`, and give it as \"env:LEANNODES_CHECK_TOKEN\"",
            );
        }
    }
    let auth = check_auth(c, raw.auth.clone().unwrap_or_default(), admin_listen, base_dir);
    let smtp = raw.smtp.as_ref().map(|s| check_smtp(c, s, base_dir));
    let savings = check_savings(c, raw.savings.as_ref());
    let tracing = raw.tracing.as_ref().and_then(|t| check_tracing(c, t, base_dir));
    let tls = check_tls_listeners(c, &raw.tls, base_dir);
    let mut taken: Vec<SocketAddr> = listen.iter().copied().chain([admin_listen]).chain(check_listen).chain(ext_authz_listen).collect();
    for (i, l) in tls.iter().enumerate() {
        if taken.contains(&l.listen) {
            c.error(
                format!("/server/tls/{i}/listen"),
                format!("{} is already used by another listener", l.listen),
                "give every listener its own port",
            );
        }
        taken.push(l.listen);
    }
    Server {
        listen,
        admin_listen,
        check_listen,
        ext_authz_listen,
        check_allows_unmatched,
        store,
        driver: raw.driver.unwrap_or(DriverKind::Process),
        default_upstream,
        threads,
        shutdown_grace,
        request_head_timeout,
        flows_from_crd,
        flows_from_file,
        replica_id: raw.replica_id.clone(),
        claim_ttl,
        activity_flush,
        check_token,
        callout_gateway,
        public_status: raw.public_status.unwrap_or(PublicStatus::Progress),
        auth,
        smtp,
        savings,
        tracing,
        tls,
    }
}

fn check_tls_listeners(c: &mut Checker<'_>, raw: &[TlsListenerSection], base_dir: &Path) -> Vec<TlsListener> {
    let mut out = Vec::with_capacity(raw.len());
    for (i, l) in raw.iter().enumerate() {
        let at = format!("/server/tls/{i}");
        let listen = socket_addr(c, &format!("{at}/listen"), &l.listen);
        if l.certs.is_empty() {
            c.error(
                format!("{at}/certs"),
                "a TLS listener needs at least one certificate",
                "add certs = [{ cert = \"/tls/tls.crt\", key = \"/tls/tls.key\" }] (the first one is the default)",
            );
        }
        let mut certs = Vec::with_capacity(l.certs.len());
        for (j, pair) in l.certs.iter().enumerate() {
            for (field, value) in [("cert", &pair.cert), ("key", &pair.key)] {
                if value.trim().is_empty() {
                    c.error(format!("{at}/certs/{j}/{field}"), format!("`{field}` is empty"), "give the path of a PEM file");
                }
            }
            certs.push(CertificatePaths { cert: base_dir.join(&pair.cert), key: base_dir.join(&pair.key) });
        }
        if let Some(listen) = listen {
            out.push(TlsListener { listen, certs });
        }
    }
    out
}

fn check_tracing(c: &mut Checker<'_>, raw: &TracingSection, base_dir: &Path) -> Option<Tracing> {
    let base = raw.otlp.trim().trim_end_matches('/');
    if !(base.starts_with("http://") || base.starts_with("https://")) || base.len() <= "https://".len() {
        c.error(
            "/server/tracing/otlp",
            format!("`otlp` is not an http:// or https:// URL: \"{}\"", raw.otlp),
            "give the collector's OTLP/HTTP base URL, e.g. \"http://otel-collector:4318\"",
        );
        return None;
    }
    let headers = raw
        .headers
        .iter()
        .filter_map(|(n, v)| secret(c, &format!("/server/tracing/headers/{n}"), v, base_dir).map(|v| (n.clone(), v)))
        .collect();
    let endpoint = if base.ends_with("/v1/traces") { base.to_string() } else { format!("{base}/v1/traces") };
    Some(Tracing { endpoint, headers, service_name: raw.service_name.clone().unwrap_or_else(|| "leannodes".into()) })
}

/// A number that must be finite and at least `min`; `None` (after reporting) otherwise.
fn finite(c: &mut Checker<'_>, pointer: &str, value: Option<f64>, min: f64) -> Option<f64> {
    let v = value?;
    if v.is_finite() && v >= min {
        return Some(v);
    }
    let key = pointer.rsplit('/').next().unwrap_or_default().to_string();
    c.error(
        pointer,
        format!("`{key}` must be a number of at least {min}, not {v}"),
        format!("write a plain number such as `{}`", min.max(1.0)),
    );
    None
}

fn check_savings(c: &mut Checker<'_>, raw: Option<&SavingsSection>) -> Savings {
    let base = Savings::default();
    let Some(raw) = raw else { return base };
    Savings {
        node_hourly_cost: finite(c, "/server/savings/node_hourly_cost", raw.node_hourly_cost, 0.0).unwrap_or(base.node_hourly_cost),
        node_cpu: finite(c, "/server/savings/node_cpu", raw.node_cpu, 0.001).unwrap_or(base.node_cpu),
        currency: raw.currency.clone().unwrap_or(base.currency),
    }
}

/// Reads a secret: `env:NAME` (an environment variable), `file:PATH` (a file, relative to the config
/// file's folder, one trailing newline removed) or the value itself.
fn secret(c: &mut Checker<'_>, pointer: &str, text: &str, base_dir: &Path) -> Option<Secret> {
    let value = if let Some(name) = text.strip_prefix("env:") {
        match std::env::var(name) {
            Ok(v) => v,
            Err(_) => {
                c.error(pointer, format!("environment variable `{name}` is not set"), format!("export {name}=… before starting LeanNodes"));
                return None;
            }
        }
    } else if let Some(path) = text.strip_prefix("file:") {
        let path = base_dir.join(path);
        match std::fs::read_to_string(&path) {
            Ok(v) => v.strip_suffix('\n').map(|v| v.strip_suffix('\r').unwrap_or(v)).unwrap_or(&v).to_string(),
            Err(e) => {
                c.error(pointer, format!("cannot read secret file {}: {e}", path.display()), "check the path and its permissions");
                return None;
            }
        }
    } else {
        text.to_string()
    };
    if value.is_empty() {
        c.error(pointer, "the secret is empty", "give a non-empty value, \"env:NAME\" or \"file:PATH\"");
        return None;
    }
    Some(Secret::new(value))
}

fn check_auth(c: &mut Checker<'_>, raw: AuthSection, admin_listen: SocketAddr, base_dir: &Path) -> Auth {
    let mode = raw.mode.unwrap_or(AuthMode::Password);
    if mode == AuthMode::None && !admin_listen.ip().is_loopback() {
        c.error(
            "/server/auth/mode",
            format!("auth mode \"none\" would let anyone who reaches {admin_listen} administer LeanNodes"),
            "use mode = \"password\" (the default), or bind admin_listen to a loopback address such as \"127.0.0.1:9090\"",
        );
    }
    let session_ttl = c.duration("/server/auth/session_ttl".into(), raw.session_ttl.as_ref(), defaults::SESSION_TTL);
    if session_ttl < Duration::from_secs(60) {
        c.error("/server/auth/session_ttl", "`session_ttl` is below one minute", "use e.g. \"12h\"");
    }
    let invitation_ttl = c.duration("/server/auth/invitation_ttl".into(), raw.invitation_ttl.as_ref(), defaults::INVITATION_TTL);
    let external_url = match &raw.external_url {
        None => format!("http://{admin_listen}"),
        Some(url) => {
            let ok = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://")).is_some_and(|rest| !rest.is_empty());
            if !ok {
                c.error(
                    "/server/auth/external_url",
                    format!("`external_url` is not an http(s) URL: \"{url}\""),
                    "write it as \"https://leannodes.example.com\"",
                );
            }
            url.trim_end_matches('/').to_string()
        }
    };
    let mut names = std::collections::HashSet::new();
    let mut oidc = Vec::new();
    for (i, p) in raw.oidc.iter().enumerate() {
        let at = format!("/server/auth/oidc/{i}");
        check_name(c, &format!("{at}/name"), "OIDC provider", &p.name);
        if !names.insert(p.name.clone()) {
            c.error(format!("{at}/name"), format!("duplicate OIDC provider name `{}`", p.name), "give every provider a unique name");
        }
        if !(p.issuer.starts_with("https://") || p.issuer.starts_with("http://")) {
            c.error(
                format!("{at}/issuer"),
                format!("`issuer` is not an http(s) URL: \"{}\"", p.issuer),
                "write the issuer URL exactly as the provider publishes it",
            );
        }
        let client_secret = secret(c, &format!("{at}/client_secret"), &p.client_secret, base_dir);
        check_role_map(c, &format!("{at}/role_map"), &p.role_map);
        oidc.push(OidcProvider {
            name: p.name.clone(),
            label: p.label.clone().unwrap_or_else(|| p.name.clone()),
            issuer: p.issuer.trim_end_matches('/').to_string(),
            client_id: p.client_id.clone(),
            client_secret: client_secret.unwrap_or_else(|| Secret::new("")),
            groups_claim: p.groups_claim.clone().unwrap_or_else(|| "groups".into()),
            scopes: p.scopes.clone(),
            role_map: p.role_map.clone(),
        });
    }
    let saml = raw.saml.as_ref().map(|raw| {
        let idp_metadata = base_dir.join(&raw.idp_metadata);
        if !idp_metadata.is_file() {
            c.error(
                "/server/auth/saml/idp_metadata",
                format!("the IdP metadata file {} does not exist", idp_metadata.display()),
                "download the identity provider's metadata XML and give its path",
            );
        }
        if raw.entity_id.trim().is_empty() {
            c.error(
                "/server/auth/saml/entity_id",
                "`entity_id` is empty",
                "use this service provider's URL, e.g. \"https://leannodes.example.com/saml\"",
            );
        }
        check_role_map(c, "/server/auth/saml/role_map", &raw.role_map);
        Saml {
            idp_metadata,
            entity_id: raw.entity_id.clone(),
            label: raw.label.clone().unwrap_or_else(|| "SAML".into()),
            groups_attribute: raw.groups_attribute.clone().unwrap_or_else(|| "groups".into()),
            email_attribute: raw.email_attribute.clone(),
            role_map: raw.role_map.clone(),
        }
    });
    Auth { mode, session_ttl, external_url, invitation_ttl, oidc, saml }
}

fn check_role_map(c: &mut Checker<'_>, at: &str, map: &BTreeMap<String, String>) {
    for (group, role) in map {
        if role.trim().is_empty() {
            c.error(
                format!("{at}/{group}"),
                format!("group `{group}` maps to an empty role"),
                "name a role: admin, operator, editor, viewer or a custom role",
            );
        }
    }
}

fn check_smtp(c: &mut Checker<'_>, raw: &SmtpSection, base_dir: &Path) -> Smtp {
    let tls = raw.tls.unwrap_or(SmtpTls::Starttls);
    if !raw.from.contains('@') {
        c.error(
            "/server/smtp/from",
            format!("`from` is not an e-mail address: \"{}\"", raw.from),
            "write it as \"LeanNodes <leannodes@example.com>\"",
        );
    }
    if raw.password.is_some() != raw.username.is_some() {
        c.error("/server/smtp", "`username` and `password` go together", "give both, or neither");
    }
    let password = raw.password.as_ref().and_then(|p| secret(c, "/server/smtp/password", p, base_dir));
    let port = raw.port.unwrap_or(match tls {
        SmtpTls::Starttls => 587,
        SmtpTls::Tls => 465,
        SmtpTls::None => 25,
    });
    Smtp { host: raw.host.clone(), port, tls, credentials: raw.username.clone().zip(password), from: raw.from.clone() }
}

fn parse_addr(s: &str) -> SocketAddr {
    s.parse().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
}

fn socket_addr(c: &mut Checker<'_>, pointer: &str, text: &str) -> Option<SocketAddr> {
    let parsed = text.parse::<SocketAddr>().ok();
    if parsed.is_none() {
        c.error(
            pointer,
            format!("not a listen address: \"{text}\""),
            "write an IP address and a port, e.g. \"0.0.0.0:8080\" or \"[::]:8080\"",
        );
    }
    parsed
}

fn check_name(c: &mut Checker<'_>, pointer: &str, what: &str, name: &str) {
    if !valid_name(name) {
        c.error(pointer, format!("invalid {what} name \"{name}\""), NAME_HELP);
    }
}

/// How to write a name.
pub(crate) const NAME_HELP: &str = "use letters, digits, `-`, `_` and `.`, starting with a letter or digit";

/// Whether `name` is a valid flow, node or replica name.
pub(crate) fn valid_name(name: &str) -> bool {
    name.chars().next().is_some_and(|ch| ch.is_ascii_alphanumeric())
        && name.chars().all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'))
}

/// Settings after inheritance.
#[derive(Clone)]
struct Settings {
    idle_after: Duration,
    hold_timeout: Duration,
    fast_hold: Duration,
    max_held: NonZeroUsize,
    on_failure: OnFailure,
    node_timeout: Duration,
}

impl Settings {
    fn resolve(c: &mut Checker<'_>, at: &str, raw: &FlowSettings, parent: Option<&Settings>) -> Settings {
        let base = parent.cloned().unwrap_or(Settings {
            idle_after: defaults::IDLE_AFTER,
            hold_timeout: defaults::HOLD_TIMEOUT,
            fast_hold: defaults::FAST_HOLD,
            max_held: NonZeroUsize::new(defaults::MAX_HELD).unwrap_or(NonZeroUsize::MIN),
            on_failure: OnFailure::Rollback,
            node_timeout: defaults::NODE_TIMEOUT,
        });
        Settings {
            idle_after: c.duration(format!("{at}/idle_after"), raw.idle_after.as_ref(), base.idle_after),
            hold_timeout: c.duration(format!("{at}/hold_timeout"), raw.hold_timeout.as_ref(), base.hold_timeout),
            fast_hold: c.duration(format!("{at}/fast_hold"), raw.fast_hold.as_ref(), base.fast_hold),
            max_held: raw.max_held.and_then(|n| usize::try_from(n).ok()).and_then(NonZeroUsize::new).unwrap_or(base.max_held),
            on_failure: raw.on_failure.unwrap_or(base.on_failure),
            node_timeout: c.duration(format!("{at}/node_timeout"), raw.node_timeout.as_ref(), base.node_timeout),
        }
    }
}

fn check_flow(
    c: &mut Checker<'_>,
    at: &str,
    spec: &FlowSpec,
    inherited: &Settings,
    driver: DriverKind,
    base_dir: &Path,
    origin: &FlowOrigin,
) -> Flow {
    let tenant = origin.tenant();
    let settings = Settings::resolve(c, at, &spec.settings, Some(inherited));
    let bindings = check_bindings(c, at, spec);
    let ignore = spec
        .ignore
        .as_ref()
        .map(|i| IgnoreRules { user_agents: i.user_agents.iter().map(Glob::new).collect(), paths: i.paths.iter().map(Glob::new).collect() })
        .unwrap_or_default();

    // Nodes: names first, so `after` can refer to any node regardless of order.
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (j, node) in spec.node.iter().enumerate() {
        if is_placeholder(&node.name) {
            continue;
        }
        check_name(c, &format!("{at}/node/{j}/name"), "node", &node.name);
        if index.contains_key(node.name.as_str()) {
            c.error(
                format!("{at}/node/{j}/name"),
                format!("duplicate node name `{}` in flow `{}`", node.name, spec.name),
                "give every node of a flow a unique name",
            );
        } else {
            index.insert(&node.name, j);
        }
    }
    let mut edges: Vec<Vec<usize>> = Vec::with_capacity(spec.node.len());
    for (j, node) in spec.node.iter().enumerate() {
        let mut after = Vec::new();
        for (k, dep) in node.after.iter().enumerate() {
            match index.get(dep.as_str()) {
                Some(d) => after.push(*d),
                None => c.error(
                    format!("{at}/node/{j}/after/{k}"),
                    format!("`after` names unknown node `{dep}` in flow `{}`", spec.name),
                    format!("use one of the flow's nodes ({}) or add a node named `{dep}`", sorted_names(&index)),
                ),
            }
        }
        edges.push(after);
    }
    let order = match topological_order(&edges) {
        Ok(order) => order,
        Err(cycle) => {
            let names: Vec<&str> = cycle.iter().map(|i| spec.node[*i].name.as_str()).collect();
            let first = cycle[0];
            c.error(
                format!("{at}/node/{first}/after"),
                format!("dependency cycle in flow `{}`: {}", spec.name, names.join(" → ")),
                "remove one of these `after` edges so the nodes can start in order",
            );
            (0..spec.node.len()).collect()
        }
    };
    let position: Vec<usize> = {
        let mut p = vec![0; order.len()];
        for (new, old) in order.iter().enumerate() {
            p[*old] = new;
        }
        p
    };

    let mut nodes = Vec::with_capacity(spec.node.len());
    for &j in &order {
        let node_at = format!("{at}/node/{j}");
        let raw = &spec.node[j];
        let workload = check_workload(c, &node_at, &spec.name, raw, driver, base_dir, tenant);
        let timeout = c.duration(format!("{node_at}/timeout"), raw.timeout.as_ref(), settings.node_timeout);
        let mut after: Vec<usize> = edges[j].iter().map(|d| position[*d]).collect();
        after.sort_unstable();
        after.dedup();
        let cpu = finite(c, &format!("{node_at}/cpu"), raw.cpu, 0.0);
        let max_concurrency = raw.max_concurrency.and_then(|n| {
            let limit = usize::try_from(n).ok().and_then(NonZeroUsize::new);
            if limit.is_none() {
                c.error(
                    format!("{node_at}/max_concurrency"),
                    "max_concurrency must be at least 1",
                    "remove it for no limit, or give 1 or more",
                );
            }
            limit
        });
        nodes.push(Node { name: raw.name.clone(), workload: Arc::new(workload), after, timeout, cpu, max_concurrency });
    }

    let upstream = check_upstream(c, at, spec, &nodes, tenant);
    let upstream_protocol = spec.upstream_protocol.unwrap_or_default();
    let upstream_tls = check_upstream_tls(c, at, spec, upstream_protocol, &upstream, &nodes, origin, base_dir);
    let keep_warm =
        spec.keep_warm.iter().flatten().enumerate().filter_map(|(k, w)| check_keep_warm(c, &format!("{at}/keep_warm/{k}"), w)).collect();
    Flow {
        name: spec.name.clone(),
        origin: origin.clone(),
        bindings,
        upstream,
        idle_after: settings.idle_after,
        hold_timeout: settings.hold_timeout,
        fast_hold: settings.fast_hold,
        max_held: settings.max_held,
        on_failure: settings.on_failure,
        pinned: spec.pinned.unwrap_or(false),
        disabled: spec.disabled.unwrap_or(false),
        ignore,
        keep_warm,
        upstream_protocol,
        upstream_tls,
        nodes,
    }
}

/// `upstream_tls` of a TLS upstream: the SNI name and the trusted authorities. Only flows of the
/// configuration file may name a CA file; other origins (API, `Flow` resources) give the PEM itself, so
/// a flow's author cannot make the server read its files.
#[allow(clippy::too_many_arguments)]
fn check_upstream_tls(
    c: &mut Checker<'_>,
    at: &str,
    spec: &FlowSpec,
    protocol: UpstreamProtocol,
    upstream: &Upstream,
    nodes: &[Node],
    origin: &FlowOrigin,
    base_dir: &Path,
) -> Option<UpstreamTls> {
    let raw = spec.upstream_tls.clone();
    if !protocol.tls() {
        if raw.is_some() {
            c.error(
                format!("{at}/upstream_tls"),
                format!("`upstream_tls` has no effect with upstream_protocol \"{}\"", protocol.as_str()),
                "set upstream_protocol = \"h2\" or \"h1-tls\" for a TLS upstream, or remove `upstream_tls`",
            );
        }
        return None;
    }
    let raw = raw.unwrap_or_default();
    let sni = raw.sni.as_ref().map(|s| s.trim().to_ascii_lowercase());
    if let Some(sni) = &sni {
        let ip = sni.parse::<std::net::IpAddr>().is_ok();
        let dns = !sni.is_empty()
            && sni
                .split('.')
                .all(|l| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        if !ip && !dns {
            c.error(
                format!("{at}/upstream_tls/sni"),
                format!("\"{sni}\" is not a host name or an IP address"),
                "give the name the upstream's certificate is issued for, e.g. \"api.shop.svc\"",
            );
        }
    } else if let Upstream::Node(i) = upstream {
        let kind = nodes[*i].workload.kind();
        if matches!(kind, NodeKind::Deployment | NodeKind::Statefulset) {
            c.error(
                format!("{at}/upstream_tls"),
                format!("a TLS upstream on {} node `{}` needs `upstream_tls.sni`", kind.as_str(), nodes[*i].name),
                "pod addresses are not in certificates: set upstream_tls = { sni = \"NAME.NAMESPACE.svc\" } (the name the certificate is for)",
            );
        }
    }
    let ca = raw.ca.as_ref().and_then(|text| {
        let pointer = format!("{at}/upstream_tls/ca");
        let pem = if text.trim_start().starts_with("-----BEGIN") {
            text.as_bytes().to_vec()
        } else if !matches!(origin, FlowOrigin::File) {
            c.error(
                pointer,
                "a CA file can only be named in the configuration file",
                "paste the CA certificate's PEM text (\"-----BEGIN CERTIFICATE-----…\") as `ca`",
            );
            return None;
        } else {
            let path = base_dir.join(text);
            match std::fs::read(&path) {
                Ok(bytes) => bytes,
                Err(e) => {
                    c.error(pointer, format!("cannot read CA file {}: {e}", path.display()), "check the path and its permissions");
                    return None;
                }
            }
        };
        let certs = pem_certificates(&pem);
        if certs.is_empty() {
            c.error(
                pointer,
                "no certificate in `ca` (expected PEM blocks \"-----BEGIN CERTIFICATE-----\")",
                "give the PEM certificate(s) of the authority that signed the upstream's certificate",
            );
            return None;
        }
        Some(Arc::new(certs))
    });
    Some(UpstreamTls { sni, ca })
}

/// The DER certificates of the `CERTIFICATE` blocks of a PEM text.
fn pem_certificates(pem: &[u8]) -> Vec<Vec<u8>> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem).filter_map(Result::ok).map(|c| c.to_vec()).collect()
}

fn check_keep_warm(c: &mut Checker<'_>, at: &str, raw: &KeepWarmSpec) -> Option<KeepWarm> {
    let cron = match Cron::parse(&raw.cron) {
        Ok(cron) => Some(cron),
        Err(e) => {
            c.error(
                format!("{at}/cron"),
                format!("`cron` is not a valid schedule: {e}"),
                "write five fields, minute hour day-of-month month day-of-week, e.g. \"0 8 * * 1-5\" (weekdays at 8:00)",
            );
            None
        }
    };
    let tz_name = raw.tz.clone().unwrap_or_else(|| "UTC".into());
    let tz = match jiff::tz::TimeZone::get(&tz_name) {
        Ok(tz) => Some(tz),
        Err(_) => {
            c.error(
                format!("{at}/tz"),
                format!("`tz` names no known time zone: \"{tz_name}\""),
                "use an IANA zone name such as \"Europe/Berlin\", \"America/New_York\" or \"UTC\"",
            );
            None
        }
    };
    let length = c.duration(format!("{at}/for"), Some(&raw.length), Duration::ZERO);
    let ahead = match raw.ahead.as_deref().map(|t| humantime::parse_duration(t.trim())) {
        None => defaults::KEEP_WARM_AHEAD,
        Some(Ok(d)) => d,
        Some(Err(e)) => {
            c.error(format!("{at}/ahead"), format!("`ahead` is not a duration: {e}"), "write a duration such as \"0s\", \"2m\" or \"10m\"");
            Duration::ZERO
        }
    };
    Some(KeepWarm { cron: cron?, length: (!length.is_zero()).then_some(length)?, tz: tz?, tz_name, ahead })
}

fn sorted_names(index: &HashMap<&str, usize>) -> String {
    let mut names: Vec<&str> = index.keys().copied().filter(|n| !is_placeholder(n)).collect();
    names.sort_unstable();
    if names.is_empty() { "none yet".into() } else { names.join(", ") }
}

fn check_bindings(c: &mut Checker<'_>, at: &str, spec: &FlowSpec) -> Vec<Binding> {
    if spec.hosts.is_empty() && !c.covered.iter().any(|p| *p == format!("{at}/hosts")) {
        c.error(
            format!("{at}/hosts"),
            format!("flow `{}` has no hosts", spec.name),
            "list at least one host, e.g. hosts = [\"app.example.com\"]",
        );
    }
    let hosts: Vec<HostPattern> =
        spec.hosts.iter().enumerate().filter_map(|(i, h)| host_pattern(c, &format!("{at}/hosts/{i}"), h)).collect();
    let default_paths = vec!["/".to_string()];
    let paths = spec.paths.as_ref().unwrap_or(&default_paths);
    if paths.is_empty() {
        c.error(
            format!("{at}/paths"),
            "`paths` is empty: the flow would match nothing",
            "remove `paths` (it defaults to [\"/\"]) or list path prefixes",
        );
    }
    for (i, p) in paths.iter().enumerate() {
        if !p.starts_with('/') {
            c.error(
                format!("{at}/paths/{i}"),
                format!("path \"{p}\" does not start with `/`"),
                format!("write it as \"/{}\"", p.trim_start_matches('/')),
            );
        }
    }
    hosts
        .iter()
        .flat_map(|h| paths.iter().filter(|p| p.starts_with('/')).map(move |p| Binding { host: h.clone(), path: p.clone() }))
        .collect()
}

fn host_pattern(c: &mut Checker<'_>, pointer: &str, text: &str) -> Option<HostPattern> {
    let lower = text.to_ascii_lowercase();
    let (wildcard, name) = match lower.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, lower.as_str()),
    };
    let valid_label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if name.contains('*') {
        c.error(
            pointer,
            format!("malformed host pattern \"{text}\": `*` is only allowed as a leading `*.`"),
            "write an exact host (\"app.example.com\") or a leading wildcard (\"*.example.com\")",
        );
        return None;
    }
    if name.is_empty() || !name.split('.').all(valid_label) {
        c.error(
            pointer,
            format!("malformed host pattern \"{text}\""),
            "hosts are DNS names without scheme, port or path, e.g. \"app.example.com\" or \"*.example.com\"",
        );
        return None;
    }
    Some(if wildcard { HostPattern::Wildcard(name.to_string()) } else { HostPattern::Exact(name.to_string()) })
}

fn check_workload(
    c: &mut Checker<'_>,
    at: &str,
    flow: &str,
    raw: &NodeSpec,
    driver: DriverKind,
    base_dir: &Path,
    tenant: Option<&str>,
) -> Workload {
    let kind = raw.kind;
    if let Some(namespace) = tenant {
        if kind == NodeKind::Process {
            c.error(
                format!("{at}/kind"),
                format!(
                    "node `{}`: a Flow resource may not run local processes (they would run inside LeanNodes, with its rights)",
                    raw.name
                ),
                format!("run the workload in namespace `{namespace}` as a deployment, statefulset or job node instead"),
            );
        }
        if matches!(raw.ready, Some(ReadySpec::Exec(_))) {
            c.error(
                format!("{at}/ready/exec"),
                format!("node `{}`: a Flow resource may not use exec probes (they would run inside LeanNodes)", raw.name),
                "use an http or tcp probe",
            );
        }
    }
    if raw.command.is_some() && kind != NodeKind::Process {
        c.error(
            format!("{at}/command"),
            format!("only process nodes take `command`; `{}` is a {} node", raw.name, kind.as_str()),
            "remove `command` or set kind = \"process\"",
        );
    }
    if raw.reference.is_some() && !kind.is_kubernetes() {
        c.error(
            format!("{at}/ref"),
            format!("only Kubernetes nodes take `ref`; `{}` is a {} node", raw.name, kind.as_str()),
            "remove `ref` or set kind to deployment, statefulset or job",
        );
    }
    if raw.replicas.is_some() && !matches!(kind, NodeKind::Deployment | NodeKind::Statefulset) {
        c.error(
            format!("{at}/replicas"),
            format!("only deployment and statefulset nodes take `replicas`; `{}` is a {} node", raw.name, kind.as_str()),
            "remove `replicas`",
        );
    }
    if (raw.env.is_some() || raw.cwd.is_some()) && kind != NodeKind::Process {
        let key = if raw.env.is_some() { "env" } else { "cwd" };
        c.error(format!("{at}/{key}"), format!("only process nodes take `{key}`"), format!("remove `{key}`"));
    }
    let probe = raw.ready.as_ref().and_then(|r| check_probe(c, &format!("{at}/ready"), r));
    let (id, spec) = match kind {
        NodeKind::Process => {
            let command = raw.command.clone().unwrap_or_default();
            if command.first().is_none_or(|p| p.trim().is_empty()) {
                let pointer = if raw.command.is_some() { format!("{at}/command") } else { at.to_string() };
                c.error(pointer, format!("process node `{}` has no `command`", raw.name), "add command = [\"program\", \"arg\", …]");
            }
            // Relative programs and paths are relative to the config file's folder by default.
            let cwd = Some(raw.cwd.as_ref().map_or_else(|| base_dir.to_path_buf(), |d| base_dir.join(d)));
            (WorkloadId::process(&raw.name), WorkloadSpec::Process(ProcessSpec { command, env: raw.env.clone().unwrap_or_default(), cwd }))
        }
        NodeKind::External => {
            if raw.ready.is_none() {
                c.error(
                    at,
                    format!("external node `{}` has no `ready` probe", raw.name),
                    "add ready = { http = \"https://…/health\" } or ready = { tcp = \"host:port\" }",
                );
            }
            (WorkloadId::external(flow, &raw.name), WorkloadSpec::External)
        }
        NodeKind::Deployment | NodeKind::Statefulset | NodeKind::Job => {
            if driver != DriverKind::Kubernetes {
                c.error(
                    format!("{at}/kind"),
                    format!("{} node `{}` needs the Kubernetes driver", kind.as_str(), raw.name),
                    "set driver = \"kubernetes\" in [server]",
                );
            }
            // A tenant's `ref = "name"` means its own namespace; another namespace is refused.
            let reference = match (tenant, raw.reference.as_deref()) {
                (Some(namespace), Some(r)) if !r.contains('/') => Some(format!("{namespace}/{r}")),
                (_, r) => r.map(str::to_string),
            };
            let parts = reference
                .as_deref()
                .and_then(|r| r.split_once('/'))
                .filter(|(ns, name)| !ns.is_empty() && !name.is_empty() && !name.contains('/'));
            if let (Some(namespace), Some((ns, _))) = (tenant, parts) {
                if ns != namespace {
                    c.error(
                        format!("{at}/ref"),
                        format!("node `{}` refers to namespace `{ns}`, but a Flow resource in `{namespace}` may only use workloads of its own namespace", raw.name),
                        format!("write ref = \"name\" (or \"{namespace}/name\") for a workload of this namespace"),
                    );
                }
            }
            let (namespace, name) = match parts {
                Some((ns, name)) => (ns.to_string(), name.to_string()),
                None => {
                    let (pointer, found) = match &raw.reference {
                        Some(r) => (format!("{at}/ref"), format!(" (found \"{r}\")")),
                        None => (at.to_string(), String::new()),
                    };
                    c.error(
                        pointer,
                        format!("{} node `{}` needs `ref = \"namespace/name\"`{found}", kind.as_str(), raw.name),
                        "name the Kubernetes object as ref = \"namespace/name\"",
                    );
                    (String::new(), raw.name.clone())
                }
            };
            (WorkloadId::kubernetes(kind, &namespace, &name), WorkloadSpec::Kubernetes { kind, namespace, name, replicas: raw.replicas })
        }
    };
    let probe = probe.or_else(|| match (kind, raw.port) {
        (NodeKind::Process, Some(port)) => Some(Probe::Tcp(HostPort { host: "127.0.0.1".into(), port })),
        _ => None,
    });
    Workload { id, spec, port: raw.port, probe }
}

fn check_probe(c: &mut Checker<'_>, at: &str, ready: &ReadySpec) -> Option<Probe> {
    match ready {
        ReadySpec::Tcp(addr) => {
            let parsed = HostPort::parse(addr).map(Probe::Tcp);
            if parsed.is_none() {
                c.error(format!("{at}/tcp"), format!("tcp probe target is not a host:port: \"{addr}\""), "write it as \"127.0.0.1:5432\"");
            }
            parsed
        }
        ReadySpec::Http(url) => {
            let ok = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://")).is_some_and(|rest| !rest.is_empty());
            if !ok {
                c.error(
                    format!("{at}/http"),
                    format!("http probe is not an http(s) URL: \"{url}\""),
                    "write it as \"http://127.0.0.1:8080/healthz\"",
                );
            }
            ok.then(|| Probe::Http(url.clone()))
        }
        ReadySpec::Exec(cmd) => {
            if cmd.first().is_none_or(|p| p.trim().is_empty()) {
                c.error(format!("{at}/exec"), "exec probe has no command", "write it as exec = [\"pg_isready\", \"-h\", \"127.0.0.1\"]");
                return None;
            }
            Some(Probe::Exec(cmd.clone()))
        }
    }
}

fn check_upstream(c: &mut Checker<'_>, at: &str, spec: &FlowSpec, nodes: &[Node], tenant: Option<&str>) -> Upstream {
    let pointer = format!("{at}/upstream");
    if tenant.is_some() && !nodes.iter().any(|n| n.name == spec.upstream) && HostPort::parse(&spec.upstream).is_some() {
        c.error(
            pointer,
            format!("upstream \"{}\" is an address; a Flow resource must send its traffic to one of its own nodes", spec.upstream),
            "name a deployment or statefulset node of this flow as `upstream`",
        );
        return Upstream::Address(HostPort { host: "invalid".into(), port: 1 });
    }
    if let Some(i) = nodes.iter().position(|n| n.name == spec.upstream) {
        let node = &nodes[i];
        if tenant.is_some() && !matches!(node.workload.kind(), NodeKind::Deployment | NodeKind::Statefulset) {
            c.error(
                pointer,
                format!(
                    "upstream `{}` is a {} node; a Flow resource sends its traffic to a deployment or statefulset of its namespace",
                    node.name,
                    node.workload.kind().as_str()
                ),
                "name a deployment or statefulset node of this flow as `upstream`",
            );
            return Upstream::Node(i);
        }
        if node.workload.kind() == NodeKind::Job {
            c.error(
                pointer,
                format!("upstream `{}` is a job node, which serves no traffic", node.name),
                "point `upstream` at a node that serves requests",
            );
        } else if node.workload.port.is_none() {
            c.error(pointer, format!("upstream node `{}` has no `port`", node.name), format!("add `port = …` to node `{}`", node.name));
        }
        return Upstream::Node(i);
    }
    if let Some(hp) = HostPort::parse(&spec.upstream) {
        return Upstream::Address(hp);
    }
    let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).filter(|n| !is_placeholder(n)).collect();
    c.error(
        pointer,
        format!("upstream \"{}\" is neither a node of flow `{}` nor a host:port", spec.upstream, spec.name),
        if names.is_empty() {
            "write a literal \"host:port\" or add the node".to_string()
        } else {
            format!("use one of the flow's nodes ({}) or a literal \"host:port\"", names.join(", "))
        },
    );
    Upstream::Address(HostPort { host: "invalid".into(), port: 1 })
}

/// Kahn's algorithm, stable in file order. On a cycle, returns one cycle as node indexes, closed
/// (first == last).
fn topological_order(edges: &[Vec<usize>]) -> Result<Vec<usize>, Vec<usize>> {
    let n = edges.len();
    let mut indegree: Vec<usize> = edges.iter().map(Vec::len).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (node, deps) in edges.iter().enumerate() {
        for &d in deps {
            dependents[d].push(node);
        }
    }
    let mut order = Vec::with_capacity(n);
    let mut ready: std::collections::BTreeSet<usize> = (0..n).filter(|i| indegree[*i] == 0).collect();
    while let Some(next) = ready.pop_first() {
        order.push(next);
        for &m in &dependents[next] {
            indegree[m] -= 1;
            if indegree[m] == 0 {
                ready.insert(m);
            }
        }
    }
    if order.len() == n {
        return Ok(order);
    }
    // Walk `after` edges among the remaining nodes until one repeats.
    let remaining: Vec<bool> = (0..n).map(|i| indegree[i] > 0).collect();
    let start = (0..n).find(|i| remaining[*i]).unwrap_or(0);
    let mut path = vec![start];
    let mut seen = vec![None; n];
    seen[start] = Some(0);
    let mut current = start;
    loop {
        let Some(&next) = edges[current].iter().find(|d| remaining[**d]) else { return Err(path) };
        if let Some(pos) = seen[next] {
            let mut cycle: Vec<usize> = path[pos..].to_vec();
            cycle.push(next);
            return Err(cycle);
        }
        seen[next] = Some(path.len());
        path.push(next);
        current = next;
    }
}

fn check_overlapping_bindings(c: &mut Checker<'_>, flows: &[FlowSpec]) {
    let mut owners: HashMap<(String, String), &str> = HashMap::new();
    for (i, flow) in flows.iter().enumerate() {
        let paths = flow.paths.clone().unwrap_or_else(|| vec!["/".into()]);
        for (h, host) in flow.hosts.iter().enumerate() {
            for path in &paths {
                let key = (host.to_ascii_lowercase(), path.clone());
                match owners.get(&key) {
                    Some(other) if *other != flow.name => c.error(
                        format!("/flow/{i}/hosts/{h}"),
                        format!("flows `{other}` and `{}` both bind host \"{host}\" with path \"{path}\"", flow.name),
                        "a host and path prefix must belong to one flow: remove it from one of them or use different paths",
                    ),
                    Some(_) => {}
                    None => {
                        owners.insert(key, &flow.name);
                    }
                }
            }
        }
    }
}

fn check_shared_process_nodes(c: &mut Checker<'_>, flows: &[FlowSpec]) {
    let mut first: BTreeMap<&str, (&str, &NodeSpec)> = BTreeMap::new();
    for (i, flow) in flows.iter().enumerate() {
        for (j, node) in flow.node.iter().enumerate() {
            if node.kind != NodeKind::Process || is_placeholder(&node.name) {
                continue;
            }
            match first.get(node.name.as_str()) {
                None => {
                    first.insert(&node.name, (&flow.name, node));
                }
                Some((other_flow, other)) if *other_flow != flow.name && !same_process(other, node) => c.error(
                    format!("/flow/{i}/node/{j}/name"),
                    format!("process node `{}` is defined differently in flows `{other_flow}` and `{}`", node.name, flow.name),
                    "process nodes with one name are one shared workload: make command, env, cwd, port and ready identical, or rename one",
                ),
                Some(_) => {}
            }
        }
    }
}

fn same_process(a: &NodeSpec, b: &NodeSpec) -> bool {
    a.command == b.command && a.env == b.env && a.cwd == b.cwd && a.port == b.port && a.ready == b.ready
}

/// The base folder of a config file.
pub(crate) fn base_dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topological_order_is_stable_and_finds_cycles() {
        // 0 ← 1, 0 ← 2, {1,2} ← 3
        assert_eq!(topological_order(&[vec![], vec![0], vec![0], vec![1, 2]]), Ok(vec![0, 1, 2, 3]));
        // 3 listed first but depends on the others.
        assert_eq!(topological_order(&[vec![1, 2], vec![3], vec![3], vec![]]), Ok(vec![3, 1, 2, 0]));
        // x(0) after z(2), z after y(1), y after x.
        assert_eq!(topological_order(&[vec![2], vec![0], vec![1]]), Err(vec![0, 2, 1, 0]));
        assert_eq!(topological_order(&[vec![0]]), Err(vec![0, 0]));
    }
}
