//! Micro-benchmarks of the request hot path: route lookup over 10,000 bindings, hold admission, and the
//! release of held requests when their flow's state flips to awake.

// criterion's macros generate an undocumented public function.
#![allow(missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, black_box, criterion_group, criterion_main};
use leannodes_control::{FlowState, FlowStatus};
use leannodes_proxy::metrics::FlowMetrics;

fn route_lookup(c: &mut Criterion) {
    // 1,000 flows × (4 exact + 1 wildcard) × 2 paths = 10,000 bindings.
    let config = leannodes_benches::config(1_000, 4);
    let table = leannodes_benches::routes(&config);
    assert_eq!(table.len(), 10_000);
    let mut group = c.benchmark_group("route_lookup_10k");
    group.bench_function("exact", |b| b.iter(|| black_box(table.find(black_box("h3.f517.example.com"), black_box("/api/orders/7")))));
    group.bench_function("exact_with_port_and_case", |b| {
        b.iter(|| black_box(table.find(black_box("H3.F517.Example.com:8080"), black_box("/"))))
    });
    group.bench_function("wildcard", |b| b.iter(|| black_box(table.find(black_box("tenant-42.w517.example.com"), black_box("/api")))));
    group.bench_function("miss", |b| b.iter(|| black_box(table.find(black_box("nobody.example.org"), black_box("/")))));
    group.finish();
}

fn hold_admission(c: &mut Criterion) {
    let metrics = Arc::new(FlowMetrics::default());
    c.bench_function("hold_admit_release", |b| b.iter(|| drop(black_box(metrics.try_hold(10_000)))));
}

fn hold_release(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap_or_else(|e| panic!("{e}"));
    let config = leannodes_benches::config(1, 1);
    let flow = Arc::new(leannodes_control::FlowHandle::detached(config.flows[0].clone()));
    let mut group = c.benchmark_group("release_held");
    group.measurement_time(Duration::from_secs(5));
    for waiters in [1usize, 100, 1_000] {
        group.bench_with_input(BenchmarkId::from_parameter(waiters), &waiters, |b, &waiters| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += runtime.block_on(release_once(&flow, waiters));
                }
                total
            });
        });
    }
    group.finish();
}

/// Parks `waiters` tasks on the flow's status, flips it to awake, and times until every one has seen it.
async fn release_once(flow: &Arc<leannodes_control::FlowHandle>, waiters: usize) -> Duration {
    flow.set_state_for_bench(FlowState::Waking);
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(waiters);
    let mut handles = Vec::with_capacity(waiters);
    for _ in 0..waiters {
        let mut rx = flow.subscribe();
        let ready_tx = ready_tx.clone();
        handles.push(tokio::spawn(async move {
            let _ = ready_tx.send(()).await;
            let _ = rx.wait_for(FlowStatus::is_settled).await;
        }));
    }
    for _ in 0..waiters {
        let _ = ready_rx.recv().await;
    }
    let start = Instant::now();
    flow.set_state_for_bench(FlowState::Awake);
    for h in handles {
        let _ = h.await;
    }
    start.elapsed()
}

criterion_group!(benches, route_lookup, hold_admission, hold_release);
criterion_main!(benches);
