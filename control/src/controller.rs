//! The controller: registry of flows and workloads, the wake coordinator, manual operations, and the
//! background tasks (idle drainers, the store writer, executions).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use leannodes_config::{Config, NodeKind, Workload, WorkloadId};
use leannodes_drivers::{Drivers, EndpointSet};
use leannodes_store::{ExecutionRecord, FlowStateRecord, Lease, Listing, Page, SleepLedger, Store, StoreError};
use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::flow::{FlowHandle, FlowState, FlowStatus, NodeState, Trigger};
use crate::workload::WorkloadRuntime;
use crate::{EventBus, coordination, drain, execution, unix_ms};

/// Why a wake or an operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WakeError {
    /// No flow has this name.
    #[error("no flow named `{0}`")]
    UnknownFlow(String),
    /// The flow is disabled.
    #[error("flow `{0}` is disabled")]
    Disabled(String),
}

/// Tunables of the controller.
#[derive(Debug, Clone)]
pub struct ControllerOptions {
    /// This replica's name in leases (cold-start claims, drain leadership) and logs.
    pub replica_id: String,
    /// Time to live of this replica's leases.
    pub claim_ttl: Duration,
    /// How often activity is flushed to a shared store and merged with other replicas'.
    pub activity_flush: Duration,
    /// The wall clock keep-warm schedules and savings read.
    pub clock: crate::WallClock,
    /// The cost model of the savings estimate (`[server.savings]`).
    pub savings: leannodes_config::Savings,
}

impl Default for ControllerOptions {
    fn default() -> Self {
        ControllerOptions {
            replica_id: "local".into(),
            claim_ttl: leannodes_config::defaults::CLAIM_TTL,
            activity_flush: leannodes_config::defaults::ACTIVITY_FLUSH,
            clock: crate::WallClock::System,
            savings: leannodes_config::Savings::default(),
        }
    }
}

impl ControllerOptions {
    /// The options a configuration's `[server]` section sets; `hostname` names the replica when
    /// `replica_id` is not set.
    pub fn from_config(server: &leannodes_config::Server, hostname: &str) -> ControllerOptions {
        ControllerOptions {
            replica_id: server.replica_id.clone().unwrap_or_else(|| hostname.to_string()),
            claim_ttl: server.claim_ttl,
            activity_flush: server.activity_flush,
            clock: crate::WallClock::System,
            savings: server.savings.clone(),
        }
    }
}

/// A job for the store writer.
enum Write {
    Execution(Box<ExecutionRecord>),
    Ledger(SleepLedger),
    Flush(oneshot::Sender<()>),
}

/// The window of the savings gauges.
const METRIC_SAVINGS_WINDOW: Duration = Duration::from_secs(30 * 24 * 3600);

/// Every sleep ledger saved in the store.
async fn load_ledgers(store: &dyn Store) -> Result<Vec<SleepLedger>, StoreError> {
    let mut out = Vec::new();
    let mut page = Page { after: None, limit: 500 };
    loop {
        let listing = store.records::<SleepLedger>().list("", &page).await?;
        out.extend(listing.items.into_iter().map(|v| v.value));
        match listing.next {
            Some(next) => page.after = Some(next),
            None => return Ok(out),
        }
    }
}

/// Shared state behind [`Controller`]; background tasks hold it.
pub(crate) struct Inner {
    flows: RwLock<BTreeMap<String, Arc<FlowHandle>>>,
    workloads: RwLock<HashMap<WorkloadId, Arc<WorkloadRuntime>>>,
    pub(crate) drivers: Drivers,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) events: EventBus,
    writer: mpsc::UnboundedSender<Write>,
    tasks: Mutex<JoinSet<()>>,
    pub(crate) options: ControllerOptions,
    /// Whether this replica holds the drain leadership (always, with a store no one shares).
    pub(crate) leader: AtomicBool,
    /// The leadership lease while held (released at shutdown).
    pub(crate) leader_lease: Mutex<Option<Lease>>,
    /// The runtime the controller was started on: executions and drainers run there, whichever runtime
    /// (e.g. the proxy's) asked for them.
    runtime: tokio::runtime::Handle,
    /// Wake durations and failures, from the event bus.
    pub(crate) wake_metrics: Arc<crate::metrics::WakeMetrics>,
    /// Pin and disable overrides by flow, as saved in the store (read at start, kept current): a flow
    /// that joins later (a store-managed flow, a flow added to the file) gets its saved overrides back.
    saved: Mutex<HashMap<String, FlowStateRecord>>,
    /// When each flow slept (savings).
    pub(crate) ledgers: crate::savings::Ledgers,
    /// Notices for operators.
    pub(crate) notices: crate::NoticeBus,
    /// The store's and the platforms' last health checks.
    pub(crate) health: crate::health::Health,
    /// Finished spans, for the trace exporter.
    pub(crate) spans: crate::trace::SpanBus,
}

