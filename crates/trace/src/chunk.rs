//! [`PagedChunk`]: a differential [`Chunk`] whose body is resident or pooled.
//!
//! Invariant: a chunk's records are sorted by `((key, val), time)` and consolidated, whether
//! they sit on the heap or in the pool, and no reference into pool memory outlives the pin
//! that protects it. Everything below serves one of the two.
//!
//! # Representation
//! A chunk is an `Rc` (clones are refcount bumps, as the trace merger expects) around:
//! - a body, a [`ChunkBody`]: either *resident*, [`Records`] (a sorted, consolidated
//!   `Vec<((K, V), T, R)>` shared by `Rc`, or a suffix view of one), or *pooled*, four
//!   columns (keys, vals, times, diffs; see [`crate::data`] for their encoding) written
//!   straight into a pool slot by `Pool::insert_with`;
//! - resident metadata: length, fence triples (first and last `(key, val, time)`), depth;
//! - the [`Pager`] of its arrangement, if paging is on.
//!
//! # Chunk operations
//! `merge`, `extract` and `advance` run the algorithms of [`crate::records`] on a small window
//! of chunks materialized as [`Records`] (free for resident chunks; one decode for pooled
//! ones): merge reads the head chunks of its inputs, one per input at a time (disjoint heads
//! pass through without a decode), until one full output chunk is out, and puts partly read
//! heads back as views; extract takes the head chunk of its input; advance the (burst-sized)
//! input it is handed, withholding its last `(key, val)` group as views. A chunk an operation
//! leaves whole is put back as the original, so it stays pooled.
//! `settle` packs chunks to the grading invariant with differential's `pack` and pages each
//! committed chunk (`seal`) when its arrangement's policy says so: the commit point where
//! chunks enter the pool. Merge outputs get depth = deepest input + 1 (batcher merges keep
//! depth 0), so older data is evicted first; each merge step is counted per level
//! ([`crate::merge_times`]).
//!
//! # Cursor reads are sound and bounded
//! When all four types are fixed-width ([`PagedData::WIDTH`] is `Some`), items are returned
//! **by value** (`Key<'a> = K` and so on), and the pin that keeps a pooled body resident is
//! owned by the *cursor* ([`PagedCursor`]), taken on the cursor's first read and released
//! when it drops. No reference into pool memory is ever handed out, so no item can outlive
//! its pin, and pinned bytes scale with live cursors (the batch cursor keeps one inner cursor
//! per batch), not with chunks ever read.
//!
//! Variable-length types (`String`, `Vec<u8>`) are returned **by reference**, and differential
//! lets such a reference live as long as the borrow of the chunk, longer than any cursor.
//! A pooled chunk of them therefore decodes its body once, on its first cursor read, into a
//! heap cache owned by the chunk, and reads from there until the chunk is dropped (when its
//! batch is merged away or the trace is compacted past it). No `unsafe`, no pool memory
//! borrowed; the cost is that this cache is bounded only by the pooled chunks read since their
//! batches were last merged: after a full scan of a static arrangement, all of it. Its size is
//! counted per arrangement ([`Paging::decoded_cache_bytes`]) and measured in
//! `doc/benchmarks.md`; bounded-memory reads of such arrangements are the vectored lookup's
//! job ([`crate::vectored`]). Merges, extracts and `settle` never fill the cache.

use std::cell::{Cell, OnceCell};
use std::collections::VecDeque;
use std::rc::{Rc, Weak};

use differential_dataflow::consolidation::Consolidate;
use differential_dataflow::difference::Semigroup;
use differential_dataflow::lattice::Lattice;
use differential_dataflow::trace::chunk::{pack, Chunk, NavigableChunk};
use differential_dataflow::trace::cursor::Cursor;
use differential_dataflow::trace::Navigable;
use spillway_pool::{ChunkHandle, PinGuard};
use timely::container::{PushInto, SizableContainer};
use timely::progress::frontier::AntichainRef;
use timely::progress::{Antichain, Timestamp};
use timely::Accountable;

use crate::data::{column_len, equal, less, read_column, write_column, PagedData};
use crate::pager::{self, Pager, Paging};
use crate::records::{gallop_index, merge_into, Advancer, Filler, Records, Update};

