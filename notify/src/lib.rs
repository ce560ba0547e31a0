//! LeanNodes' outbound signals: notifications, and the export of traces ([`otlp`]).
//!
//! Notifications: routes (`[[notification]]`) receive the notices of the controller's
//! [`NoticeBus`](leannodes_control::NoticeBus) that match their event and flow filters, as Slack Block
//! Kit messages, Teams Adaptive Cards or webhook payloads ([`format`]).
//!
//! Delivery never slows the request path or a wake: a dispatcher task hands each notice to a bounded
//! queue per route (a full queue drops the notice and counts it), and one worker per route POSTs them in
//! order, retrying timeouts, connection errors, 429 and 5xx answers with exponential backoff (honouring
//! `Retry-After`). A slow or dead endpoint delays only its own route. Route URLs, headers and keys are
//! secrets: they appear in no answer, log line or error ([`Notifier::routes`] shows the host only).

use std::sync::Arc;
use std::time::Duration;

use leannodes_config::NotificationRoute;
use leannodes_control::{Notice, NoticeKind};
use leannodes_store::{NotificationRecord, Page, Store, StoreError};
use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

pub mod format;
pub mod otlp;

/// Tunables of delivery.
#[derive(Debug, Clone)]
pub struct Options {
    /// Notices waiting per route; beyond this new ones are dropped (and counted).
    pub queue: usize,
    /// One attempt's time limit.
    pub timeout: Duration,
    /// Attempts per notice (the first included).
    pub attempts: u32,
    /// Wait before the first retry; doubles each time.
    pub backoff: Duration,
    /// The longest wait between attempts (also caps `Retry-After`).
    pub max_backoff: Duration,
    /// The dashboard's public URL, for links (empty: no links).
    pub base_url: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            queue: 256,
            timeout: Duration::from_secs(10),
            attempts: 5,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            base_url: String::new(),
        }
    }
}

/// How one delivery went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    /// The event delivered.
    pub event: NoticeKind,
    /// Its flow.
    pub flow: Option<String>,
    /// When the delivery ended (Unix milliseconds).
    pub at_ms: i64,
    /// Whether the endpoint accepted it (2xx).
    pub ok: bool,
    /// The endpoint's last HTTP status, if it answered.
    pub status: Option<u16>,
    /// Why it failed (secrets removed).
    pub error: Option<String>,
    /// Attempts made.
    pub attempts: u32,
    /// Time from the first attempt to the end (milliseconds).
    pub took_ms: u64,
}

/// A route's delivery counters and last result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RouteStatus {
    /// Notices the endpoint accepted.
    pub delivered: u64,
    /// Notices given up on after every attempt (or refused with a 4xx).
    pub failed: u64,
    /// Notices dropped because the route's queue was full.
    pub dropped: u64,
    /// Notices waiting now.
    pub queued: u64,
    /// The last delivery (Send Test included).
    pub last: Option<Delivery>,
}

/// Where a route is defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// `[[notification]]` in the configuration file (read-only in the API).
    File,
    /// Created through the API (kept in the store).
    Api,
}

/// A route as the API shows it: no URL, header value or key.
#[derive(Debug, Clone, Serialize)]
pub struct RouteView {
    /// Name.
    pub name: String,
    /// Where it is defined.
    pub source: Source,
    /// `slack`, `teams` or `webhook`.
    pub kind: leannodes_config::file::NotificationKind,
    /// The webhook payload shape (`generic` for Slack and Teams).
    pub format: leannodes_config::file::WebhookFormat,
    /// The endpoint's host (the URL itself is a secret).
    pub host: String,
    /// Names of the extra headers (their values are secrets).
    pub headers: Vec<String>,
    /// Events it receives; empty: all.
    pub events: Vec<NoticeKind>,
    /// Flows it receives events of; empty: all.
    pub flows: Vec<String>,
    /// Delivery counters and the last result.
    pub status: RouteStatus,
}

struct Route {
    spec: Arc<NotificationRoute>,
    source: Source,
    status: Mutex<RouteStatus>,
}

impl Route {
    fn status(&self) -> parking_lot::MutexGuard<'_, RouteStatus> {
        self.status.lock()
    }
}

/// A route and its queue; dropping it ends the route's worker once the queue is empty.
struct Slot {
    route: Arc<Route>,
    queue: mpsc::Sender<Notice>,
}

/// Delivers notices to the routes of the configuration file and of the API.
pub struct Notifier {
    slots: RwLock<Vec<Slot>>,
    client: reqwest::Client,
    options: Options,
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier").field("routes", &self.routes().iter().map(|r| r.name.clone()).collect::<Vec<_>>()).finish()
    }
}

/// The endpoint's host, for display (the rest of a route's URL is secret).
pub fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    // Credentials in the URL (`user:pass@host`) are secret too.
    authority.rsplit_once('@').map_or(authority, |(_, h)| h).to_string()
}

