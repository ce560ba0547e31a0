use std::collections::HashMap;

use super::*;

fn endpoints(n: u16) -> Arc<Vec<SocketAddr>> {
    Arc::new((0..n).map(|i| SocketAddr::from(([10, 0, 0, 1], 8000 + i))).collect())
}

fn go(pick: Pick) -> (SocketAddr, Option<Lease>) {
    match pick {
        Pick::Go(addr, lease) => (addr, lease),
        other => panic!("expected an endpoint, got {other:?}"),
    }
}

#[test]
fn a_burst_of_held_requests_is_spread_evenly_over_the_ready_endpoints() {
    let balancer = Balancer::new(None);
    let list = endpoints(3);
    // 999 released at once, none finished yet: the least busy endpoint takes each.
    let leases: Vec<_> = (0..999).map(|_| go(balancer.pick(&list))).collect();
    let mut per: HashMap<SocketAddr, usize> = HashMap::new();
    for (addr, _) in &leases {
        *per.entry(*addr).or_default() += 1;
    }
    assert_eq!(per.len(), 3);
    assert!(per.values().all(|n| *n == 333), "{per:?}");
    drop(leases);
    assert!(balancer.in_flight().iter().all(|(_, n)| *n == 0), "leases give their slot back");
}

#[test]
fn max_concurrency_admits_at_most_the_limit_per_endpoint_and_a_finished_request_frees_a_slot() {
    let balancer = Balancer::new(Some(2));
    let list = endpoints(2);
    let mut leases: Vec<_> = (0..4).map(|_| go(balancer.pick(&list))).collect();
    assert!(matches!(balancer.pick(&list), Pick::Full), "2 endpoints × 2 = 4 requests at once");
    let (freed_addr, _) = leases.remove(0);
    let (next, _lease) = go(balancer.pick(&list));
    assert_eq!(next, freed_addr, "the slot that was freed is taken");
}

#[test]
fn an_endpoint_that_joins_takes_the_requests_the_first_one_could_not() {
    let balancer = Balancer::new(Some(1));
    let first = endpoints(1);
    let (_, _held) = go(balancer.pick(&first));
    assert!(matches!(balancer.pick(&first), Pick::Full));
    // The second pod becomes ready: a new list, the first endpoint's count carried over.
    let both = endpoints(2);
    let (addr, _second) = go(balancer.pick(&both));
    assert_eq!(addr, both[1]);
    assert!(matches!(balancer.pick(&both), Pick::Full));
}

#[test]
fn one_endpoint_without_a_limit_counts_nothing() {
    let balancer = Balancer::new(None);
    let (_, lease) = go(balancer.pick(&endpoints(1)));
    assert!(lease.is_none());
    assert!(matches!(balancer.pick(&Arc::new(Vec::new())), Pick::NoEndpoint));
}

#[tokio::test]
async fn a_waiter_is_woken_when_a_slot_frees() {
    let balancer = Balancer::new(Some(1));
    let list = endpoints(1);
    let (_, lease) = go(balancer.pick(&list));
    let waiter = {
        let (balancer, list) = (balancer.clone(), list.clone());
        tokio::spawn(async move {
            loop {
                let freed = balancer.freed();
                tokio::pin!(freed);
                freed.as_mut().enable();
                if let Pick::Go(addr, lease) = balancer.pick(&list) {
                    return (addr, lease.is_some());
                }
                freed.await;
            }
        })
    };
    tokio::task::yield_now().await;
    drop(lease);
    assert_eq!(waiter.await.expect("waiter"), (list[0], true));
}

#[test]
fn requests_that_see_a_new_endpoint_list_at_once_share_its_counters() {
    // Eight threads pick on the same new list at the same moment, each keeping what it gets: with a limit
    // of 1 on 2 endpoints, 2 are admitted and every admitted one is counted where the next pick looks.
    for round in 0..200 {
        let balancer = Balancer::new(Some(1));
        let list = endpoints(2);
        let start = std::sync::Barrier::new(8);
        let admitted: Vec<Option<Lease>> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..8)
                .map(|_| {
                    scope.spawn(|| {
                        start.wait();
                        match balancer.pick(&list) {
                            Pick::Go(_, lease) => Some(lease.expect("counted")),
                            _ => None,
                        }
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().expect("thread")).collect()
        });
        let leases: Vec<Lease> = admitted.into_iter().flatten().collect();
        let counted: usize = balancer.in_flight().iter().map(|(_, n)| n).sum();
        assert_eq!((leases.len(), counted), (2, 2), "round {round}: admitted and counted");
    }
}
