//! The reload actor: the one place configuration changes are applied. Every source — the config file's
//! watcher, SIGHUP, `Flow` resources, and activations of store-managed flows (through the API here, or
//! seen in a shared store from another replica) — sends a request; the actor validates the union of the
//! file, the store's active versions and the resources, applies it to the controller, has the routes
//! rebuilt and swapped, and answers every sender with the result, strictly one request at a time.
//! Reloads that queue up while one runs are answered together by the next one, which reads the sources as
//! they are then. Flows whose definition did not change keep their handle (state, waiters, idle timer).
//!
//! An activation is validated against everything else that serves (the same checks as `leannodes
//! validate`) before the store records it, inside the actor, so two activations never interleave and an
//! invalid version never reaches traffic.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use leannodes_config::crd::{FlowCondition, FlowResourceStatus};
use leannodes_config::file::FlowSpec;
use leannodes_config::{Config, Diagnostic, FlowOrigin, SourcedFlow};
use leannodes_drivers::flow_resources::{FlowResources, ResourceFlow};
use leannodes_store::{FlowDoc, FlowVersion, Page, Record, Store, StoreError, TestSession};
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};

use crate::{Controller, FlowHandle};

/// What asked for a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReloadCause {
    /// The configuration loaded at start.
    Start,
    /// The config file changed on disk.
    File,
    /// SIGHUP.
    Signal,
    /// `Flow` resources changed.
    Resources,
    /// Store-managed flows changed (an activation or a deletion, here or on another replica).
    Store,
}

/// Why an activation was refused.
#[derive(Debug, thiserror::Error)]
pub enum ActivateError {
    /// No store-managed flow has this name.
    #[error("no store-managed flow `{0}`")]
    UnknownFlow(String),
    /// The flow has no such version.
    #[error("flow `{flow}` has no version {number}")]
    UnknownVersion {
        /// The flow.
        flow: String,
        /// The version asked for.
        number: u64,
    },
    /// The version does not validate together with everything else that serves.
    #[error("version {number} of `{flow}` cannot be activated: {} problem(s)", problems.len())]
    Invalid {
        /// The flow.
        flow: String,
        /// The version.
        number: u64,
        /// Every problem, with JSON pointers into the version's spec.
        problems: Vec<Diagnostic>,
    },
    /// The configuration file itself does not validate, so nothing can be added to it.
    #[error("the configuration file has problems (fix them first): {}", .0.join("; "))]
    FileInvalid(Vec<String>),
    /// Another replica changed the flow between the check and the write.
    #[error("flow `{0}` changed while it was being activated (another activation or a deletion); read it again and retry")]
    Conflict(String),
    /// The store failed.
    #[error("the store failed: {0}")]
    Store(#[source] StoreError),
}

/// The result of the last (re)load.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReloadStatus {
    /// Whether it was applied.
    pub ok: bool,
    /// When (Unix milliseconds).
    pub at_ms: i64,
    /// What asked for it.
    pub cause: ReloadCause,
    /// Problems, one per line (`PATH:LINE:COL: error: …`).
    pub errors: Vec<String>,
}

/// Builds and installs the routes for a configuration the controller has just applied (the proxy tier
/// implements it). An error leaves the previous routes in place.
#[async_trait]
pub trait RouteInstaller: Send + Sync + 'static {
    /// Installs routes for `flows` (the controller's handles, in name order) and the server settings of
    /// `config` that the routes use (e.g. `default_upstream`).
    async fn install(&self, flows: &[Arc<FlowHandle>], config: &Config) -> Result<(), String>;
}

/// Where configuration comes from.
#[derive(Debug, Clone)]
pub struct Sources {
    /// The config file (its `[server]` and, with `flows_from` including `"file"`, its flows).
    pub file: PathBuf,
    /// `Flow` resources, when `flows_from` includes `"crd"`.
    pub resources: Option<Arc<FlowResources>>,
}

