//! Per-key cursor seeks versus vectored lookups in a paged arrangement far above its budget
//! (the workload of `examples/vectored_lookup.rs`, smaller so criterion can repeat it).
//!
//! ```text
//! cargo bench --bench vectored
//! ```
//! One arrangement of 2M updates through a 4 MiB pool; 2,000 keys drawn from a tenth of the
//! key space. Every iteration starts with the pool emptied (`evict_to(0)`, not timed), so
//! each measures cold lookups: per key in random order, and vectored in batches of 1,000 and
//! of all 2,000 keys.

use criterion::{BatchSize, Criterion, Throughput};
use spillway::{Paging, Pool, PoolConfig};
use spillway_workload::input::InputSpec;
use spillway_workload::lookup::{arrange, draw_keys, per_key, vectored};

fn main() {
    let spec = InputSpec {
        seed: 1,
        updates: 2_000_000,
        keys: 500_000,
        probes: 0,
        rounds: 10,
        retract: 0.0,
        key_dist: spillway_workload::key_dist::KeySampler::uniform(500_000),
        records: spillway_workload::input::Records::U64,
    };
    let pool = Pool::new(PoolConfig::default().budget("4MiB").expect("budget")).expect("pool");
    let worker_pool = pool.clone();
    timely::execute_directly(move |worker| {
        // Criterion is neither `Send` nor `Sync`: it lives inside the worker's closure.
        let mut criterion = Criterion::default().configure_from_args();
        let paging = Paging::enabled(&worker_pool);
        let mut trace = arrange(worker, &spec, &paging);
        let keys = draw_keys(&spec, 2_000, 0.1, 7);
        let mut group = criterion.benchmark_group("lookup_2k_keys_cold");
        group.throughput(Throughput::Elements(keys.len() as u64));
        group.sample_size(10);
        group.bench_function("per_key", |b| {
            b.iter_batched(
                || worker_pool.evict_to(0),
                |()| per_key(&mut trace, &spec, &keys, &worker_pool),
                BatchSize::PerIteration,
            )
        });
        for batch in [1_000, 2_000] {
            group.bench_function(format!("vectored_batch_{batch}"), |b| {
                b.iter_batched(
                    || worker_pool.evict_to(0),
                    |()| vectored(&mut trace, &spec, &keys, batch),
                    BatchSize::PerIteration,
                )
            });
        }
        group.finish();
        criterion.final_summary();
    });
}
