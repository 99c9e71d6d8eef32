//! Chunk-level behaviour of `PagedChunk` that the oracle cannot see: chunks that pass through
//! `merge` / `extract` unchanged stay pooled, the batcher does not re-page data it only keeps,
//! shipped batches page from their first chunk, and opening a cursor faults nothing in until it
//! is read. Each `finding*` test is a regression test for a finding of the first review of the
//! crate (each failed before its fix); the `sanity_*` tests pin down merge and seek correctness
//! on straddling and pooled chunks.

use std::collections::VecDeque;

use differential_dataflow::batcher::{Batcher, Extract};
use differential_dataflow::consolidation::consolidate_updates;
use differential_dataflow::trace::chunk::{merge_chains, Chunk};
use differential_dataflow::trace::cursor::Cursor;
use differential_dataflow::trace::Navigable;
use spillway_pool::{ExtentBackend, Pool, PoolConfig};
use spillway_trace::{PagedBatch, PagedBatcher, PagedChunk, Paging, PagingPolicy};
use timely::container::PushInto;
use timely::progress::Antichain;

type C = PagedChunk<u64, u64, u64, isize>;
type Upd = ((u64, u64), u64, isize);
const TARGET: usize = <C as Chunk>::TARGET;

fn pool(budget: u64) -> Pool {
    Pool::new(PoolConfig {
        budget,
        extents: ExtentBackend::Memory { capacity: None },
        ..PoolConfig::default()
    })
    .unwrap()
}

fn paging(pool: &Pool) -> Paging {
    Paging::with_policy(
        pool,
        PagingPolicy {
            min_bytes: 0,
            raw_depth0: true,
            ..PagingPolicy::default()
        },
    )
}

/// `n` distinct updates with keys `base..base + n`, all at `time`.
fn updates(base: u64, n: usize, time: u64) -> Vec<Upd> {
    (0..n as u64)
        .map(|i| ((base + i, i % 7), time, 1))
        .collect()
}

/// A batch of `chunks` full chunks shipped by a paged batcher (keys from `base`).
fn shipped_batch(pool: &Pool, base: u64, chunks: usize) -> PagedBatch<u64, u64, u64, isize> {
    let mut batcher = PagedBatcher::<u64, u64, u64, isize>::new(None, 0, paging(pool));
    let mut data = updates(base, chunks * TARGET, 0);
    batcher.insert(&mut data);
    let upper = Antichain::from_elem(1u64);
    let (batch, _) = batcher.extract(upper.borrow());
    batch.expect("a batch")
}

/// The pooled chunks of a batch of `chunks` full chunks shipped by a paged batcher, as a
/// batch of their own (as spine-merge outputs are: every chunk pooled).
fn pooled_batch(pool: &Pool, chunks: usize) -> PagedBatch<u64, u64, u64, isize> {
    let batch = shipped_batch(pool, 0, chunks);
    let pooled = batch.chunks().iter().filter(|c| c.is_pooled()).cloned();
    PagedBatch::new(pooled.collect())
}

fn resident(upds: &[Upd]) -> C {
    let mut c = C::default();
    for u in upds {
        c.push_into(*u);
    }
    c
}

fn flat(chunks: impl IntoIterator<Item = C>) -> Vec<Upd> {
    let mut out = Vec::new();
    for c in chunks {
        let mut cur = c.cursor();
        while cur.key_valid(&c) {
            while cur.val_valid(&c) {
                let (k, v) = (cur.key(&c), cur.val(&c));
                cur.map_times(&c, |t, r| out.push(((k, v), t, r)));
                cur.step_val(&c);
            }
            cur.step_key(&c);
        }
    }
    out
}

// ------------------------------------------------------------------------------------------
// FINDING 1 (perf / doc): `rewrap`'s identity check never fires. Upstream `VecChunk::merge`
// always pushes the survivor back as a fresh copy (`c.0[p..].to_vec()`, even when p == 0),
// and `VecChunk::extract` always builds fresh `k`/`s` vecs, so
// `std::ptr::eq(vec.as_slice(), body.as_slice())` is never true. A pooled chunk that an
// operation passes through unchanged comes back as a *resident copy*, contradicting the
// module docs ("put back as the original, so it stays pooled").
// ------------------------------------------------------------------------------------------

