//! Die-young elision: updates that cancel inside the batcher write nothing, although the
//! batcher's chains go through the pool: chunks enter the pool lazily and die before any
//! eviction needs them written.
//!
//! Each round is larger than the batcher's sort run (`SORT_RUN`), so the cancelling updates meet
//! in merges of paged chains, not in the chunker's sort.

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
        for round in 0..4u64 {
            // 600k updates a round (19 MB, over two sort runs), all cancelled within the round.
            let n = 300_000u64;
            assert!(n as usize > spillway_trace::SORT_RUN);
            for i in 0..n {
                let x = (round << 32 | i).wrapping_mul(0x9E3779B97F4A7C15);
                input.update((x % 50_000, x >> 44), 1);
            }
            for i in 0..n {
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