impl Inner {
    /// The runtime of a workload, created on first use. A workload without a driver gets one whose wake
    /// fails with the reason.
    pub(crate) fn workload(&self, workload: &Arc<Workload>) -> Arc<WorkloadRuntime> {
        if let Some(w) = self.workloads.read().get(&workload.id) {
            return w.clone();
        }
        let mut map = self.workloads.write();
        map.entry(workload.id.clone())
            .or_insert_with(|| {
                let driver = match self.drivers.for_kind(workload.kind()) {
                    Ok(d) => d.clone(),
                    Err(e) => Arc::new(crate::workload::Unavailable(e.to_string())),
                };
                Arc::new(WorkloadRuntime::new(workload.clone(), driver))
            })
            .clone()
    }

    /// Queues an execution snapshot for the store (written in order by one background task).
    pub(crate) fn persist(&self, record: ExecutionRecord) {
        let _ = self.writer.send(Write::Execution(Box::new(record)));
    }

    /// Queues a flow's sleep ledger for the store.
    pub(crate) fn persist_ledger(&self, ledger: SleepLedger) {
        let _ = self.writer.send(Write::Ledger(ledger));
    }

    /// Waits until every snapshot queued so far is written, so reads see them.
    pub(crate) async fn flush(&self) {
        let (done, written) = oneshot::channel();
        if self.writer.send(Write::Flush(done)).is_ok() {
            let _ = written.await;
        }
    }