/// What the actor is asked to do.
enum Request {
    /// Re-read every source and apply.
    Reload { cause: ReloadCause, done: oneshot::Sender<ReloadStatus> },
    /// Validate a store-managed flow or a test session together with everything that serves.
    Check { candidate: Box<SourcedFlow>, done: oneshot::Sender<Result<(), ActivateError>> },
    /// Validate, record and apply version `number` of the store-managed flow `flow`.
    Activate { flow: String, number: u64, done: oneshot::Sender<Result<ReloadStatus, ActivateError>> },
}

/// A flow from a source other than the file, as the actor composes them.
struct Extra {
    /// `namespace/name` for a resource, `store:NAME` for a store-managed flow.
    key: String,
    origin: FlowOrigin,
    /// Sorts older ones first (resources: creation time).
    created: Option<String>,
    spec: FlowSpec,
}

/// What composing the sources gave.
enum Composed {
    Ok(Box<Config>),
    /// The file alone does not validate.
    FileInvalid(Vec<String>),
    /// The candidate (the last extra) does not validate: its problems, pointers relative to its spec.
    CandidateInvalid(Vec<Diagnostic>),
}

/// The handle of the reload actor. Cloning shares it.
#[derive(Debug, Clone)]
pub struct Reloader {
    requests: mpsc::UnboundedSender<Request>,
    status: watch::Receiver<ReloadStatus>,
    counts: Arc<ReloadCounts>,
}

/// Reloads applied and refused since start (for the metrics).
#[derive(Debug, Default)]
struct ReloadCounts {
    applied: std::sync::atomic::AtomicU64,
    failed: std::sync::atomic::AtomicU64,
}

/// The actor's own state.
struct Actor {
    controller: Arc<Controller>,
    sources: Sources,
    installer: Arc<dyn RouteInstaller>,
    /// Extra flows applied by the last good reload: in a conflict they win over newer ones.
    applied: BTreeSet<String>,
    /// Why extra flows were left out, by key (read by the status reporter).
    problems: Arc<Mutex<BTreeMap<String, Vec<String>>>>,
    /// The store-managed flows last read (kept when the store cannot be read).
    store_flows: Vec<SourcedFlow>,
    /// `(name, version)` of the store-managed flows and test sessions last applied (watched by the
    /// store poller).
    store_applied: Arc<Mutex<Vec<(String, u64)>>>,
    /// When the first test session applied ends (a reload then drops it).
    expiry: watch::Sender<Option<i64>>,
    status: watch::Sender<ReloadStatus>,
    counts: Arc<ReloadCounts>,
}

