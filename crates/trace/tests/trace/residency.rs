//! Bounded residency: an arrangement several times the pool budget is built and then scanned
//! three times with cursors; the pool's resident bytes stay within budget plus slack, and the
//! scans really fault chunks back in.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use differential_dataflow::input::Input;
use differential_dataflow::trace::cursor::Cursor;
use differential_dataflow::trace::{Navigable, TraceReader};
use spillway_pool::{Pool, PoolConfig, PoolStats};
use spillway_trace::{ArrangePaged, Paging};
use timely::dataflow::operators::Probe;
use timely::progress::frontier::AntichainRef;

const BUDGET: u64 = 2 << 20;
const ROUNDS: u64 = 8;
const PER_ROUND: u64 = 60_000;

fn update(round: u64, i: u64) -> (u64, u64) {
    let x = (round * PER_ROUND + i).wrapping_mul(0x9E3779B97F4A7C15);
    (x % 200_000, x >> 40)
}

#[test]
fn scans_of_a_paged_arrangement_stay_within_budget() {
    let dir = tempfile::tempdir().unwrap();
    let pool = Pool::new(
        PoolConfig {
            budget: BUDGET,
            ..PoolConfig::default()
        }
        .extent_dir(dir.path()),
    )
    .unwrap();
    let scans: Arc<Mutex<Vec<(u64, i64, PoolStats)>>> = Arc::default();
    let (pool2, scans2) = (pool.clone(), scans.clone());
    timely::execute(timely::Config::thread(), move |worker| {
        let paging = Paging::enabled(&pool2);
        let (mut input, probe, mut trace) = worker.dataflow::<u64, _, _>(|scope| {
            let (input, data) = scope.new_collection::<(u64, u64), isize>();
            let arranged = data.arrange_by_key_paged(&paging);
            let (probe, _) = arranged.stream.probe();
            (input, probe, arranged.trace)
        });
        for round in 0..ROUNDS {
            for i in 0..PER_ROUND {
                input.update(update(round, i), 1);
            }
            input.advance_to(round + 1);
            input.flush();
            while probe.less_than(input.time()) {
                worker.step();
            }
        }
        for _ in 0..3 {
            let batches = trace.batches_through(AntichainRef::new(&[])).unwrap();
            let (mut records, mut weight) = (0u64, 0i64);
            for batch in &batches {
                let mut cursor = batch.cursor();
                while cursor.key_valid(batch) {
                    while cursor.val_valid(batch) {
                        cursor.map_times(batch, |_t, r| {
                            records += 1;
                            weight += r as i64;
                        });
                        cursor.step_val(batch);
                    }
                    cursor.step_key(batch);
                }
            }
            scans2
                .lock()
                .unwrap()
                .push((records, weight, pool2.stats()));
        }
    })
    .unwrap();

    let mut expected: HashMap<((u64, u64), u64), i64> = HashMap::new();
    for round in 0..ROUNDS {
        for i in 0..PER_ROUND {
            *expected.entry((update(round, i), round)).or_default() += 1;
        }
    }
    let total: i64 = expected.values().sum();
    let scans = scans.lock().unwrap();
    let arranged_bytes = ROUNDS * PER_ROUND * 32;
    assert!(
        arranged_bytes > 5 * BUDGET,
        "the arrangement must dwarf the budget"
    );
    let before_scans = &scans[0].2;
    for (records, weight, stats) in scans.iter() {
        assert_eq!(*weight, total, "scan lost updates");
        assert!(*records > 0 && *records <= expected.len() as u64);
        let slack = PoolConfig::default().write_behind_for(BUDGET) + (1 << 20);
        assert!(
            stats.peak_resident_bytes <= BUDGET + slack,
            "peak resident {} over budget {} + slack {}: {stats:?}",
            stats.peak_resident_bytes,
            BUDGET,
            slack
        );
    }
    let last = &scans[2].2;
    assert!(
        last.fault_ins > before_scans.fault_ins,
        "scans never faulted: {last:?}"
    );
    assert!(
        last.extent_bytes_written > 0,
        "nothing was written: {last:?}"
    );
    assert!(
        last.prefetches > before_scans.prefetches,
        "scanning cursors never prefetched the next chunk: {last:?}"
    );
    eprintln!("after scans: {last:?}");
}