    pub(crate) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let mut tasks = self.tasks.lock();
        while tasks.try_join_next().is_some() {}
        tasks.spawn_on(task, &self.runtime);
    }

    pub(crate) fn flow(&self, name: &str) -> Option<Arc<FlowHandle>> {
        self.flows.read().get(name).cloned()
    }

    pub(crate) fn all_flows(&self) -> Vec<Arc<FlowHandle>> {
        self.flows.read().values().cloned().collect()
    }

    /// Whether wakes and drains of `flow` are coordinated with other replicas: the store is shared and
    /// every node is visible to all replicas (no process nodes, which each replica runs for itself).
    pub(crate) fn coordinated(&self, flow: &FlowHandle) -> bool {
        self.store.shared() && flow.spec.nodes.iter().all(|n| n.workload.kind() != NodeKind::Process)
    }

    /// The other flows that hold the workload of `flow`'s node `node` now.
    pub(crate) fn workload_users(&self, flow: &FlowHandle, node: &str) -> Vec<String> {
        flow.spec.nodes.iter().find(|n| n.name == node).map(|n| self.workload(&n.workload).other_users(flow.name())).unwrap_or_default()
    }

    /// The flows other than `flow` that hold `workload` now, so stopping it would take it from them.
    /// On this replica: the flows that woke it and have not released it. For a coordinated flow (its
    /// workloads shared with other replicas) also every flow that uses the workload and, by the activity
    /// merged from all replicas, was used within its idle window or is held awake by a keep-warm window:
    /// another replica's awake flow keeps the workload, though this replica never woke it.
    pub(crate) fn holders(&self, workload: &WorkloadRuntime, flow: &FlowHandle) -> Vec<String> {
        let mut holders = workload.other_users(flow.name());
        if !self.coordinated(flow) {
            return holders;
        }
        let flows = self.flows.read();
        for other in flows.values() {
            let name = other.name();
            if name == flow.name() || holders.iter().any(|h| h == name) {
                continue;
            }
            let uses = other.spec.nodes.iter().any(|n| n.workload.id == workload.workload.id);
            let held = other.activity.idle_for() < other.spec.idle_after || other.keep_warm_until().is_some();
            if uses && held {
                holders.push(name.to_string());
            }
        }
        holders
    }

    /// Whether this replica may drain `flow` now.
    pub(crate) fn may_drain(&self, flow: &FlowHandle) -> bool {
        !self.coordinated(flow) || self.leader.load(Ordering::Relaxed)
    }

    /// Starts an execution when the flow is asleep, draining, or failed with its backoff elapsed.
    pub(crate) fn start_wake(self: &Arc<Self>, flow: &Arc<FlowHandle>, trigger: Trigger) {
        let now = Instant::now();
        let start = flow.status.send_if_modified(|s| match s.state {
            FlowState::Asleep | FlowState::Draining => {
                s.state = FlowState::Waking;
                true
            }
            FlowState::Failed if s.retry_at.is_none_or(|at| now >= at) => {
                s.state = FlowState::Waking;
                true
            }
            _ => false,
        });
        if start {
            self.spawn(execution::run(self.clone(), flow.clone(), trigger));
        }
    }

    async fn save_flow_state(&self, flow: &FlowHandle) {
        let record = FlowStateRecord {
            flow: flow.name().to_string(),
            state: flow.state().as_str().to_string(),
            pinned: (flow.is_pinned() != flow.spec.pinned).then_some(flow.is_pinned()),
            disabled: (flow.is_disabled() != flow.spec.disabled).then_some(flow.is_disabled()),
            updated_ms: unix_ms(),
        };
        self.saved.lock().insert(record.flow.clone(), record.clone());
        if let Err(e) = self.store.put_flow_state(&record).await {
            tracing::warn!(flow = flow.name(), "cannot save flow state: {e}");
        }
    }

    /// Gives a new handle the pin and disable overrides saved for its flow.
    fn restore_overrides(&self, handle: &FlowHandle) {
        let saved = self.saved.lock();
        let Some(record) = saved.get(handle.name()) else { return };
        if let Some(p) = record.pinned {
            handle.pinned.store(p, std::sync::atomic::Ordering::Relaxed);
        }
        if let Some(d) = record.disabled {
            handle.disabled.store(d, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// How often driver warnings (e.g. autoscaler conflicts) are refreshed.
const WARNINGS_EVERY: Duration = Duration::from_secs(30);

/// Refreshes every workload's warnings now and then every [`WARNINGS_EVERY`].
async fn refresh_warnings(inner: std::sync::Weak<Inner>) {
    loop {
        let Some(strong) = inner.upgrade() else { return };
        let workloads: Vec<_> = strong.workloads.read().values().cloned().collect();
        drop(strong);
        futures::future::join_all(workloads.iter().map(|w| w.refresh_warnings())).await;
        tokio::time::sleep(WARNINGS_EVERY).await;
    }
}

/// A configuration applied by [`Controller::apply`], waiting for the routes to switch.
#[must_use = "call finish() once the new routes are in place"]
pub struct Reload {
    inner: Arc<Inner>,
    /// Names of flows that are new or changed.
    pub added: Vec<String>,
    replaced: Vec<Arc<FlowHandle>>,
    removed: Vec<Arc<FlowHandle>>,
}

impl std::fmt::Debug for Reload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reload").field("added", &self.added).field("removed", &self.removed.len()).finish_non_exhaustive()
    }
}

impl Reload {
    /// Names of the flows that were removed.
    pub fn removed(&self) -> Vec<String> {
        self.removed.iter().map(|f| f.name().to_string()).collect()
    }

    /// Retires the old handles: waiters of changed flows move on, waiters of removed flows give up, and
    /// removed flows release (and, when no other flow holds them, stop) their workloads.
    ///
    /// A changed flow that was awake stays awake: its new definition is woken at once (what already
    /// runs is ready at once, new nodes start) and the workloads only the old definition used are
    /// stopped, unless another flow holds them. Otherwise nothing would ever drain them. A changed flow
    /// that was waking goes on waking under its new definition, which adopts the nodes the old wake
    /// started (the old wake, cancelled, leaves the shared ones running).
    pub fn finish(self) {
        for old in self.replaced {
            let state = old.state();
            old.status.send_modify(|s| s.removed = true);
            let Some(new) = self.inner.flow(old.name()).filter(|_| matches!(state, FlowState::Awake | FlowState::Waking)) else {
                continue;
            };
            if new.state() == FlowState::Asleep && !new.is_disabled() {
                self.inner.start_wake(&new, Trigger::Reload);
            }
            if state == FlowState::Waking {
                continue;
            }
            let kept: std::collections::HashSet<&str> = new.spec.nodes.iter().map(|n| n.workload.id.as_str()).collect();
            let dropped: Vec<_> = old
                .spec
                .nodes
                .iter()
                .filter(|n| !kept.contains(n.workload.id.as_str()))
                .map(|n| self.inner.workload(&n.workload))
                .collect();
            if dropped.is_empty() {
                continue;
            }
            let name = old.name().to_string();
            self.inner.spawn(async move {
                for workload in dropped.into_iter().rev() {
                    workload.release(&name);
                    if workload.other_users(&name).is_empty() {
                        if let Err(e) = workload.stop().await {
                            tracing::warn!(flow = %name, workload = %workload.workload.id, "stopping a node the new definition dropped failed: {e}");
                        }
                    }
                }
            });
        }
        for old in self.removed {
            old.status.send_modify(|s| s.removed = true);
            let inner = self.inner.clone();
            self.inner.spawn(async move {
                drain::drain_flow(&inner, &old, drain::Mode::Forced).await;
            });
        }
    }
}

/// The orchestrator of one LeanNodes instance. Dropping it stops its background tasks and, with them,
/// every process it started.
pub struct Controller {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller").field("flows", &self.flow_names()).finish_non_exhaustive()
    }
}