/// In batcher chains, only the chunks from this position on page (the first ones stay
/// resident): chains shorter than this are consumed by the batcher's next merge.
pub(crate) const MIN_PAGED_CHAIN: usize = 4;

/// Records per chunk: the grading target (8192, as upstream's `VecChunk`'s; 256 KiB for
/// `(u64, u64, u64, i64)` updates, exactly one pool slot class). Callers outside the crate
/// read it as `<PagedChunk<..> as Chunk>::TARGET`.
pub(crate) const TARGET: usize = 8192;

/// A sorted, consolidated run of updates `((key, val), time, diff)` whose body is resident or
/// in the pool: the chunk type of a [`crate::PagedSpine`] (see the crate docs for how to
/// arrange with it).
///
/// Clones share the body (a refcount bump). A chunk carries a *depth*, the hint the pool
/// evicts by: 0 for batcher output, one more than its deepest input for a merge output.
pub struct PagedChunk<K, V, T, R>(Rc<ChunkInner<K, V, T, R>>);

struct ChunkInner<K, V, T, R> {
    body: ChunkBody<K, V, T, R>,
    /// 0 for batcher output; merge outputs are one deeper than their deepest input.
    depth: u8,
    pager: Option<Rc<Pager>>,
    /// The chunk sealed right after this one in the same sequence, set once by `settle`; a
    /// cursor opening this chunk prefetches that one (a scan reads them in order).
    next: OnceCell<Weak<ChunkInner<K, V, T, R>>>,
    /// Where the last `seek_key` on this chunk landed. Differential's batch cursor opens a
    /// fresh chunk cursor for every seek, and callers seek in key order, so a fresh cursor's
    /// seek starts its gallop here when that is still below the key sought.
    seek_hint: Cell<usize>,
    /// A pooled body decoded for by-reference cursor reads (variable-length types only).
    decoded: OnceCell<Records<K, V, T, R>>,
}

/// A chunk body: resident, or pooled with its resident metadata.
enum ChunkBody<K, V, T, R> {
    /// On the heap (see [`crate::records`]).
    Resident(Records<K, V, T, R>),
    /// In a pool slot (or its extent), as four columns.
    Pooled {
        /// The pool's handle of the body; dropping it frees the chunk in the pool.
        handle: ChunkHandle,
        /// Records in the body.
        len: usize,
        /// Byte offsets of the key, val, time and diff columns, and the body's length.
        columns: [usize; 5],
        /// The first record's `(key, val, time)`, kept resident for seeks and merges.
        first: (K, V, T),
        /// The last record's `(key, val, time)`.
        last: (K, V, T),
    },
}

impl<K, V, T, R> Clone for PagedChunk<K, V, T, R> {
    fn clone(&self) -> Self {
        PagedChunk(Rc::clone(&self.0))
    }
}

impl<K, V, T, R> Default for PagedChunk<K, V, T, R> {
    fn default() -> Self {
        PagedChunk::resident(Records::default(), 0, None)
    }
}

impl<K, V, T, R> Drop for ChunkInner<K, V, T, R> {
    fn drop(&mut self) {
        if let (Some(_), Some(pager), ChunkBody::Pooled { columns, len, .. }) =
            (self.decoded.get(), &self.pager, &self.body)
        {
            pager.uncache(decoded_bytes::<K, V, T, R>(*len, columns[4]));
        }
    }
}

/// Heap bytes of a decoded body of `len` records whose encoding takes `body` bytes (an
/// estimate: the records plus their variable-length payloads, at most `body`).
fn decoded_bytes<K, V, T, R>(len: usize, body: usize) -> usize {
    len * size_of::<((K, V), T, R)>() + body
}

impl<K, V, T, R> PagedChunk<K, V, T, R> {
    /// The paging id and depth that name this chunk in read errors ([`unreadable`]).
    pub(crate) fn label(&self) -> (Option<u64>, u8) {
        (self.pager().map(|p| p.id()), self.0.depth)
    }

