//! The `Chunk` operations of a [`PagedChunk`], and the container traits the chunker builds
//! chunks with.
//!
//! Invariant: every chunk an operation outputs is sorted and consolidated, and a chunk an
//! operation leaves whole is put back as the original, so it stays pooled.
//!
//! For variable-length records, `merge`, `extract`, `advance` and `settle`'s combine and
//! split run on columnar bodies ([`super::column_ops`]: bytes copied, no decode per item).
//! For fixed-width records they run the algorithms of [`crate::records`] on a small window
//! of chunks materialized as [`Records`] (free for rows; one decode, a copy, for a sealed,
//! columnar body; measured faster than the columnar algorithms for `u64` records): merge
//! reads the head chunks of its inputs, one per input at a time (disjoint heads pass through
//! without a decode), until one full output chunk is out, and puts partly read heads back
//! as views; extract takes the head chunk of its input; advance the (burst-sized)
//! input it is handed, withholding its last `(key, val)` group as views.
//! `settle` packs chunks to the grading invariant (below) and seals each committed chunk
//! (`seal`) into its columnar body ([`Layout`]; a chunk a columnar operation built already is
//! one): into the pool when its arrangement's policy
//! says so (the commit point where chunks enter the pool), else packed on the heap, so a
//! resident trace takes the columnar body's bytes, not rows'. Merge outputs get depth = deepest input + 1 (batcher merges keep depth 0), so older
//! data is evicted first; each merge step is counted per level ([`crate::merge_times`]).
//!
//! # Chunk size: bytes, not records
//! A chunk is cut at [`TARGET_BYTES`] (256 KiB) of encoded body, so records of any width make
//! chunks that fit a pool slot class and page: merge's output ([`Filler`]), `advance`
//! ([`Advancer`]), `settle`'s packing, the batcher's [`crate::RunChunker`] and the reduce
//! tactic's output all cut *before* the record that would take a chunk past it (see
//! [`crate::records`]). A chunk is larger only when it is one record larger on its own; over
//! the largest slot class (8 MiB) that record goes to the pool as an Oversize chunk (heap,
//! counted in `oversize_chunks` and `oversize_bytes`).
//!
//! Grading is by bytes: every chunk of a settled sequence holds at most `TARGET_BYTES` (or is
//! one record), and any two neighbours hold more than `TARGET_BYTES` together (`pack_bytes`,
//! differential's `pack` with bytes for lengths). Differential's harness never reads
//! `Chunk::TARGET` itself (only its `pack` and `is_graded` helpers do), so `TARGET` is a record
//! count kept consistent with the bytes: `TARGET_BYTES` over the fewest bytes a record can
//! take. For fixed-width records that is exactly the records per chunk (8192 for
//! `(u64, u64, u64, i64)`), byte grading and differential's record grading (`is_graded`)
//! coincide, and no record is measured: the cut is that count. For variable-length records it
//! bounds the records of a chunk (`len <= TARGET`), and the grading that holds is by bytes.

use std::collections::VecDeque;
use std::rc::Rc;

use differential_dataflow::consolidation::Consolidate;
use differential_dataflow::difference::Semigroup;
use differential_dataflow::lattice::Lattice;
use differential_dataflow::trace::chunk::Chunk;
use timely::container::{PushInto, SizableContainer};
use timely::progress::frontier::AntichainRef;
use timely::progress::{Antichain, Timestamp};
use timely::Accountable;

use super::body::{leftover, ChunkBody, LookupBody, PagedChunk, Store};
use super::column_ops;
use super::layout::Layout;
use crate::data::PagedData;
use crate::pager::{self, Pager};
use crate::records::{
    fitting_prefix, fixed_update_bytes, merge_into, min_update_bytes, records_per, update_bytes,
    Advancer, Filler, Records, Update, TARGET_BYTES,
};

/// In batcher chains, only the chunks from this position on page (the first ones stay
/// resident): chains shorter than this are consumed by the batcher's next merge.
pub(crate) const MIN_PAGED_CHAIN: usize = 4;