impl Reloader {
    /// Starts the actor (and, for the sources that have them, the file watcher and the resource
    /// watch) on the current runtime. The configuration in `controller` counts as loaded at start.
    pub fn start(controller: Arc<Controller>, sources: Sources, installer: Arc<dyn RouteInstaller>) -> Reloader {
        let (requests, mut queue) = mpsc::unbounded_channel::<Request>();
        let first = ReloadStatus { ok: true, at_ms: crate::unix_ms(), cause: ReloadCause::Start, errors: vec![] };
        let (status_tx, status) = watch::channel(first);
        let problems = Arc::new(Mutex::new(BTreeMap::new()));
        if let Some(resources) = &sources.resources {
            tokio::spawn(resources.clone().watch());
            tokio::spawn(report_resource_status(resources.clone(), problems.clone(), Arc::downgrade(&controller)));
        }
        let store_applied = Arc::new(Mutex::new(Vec::new()));
        let expiry = watch::channel(None).0;
        let store = controller.inner.store.clone();
        let flush = controller.inner.options.activity_flush;
        let counts = Arc::new(ReloadCounts::default());
        let mut actor = Actor {
            controller,
            sources: sources.clone(),
            installer,
            applied: BTreeSet::new(),
            problems,
            store_flows: Vec::new(),
            store_applied: store_applied.clone(),
            expiry: expiry.clone(),
            status: status_tx,
            counts: counts.clone(),
        };
        tokio::spawn(async move {
            let mut next = queue.recv().await;
            while let Some(request) = next.take() {
                match request {
                    Request::Reload { cause, done } => {
                        let mut waiting = vec![(cause, done)];
                        while let Ok(more) = queue.try_recv() {
                            match more {
                                Request::Reload { cause, done } => waiting.push((cause, done)),
                                other => {
                                    next = Some(other);
                                    break;
                                }
                            }
                        }
                        let cause = waiting.last().map_or(ReloadCause::File, |(cause, _)| *cause);
                        let status = actor.reload(cause).await;
                        for (_, done) in waiting {
                            let _ = done.send(status.clone());
                        }
                    }
                    Request::Check { candidate, done } => {
                        let _ = done.send(actor.check(*candidate).await.map(|_| ()));
                    }
                    Request::Activate { flow, number, done } => {
                        let _ = done.send(actor.activate(&flow, number).await);
                    }
                }
                if next.is_none() {
                    next = queue.recv().await;
                }
            }
        });
        let reloader = Reloader { requests, status, counts };
        tokio::spawn(reloader.clone().watch_file(sources.file.clone()));
        if let Some(resources) = sources.resources {
            let reloader = reloader.clone();
            let mut changes = resources.changes();
            tokio::spawn(async move {
                while changes.changed().await.is_ok() {
                    reloader.reload(ReloadCause::Resources).await;
                }
            });
        }
        tokio::spawn(reloader.clone().expire_sessions(expiry.subscribe()));
        if store.shared() {
            tokio::spawn(reloader.clone().watch_store(store, store_applied, flush));
        }
        reloader
    }

