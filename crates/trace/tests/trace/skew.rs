//! The vectored join under key skew: a handful of hot keys with thousands of values on both
//! sides (with retractions, over several rounds so that each side is fresh in turn), and a
//! tail of cold keys.
//!
//! - Its output collection equals upstream `join_core` on `OrdValSpine` arrangements, with
//!   the default bounds and with bounds small enough that hot keys are split over blocks and
//!   windows and their cross products over many steps; paging on (a tiny pool) and off; and
//!   for random skews and bounds down to one record (proptest).
//! - Its buffers stay within the configured bounds ([`VectoredJoin::join_stats`]): records
//!   pushed per `next()`, fresh updates per block, other-side updates per window; and the
//!   records it ships per worker step (one activation) stay within the driver's fuel (per
//!   input) plus one container.
//! - With wide values (4 KiB), blocks and windows are bounded in encoded bytes as well
//!   ([`VectoredJoin::fresh_bytes`], [`VectoredJoin::window_bytes`]), and the output still
//!   equals upstream's.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use differential_dataflow::consolidation::consolidate_updates;
use differential_dataflow::input::Input;
use proptest::prelude::*;
use spillway_pool::{Pool, PoolConfig};
use spillway_trace::{ArrangePaged, JoinStats, JoinVectored, Paging, PagingPolicy, VectoredJoin};
use timely::dataflow::operators::{Inspect, Probe};

type Out = Vec<((u64, u64, u64), u64, isize)>;

/// Hot keys, and values per hot key per round on each side.
#[derive(Clone, Copy, Debug)]
struct Skew {
    hot: u64,
    left: u64,
    right: u64,
}
const SKEW: Skew = Skew {
    hot: 4,
    left: 600,
    right: 70,
};
const ROUNDS: u64 = 3;
/// Records a chunk may hold (two grading targets): a window takes at least one chunk.
const CHUNK_MAX: u64 = 2 * 8192;
/// The join driver's fuel per input per activation (differential's `join_with_tactic`).
const DRIVER_FUEL: u64 = 1_000_000;

/// The bounds a run uses: `(group, fresh, window, step)`.
type Bounds = Option<(usize, usize, usize, usize)>;

struct Run {
    vectored: Out,
    upstream: Out,
    stats: JoinStats,
    /// The most records the vectored join shipped in one worker step.
    max_per_step: u64,
}

fn run(paged: bool, skew: Skew, bounds: Bounds) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let pool = Pool::new(
        PoolConfig::default()
            .budget("512KiB")
            .unwrap()
            .extent_dir(dir.path()),
    )
    .unwrap();
    timely::execute_directly(move |worker| {
        let paging = if paged {
            Paging::with_policy(
                &pool,
                PagingPolicy {
                    min_bytes: 1024,
                    raw_depth0: false,
                    ..PagingPolicy::default()
                },
            )
        } else {
            Paging::disabled()
        };
        let vectored: Rc<RefCell<Out>> = Rc::default();
        let upstream: Rc<RefCell<Out>> = Rc::default();
        let shipped = Rc::new(Cell::new(0u64));
        let mut tactic = VectoredJoin::new(|k, x, y| Some((k, x, y)));
        if let Some((group, fresh, window, step)) = bounds {
            tactic = tactic
                .group(group)
                .fresh_records(fresh)
                .window_records(window)
                .step_records(step);
        }
        let stats = tactic.join_stats();
        let (v, u, s) = (vectored.clone(), upstream.clone(), shipped.clone());
        let (mut left, mut right, probe) = worker.dataflow::<u64, _, _>(|scope| {
            let (l_in, l) = scope.new_collection::<(u64, u64), isize>();
            let (r_in, r) = scope.new_collection::<(u64, u64), isize>();
            let by_tactic = l
                .clone()
                .arrange_by_key_paged(&paging)
                .join_with(r.clone().arrange_by_key_paged(&paging), tactic)
                .inner
                .inspect_core(move |event| {
                    if let Ok((_, batch)) = event {
                        s.set(s.get() + batch.len() as u64);
                        v.borrow_mut().extend_from_slice(batch);
                    }
                });
            let by_upstream = l
                .arrange_by_key()
                .join_core(r.arrange_by_key(), |k, x, y| Some((*k, *x, *y)))
                .inner
                .inspect_core(move |event| {
                    if let Ok((_, batch)) = event {
                        u.borrow_mut().extend_from_slice(batch);
                    }
                });
            let (probe, _) = by_tactic.probe();
            by_upstream.probe_with(&probe);
            (l_in, r_in, probe)
        });
        let mut max_per_step = 0;
        let mut step = |worker: &mut timely::worker::Worker| {
            let more = worker.step();
            max_per_step = max_per_step.max(shipped.replace(0));
            more
        };
        for round in 0..ROUNDS {
            for key in 0..skew.hot {
                for j in 0..skew.left {
                    left.update((key, round * 10_000 + j), 1);
                    if round > 0 && j % 5 == 0 {
                        left.update((key, (round - 1) * 10_000 + j), -1);
                    }
                }
                for j in 0..skew.right {
                    right.update((key, round * 10_000 + j), 1 + (j % 2) as isize);
                    if round > 0 && j % 7 == 0 {
                        right.update((key, (round - 1) * 10_000 + j), -1 - (j % 2) as isize);
                    }
                }
            }
            // A cold tail: one value per key on each side.
            for key in 100..400 {
                left.update((key, round), 1);
                right.update((key + round, 7), 1);
            }
            left.advance_to(round + 1);
            right.advance_to(round + 1);
            left.flush();
            right.flush();
            while probe.less_than(left.time()) {
                step(worker);
            }
        }
        drop((left, right));
        while step(worker) {}
        let mut vectored = std::mem::take(&mut *vectored.borrow_mut());
        let mut upstream = std::mem::take(&mut *upstream.borrow_mut());
        consolidate_updates(&mut vectored);
        consolidate_updates(&mut upstream);
        let stats = *stats.borrow();
        Run {
            vectored,
            upstream,
            stats,
            max_per_step,
        }
    })
}

