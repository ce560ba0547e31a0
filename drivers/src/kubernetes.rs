//! The Kubernetes driver: Deployments and StatefulSets through their scale subresource, Jobs created from
//! a suspended template Job, readiness from EndpointSlices (or ready replicas when the workload has no
//! Service), and fail-fast from pod status. One shared watch per resource type feeds every readiness
//! stream; nothing polls the API in a loop.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use async_trait::async_trait;
use futures::future::BoxFuture;
use futures::stream::{self, BoxStream};
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use leannodes_config::{NodeKind, Workload, WorkloadSpec};
use serde_json::json;
use tokio::sync::watch;

use crate::{Driver, DriverError, EndpointSet, Failure, FailureKind, Readiness};

/// Annotation holding the replica count a workload had when it was drained.
pub const REPLICAS_ANNOTATION: &str = "leannodes.io/replicas";
/// Label put on Jobs created from a template.
pub const TEMPLATE_LABEL: &str = "leannodes.io/job-template";

/// Every permission LeanNodes uses in a cluster (the driver, and the `Flow` resource watcher), as `(apiGroup, resource, verbs)`: `deploy/rbac.yaml` grants exactly
/// these (a test keeps the two equal).
pub const RBAC_RULES: &[(&str, &str, &[&str])] = &[
    ("apps", "deployments", &["get", "list", "watch", "patch"]),
    ("apps", "statefulsets", &["get", "list", "watch", "patch"]),
    ("apps", "deployments/scale", &["patch"]),
    ("apps", "statefulsets/scale", &["patch"]),
    ("batch", "jobs", &["get", "list", "watch", "create"]),
    ("", "pods", &["list", "watch"]),
    ("discovery.k8s.io", "endpointslices", &["list", "watch"]),
    ("autoscaling", "horizontalpodautoscalers", &["list"]),
    ("keda.sh", "scaledobjects", &["list"]),
    ("leannodes.io", "flows", &["list", "watch"]),
    ("leannodes.io", "flows/status", &["patch"]),
];

/// Pod waiting reasons that will not fix themselves: a wake fails at once with the reason.
const FATAL_WAITING: &[&str] = &["ImagePullBackOff", "ErrImagePull", "CrashLoopBackOff", "CreateContainerConfigError", "InvalidImageName"];

/// Endpoint sets handed out, by (namespace, service, port).
type EndpointSets = Arc<parking_lot::Mutex<BTreeMap<(String, String, Option<u16>), EndpointSet>>>;

/// Runs `deployment`, `statefulset` and `job` nodes.
pub struct KubernetesDriver {
    client: kube::Client,
    slices: Store<EndpointSlice>,
    pods: Store<Pod>,
    deployments: Store<Deployment>,
    statefulsets: Store<StatefulSet>,
    /// Jobs created from templates (label [`TEMPLATE_LABEL`]).
    jobs_created: Store<Job>,
    changed: watch::Receiver<u64>,
    /// Jobs created by the last wake of each job workload.
    jobs: parking_lot::Mutex<BTreeMap<String, String>>,
    /// Endpoint sets handed to the proxy, by (namespace, service, port), refreshed on every change.
    sets: EndpointSets,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for KubernetesDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubernetesDriver").finish_non_exhaustive()
    }
}

