//! Wide records page: chunks are cut by encoded bytes (`TARGET_BYTES`), so records of 4 KiB
//! and 64 KiB make chunks that fit a pool slot class, are written to extents and faulted back
//! in, and read back equal to upstream's `OrdValSpine`. A single record larger than the
//! largest slot class (8 MiB) is the one Oversize case: stored on the heap, counted in
//! `oversize_chunks`, and read back equal.

use std::sync::{Arc, Mutex};

use differential_dataflow::consolidation::consolidate_updates;
use differential_dataflow::input::Input;
use differential_dataflow::trace::cursor::Cursor;
use differential_dataflow::trace::{Navigable, TraceReader};
use spillway_pool::{ExtentBackend, Pool, PoolConfig, PoolStats};
use spillway_trace::{ArrangePaged, Paging, PagingPolicy, TARGET_BYTES};
use timely::dataflow::operators::Probe;
use timely::progress::frontier::AntichainRef;

type Update = ((u64, Vec<u8>), u64, isize);

/// The input, round by round: `((key, value), diff)`.
type Rounds = Vec<Vec<((u64, Vec<u8>), isize)>>;

/// What a run saw: the paged and the upstream scans, the pool's counters after the scans
/// (with the traces still alive), and the record counts of the paged trace's chunks.
struct Seen {
    paged: Vec<Update>,
    upstream: Vec<Update>,
    stats: PoolStats,
    chunk_lens: Vec<usize>,
}

/// A value of `len` bytes for key `key` (varied, so lz4 does not squeeze it to nothing).
fn value(key: u64, len: usize) -> Vec<u8> {
    let mut x = key.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 16) as u8
        })
        .collect()
}

/// Arranges `rounds` (each a list of `(key, value)` updates, some retracting an earlier round's)
/// paged under a 1 MiB budget and upstream, then scans both traces with cursors.
fn run(rounds: Rounds) -> Seen {
    let pool = Pool::new(PoolConfig {
        budget: 1 << 20,
        extents: ExtentBackend::Memory { capacity: None },
        ..PoolConfig::default()
    })
    .unwrap();
    type Scans = (Vec<Update>, Vec<Update>, PoolStats, Vec<usize>);
    let seen: Arc<Mutex<Option<Scans>>> = Arc::default();
    let (pool2, seen2) = (pool.clone(), seen.clone());
    timely::execute(timely::Config::thread(), move |worker| {
        let paging = Paging::with_policy(
            &pool2,
            PagingPolicy {
                raw_depth0: false,
                ..PagingPolicy::default()
            },
        );
        let (mut input, probe, mut paged, mut upstream) = worker.dataflow::<u64, _, _>(|scope| {
            let (input, data) = scope.new_collection::<(u64, Vec<u8>), isize>();
            let paged = data.clone().arrange_by_key_paged(&paging);
            let upstream = data.arrange_by_key();
            let (probe, _) = paged.stream.probe();
            (input, probe, paged.trace, upstream.trace)
        });
        for (round, updates) in rounds.iter().enumerate() {
            for (data, diff) in updates {
                input.update(data.clone(), *diff);
            }
            input.advance_to(round as u64 + 1);
            input.flush();
            while probe.less_than(input.time()) {
                worker.step();
            }
        }
        drop(input);
        while worker.step() {}

        let mut got = Vec::new();
        let mut chunk_lens = Vec::new();
        let batches = paged.batches_through(AntichainRef::new(&[])).unwrap();
        for batch in &batches {
            chunk_lens.extend(
                batch
                    .chunks()
                    .iter()
                    .map(differential_dataflow::trace::chunk::Chunk::len),
            );
            let mut cursor = batch.cursor();
            while cursor.key_valid(batch) {
                while cursor.val_valid(batch) {
                    let (k, v) = (cursor.key(batch), cursor.val(batch).to_owned());
                    cursor.map_times(batch, |t, r| got.push(((k, v.clone()), t, r)));
                    cursor.step_val(batch);
                }
                cursor.step_key(batch);
            }
        }
        let mut want = Vec::new();
        let batches = upstream.batches_through(AntichainRef::new(&[])).unwrap();
        for batch in &batches {
            let mut cursor = batch.cursor();
            while cursor.key_valid(batch) {
                while cursor.val_valid(batch) {
                    let (k, v) = (*cursor.key(batch), cursor.val(batch).to_owned());
                    cursor.map_times(batch, |t, r| want.push(((k, v.clone()), *t, *r)));
                    cursor.step_val(batch);
                }
                cursor.step_key(batch);
            }
        }
        consolidate_updates(&mut got);
        consolidate_updates(&mut want);
        *seen2.lock().unwrap() = Some((got, want, pool2.stats(), chunk_lens));
    })
    .unwrap();
    let (paged, upstream, stats, chunk_lens) = seen.lock().unwrap().take().unwrap();
    Seen {
        paged,
        upstream,
        stats,
        chunk_lens,
    }
}