fn check_bounds(run: &Run, window: u64, step: u64, fresh: u64) {
    let s = &run.stats;
    assert!(s.max_step_records <= step, "{s:?}");
    assert!(s.max_block_updates <= fresh, "{s:?}");
    assert!(s.max_window_updates <= window + CHUNK_MAX, "{s:?}");
    // Each input's queue is drained until its fuel is spent: at most one container over.
    assert!(
        run.max_per_step <= 2 * (DRIVER_FUEL + s.max_container_records),
        "{} records in one step",
        run.max_per_step
    );
}

#[test]
fn split_hot_keys_join_like_upstream_with_bounded_steps() {
    let (group, fresh, window, step) = (64, 500, 2_000, 1_000);
    for paged in [true, false] {
        let run = run(paged, SKEW, Some((group, fresh, window, step)));
        eprintln!("paged {paged}, small bounds: {:?}", run.stats);
        assert!(run.upstream.len() > 100_000, "{}", run.upstream.len());
        assert!(
            run.vectored == run.upstream,
            "paged {paged}: outputs differ"
        );
        check_bounds(&run, window as u64, step as u64, fresh as u64);
        let s = run.stats;
        // Hot keys really were split: more blocks than fresh batches, windows than blocks,
        // and steps than windows.
        assert!(s.blocks > 2 * ROUNDS, "{s:?}");
        assert!(s.windows > s.blocks, "{s:?}");
        assert!(s.steps > 100, "{s:?}");
    }
}

