//! What handlers work with: one narrow handle per concern, each extractable on its own
//! (`State<Arc<Controller>>`, `State<Arc<Auth>>`, …), so a handler names exactly what it touches.

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::FromRef;
use leannodes_config::{DriverKind, PublicStatus, Server};
use leannodes_control::{Controller, Reloader, TrafficView};
use leannodes_store::Store;

use crate::audit::Audit;
use crate::auth::Auth;

/// Everything the management API is built from (the binary assembles it).
pub struct ApiParts {
    /// The control plane.
    pub controller: Arc<Controller>,
    /// The store.
    pub store: Arc<dyn Store>,
    /// The data plane's view (held requests, in flight, its metrics).
    pub traffic: Arc<dyn TrafficView>,
    /// The reload actor.
    pub reloader: Reloader,
    /// The cluster, with the Kubernetes driver.
    pub kube: Option<kube::Client>,
    /// `[server]`.
    pub server: Server,
    /// The config file.
    pub config_path: PathBuf,
    /// Notification routes and their deliveries.
    pub notifier: Arc<leannodes_notify::Notifier>,
}

impl std::fmt::Debug for ApiParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiParts").field("config_path", &self.config_path).finish_non_exhaustive()
    }
}

/// Facts about this instance for `/status`, `/settings` and gateway artifacts.
pub struct Instance {
    /// The config file.
    pub config_path: PathBuf,
    /// When this process started (Unix milliseconds).
    pub started_ms: i64,
    /// The reload actor (last reload).
    pub reloader: Reloader,
    /// The platform driver.
    pub driver: DriverKind,
    /// The cluster, when the Kubernetes driver is on.
    pub kube: Option<kube::Client>,
    /// `[server]` as loaded at start.
    pub server: Server,
    /// What public status pages show.
    pub public_status: PublicStatus,
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance").field("config_path", &self.config_path).field("cluster", &self.kube.is_some()).finish_non_exhaustive()
    }
}

/// The application state of the router.
#[derive(Clone)]
pub struct AppState {
    /// Flows and their operations.
    pub controller: Arc<Controller>,
    /// Users, tokens, sessions, roles and everything else kept.
    pub store: Arc<dyn Store>,
    /// The data plane's view.
    pub traffic: Arc<dyn TrafficView>,
    /// Authentication and the authorization policy.
    pub auth: Arc<Auth>,
    /// The audit trail.
    pub audit: Audit,
    /// Facts about this instance.
    pub instance: Arc<Instance>,
    /// Notification routes and their deliveries.
    pub notifier: Arc<leannodes_notify::Notifier>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

macro_rules! narrow {
    ($($field:ident: $ty:ty),* $(,)?) => {
        $(impl FromRef<AppState> for $ty {
            fn from_ref(state: &AppState) -> $ty {
                state.$field.clone()
            }
        })*
    };
}

narrow!(
    controller: Arc<Controller>,
    store: Arc<dyn Store>,
    traffic: Arc<dyn TrafficView>,
    auth: Arc<Auth>,
    audit: Audit,
    instance: Arc<Instance>,
    notifier: Arc<leannodes_notify::Notifier>,
);
