//! Benchmark: what a pooled route adds to each new connection. `select` is the choice of
//! the member (the health check of every member and the strategy's order); `record` is
//! what a made connection records (a success and four phase times through the `metrics`
//! facade, and the health update); `metric_calls` is the facade's calls alone. Both with no recorder installed (the facade's calls
//! then do nothing) and with metrics-util's debugging recorder, against a baseline that
//! does no work, so that the figures can be read against a loopback connection's cost
//! (about 100 us through microsocks).
//!
//! `cargo bench -p proxy-benches --bench pool`

use std::hint::black_box;
use std::sync::OnceLock;

use divan::Bencher;
use proxy_runtime::Strategy;
use proxy_runtime::bench::{PoolBench, WeightBench};

fn main() {
    divan::main();
}

/// The baseline: a call that does nothing measurable.
#[divan::bench]
fn baseline() -> usize {
    black_box(1)
}

/// Selection, for pools of 1, 3 and 10 members.
#[divan::bench(args = [1, 3, 10])]
fn select_failover(bencher: Bencher, members: usize) {
    let pool = PoolBench::new(members, Strategy::Failover);
    bencher.bench(|| pool.select());
}

/// Selection by round robin (an atomic increment more).
#[divan::bench(args = [1, 3, 10])]
fn select_round_robin(bencher: Bencher, members: usize) {
    let pool = PoolBench::new(members, Strategy::RoundRobin);
    bencher.bench(|| pool.select());
}

/// What a made connection records, with no metrics recorder installed.
#[divan::bench]
fn record_without_recorder(bencher: Bencher) {
    let pool = PoolBench::new(3, Strategy::Failover);
    bencher.bench(|| pool.record_success(black_box(1)));
}

/// The metric calls alone (four histogram values), with no recorder installed: the cost
/// of the metrics when nobody reads them.
#[divan::bench]
fn metric_calls_without_recorder(bencher: Bencher) {
    let pool = PoolBench::new(3, Strategy::Failover);
    bencher.bench(|| pool.record_phases(black_box(1)));
}

/// The same with a recorder that stores every value (the debugging recorder: a
/// production exporter costs about as much).
#[divan::bench]
fn record_with_recorder(bencher: Bencher) {
    static RECORDER: OnceLock<()> = OnceLock::new();
    RECORDER.get_or_init(|| {
        let recorder = metrics_util::debugging::DebuggingRecorder::new();
        recorder
            .install()
            .expect("no other recorder in this program");
    });
    let pool = PoolBench::new(3, Strategy::Failover);
    bencher.bench(|| pool.record_success(black_box(1)));
}

/// One request's weight accounting (the order of the exits, admission, the answer's count
/// applied), for routes of 1, 3 and 10 exits where every exit but the last is spent: the
/// worst case, each request passing over the others first. Goal: under 1 us at 10.
#[divan::bench(args = [1, 3, 10])]
fn weight_accounting(bencher: Bencher, members: usize) {
    let weights = WeightBench::new(members, members - 1);
    bencher.bench(|| weights.request());
}

/// The same where the first exit has room (the common case).
#[divan::bench(args = [1, 10])]
fn weight_accounting_first_has_room(bencher: Bencher, members: usize) {
    let weights = WeightBench::new(members, 0);
    bencher.bench(|| weights.request());
}

/// A request's read of the route in force, which a reload may swap (one lock-free load
/// and a reference count held for the request), on 1 and 2 threads at once (the count's
/// cache line is shared), against the field read of a route no reload can change.
#[divan::bench(threads = [1, 2], sample_size = 1000)]
fn route_in_force(bencher: Bencher) {
    static BENCH: OnceLock<proxy_runtime::bench::ReloadBench> = OnceLock::new();
    let routes = BENCH.get_or_init(proxy_runtime::bench::ReloadBench::new);
    bencher.bench(|| routes.route_in_force());
}

/// The baseline of [`route_in_force`]: the route as a field.
#[divan::bench(threads = [1, 2], sample_size = 1000)]
fn route_fixed(bencher: Bencher) {
    static BENCH: OnceLock<proxy_runtime::bench::ReloadBench> = OnceLock::new();
    let routes = BENCH.get_or_init(proxy_runtime::bench::ReloadBench::new);
    bencher.bench(|| routes.route_fixed());
}