impl Drop for KubernetesDriver {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn kube_error(workload: &Workload, e: &kube::Error) -> DriverError {
    DriverError::Platform { workload: workload.id.to_string(), message: e.to_string() }
}

impl KubernetesDriver {
    /// Connects with `client` and starts the shared watches of EndpointSlices and Pods.
    pub async fn start(client: kube::Client) -> KubernetesDriver {
        let (changed_tx, changed) = watch::channel(0u64);
        let changed_tx = Arc::new(changed_tx);
        let mut tasks = Vec::new();
        let all = watcher::Config::default;
        let slices = shared_watch(Api::<EndpointSlice>::all(client.clone()), all(), &changed_tx, &mut tasks);
        let pods = shared_watch(Api::<Pod>::all(client.clone()), all(), &changed_tx, &mut tasks);
        let deployments = shared_watch(Api::<Deployment>::all(client.clone()), all(), &changed_tx, &mut tasks);
        let statefulsets = shared_watch(Api::<StatefulSet>::all(client.clone()), all(), &changed_tx, &mut tasks);
        let jobs_created = shared_watch(Api::<Job>::all(client.clone()), all().labels(TEMPLATE_LABEL), &changed_tx, &mut tasks);
        let sets = EndpointSets::default();
        {
            let (sets, slices, mut changed) = (sets.clone(), slices.clone(), changed.clone());
            tasks.push(tokio::spawn(async move {
                while changed.changed().await.is_ok() {
                    let sets = sets.lock().clone();
                    for ((namespace, service, port), set) in sets {
                        set.store(ready_endpoints(&slices, &namespace, &service, port));
                    }
                }
            }));
        }
        KubernetesDriver {
            client,
            slices,
            pods,
            deployments,
            statefulsets,
            jobs_created,
            changed,
            jobs: parking_lot::Mutex::new(BTreeMap::new()),
            sets,
            tasks,
        }
    }
}

/// Starts one shared watch of a resource type: a reflector store, and a bump of `changed` on every event.
fn shared_watch<K>(
    api: Api<K>,
    config: watcher::Config,
    changed: &Arc<watch::Sender<u64>>,
    tasks: &mut Vec<tokio::task::JoinHandle<()>>,
) -> Store<K>
where
    K: kube::Resource + Clone + std::fmt::Debug + for<'de> k8s_openapi::serde::Deserialize<'de> + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let (store, writer) = reflector::store::<K>();
    let stream = reflector::reflector(writer, watcher(api, config).default_backoff());
    let tx = changed.clone();
    tasks.push(tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while stream.next().await.is_some() {
            tx.send_modify(|n| *n += 1);
        }
    }));
    store
}

fn target(workload: &Workload) -> Option<(NodeKind, &str, &str, Option<u32>)> {
    match &workload.spec {
        WorkloadSpec::Kubernetes { kind, namespace, name, replicas } => Some((*kind, namespace.as_str(), name.as_str(), *replicas)),
        _ => None,
    }
}

fn ready_endpoints(slices: &Store<EndpointSlice>, namespace: &str, service: &str, port: Option<u16>) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for slice in slices.state() {
        let ours = slice.metadata.namespace.as_deref() == Some(namespace)
            && slice.metadata.labels.as_ref().and_then(|l| l.get("kubernetes.io/service-name")).map(String::as_str) == Some(service);
        if !ours {
            continue;
        }
        let slice_port = slice.ports.as_ref().and_then(|p| p.first()).and_then(|p| p.port).and_then(|p| u16::try_from(p).ok());
        let Some(port) = slice_port.or(port) else { continue };
        for endpoint in &slice.endpoints {
            if endpoint.conditions.as_ref().and_then(|c| c.ready) != Some(true) {
                continue;
            }
            out.extend(endpoint.addresses.iter().filter_map(|a| a.parse::<IpAddr>().ok()).map(|ip| SocketAddr::new(ip, port)));
        }
    }
    out
}

/// A fatal reason among the pods matching `labels` in `namespace`.
fn pod_failure(pods: &Store<Pod>, namespace: &str, labels: &BTreeMap<String, String>) -> Option<Failure> {
    for pod in pods.state() {
        if pod.metadata.namespace.as_deref() != Some(namespace) {
            continue;
        }
        let pod_labels = pod.metadata.labels.clone().unwrap_or_default();
        if labels.is_empty() || !labels.iter().all(|(k, v)| pod_labels.get(k) == Some(v)) {
            continue;
        }
        let Some(status) = &pod.status else { continue };
        for c in status.container_statuses.iter().flatten() {
            if let Some(waiting) = c.state.as_ref().and_then(|s| s.waiting.as_ref()) {
                if let Some(reason) = waiting.reason.as_deref().filter(|r| FATAL_WAITING.contains(r)) {
                    let name = pod.metadata.name.clone().unwrap_or_default();
                    return Some(
                        Failure::new(
                            FailureKind::Platform,
                            format!("pod {name}: {reason}: {}", waiting.message.clone().unwrap_or_default()),
                        )
                        .with_reason(reason),
                    );
                }
            }
        }
        for c in status.conditions.iter().flatten() {
            if c.type_ == "PodScheduled" && c.status == "False" && c.reason.as_deref() == Some("Unschedulable") {
                let name = pod.metadata.name.clone().unwrap_or_default();
                return Some(
                    Failure::new(FailureKind::Platform, format!("pod {name}: Unschedulable: {}", c.message.clone().unwrap_or_default()))
                        .with_reason("Unschedulable"),
                );
            }
        }
    }
    None
}