/// A flow as the management API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct FlowView {
    /// Name.
    pub name: String,
    /// State.
    pub state: FlowState,
    /// Pinned (never drained).
    pub pinned: bool,
    /// Disabled.
    pub disabled: bool,
    /// Milliseconds since the last activity.
    pub idle_ms: u64,
    /// Drain after this much idleness.
    pub idle_after_ms: u64,
    /// Running or last execution.
    pub execution: Option<String>,
    /// Why the last wake failed.
    pub failure: Option<crate::FlowFailure>,
    /// Milliseconds until a retry is allowed, while backing off.
    pub retry_in_ms: Option<u64>,
    /// Nodes in start order.
    pub nodes: Vec<NodeView>,
    /// While a keep-warm window holds it awake: when the window closes (Unix milliseconds).
    pub keep_warm_until_ms: Option<i64>,
    /// Outside keep-warm windows: when the next window's wake starts (Unix milliseconds).
    pub next_keep_warm_ms: Option<i64>,
}

/// A node as the management API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct NodeView {
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: &'static str,
    /// Workload identity.
    pub workload: String,
    /// State within the flow.
    pub state: NodeState,
    /// Detail (last check or failure).
    pub detail: Option<String>,
    /// Whether the workload is running now.
    pub running: bool,
    /// Names of the nodes it waits for.
    pub after: Vec<String>,
    /// Things to know that do not stop a wake (e.g. an autoscaler that also scales this workload).
    pub warnings: Vec<String>,
}

