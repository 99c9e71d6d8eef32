//! A `reduce` into a `PagedSpine` pages its output when its `push` closure starts each chunk
//! with `PagedChunk::with_paging`, and keeps it resident with `Default` chunks; the answer is
//! the same either way.

use std::sync::{Arc, Mutex};

use differential_dataflow::consolidation::consolidate_updates;
use differential_dataflow::input::Input;
use spillway_pool::{ExtentBackend, Pool, PoolConfig, PoolStats};
use spillway_trace::{ArrangePaged, PagedBuilder, PagedChunk, PagedSpine, Paging, PagingPolicy};
use timely::container::PushInto;

type Out = Vec<((u64, u64), u64, isize)>;

fn run(page_output: bool) -> (Out, PoolStats) {
    let pool = Pool::new(PoolConfig {
        budget: 512 << 10,
        extents: ExtentBackend::Memory { capacity: None },
        ..PoolConfig::default()
    })
    .unwrap();
    let out: Arc<Mutex<Out>> = Arc::default();
    let (pool2, out2) = (pool.clone(), out.clone());
    timely::execute(timely::Config::thread(), move |worker| {
        // The input arrangement stays resident: every pool insert comes from the output.
        let output_paging = Paging::with_policy(
            &pool2,
            PagingPolicy {
                min_bytes: 4096,
                raw_depth0: false,
                ..PagingPolicy::default()
            },
        );
        let sink = out2.clone();
        let mut input = worker.dataflow::<u64, _, _>(|scope| {
            let (input, data) = scope.new_collection::<(u64, u64), isize>();
            data.arrange_by_key_paged(&Paging::disabled())
                .reduce_abelian::<_, PagedBuilder<u64, u64, u64, isize>, PagedSpine<u64, u64, u64, isize>, _, _>(
                    "MaxPerKey",
                    |_k, s, t| t.push((s[s.len() - 1].0, 1)),
                    move |buf: &mut PagedChunk<u64, u64, u64, isize>, k, upds| {
                        *buf = if page_output {
                            PagedChunk::with_paging(&output_paging)
                        } else {
                            PagedChunk::default()
                        };
                        for (v, t, r) in upds.drain(..) {
                            buf.push_into(((k, v), t, r));
                        }
                    },
                )
                .as_collection(|k, v| (k, v))
                .inspect(move |x| sink.lock().unwrap().push(*x));
            input
        });
        for round in 0..4u64 {
            for i in 0..50_000u64 {
                let x = (round * 50_000 + i).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                input.update((x % 40_000, x >> 44), 1);
            }
            input.advance_to(round + 1);
        }
    })
    .unwrap();
    let mut v = out.lock().unwrap().clone();
    for x in v.iter_mut() {
        x.1 = 0;
    }
    consolidate_updates(&mut v);
    (v, pool.stats())
}

#[test]
fn reduce_output_pages_with_a_paging_chunk() {
    let (resident, resident_stats) = run(false);
    let (paged, paged_stats) = run(true);
    assert_eq!(resident.len(), 40_000, "one max per key");
    assert_eq!(paged, resident);
    assert_eq!(resident_stats.inserts, 0, "{resident_stats:?}");
    assert!(
        paged_stats.inserts > 0 && paged_stats.extent_bytes_written > 0,
        "the reduce output never paged: {paged_stats:?}"
    );
}