/// Whether pods of the workload exist and every one is scheduled onto a node (`PodScheduled`).
fn pods_scheduled(pods: &Store<Pod>, namespace: &str, labels: &BTreeMap<String, String>) -> bool {
    if labels.is_empty() {
        return false;
    }
    let mut any = false;
    for pod in pods.state() {
        let pod_labels = pod.metadata.labels.clone().unwrap_or_default();
        if pod.metadata.namespace.as_deref() != Some(namespace) || !labels.iter().all(|(k, v)| pod_labels.get(k) == Some(v)) {
            continue;
        }
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let scheduled = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "PodScheduled" && c.status == "True"));
        if !scheduled {
            return false;
        }
        any = true;
    }
    any
}

/// What one readiness check saw.
enum Check {
    Ready,
    Pending(String),
    Failed(Failure),
}

impl KubernetesDriver {
    async fn scale_target(&self, workload: &Workload) -> Result<(i32, i32, BTreeMap<String, String>), DriverError> {
        let Some((kind, namespace, name, _)) = target(workload) else { return Err(wrong_kind(workload)) };
        let (replicas, annotations, labels) = match kind {
            NodeKind::Deployment => {
                let d =
                    Api::<Deployment>::namespaced(self.client.clone(), namespace).get(name).await.map_err(|e| kube_error(workload, &e))?;
                let spec = d.spec.unwrap_or_default();
                (spec.replicas.unwrap_or(1), d.metadata.annotations.unwrap_or_default(), spec.selector.match_labels.unwrap_or_default())
            }
            _ => {
                let s =
                    Api::<StatefulSet>::namespaced(self.client.clone(), namespace).get(name).await.map_err(|e| kube_error(workload, &e))?;
                let spec = s.spec.unwrap_or_default();
                (spec.replicas.unwrap_or(1), s.metadata.annotations.unwrap_or_default(), spec.selector.match_labels.unwrap_or_default())
            }
        };
        let recorded = annotations.get(REPLICAS_ANNOTATION).and_then(|v| v.parse::<i32>().ok());
        let (_, _, _, configured) = target(workload).unwrap_or((kind, namespace, name, None));
        let wanted = configured.and_then(|r| i32::try_from(r).ok()).or(recorded).unwrap_or(1).max(1);
        Ok((replicas, wanted, labels))
    }

    async fn patch_scale(&self, workload: &Workload, replicas: i32) -> Result<(), DriverError> {
        let Some((kind, namespace, name, _)) = target(workload) else { return Err(wrong_kind(workload)) };
        let patch = Patch::Merge(json!({"spec": {"replicas": replicas}}));
        let pp = PatchParams::default();
        let result = match kind {
            NodeKind::Deployment => {
                Api::<Deployment>::namespaced(self.client.clone(), namespace).patch_scale(name, &pp, &patch).await.map(drop)
            }
            _ => Api::<StatefulSet>::namespaced(self.client.clone(), namespace).patch_scale(name, &pp, &patch).await.map(drop),
        };
        result.map_err(|e| kube_error(workload, &e))
    }

    /// Names of the Jobs created from the template of a job workload (by any LeanNodes replica).
    fn jobs_of_template(&self, namespace: &str, template: &str) -> Vec<Arc<Job>> {
        self.jobs_created
            .state()
            .into_iter()
            .filter(|j| {
                j.metadata.namespace.as_deref() == Some(namespace)
                    && j.metadata.labels.as_ref().and_then(|l| l.get(TEMPLATE_LABEL)).map(String::as_str) == Some(template)
            })
            .collect()
    }

