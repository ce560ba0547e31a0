//! The `external` driver: probes only, never starts or stops anything.

use std::sync::Arc;

use async_trait::async_trait;
use futures::FutureExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use leannodes_config::Workload;

use crate::{Driver, DriverError, Failure, Readiness, probe};

/// Probe-only driver for `kind = "external"` nodes.
#[derive(Debug, Default, Clone, Copy)]
pub struct ExternalDriver;

#[async_trait]
impl Driver for ExternalDriver {
    async fn wake(&self, _workload: &Arc<Workload>) -> Result<(), DriverError> {
        Ok(())
    }

    fn readiness(&self, workload: &Arc<Workload>) -> BoxStream<'static, Readiness> {
        probe::until_ready(workload.probe.clone(), None)
    }

    async fn drain(&self, _workload: &Arc<Workload>) -> Result<(), DriverError> {
        Ok(())
    }

    fn failure(&self, _workload: &Workload) -> Option<Failure> {
        None
    }

    fn is_running(&self, _workload: &Workload) -> bool {
        true
    }

    fn lost(&self, _workload: &Arc<Workload>) -> BoxFuture<'static, Failure> {
        // Not ours to watch: an external service that goes away is seen by the proxy's connects.
        futures::future::pending().boxed()
    }
}