    /// Pins this chunk's pooled body (`handle`); a failed read panics with [`unreadable`].
    fn pin_body(&self, handle: &ChunkHandle) -> PinGuard {
        handle.pin().unwrap_or_else(|e| {
            let records = match &self.0.body {
                ChunkBody::Pooled { len, .. } => *len,
                ChunkBody::Resident(_) => 0,
            };
            unreadable(
                self.pager().map(|p| p.id()),
                self.0.depth,
                records,
                handle.len(),
                &e,
            )
        })
    }
}

impl<K, V, T, R> PagedChunk<K, V, T, R> {
    fn resident(vec: Records<K, V, T, R>, depth: u8, pager: Option<Rc<Pager>>) -> Self {
        PagedChunk(Rc::new(ChunkInner {
            body: ChunkBody::Resident(vec),
            depth,
            pager,
            next: OnceCell::new(),
            seek_hint: Cell::new(0),
            decoded: OnceCell::new(),
        }))
    }

    /// Asks the pool to fault in the chunk sealed after this one, if it is pooled.
    fn prefetch_next(&self) {
        let Some(next) = self.0.next.get().and_then(Weak::upgrade) else {
            return;
        };
        if let ChunkBody::Pooled { handle, .. } = &next.body {
            if next.decoded.get().is_none() {
                handle.prefetch();
            }
        }
    }

    /// An empty chunk that pages with `paging` once it is filled and sealed. Chunks made by
    /// the batcher find their arrangement's paging by themselves; a `reduce` into a
    /// [`crate::PagedSpine`] builds its output from the chunks its `push` closure fills, so
    /// that closure starts each one with `*buf = PagedChunk::with_paging(&paging)` to let the
    /// output trace page (with `Default`, its chunks stay resident).
    pub fn with_paging(paging: &Paging) -> Self {
        PagedChunk::resident(Records::default(), 0, paging.pager().cloned())
    }

    /// A resident chunk of `records` at depth 0 with no pager of its own: sealing it in a
    /// batcher or builder adopts its arrangement's. The caller guarantees that `records` are
    /// sorted by `((key, val), time)` and consolidated (no repeated `((key, val), time)`, no
    /// zero diff), as every differential chunk must be.
    pub fn from_records(records: Vec<((K, V), T, R)>) -> Self {
        PagedChunk::resident(Records::from_vec(records), 0, None)
    }

    /// The chunk's depth: 0 for batcher output, one more than its deepest input for a merge
    /// output. Reports count it as level [`crate::level_of`]`(depth)`.
    pub fn depth(&self) -> u8 {
        self.0.depth
    }

    /// Whether the body lives in the pool (resident in a slot or evicted to an extent), rather
    /// than on the heap.
    pub fn is_pooled(&self) -> bool {
        matches!(self.0.body, ChunkBody::Pooled { .. })
    }

    fn pager(&self) -> Option<&Rc<Pager>> {
        self.0.pager.as_ref()
    }
}

