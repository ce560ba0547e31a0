//! The `ProxyHttp` implementation: classify, hold in `request_filter`, proxy, log.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use bytes::Bytes;
use leannodes_config::file::UpstreamProtocol;
use leannodes_config::{Config, PublicStatus, Workload};
use leannodes_control::{Connection, Controller, FlowHandle, FlowState, FlowStatus, RouteInstaller, SeenRequest, trace};
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::proxy::{ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;
use serde_json::json;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::access::{AccessLine, AccessLog};
use crate::answer::{self, Client, LiveStatus, STATUS_PREFIX};
use crate::balance::{Lease, Pick};
use crate::gate::{Inquiry, Verdict, shutting_down};
use crate::metrics::{FlowMetrics, HeadRefusals, Outcome};
use crate::park::{Unparked, declares_body};
use crate::routes::{Route, RouteError, RouteTable};
use crate::server::ShutdownHandle;
use crate::tls::TlsFailure;

/// Concurrent streams on one HTTP/2 upstream connection (pingora's default is 1: a connection per request).
const H2_STREAMS_PER_CONNECTION: usize = 100;

/// Upstream timeouts, always set (pingora defaults to none).
#[derive(Debug, Clone)]
pub struct UpstreamTimeouts {
    /// TCP connect.
    pub connect: Duration,
    /// Between reads of the response (not applied to upgraded connections).
    pub read: Duration,
    /// Between writes of the request.
    pub write: Duration,
    /// Idle pooled connection lifetime.
    pub idle: Duration,
}

impl Default for UpstreamTimeouts {
    fn default() -> Self {
        UpstreamTimeouts {
            connect: Duration::from_secs(2),
            read: Duration::from_secs(60),
            write: Duration::from_secs(60),
            idle: Duration::from_secs(60),
        }
    }
}

/// Shared state of the proxy tier: the current routes, the controller, shutdown.
pub struct ProxyState {
    /// The route snapshot (swapped whole on reload).
    pub routes: ArcSwap<RouteTable>,
    /// Pass-through target for unmatched hosts.
    pub default_upstream: ArcSwap<Option<SocketAddr>>,
    /// The control plane.
    pub controller: Arc<Controller>,
    /// Set when the server shuts down: held requests are answered at once.
    pub shutdown: watch::Sender<bool>,
    /// Counters for requests that match no flow.
    pub unmatched: FlowMetrics,
    /// Connections whose first request head the parker refused.
    pub refused_heads: HeadRefusals,
    /// Upstream timeouts.
    pub timeouts: UpstreamTimeouts,
    in_flight: AtomicUsize,
    /// Access lines, written off the request path.
    access: AccessLog,
    /// `[server] public_status` (changes with a reload).
    public_status: std::sync::atomic::AtomicU8,
}

impl std::fmt::Debug for ProxyState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyState").field("in_flight", &self.in_flight()).finish_non_exhaustive()
    }
}

impl ProxyState {
    /// State for these routes.
    pub fn new(
        controller: Arc<Controller>,
        routes: RouteTable,
        default_upstream: Option<SocketAddr>,
        timeouts: UpstreamTimeouts,
    ) -> ProxyState {
        ProxyState {
            routes: ArcSwap::from_pointee(routes),
            default_upstream: ArcSwap::from_pointee(default_upstream),
            controller,
            shutdown: watch::channel(false).0,
            unmatched: FlowMetrics::default(),
            refused_heads: HeadRefusals::default(),
            timeouts,
            in_flight: AtomicUsize::new(0),
            access: AccessLog::start(crate::access::QUEUE),
            public_status: std::sync::atomic::AtomicU8::new(0),
        }
    }

    /// What public surfaces show.
    pub fn public_status(&self) -> PublicStatus {
        match self.public_status.load(Ordering::Relaxed) {
            1 => PublicStatus::Detailed,
            2 => PublicStatus::Off,
            _ => PublicStatus::Progress,
        }
    }

