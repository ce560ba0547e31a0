//! Health of the store and the platforms, checked in the background (never on the request path) for
//! `/metrics` (`leannodes_store_up`, `leannodes_driver_up`) and the alerts built on them.

use std::sync::Weak;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use leannodes_store::Family;
use parking_lot::Mutex;

use crate::controller::Inner;

/// How often the store and the platforms are asked.
const EVERY: Duration = Duration::from_secs(5);

/// How long one check may take before it counts as down.
const LIMIT: Duration = Duration::from_secs(5);

/// The last answers.
#[derive(Debug)]
pub(crate) struct Health {
    store: AtomicBool,
    /// Per platform driver: whether it answered, and why not.
    drivers: Mutex<Vec<(&'static str, Result<(), String>)>>,
}

impl Default for Health {
    fn default() -> Self {
        Health { store: AtomicBool::new(true), drivers: Mutex::new(Vec::new()) }
    }
}

impl Health {
    /// Writes the health gauges.
    pub(crate) fn render(&self, out: &mut String) {
        use std::fmt::Write as _;
        out.push_str(
            "# HELP leannodes_store_up Whether the store answered its last health check (every 5 s).\n# TYPE leannodes_store_up gauge\n",
        );
        let _ = writeln!(out, "leannodes_store_up {}", u8::from(self.store.load(Ordering::Relaxed)));
        let drivers = self.drivers.lock();
        if !drivers.is_empty() {
            out.push_str("# HELP leannodes_driver_up Whether the platform (the Kubernetes API server) answered its last health check.\n# TYPE leannodes_driver_up gauge\n");
            for (name, result) in drivers.iter() {
                let _ = writeln!(out, "leannodes_driver_up{{driver=\"{name}\"}} {}", u8::from(result.is_ok()));
            }
        }
    }
}

/// Checks the store and the platforms every 5 s until the controller goes; logs each change.
pub(crate) async fn health_loop(inner: Weak<Inner>) {
    // The check runs as its own task and is never cancelled: a store call dropped half-way can cost its
    // connection. While one is still running, the store counts as down and no other starts.
    let mut running: Option<tokio::task::JoinHandle<Result<(), String>>> = None;
    loop {
        let Some(i) = inner.upgrade() else { return };
        let mut check = match running.take() {
            Some(check) => check,
            None => {
                let store = i.store.clone();
                tokio::spawn(async move { store.get(Family::Settings, "health").await.map(|_| ()).map_err(|e| e.to_string()) })
            }
        };
        let store = match tokio::time::timeout(LIMIT, &mut check).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => Err(format!("the check failed: {e}")),
            Err(_) => {
                running = Some(check);
                Err(format!("no answer within {LIMIT:?}"))
            }
        };
        let was = i.health.store.swap(store.is_ok(), Ordering::Relaxed);
        match (&store, was) {
            (Err(e), true) => tracing::error!(store = i.store.backend(), "the store does not answer: {e}"),
            (Ok(()), false) => tracing::info!(store = i.store.backend(), "the store answers again"),
            _ => {}
        }
        let mut drivers = Vec::new();
        for (name, driver) in i.drivers.platforms() {
            let result = driver.health().await;
            if let Err(e) = &result {
                tracing::warn!(driver = name, "the platform does not answer: {e}");
            }
            drivers.push((name, result));
        }
        *i.health.drivers.lock() = drivers;
        drop(i);
        tokio::time::sleep(EVERY).await;
    }
}