/// `Chunk::TARGET` for records of these types: [`TARGET_BYTES`] over the fewest bytes a record
/// can take (see the module docs); 8192 for `(u64, u64, u64, i64)`, as upstream's `VecChunk`'s.
const fn target_records<K, V, T, R>() -> usize
where
    K: PagedData,
    V: PagedData,
    T: PagedData,
    R: PagedData,
{
    records_per(TARGET_BYTES, min_update_bytes::<K, V, T, R>())
}

/// The encoded bytes of `chunk`'s body: arithmetic for fixed-width records and pooled bodies,
/// measured once (and remembered) for resident variable-length ones.
pub(crate) fn chunk_bytes<K, V, T, R>(chunk: &PagedChunk<K, V, T, R>) -> usize
where
    K: PagedData,
    V: PagedData,
    T: PagedData,
    R: PagedData,
{
    if let Some(w) = fixed_update_bytes::<K, V, T, R>() {
        return chunk.len_records() * w;
    }
    match &chunk.0.body {
        ChunkBody::Rows(records) => records.bytes(),
        ChunkBody::Columnar { encoded, .. } => *encoded,
    }
}

/// Remembers that resident `chunk` now takes `bytes` (after an append that forgot them).
fn note_bytes<K, V, T, R>(chunk: &PagedChunk<K, V, T, R>, bytes: usize)
where
    K: PagedData,
    V: PagedData,
    T: PagedData,
    R: PagedData,
{
    if let ChunkBody::Rows(records) = &chunk.0.body {
        records.note_bytes(bytes);
    }
}

impl<K: 'static, V: 'static, T: 'static, R: 'static> Accountable for PagedChunk<K, V, T, R>
where
    K: PagedData,
    V: PagedData,
    T: PagedData,
    R: PagedData,
{
    fn record_count(&self) -> i64 {
        self.len_records() as i64
    }
}

impl<K, V, T, R> SizableContainer for PagedChunk<K, V, T, R>
where
    K: PagedData,
    V: PagedData,
    T: PagedData,
    R: PagedData,
{
    fn at_capacity(&self) -> bool {
        chunk_bytes(self) + min_update_bytes::<K, V, T, R>() > TARGET_BYTES
    }
    fn ensure_capacity(&mut self, _stash: &mut Option<Self>) {
        let Some(w) = fixed_update_bytes::<K, V, T, R>() else {
            return;
        };
        let target = records_per(TARGET_BYTES, w);
        let vec = self.building();
        if vec.capacity() < target {
            vec.reserve_exact(target - vec.len());
        }
    }
}

impl<K, V, T, R> Consolidate for PagedChunk<K, V, T, R>
where
    K: PagedData,
    V: PagedData,
    T: PagedData,
    R: PagedData + Semigroup,
{
    fn len(&self) -> usize {
        self.len_records()
    }
    fn clear(&mut self) {
        *self = PagedChunk::resident(Records::default(), 0, self.0.pager.clone());
    }
    fn consolidate_into(&mut self, target: &mut Self) {
        self.building().consolidate_into(target.building());
    }
}

impl<K, V, T, R> PushInto<((K, V), T, R)> for PagedChunk<K, V, T, R>
where
    K: PagedData,
    V: PagedData,
    T: PagedData,
    R: PagedData,
{
    fn push_into(&mut self, item: ((K, V), T, R)) {
        if fixed_update_bytes::<K, V, T, R>().is_some() {
            self.building().push(item);
            return;
        }
        // Keep the bytes known, so `at_capacity` stays constant-time while the chunk fills.
        let bytes = chunk_bytes(self) + update_bytes(&item);
        self.building().push(item);
        note_bytes(self, bytes);
    }
}