/// FINDING 1a: a pooled chunk entirely above the other head survives `merge` untouched, but
/// is put back as a resident copy.
#[test]
fn finding1a_merge_survivor_loses_pooled_body() {
    let pool = pool(64 << 20);
    let batch = shipped_batch(&pool, 1_000_000, 5);
    let pooled = batch
        .chunks()
        .iter()
        .find(|c| c.is_pooled())
        .expect("a pooled chunk")
        .clone();
    // Everything in `low` sorts before everything in `pooled`.
    let low = resident(&updates(0, 10, 0));
    let (mut in1, mut in2, mut out) = (
        VecDeque::from([low]),
        VecDeque::from([pooled.clone()]),
        VecDeque::new(),
    );
    C::merge(&mut in1, &mut in2, &mut out);
    assert!(in1.is_empty());
    assert_eq!(in2.len(), 1);
    assert_eq!(Chunk::len(&in2[0]), Chunk::len(&pooled));
    assert!(
        in2[0].is_pooled(),
        "the untouched survivor was decoded and put back as a resident copy"
    );
}

/// FINDING 1b: a pooled chunk whose updates are all kept by `extract` comes back resident.
#[test]
fn finding1b_extract_whole_keep_loses_pooled_body() {
    let pool = pool(64 << 20);
    let batch = shipped_batch(&pool, 0, 5);
    let pooled = batch
        .chunks()
        .iter()
        .find(|c| c.is_pooled())
        .expect("a pooled chunk")
        .clone();
    let mut input = VecDeque::from([pooled]);
    let frontier = Antichain::from_elem(0u64); // every update (time 0) is kept
    let mut residual = Antichain::new();
    let (mut keep, mut ship) = (VecDeque::new(), VecDeque::new());
    C::extract(
        &mut input,
        frontier.borrow(),
        &mut residual,
        &mut keep,
        &mut ship,
    );
    assert!(ship.is_empty());
    assert_eq!(keep.len(), 1);
    assert!(
        keep[0].is_pooled(),
        "a wholly-kept pooled chunk was decoded and put back as a resident copy"
    );
}

/// FINDING 1c (consequence): the batcher's retained (future-dated) data is decoded, copied
/// and re-inserted into the pool on *every* `extract`, even when nothing changed — write
/// amplification proportional to the retained data per frontier advance (and a fault-in
/// per chunk if it was evicted).
#[test]
fn finding1c_batcher_repages_retained_data_on_every_extract() {
    let pool = pool(64 << 20);
    let mut batcher = PagedBatcher::<u64, u64, u64, isize>::new(None, 0, paging(&pool));
    let mut data = updates(0, 8 * TARGET, 100); // all in the future of every upper below
    batcher.insert(&mut data);
    let mut inserts = Vec::new();
    for upper in 1..4u64 {
        let upper = Antichain::from_elem(upper);
        let (batch, _) = batcher.extract(upper.borrow());
        assert!(batch.is_none());
        inserts.push(pool.stats().inserts);
    }
    assert_eq!(
        inserts[2], inserts[1],
        "extracts that ship nothing re-inserted retained chunks into the pool: {inserts:?}"
    );
}