    /// Reloads and waits for the result. The request is queued when this is called (not when the
    /// future is first polled), so requests are handled in the order of the calls.
    pub fn reload(&self, cause: ReloadCause) -> impl Future<Output = ReloadStatus> + Send + 'static {
        let (done, result) = oneshot::channel();
        let sent = self.requests.send(Request::Reload { cause, done }).is_ok();
        let status = self.status.clone();
        async move { if sent { result.await.unwrap_or_else(|_| status.borrow().clone()) } else { status.borrow().clone() } }
    }

    /// Validates `candidate` — a store-managed flow ([`FlowOrigin::Store`], named by its spec) or a test
    /// session ([`FlowOrigin::TestSession`], named [`FlowOrigin::session_name`]) — together with
    /// everything that serves now except the flow of the same name, as an activation would (nothing is
    /// applied). `Ok` when it could serve.
    pub fn check(&self, candidate: SourcedFlow) -> impl Future<Output = Result<(), ActivateError>> + Send + 'static {
        let (done, result) = oneshot::channel();
        let sent = self.requests.send(Request::Check { candidate: Box::new(candidate), done }).is_ok();
        async move { if sent { result.await.unwrap_or_else(|_| Err(shutting_down())) } else { Err(shutting_down()) } }
    }

    /// Activates version `number` of the store-managed flow `flow`: validates it with everything else
    /// that serves, records it as the active version, and applies it (the answer is that reload's
    /// result). Activating the active version again just reloads. Queued when called, like
    /// [`Reloader::reload`].
    pub fn activate(&self, flow: &str, number: u64) -> impl Future<Output = Result<ReloadStatus, ActivateError>> + Send + 'static {
        let (done, result) = oneshot::channel();
        let sent = self.requests.send(Request::Activate { flow: flow.to_string(), number, done }).is_ok();
        async move { if sent { result.await.unwrap_or_else(|_| Err(shutting_down())) } else { Err(shutting_down()) } }
    }

    /// The result of the last reload.
    pub fn status(&self) -> ReloadStatus {
        self.status.borrow().clone()
    }

    /// Writes the reload metric families: reloads by result since start, and whether the last one was
    /// applied.
    pub fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write as _;
        use std::sync::atomic::Ordering;
        out.push_str("# HELP leannodes_reloads_total Configuration reloads since start, by result (every source: file, Flow resources, store, activations).\n# TYPE leannodes_reloads_total counter\n");
        let _ = writeln!(out, "leannodes_reloads_total{{result=\"applied\"}} {}", self.counts.applied.load(Ordering::Relaxed));
        let _ = writeln!(out, "leannodes_reloads_total{{result=\"failed\"}} {}", self.counts.failed.load(Ordering::Relaxed));
        out.push_str("# HELP leannodes_last_reload_success Whether the last reload was applied (1) or refused (0: the previous configuration keeps serving).\n# TYPE leannodes_last_reload_success gauge\n");
        let _ = writeln!(out, "leannodes_last_reload_success {}", u8::from(self.status.borrow().ok));
    }

    /// Reloads when the config file changes (modification time or size), checked twice a second.
    async fn watch_file(self, path: PathBuf) {
        let stamp = |p: &Path| std::fs::metadata(p).ok().map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()));
        let mut last = stamp(&path);
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tick.tick().await;
            let now = stamp(&path);
            if now != last && now.is_some() {
                last = now;
                self.reload(ReloadCause::File).await;
            }
        }
    }

    /// Reloads when a test session ends, so that it stops serving then.
    async fn expire_sessions(self, mut next: watch::Receiver<Option<i64>>) {
        loop {
            let at = *next.borrow_and_update();
            match at {
                None => {
                    if next.changed().await.is_err() {
                        return;
                    }
                }
                Some(at) => {
                    // A little after the end, so that the store no longer returns the session.
                    let wait = Duration::from_millis(u64::try_from(at - crate::unix_ms()).unwrap_or(0) + 20);
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {
                            self.reload(ReloadCause::Store).await;
                        }
                        changed = next.changed() => {
                            if changed.is_err() {
                                return;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Reloads when the store-managed flows of a shared store differ from the ones applied (an
    /// activation or a deletion on another replica), checked every `every`.
    async fn watch_store(self, store: Arc<dyn Store>, applied: Arc<Mutex<Vec<(String, u64)>>>, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match store_fingerprint(&*store).await {
                Ok(now) => {
                    if now != *applied.lock() {
                        self.reload(ReloadCause::Store).await;
                    }
                }
                Err(e) => tracing::warn!("cannot read store-managed flows: {e}"),
            }
        }
    }
}

impl Actor {
    /// One reload. An invalid configuration changes nothing.
    async fn reload(&mut self, cause: ReloadCause) -> ReloadStatus {
        let status = self.apply(cause).await;
        let count = if status.ok { &self.counts.applied } else { &self.counts.failed };
        count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Every replica reloads the same sources; the drain leader tells it once.
        if !status.ok && self.controller.is_leader() {
            let first = status.errors.first().cloned().unwrap_or_default();
            let more = if status.errors.len() > 1 { format!(" (and {} more problems)", status.errors.len() - 1) } else { String::new() };
            self.controller.publish_notice(
                crate::NoticeKind::ReloadFailed,
                None,
                "A configuration change was refused".into(),
                format!("{first}{more}. The previous configuration keeps serving."),
            );
        }
        self.status.send_replace(status.clone());
        status
    }

    async fn apply(&mut self, cause: ReloadCause) -> ReloadStatus {
        let at_ms = crate::unix_ms();
        let reject = |errors: Vec<String>| {
            for line in &errors {
                tracing::error!("reload rejected: {line}");
            }
            ReloadStatus { ok: false, at_ms, cause, errors }
        };
        self.refresh_store_flows().await;
        let extras = match self.extras(None) {
            Ok(extras) => extras,
            Err(errors) => return reject(errors),
        };
        let config = match self.compose(extras, None, true) {
            Composed::Ok(config) => *config,
            Composed::FileInvalid(errors) => return reject(errors),
            Composed::CandidateInvalid(_) => unreachable!("no candidate was given"),
        };
        let reload = self.controller.apply(&config);
        let flows: Vec<_> = config.flows.iter().filter_map(|f| self.controller.flow(&f.name)).collect();
        if let Err(e) = self.installer.install(&flows, &config).await {
            // The controller already holds the new flows; routes keep pointing at the old handles, which
            // stay valid, so nothing is dropped. The next good reload fixes both.
            tracing::error!("reload: {e}");
            return ReloadStatus { ok: false, at_ms, cause, errors: vec![e] };
        }
        let mut fingerprint: Vec<(String, u64)> = config
            .flows
            .iter()
            .filter_map(|f| match f.origin {
                FlowOrigin::Store { version } | FlowOrigin::TestSession { version, .. } => Some((f.name.clone(), version)),
                _ => None,
            })
            .collect();
        fingerprint.sort();
        *self.store_applied.lock() = fingerprint;
        let next_expiry = config
            .flows
            .iter()
            .filter_map(|f| match f.origin {
                FlowOrigin::TestSession { expires_ms, .. } => Some(expires_ms),
                _ => None,
            })
            .min();
        self.expiry.send_replace(next_expiry);
        let removed = reload.removed();
        tracing::info!(changed = ?reload.added, removed = ?removed, ?cause, "configuration reloaded");
        reload.finish();
        ReloadStatus { ok: true, at_ms, cause, errors: vec![] }
    }

    /// Validates `candidate` with everything else, changing nothing.
    async fn check(&mut self, candidate: SourcedFlow) -> Result<Config, ActivateError> {
        self.refresh_store_flows().await;
        let name = candidate.spec.name.clone();
        let node_names: Vec<String> = candidate.spec.node.iter().map(|n| n.name.clone()).collect();
        let candidate = Extra { key: format!("candidate:{name}"), origin: candidate.origin, created: None, spec: candidate.spec };
        let extras = self.extras(Some(&name)).map_err(ActivateError::FileInvalid)?;
        let config = match self.compose(extras, Some(candidate), false) {
            Composed::Ok(config) => *config,
            Composed::FileInvalid(errors) => return Err(ActivateError::FileInvalid(errors)),
            Composed::CandidateInvalid(problems) => return Err(ActivateError::Invalid { flow: name, number: 0, problems }),
        };
        let mut problems = Vec::new();
        if let Some(flow) = config.flow(&name) {
            // The callout gateway's limits (e.g. how long it can hold a request).
            if let Some(kind) = config.server.callout_gateway {
                for problem in leannodes_drivers::gateways::hold_problems(kind, std::slice::from_ref(flow)) {
                    problems.push(Diagnostic::new(
                        "/hold_timeout",
                        problem,
                        format!("lower `hold_timeout` to what {} can hold, or serve this flow through the proxy tier", kind.as_str()),
                    ));
                }
            }
            // What only the platform knows: the workloads it names exist.
            for node in &flow.nodes {
                let Ok(driver) = self.controller.inner.drivers.for_kind(node.workload.kind()) else { continue };
                if let Some(reason) = driver.missing(&node.workload).await {
                    let index = node_names.iter().position(|n| *n == node.name).unwrap_or(0);
                    problems.push(Diagnostic::new(
                        format!("/node/{index}/ref"),
                        format!("node `{}`: {reason}", node.name),
                        "create the workload first, or point `ref` at one that exists",
                    ));
                }
            }
        }
        if problems.is_empty() { Ok(config) } else { Err(ActivateError::Invalid { flow: name, number: 0, problems }) }
    }

    /// Validates, records and applies version `number` of `flow`.
    async fn activate(&mut self, flow: &str, number: u64) -> Result<ReloadStatus, ActivateError> {
        let store = self.controller.inner.store.clone();
        let docs = store.records::<FlowDoc>();
        let doc = docs.get(flow).await.map_err(ActivateError::Store)?.ok_or_else(|| ActivateError::UnknownFlow(flow.to_string()))?;
        let version = store
            .records::<FlowVersion>()
            .get(&FlowVersion::key_of(flow, number))
            .await
            .map_err(ActivateError::Store)?
            .ok_or_else(|| ActivateError::UnknownVersion { flow: flow.to_string(), number })?;
        let mut spec: FlowSpec = serde_json::from_value(version.value.spec).map_err(|e| ActivateError::Invalid {
            flow: flow.to_string(),
            number,
            problems: vec![Diagnostic::new("", format!("the stored version does not match the flow model: {e}"), "commit a new version")],
        })?;
        spec.name = flow.to_string();
        if let Err(e) = self.check(SourcedFlow { origin: FlowOrigin::Store { version: number }, spec }).await {
            return Err(match e {
                ActivateError::Invalid { flow, problems, .. } => ActivateError::Invalid { flow, number, problems },
                other => other,
            });
        }
        if doc.value.active != Some(number) {
            let mut next = doc.value.clone();
            next.active = Some(number);
            docs.update(&next, doc.version).await.map_err(|e| match e {
                StoreError::Conflict { .. } | StoreError::NotFound { .. } => ActivateError::Conflict(flow.to_string()),
                other => ActivateError::Store(other),
            })?;
        }
        Ok(self.reload(ReloadCause::Store).await)
    }

    /// Re-reads the active versions of the store-managed flows (keeping the last ones read when the
    /// store fails: a store outage must not take flows down).
    async fn refresh_store_flows(&mut self) {
        let store = self.controller.inner.store.clone();
        let read = async {
            let mut flows = Vec::new();
            for doc in all_records::<FlowDoc>(&*store).await? {
                let Some(number) = doc.active else { continue };
                let Some(version) = store.records::<FlowVersion>().get(&FlowVersion::key_of(&doc.name, number)).await? else {
                    tracing::error!(flow = %doc.name, number, "the active version of a store-managed flow is missing; it is left out");
                    continue;
                };
                match serde_json::from_value::<FlowSpec>(version.value.spec) {
                    Ok(mut spec) => {
                        spec.name = doc.name.clone();
                        flows.push(SourcedFlow { origin: FlowOrigin::Store { version: number }, spec });
                    }
                    Err(e) => {
                        tracing::error!(flow = %doc.name, number, "a stored version does not match the flow model ({e}); it is left out")
                    }
                }
            }
            for session in all_records::<TestSession>(&*store).await? {
                let Some(version) = store.records::<FlowVersion>().get(&FlowVersion::key_of(&session.flow, session.version)).await? else {
                    continue;
                };
                match serde_json::from_value::<FlowSpec>(version.value.spec) {
                    Ok(mut spec) => {
                        spec.name = FlowOrigin::session_name(&session.flow, session.version);
                        spec.hosts = vec![session.host.clone()];
                        let origin =
                            FlowOrigin::TestSession { flow: session.flow, version: session.version, expires_ms: session.expires_ms };
                        flows.push(SourcedFlow { origin, spec });
                    }
                    Err(e) => {
                        tracing::error!(flow = %session.flow, session.version, "a test session's version does not match the flow model ({e})")
                    }
                }
            }
            Ok::<_, StoreError>(flows)
        };
        match read.await {
            Ok(flows) => self.store_flows = flows,
            Err(e) => tracing::warn!("cannot read store-managed flows, keeping the ones last read: {e}"),
        }
    }

    /// The flows of the other sources: store-managed ones (except `without`), then `Flow` resources.
    fn extras(&self, without: Option<&str>) -> Result<Vec<Extra>, Vec<String>> {
        let mut extras: Vec<Extra> = self
            .store_flows
            .iter()
            .filter(|f| Some(f.spec.name.as_str()) != without)
            .map(|f| Extra {
                key: format!("{}:{}", f.origin.as_str(), f.spec.name),
                origin: f.origin.clone(),
                created: None,
                spec: f.spec.clone(),
            })
            .collect();
        if let Some(resources) = &self.sources.resources {
            extras.extend(resources.flows().into_iter().map(|r: ResourceFlow| Extra {
                key: r.key(),
                origin: FlowOrigin::Resource { namespace: r.namespace },
                created: r.created,
                spec: r.spec,
            }));
        }
        Ok(extras)
    }

    /// Validates the file with `extras` (and `candidate`, last). An extra that does not validate (alone
    /// or with the others) is left out and its problems are recorded; the rest applies. In a conflict,
    /// extras already serving come first, then older ones: the newcomer is refused. A candidate is
    /// never left out: its problems are the answer. `commit` records what was applied and left out.
    fn compose(&mut self, extras: Vec<Extra>, candidate: Option<Extra>, commit: bool) -> Composed {
        let path = self.sources.file.clone();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) => return Composed::FileInvalid(vec![format!("cannot read config file {}: {e}", path.display())]),
        };
        let lines = |d: &leannodes_config::Diagnostics| -> Vec<String> {
            d.to_string().lines().filter(|l| !l.starts_with("  help:")).map(str::to_string).collect()
        };
        let base = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let origin = path.display().to_string();
        let file_only = match leannodes_config::parse_toml(&text, &origin, base) {
            Ok(config) => config,
            Err(d) => return Composed::FileInvalid(lines(&d)),
        };
        if extras.is_empty() && candidate.is_none() {
            if commit {
                self.applied.clear();
                self.problems.lock().clear();
            }
            return Composed::Ok(Box::new(file_only));
        }
        if self.sources.resources.is_some() && !file_only.server.flows_from_file && !file_only.flows.is_empty() {
            return Composed::FileInvalid(vec![format!(
                "{}: flows_from does not include \"file\", but the file has [[flow]] tables",
                path.display()
            )]);
        }
        let file_flows = file_only.flows.len();
        let mut candidates: Vec<Extra> = extras;
        candidates.sort_by(|a, b| {
            (!self.applied.contains(&a.key), &a.created, &a.key).cmp(&(!self.applied.contains(&b.key), &b.created, &b.key))
        });
        let has_candidate = candidate.is_some();
        candidates.extend(candidate);
        let mut problems: BTreeMap<String, Vec<String>> = BTreeMap::new();
        loop {
            let sourced: Vec<SourcedFlow> =
                candidates.iter().map(|e| SourcedFlow { origin: e.origin.clone(), spec: e.spec.clone() }).collect();
            match leannodes_config::parse_toml_with_flows(&text, &origin, base, &sourced) {
                Ok(config) => {
                    if commit {
                        self.applied = candidates.iter().map(|e| e.key.clone()).collect();
                        for (key, list) in &problems {
                            tracing::warn!(flow = %key, "left out: {}", list.join("; "));
                        }
                        *self.problems.lock() = problems;
                    }
                    return Composed::Ok(Box::new(config));
                }
                Err(d) => {
                    let last = candidates.len() - 1;
                    let mut blamed = BTreeSet::new();
                    let mut own = Vec::new();
                    for item in &d.items {
                        let index = item
                            .pointer
                            .strip_prefix("/flow/")
                            .and_then(|rest| rest.split('/').next())
                            .and_then(|i| i.parse::<usize>().ok());
                        let Some(i) = index.and_then(|i| i.checked_sub(file_flows)).filter(|i| *i < candidates.len()) else { continue };
                        let inner = item.pointer[format!("/flow/{}", i + file_flows).len()..].to_string();
                        if has_candidate && i == last {
                            own.push(Diagnostic { pointer: inner, span: None, message: item.message.clone(), help: item.help.clone() });
                        } else {
                            problems.entry(candidates[i].key.clone()).or_default().push(format!("spec{inner}: {}", item.message));
                            blamed.insert(i);
                        }
                    }
                    if !own.is_empty() {
                        return Composed::CandidateInvalid(own);
                    }
                    if blamed.is_empty() {
                        return Composed::FileInvalid(lines(&d));
                    }
                    for i in blamed.into_iter().rev() {
                        candidates.remove(i);
                    }
                }
            }
        }
    }
}

/// Every record of a family (all pages).
async fn all_records<T: Record>(store: &dyn Store) -> Result<Vec<T>, StoreError> {
    let records = store.records::<T>();
    let mut page = Page::first(500);
    let mut out = Vec::new();
    loop {
        let listing = records.list("", &page).await?;
        out.extend(listing.items.into_iter().map(|v| v.value));
        match listing.next {
            Some(next) => page.after = Some(next),
            None => return Ok(out),
        }
    }
}

/// `(flow name, version)` of the store-managed flows' active versions and of the test sessions, sorted:
/// what a reload would serve from the store.
async fn store_fingerprint(store: &dyn Store) -> Result<Vec<(String, u64)>, StoreError> {
    let mut out: Vec<(String, u64)> = all_records::<FlowDoc>(store).await?.into_iter().filter_map(|d| Some((d.name, d.active?))).collect();
    out.extend(all_records::<TestSession>(store).await?.into_iter().map(|t| (FlowOrigin::session_name(&t.flow, t.version), t.version)));
    out.sort();
    Ok(out)
}

/// The answer to requests made while the actor stops.
fn shutting_down() -> ActivateError {
    ActivateError::FileInvalid(vec!["LeanNodes is shutting down".into()])
}

/// Keeps each `Flow` resource's status current (only changes are written): `Valid=False` with the
/// problems when it was left out, else its flow's state.
async fn report_resource_status(
    resources: Arc<FlowResources>,
    problems: Arc<Mutex<BTreeMap<String, Vec<String>>>>,
    controller: std::sync::Weak<Controller>,
) {
    let mut sent: BTreeMap<String, FlowResourceStatus> = BTreeMap::new();
    loop {
        let Some(controller) = controller.upgrade() else { return };
        let flows = resources.flows();
        let problems = problems.lock().clone();
        for flow in &flows {
            let key = flow.key();
            let status = match problems.get(&key) {
                Some(errors) => FlowResourceStatus {
                    state: None,
                    last_wake: None,
                    last_error: errors.first().cloned(),
                    conditions: vec![FlowCondition {
                        type_: "Valid".into(),
                        status: "False".into(),
                        reason: "Invalid".into(),
                        message: errors.join("\n"),
                    }],
                },
                None => {
                    // `True` only once this resource's flow is served: until the reloader has validated
                    // and applied it (or if a flow of another origin holds the name), say nothing yet.
                    let Some(handle) = controller
                        .flow(&flow.spec.name)
                        .filter(|f| matches!(&f.spec.origin, FlowOrigin::Resource { namespace } if *namespace == flow.namespace))
                    else {
                        continue;
                    };
                    let status = handle.status();
                    let last_wake = status
                        .last_wake_ms
                        .and_then(|ms| u64::try_from(ms).ok())
                        .map(|ms| humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_millis(ms)).to_string());
                    FlowResourceStatus {
                        state: Some(status.state.as_str().to_string()),
                        last_wake,
                        last_error: status.failure.map(|f| f.message),
                        conditions: vec![FlowCondition {
                            type_: "Valid".into(),
                            status: "True".into(),
                            reason: "Accepted".into(),
                            message: String::new(),
                        }],
                    }
                }
            };
            if sent.get(&key) != Some(&status) {
                match resources.patch_status(&flow.namespace, &flow.name, &status).await {
                    Ok(()) => {
                        sent.insert(key, status);
                    }
                    Err(e) => tracing::warn!(flow = %key, "cannot update Flow status: {e}"),
                }
            }
        }
        sent.retain(|k, _| flows.iter().any(|f| f.key() == *k));
        drop(controller);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
