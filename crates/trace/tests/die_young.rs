//! Die-young elision: updates that cancel inside the batcher write nothing, although the
//! batcher's chains go through the pool: chunks enter the pool lazily and die before any
//! eviction needs them written.
//!
//! (Under pressure, with a budget below the batcher's peak, some of those chunks are written
//! before they die: at a 4 MiB budget with this workload, 12 of the 240 pooled chunks. Before
//! the heads of batcher chains were kept resident (`MIN_PAGED_CHAIN`) it was 48 of 582.)

use differential_dataflow::input::Input;
use spillway_pool::{Pool, PoolConfig};
use spillway_trace::{ArrangePaged, Paging};
use timely::dataflow::operators::Probe;

#[test]
fn cancelling_updates_are_never_written() {
    let dir = tempfile::tempdir().unwrap();
    let pool = Pool::new(
        PoolConfig {
            budget: 32 << 20,
            ..PoolConfig::default()
        }
        .extent_dir(dir.path()),
    )
    .unwrap();
    let pool2 = pool.clone();
    timely::execute(timely::Config::thread(), move |worker| {
        let paging = Paging::enabled(&pool2);
        let (mut input, probe) = worker.dataflow::<u64, _, _>(|scope| {
            let (input, data) = scope.new_collection::<(u64, u64), isize>();
            let (probe, _) = data.arrange_by_key_paged(&paging).stream.probe();
            (input, probe)
        });
        for round in 0..6u64 {
            // 200k updates a round (6.4 MB), all cancelled within the round.
            for i in 0..100_000u64 {
                let x = (round << 32 | i).wrapping_mul(0x9E3779B97F4A7C15);
                input.update((x % 50_000, x >> 44), 1);
            }
            for i in 0..100_000u64 {
                let x = (round << 32 | i).wrapping_mul(0x9E3779B97F4A7C15);
                input.update((x % 50_000, x >> 44), -1);
            }
            input.advance_to(round + 1);
            input.flush();
            while probe.less_than(input.time()) {
                worker.step();
            }
        }
    })
    .unwrap();
    let s = pool.stats();
    eprintln!("{s:?}");
    assert!(
        s.inserts > 0,
        "the batcher never paged, so this test shows nothing: {s:?}"
    );
    assert_eq!(
        s.writes_elided, s.inserts,
        "every pooled chunk died unwritten: {s:?}"
    );
    assert_eq!(s.extent_bytes_written, 0, "{s:?}");
}