// ------------------------------------------------------------------------------------------
// FINDING 2 (perf / memory accounting): MIN_PAGED_CHAIN keeps the first 3 sealed chunks of
// every batcher `settle` output resident. That includes the *shipped* side of extraction,
// i.e. the batch handed to the spine (the Sealer's `settle_all` runs inside the scope too,
// with positions restarting at 0). Those chunks are not "consumed by the batcher's next
// merge": they live in the spine until a spine merge rewrites them, outside the pool budget
// (invisible to `PoolStats`, so tests/residency.rs cannot see them).
// ------------------------------------------------------------------------------------------
#[test]
fn finding2_shipped_batch_heads_stay_resident() {
    let pool = pool(64 << 20);
    let batch = shipped_batch(&pool, 0, 6);
    let resident: Vec<usize> = (0..batch.chunks().len())
        .filter(|&i| !batch.chunks()[i].is_pooled())
        .collect();
    assert!(
        resident.is_empty(),
        "chunks {resident:?} of a {}-chunk batch entering the spine are resident, outside the budget",
        batch.chunks().len()
    );
}

// ------------------------------------------------------------------------------------------
// FINDING 3 (perf): `PagedChunk::cursor()` pins eagerly, and upstream's `ChunkBatchCursor`
// opens the first chunk's cursor at construction (as `PagedBatchCursor` does). So merely constructing a batch cursor
// (e.g. `cursor_through` for every batch of a trace, in a join) faults chunk 0 of every batch
// back in and prefetches chunk 1, even if the reader then seeks elsewhere. Upstream documents
// batch-cursor construction as free; the design notes allowed a lazy pin.
// ------------------------------------------------------------------------------------------
#[test]
fn finding3_batch_cursor_construction_faults_in_first_chunk() {
    let pool = pool(64 << 20);
    let batch = pooled_batch(&pool, 8);
    assert!(batch.chunks().len() >= 2);
    pool.evict_to(0);
    pool.quiesce();
    let before = pool.stats();
    let cursor = batch.cursor(); // no read at all
    pool.quiesce();
    let after = pool.stats();
    drop(cursor);
    assert_eq!(
        (after.fault_ins, after.prefetches),
        (before.fault_ins, before.prefetches),
        "constructing a batch cursor faulted in / prefetched chunks"
    );
}

/// A batch cursor moving on in order asks the pool for the chunks ahead of the one it enters:
/// the next one (on the chunk's first read) and three beyond it (on entering it), so a scan
/// of evicted chunks overlaps their reads with its own work.
#[test]
fn a_scan_reads_ahead_of_the_chunk_it_enters() {
    let pool = pool(64 << 20);
    let batch = pooled_batch(&pool, 8);
    assert!(
        batch.chunks().len() >= 6,
        "{} pooled chunks",
        batch.chunks().len()
    );
    pool.evict_to(0);
    pool.quiesce();
    let before = pool.stats().prefetches;
    let mut cursor = batch.cursor();
    // Keys are distinct: one step a record, through chunk 0 and into chunk 1.
    for _ in 0..Chunk::len(&batch.chunks()[0]) {
        cursor.key(&batch);
        cursor.step_key(&batch);
    }
    assert_eq!(cursor.key(&batch), Chunk::len(&batch.chunks()[0]) as u64);
    // Chunk 1 (chunk 0's first read), chunks 3 to 5 (entering chunk 1), chunk 2 (chunk 1's
    // first read).
    assert_eq!(pool.stats().prefetches - before, 5);
}

// ------------------------------------------------------------------------------------------
// SANITY (question 1): one-chunk-per-input `merge` is a valid `Chunk::merge` — it merges
// through min(last of the two head chunks) (at or below the deque horizon), consumes at least
// one chunk per call (so the harness terminates), and with tiny chunks where (key, val)
// groups and times straddle chunk boundaries on both sides its output is exactly the
// consolidated union.
// ------------------------------------------------------------------------------------------
#[test]
fn sanity_merge_with_straddling_groups_matches_reference() {
    let mut seed = 0x2545F4914F6CDD1Du64;
    let mut rng = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..300 {
        let mut gen = |n: usize| {
            let mut v: Vec<Upd> = (0..n)
                .map(|_| {
                    let d = if rng() % 4 == 0 { -1 } else { 1 };
                    ((rng() % 12, rng() % 3), rng() % 6, d)
                })
                .collect();
            consolidate_updates(&mut v);
            v
        };
        let (u1, u2) = (gen(40), gen(40));
        if u1.is_empty() || u2.is_empty() {
            continue;
        }
        let sz = 1 + (u1.len() + u2.len()) % 4;
        let chain = |u: &[Upd]| u.chunks(sz).map(resident).collect::<Vec<_>>();
        let mut out = VecDeque::new();
        merge_chains(chain(&u1), chain(&u2), &mut out);
        let mut want: Vec<Upd> = u1.iter().chain(&u2).copied().collect();
        consolidate_updates(&mut want);
        assert_eq!(flat(out), want, "sz={sz}\nu1={u1:?}\nu2={u2:?}");
    }
}