impl<K, V, T, R> Chunk for PagedChunk<K, V, T, R>
where
    K: PagedData,
    V: PagedData,
    T: PagedData + Lattice + Timestamp,
    R: PagedData + Semigroup,
{
    type Time = T;

    const TARGET: usize = target_records::<K, V, T, R>();

    fn len(&self) -> usize {
        self.len_records()
    }

    fn merge(in1: &mut VecDeque<Self>, in2: &mut VecDeque<Self>, out: &mut VecDeque<Self>) {
        // Disjoint heads need no decode: the lesser passes through whole (pooled or not).
        {
            let (a, b) = (
                in1.front().expect("non-empty"),
                in2.front().expect("non-empty"),
            );
            let ((a_first, a_last), (b_first, b_last)) = (a.fences(), b.fences());
            if fence_below(a_last, b_first) {
                out.push_back(in1.pop_front().expect("non-empty"));
                return;
            }
            if fence_below(b_last, a_first) {
                out.push_back(in2.pop_front().expect("non-empty"));
                return;
            }
        }
        // Merge head chunks (materialized one per input at a time) until one full output
        // chunk is out, or an input runs dry; push the partly read heads back as views.
        let started = std::time::Instant::now();
        let (mut a, mut b) = (
            in1.pop_front().expect("non-empty"),
            in2.pop_front().expect("non-empty"),
        );
        let pager = a.pager().or(b.pager()).cloned();
        let depth = if pager::in_batcher() {
            0
        } else {
            a.depth().max(b.depth()).saturating_add(1)
        };
        if column_ops::columnar_ops::<K, V, T, R>() {
            in1.push_front(a);
            in2.push_front(b);
            let records = column_ops::merge(in1, in2, out, depth, pager);
            crate::merge_times::record_merge(depth, started.elapsed(), records);
            return;
        }
        let mut records = 0;
        let mut output = Filler::new(TARGET_BYTES, |vec: Vec<Update<K, V, T, R>>| {
            records += vec.len();
            out.push_back(PagedChunk::resident(
                Records::from_vec(vec),
                depth,
                pager.clone(),
            ));
        });
        let (mut ra, mut rb) = (a.materialize(), b.materialize());
        let (mut pa, mut pb) = (0, 0);
        loop {
            merge_into(
                ra.as_slice(),
                &mut pa,
                rb.as_slice(),
                &mut pb,
                &mut output,
                1,
            );
            if output.stopped(1) {
                break;
            }
            if pa == ra.len() {
                let Some(next) = in1.pop_front() else { break };
                (ra, pa) = (next.materialize(), 0);
                a = next;
            }
            if pb == rb.len() {
                let Some(next) = in2.pop_front() else { break };
                (rb, pb) = (next.materialize(), 0);
                b = next;
            }
        }
        output.finish();
        if pa < ra.len() {
            in1.push_front(leftover(&a, &ra, pa));
        }
        if pb < rb.len() {
            in2.push_front(leftover(&b, &rb, pb));
        }
        crate::merge_times::record_merge(depth, started.elapsed(), records);
    }

    fn extract(
        input: &mut VecDeque<Self>,
        frontier: AntichainRef<T>,
        residual: &mut Antichain<T>,
        keep: &mut VecDeque<Self>,
        ship: &mut VecDeque<Self>,
    ) {
        // One chunk per call. A chunk wholly kept or wholly shipped goes as itself (a pooled
        // one stays pooled); a mixed one is split in two resident pieces.
        let Some(head) = input.pop_front() else {
            return;
        };
        if column_ops::columnar_ops::<K, V, T, R>() {
            column_ops::extract(head, frontier, residual, keep, ship);
            return;
        }
        let body = head.materialize();
        let records = body.as_slice();
        let mut kept = 0;
        for update in records {
            if frontier.less_equal(&update.1) {
                residual.insert_ref(&update.1);
                kept += 1;
            }
        }
        if kept == records.len() {
            keep.push_back(head);
        } else if kept == 0 {
            ship.push_back(head);
        } else {
            let (mut k, mut s) = (
                Vec::with_capacity(kept),
                Vec::with_capacity(records.len() - kept),
            );
            for update in records {
                if frontier.less_equal(&update.1) {
                    k.push(update.clone());
                } else {
                    s.push(update.clone());
                }
            }
            let piece = |vec| {
                PagedChunk::resident(Records::from_vec(vec), head.depth(), head.pager().cloned())
            };
            keep.push_back(piece(k));
            ship.push_back(piece(s));
        }
    }

    fn advance(
        input: &mut VecDeque<Self>,
        frontier: AntichainRef<T>,
        done: bool,
        out: &mut VecDeque<Self>,
    ) {
        // `advance` is handed one merge step's output plus its own withheld carry:
        // materializing it is bounded, and free for the resident merge outputs it mostly is.
        if column_ops::columnar_ops::<K, V, T, R>() {
            column_ops::advance(input, frontier, done, out);
            return;
        }
        if input.is_empty() {
            return;
        }
        let depth = input.iter().map(|c| c.depth()).max().unwrap_or(0);
        let pager = input.iter().find_map(|c| c.pager().cloned());
        let chunks: Vec<(Self, Records<K, V, T, R>)> = input
            .drain(..)
            .map(|c| {
                let body = c.materialize();
                (c, body)
            })
            .collect();
        // Unless `done`, withhold the last `(key, val)` group (it may go on in the next
        // call): it starts at position `cut.1` of chunk `cut.0`.
        let mut cut = (chunks.len(), 0);
        if !done {
            let last = &chunks[chunks.len() - 1].1.as_slice();
            let last_kv = &last[last.len() - 1].0;
            for (i, (_, body)) in chunks.iter().enumerate().rev() {
                let at = body.as_slice().partition_point(|u| &u.0 < last_kv);
                cut = (i, at);
                if at > 0 {
                    break;
                }
            }
        }
        let mut emit = |vec: Vec<Update<K, V, T, R>>| {
            out.push_back(PagedChunk::resident(
                Records::from_vec(vec),
                depth,
                pager.clone(),
            ));
        };
        if cut != (0, 0) {
            let mut advancer = Advancer::new(frontier, TARGET_BYTES);
            for (i, (_, body)) in chunks.iter().enumerate().take(cut.0 + 1) {
                let records = body.as_slice();
                let end = if i == cut.0 { cut.1 } else { records.len() };
                advancer.push(&records[..end], &mut emit);
            }
            advancer.finish(&mut emit);
        }
        if cut.0 < chunks.len() {
            let (chunk, body) = &chunks[cut.0];
            input.push_back(leftover(chunk, body, cut.1));
            input.extend(chunks[cut.0 + 1..].iter().map(|(c, _)| c.clone()));
        }
    }

    fn settle(input: &mut VecDeque<Self>, done: bool, out: &mut VecDeque<Self>) {
        fold_small_tail(input);
        let scope_pager = pager::batcher_pager();
        let keep_chain_heads = pager::keep_chain_heads();
        let before = out.len();
        // Position in `out` of the next chunk sealed: in the batcher, the head of a chain stays
        // resident (short chains are consumed by the next merge; paging them is wasted work).
        let mut position = before;
        pack_bytes(
            input,
            done,
            out,
            |run: Vec<Self>| {
                if column_ops::columnar_ops::<K, V, T, R>() {
                    return column_ops::combine(run);
                }
                let depth = run.iter().map(|c| c.depth()).max().unwrap_or(0);
                let pager = run.iter().find_map(|c| c.pager().cloned());
                let mut vec = Vec::with_capacity(run.iter().map(|c| c.len_records()).sum());
                for chunk in &run {
                    vec.extend_from_slice(chunk.materialize().as_slice());
                }
                let bytes = run.iter().map(chunk_bytes).sum();
                let chunk = PagedChunk::resident(Records::from_vec(vec), depth, pager);
                note_bytes(&chunk, bytes);
                chunk
            },
            |chunk: Self, n: usize| {
                if column_ops::columnar_ops::<K, V, T, R>() {
                    return column_ops::split(chunk, n);
                }
                let body = chunk.materialize();
                let head = Records::from_vec(body.as_slice()[..n].to_vec());
                let part = |body| PagedChunk::resident(body, chunk.depth(), chunk.pager().cloned());
                (part(head), part(body.suffix(n)))
            },
            |chunk: Self| {
                let may_page = !keep_chain_heads || position + 1 >= MIN_PAGED_CHAIN;
                position += 1;
                seal(chunk, scope_pager.as_ref(), may_page)
            },
        );
        // Link each newly sealed chunk to its predecessor in the sequence, for prefetch.
        for i in before.max(1)..out.len() {
            let _ = out[i - 1].0.next.set(Rc::downgrade(&out[i].0));
        }
    }
}