impl Controller {
    /// Builds the registry from `config`, applies overrides saved in the store, and starts the drainers.
    /// Must be called within a tokio runtime.
    pub async fn start(
        config: &Config,
        drivers: Drivers,
        store: Arc<dyn Store>,
        options: ControllerOptions,
    ) -> Result<Controller, StoreError> {
        let (writer, mut queue) = mpsc::unbounded_channel::<Write>();
        let inner = Arc::new(Inner {
            flows: RwLock::new(BTreeMap::new()),
            workloads: RwLock::new(HashMap::new()),
            drivers,
            store: store.clone(),
            events: EventBus::default(),
            writer,
            tasks: Mutex::new(JoinSet::new()),
            runtime: tokio::runtime::Handle::current(),
            options,
            leader: AtomicBool::new(false),
            leader_lease: Mutex::new(None),
            wake_metrics: Arc::default(),
            saved: Mutex::new(HashMap::new()),
            ledgers: crate::savings::Ledgers::default(),
            notices: crate::NoticeBus::default(),
            health: crate::health::Health::default(),
            spans: crate::trace::SpanBus::default(),
        });
        inner.spawn(crate::metrics::WakeMetrics::record(Arc::downgrade(&inner.wake_metrics), inner.events.clone()));
        *inner.saved.lock() = store.flow_states().await?.into_iter().map(|r| (r.flow.clone(), r)).collect();
        {
            let mut flows = inner.flows.write();
            for spec in &config.flows {
                let handle = Arc::new(FlowHandle::new(spec.clone()));
                inner.restore_overrides(&handle);
                flows.insert(spec.name.clone(), handle);
            }
        }
        for flow in inner.flows.read().values() {
            for node in &flow.spec.nodes {
                inner.workload(&node.workload);
            }
        }
        inner.ledgers.load(load_ledgers(&*store).await?);
        let writer_store = store.clone();
        inner.spawn(async move {
            while let Some(job) = queue.recv().await {
                match job {
                    Write::Execution(record) => {
                        if let Err(e) = writer_store.put_execution(&record).await {
                            tracing::warn!(execution = %record.id, "cannot save execution: {e}");
                        }
                    }
                    Write::Ledger(ledger) => {
                        if let Err(e) = writer_store.records::<SleepLedger>().upsert(&ledger).await {
                            tracing::warn!(flow = %ledger.flow, "cannot save the sleep ledger: {e}");
                        }
                    }
                    Write::Flush(done) => {
                        let _ = done.send(());
                    }
                }
            }
        });
        let flows: Vec<_> = inner.flows.read().values().cloned().collect();
        for flow in flows {
            inner.spawn(crate::schedule::keep_warm_loop(Arc::downgrade(&inner), flow.clone()));
            inner.spawn(crate::savings::ledger_loop(Arc::downgrade(&inner), flow.clone()));
            inner.spawn(drain::idle_loop(Arc::downgrade(&inner), flow));
        }
        inner.spawn(refresh_warnings(Arc::downgrade(&inner)));
        inner.spawn(crate::health::health_loop(Arc::downgrade(&inner)));
        if store.shared() {
            tracing::info!(replica = %inner.options.replica_id, store = store.backend(), "coordinating with other replicas through the store");
            inner.spawn(coordination::leader_loop(Arc::downgrade(&inner)));
            inner.spawn(coordination::activity_loop(Arc::downgrade(&inner)));
        }
        Ok(Controller { inner })
    }

    /// The flow with this name.
    pub fn flow(&self, name: &str) -> Option<Arc<FlowHandle>> {
        self.inner.flow(name)
    }

