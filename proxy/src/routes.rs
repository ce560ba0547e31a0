//! The route table: host and path to a flow. Built by the control side, swapped atomically (`ArcSwap`)
//! on reload, read lock-free per request. Matching is [`BindingIndex`]'s (exact host beats wildcard,
//! longest path prefix on segment boundaries), the same the management API's routing lookup uses.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use leannodes_config::binding::BindingIndex;
use leannodes_config::{Binding, HostPort, Probe, Workload, WorkloadId, WorkloadSpec};
use leannodes_control::{EndpointSet, FlowHandle};

use crate::balance::{Balancer, Pick};
use crate::metrics::FlowMetrics;
use crate::tls::UpstreamTransport;

/// Where a matched request goes and which flow guards it.
#[derive(Debug)]
pub struct Route {
    /// The flow.
    pub flow: Arc<FlowHandle>,
    /// Where requests go once the flow is awake.
    pub upstream: Upstream,
    /// Per-flow counters (shared across reloads for the same flow name).
    pub metrics: Arc<FlowMetrics>,
    /// Protocol and TLS verification towards the upstream.
    pub transport: UpstreamTransport,
}

/// Where a route's requests go.
#[derive(Debug)]
pub struct Upstream {
    /// The addresses.
    pub endpoints: Endpoints,
    /// Counts requests per endpoint and applies `max_concurrency` (shared by every route to the same
    /// workload, and kept across reloads).
    pub balancer: Arc<Balancer>,
}

/// The addresses of an upstream.
#[derive(Debug)]
pub enum Endpoints {
    /// One fixed address (process nodes, literal `host:port`).
    Fixed(Arc<Vec<SocketAddr>>),
    /// The ready endpoints of a Kubernetes workload; updates need no reload.
    Live(EndpointSet),
}

impl Upstream {
    /// One fixed address, no limit.
    pub fn fixed(addr: SocketAddr) -> Upstream {
        Upstream { endpoints: Endpoints::Fixed(Arc::new(vec![addr])), balancer: Balancer::new(None) }
    }

    /// Where the next request goes (see [`Balancer::pick`]).
    pub fn pick(&self) -> Pick {
        match &self.endpoints {
            Endpoints::Fixed(addrs) => self.balancer.pick(addrs),
            Endpoints::Live(set) => self.balancer.pick(&set.load()),
        }
    }
}

/// An immutable snapshot of all routes.
#[derive(Debug, Default, Clone)]
pub struct RouteTable {
    bindings: BindingIndex<Arc<Route>>,
    by_flow: HashMap<String, Arc<Route>>,
    /// One balancer per upstream workload, shared by the routes to it.
    balancers: HashMap<WorkloadId, Arc<Balancer>>,
}

impl RouteTable {
    /// An empty table.
    pub fn new() -> RouteTable {
        RouteTable::default()
    }

    /// Adds a route for each binding.
    pub fn insert(&mut self, bindings: &[Binding], route: Arc<Route>) {
        for binding in bindings {
            self.bindings.insert(binding, route.clone());
        }
        self.by_flow.insert(route.flow.name().to_string(), route);
    }

    /// The route for a request's `Host` (any case, with or without port) and path.
    pub fn find(&self, host: &str, path: &str) -> Option<&Arc<Route>> {
        self.bindings.find(host, path)
    }

    /// The route of a flow by name.
    pub fn flow(&self, name: &str) -> Option<&Arc<Route>> {
        self.by_flow.get(name)
    }

    /// All routes, one per flow.
    pub fn routes(&self) -> impl Iterator<Item = &Arc<Route>> + Clone {
        self.by_flow.values()
    }

    /// Number of host × path bindings.
    pub fn len(&self) -> usize {
        self.bindings.len()
    }

    /// Whether there are no bindings.
    pub fn is_empty(&self) -> bool {
        self.bindings.is_empty()
    }
}

/// Why a route could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// The upstream host name does not resolve.
    #[error("flow `{flow}`: cannot resolve upstream {target}: {reason}")]
    Resolve {
        /// Flow name.
        flow: String,
        /// The host:port.
        target: String,
        /// Why.
        reason: String,
    },
    /// The upstream node has no address LeanNodes can reach.
    #[error("flow `{flow}`: upstream node `{node}` has no reachable address ({reason})")]
    NoAddress {
        /// Flow name.
        flow: String,
        /// Node name.
        node: String,
        /// Why.
        reason: &'static str,
    },
    /// `upstream_tls` cannot be used.
    #[error("flow `{flow}`: {reason}")]
    Tls {
        /// Flow name.
        flow: String,
        /// Why.
        reason: String,
    },
}