    /// Sets what public surfaces show.
    pub fn set_public_status(&self, level: PublicStatus) {
        let n = match level {
            PublicStatus::Progress => 0,
            PublicStatus::Detailed => 1,
            PublicStatus::Off => 2,
        };
        self.public_status.store(n, Ordering::Relaxed);
    }

    /// A flow's status as the public may see it.
    pub(crate) fn shown(&self, status: &FlowStatus) -> FlowStatus {
        answer::public_view(status, self.public_status())
    }

    /// Requests being handled now (held or proxied).
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Writes the access lines still queued (up to `patience`), at shutdown.
    pub fn flush_access_log(&self, patience: Duration) {
        if !self.access.flush(patience) {
            tracing::warn!("access-log lines still queued at shutdown were not written");
        }
    }

    /// Answers every held request with 503 and refuses new holds.
    pub fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
    }
}

/// Why the proxy state could not be built at start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A route's upstream cannot be reached.
    #[error(transparent)]
    Route(#[from] RouteError),
    /// `default_upstream` does not resolve.
    #[error("cannot resolve default_upstream {target}: {reason}")]
    DefaultUpstream {
        /// The host:port.
        target: String,
        /// Why.
        reason: String,
    },
}

impl ProxyState {
    /// The state for the flows `controller` holds for `config`. Unlike a reload, an upstream that does
    /// not resolve is an error here: nothing starts.
    pub async fn start(controller: Arc<Controller>, config: &Config, timeouts: UpstreamTimeouts) -> Result<Arc<ProxyState>, StartError> {
        let flows: Vec<_> = config.flows.iter().filter_map(|f| controller.flow(&f.name)).collect();
        let endpoints = |w: &Arc<Workload>| controller.endpoints(w);
        let routes = RouteTable::build(&flows, None, &endpoints).await?;
        let default_upstream = match &config.server.default_upstream {
            Some(hp) => {
                Some(crate::routes::resolve(hp).await.map_err(|reason| StartError::DefaultUpstream { target: hp.to_string(), reason })?)
            }
            None => None,
        };
        let state = ProxyState::new(controller, routes, default_upstream, timeouts);
        state.set_public_status(config.server.public_status);
        Ok(Arc::new(state))
    }