    /// Applies a new configuration: unchanged flows keep their handle (state, activity, waiters); changed
    /// flows get a new handle that carries over state and activity when their nodes are unchanged; new
    /// flows start asleep. Old handles of changed and removed flows stay valid until
    /// [`Reload::finish`], which the caller runs once the new routes are in place: waiters on a changed
    /// flow then move to its new handle, and waiters on a removed flow learn it is gone.
    pub fn apply(&self, config: &Config) -> Reload {
        let old: BTreeMap<String, Arc<FlowHandle>> = self.inner.flows.read().clone();
        let mut next = BTreeMap::new();
        let mut replaced = Vec::new();
        let mut added = Vec::new();
        for spec in &config.flows {
            match old.get(&spec.name) {
                Some(handle) if *handle.spec == **spec => {
                    next.insert(spec.name.clone(), handle.clone());
                }
                previous => {
                    let handle = Arc::new(FlowHandle::new(spec.clone()));
                    match previous {
                        Some(prev) => {
                            handle.carry_over(prev);
                            replaced.push(prev.clone());
                        }
                        None => self.inner.restore_overrides(&handle),
                    }
                    next.insert(spec.name.clone(), handle.clone());
                    added.push(handle);
                }
            }
        }
        let removed: Vec<Arc<FlowHandle>> = old.iter().filter(|(name, _)| !next.contains_key(*name)).map(|(_, h)| h.clone()).collect();
        {
            // Workloads whose definition changed are replaced when they are not running; a running one
            // keeps its old definition until it stops.
            let mut workloads = self.inner.workloads.write();
            for flow in next.values() {
                for node in &flow.spec.nodes {
                    let stale = workloads.get(&node.workload.id).is_some_and(|w| *w.workload != *node.workload && !w.is_running());
                    if stale {
                        workloads.remove(&node.workload.id);
                    }
                }
            }
        }
        for flow in next.values() {
            for node in &flow.spec.nodes {
                self.inner.workload(&node.workload);
            }
        }
        *self.inner.flows.write() = next;
        for flow in &added {
            self.inner.spawn(crate::schedule::keep_warm_loop(Arc::downgrade(&self.inner), flow.clone()));
            self.inner.spawn(crate::savings::ledger_loop(Arc::downgrade(&self.inner), flow.clone()));
            self.inner.spawn(drain::idle_loop(Arc::downgrade(&self.inner), flow.clone()));
        }
        Reload { inner: self.inner.clone(), added: added.iter().map(|f| f.name().to_string()).collect(), replaced, removed }
    }

    /// The live addresses of a workload whose driver tracks them (Kubernetes endpoints), for the proxy.
    pub fn endpoints(&self, workload: &Arc<Workload>) -> Option<EndpointSet> {
        self.inner.workload(workload).endpoints()
    }

    /// Names of all flows.
    pub fn flow_names(&self) -> Vec<String> {
        self.inner.flows.read().keys().cloned().collect()
    }

    /// The event bus of execution events.
    pub fn events(&self) -> &EventBus {
        &self.inner.events
    }

    /// Asks the flow to wake (single flight: at most one execution per flow runs, and concurrent callers
    /// share it) and returns its status channel at once. Wait on the channel for
    /// [`FlowStatus::is_settled`].
    pub fn wake(&self, name: &str, trigger: Trigger) -> Result<watch::Receiver<FlowStatus>, WakeError> {
        let flow = self.flow(name).ok_or_else(|| WakeError::UnknownFlow(name.to_string()))?;
        self.wake_flow(&flow, trigger)
    }

    /// Like [`Controller::wake`] for a handle the caller already holds (the proxy's hot path).
    pub fn wake_flow(&self, flow: &Arc<FlowHandle>, trigger: Trigger) -> Result<watch::Receiver<FlowStatus>, WakeError> {
        if flow.is_disabled() {
            return Err(WakeError::Disabled(flow.name().to_string()));
        }
        let rx = flow.subscribe();
        if rx.borrow().state != FlowState::Awake {
            self.inner.start_wake(flow, trigger);
        }
        Ok(rx)
    }

    /// Wakes the flow and waits up to `budget` for it to settle; returns the last status seen.
    pub async fn wake_and_wait(&self, name: &str, trigger: Trigger, budget: Duration) -> Result<FlowStatus, WakeError> {
        let mut rx = self.wake(name, trigger)?;
        let _ = tokio::time::timeout(budget, rx.wait_for(FlowStatus::is_settled)).await;
        Ok(rx.borrow().clone())
    }

    /// Drains the flow now, whatever its activity (manual drain). Waits until done.
    pub async fn drain(&self, name: &str) -> Result<(), WakeError> {
        let flow = self.flow(name).ok_or_else(|| WakeError::UnknownFlow(name.to_string()))?;
        drain::drain_flow(&self.inner, &flow, drain::Mode::Forced).await;
        Ok(())
    }

    /// Pins or unpins the flow (a pinned flow is never drained). Saved in the store.
    pub async fn set_pinned(&self, name: &str, pinned: bool) -> Result<(), WakeError> {
        let flow = self.flow(name).ok_or_else(|| WakeError::UnknownFlow(name.to_string()))?;
        flow.pinned.store(pinned, std::sync::atomic::Ordering::Relaxed);
        flow.settings_changed.notify_waiters();
        self.inner.save_flow_state(&flow).await;
        Ok(())
    }

