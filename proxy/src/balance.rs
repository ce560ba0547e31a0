//! Choosing an endpoint for each request, and admitting requests as endpoints have room.
//!
//! A route's requests go to the least busy of its ready endpoints (requests in flight on each, counted
//! here), starting the search at a rotating position so ties spread evenly. This matters most when a
//! flow wakes: every held request is released at once, and a round robin over whatever was ready first
//! sends them all to one pod (the KEDA HTTP add-on's known stampede).
//!
//! With the upstream node's `max_concurrency`, an endpoint never has more than that many requests at
//! once: a request that finds every endpoint full waits — inside its hold budget — until one finishes or
//! another endpoint becomes ready. Without a limit and with one endpoint, nothing is counted: the warm
//! path of a single backend pays nothing for this.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arc_swap::ArcSwap;
use tokio::sync::Notify;

/// The in-flight counters of one set of endpoints.
#[derive(Debug)]
struct Slots {
    /// The endpoint list these counters belong to (compared by pointer: a new list means new slots).
    from: Arc<Vec<SocketAddr>>,
    busy: Vec<Arc<AtomicUsize>>,
}

/// Counts requests per endpoint and picks where the next one goes.
#[derive(Debug)]
pub struct Balancer {
    limit: Option<usize>,
    slots: ArcSwap<Slots>,
    rotate: AtomicUsize,
    freed: Notify,
}

/// The outcome of [`Balancer::pick`].
#[derive(Debug)]
pub enum Pick {
    /// Send the request here; the lease counts it until dropped.
    Go(SocketAddr, Option<Lease>),
    /// There is no ready endpoint.
    NoEndpoint,
    /// Every endpoint has `max_concurrency` requests.
    Full,
}

/// One request counted on one endpoint, until dropped.
#[derive(Debug)]
pub struct Lease {
    busy: Arc<AtomicUsize>,
    balancer: Arc<Balancer>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.busy.fetch_sub(1, Ordering::AcqRel);
        if self.balancer.limit.is_some() {
            self.balancer.freed.notify_waiters();
        }
    }
}

impl Balancer {
    /// A balancer admitting at most `limit` requests per endpoint at once (`None`: no limit).
    pub fn new(limit: Option<usize>) -> Arc<Balancer> {
        let slots = Slots { from: Arc::new(Vec::new()), busy: Vec::new() };
        Arc::new(Balancer { limit, slots: ArcSwap::from_pointee(slots), rotate: AtomicUsize::new(0), freed: Notify::new() })
    }

    /// The per-endpoint limit.
    pub fn limit(&self) -> Option<usize> {
        self.limit
    }

    /// Picks an endpoint among `endpoints` (the current ready list).
    pub fn pick(self: &Arc<Self>, endpoints: &Arc<Vec<SocketAddr>>) -> Pick {
        match (endpoints.len(), self.limit) {
            (0, _) => return Pick::NoEndpoint,
            (1, None) => return Pick::Go(endpoints[0], None),
            _ => {}
        }
        let slots = self.slots_for(endpoints);
        let n = slots.busy.len();
        let start = self.rotate.fetch_add(1, Ordering::Relaxed) % n;
        // A few rounds: a counter taken between the look and the increment makes us look again.
        for _ in 0..4 {
            let (best, load) = (0..n)
                .map(|i| (start + i) % n)
                .map(|i| (i, slots.busy[i].load(Ordering::Acquire)))
                .min_by_key(|(_, load)| *load)
                .unwrap_or((0, 0));
            if self.limit.is_some_and(|limit| load >= limit) {
                return Pick::Full;
            }
            let taken = match self.limit {
                Some(limit) => slots.busy[best].fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| (b < limit).then_some(b + 1)).is_ok(),
                None => {
                    slots.busy[best].fetch_add(1, Ordering::AcqRel);
                    true
                }
            };
            if taken {
                return Pick::Go(slots.from[best], Some(Lease { busy: slots.busy[best].clone(), balancer: self.clone() }));
            }
        }
        Pick::Full
    }

    /// Resolves when a counted request ends or endpoints change (only signalled when there is a limit).
    /// Call `enable()` on it before picking again, so a slot freed in between is not missed.
    pub fn freed(&self) -> tokio::sync::futures::Notified<'_> {
        self.freed.notified()
    }

    /// The counters for this endpoint list; a new list keeps the counts of the endpoints it still has.
    ///
    /// Requests that see a new list at once agree on one set of counters (read-copy-update): one whose
    /// own copy lost the swap would otherwise count on counters nobody else sees.
    fn slots_for(&self, endpoints: &Arc<Vec<SocketAddr>>) -> Arc<Slots> {
        let current = self.slots.load_full();
        if Arc::ptr_eq(&current.from, endpoints) {
            return current;
        }
        self.slots.rcu(|current| {
            if Arc::ptr_eq(&current.from, endpoints) {
                return current.clone();
            }
            let busy = endpoints
                .iter()
                .map(|addr| current.from.iter().position(|a| a == addr).map_or_else(Arc::default, |i| current.busy[i].clone()))
                .collect();
            Arc::new(Slots { from: endpoints.clone(), busy })
        });
        // Endpoints that joined are room for waiting requests too.
        self.freed.notify_waiters();
        // The counters now stored: this list's, or a list swapped in since, whose endpoints are as good.
        self.slots.load_full()
    }

    /// Requests in flight per endpoint of the current list (for tests and explain).
    pub fn in_flight(&self) -> Vec<(SocketAddr, usize)> {
        let slots = self.slots.load();
        slots.from.iter().zip(&slots.busy).map(|(a, b)| (*a, b.load(Ordering::Relaxed))).collect()
    }
}

#[cfg(test)]
mod tests;