impl<K, V, T, R> PagedChunk<K, V, T, R>
where
    K: PagedData,
    V: PagedData,
    T: PagedData,
    R: PagedData,
{
    /// The body as [`Records`]: free when resident (or decoded), one decode when pooled.
    pub(crate) fn materialize(&self) -> Records<K, V, T, R> {
        match (&self.0.body, self.0.decoded.get()) {
            (ChunkBody::Resident(vec), _) | (_, Some(vec)) => vec.clone(),
            (
                ChunkBody::Pooled {
                    handle,
                    len,
                    columns,
                    ..
                },
                None,
            ) => decode(&self.pin_body(handle), *len, columns),
        }
    }

    /// The decoded body of a pooled chunk, for by-reference reads: decoded on first use and
    /// kept until the chunk drops (see the module docs).
    fn decoded(&self) -> &Records<K, V, T, R> {
        self.0.decoded.get_or_init(|| {
            let ChunkBody::Pooled {
                handle,
                len,
                columns,
                ..
            } = &self.0.body
            else {
                unreachable!("only pooled bodies are decoded")
            };
            self.prefetch_next();
            if let Some(pager) = self.pager() {
                pager.cache(decoded_bytes::<K, V, T, R>(*len, columns[4]));
            }
            decode(&self.pin_body(handle), *len, columns)
        })
    }

    /// The first and last `(key, val, time)`: resident metadata, no decode.
    #[allow(clippy::type_complexity)]
    pub(crate) fn fences(&self) -> ((&K, &V, &T), (&K, &V, &T)) {
        match &self.0.body {
            ChunkBody::Resident(vec) => {
                let s = vec.as_slice();
                let (f, l) = (&s[0], &s[s.len() - 1]);
                ((&f.0 .0, &f.0 .1, &f.1), (&l.0 .0, &l.0 .1, &l.1))
            }
            ChunkBody::Pooled { first, last, .. } => {
                ((&first.0, &first.1, &first.2), (&last.0, &last.1, &last.2))
            }
        }
    }

    /// How a lookup reads this chunk: resident records (the body, or its decoded cache), or
    /// the pooled columns to pin.
    pub(crate) fn lookup_body(&self) -> LookupBody<'_, K, V, T, R> {
        match (&self.0.body, self.0.decoded.get()) {
            (ChunkBody::Resident(vec), _) | (_, Some(vec)) => LookupBody::Records(vec.as_slice()),
            (
                ChunkBody::Pooled {
                    handle,
                    len,
                    columns,
                    ..
                },
                None,
            ) => LookupBody::Pooled {
                handle,
                columns: Columns {
                    len: *len,
                    offsets: *columns,
                },
                pool: self.pager().expect("pooled chunks have a pager").pool(),
            },
        }
    }

    /// Writes a resident body into the pool (the caller decided it should page).
    fn page_out(records: &[Update<K, V, T, R>], depth: u8, pager: &Rc<Pager>) -> Self {
        let len = records.len();
        let columns = layout(records);
        let handle = pager
            .pool()
            .insert_with(columns[4], pager.hints(depth), |body| {
                let col = |c: usize| columns[c]..columns[c + 1];
                let (k, v, t, r) = (col(0), col(1), col(2), col(3));
                write_column(len, records.iter().map(|x| &x.0 .0), &mut body[k]);
                write_column(len, records.iter().map(|x| &x.0 .1), &mut body[v]);
                write_column(len, records.iter().map(|x| &x.1), &mut body[t]);
                write_column(len, records.iter().map(|x| &x.2), &mut body[r]);
            });
        let (f, l) = (&records[0], &records[len - 1]);
        PagedChunk(Rc::new(ChunkInner {
            body: ChunkBody::Pooled {
                handle,
                len,
                columns,
                first: (f.0 .0.clone(), f.0 .1.clone(), f.1.clone()),
                last: (l.0 .0.clone(), l.0 .1.clone(), l.1.clone()),
            },
            depth,
            pager: Some(Rc::clone(pager)),
            next: OnceCell::new(),
            seek_hint: Cell::new(0),
            decoded: OnceCell::new(),
        }))
    }

    /// The resident body, for the chunker's in-place building (copy-on-write if shared).
    fn building(&mut self) -> &mut Vec<Update<K, V, T, R>> {
        if Rc::get_mut(&mut self.0).is_none() || self.is_pooled() {
            let (vec, depth, pager) = (self.materialize(), self.0.depth, self.0.pager.clone());
            *self = PagedChunk::resident(vec, depth, pager);
        }
        match &mut Rc::get_mut(&mut self.0).expect("unique").body {
            ChunkBody::Resident(vec) => vec.make_mut(),
            ChunkBody::Pooled { .. } => unreachable!("materialized above"),
        }
    }
}

/// Column offsets of the pooled body of `records` (see [`ChunkBody::Pooled`]).
fn layout<K, V, T, R>(records: &[((K, V), T, R)]) -> [usize; 5]
where
    K: PagedData,
    V: PagedData,
    T: PagedData,
    R: PagedData,
{
    let vals = column_len(records.iter().map(|x| &x.0 .0));
    let times = vals + column_len(records.iter().map(|x| &x.0 .1));
    let diffs = times + column_len(records.iter().map(|x| &x.1));
    let end = diffs + column_len(records.iter().map(|x| &x.2));
    [0, vals, times, diffs, end]
}

