//! The simulated control plane and kubelet: workload controllers (Deployment, StatefulSet, Job), the
//! EndpointSlice controller, and a kubelet that runs every pod as a real process on its own loopback IP.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::resources::{self, Resource};
use crate::selector::Selector;
use crate::store::Store;

/// Pod template annotation that injects a failure: `image-pull`, `crash-loop` or `unschedulable`.
pub(crate) const FAIL_ANNOTATION: &str = "kube-sim.leannodes.io/fail";

fn res(group: &str, plural: &str) -> &'static Resource {
    let version = match group {
        "autoscaling" => "v2",
        "leannodes.io" => "v1alpha1",
        _ => "v1",
    };
    resources::find(group, version, plural).unwrap_or(&resources::RESOURCES[0])
}

/// Starts the reconcile loop (every change, and every 50 ms for readiness).
pub(crate) fn start(store: Arc<Store>, kubelet: Arc<Kubelet>) -> Vec<tokio::task::JoinHandle<()>> {
    let mut events = store.subscribe();
    vec![tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        loop {
            tokio::select! {
                _ = events.recv() => {}
                _ = tick.tick() => {}
            }
            // Coalesce bursts of changes into one pass.
            while events.try_recv().is_ok() {}
            reconcile(&store, &kubelet);
        }
    })]
}

fn reconcile(store: &Store, kubelet: &Kubelet) {
    let mut owners = std::collections::HashSet::new();
    for plural in ["deployments", "statefulsets"] {
        let (workloads, _) = store.list(res("apps", plural), None, &Selector::default());
        for w in &workloads {
            owners.insert(meta(w, "uid").to_string());
            reconcile_workload(store, res("apps", plural), w);
        }
    }
    let (jobs, _) = store.list(res("batch", "jobs"), None, &Selector::default());
    for job in &jobs {
        owners.insert(meta(job, "uid").to_string());
        reconcile_job(store, job);
    }
    collect_orphans(store, &owners);
    kubelet.reconcile();
    let (services, _) = store.list(res("", "services"), None, &Selector::default());
    for service in &services {
        reconcile_endpoints(store, service);
    }
}

/// Like the garbage collector: pods whose controller (a Deployment, StatefulSet or Job) was deleted go too.
fn collect_orphans(store: &Store, owners: &std::collections::HashSet<String>) {
    let (pods, _) = store.list(res("", "pods"), None, &Selector::default());
    for pod in pods {
        let owner = pod["metadata"]["ownerReferences"][0]["uid"].as_str();
        if owner.is_some_and(|uid| !owners.contains(uid)) {
            let _ = store.delete(res("", "pods"), meta(&pod, "namespace"), meta(&pod, "name"));
        }
    }
}

fn meta<'a>(o: &'a Value, field: &str) -> &'a str {
    o["metadata"][field].as_str().unwrap_or_default()
}

/// Pods whose first owner reference is `owner`.
fn owned_pods(store: &Store, namespace: &str, owner_uid: &str) -> Vec<Value> {
    let (pods, _) = store.list(res("", "pods"), Some(namespace), &Selector::default());
    pods.into_iter().filter(|p| p["metadata"]["ownerReferences"][0]["uid"] == owner_uid).collect()
}

fn pod_from_template(owner: &Value, kind: &str, name: &str, extra_labels: Value) -> Value {
    let template = &owner["spec"]["template"];
    let mut labels = template["metadata"]["labels"].clone();
    if !labels.is_object() {
        labels = json!({});
    }
    crate::store::merge(&mut labels, &extra_labels);
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": meta(owner, "namespace"),
            "labels": labels,
            "annotations": template["metadata"]["annotations"].clone(),
            "ownerReferences": [{"apiVersion": owner["apiVersion"], "kind": kind, "name": meta(owner, "name"), "uid": meta(owner, "uid"), "controller": true}],
        },
        "spec": template["spec"].clone(),
        "status": {"phase": "Pending"},
    })
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