    /// `older`: for a job workload this replica did not create a Job for, the Jobs that existed when it
    /// began to wait; a Job created since (by the replica that claimed the wake) is the one to follow.
    async fn check(&self, workload: &Workload, labels: &BTreeMap<String, String>, older: Option<&BTreeSet<String>>) -> Check {
        let Some((kind, namespace, name, _)) = target(workload) else {
            return Check::Failed(Failure::new(FailureKind::Platform, "not a Kubernetes workload"));
        };
        if kind == NodeKind::Job {
            let ours = self.jobs.lock().get(workload.id.as_str()).cloned();
            let theirs = || {
                let older = older?;
                self.jobs_of_template(namespace, name)
                    .into_iter()
                    .filter_map(|j| j.metadata.name.clone().map(|n| (j.metadata.creation_timestamp.clone(), n)))
                    .filter(|(_, n)| !older.contains(n))
                    .max()
                    .map(|(_, n)| n)
            };
            let Some(job_name) = ours.or_else(theirs) else { return Check::Pending("job not created".into()) };
            return match self.jobs_created.get(&ObjectRef::new(&job_name).within(namespace)) {
                Some(job) => {
                    let status = job.status.clone().unwrap_or_default();
                    if status.succeeded.unwrap_or(0) > 0 {
                        Check::Ready
                    } else if status.failed.unwrap_or(0) > 0 {
                        let message = status
                            .conditions
                            .iter()
                            .flatten()
                            .find(|c| c.type_ == "Failed")
                            .and_then(|c| c.message.clone())
                            .unwrap_or_else(|| "job failed".into());
                        Check::Failed(Failure::new(FailureKind::Platform, format!("job {job_name}: {message}")).with_reason("JobFailed"))
                    } else {
                        match pod_failure(&self.pods, namespace, &BTreeMap::from([("job-name".to_string(), job_name.clone())])) {
                            Some(f) => Check::Failed(f),
                            None => Check::Pending(format!("job {job_name} running")),
                        }
                    }
                }
                None => Check::Pending(format!("job {job_name} created")),
            };
        }
        if let Some(failure) = pod_failure(&self.pods, namespace, labels) {
            return Check::Failed(failure);
        }
        let has_service = self.slices.state().iter().any(|s| {
            s.metadata.namespace.as_deref() == Some(namespace)
                && s.metadata.labels.as_ref().and_then(|l| l.get("kubernetes.io/service-name")).map(String::as_str) == Some(name)
        });
        if has_service {
            let ready = ready_endpoints(&self.slices, namespace, name, workload.port);
            return if ready.is_empty() { Check::Pending(format!("service {namespace}/{name}: no ready endpoints")) } else { Check::Ready };
        }
        let key = ObjectRef::new(name).within(namespace);
        let ready = match kind {
            NodeKind::Deployment => self.deployments.get(&key).and_then(|d| d.status.clone()).and_then(|s| s.ready_replicas),
            _ => {
                self.statefulsets.get(&ObjectRef::new(name).within(namespace)).and_then(|s| s.status.clone()).and_then(|s| s.ready_replicas)
            }
        };
        if ready.unwrap_or(0) > 0 { Check::Ready } else { Check::Pending(format!("{namespace}/{name}: no ready replicas")) }
    }

    async fn create_job(&self, workload: &Workload) -> Result<(), DriverError> {
        let Some((_, namespace, name, _)) = target(workload) else { return Err(wrong_kind(workload)) };
        let api = Api::<Job>::namespaced(self.client.clone(), namespace);
        let template = api.get(name).await.map_err(|e| kube_error(workload, &e))?;
        let mut spec = template.spec.unwrap_or_default();
        spec.suspend = Some(false);
        spec.ttl_seconds_after_finished = Some(3600);
        spec.selector = None;
        if let Some(meta) = spec.template.metadata.as_mut() {
            if let Some(labels) = meta.labels.as_mut() {
                labels.retain(|k, _| {
                    !k.starts_with("controller-uid")
                        && !k.starts_with("batch.kubernetes.io/controller-uid")
                        && k != "job-name"
                        && k != "batch.kubernetes.io/job-name"
                });
            }
        }
        let job = Job {
            metadata: kube::api::ObjectMeta {
                generate_name: Some(format!("{name}-")),
                namespace: Some(namespace.to_string()),
                labels: Some(BTreeMap::from([
                    (TEMPLATE_LABEL.to_string(), name.to_string()),
                    ("app.kubernetes.io/managed-by".to_string(), "leannodes".to_string()),
                ])),
                ..Default::default()
            },
            spec: Some(spec),
            status: None,
        };
        let created = api.create(&PostParams::default(), &job).await.map_err(|e| kube_error(workload, &e))?;
        let created_name = created.metadata.name.unwrap_or_default();
        tracing::info!(workload = %workload.id, job = %created_name, "job created from template");
        self.jobs.lock().insert(workload.id.to_string(), created_name);
        Ok(())
    }
}