/// Whether fence `a` is surely below fence `b`: false when it would take a fence val that is
/// not kept (see [`PagedChunk::fences`]); then the merge reads the chunks, which is correct
/// either way.
#[allow(clippy::type_complexity)]
fn fence_below<K: Ord, V: Ord, T: Ord>(a: (&K, Option<&V>, &T), b: (&K, Option<&V>, &T)) -> bool {
    match a.0.cmp(b.0) {
        std::cmp::Ordering::Less => true,
        std::cmp::Ordering::Greater => false,
        std::cmp::Ordering::Equal => match (a.1, b.1) {
            (Some(va), Some(vb)) => (va, a.2) < (vb, b.2),
            _ => false,
        },
    }
}

/// differential's `pack` (`trace::chunk::pack`, the maximal packing `settle` delegates to),
/// with encoded bytes for lengths and [`TARGET_BYTES`] for `TARGET`: holds a carry of chunks
/// while they fit one chunk's bytes together, emits it (combined once) when it is full or the
/// next chunk does not fit, and peels chunks over `TARGET_BYTES` into pieces that fit (a
/// single record larger than that goes out on its own). So every emitted chunk holds at most
/// `TARGET_BYTES` or is one record, and any two neighbours hold more together. The closures
/// are `pack`'s: `combine` a run of at least two, `split(chunk, n)` into the first `n`
/// records and the rest, `seal` a committed chunk.
fn pack_bytes<K, V, T, R>(
    input: &mut VecDeque<PagedChunk<K, V, T, R>>,
    done: bool,
    out: &mut VecDeque<PagedChunk<K, V, T, R>>,
    mut combine: impl FnMut(Vec<PagedChunk<K, V, T, R>>) -> PagedChunk<K, V, T, R>,
    mut split: impl FnMut(
        PagedChunk<K, V, T, R>,
        usize,
    ) -> (PagedChunk<K, V, T, R>, PagedChunk<K, V, T, R>),
    mut seal: impl FnMut(PagedChunk<K, V, T, R>) -> PagedChunk<K, V, T, R>,
) where
    K: PagedData,
    V: PagedData,
    T: PagedData,
    R: PagedData,
{
    let full = |bytes: usize| bytes + min_update_bytes::<K, V, T, R>() > TARGET_BYTES;
    let (mut carry, mut carried) = (Vec::new(), 0);
    let mut fuse = |carry: &mut Vec<PagedChunk<K, V, T, R>>| {
        if carry.len() == 1 {
            carry.pop().expect("one chunk")
        } else {
            combine(std::mem::take(carry))
        }
    };
    while let Some(chunk) = input.pop_front() {
        let bytes = chunk_bytes(&chunk);
        if carried + bytes <= TARGET_BYTES {
            // Combines into one legal chunk; absorb it.
            carried += bytes;
            carry.push(chunk);
            if full(carried) {
                out.push_back(seal(fuse(&mut carry)));
                carried = 0;
            }
        } else if !carry.is_empty() {
            // The carry is maximal against this neighbour; emit it and absorb afresh.
            out.push_back(seal(fuse(&mut carry)));
            carried = 0;
            input.push_front(chunk);
        } else {
            // Peel pieces that fit off an over-sized chunk and absorb the remainder.
            let mut rest = chunk;
            loop {
                if chunk_bytes(&rest) <= TARGET_BYTES {
                    input.push_front(rest);
                    break;
                }
                let n = if column_ops::columnar_ops::<K, V, T, R>() {
                    column_ops::fitting_records(&rest, TARGET_BYTES)
                } else {
                    fitting_prefix(rest.materialize().as_slice(), TARGET_BYTES).0
                };
                if n >= rest.len_records() {
                    // One record over the target: a chunk on its own.
                    out.push_back(seal(rest));
                    break;
                }
                let (head, tail) = split(rest, n);
                out.push_back(seal(head));
                rest = tail;
            }
        }
    }
    if done {
        if !carry.is_empty() {
            out.push_back(seal(fuse(&mut carry)));
        }
    } else {
        // Hand the run back uncombined, to be combined once when it is emitted.
        for chunk in carry.into_iter().rev() {
            input.push_front(chunk);
        }
    }
}