/// `per_round` records of `len`-byte values in each of `rounds` rounds over `keys` keys; from
/// the second round on, a tenth of the previous round is retracted.
fn wide_rounds(rounds: u64, per_round: u64, keys: u64, len: usize) -> Rounds {
    let record = |round: u64, i: u64| {
        let n = round * per_round + i;
        let key = n.wrapping_mul(0x2545_F491_4F6C_DD1D) % keys;
        ((key, value(n, len)), 1)
    };
    (0..rounds)
        .map(|round| {
            let mut updates: Vec<_> = (0..per_round).map(|i| record(round, i)).collect();
            if round > 0 {
                updates.extend(
                    (0..per_round)
                        .step_by(10)
                        .map(|i| (record(round - 1, i).0, -1)),
                );
            }
            updates
        })
        .collect()
}

fn assert_pages(seen: &Seen, len: usize) {
    assert!(!seen.upstream.is_empty());
    assert!(
        seen.paged == seen.upstream,
        "the paged scan differs from upstream"
    );
    let stats = &seen.stats;
    assert!(
        stats.extent_bytes_written > 0,
        "nothing was written: {stats:?}"
    );
    assert!(stats.fault_ins > 0, "nothing was faulted in: {stats:?}");
    assert_eq!(stats.oversize_chunks, 0, "{stats:?}");
    // Every chunk holds at most `TARGET_BYTES` of records (each a little over `len` bytes).
    let most = (TARGET_BYTES / len).max(1);
    assert!(
        seen.chunk_lens.iter().all(|&n| n <= most),
        "chunks over {most} records of {len} bytes: {:?}",
        seen.chunk_lens
    );
    assert!(seen.chunk_lens.len() > 1);
}

#[test]
fn records_of_4_kib_page() {
    let seen = run(wide_rounds(4, 600, 900, 4 << 10));
    assert_pages(&seen, 4 << 10);
}

#[test]
fn records_of_64_kib_page() {
    let seen = run(wide_rounds(3, 60, 100, 64 << 10));
    assert_pages(&seen, 64 << 10);
}

#[test]
fn a_record_over_the_largest_slot_class_is_oversize_and_reads_back() {
    // One 9 MiB value among small and 64 KiB ones (and a second round, so batches merge).
    let mut rounds = wide_rounds(2, 40, 50, 64 << 10);
    rounds[0].push(((25, value(25, 9 << 20)), 1));
    rounds[1].extend((100..140).map(|k| ((k, value(k, 100)), 1)));
    let seen = run(rounds);
    assert!(
        seen.paged == seen.upstream,
        "the paged scan differs from upstream"
    );
    assert!(seen.paged.iter().any(|((_, v), _, _)| v.len() == 9 << 20));
    let stats = &seen.stats;
    assert!(stats.oversize_chunks >= 1, "{stats:?}");
    assert!(
        stats.oversize_bytes >= 9 << 20,
        "the oversize chunk is gone: {stats:?}"
    );
    assert!(stats.extent_bytes_written > 0, "{stats:?}");
}