    /// Disables or enables the flow. Saved in the store.
    pub async fn set_disabled(&self, name: &str, disabled: bool) -> Result<(), WakeError> {
        let flow = self.flow(name).ok_or_else(|| WakeError::UnknownFlow(name.to_string()))?;
        if flow.disabled.swap(disabled, std::sync::atomic::Ordering::Relaxed) != disabled {
            let (kind, title, detail) = if disabled {
                (crate::NoticeKind::FlowDisabled, format!("{name} was disabled"), "Requests get 503 flow_disabled and nothing wakes it.")
            } else {
                (crate::NoticeKind::FlowEnabled, format!("{name} was enabled"), "Requests wake it again.")
            };
            self.publish_notice(kind, Some(name), title, detail.into());
        }
        self.inner.save_flow_state(&flow).await;
        Ok(())
    }

    /// The bus of finished spans (the trace exporter subscribes to it; with no subscriber, none are made).
    pub fn spans(&self) -> &crate::trace::SpanBus {
        &self.inner.spans
    }

    /// The bus of notices for operators (the notifier subscribes to it).
    pub fn notices(&self) -> &crate::NoticeBus {
        &self.inner.notices
    }

    /// Publishes a notice from this replica. A full hold queue is told at most once a minute per flow.
    pub fn publish_notice(&self, kind: crate::NoticeKind, flow: Option<&str>, title: String, detail: String) {
        let notice = crate::Notice::new(kind, flow, title, detail, &self.inner.options.replica_id);
        if kind == crate::NoticeKind::HoldQueueFull {
            self.inner.notices.publish_unrepeated(notice);
        } else {
            self.inner.notices.publish(notice);
        }
    }

    /// Execution history, newest first.
    pub async fn executions(&self, flow: Option<&str>, page: &Page) -> Result<Listing<ExecutionRecord>, StoreError> {
        self.inner.flush().await;
        self.inner.store.executions(flow, page).await
    }

    /// One execution.
    pub async fn execution(&self, id: &str) -> Result<Option<ExecutionRecord>, StoreError> {
        self.inner.flush().await;
        self.inner.store.execution(id).await
    }

    /// Every flow as the management API shows it.
    pub fn views(&self) -> Vec<FlowView> {
        let flows: Vec<_> = self.inner.flows.read().values().cloned().collect();
        flows.iter().map(|f| self.view(f)).collect()
    }

    fn view(&self, flow: &FlowHandle) -> FlowView {
        let status = flow.status();
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let (keep_warm_until_ms, next_keep_warm_ms) = self.keep_warm_now(flow, self.inner.options.clock.now_ms());
        FlowView {
            keep_warm_until_ms,
            next_keep_warm_ms,
            name: flow.name().to_string(),
            state: status.state,
            pinned: flow.is_pinned(),
            disabled: flow.is_disabled(),
            idle_ms: millis(flow.activity.idle_for()),
            idle_after_ms: millis(flow.spec.idle_after),
            execution: status.execution.clone(),
            failure: status.failure.clone(),
            retry_in_ms: status.retry_at.and_then(|at| at.checked_duration_since(Instant::now())).map(millis),
            nodes: flow
                .spec
                .nodes
                .iter()
                .zip(&status.nodes)
                .map(|(node, s)| {
                    let workload = self.inner.workload(&node.workload);
                    NodeView {
                        name: node.name.clone(),
                        kind: node.workload.kind().as_str(),
                        workload: node.workload.id.to_string(),
                        state: s.state,
                        detail: s.detail.clone(),
                        running: workload.is_running(),
                        after: node.after.iter().map(|a| flow.spec.nodes[*a].name.clone()).collect(),
                        warnings: workload.warnings(),
                    }
                })
                .collect(),
        }
    }