    /// Graceful shutdown of the proxy tier: held requests are answered `503` at once, listeners close,
    /// and in-flight requests get up to `grace` to finish. Returns when none is left or the grace is over.
    pub async fn drain(&self, server: &ShutdownHandle, grace: Duration) {
        self.begin_shutdown();
        server.graceful();
        // Pingora waits out the whole grace period; when nothing is in flight any more there is no reason to.
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline && self.in_flight() > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[async_trait]
impl RouteInstaller for ProxyState {
    async fn install(&self, flows: &[Arc<FlowHandle>], config: &Config) -> Result<(), String> {
        let endpoints = |w: &Arc<Workload>| self.controller.endpoints(w);
        let routes = RouteTable::build(flows, Some(&self.routes.load()), &endpoints).await.map_err(|e| e.to_string())?;
        let default_upstream = match &config.server.default_upstream {
            Some(hp) => crate::routes::resolve(hp).await.ok(),
            None => None,
        };
        self.routes.store(Arc::new(routes));
        self.default_upstream.store(Arc::new(default_upstream));
        self.set_public_status(config.server.public_status);
        Ok(())
    }
}

impl leannodes_control::TrafficView for ProxyState {
    fn held(&self, flow: &str) -> u64 {
        self.routes.load().flow(flow).map_or(0, |r| u64::try_from(r.metrics.held()).unwrap_or(0))
    }

    fn in_flight(&self) -> u64 {
        u64::try_from(ProxyState::in_flight(self)).unwrap_or(u64::MAX)
    }

    fn shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    fn render_metrics(&self, out: &mut String) {
        let routes = self.routes.load();
        crate::metrics::render(out, routes.routes().map(|r| (r.flow.name(), &*r.metrics, r.flow.spec.max_held.get())), &self.unmatched);
        crate::metrics::render_access_log(out, self.access.dropped());
        self.refused_heads.render(out);
    }
}

/// Counts a request as in flight until dropped (a graceful shutdown waits for in-flight requests).
pub(crate) struct InFlight(Arc<ProxyState>);

impl InFlight {
    /// Counts one more request in flight.
    pub(crate) fn new(state: &Arc<ProxyState>) -> InFlight {
        state.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(state.clone())
    }
}

impl std::fmt::Debug for InFlight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InFlight")
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The LeanNodes proxy.
#[derive(Debug, Clone)]
pub struct LeanProxy {
    state: Arc<ProxyState>,
}

impl LeanProxy {
    /// A proxy over this state.
    pub fn new(state: Arc<ProxyState>) -> LeanProxy {
        LeanProxy { state }
    }
}

/// Per-request state.
pub struct RequestCtx {
    route: Option<Arc<Route>>,
    upstream: Option<SocketAddr>,
    /// Activity is recorded for this request (not for `ignore`d ones).
    counts: bool,
    /// An `ignore` rule matched: proxied, but not activity.
    ignored: bool,
    /// Milliseconds the request was held, when it was.
    held_ms: Option<u64>,
    /// When the hold budget ends (retries of a refused connect stay inside it).
    deadline: Option<Instant>,
    connect_failures: u32,
    /// Retries after an upstream failed mid-request.
    upstream_retries: u32,
    outcome: Option<Outcome>,
    client_closed: bool,
    /// Why the upstream's TLS handshake failed, when it did.
    tls_failure: Option<TlsFailure>,
    /// Why no endpoint was chosen, when none was.
    no_room: Option<NoRoom>,
    /// The request counted on its endpoint (for `max_concurrency` and spreading), while it runs.
    lease: Option<Lease>,
    /// The kind of request counted open on the flow's activity until it ends (for `explain`).
    open: Option<Connection>,
    /// When the request arrived.
    arrived: Instant,
    /// The span of a held request, while tracing is on.
    trace: Option<HeldTrace>,
    _in_flight: InFlight,
}

/// The span of a held request: its ids (a child of the client's `traceparent` when it sent one), the
/// wake it waited for, and when it arrived.
struct HeldTrace {
    trace_id: trace::TraceId,
    span_id: trace::SpanId,
    parent: Option<trace::SpanId>,
    wake: Option<(trace::TraceId, trace::SpanId)>,
    start_ns: u64,
}

impl RequestCtx {
    fn flow_name(&self) -> &str {
        self.route.as_ref().map_or("-", |r| r.flow.name())
    }
}

/// A request's `Host` (else the URI's authority; HTTP/2 sends `:authority`).
fn host_of(req: &RequestHeader) -> &str {
    req.headers.get(http::header::HOST).and_then(|h| h.to_str().ok()).or_else(|| req.uri.host()).unwrap_or_default()
}

/// What the gate needs to know of a request head: `Host` (else the URI's authority), path, kind of
/// client, `User-Agent` and `X-LeanNodes-Version`.
pub(crate) fn inquiry_of(req: &RequestHeader) -> Inquiry {
    let header = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok());
    Inquiry {
        host: host_of(req).to_string(),
        path: req.uri.path().to_string(),
        client: Client::of(req),
        user_agent: header(http::header::USER_AGENT.as_str()).map(str::to_string),
        version: header(crate::gate::VERSION_HEADER).map(str::to_string),
    }
}

impl LeanProxy {
    /// Serves `/.well-known/leannodes/flows/{flow}` (JSON) and `…/events` (SSE) for flows bound to this
    /// host. Returns whether the request was one of those.
    async fn serve_status(&self, session: &mut Session, host: &str, path: &str) -> Result<bool> {
        let Some(rest) = path.strip_prefix(STATUS_PREFIX) else { return Ok(false) };
        let rest = rest.strip_prefix("/flows/").unwrap_or_default();
        let (name, events) = match rest.strip_suffix("/events") {
            Some(name) => (name, true),
            None => (rest, false),
        };
        let routes = self.state.routes.load_full();
        // Only flows reachable through this host are described here.
        let route = routes.flow(name).filter(|r| {
            routes.find(host, "/").is_some_and(|h| Arc::ptr_eq(h, r))
                || r.flow.spec.bindings.iter().any(|b| routes.find(host, &b.path).is_some_and(|h| Arc::ptr_eq(h, r)))
        });
        let route = route.filter(|_| self.state.public_status() != PublicStatus::Off);
        let Some(route) = route.cloned() else {
            answer::json_error(session, 404, "no_flow", None, "no such flow on this host", None, json!({})).await?;
            return Ok(true);
        };
        let flow = &route.flow;
        if !events {
            let status = self.state.shown(&flow.status());
            let body = LiveStatus::new(flow, &status, 0).to_json();
            answer::respond(session, 200, "application/json", &[], Bytes::from(body)).await?;
            return Ok(true);
        }
        let mut h = ResponseHeader::build(200, Some(3))?;
        h.insert_header("content-type", "text/event-stream")?;
        h.insert_header("cache-control", "no-store")?;
        h.insert_header("x-accel-buffering", "no")?;
        session.write_response_header(Box::new(h), false).await?;
        let mut rx = flow.subscribe();
        let mut shutdown = self.state.shutdown.subscribe();
        loop {
            let status = rx.borrow_and_update().clone();
            let data = format!("event: status\ndata: {}\n\n", LiveStatus::new(flow, &self.state.shown(&status), 0).to_json());
            session.write_response_body(Some(Bytes::from(data)), false).await?;
            if status.removed || status.state == FlowState::Awake {
                break;
            }
            tokio::select! {
                changed = rx.changed() => if changed.is_err() { break },
                _ = tokio::time::sleep(Duration::from_secs(15)) => {
                    session.write_response_body(Some(Bytes::from_static(b": keep-alive\n\n")), false).await?;
                }
                () = shutting_down(&mut shutdown) => break,
            }
        }
        session.write_response_body(None, true).await?;
        Ok(true)
    }
}

/// Why no endpoint was chosen within the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NoRoom {
    /// The workload has no ready endpoint.
    NoEndpoint,
    /// Every endpoint has `max_concurrency` requests.
    Full,
}