/// A chunk as a lookup reads it (see [`PagedChunk::lookup_body`]).
pub(crate) enum LookupBody<'c, K, V, T, R> {
    Records(&'c [((K, V), T, R)]),
    Pooled {
        handle: &'c ChunkHandle,
        columns: Columns,
        pool: &'c spillway_pool::Pool,
    },
}

/// The layout of a pooled body: `len` records in four columns at `offsets`.
#[derive(Clone, Copy)]
pub(crate) struct Columns {
    pub len: usize,
    pub offsets: [usize; 5],
}

impl Columns {
    /// Column `c` (0 keys, 1 vals, 2 times, 3 diffs) of `body`.
    pub fn column<'b>(&self, body: &'b [u8], c: usize) -> &'b [u8] {
        &body[self.offsets[c]..self.offsets[c + 1]]
    }
}

/// Decodes a pooled body of `len` records laid out at `columns`.
fn decode<K, V, T, R>(body: &[u8], len: usize, columns: &[usize; 5]) -> Records<K, V, T, R>
where
    K: PagedData,
    V: PagedData,
    T: PagedData,
    R: PagedData,
{
    let col = |c: usize| &body[columns[c]..columns[c + 1]];
    let (k, v, t, r) = (col(0), col(1), col(2), col(3));
    let mut vec = Vec::with_capacity(len);
    let widths = (K::WIDTH, V::WIDTH, T::WIDTH, R::WIDTH);
    if let (Some(wk @ 1..), Some(wv @ 1..), Some(wt @ 1..), Some(wr @ 1..)) = widths {
        // Fixed, non-zero widths: one pass over the four columns in step.
        let rows = k.chunks_exact(wk).zip(v.chunks_exact(wv));
        let rows = rows.zip(t.chunks_exact(wt)).zip(r.chunks_exact(wr));
        vec.extend(
            rows.map(|(((k, v), t), r)| ((K::decode(k), V::decode(v)), T::decode(t), R::decode(r))),
        );
    } else {
        vec.extend((0..len).map(|i| {
            (
                (read_column(k, len, i), read_column(v, len, i)),
                read_column(t, len, i),
                read_column(r, len, i),
            )
        }));
    }
    debug_assert_eq!(vec.len(), len);
    Records::from_vec(vec)
}

/// The panic of a pooled body that cannot be read back (the pool already retried the read):
/// a loud error naming the arrangement's paging, the chunk and the extent, never wrong data.
pub(crate) fn unreadable(
    paging: Option<u64>,
    depth: u8,
    records: usize,
    bytes: usize,
    error: &spillway_pool::PoolError,
) -> ! {
    let paging = paging.map_or_else(|| "no paging".to_string(), |id| format!("paging #{id}"));
    panic!(
        "spillway: cannot read a paged chunk back ({paging}, depth {depth}, {records} records, \
         {bytes} bytes): {error}; the extent store failed after retries (see the \
         io_errors/checksum_failures metrics); no result was produced from it"
    )
}