/// `text` with every secret of `route` replaced by `***`.
fn redact(route: &NotificationRoute, text: &str) -> String {
    let mut out = text.to_string();
    let secrets = std::iter::once(route.url.expose())
        .chain(route.headers.iter().map(|(_, v)| v.expose()))
        .chain(route.routing_key.iter().map(|k| k.expose()));
    for secret in secrets {
        if secret.len() >= 4 {
            out = out.replace(secret, "***");
        }
    }
    out
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Notifier {
    /// Starts a worker per route of the file and the dispatcher that feeds them from `notices`; call
    /// within a runtime. The tasks end when the bus closes.
    pub fn start(routes: &[Arc<NotificationRoute>], notices: broadcast::Receiver<Notice>, options: Options) -> Arc<Notifier> {
        let client = reqwest::Client::builder().user_agent(concat!("LeanNodes/", env!("CARGO_PKG_VERSION"))).build().unwrap_or_default();
        let notifier = Arc::new(Notifier { slots: RwLock::new(Vec::new()), client, options, runtime: tokio::runtime::Handle::current() });
        let slots = routes.iter().map(|spec| notifier.slot(spec.clone(), Source::File)).collect();
        *notifier.slots.write() = slots;
        notifier.runtime.spawn(dispatch(Arc::downgrade(&notifier), notices));
        notifier
    }

    /// A new route with its queue and worker.
    fn slot(self: &Arc<Self>, spec: Arc<NotificationRoute>, source: Source) -> Slot {
        let (queue, rx) = mpsc::channel(self.options.queue.max(1));
        let route = Arc::new(Route { spec, source, status: Mutex::new(RouteStatus::default()) });
        self.runtime.spawn(worker(Arc::downgrade(self), route.clone(), rx));
        Slot { route, queue }
    }

    fn slots(&self) -> parking_lot::RwLockReadGuard<'_, Vec<Slot>> {
        self.slots.read()
    }

    /// Replaces the API's routes: unchanged ones keep their queue and counters, changed ones start
    /// afresh, removed ones stop once their queue is delivered. A name the file uses is left out.
    pub fn set_api_routes(self: &Arc<Self>, routes: Vec<Arc<NotificationRoute>>) {
        let mut slots = self.slots.write();
        let mut next: Vec<Slot> = Vec::with_capacity(slots.len());
        for slot in slots.drain(..) {
            let keep = slot.route.source == Source::File || routes.iter().any(|r| **r == *slot.route.spec);
            if keep {
                next.push(slot);
            }
        }
        for route in routes {
            if !next.iter().any(|s| s.route.spec.name == route.name) {
                let slot = self.slot(route, Source::Api);
                next.push(slot);
            }
        }
        *slots = next;
    }

    /// Reads the API's routes from `store` and applies them. A stored route that no longer validates
    /// is left out with a log line.
    pub async fn load_api_routes(self: &Arc<Self>, store: &dyn Store) -> Result<(), StoreError> {
        let mut routes = Vec::new();
        let mut page = Page { after: None, limit: 500 };
        loop {
            let listing = store.records::<NotificationRecord>().list("", &page).await?;
            for record in listing.items {
                match leannodes_config::notification_from_api(&record.value.spec) {
                    Ok(route) => routes.push(Arc::new(route)),
                    Err(problems) => {
                        let list: Vec<String> = problems.iter().map(|p| format!("{}: {}", p.pointer, p.message)).collect();
                        tracing::warn!(route = %record.value.spec.name, "stored notification route left out: {}", list.join("; "));
                    }
                }
            }
            match listing.next {
                Some(next) => page.after = Some(next),
                None => break,
            }
        }
        self.set_api_routes(routes);
        Ok(())
    }

    /// Keeps the API's routes in step with `store` (changes made through other replicas), reading it
    /// every `every`.
    pub fn follow_store(self: &Arc<Self>, store: Arc<dyn Store>, every: Duration) {
        let notifier = Arc::downgrade(self);
        self.runtime.spawn(async move {
            loop {
                let Some(n) = notifier.upgrade() else { return };
                if let Err(e) = n.load_api_routes(&*store).await {
                    tracing::warn!("cannot read the notification routes: {e}");
                }
                drop(n);
                tokio::time::sleep(every).await;
            }
        });
    }

    /// Every route with its counters and last delivery.
    pub fn routes(&self) -> Vec<RouteView> {
        self.slots()
            .iter()
            .map(|slot| {
                let r = &slot.route;
                let queued = u64::try_from(slot.queue.max_capacity() - slot.queue.capacity()).unwrap_or(u64::MAX);
                RouteView {
                    name: r.spec.name.clone(),
                    source: r.source,
                    kind: r.spec.kind,
                    format: r.spec.format,
                    host: host_of(r.spec.url.expose()),
                    headers: r.spec.headers.iter().map(|(n, _)| n.clone()).collect(),
                    events: r.spec.events.clone(),
                    flows: r.spec.flows.clone(),
                    status: RouteStatus { queued, ..r.status().clone() },
                }
            })
            .collect()
    }

    /// Where route `name` is defined, if it exists.
    pub fn source_of(&self, name: &str) -> Option<Source> {
        self.slots().iter().find(|s| s.route.spec.name == name).map(|s| s.route.source)
    }

    /// Sends a `test` notice to route `name` now (one attempt, whatever its filters) and returns how it
    /// went; `None` for an unknown route.
    pub async fn send_test(&self, name: &str, replica: &str) -> Option<Delivery> {
        let route = self.slots().iter().find(|s| s.route.spec.name == name).map(|s| s.route.clone())?;
        let notice = Notice::new(
            NoticeKind::Test,
            None,
            "LeanNodes test notification".into(),
            format!("Route {name} works: this is what LeanNodes notices look like here."),
            replica,
        );
        let delivery = self.deliver(&route.spec, &notice, 1).await;
        route.status().last = Some(delivery.clone());
        Some(delivery)
    }

    /// Writes the delivery counters in the Prometheus text format.
    pub fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write as _;
        out.push_str("# HELP leannodes_notifications_total Notices per route by result: delivered, failed (after every attempt) or dropped (queue full).\n# TYPE leannodes_notifications_total counter\n");
        for slot in self.slots().iter() {
            let r = &slot.route;
            let s = r.status().clone();
            for (result, n) in [("delivered", s.delivered), ("failed", s.failed), ("dropped", s.dropped)] {
                let _ = writeln!(
                    out,
                    "leannodes_notifications_total{{route=\"{}\",result=\"{result}\"}} {n}",
                    r.spec.name.replace(['\\', '"', '\n'], "_")
                );
            }
        }
    }

    /// POSTs `notice` to `route`, retrying up to `attempts` times.
    async fn deliver(&self, route: &NotificationRoute, notice: &Notice, attempts: u32) -> Delivery {
        let link = format::link(&self.options.base_url, notice);
        let body = format::payload(route, notice, link.as_deref());
        let started = Instant::now();
        let mut wait = self.options.backoff;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = self.client.post(route.url.expose()).timeout(self.options.timeout).json(&body);
            for (name, value) in &route.headers {
                request = request.header(name, value.expose());
            }
            let (status, error, retry, retry_after) = match request.send().await {
                Ok(response) if response.status().is_success() => (Some(response.status().as_u16()), None, false, None),
                Ok(response) => {
                    let code = response.status().as_u16();
                    let retry_after = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let text = response.text().await.unwrap_or_default();
                    let snippet: String = text.chars().take(200).collect();
                    let retry = code == 429 || code == 408 || code >= 500;
                    (Some(code), Some(redact(route, &format!("HTTP {code}: {}", snippet.trim()))), retry, retry_after)
                }
                // `without_url`: the URL is a secret.
                Err(e) => (None, Some(redact(route, &e.without_url().to_string())), true, None),
            };
            if error.is_none() || !retry || attempt >= attempts {
                return Delivery {
                    event: notice.kind,
                    flow: notice.flow.clone(),
                    at_ms: unix_ms(),
                    ok: error.is_none(),
                    status,
                    error,
                    attempts: attempt,
                    took_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                };
            }
            let pause = retry_after.unwrap_or(wait).min(self.options.max_backoff);
            tracing::debug!(route = %route.name, attempt, ?pause, "notification not delivered; retrying");
            tokio::time::sleep(pause).await;
            wait = (wait * 2).min(self.options.max_backoff);
        }
    }
}

