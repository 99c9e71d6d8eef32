//! Vectored lookups: many keys looked up in a paged trace at once.
//!
//! Invariant: a lookup finds exactly the updates per-key cursor seeks would find, reads each
//! chunk at most once per call, and caches nothing in the chunks, so its memory is bounded by
//! the keys and the records found, for every key and value type.
//!
//! Looking keys up one at a time with a cursor re-walks every batch's chunks per key, and can
//! fault the same chunk in again and again as the pool's budget evicts it between keys. A
//! vectored lookup takes a sorted slice of keys and:
//! 1. **sweeps** each batch once: one forward pass over the chunks' resident fence keys finds,
//!    for every chunk, the run of keys that can fall into it. Keys outside every chunk's
//!    range cost no I/O, and a chunk no key falls into is never touched;
//! 2. **plans** the reads: every pooled chunk of every batch that some key falls into is
//!    handed to [`Pool::pin_each`] in one call, which reads each at most once, coalescing
//!    adjacent extents and overlapping I/O with decoding (see `spillway_pool`'s vectored
//!    module);
//! 3. **searches** each chunk as it arrives, for its run of keys only, with a forward
//!    binary search over the pinned key column, comparing keys borrowed in place (`&str` for
//!    `String`: no allocation per probe). Only the matching records are decoded (their vals
//!    are owned in the output): nothing is cached, so memory stays bounded for every type.
//!
//! [`for_each_update`] streams the raw updates `(key index, val, time, diff)`, in an order of
//! the pool's choosing; [`get_vectored`] accumulates them at a time and returns, key by key,
//! exactly what a cursor lookup of each key accumulates (tests check this record for record).
//! [`crate::VectoredJoin`] builds a join on them; [`chunks_touched`] counts the chunks a
//! lookup would visit without reading any.

use std::borrow::Borrow;
use std::ops::Range;

use differential_dataflow::consolidation::consolidate_updates;
use differential_dataflow::difference::Semigroup;
use differential_dataflow::lattice::Lattice;
use spillway_pool::{ChunkHandle, Pool, VectoredReads};
use timely::progress::Timestamp;

use crate::batch::PagedBatch;
use crate::chunk::{unreadable, Layout, LookupBody, PagedChunk};
use crate::data::{less, PagedData};

/// What one vectored lookup did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LookupStats {
    /// Keys looked up.
    pub keys: u64,
    /// Batches swept (each exactly once).
    pub batches: u64,
    /// Chunks some key fell into (each searched once).
    pub chunks_visited: u64,
    /// Of those, chunks whose body was resident in memory (no pin needed).
    pub chunks_resident: u64,
    /// The pool's side: chunks pinned, read back, read calls, coalesced extents, bytes.
    pub pool: VectoredReads,
}

impl std::ops::AddAssign for LookupStats {
    fn add_assign(&mut self, o: Self) {
        self.keys += o.keys;
        self.batches += o.batches;
        self.chunks_visited += o.chunks_visited;
        self.chunks_resident += o.chunks_resident;
        self.pool += o.pool;
    }
}

/// A chunk some keys fall into, and the range of (indexes of) those keys.
struct Visit<'c, K, V, T, R> {
    chunk: &'c PagedChunk<K, V, T, R>,
    keys: Range<usize>,
}

/// A pooled chunk to pin: its handle, layout, and the range of keys that fall into it.
type PooledVisit<'c> = (&'c ChunkHandle, Layout, Range<usize>, (Option<u64>, u8));

/// Streams every update of `keys` in `batches` to `emit(i, val, time, diff)`, where `i` is
/// the key's index in `keys`. `keys` must be sorted and free of duplicates. Updates come in
/// no particular order across chunks (resident chunks first, then pooled ones as their reads
/// land); within a chunk, in the chunk's order.
///
/// # Panics
/// If `keys` is not strictly increasing, or a chunk cannot be read back from its extent (the
/// error names it; as a cursor read would).
pub fn for_each_update<B, K, V, T, R>(
    batches: &[B],
    keys: &[K],
    mut emit: impl FnMut(usize, V, T, R),
) -> LookupStats
where
    B: Borrow<PagedBatch<K, V, T, R>>,
    K: PagedData,
    V: PagedData,
    T: PagedData + Lattice + Timestamp,
    R: PagedData + Semigroup,
{
    assert!(
        keys.windows(2).all(|w| w[0] < w[1]),
        "vectored lookups need sorted keys without duplicates"
    );
    let mut stats = LookupStats {
        keys: keys.len() as u64,
        batches: batches.len() as u64,
        ..LookupStats::default()
    };
    let mut visits = Vec::new();
    for batch in batches {
        sweep(batch.borrow().chunks(), keys, &mut visits);
    }
    stats.chunks_visited = visits.len() as u64;
    // Resident chunks now; pooled ones grouped by pool (one pool per arrangement in
    // practice), each group read with one planned `pin_each`.
    let mut pooled: Vec<(&Pool, Vec<PooledVisit>)> = Vec::new();
    for visit in visits {
        match visit.chunk.lookup_body() {
            LookupBody::Records(records) => {
                stats.chunks_resident += 1;
                search_records(records, keys, visit.keys, &mut emit);
            }
            LookupBody::Packed { bytes, layout } => {
                stats.chunks_resident += 1;
                search_columns::<K, V, T, R>(bytes, layout, keys, visit.keys, &mut emit);
            }
            LookupBody::Pooled {
                handle,
                layout,
                pool,
            } => {
                let entry = (handle, layout, visit.keys, visit.chunk.label());
                match pooled.iter_mut().find(|(p, _)| p.same_pool(pool)) {
                    Some((_, group)) => group.push(entry),
                    None => pooled.push((pool, vec![entry])),
                }
            }
        }
    }
    for (pool, group) in pooled {
        let handles: Vec<&ChunkHandle> = group.iter().map(|(h, ..)| *h).collect();
        stats.pool += pool.pin_each(&handles, |i, pin| {
            let (handle, layout, range, (paging, depth)) = &group[i];
            let body =
                pin.unwrap_or_else(|e| unreadable(*paging, *depth, layout.len, handle.len(), &e));
            search_columns::<K, V, T, R>(&body, *layout, keys, range.clone(), &mut emit);
        });
    }
    stats
}