/// What is left of `chunk` (whose body is `body`) from position `from` on: the chunk itself
/// when nothing was consumed (so a pooled chunk stays pooled), else a resident suffix view.
fn leftover<K, V, T, R>(
    chunk: &PagedChunk<K, V, T, R>,
    body: &Records<K, V, T, R>,
    from: usize,
) -> PagedChunk<K, V, T, R> {
    if from == 0 {
        chunk.clone()
    } else {
        PagedChunk::resident(body.suffix(from), chunk.depth(), chunk.pager().cloned())
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

impl<K, V, T, R> PagedChunk<K, V, T, R> {
    fn len_records(&self) -> usize {
        match &self.0.body {
            ChunkBody::Resident(vec) => vec.as_slice().len(),
            ChunkBody::Pooled { len, .. } => *len,
        }
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
        self.len_records() >= TARGET
    }
    fn ensure_capacity(&mut self, _stash: &mut Option<Self>) {
        let vec = self.building();
        if vec.capacity() < TARGET {
            vec.reserve_exact(TARGET - vec.len());
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
        self.building().push(item);
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

    const TARGET: usize = TARGET;

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
            if a_last < b_first {
                out.push_back(in1.pop_front().expect("non-empty"));
                return;
            }
            if b_last < a_first {
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
        let mut records = 0;
        let mut output = Filler::new(TARGET, |vec: Vec<Update<K, V, T, R>>| {
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
            let mut advancer = Advancer::new(frontier, TARGET);
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
        pack(
            input,
            done,
            out,
            |run: Vec<Self>| {
                let depth = run.iter().map(|c| c.depth()).max().unwrap_or(0);
                let pager = run.iter().find_map(|c| c.pager().cloned());
                let mut vec = Vec::with_capacity(run.iter().map(|c| c.len_records()).sum());
                for chunk in &run {
                    vec.extend_from_slice(chunk.materialize().as_slice());
                }
                PagedChunk::resident(Records::from_vec(vec), depth, pager)
            },
            |chunk: Self, n: usize| {
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

/// Folds the last chunk of `input` into the one before while both are resident and fit one
/// chunk together: what `pack` would combine anyway, done as chunks arrive. A reduce's builder
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
        let foldable = !a.is_pooled()
            && !b.is_pooled()
            && a.len_records() + b.len_records() <= TARGET
            && a.depth() == b.depth()
            && a.pager().is_some() == b.pager().is_some();
        if !foldable {
            return;
        }
        let b = input.pop_back().expect("two chunks");
        let LookupBody::Records(records) = b.lookup_body() else {
            unreachable!("checked resident")
        };
        input
            .back_mut()
            .expect("one chunk")
            .building()
            .extend_from_slice(records);
    }
}

/// The commit hook: pages a resident chunk when its arrangement's policy says so.
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
    let ChunkBody::Resident(vec) = &chunk.0.body else {
        return chunk;
    };
    let pager = chunk.pager().or(scope_pager);
    let page = pager.filter(|pager| {
        !vec.is_empty() && may_page && pager.should_page(layout(vec.as_slice())[4])
    });
    if let Some(pager) = page {
        return PagedChunk::page_out(vec.as_slice(), chunk.depth(), pager);
    }
    if vec.is_view() || (chunk.pager().is_none() && pager.is_some()) {
        // A kept chunk owns its records (a view would keep the rest of its buffer alive),
        // and adopts the arrangement's pager, so later merges of it can page.
        let vec = vec.clone().compacted();
        return PagedChunk::resident(vec, chunk.depth(), pager.cloned());
    }
    chunk
}

/// A cursor's cached group end that is not known yet.
const UNKNOWN: usize = usize::MAX;

/// A cursor over one [`PagedChunk`] (its `Navigable::Cursor`; differential's batch cursor
/// opens one per chunk). Returns fixed-width items by value, pinning a pooled body on its
/// first read (not at creation: differential opens cursors it may never read) and holding the
/// pin for as long as it lives; returns variable-length items by reference from the chunk's
/// decoded body, which it decodes on first read and keeps with the chunk.
pub struct PagedCursor<K, V, T, R> {
    key_pos: usize,
    val_pos: usize,
    /// The end of the current key's records and of the current `(key, val)`'s records, found
    /// on first need and forgotten when the position moves ([`UNKNOWN`] until then), so a scan
    /// compares each record's key and val once.
    key_end: Cell<usize>,
    val_end: Cell<usize>,
    /// The pinned body of a pooled chunk read by value, taken on first read (never set for
    /// resident chunks, which are read in place, nor for by-reference reads).
    pin: OnceCell<PinGuard>,
    _marker: std::marker::PhantomData<(K, V, T, R)>,
}

impl<K, V, T, R> PagedCursor<K, V, T, R>
where
    K: PagedData,
    V: PagedData,
    T: PagedData,
    R: PagedData,
{
    /// Whether pooled bodies are read in place, by value.
    const BY_VALUE: bool =
        K::WIDTH.is_some() && V::WIDTH.is_some() && T::WIDTH.is_some() && R::WIDTH.is_some();

    #[inline(always)]
    fn n(&self, s: &PagedChunk<K, V, T, R>) -> usize {
        s.len_records()
    }

    /// The end of the current key's records (see [`PagedCursor::key_end`]).
    #[inline]
    fn key_end(&self, s: &PagedChunk<K, V, T, R>) -> usize {
        let mut end = self.key_end.get();
        if end == UNKNOWN {
            end = self.key_pos;
            if end < self.n(s) {
                let key = self.key_at(s, self.key_pos);
                end += 1;
                while end < self.n(s) && equal::<K>(self.key_at(s, end), key) {
                    end += 1;
                }
            }
            self.key_end.set(end);
        }
        end
    }

    /// The end of the current `(key, val)`'s records (the current key's end if the val is
    /// not valid).
    #[inline]
    fn val_end(&self, s: &PagedChunk<K, V, T, R>) -> usize {
        let mut end = self.val_end.get();
        if end == UNKNOWN {
            let key_end = self.key_end(s);
            end = self.val_pos;
            if end < key_end {
                let val = self.val_at(s, self.val_pos);
                end += 1;
                while end < key_end && equal::<V>(self.val_at(s, end), val) {
                    end += 1;
                }
            }
            self.val_end.set(end);
        }
        end
    }

    /// Moves to the key at `key_pos`, its first val.
    #[inline]
    fn at_key(&mut self, key_pos: usize) {
        if key_pos != self.key_pos {
            self.key_pos = key_pos;
            self.key_end.set(UNKNOWN);
        }
        self.at_val(key_pos);
    }

    /// Moves to the val at `val_pos` (within the current key).
    #[inline]
    fn at_val(&mut self, val_pos: usize) {
        if val_pos != self.val_pos {
            self.val_pos = val_pos;
            self.val_end.set(UNKNOWN);
        }
    }

    /// Item `i` of column `col` (0 keys, 1 vals, 2 times, 3 diffs); `project` picks the same
    /// field out of a resident record.
    #[inline(always)]
    fn field<'a, X: PagedData>(
        &self,
        s: &'a PagedChunk<K, V, T, R>,
        col: usize,
        i: usize,
        project: impl Fn(&'a ((K, V), T, R)) -> &'a X,
    ) -> X::Item<'a> {
        match &s.0.body {
            ChunkBody::Resident(vec) => project(&vec.as_slice()[i]).item(),
            ChunkBody::Pooled {
                handle, columns, ..
            } => match X::WIDTH {
                Some(width) if Self::BY_VALUE => {
                    let pin = self.pin.get_or_init(|| {
                        // A scan reads chunks in order: fault the next one in meanwhile.
                        s.prefetch_next();
                        s.pin_body(handle)
                    });
                    let start = columns[col] + i * width;
                    X::read_item(&pin[start..start + width]).expect("fixed-width")
                }
                _ => project(&s.decoded().as_slice()[i]).item(),
            },
        }
    }

    #[inline(always)]
    fn key_at<'a>(&self, s: &'a PagedChunk<K, V, T, R>, i: usize) -> K::Item<'a> {
        self.field(s, 0, i, |r| &r.0 .0)
    }

    #[inline(always)]
    fn val_at<'a>(&self, s: &'a PagedChunk<K, V, T, R>, i: usize) -> V::Item<'a> {
        self.field(s, 1, i, |r| &r.0 .1)
    }

    /// The first index at or after `from` where `less(i)` is false (`less` must be true then
    /// false).
    fn gallop(
        &self,
        s: &PagedChunk<K, V, T, R>,
        from: usize,
        less: impl Fn(usize) -> bool,
    ) -> usize {
        gallop_index(from, self.n(s), less)
    }
}

impl<K, V, T, R> Cursor for PagedCursor<K, V, T, R>
where
    K: PagedData,
    V: PagedData,
    T: PagedData + Lattice + Timestamp,
    R: PagedData + Semigroup,
{
    type Storage = PagedChunk<K, V, T, R>;

    type KeyContainer = K::Container;
    type Key<'a> = K::Item<'a>;
    type ValContainer = V::Container;
    type Val<'a> = V::Item<'a>;
    type ValOwn = V;
    type TimeContainer = T::Container;
    type TimeGat<'a> = T::Item<'a>;
    type Time = T;
    type DiffContainer = R::Container;
    type DiffGat<'a> = R::Item<'a>;
    type Diff = R;

    fn key_valid(&self, s: &Self::Storage) -> bool {
        self.key_pos < self.n(s)
    }
    fn val_valid(&self, s: &Self::Storage) -> bool {
        self.val_pos < self.key_end(s)
    }
    fn key<'a>(&self, s: &'a Self::Storage) -> K::Item<'a> {
        self.key_at(s, self.key_pos)
    }
    fn val<'a>(&self, s: &'a Self::Storage) -> V::Item<'a> {
        self.val_at(s, self.val_pos)
    }
    fn get_key<'a>(&self, s: &'a Self::Storage) -> Option<K::Item<'a>> {
        self.key_valid(s).then(|| self.key(s))
    }
    fn get_val<'a>(&self, s: &'a Self::Storage) -> Option<V::Item<'a>> {
        self.val_valid(s).then(|| self.val(s))
    }
    fn map_times<L: FnMut(T::Item<'_>, R::Item<'_>)>(&mut self, s: &Self::Storage, mut logic: L) {
        for i in self.val_pos..self.val_end(s) {
            logic(self.field(s, 2, i, |r| &r.1), self.field(s, 3, i, |r| &r.2));
        }
    }
    fn step_key(&mut self, s: &Self::Storage) {
        if self.key_valid(s) {
            self.at_key(self.key_end(s));
        }
    }
    fn seek_key(&mut self, s: &Self::Storage, key: K::Item<'_>) {
        // Every record before the hint is below `key` if the hint's is; if the hint's is not
        // but the one before it is, the hint is the answer (another cursor of the same scan
        // in key order often sought this very key).
        let hint = s.0.seek_hint.get();
        let below = |i: usize| less::<K>(self.key_at(s, i), key);
        let from = if hint > self.key_pos && hint < self.n(s) {
            if below(hint) {
                hint
            } else if below(hint - 1) {
                self.at_key(hint);
                return;
            } else {
                self.key_pos
            }
        } else {
            self.key_pos
        };
        let at = self.gallop(s, from, below);
        s.0.seek_hint.set(at);
        self.at_key(at);
    }
    fn step_val(&mut self, s: &Self::Storage) {
        if self.val_valid(s) {
            self.at_val(self.val_end(s));
        }
    }
    fn seek_val(&mut self, s: &Self::Storage, val: V::Item<'_>) {
        if !self.key_valid(s) {
            return;
        }
        // Within the current key, vals are sorted.
        let key_end = self.key_end(s);
        let at = self.gallop(s, self.val_pos, |i| {
            i < key_end && less::<V>(self.val_at(s, i), val)
        });
        self.at_val(at.min(key_end));
    }
    fn rewind_keys(&mut self, _s: &Self::Storage) {
        self.at_key(0);
    }
    fn rewind_vals(&mut self, _s: &Self::Storage) {
        self.at_val(self.key_pos);
    }
}