fn wrong_kind(workload: &Workload) -> DriverError {
    DriverError::WrongKind { workload: workload.id.to_string(), kind: workload.kind().as_str(), driver: "kubernetes" }
}

#[async_trait]
impl Driver for Arc<KubernetesDriver> {
    async fn wake(&self, workload: &Arc<Workload>) -> Result<(), DriverError> {
        match workload.kind() {
            NodeKind::Job => self.create_job(workload).await,
            NodeKind::Deployment | NodeKind::Statefulset => {
                let (current, wanted, _) = self.scale_target(workload).await?;
                if current < 1 {
                    tracing::info!(workload = %workload.id, replicas = wanted, "scaling up");
                    self.patch_scale(workload, wanted).await?;
                }
                Ok(())
            }
            _ => Err(wrong_kind(workload)),
        }
    }

    fn readiness(&self, workload: &Arc<Workload>) -> BoxStream<'static, Readiness> {
        let driver = self.clone();
        let workload = workload.clone();
        // A job this replica has not created: the Jobs that have finished by now are earlier wakes'; one
        // still running, or created later (by the replica that claimed the wake), is the one to follow.
        let older: Option<Arc<BTreeSet<String>>> = match target(&workload) {
            Some((NodeKind::Job, namespace, name, _)) if !self.jobs.lock().contains_key(workload.id.as_str()) => {
                let finished = |j: &Job| j.status.as_ref().is_some_and(|s| s.succeeded.unwrap_or(0) > 0 || s.failed.unwrap_or(0) > 0);
                let older =
                    self.jobs_of_template(namespace, name).iter().filter(|j| finished(j)).filter_map(|j| j.metadata.name.clone()).collect();
                Some(Arc::new(older))
            }
            _ => None,
        };
        // (driver, workload, the pods' labels, the last detail told, told `Scheduled`, done)
        let state = (driver, workload, None::<BTreeMap<String, String>>, None::<String>, false, false);
        stream::unfold(state, move |(driver, workload, mut labels, mut last, mut scheduled, done)| {
            let older = older.clone();
            async move {
                if done {
                    return None;
                }
                let mut changed = driver.changed.clone();
                loop {
                    if labels.is_none() && workload.kind() != NodeKind::Job {
                        labels = driver.scale_target(&workload).await.ok().map(|(_, _, l)| l);
                    }
                    let pod_labels = labels.clone().unwrap_or_default();
                    let check = driver.check(&workload, &pod_labels, older.as_deref()).await;
                    if !scheduled && !matches!(check, Check::Failed(_)) {
                        let placed =
                            target(&workload).is_some_and(|(_, namespace, _, _)| pods_scheduled(&driver.pods, namespace, &pod_labels));
                        if placed {
                            scheduled = true;
                            return Some((Readiness::Scheduled, (driver, workload, labels, last, scheduled, false)));
                        }
                    }
                    match check {
                        // Ready pods were placed: when the endpoints watch is ahead of the pods watch, the
                        // placement is told first, so every wake records the same stages in order.
                        Check::Ready if !scheduled && !pod_labels.is_empty() => {
                            return Some((Readiness::Scheduled, (driver, workload, labels, last, true, false)));
                        }
                        Check::Ready => return Some((Readiness::Ready, (driver, workload, labels, last, scheduled, true))),
                        Check::Failed(f) => return Some((Readiness::Failed(f), (driver, workload, labels, last, scheduled, true))),
                        Check::Pending(detail) => {
                            // Everything checked comes from the shared watches: wait for their next event.
                            if changed.changed().await.is_err() {
                                return None;
                            }
                            if last.as_deref() != Some(detail.as_str()) {
                                last = Some(detail.clone());
                                return Some((Readiness::Pending(detail), (driver, workload, labels, last, scheduled, false)));
                            }
                        }
                    }
                }
            }
        })
        .boxed()
    }

    async fn drain(&self, workload: &Arc<Workload>) -> Result<(), DriverError> {
        let Some((kind, namespace, name, _)) = target(workload) else { return Err(wrong_kind(workload)) };
        if kind == NodeKind::Job {
            // A finished job has nothing to stop; its TTL cleans it up.
            self.jobs.lock().remove(workload.id.as_str());
            return Ok(());
        }
        let (current, _, _) = self.scale_target(workload).await?;
        if current > 0 {
            let annotate = Patch::Merge(json!({"metadata": {"annotations": {REPLICAS_ANNOTATION: current.to_string()}}}));
            let pp = PatchParams::default();
            let result = match kind {
                NodeKind::Deployment => {
                    Api::<Deployment>::namespaced(self.client.clone(), namespace).patch(name, &pp, &annotate).await.map(drop)
                }
                _ => Api::<StatefulSet>::namespaced(self.client.clone(), namespace).patch(name, &pp, &annotate).await.map(drop),
            };
            result.map_err(|e| kube_error(workload, &e))?;
            self.patch_scale(workload, 0).await?;
            tracing::info!(workload = %workload.id, recorded = current, "scaled to zero");
        }
        Ok(())
    }

    fn failure(&self, _workload: &Workload) -> Option<Failure> {
        None
    }

    fn is_running(&self, workload: &Workload) -> bool {
        match target(workload) {
            Some((NodeKind::Job, ..)) => false,
            Some((_, namespace, name, _)) => !ready_endpoints(&self.slices, namespace, name, workload.port).is_empty(),
            None => false,
        }
    }

    fn lost(&self, workload: &Arc<Workload>) -> BoxFuture<'static, Failure> {
        let Some((kind, namespace, name, _)) = target(workload) else { return futures::future::pending().boxed() };
        if kind == NodeKind::Job {
            return futures::future::pending().boxed();
        }
        let (namespace, name) = (namespace.to_string(), name.to_string());
        let driver = self.clone();
        let mut changed = self.changed.clone();
        async move {
            // Lost when its replicas go to zero (someone else scaled it down) or the object is deleted
            // while it serves. The watch may still hold the object from before the wake: only a change
            // from running counts.
            let mut seen_running = false;
            loop {
                // `None`: the object does not exist (any more); an object without `replicas` has 1.
                let replicas = match kind {
                    NodeKind::Deployment => driver
                        .deployments
                        .get(&ObjectRef::new(&name).within(&namespace))
                        .map(|d| d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)),
                    _ => driver
                        .statefulsets
                        .get(&ObjectRef::new(&name).within(&namespace))
                        .map(|s| s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)),
                };
                seen_running |= replicas.is_some_and(|r| r > 0);
                if seen_running && replicas == Some(0) {
                    return Failure::new(FailureKind::Platform, format!("{namespace}/{name} was scaled to zero"))
                        .with_reason("ScaledToZero");
                }
                if seen_running && replicas.is_none() {
                    return Failure::new(FailureKind::Platform, format!("{namespace}/{name} was deleted")).with_reason("Deleted");
                }
                if changed.changed().await.is_err() {
                    return futures::future::pending().await;
                }
            }
        }
        .boxed()
    }

    async fn warnings(&self, workload: &Arc<Workload>) -> Vec<String> {
        let Some((kind, namespace, name, _)) = target(workload) else { return Vec::new() };
        if kind == NodeKind::Job {
            return Vec::new();
        }
        let kind_name = if kind == NodeKind::Deployment { "Deployment" } else { "StatefulSet" };
        let mut out = Vec::new();
        let hpas = Api::<HorizontalPodAutoscaler>::namespaced(self.client.clone(), namespace).list(&Default::default()).await;
        for hpa in hpas.map(|l| l.items).unwrap_or_default() {
            let target = hpa.spec.as_ref().map(|s| &s.scale_target_ref);
            if target.is_some_and(|t| t.kind == kind_name && t.name == name) {
                out.push(format!(
                    "HorizontalPodAutoscaler {namespace}/{} also scales {kind_name} {name}: LeanNodes does not fight it, but an HPA with minReplicas ≥ 1 undoes every drain",
                    hpa.metadata.name.unwrap_or_default()
                ));
            }
        }
        let keda = kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk("keda.sh", "v1alpha1", "ScaledObject"));
        let scaled =
            Api::<kube::api::DynamicObject>::namespaced_with(self.client.clone(), namespace, &keda).list(&Default::default()).await;
        // No KEDA in the cluster (404) is not a problem.
        for object in scaled.map(|l| l.items).unwrap_or_default() {
            let target = &object.data["spec"]["scaleTargetRef"];
            let target_kind = target["kind"].as_str().unwrap_or("Deployment");
            if target_kind == kind_name && target["name"] == name {
                out.push(format!(
                    "KEDA ScaledObject {namespace}/{} also scales {kind_name} {name}: let one of them own scale-to-zero",
                    object.metadata.name.unwrap_or_default()
                ));
            }
        }
        out
    }

    async fn health(&self) -> Result<(), String> {
        match tokio::time::timeout(std::time::Duration::from_secs(5), self.client.apiserver_version()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("the API server did not answer within 5 s".into()),
        }
    }

    fn cpu_request(&self, workload: &Workload) -> Option<f64> {
        let (kind, namespace, name, configured) = target(workload)?;
        let (template, replicas, annotations) = match kind {
            NodeKind::Deployment => {
                let d = self.deployments.get(&ObjectRef::new(name).within(namespace))?;
                let spec = d.spec.as_ref()?;
                (spec.template.spec.clone(), spec.replicas, d.metadata.annotations.clone())
            }
            NodeKind::Statefulset => {
                let s = self.statefulsets.get(&ObjectRef::new(name).within(namespace))?;
                let spec = s.spec.as_ref()?;
                (spec.template.spec.clone(), spec.replicas, s.metadata.annotations.clone())
            }
            _ => return None,
        };
        let per_pod: f64 = template?
            .containers
            .iter()
            .filter_map(|c| c.resources.as_ref()?.requests.as_ref()?.get("cpu").and_then(|q| crate::parse_cpu(&q.0)))
            .sum();
        // The replicas a wake restores: configured, recorded at the last drain, or running now.
        let recorded = annotations.as_ref().and_then(|a| a.get(REPLICAS_ANNOTATION)).and_then(|v| v.parse::<i32>().ok());
        let replicas = configured.and_then(|r| i32::try_from(r).ok()).or(recorded).or(replicas.filter(|r| *r > 0)).unwrap_or(1).max(1);
        Some(per_pod * f64::from(replicas))
    }

    async fn missing(&self, workload: &Arc<Workload>) -> Option<String> {
        let (kind, namespace, name, _) = target(workload)?;
        let (what, found) = match kind {
            NodeKind::Deployment => {
                ("Deployment", Api::<Deployment>::namespaced(self.client.clone(), namespace).get_opt(name).await.map(|o| o.is_some()))
            }
            NodeKind::Statefulset => {
                ("StatefulSet", Api::<StatefulSet>::namespaced(self.client.clone(), namespace).get_opt(name).await.map(|o| o.is_some()))
            }
            _ => ("Job", Api::<Job>::namespaced(self.client.clone(), namespace).get_opt(name).await.map(|o| o.is_some())),
        };
        match found {
            Ok(true) => None,
            Ok(false) => Some(format!("{what} {namespace}/{name} does not exist in the cluster")),
            Err(e) => {
                tracing::warn!("cannot check that {what} {namespace}/{name} exists: {e}");
                None
            }
        }
    }

    fn endpoints(&self, workload: &Arc<Workload>) -> Option<EndpointSet> {
        let (kind, namespace, name, _) = target(workload)?;
        if kind == NodeKind::Job {
            return None;
        }
        let key = (namespace.to_string(), name.to_string(), workload.port);
        let set = self.sets.lock().entry(key).or_default().clone();
        set.store(ready_endpoints(&self.slices, namespace, name, workload.port));
        Some(set)
    }
}