impl RouteTable {
    /// Builds the table for these flows. Host names are resolved here, off the request path; counters
    /// of flows already in `previous` are kept. `endpoints` gives the live address set of a workload
    /// whose driver tracks one (Kubernetes).
    pub async fn build(
        flows: &[Arc<FlowHandle>],
        previous: Option<&RouteTable>,
        endpoints: &(dyn Fn(&Arc<Workload>) -> Option<EndpointSet> + Sync),
    ) -> Result<RouteTable, RouteError> {
        let mut table = RouteTable::new();
        for flow in flows {
            let (endpoints, host) = upstream_of(flow, endpoints).await?;
            let balancer = table.balancer_for(flow, previous);
            let upstream = Upstream { endpoints, balancer };
            let transport = UpstreamTransport::of(&flow.spec, host.as_deref())
                .map_err(|reason| RouteError::Tls { flow: flow.name().to_string(), reason })?;
            let metrics = previous.and_then(|p| p.flow(flow.name())).map(|r| r.metrics.clone()).unwrap_or_default();
            table.insert(&flow.spec.bindings, Arc::new(Route { flow: flow.clone(), upstream, metrics, transport }));
        }
        Ok(table)
    }
}

impl RouteTable {
    /// The balancer of `flow`'s upstream: shared with other flows to the same workload, kept from
    /// `previous` while the limit is unchanged (so requests in flight stay counted across a reload).
    fn balancer_for(&mut self, flow: &FlowHandle, previous: Option<&RouteTable>) -> Arc<Balancer> {
        let spec = &flow.spec;
        let leannodes_config::Upstream::Node(i) = spec.upstream else {
            // A literal address: counted per flow.
            let kept = previous.and_then(|p| p.flow(flow.name())).map(|r| r.upstream.balancer.clone());
            return kept.filter(|b| b.limit().is_none()).unwrap_or_else(|| Balancer::new(None));
        };
        let node = &spec.nodes[i];
        let limit = node.max_concurrency.map(std::num::NonZeroUsize::get);
        let id = &node.workload.id;
        if let Some(shared) = self.balancers.get(id) {
            return shared.clone();
        }
        let kept = previous.and_then(|p| p.balancers.get(id)).filter(|b| b.limit() == limit).cloned();
        let balancer = kept.unwrap_or_else(|| Balancer::new(limit));
        self.balancers.insert(id.clone(), balancer.clone());
        balancer
    }
}

/// Resolves a `host:port` (literal IPs without DNS).
pub async fn resolve(target: &HostPort) -> Result<SocketAddr, String> {
    if let Some(addr) = target.socket_addr() {
        return Ok(addr);
    }
    tokio::net::lookup_host((target.host.as_str(), target.port))
        .await
        .map_err(|e| e.to_string())?
        .next()
        .ok_or_else(|| "no addresses".to_string())
}

/// The flow's upstream, and the host name it was given by (none for Kubernetes endpoints).
async fn upstream_of(
    flow: &FlowHandle,
    endpoints: &(dyn Fn(&Arc<Workload>) -> Option<EndpointSet> + Sync),
) -> Result<(Endpoints, Option<String>), RouteError> {
    let spec = &flow.spec;
    let target = match &spec.upstream {
        leannodes_config::Upstream::Address(hp) => hp.clone(),
        leannodes_config::Upstream::Node(i) => {
            let node = &spec.nodes[*i];
            let no_address = |reason| RouteError::NoAddress { flow: spec.name.clone(), node: node.name.clone(), reason };
            let port = node.workload.port.ok_or_else(|| no_address("no port"))?;
            match (&node.workload.spec, &node.workload.probe) {
                (WorkloadSpec::Process(_), _) => HostPort { host: "127.0.0.1".into(), port },
                (WorkloadSpec::External, Some(Probe::Tcp(hp))) => HostPort { host: hp.host.clone(), port },
                (WorkloadSpec::External, _) => {
                    return Err(no_address("external nodes serve traffic only through a literal host:port upstream or a tcp probe"));
                }
                (WorkloadSpec::Kubernetes { .. }, _) => {
                    let set = endpoints(&node.workload).ok_or_else(|| no_address("Kubernetes upstreams need the Kubernetes driver"))?;
                    return Ok((Endpoints::Live(set), None));
                }
            }
        }
    };
    let addr =
        resolve(&target).await.map_err(|reason| RouteError::Resolve { flow: spec.name.clone(), target: target.to_string(), reason })?;
    Ok((Endpoints::Fixed(Arc::new(vec![addr])), Some(target.host)))
}

#[cfg(test)]
mod tests;
