//! A **Kubernetes API simulator** for LeanNodes tests. It is not Kubernetes: no kube-apiserver binary can be
//! had on the machines this project is built on, so the Kubernetes driver is tested against this instead,
//! through the real kube-rs client over HTTP.
//!
//! What it does: it speaks the REST/JSON and watch protocol of the API server (resourceVersion, watch
//! events, bookmarks, `410 Gone` for a too-old version, label selectors, merge patch and server-side apply
//! as a merge) for the resources LeanNodes uses, and it acts as the controllers and the kubelet: every pod
//! is a real process (the `--backend-bin` binary with the pod's container `args`) bound to its own loopback
//! address `127.0.X.Y` with the containerPort unchanged, marked Ready when its port accepts, and published
//! in the EndpointSlices of matching Services; scaling to zero stops the processes. The API server can be
//! taken away and brought back on its port while the cluster keeps running ([`Sim::stop_api`],
//! [`Sim::start_api`]), as an apiserver restart does.
//!
//! What it does not do: authentication, admission, defaulting beyond the fields the driver reads,
//! strategic merge semantics, field managers, garbage collection by owner references (beyond pods of
//! workloads), scheduling, networking between "nodes". Behaviour that depends on those needs a real cluster.

mod api;
mod controllers;
pub mod fixtures;
mod outage;
mod resources;
mod selector;
mod store;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use resources::{RESOURCES, Resource};
pub use selector::Selector;
pub use store::{Event, EventType, Store};

/// How the simulator runs.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// The program every pod runs (usually `leannodes`); the pod's container `args` follow it.
    pub backend_bin: PathBuf,
}

/// A running simulator.
#[derive(Debug)]
pub struct Sim {
    /// Where the API listens.
    pub addr: SocketAddr,
    /// The object store.
    pub store: Arc<Store>,
    server: parking_lot::Mutex<tokio::task::JoinHandle<()>>,
    connections: Arc<outage::Connections>,
    controllers: Vec<tokio::task::JoinHandle<()>>,
    kubelet: Arc<controllers::Kubelet>,
}

impl Sim {
    /// Starts the API on `listener` and the controllers, on the current tokio runtime.
    pub async fn start(listener: tokio::net::TcpListener, options: SimOptions) -> anyhow::Result<Sim> {
        let addr = listener.local_addr()?;
        let store = Arc::new(Store::new());
        store.seed_namespace("default");
        let kubelet = Arc::new(controllers::Kubelet::new(store.clone(), options.backend_bin.clone()));
        let controllers = controllers::start(store.clone(), kubelet.clone());
        let connections = Arc::new(outage::Connections::default());
        let server = parking_lot::Mutex::new(serve(listener, store.clone(), connections.clone()));
        Ok(Sim { addr, store, server, connections, controllers, kubelet })
    }

    /// Takes the API server away as a crash would: its port refuses connections and every open connection
    /// (watches and idle kept-alive ones) is cut. Objects, controllers and pods (the cluster) keep running.
    /// [`Sim::start_api`] brings it back on the same address.
    pub async fn stop_api(&self) {
        let server = std::mem::replace(&mut *self.server.lock(), tokio::spawn(async {}));
        server.abort();
        let _ = server.await;
        self.connections.cut_all();
    }

    /// Serves the API again on the address it had (after [`Sim::stop_api`]), with the objects it had;
    /// resourceVersions go on from where they were, so watches can resume.
    pub async fn start_api(&self) -> anyhow::Result<()> {
        let listener = tokio::net::TcpListener::bind(self.addr).await?;
        let server = serve(listener, self.store.clone(), self.connections.clone());
        std::mem::replace(&mut *self.server.lock(), server).abort();
        Ok(())
    }

    /// Writes a kubeconfig whose cluster is this simulator (plain HTTP, no credentials).
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, kubeconfig(self.addr))
    }

    /// Creates every object of a YAML manifest stream (`---`-separated documents; JSON is YAML too).
    pub fn seed_yaml(&self, text: &str) -> anyhow::Result<()> {
        use serde::Deserialize;
        let mut objects = Vec::new();
        for doc in serde_norway::Deserializer::from_str(text) {
            let value = serde_json::Value::deserialize(doc)?;
            if !value.is_null() {
                objects.push(value);
            }
        }
        self.seed(objects)
    }

    /// Creates these objects (each with `apiVersion` and `kind`).
    pub fn seed(&self, objects: Vec<serde_json::Value>) -> anyhow::Result<()> {
        for object in objects {
            self.store.create_object(object).map_err(|e| anyhow::anyhow!("{}", e.message))?;
        }
        Ok(())
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.server.lock().abort();
        self.connections.cut_all();
        for c in &self.controllers {
            c.abort();
        }
        self.kubelet.stop_all();
    }
}

/// Serves the API on `listener`, registering its connections in `connections`.
fn serve(listener: tokio::net::TcpListener, store: Arc<Store>, connections: Arc<outage::Connections>) -> tokio::task::JoinHandle<()> {
    let app = api::router(store);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(outage::Tracked { listener, connections }, app).await {
            tracing::error!("kube-sim stopped: {e}");
        }
    })
}

/// A kubeconfig for a plain-HTTP API at `addr`.
pub fn kubeconfig(addr: SocketAddr) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: kube-sim\n  cluster:\n    server: http://{addr}\ncontexts:\n- name: kube-sim\n  context:\n    cluster: kube-sim\n    user: kube-sim\n    namespace: default\ncurrent-context: kube-sim\nusers:\n- name: kube-sim\n  user: {{}}\n"
    )
}