/// Hands each notice to the queues of the routes that want it.
async fn dispatch(notifier: std::sync::Weak<Notifier>, mut notices: broadcast::Receiver<Notice>) {
    loop {
        let notice = match notices.recv().await {
            Ok(n) => n,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "notifications fell behind the notices; some were skipped");
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let Some(notifier) = notifier.upgrade() else { return };
        for slot in notifier.slots().iter() {
            let route = &slot.route;
            if !route.spec.wants(notice.kind, notice.flow.as_deref()) {
                continue;
            }
            if slot.queue.try_send(notice.clone()).is_err() {
                let dropped = {
                    let mut s = route.status();
                    s.dropped += 1;
                    s.dropped
                };
                if dropped.is_power_of_two() {
                    tracing::warn!(route = %route.spec.name, dropped, "notification queue full; notices dropped");
                }
            }
        }
    }
}

/// Delivers one route's notices in order.
async fn worker(notifier: std::sync::Weak<Notifier>, route: Arc<Route>, mut queue: mpsc::Receiver<Notice>) {
    while let Some(notice) = queue.recv().await {
        let Some(n) = notifier.upgrade() else { return };
        let delivery = n.deliver(&route.spec, &notice, n.options.attempts).await;
        if let Some(error) = &delivery.error {
            tracing::warn!(route = %route.spec.name, event = notice.kind.as_str(), attempts = delivery.attempts, "notification failed: {error}");
        }
        let mut s = route.status();
        if delivery.ok {
            s.delivered += 1;
        } else {
            s.failed += 1;
        }
        s.last = Some(delivery);
    }
}