/// One forward pass over `chunks`' fences: each chunk some keys can fall into, with the
/// range of those keys. Amortized `O(chunks + keys)`: a key is revisited only by the chunks
/// whose fences it equals.
fn sweep<'c, K, V, T, R>(
    chunks: &'c [PagedChunk<K, V, T, R>],
    keys: &[K],
    visits: &mut Vec<Visit<'c, K, V, T, R>>,
) where
    K: PagedData,
    V: PagedData,
    T: PagedData,
    R: PagedData,
{
    let mut lo = 0;
    for chunk in chunks {
        if lo == keys.len() {
            break;
        }
        let ((first, _, _), (last, _, _)) = chunk.fences();
        while lo < keys.len() && keys[lo] < *first {
            lo += 1;
        }
        let mut hi = lo;
        while hi < keys.len() && keys[hi] <= *last {
            hi += 1;
        }
        if hi > lo {
            visits.push(Visit {
                chunk,
                keys: lo..hi,
            });
        }
        // The next chunk may start with this chunk's last key: do not move `lo` past it.
    }
}

/// How many chunks of `batches` some of `keys` (sorted, no duplicates) can fall into, by
/// their fences: the chunks a lookup of `keys` visits. Reads nothing.
pub fn chunks_touched<B, K, V, T, R>(batches: &[B], keys: &[K]) -> u64
where
    B: Borrow<PagedBatch<K, V, T, R>>,
    K: PagedData,
    V: PagedData,
    T: PagedData + Lattice + Timestamp,
    R: PagedData + Semigroup,
{
    let mut visits = Vec::new();
    for batch in batches {
        sweep(batch.borrow().chunks(), keys, &mut visits);
    }
    visits.len() as u64
}

/// Emits the updates of `keys[range]` among resident `records`.
fn search_records<K, V, T, R>(
    records: &[((K, V), T, R)],
    keys: &[K],
    range: Range<usize>,
    emit: &mut impl FnMut(usize, V, T, R),
) where
    K: Ord,
    V: Clone,
    T: Clone,
    R: Clone,
{
    let mut at = 0;
    for i in range {
        at += records[at..].partition_point(|r| r.0 .0 < keys[i]);
        while at < records.len() && records[at].0 .0 == keys[i] {
            let ((_, v), t, r) = &records[at];
            emit(i, v.clone(), t.clone(), r.clone());
            at += 1;
        }
    }
}

/// Emits the updates of `keys[range]` in a columnar body (packed, or a pinned pooled one),
/// decoding only those.
fn search_columns<K, V, T, R>(
    body: &[u8],
    layout: Layout,
    keys: &[K],
    range: Range<usize>,
    emit: &mut impl FnMut(usize, V, T, R),
) where
    K: PagedData,
    V: PagedData,
    T: PagedData,
    R: PagedData,
{
    let n = layout.keys;
    // Keys are compared as borrowed items (`&str` for `String`): no allocation per probe.
    let key_at = |k: usize| K::borrow(&body[layout.key::<K>(body, k)]);
    let mut at = 0;
    for i in range {
        // Binary search the distinct keys for the key, from where the last search ended.
        let (mut lo, mut hi) = (at, n);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if less::<K>(key_at(mid), keys[i].item()) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        at = lo;
        if at == n || less::<K>(keys[i].item(), key_at(at)) {
            continue;
        }
        for r in layout.key_start(body, at)..layout.key_end(body, at) {
            emit(
                i,
                V::decode(&body[layout.val::<V>(body, r)]),
                T::decode(&body[layout.time::<T>(body, r)]),
                R::decode(&body[layout.diff::<R>(body, r)]),
            );
        }
        at += 1;
    }
}

/// The updates of `keys` accumulated at `time`: for each key (in order) its values whose
/// accumulated diff over updates at times `≤ time` is non-zero, as `(key, val, diff)`, sorted
/// by `(key, val)`. Equal, record for record, to seeking each key with a cursor and
/// accumulating `map_times` at `time`. `keys` must be sorted and free of duplicates.
pub fn get_vectored<B, K, V, T, R>(
    batches: &[B],
    keys: &[K],
    time: &T,
    out: &mut Vec<(K, V, R)>,
) -> LookupStats
where
    B: Borrow<PagedBatch<K, V, T, R>>,
    K: PagedData,
    V: PagedData,
    T: PagedData + Lattice + Timestamp,
    R: PagedData + Semigroup,
{
    let mut found = Vec::new();
    let stats = for_each_update(batches, keys, |i, v, t, r| {
        if t.less_equal(time) {
            found.push(((i, v), (), r));
        }
    });
    consolidate_updates(&mut found);
    out.clear();
    out.extend(
        found
            .into_iter()
            .map(|((i, v), (), r)| (keys[i].clone(), v, r)),
    );
    stats
}