/// Folds the last chunk of `input` into the one before while both are resident and fit one
/// chunk's bytes together: what `pack` would combine anyway, done as chunks arrive. A reduce's builder
/// pushes one chunk per key and settles after each push; without this, `pack` re-walks its
/// growing carry of tiny chunks on every push, quadratic in the records per output chunk.
fn fold_small_tail<K, V, T, R>(input: &mut VecDeque<PagedChunk<K, V, T, R>>)
where
    K: PagedData,
    V: PagedData,
    T: PagedData,
    R: PagedData,
{
    while input.len() >= 2 {
        let (a, b) = (&input[input.len() - 2], &input[input.len() - 1]);
        let foldable = a.rows().is_some()
            && b.rows().is_some()
            && a.depth() == b.depth()
            && a.pager().is_some() == b.pager().is_some();
        let bytes = chunk_bytes(a) + chunk_bytes(b);
        if !foldable || bytes > TARGET_BYTES {
            return;
        }
        let b = input.pop_back().expect("two chunks");
        let LookupBody::Records(records) = b.lookup_body() else {
            unreachable!("checked resident")
        };
        let a = input.back_mut().expect("one chunk");
        a.building().extend_from_slice(records);
        note_bytes(a, bytes);
    }
}

/// The commit hook: seals a chunk of rows into its columnar body ([`Layout`]), into the pool
/// when its arrangement's policy says so, else packed on the heap. Chunks that may not page
/// (the heads of batcher chains, consumed by the batcher's next merge) stay rows.
fn seal<K, V, T, R>(
    chunk: PagedChunk<K, V, T, R>,
    scope_pager: Option<&Rc<Pager>>,
    may_page: bool,
) -> PagedChunk<K, V, T, R>
where
    K: PagedData,
    V: PagedData,
    T: PagedData,
    R: PagedData,
{
    let pager = chunk.pager().or(scope_pager).cloned();
    let pager = pager.as_ref();
    let vec = match &chunk.0.body {
        ChunkBody::Rows(vec) => vec,
        ChunkBody::Columnar {
            store: Store::Heap(_),
            layout,
            ..
        } => {
            // Built packed by a columnar operation: into the pool as it is, if it pages.
            let page = may_page && pager.is_some_and(|pager| pager.should_page(layout.bytes()));
            return chunk.repaged(pager, page);
        }
        ChunkBody::Columnar { .. } => return chunk,
    };
    if !vec.is_empty() && may_page {
        let layout = Layout::measure(vec.as_slice());
        let page = pager.is_some_and(|pager| pager.should_page(layout.0.bytes()));
        return PagedChunk::columnar(vec.as_slice(), layout, chunk.depth(), pager, page);
    }
    if vec.is_view() || (chunk.pager().is_none() && pager.is_some()) {
        // A kept chunk owns its records (a view would keep the rest of its buffer alive),
        // and adopts the arrangement's pager, so later merges of it can page.
        let vec = vec.clone().compacted();
        return PagedChunk::resident(vec, chunk.depth(), pager.cloned());
    }
    chunk
}