/// SANITY (question 4): `seek_key` / `seek_val` / `rewind_vals` on a pooled chunk agree with a
/// linear model, for forward seeks from every position.
#[test]
fn sanity_pooled_cursor_seeks() {
    let pool = pool(64 << 20);
    let batch = shipped_batch(&pool, 0, 5);
    let c = batch
        .chunks()
        .iter()
        .find(|c| c.is_pooled())
        .unwrap()
        .clone();
    let all = flat([c.clone()]);
    let keys: Vec<u64> = {
        let mut k: Vec<u64> = all.iter().map(|u| u.0 .0).collect();
        k.dedup();
        k
    };
    for (i, &start) in keys.iter().enumerate().step_by(997) {
        for &target in keys[i..]
            .iter()
            .step_by(331)
            .chain([keys[keys.len() - 1] + 1].iter())
        {
            let mut cur = c.cursor();
            cur.seek_key(&c, start);
            cur.seek_key(&c, target);
            let want = keys.iter().copied().find(|&k| k >= target);
            assert_eq!(cur.get_key(&c), want);
            if let Some(k) = want {
                let v = all.iter().find(|u| u.0 .0 == k).unwrap().0 .1;
                cur.seek_val(&c, v);
                assert_eq!(cur.get_val(&c), Some(v));
                cur.seek_val(&c, v + 100);
                assert!(!cur.val_valid(&c));
                cur.rewind_vals(&c);
                assert_eq!(cur.get_val(&c), Some(v));
            }
        }
    }
}

/// With paging off, a sealed batch is held in its columnar form, not as rows: at four vals a
/// key and one time, each `(u64, u64, u64, isize)` update takes 8 bytes of val, a quarter of
/// a key and its 4-byte run end, and nothing for the time and diff (stored once a chunk):
/// 11 bytes, against 32 as rows and at least 16 in `OrdValSpine` (a val and its offset).
#[test]
fn resident_batches_are_columnar_and_smaller_than_ord_val_spine() {
    let mut batcher = PagedBatcher::<u64, u64, u64, isize>::new(None, 0, Paging::disabled());
    let n = 4 * TARGET;
    let mut data: Vec<Upd> = (0..n as u64).map(|i| ((i / 4, i), 3, 1)).collect();
    batcher.insert(&mut data);
    let (batch, _) = batcher.extract(Antichain::from_elem(4u64).borrow());
    let batch = batch.expect("a batch");
    assert_eq!(batch.chunks().iter().map(|c| c.len()).sum::<usize>(), n);
    assert!(batch.chunks().iter().all(|c| !c.is_pooled()));
    let bytes: usize = batch.chunks().iter().map(|c| c.body_bytes()).sum();
    let per_update = bytes as f64 / n as f64;
    assert!(
        per_update <= 11.1,
        "{per_update:.2} bytes an update held (rows take 32)"
    );
    // And it reads back as it went in.
    let mut cursor = batch.cursor();
    let mut seen = Vec::new();
    while let Some(key) = cursor.get_key(&batch) {
        while let Some(val) = cursor.get_val(&batch) {
            cursor.map_times(&batch, |t, r| seen.push(((key, val), t, r)));
            cursor.step_val(&batch);
        }
        cursor.step_key(&batch);
    }
    let expected: Vec<Upd> = (0..n as u64).map(|i| ((i / 4, i), 3, 1)).collect();
    assert_eq!(seen, expected);
}