/// The route's next endpoint. A Kubernetes workload can be briefly without a ready endpoint (a pod being
/// replaced), and with `max_concurrency` every endpoint can be full: wait for room, within the hold
/// budget. A request that was not held waits up to 2 s for an endpoint, and up to `hold_timeout` for room
/// on a full one (it queues like a held request).
async fn pick_within_budget(route: &Route, deadline: Option<Instant>) -> std::result::Result<(SocketAddr, Option<Lease>), NoRoom> {
    let now = Instant::now();
    let (for_endpoint, for_room) = match deadline {
        Some(d) => (d, d),
        None => (now + Duration::from_secs(2), now + route.flow.spec.hold_timeout),
    };
    let pick = || match route.upstream.pick() {
        Pick::Go(addr, lease) => Ok((addr, lease)),
        Pick::NoEndpoint => Err(NoRoom::NoEndpoint),
        Pick::Full => Err(NoRoom::Full),
    };
    // The common case takes no lock: only a request that must wait registers for a freed slot.
    if let Ok(found) = pick() {
        return Ok(found);
    }
    loop {
        // Registered before looking again, so a slot freed in between wakes us.
        let freed = route.upstream.balancer.freed();
        tokio::pin!(freed);
        freed.as_mut().enable();
        let why = match pick() {
            Ok(found) => return Ok(found),
            Err(why) => why,
        };
        let deadline = if why == NoRoom::Full { for_room } else { for_endpoint };
        if Instant::now() >= deadline {
            return Err(why);
        }
        // Endpoint lists change without a signal: look again every 20 ms at the latest.
        tokio::select! {
            () = freed => {}
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    }
}

/// Resolves when the client has gone away (HTTP/2 stream reset or closed; HTTP/1 FIN on a request
/// without a body). Pending forever when that cannot be observed.
async fn client_gone(session: &mut Session, no_body: bool) {
    let downstream = session.as_downstream_mut();
    if let Some(idle) = downstream.watch_h2_stream_close() {
        let _ = idle.await;
        return;
    }
    if no_body && !downstream.is_upgrade_req() && downstream.read_body_or_idle(true).await.is_err() {
        return;
    }
    std::future::pending::<()>().await;
}

#[async_trait]
impl ProxyHttp for LeanProxy {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            route: None,
            upstream: None,
            counts: false,
            ignored: false,
            held_ms: None,
            trace: None,
            deadline: None,
            connect_failures: 0,
            upstream_retries: 0,
            outcome: None,
            client_closed: false,
            tls_failure: None,
            no_room: None,
            lease: None,
            open: None,
            arrived: Instant::now(),
            _in_flight: InFlight::new(&self.state),
        }
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        // HTTP/1.1 pipelining (RFC 9112 §9.3.2): requests a client sends before reading the answers are
        // answered one after another, in order. Pingora's default closes the connection after the first
        // answer and drops the rest; it also mistakes a pipelined request, read while this one is held,
        // for the client going away.
        session.as_downstream_mut().set_pipelining_enabled(true);
        let inquiry = inquiry_of(session.req_header());
        if inquiry.path.starts_with(STATUS_PREFIX) {
            return self.serve_status(session, &inquiry.host, &inquiry.path).await;
        }
        // The connection's first request was decided while it was parked (crate::park); later ones on a
        // kept-alive connection, and HTTP/2 streams, ask the gate here.
        let verdict = match session.as_downstream().stream().and_then(Unparked::take) {
            Some(parked) => {
                ctx.arrived = parked.arrived;
                parked.verdict
            }
            None => {
                let no_body = !declares_body(session.req_header());
                self.state.gate(&inquiry, client_gone(session, no_body)).await
            }
        };
        match verdict {
            Verdict::Allow { route, counts, held_ms, deadline } => {
                if counts {
                    let req = session.req_header();
                    let header = |name: http::header::HeaderName| req.headers.get(name).and_then(|v| v.to_str().ok());
                    let kind = Connection::of(session.is_upgrade_req(), header(http::header::ACCEPT), header(http::header::CONTENT_TYPE));
                    route.flow.activity.open(kind);
                    ctx.open = Some(kind);
                }
                ctx.route = Some(route);
                ctx.counts = counts;
                ctx.ignored = !counts;
                ctx.held_ms = held_ms;
                ctx.deadline = deadline;
                if let (Some(held), true) = (held_ms, self.state.controller.spans().enabled()) {
                    // The upstream continues the trace from this request's span.
                    let incoming =
                        session.req_header().headers.get("traceparent").and_then(|v| v.to_str().ok()).and_then(trace::parse_traceparent);
                    let (fresh_trace, span_id) = trace::new_ids();
                    let trace_id = incoming.map_or(fresh_trace, |(t, _)| t);
                    let wake = route_execution(ctx).map(|id| trace::wake_ids(&id));
                    session.req_header_mut().insert_header("traceparent", trace::traceparent(&trace_id, &span_id))?;
                    let start_ns = unix_ns().saturating_sub(held.saturating_mul(1_000_000));
                    ctx.trace = Some(HeldTrace { trace_id, span_id, parent: incoming.map(|(_, s)| s), wake, start_ns });
                }
                Ok(false)
            }
            Verdict::Unmatched => {
                if let Some(addr) = **self.state.default_upstream.load() {
                    ctx.upstream = Some(addr);
                    ctx.outcome = Some(Outcome::Proxied);
                    return Ok(false);
                }
                self.state.unmatched.count(Outcome::Proxied);
                let message = format!("no flow serves host `{}` and path `{}`", inquiry.host, inquiry.path);
                answer::json_error(session, 404, "no_flow", None, &message, None, json!({})).await?;
                Ok(true)
            }
            Verdict::Answer { route, outcome, reply } => {
                ctx.route = route;
                ctx.outcome = Some(outcome);
                answer::write(session, &reply).await?;
                Ok(true)
            }
            Verdict::ClientGone { route } => {
                ctx.route = Some(route);
                ctx.client_closed = true;
                ctx.outcome = Some(Outcome::ClientClosed);
                // The wake goes on without this client.
                Err(Error::explain(ErrorType::ConnectionClosed, "client closed the connection while held"))
            }
        }
    }

    async fn upstream_peer(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<Box<HttpPeer>> {
        // A retry gives its endpoint's slot back before taking another.
        ctx.lease = None;
        let addr = match &ctx.route {
            Some(route) => match pick_within_budget(route, ctx.deadline).await {
                Ok((addr, lease)) => {
                    ctx.lease = lease;
                    addr
                }
                Err(why) => {
                    ctx.no_room = Some(why);
                    return Err(Error::explain(ErrorType::HTTPStatus(503), "no endpoint with room"));
                }
            },
            None => ctx.upstream.ok_or_else(|| Error::explain(ErrorType::InternalError, "no upstream chosen"))?,
        };
        ctx.upstream = Some(addr);
        if ctx.connect_failures > 0 {
            // A refused connect right after "ready": back off briefly, within the hold budget.
            let pause = Duration::from_millis(20u64 << ctx.connect_failures.min(4));
            tokio::time::sleep(pause).await;
        }
        let transport = ctx.route.as_ref().map(|r| &r.transport);
        let protocol = transport.map(|t| t.protocol).unwrap_or_default();
        let upgrade = session.is_upgrade_req();
        let mut peer = match transport.filter(|t| t.protocol.tls()) {
            Some(transport) => {
                // Always a name: pingora skips verification for an empty SNI. An IP address is verified
                // against the certificate's IP addresses.
                let sni = transport.sni.clone().unwrap_or_else(|| addr.ip().to_string());
                let mut peer = HttpPeer::new(addr, true, sni);
                peer.options.ca = transport.ca.clone();
                peer.group_key = transport.pool_key;
                peer
            }
            None => HttpPeer::new(addr, false, String::new()),
        };
        match protocol {
            // gRPC needs HTTP/2; plain h1 upstreams get gRPC requests as h2c, as before upstream_protocol.
            UpstreamProtocol::H1 if Client::of(session.req_header()) == Client::Grpc => peer.options.set_http_version(2, 2),
            UpstreamProtocol::H1 | UpstreamProtocol::H1Tls => peer.options.set_http_version(1, 1),
            // Upgrades (WebSocket) exist only in HTTP/1.1: they go to the same port over HTTP/1.1.
            UpstreamProtocol::H2c | UpstreamProtocol::H2 if upgrade => peer.options.set_http_version(1, 1),
            UpstreamProtocol::H2c | UpstreamProtocol::H2 => {
                peer.options.set_http_version(2, 2);
                peer.options.max_h2_streams = H2_STREAMS_PER_CONNECTION;
            }
        }
        let t = &self.state.timeouts;
        peer.options.connection_timeout = Some(t.connect);
        peer.options.total_connection_timeout = Some(t.connect);
        peer.options.write_timeout = Some(t.write);
        peer.options.idle_timeout = Some(t.idle);
        // Upgraded connections (WebSocket) may be silent for long; other responses get the read timeout.
        peer.options.read_timeout = if upgrade { None } else { Some(t.read) };
        Ok(Box::new(peer))
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut RequestCtx,
        client_reused: bool,
    ) -> Box<Error> {
        let mut e = e.more_context(format!("Peer: {peer}"));
        let idempotent = session.req_header().method.is_idempotent() && !session.as_ref().retry_buffer_truncated();
        // An endpoint that went away mid-request (a pod replaced, a process restarted): an idempotent
        // request that has not sent anything to the client yet is retried on the next endpoint.
        let nothing_sent = session.as_downstream().response_written().is_none();
        if idempotent && nothing_sent && ctx.upstream_retries < 2 {
            ctx.upstream_retries += 1;
            e.set_retry(true);
        } else if !idempotent {
            e.set_retry(false);
        } else {
            e.retry.decide_reuse(client_reused);
        }
        e
    }

    fn fail_to_connect(&self, _session: &mut Session, _peer: &HttpPeer, ctx: &mut RequestCtx, mut e: Box<Error>) -> Box<Error> {
        if let Some(failure) = TlsFailure::of(&e) {
            // A certificate problem does not go away by retrying: answer 502 with the reason now.
            if let Some(route) = &ctx.route {
                route.metrics.count_tls_failure(failure);
            }
            ctx.tls_failure = Some(failure);
            e.set_retry(false);
            return e;
        }
        let within_budget = ctx.deadline.is_some_and(|d| Instant::now() < d) || ctx.connect_failures < 3;
        if matches!(e.etype(), ErrorType::ConnectRefused | ErrorType::ConnectTimedout | ErrorType::ConnectError)
            && within_budget
            && ctx.connect_failures < 20
        {
            ctx.connect_failures += 1;
            e.set_retry(true);
        }
        e
    }

    async fn request_body_filter(&self, _session: &mut Session, _body: &mut Option<Bytes>, _end: bool, ctx: &mut RequestCtx) -> Result<()> {
        if ctx.counts {
            if let Some(route) = &ctx.route {
                route.flow.activity.record();
            }
        }
        Ok(())
    }

    fn response_body_filter(
        &self,
        _session: &mut Session,
        _body: &mut Option<Bytes>,
        _end: bool,
        ctx: &mut RequestCtx,
    ) -> Result<Option<Duration>> {
        if ctx.counts {
            if let Some(route) = &ctx.route {
                route.flow.activity.record();
            }
        }
        Ok(None)
    }

    async fn response_filter(&self, _session: &mut Session, upstream_response: &mut ResponseHeader, ctx: &mut RequestCtx) -> Result<()> {
        if let Some(ms) = ctx.held_ms {
            upstream_response.insert_header("x-leannodes-cold-start", ms.to_string())?;
            if let Some(route) = &ctx.route {
                route.metrics.first_byte.observe(ctx.arrived.elapsed());
            }
        }
        Ok(())
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        let written = session.as_downstream().response_written().map(|r| r.status.as_u16());
        let status = if ctx.client_closed { 499 } else { written.unwrap_or(0) };
        let outcome = ctx.outcome.unwrap_or(match (e, ctx.held_ms) {
            (Some(_), _) if written.is_none() || written == Some(502) => Outcome::UpstreamError,
            (_, Some(_)) => Outcome::ColdStart,
            _ => Outcome::Proxied,
        });
        if let Some(route) = &ctx.route {
            route.metrics.count(outcome);
            if ctx.counts {
                route.flow.activity.record();
            }
            if ctx.counts || ctx.ignored {
                let req = session.req_header();
                route.flow.activity.note(ctx.counts, || SeenRequest {
                    at_ms: unix_ms(),
                    method: req.method.as_str().to_string(),
                    path: req.uri.path().chars().take(200).collect(),
                    status,
                });
            }
            if let Some(kind) = ctx.open.take() {
                route.flow.activity.close(kind);
            }
        } else if ctx.upstream.is_some() {
            self.state.unmatched.count(outcome);
        }
        if let Some(t) = ctx.trace.take() {
            let req = session.req_header();
            let method = req.method.as_str().to_string();
            let mut attributes = vec![
                ("http.request.method".to_string(), method.clone()),
                ("url.path".to_string(), req.uri.path().to_string()),
                ("http.response.status_code".to_string(), status.to_string()),
                ("leannodes.flow".to_string(), ctx.flow_name().to_string()),
                ("leannodes.held_ms".to_string(), ctx.held_ms.unwrap_or(0).to_string()),
            ];
            attributes.push(("leannodes.outcome".to_string(), outcome.label().to_string()));
            self.state.controller.spans().publish([trace::SpanData {
                trace_id: t.trace_id,
                span_id: t.span_id,
                parent: t.parent,
                name: method,
                server: true,
                start_ns: t.start_ns,
                end_ns: unix_ns(),
                attributes,
                links: t.wake.into_iter().collect(),
                error: e.map(|e| e.to_string()),
            }]);
        }
        if AccessLog::enabled() {
            let req = session.req_header();
            self.state.access.record(AccessLine {
                flow: ctx.flow_name().to_string(),
                method: req.method.clone(),
                host: host_of(req).to_string(),
                path: req.uri.path().to_string(),
                status,
                outcome: outcome.label(),
                held_ms: ctx.held_ms.unwrap_or(0),
                upstream: ctx.upstream,
                error: e.map(|e| e.to_string()),
            });
        }
    }

    fn suppress_error_log(&self, _session: &Session, ctx: &RequestCtx, error: &Error) -> bool {
        // A client that hangs up is not an error of the proxy (it shows as 499 or status 0 in the access log).
        ctx.client_closed
            || (error.esource() == &ErrorSource::Downstream
                && matches!(error.etype(), ErrorType::ConnectionClosed | ErrorType::ReadError | ErrorType::WriteError))
    }

    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut RequestCtx) -> pingora::proxy::FailToProxy
    where
        RequestCtx: Send + Sync,
    {
        if ctx.client_closed {
            return pingora::proxy::FailToProxy { error_code: 0, can_reuse_downstream: false };
        }
        let code = match e.etype() {
            ErrorType::HTTPStatus(code) => *code,
            _ if e.esource() == &ErrorSource::Upstream => 502,
            ErrorType::ReadError | ErrorType::WriteError | ErrorType::ConnectionClosed => 0,
            _ => 500,
        };
        if code > 0 && session.as_downstream().response_written().is_none() {
            // The connection is not reused after this answer: say so (`connection: close`), so a client
            // with a keep-alive pool does not send its next request into a closing socket.
            session.as_downstream_mut().set_keepalive(None);
            let upstream = ctx.upstream.map_or_else(|| "-".into(), |a| a.to_string());
            let limit = ctx.route.as_ref().and_then(|r| r.upstream.balancer.limit()).unwrap_or(0);
            let (error, message) = match (ctx.tls_failure, ctx.no_room) {
                (Some(failure), _) => ("upstream_tls", format!("upstream {upstream}: {}", failure.explain())),
                (_, Some(NoRoom::Full)) => (
                    "upstream_busy",
                    format!(
                        "every endpoint of the upstream has max_concurrency ({limit}) requests and none freed up within the hold budget"
                    ),
                ),
                (_, Some(NoRoom::NoEndpoint)) => ("no_endpoint", "the upstream has no ready endpoint".to_string()),
                _ if code == 502 => ("upstream_error", format!("upstream {upstream}: {}", e.etype().as_str())),
                _ => ("internal_error", format!("upstream {upstream}: {}", e.etype().as_str())),
            };
            let _ = answer::json_error(session, code, error, ctx.route.as_ref().map(|r| r.flow.name()), &message, None, json!({})).await;
        }
        pingora::proxy::FailToProxy { error_code: code, can_reuse_downstream: false }
    }
}

/// Now, in Unix milliseconds (for what explain shows).
fn unix_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Now, in Unix nanoseconds (span times).
fn unix_ns() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The execution the request's flow ran last (the wake a held request waited for).
fn route_execution(ctx: &RequestCtx) -> Option<String> {
    ctx.route.as_ref().and_then(|r| r.flow.status().execution)
}