fn reconcile_workload(store: &Store, resource: &Resource, workload: &Value) {
    let namespace = meta(workload, "namespace");
    let name = meta(workload, "name");
    let desired = usize::try_from(workload["spec"]["replicas"].as_i64().unwrap_or(1).max(0)).unwrap_or(0);
    let mut pods = owned_pods(store, namespace, meta(workload, "uid"));
    // Like a ReplicaSet, replace pods whose process ended.
    pods.retain(|p| {
        let failed = p["status"]["phase"] == "Failed";
        if failed {
            let _ = store.delete(res("", "pods"), namespace, meta(p, "name"));
        }
        !failed
    });
    pods.sort_by_key(|p| meta(p, "name").to_string());
    let stateful = resource.kind == "StatefulSet";
    if pods.len() < desired {
        let mut ordinal = 0;
        for _ in pods.len()..desired {
            let pod_name = if stateful {
                while pods.iter().any(|p| meta(p, "name") == format!("{name}-{ordinal}")) {
                    ordinal += 1;
                }
                let n = format!("{name}-{ordinal}");
                ordinal += 1;
                n
            } else {
                String::new()
            };
            let mut pod = pod_from_template(workload, resource.kind, &pod_name, json!({}));
            if !stateful {
                pod["metadata"]["generateName"] = json!(format!("{name}-"));
            }
            if let Ok(created) = store.create(res("", "pods"), namespace, pod) {
                pods.push(created);
            }
        }
    } else if pods.len() > desired {
        for pod in pods.split_off(desired) {
            let _ = store.delete(res("", "pods"), namespace, meta(&pod, "name"));
        }
    }
    let ready = i64::try_from(pods.iter().filter(|p| is_ready(p)).count()).unwrap_or(0);
    let total = i64::try_from(pods.len()).unwrap_or(0);
    let generation = workload["metadata"]["generation"].clone();
    store.update_with(resource, namespace, name, |w| {
        let status = &mut w["status"];
        status["replicas"] = json!(total);
        status["readyReplicas"] = json!(ready);
        status["availableReplicas"] = json!(ready);
        status["updatedReplicas"] = json!(total);
        status["observedGeneration"] = generation;
    });
}