impl<K, V, T, R> Navigable for PagedChunk<K, V, T, R>
where
    K: PagedData,
    V: PagedData,
    T: PagedData + Lattice + Timestamp,
    R: PagedData + Semigroup,
{
    type Cursor = PagedCursor<K, V, T, R>;

    fn cursor(&self) -> Self::Cursor {
        PagedCursor {
            key_pos: 0,
            val_pos: 0,
            key_end: Cell::new(UNKNOWN),
            val_end: Cell::new(UNKNOWN),
            pin: OnceCell::new(),
            _marker: std::marker::PhantomData,
        }
    }
}

impl<K, V, T, R> NavigableChunk for PagedChunk<K, V, T, R>
where
    K: PagedData,
    V: PagedData,
    T: PagedData + Lattice + Timestamp,
    R: PagedData + Semigroup,
{
    #[allow(clippy::type_complexity)]
    fn bounds(
        &self,
    ) -> (
        (K::Item<'_>, V::Item<'_>, T::Item<'_>),
        (K::Item<'_>, V::Item<'_>, T::Item<'_>),
    ) {
        let ((k0, v0, t0), (k1, v1, t1)) = self.fences();
        (
            (k0.item(), v0.item(), t0.item()),
            (k1.item(), v1.item(), t1.item()),
        )
    }
}