#[test]
fn default_bounds_join_like_upstream() {
    let run = run(true, SKEW, None);
    eprintln!("default bounds: {:?}", run.stats);
    assert!(run.vectored == run.upstream, "outputs differ");
    check_bounds(
        &run,
        spillway_trace::JOIN_WINDOW_RECORDS as u64,
        spillway_trace::JOIN_STEP_RECORDS as u64,
        spillway_trace::JOIN_FRESH_RECORDS as u64,
    );
    // Each hot key's cross product (hundreds of thousands of records) came in steps.
    assert!(
        run.stats.records_out > 4 * run.stats.max_step_records,
        "{:?}",
        run.stats
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    /// Any bounds, down to one record, give upstream's output.
    #[test]
    fn any_bounds_join_like_upstream(
        hot in 1u64..6,
        left in 1u64..200,
        right in 1u64..40,
        group in 1usize..40,
        fresh in 1usize..300,
        window in 1usize..3_000,
        step in 1usize..500,
        paged in any::<bool>(),
    ) {
        let run = run(paged, Skew { hot, left, right }, Some((group, fresh, window, step)));
        prop_assert!(!run.upstream.is_empty());
        prop_assert!(run.vectored == run.upstream, "outputs differ");
        prop_assert!(run.stats.max_step_records <= step as u64);
        prop_assert!(run.stats.max_block_updates <= fresh as u64);
    }
}

/// A value of `len` bytes for `(key, j)`, varied so lz4 does not squeeze it to nothing.
fn wide_value(key: u64, j: u64, len: usize) -> Vec<u8> {
    let mut x = (key << 32 | j).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A digest of a value, so outputs carry no bytes.
fn digest(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Bytes of each wide value.
const WIDE: usize = 4096;

/// Hot keys with `WIDE`-byte values on both sides over `ROUNDS` rounds (with retractions),
/// joined by the vectored tactic with byte bounds `(fresh_bytes, window_bytes)` (record
/// bounds left at their defaults) and by upstream `join_core`: both outputs, consolidated,
/// and the tactic's stats.
fn run_wide(paged: bool, (fresh_bytes, window_bytes): (usize, usize)) -> (Out, Out, JoinStats) {
    let dir = tempfile::tempdir().unwrap();
    let pool = Pool::new(
        PoolConfig::default()
            .budget("1MiB")
            .unwrap()
            .extent_dir(dir.path()),
    )
    .unwrap();
    timely::execute_directly(move |worker| {
        let paging = if paged {
            Paging::with_policy(
                &pool,
                PagingPolicy {
                    raw_depth0: false,
                    ..PagingPolicy::default()
                },
            )
        } else {
            Paging::disabled()
        };
        let vectored: Rc<RefCell<Out>> = Rc::default();
        let upstream: Rc<RefCell<Out>> = Rc::default();
        let tactic =
            VectoredJoin::new(|k: u64, x: &[u8], y: &[u8]| Some((k, digest(x), digest(y))))
                .fresh_bytes(fresh_bytes)
                .window_bytes(window_bytes);
        let stats = tactic.join_stats();
        let (v, u) = (vectored.clone(), upstream.clone());
        let (mut left, mut right, probe) = worker.dataflow::<u64, _, _>(|scope| {
            let (l_in, l) = scope.new_collection::<(u64, Vec<u8>), isize>();
            let (r_in, r) = scope.new_collection::<(u64, Vec<u8>), isize>();
            let by_tactic = l
                .clone()
                .arrange_by_key_paged(&paging)
                .join_with(r.clone().arrange_by_key_paged(&paging), tactic)
                .inner
                .inspect_core(move |event| {
                    if let Ok((_, batch)) = event {
                        v.borrow_mut().extend_from_slice(batch);
                    }
                });
            let by_upstream = l
                .arrange_by_key()
                .join_core(r.arrange_by_key(), |k, x, y| {
                    Some((*k, digest(x), digest(y)))
                })
                .inner
                .inspect_core(move |event| {
                    if let Ok((_, batch)) = event {
                        u.borrow_mut().extend_from_slice(batch);
                    }
                });
            let (probe, _) = by_tactic.probe();
            by_upstream.probe_with(&probe);
            (l_in, r_in, probe)
        });
        for round in 0..ROUNDS {
            for key in 0..2 {
                for j in 0..300 {
                    left.update((key, wide_value(key, round * 10_000 + j, WIDE)), 1);
                    if round > 0 && j % 5 == 0 {
                        let old = wide_value(key, (round - 1) * 10_000 + j, WIDE);
                        left.update((key, old), -1);
                    }
                }
                for j in 0..60 {
                    right.update((key, wide_value(key + 50, round * 10_000 + j, WIDE)), 1);
                }
            }
            left.advance_to(round + 1);
            right.advance_to(round + 1);
            left.flush();
            right.flush();
            while probe.less_than(left.time()) {
                worker.step();
            }
        }
        drop((left, right));
        while worker.step() {}
        let mut vectored = std::mem::take(&mut *vectored.borrow_mut());
        let mut upstream = std::mem::take(&mut *upstream.borrow_mut());
        consolidate_updates(&mut vectored);
        consolidate_updates(&mut upstream);
        let stats = *stats.borrow();
        (vectored, upstream, stats)
    })
}

#[test]
fn wide_values_bound_blocks_and_windows_in_bytes() {
    // Both bounds above a chunk's bytes (cut at `TARGET_BYTES`, plus one record), so every
    // window fits its bound; both far below the sides' megabytes per round.
    let (fresh_bytes, window_bytes) = (512 << 10, 1 << 20);
    assert!(window_bytes > 2 * spillway_trace::TARGET_BYTES + WIDE + 64);
    for paged in [true, false] {
        let (vectored, upstream, s) = run_wide(paged, (fresh_bytes, window_bytes));
        eprintln!("paged {paged}, wide values: {s:?}");
        assert!(upstream.len() > 10_000, "{}", upstream.len());
        assert!(vectored == upstream, "paged {paged}: outputs differ");
        assert!(s.max_window_bytes > 0, "{s:?}");
        assert!(s.max_window_bytes <= window_bytes as u64, "{s:?}");
        assert!(s.max_block_bytes > 0, "{s:?}");
        assert!(s.max_block_bytes <= fresh_bytes as u64, "{s:?}");
        // The byte bounds bound the updates too: a 4 KiB update takes more than 4 KiB.
        assert!(
            s.max_window_updates <= (window_bytes / WIDE) as u64,
            "{s:?}"
        );
        assert!(s.max_block_updates <= (fresh_bytes / WIDE) as u64, "{s:?}");
        // The record bounds (512 Ki window updates) would have taken each side whole: the
        // bytes split hot keys over blocks and windows.
        assert!(s.windows > s.blocks, "{s:?}");
        assert!(s.blocks > 2 * ROUNDS, "{s:?}");
    }
}