fn reconcile_job(store: &Store, job: &Value) {
    if job["spec"]["suspend"].as_bool() == Some(true)
        || job["status"]["completionTime"].is_string()
        || job["status"]["failed"].as_i64() > Some(0)
    {
        return;
    }
    let namespace = meta(job, "namespace");
    let name = meta(job, "name");
    let pods = owned_pods(store, namespace, meta(job, "uid"));
    let Some(pod) = pods.first() else {
        let mut pod = pod_from_template(job, "Job", "", json!({"job-name": name}));
        pod["metadata"]["generateName"] = json!(format!("{name}-"));
        let _ = store.create(res("", "pods"), namespace, pod);
        store.update_with(res("batch", "jobs"), namespace, name, |j| {
            j["status"]["active"] = json!(1);
            j["status"]["startTime"] = json!(crate::store::now_rfc3339());
        });
        return;
    };
    let phase = pod["status"]["phase"].as_str().unwrap_or_default().to_string();
    store.update_with(res("batch", "jobs"), namespace, name, |j| match phase.as_str() {
        "Succeeded" => {
            j["status"]["active"] = json!(0);
            j["status"]["succeeded"] = json!(1);
            j["status"]["completionTime"] = json!(crate::store::now_rfc3339());
            j["status"]["conditions"] = json!([{"type": "Complete", "status": "True"}]);
        }
        "Failed" => {
            j["status"]["active"] = json!(0);
            j["status"]["failed"] = json!(1);
            j["status"]["conditions"] = json!([{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]);
        }
        _ => {}
    });
}

fn reconcile_endpoints(store: &Store, service: &Value) {
    let Some(selector) = service["spec"]["selector"].as_object().filter(|s| !s.is_empty()) else { return };
    let selector = Selector::from_labels(&Value::Object(selector.clone()));
    let namespace = meta(service, "namespace");
    let name = meta(service, "name");
    let (pods, _) = store.list(res("", "pods"), Some(namespace), &selector);
    let endpoints: Vec<Value> = pods
        .iter()
        .filter(|p| p["status"]["podIP"].is_string())
        .map(|p| {
            let ready = is_ready(p);
            json!({"addresses": [p["status"]["podIP"]], "conditions": {"ready": ready, "serving": ready, "terminating": false}, "targetRef": {"kind": "Pod", "name": meta(p, "name"), "namespace": namespace}})
        })
        .collect();
    let ports: Vec<Value> = service["spec"]["ports"]
        .as_array()
        .map(|ports| ports.iter().map(|p| json!({"name": p["name"].as_str().unwrap_or(""), "port": p["targetPort"].as_i64().or(p["port"].as_i64()), "protocol": "TCP"})).collect())
        .unwrap_or_default();
    let slice_name = format!("{name}-sim");
    let slices = res("discovery.k8s.io", "endpointslices");
    if store.get(slices, namespace, &slice_name).is_err() {
        let slice = json!({
            "metadata": {"name": slice_name, "labels": {"kubernetes.io/service-name": name, "endpointslice.kubernetes.io/managed-by": "kube-sim"}},
            "addressType": "IPv4",
            "endpoints": endpoints,
            "ports": ports,
        });
        let _ = store.create(slices, namespace, slice);
    } else {
        store.update_with(slices, namespace, &slice_name, |s| {
            s["endpoints"] = json!(endpoints);
            s["ports"] = json!(ports);
        });
    }
}

/// One pod's process.
#[derive(Debug)]
struct PodProcess {
    child: std::process::Child,
    addr: SocketAddr,
}

/// How long a deleted pod's process keeps running (its termination grace), so its endpoint is gone
/// before it stops, as with a real kubelet and a `preStop` hook.
const TERMINATION_GRACE: Duration = Duration::from_millis(300);

/// Runs pods as processes of `backend_bin`.
#[derive(Debug)]
pub(crate) struct Kubelet {
    store: Arc<Store>,
    backend_bin: PathBuf,
    pods: Mutex<HashMap<(String, String), PodProcess>>,
    /// Processes of deleted pods, stopped when their grace ends.
    terminating: Mutex<Vec<(PodProcess, std::time::Instant)>>,
}

impl Kubelet {
    pub(crate) fn new(store: Arc<Store>, backend_bin: PathBuf) -> Kubelet {
        Kubelet { store, backend_bin, pods: Mutex::new(HashMap::new()), terminating: Mutex::new(Vec::new()) }
    }

    /// A loopback address `127.0.X.Y` for a pod. `X` is chosen by the process id and `Y` counts, so
    /// simulators running side by side (tests) do not hand out the same address; one in use is skipped.
    fn allocate_ip() -> Ipv4Addr {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let block = 1 + std::process::id() % 250;
        let n = NEXT.fetch_add(1, Ordering::Relaxed) % 250;
        Ipv4Addr::new(127, 0, u8::try_from(block).unwrap_or(1), u8::try_from(1 + n).unwrap_or(1))
    }

    pub(crate) fn stop_all(&self) {
        let mut pods = self.pods.lock();
        let terminating = std::mem::take(&mut *self.terminating.lock());
        for mut p in pods.drain().map(|(_, p)| p).chain(terminating.into_iter().map(|(p, _)| p)) {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }

    fn reconcile(&self) {
        let pods_res = res("", "pods");
        let (pods, _) = self.store.list(pods_res, None, &Selector::default());
        let mut running = self.pods.lock();
        // Processes of deleted pods stop after their termination grace.
        let live: std::collections::HashSet<(String, String)> =
            pods.iter().map(|p| (meta(p, "namespace").to_string(), meta(p, "name").to_string())).collect();
        let gone: Vec<(String, String)> = running.keys().filter(|k| !live.contains(*k)).cloned().collect();
        let mut terminating = self.terminating.lock();
        for key in gone {
            if let Some(p) = running.remove(&key) {
                terminating.push((p, std::time::Instant::now() + TERMINATION_GRACE));
            }
        }
        terminating.retain_mut(|(p, deadline)| {
            let due = std::time::Instant::now() >= *deadline;
            if due {
                let _ = p.child.kill();
                let _ = p.child.wait();
            }
            !due
        });
        drop(terminating);
        for pod in &pods {
            let key = (meta(pod, "namespace").to_string(), meta(pod, "name").to_string());
            let phase = pod["status"]["phase"].as_str().unwrap_or("Pending");
            if matches!(phase, "Succeeded" | "Failed") {
                continue;
            }
            if let Some(process) = running.get_mut(&key) {
                if let Ok(Some(status)) = process.child.try_wait() {
                    let job = pod["metadata"]["ownerReferences"][0]["kind"] == "Job";
                    let phase = if status.success() { "Succeeded" } else { "Failed" };
                    running.remove(&key);
                    self.store.update_with(pods_res, &key.0, &key.1, |p| {
                        p["status"]["phase"] = json!(if job { phase } else { "Failed" });
                        p["status"]["conditions"] = json!([{"type": "Ready", "status": "False", "reason": "PodCompleted"}]);
                        p["status"]["containerStatuses"] = json!([{"name": "main", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": status.code().unwrap_or(-1)}}}]);
                    });
                } else if !is_ready(pod) && TcpStream::connect_timeout(&process.addr, Duration::from_millis(20)).is_ok() {
                    self.store.update_with(pods_res, &key.0, &key.1, |p| {
                        p["status"]["conditions"] =
                            json!([{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "True"}]);
                        p["status"]["containerStatuses"] =
                            json!([{"name": "main", "ready": true, "restartCount": 0, "state": {"running": {}}}]);
                    });
                }
                continue;
            }
            if phase == "Running" || pod["status"]["conditions"].is_array() {
                continue; // a failure injected earlier, or a process that already ended
            }
            self.start_pod(&mut running, pod, key);
        }
    }

    fn start_pod(&self, running: &mut HashMap<(String, String), PodProcess>, pod: &Value, key: (String, String)) {
        let pods_res = res("", "pods");
        let fail = pod["metadata"]["annotations"][FAIL_ANNOTATION].as_str().unwrap_or_default();
        let waiting = |reason: &str, message: &str| json!([{"name": "main", "ready": false, "restartCount": if reason == "CrashLoopBackOff" { 3 } else { 0 }, "state": {"waiting": {"reason": reason, "message": message}}}]);
        let status = match fail {
            "image-pull" => Some(
                json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "False"}], "containerStatuses": waiting("ImagePullBackOff", "Back-off pulling image (injected by kube-sim)")}),
            ),
            "crash-loop" => Some(
                json!({"phase": "Running", "podIP": Self::allocate_ip().to_string(), "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "False"}], "containerStatuses": waiting("CrashLoopBackOff", "back-off restarting failed container (injected by kube-sim)")}),
            ),
            "unschedulable" => Some(
                json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/1 nodes are available (injected by kube-sim)"}]}),
            ),
            _ => None,
        };
        if let Some(status) = status {
            self.store.update_with(pods_res, &key.0, &key.1, |p| p["status"] = status);
            return;
        }
        let container = &pod["spec"]["containers"][0];
        let port = container["ports"][0]["containerPort"].as_u64().and_then(|p| u16::try_from(p).ok()).unwrap_or(8080);
        let mut ip = Self::allocate_ip();
        while std::net::TcpListener::bind((ip, port)).is_err() {
            ip = Self::allocate_ip();
        }
        let mut args: Vec<String> =
            container["args"].as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect()).unwrap_or_default();
        args.extend(["--host".to_string(), ip.to_string()]);
        match std::process::Command::new(&self.backend_bin)
            .args(&args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
        {
            Ok(child) => {
                running.insert(key.clone(), PodProcess { child, addr: SocketAddr::from((ip, port)) });
                self.store.update_with(pods_res, &key.0, &key.1, |p| {
                    p["status"] = json!({"phase": "Running", "podIP": ip.to_string(), "hostIP": "127.0.0.1", "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "False"}], "containerStatuses": [{"name": "main", "ready": false, "restartCount": 0, "state": {"running": {}}}]});
                });
            }
            Err(e) => {
                self.store.update_with(pods_res, &key.0, &key.1, |p| {
                    p["status"] = json!({"phase": "Pending", "containerStatuses": waiting("CreateContainerError", &e.to_string())});
                });
            }
        }
    }
}
