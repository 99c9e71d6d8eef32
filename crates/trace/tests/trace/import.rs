//! A paged trace exported from one dataflow and imported into another (through its
//! `TraceAgent`) reads back the same contents, including chunks paged out under a small budget.

use std::sync::{Arc, Mutex};

use differential_dataflow::input::Input;
use spillway_pool::{ExtentBackend, Pool, PoolConfig};
use spillway_trace::{ArrangePaged, Paging};
use timely::dataflow::operators::{Inspect, Probe};

type Update = ((u64, u64), u64, isize);

#[test]
fn imported_paged_trace_reads_back_its_contents() {
    let pool = Pool::new(PoolConfig {
        budget: 1 << 20,
        extents: ExtentBackend::Memory { capacity: None },
        ..PoolConfig::default()
    })
    .unwrap();
    let seen: Arc<Mutex<Vec<Update>>> = Arc::default();
    let (pool2, sink) = (pool.clone(), seen.clone());
    timely::execute(timely::Config::thread(), move |worker| {
        let paging = Paging::enabled(&pool2);
        let (mut input, probe, mut trace) = worker.dataflow::<u64, _, _>(|scope| {
            let (input, data) = scope.new_collection::<(u64, u64), isize>();
            let arranged = data.arrange_by_key_paged(&paging);
            let (probe, _) = arranged.stream.probe();
            (input, probe, arranged.trace)
        });
        for round in 0..4u64 {
            for i in 0..50_000u64 {
                input.update((i % 7_000, round * 50_000 + i), 1);
            }
            input.advance_to(round + 1);
            input.flush();
            while probe.less_than(input.time()) {
                worker.step();
            }
        }
        // A second dataflow reads the first one's arrangement.
        let sink = sink.clone();
        let probe2 = worker.dataflow::<u64, _, _>(|scope| {
            trace
                .import(scope)
                .as_collection(|k, v| (k, v))
                .inner
                .inspect(move |x| sink.lock().unwrap().push(*x))
                .probe()
                .0
        });
        input.close();
        while !probe2.done() {
            worker.step();
        }
    })
    .unwrap();
    let mut seen = seen.lock().unwrap().clone();
    differential_dataflow::consolidation::consolidate_updates(&mut seen);
    let total: isize = seen.iter().map(|(_, _, r)| r).sum();
    assert_eq!(total, 200_000, "imported trace lost or duplicated updates");
    for round in 0..4u64 {
        for i in (0..50_000u64).step_by(997) {
            let data = (i % 7_000, round * 50_000 + i);
            assert!(
                seen.iter().any(|(d, _, r)| *d == data && *r == 1),
                "{data:?} missing"
            );
        }
    }
    let s = pool.stats();
    assert!(
        s.evictions_compress > 0 && s.fault_ins > 0,
        "nothing paged: {s:?}"
    );
}