    /// Writes the control plane's metric families (wake durations and stages, wake failures, drains, flow
    /// states, leadership, build info).
    pub fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write as _;
        self.inner.wake_metrics.render(out);
        out.push_str(
            "# HELP leannodes_flow_state Flow state: 0 asleep, 1 waking, 2 awake, 3 draining, 4 failed.\n# TYPE leannodes_flow_state gauge\n",
        );
        for view in self.views() {
            let _ = writeln!(out, "leannodes_flow_state{{flow=\"{}\"}} {}", crate::metrics::escape(&view.name), view.state.gauge_value());
        }
        self.inner.health.render(out);
        let savings = self.savings(METRIC_SAVINGS_WINDOW);
        out.push_str("# HELP leannodes_savings Estimated cost saved by sleeping over the last 30 days, in [server.savings] currency.\n# TYPE leannodes_savings gauge\n");
        for f in &savings.flows {
            let _ = writeln!(out, "leannodes_savings{{flow=\"{}\"}} {}", crate::metrics::escape(&f.flow), f.saved);
        }
        out.push_str("# HELP leannodes_asleep_ratio Share of the last 30 days (as far as observed) the flow was asleep.\n# TYPE leannodes_asleep_ratio gauge\n");
        for f in &savings.flows {
            #[allow(clippy::cast_precision_loss)]
            let ratio = if f.observed_ms == 0 { 0.0 } else { f.asleep_ms as f64 / f.observed_ms as f64 };
            let _ = writeln!(out, "leannodes_asleep_ratio{{flow=\"{}\"}} {ratio}", crate::metrics::escape(&f.flow));
        }
        out.push_str(
            "# HELP leannodes_leader Whether this replica holds the drain leadership (1) or not (0).\n# TYPE leannodes_leader gauge\n",
        );
        let _ =
            writeln!(out, "leannodes_leader{{replica=\"{}\"}} {}", crate::metrics::escape(self.replica_id()), u8::from(self.is_leader()));
        out.push_str("# HELP leannodes_build_info The running version (always 1).\n# TYPE leannodes_build_info gauge\n");
        let _ = writeln!(out, "leannodes_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"));
    }

    /// Whether this replica holds the drain leadership (always true with a store no one shares).
    pub fn is_leader(&self) -> bool {
        !self.inner.store.shared() || self.inner.leader.load(Ordering::Relaxed)
    }

    /// This replica's name.
    pub fn replica_id(&self) -> &str {
        &self.inner.options.replica_id
    }

    /// Stops every running process workload (graceful shutdown) and hands the drain leadership on.
    /// Flows end asleep.
    pub async fn shutdown(&self) {
        self.inner.tasks.lock().abort_all();
        let lease = self.inner.leader_lease.lock().take();
        if let Some(lease) = lease {
            if let Err(e) = self.inner.store.release_lease(&lease).await {
                tracing::warn!("cannot release the drain leadership: {e}");
            }
        }
        let workloads: Vec<_> = self.inner.workloads.read().values().cloned().collect();
        let stops = workloads.iter().filter(|w| w.workload.kind() == NodeKind::Process && w.is_running()).map(|w| async move {
            if let Err(e) = w.stop().await {
                tracing::warn!(workload = %w.workload.id, "stop at shutdown failed: {e}");
            }
        });
        futures::future::join_all(stops).await;
        let flows: Vec<_> = self.inner.flows.read().values().cloned().collect();
        let now_ms = self.inner.options.clock.now_ms();
        for flow in flows {
            flow.status.send_modify(|s| s.state = FlowState::Asleep);
            // The ledger as it ends here (the writer task is gone): a write lost to a passing store error
            // is made good, and the time until the next start counts as asleep.
            if !self.inner.may_drain(&flow) {
                continue;
            }
            let ledger = self.inner.ledgers.mark(flow.name(), true, now_ms).or_else(|| self.inner.ledgers.get(flow.name()));
            if let Some(ledger) = ledger {
                if let Err(e) = self.inner.store.records::<SleepLedger>().upsert(&ledger).await {
                    tracing::warn!(flow = flow.name(), "cannot save the sleep ledger: {e}");
                }
            }
        }
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        // Background tasks hold the shared state; aborting them lets it (and the drivers, which kill
        // their processes when dropped) go.
        self.inner.tasks.lock().abort_all();
    }
}
