//! The reload actor: the one place configuration changes are applied. Every source — the config file's
//! watcher, SIGHUP, `Flow` resources, and (later) activations through the API — sends a request; the
//! actor validates the union of the file and the resources, applies it to the controller, has the routes
//! rebuilt and swapped, and answers every sender with the result, strictly one reload at a time.
//! Requests that queue up while a reload runs are answered together by the next one, which reads the
//! sources as they are then. Flows whose definition did not change keep their handle (state, waiters,
//! idle timer).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use leannodes_config::crd::{FlowCondition, FlowResourceStatus};
use leannodes_config::{Config, LoadError, TenantFlow};
use leannodes_drivers::flow_resources::{FlowResources, ResourceFlow};
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

struct Request {
    cause: ReloadCause,
    done: oneshot::Sender<ReloadStatus>,
}

/// The handle of the reload actor. Cloning shares it.
#[derive(Debug, Clone)]
pub struct Reloader {
    requests: mpsc::UnboundedSender<Request>,
    status: watch::Receiver<ReloadStatus>,
}

/// The actor's own state.
struct Actor {
    controller: Arc<Controller>,
    sources: Sources,
    installer: Arc<dyn RouteInstaller>,
    /// Resources applied by the last good reload: in a conflict they win over newer ones.
    applied: BTreeSet<String>,
    /// Why resources were left out, by `namespace/name` (read by the status reporter).
    problems: Arc<Mutex<BTreeMap<String, Vec<String>>>>,
    status: watch::Sender<ReloadStatus>,
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
        let mut actor = Actor { controller, sources: sources.clone(), installer, applied: BTreeSet::new(), problems, status: status_tx };
        tokio::spawn(async move {
            while let Some(first) = queue.recv().await {
                let mut waiting = vec![first];
                while let Ok(more) = queue.try_recv() {
                    waiting.push(more);
                }
                let cause = waiting.last().map_or(ReloadCause::File, |r| r.cause);
                let status = actor.reload(cause).await;
                actor.status.send_replace(status.clone());
                for request in waiting {
                    let _ = request.done.send(status.clone());
                }
            }
        });
        let reloader = Reloader { requests, status };
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
        reloader
    }

    /// Reloads and waits for the result.
    pub async fn reload(&self, cause: ReloadCause) -> ReloadStatus {
        let (done, result) = oneshot::channel();
        if self.requests.send(Request { cause, done }).is_err() {
            return self.status();
        }
        result.await.unwrap_or_else(|_| self.status())
    }

    /// The result of the last reload.
    pub fn status(&self) -> ReloadStatus {
        self.status.borrow().clone()
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
}

impl Actor {
    /// One reload. An invalid configuration changes nothing.
    async fn reload(&mut self, cause: ReloadCause) -> ReloadStatus {
        let path = self.sources.file.clone();
        let at_ms = crate::unix_ms();
        let reject = |errors: Vec<String>| {
            for line in &errors {
                tracing::error!("reload rejected: {line}");
            }
            ReloadStatus { ok: false, at_ms, cause, errors }
        };
        let config = match leannodes_config::load_file(&path) {
            Ok(c) => c,
            Err(e) => {
                let errors: Vec<String> = match &e {
                    LoadError::Invalid(d) => d.to_string().lines().filter(|l| !l.starts_with("  help:")).map(str::to_string).collect(),
                    other => vec![other.to_string()],
                };
                return reject(errors);
            }
        };
        let config = match self.sources.resources.clone() {
            None => config,
            Some(resources) => {
                if !config.server.flows_from_file && !config.flows.is_empty() {
                    return reject(vec![format!(
                        "{}: flows_from does not include \"file\", but the file has [[flow]] tables",
                        path.display()
                    )]);
                }
                match self.with_resource_flows(&path, config.flows.len(), &resources.flows()) {
                    Ok(c) => c,
                    Err(errors) => return reject(errors),
                }
            }
        };
        let reload = self.controller.apply(&config);
        let flows: Vec<_> = config.flows.iter().filter_map(|f| self.controller.flow(&f.name)).collect();
        if let Err(e) = self.installer.install(&flows, &config).await {
            // The controller already holds the new flows; routes keep pointing at the old handles, which
            // stay valid, so nothing is dropped. The next good reload fixes both.
            tracing::error!("reload: {e}");
            return ReloadStatus { ok: false, at_ms, cause, errors: vec![e] };
        }
        let removed = reload.removed();
        tracing::info!(changed = ?reload.added, removed = ?removed, ?cause, "configuration reloaded");
        reload.finish();
        ReloadStatus { ok: true, at_ms, cause, errors: vec![] }
    }

    /// Validates the file together with the `Flow` resources. A resource that does not validate (alone
    /// or with the others) is left out and its problems are reported on it; the rest applies. In a
    /// conflict, resources already serving come first, then older ones: the newcomer is refused.
    fn with_resource_flows(&mut self, path: &Path, file_flows: usize, resources: &[ResourceFlow]) -> Result<Config, Vec<String>> {
        let text = std::fs::read_to_string(path).map_err(|e| vec![format!("cannot read {}: {e}", path.display())])?;
        let base = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let mut candidates: Vec<&ResourceFlow> = resources.iter().collect();
        candidates.sort_by_key(|r| (!self.applied.contains(&r.key()), r.created.clone(), r.key()));
        let mut problems: BTreeMap<String, Vec<String>> = BTreeMap::new();
        loop {
            let tenants: Vec<TenantFlow> =
                candidates.iter().map(|r| TenantFlow { namespace: r.namespace.clone(), spec: r.spec.clone() }).collect();
            match leannodes_config::parse_toml_with_flows(&text, &path.display().to_string(), base, &tenants) {
                Ok(config) => {
                    self.applied = candidates.iter().map(|r| r.key()).collect();
                    *self.problems.lock().unwrap_or_else(PoisonError::into_inner) = problems;
                    return Ok(config);
                }
                Err(d) => {
                    let mut blamed = BTreeSet::new();
                    for item in &d.items {
                        let index = item
                            .pointer
                            .strip_prefix("/flow/")
                            .and_then(|rest| rest.split('/').next())
                            .and_then(|i| i.parse::<usize>().ok());
                        if let Some(i) = index.and_then(|i| i.checked_sub(file_flows)).filter(|i| *i < candidates.len()) {
                            problems.entry(candidates[i].key()).or_default().push(format!(
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
        let problems = problems.lock().unwrap_or_else(PoisonError::into_inner).clone();
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
                    let status = controller.flow(&flow.spec.name).map(|f| f.status());
                    let last_wake = status
                        .as_ref()
                        .and_then(|s| s.last_wake_ms)
                        .and_then(|ms| u64::try_from(ms).ok())
                        .map(|ms| humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_millis(ms)).to_string());
                    FlowResourceStatus {
                        state: status.as_ref().map(|s| s.state.as_str().to_string()),
                        last_wake,
                        last_error: status.and_then(|s| s.failure).map(|f| f.message),
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
