//! The representation of a [`PagedChunk`]: its body, fences and metadata.
//!
//! Invariant: a chunk's records are sorted by `((key, val), time)` and consolidated, and its
//! fences (`first`, `last`) and `len` describe its body exactly, wherever the body sits. A
//! columnar body is never written after it is filled, and a pooled one is read only through
//! a pin ([`pin`]).
//!
//! A chunk is an `Rc` (clones are refcount bumps, as the trace merger expects) around:
//! - a body, a [`ChunkBody`]: either *rows*, [`Records`] (a sorted, consolidated
//!   `Vec<((K, V), T, R)>` shared by `Rc`, or a suffix view of one: what operations build and
//!   what a chunk is until it is sealed), or *columnar*, the body of [`Layout`] (keys once,
//!   then vals, times and diffs by column), written once when the chunk is sealed
//!   ([`super::ops`]'s `seal`) into a pool slot (*pooled*, when its arrangement pages it) or
//!   an exact-size heap buffer (*packed*, when it stays resident);
//! - resident metadata: length, fence triples (first and last `(key, val, time)`), depth;
//! - the [`Pager`] of its arrangement, if paging is on.
//!
//! - for by-reference cursor reads of a pooled body (variable-length types), its *stable
//!   bytes*: the encoded body copied once into a read-only file-backed mapping the chunk
//!   owns until it drops ([`StableBody`]; see [`super::cursor`]). A packed body needs none:
//!   its buffer lives as long as the chunk.
//!
//! Operations on fixed-width records read a body as [`Records`]
//! ([`PagedChunk::materialize`]: free for rows, one decode otherwise), those on
//! variable-length records read columnar bodies in place (`super::builder::Source`); lookups read it in place ([`PagedChunk::lookup_body`]); cursors read
//! columnar bodies in place (packed), from a pin (pooled, fixed-width) or from the stable
//! bytes (pooled, variable-length).

use std::cell::{Cell, OnceCell};
use std::rc::{Rc, Weak};

use spillway_pool::{ChunkHandle, PinGuard};

use super::layout::Layout;
use crate::data::PagedData;
use crate::pager::{Pager, Paging, StableBody};
use crate::records::{fixed_update_bytes, update_bytes, Records, Update};

/// A sorted, consolidated run of updates `((key, val), time, diff)` whose body is resident or
/// in the pool: the chunk type of a [`crate::PagedSpine`] (see the crate docs for how to
/// arrange with it).
///
/// Clones share the body (a refcount bump). A chunk carries a *depth*, the hint the pool
/// evicts by: 0 for batcher output, one more than its deepest input for a merge output.
pub struct PagedChunk<K, V, T, R>(pub(super) Rc<ChunkInner<K, V, T, R>>);

pub(super) struct ChunkInner<K, V, T, R> {
    pub(super) body: ChunkBody<K, V, T, R>,
    /// 0 for batcher output; merge outputs are one deeper than their deepest input.
    pub(super) depth: u8,
    pub(super) pager: Option<Rc<Pager>>,
    /// The chunk sealed right after this one in the same sequence, set once by `settle`; a
    /// cursor opening this chunk prefetches that one (a scan reads them in order).
    pub(super) next: OnceCell<Weak<ChunkInner<K, V, T, R>>>,
    /// Where the last `seek_key` on this chunk landed. Several cursors read a chunk in turn
    /// (a batch cursor opens a fresh chunk cursor each time it enters the chunk), and callers
    /// seek in key order, so a fresh cursor's seek starts its gallop here when that is still
    /// below the key sought.
    pub(super) seek_hint: Cell<usize>,
    /// A pooled body's stable bytes, for by-reference cursor reads (variable-length types
    /// only): stored on the first such read, kept until the chunk drops, released and faulted
    /// back as its pager decides (see [`super::cursor`]).
    pub(super) stable: OnceCell<Rc<StableBody>>,
}

/// A chunk body: rows, or columnar with its resident metadata.
pub(super) enum ChunkBody<K, V, T, R> {
    /// Rows on the heap (see [`crate::records`]): a chunk being built, or not yet sealed.
    Rows(Records<K, V, T, R>),
    /// A sealed body in the columnar form of [`Layout`], packed on the heap or pooled.
    Columnar {
        /// Where the body's bytes are.
        store: Store,
        /// Where its columns lie.
        layout: Layout,
        /// The bytes its records take encoded as rows ([`crate::records::update_bytes`]):
        /// what chunks are sized and graded by, whatever their form.
        encoded: usize,
        /// The first record's `(key, val, time)`, kept resident for seeks and merges; the val
        /// only when it encodes in at most [`FENCE_VAL_BYTES`] (else it is read from the
        /// body: [`PagedChunk::body_val`]).
        first: (K, Option<V>, T),
        /// The last record's `(key, val, time)`, likewise.
        last: (K, Option<V>, T),
    },
}

/// Encoded bytes above which a columnar chunk's fence val is not kept as resident metadata:
/// with 64 KiB values a 256 KiB chunk holds three or four records, and two owned fence vals
/// would keep half the data on the heap beside the pool. Fence keys and times are kept
/// whole; a missing fence val is read from the body, which only a merge of chunks whose
/// fence keys are equal, or a batch checking whether a `(key, val)` spans two chunks whose
/// fence vals are both missing, needs.
const FENCE_VAL_BYTES: usize = 256;

/// Whether every fence val of a `V` chunk is kept (fixed-width vals of at most
/// [`FENCE_VAL_BYTES`]): then reading one never reaches the body.
pub(super) const fn fence_vals_kept<V: PagedData>() -> bool {
    matches!(V::WIDTH, Some(w) if w <= FENCE_VAL_BYTES)
}

/// A fence val as kept: `Some` when it encodes in at most [`FENCE_VAL_BYTES`].
fn fence_val<V: PagedData>(v: &V) -> Option<V> {
    (v.encoded_len() <= FENCE_VAL_BYTES).then(|| v.clone())
}

/// A fence val from its encoding, as kept: decoded when it encodes in at most
/// [`FENCE_VAL_BYTES`].
pub(super) fn fence_val_of<V: PagedData>(bytes: &[u8]) -> Option<V> {
    (bytes.len() <= FENCE_VAL_BYTES).then(|| V::decode(bytes))
}

/// [`PagedChunk::prefetch`] of a chunk's inner.
fn prefetch<K, V, T, R>(chunk: &ChunkInner<K, V, T, R>) {
    if let ChunkBody::Columnar {
        store: Store::Pool(handle),
        ..
    } = &chunk.body
    {
        if chunk.stable.get().is_none() {
            handle.prefetch();
        }
    }
}

/// Where a columnar body's bytes are.
pub(super) enum Store {
    /// An exact-size heap buffer that lives as long as the chunk (*packed*).
    Heap(Box<[u8]>),
    /// A pool slot (or its extent); dropping the handle frees the chunk in the pool.
    Pool(ChunkHandle),
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
        if let (Some(stable), Some(pager)) = (self.stable.get(), &self.pager) {
            pager.forget(stable);
        }
    }
}

impl<K, V, T, R> PagedChunk<K, V, T, R> {
    /// The paging id and depth that name this chunk in read errors ([`unreadable`]).
    pub(crate) fn label(&self) -> (Option<u64>, u8) {
        (self.pager().map(|p| p.id()), self.0.depth)
    }

    /// Pins this chunk's pooled body (`handle`); a failed read panics with [`unreadable`].
    pub(super) fn pin_body(&self, handle: &ChunkHandle) -> PinGuard {
        handle.pin().unwrap_or_else(|e| {
            let records = self.len_records();
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
    pub(super) fn resident(vec: Records<K, V, T, R>, depth: u8, pager: Option<Rc<Pager>>) -> Self {
        PagedChunk(Rc::new(ChunkInner {
            body: ChunkBody::Rows(vec),
            depth,
            pager,
            next: OnceCell::new(),
            seek_hint: Cell::new(0),
            stable: OnceCell::new(),
        }))
    }

    /// A chunk of `body` (sealed: columnar) at `depth`, paging with `pager`.
    pub(super) fn sealed(body: ChunkBody<K, V, T, R>, depth: u8, pager: Option<Rc<Pager>>) -> Self {
        PagedChunk(Rc::new(ChunkInner {
            body,
            depth,
            pager,
            next: OnceCell::new(),
            seek_hint: Cell::new(0),
            stable: OnceCell::new(),
        }))
    }

    /// Asks the pool to fault in the chunk sealed after this one, if it is pooled.
    pub(super) fn prefetch_next(&self) {
        if let Some(next) = self.0.next.get().and_then(Weak::upgrade) {
            prefetch(&next);
        }
    }

    /// Asks the pool to fault this chunk in, if it is pooled (and evicted: else the pool
    /// ignores the hint) and not read from stable bytes.
    pub(crate) fn prefetch(&self) {
        prefetch(&self.0);
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

    /// A resident chunk of `records` (sorted and consolidated, as [`PagedChunk::from_records`]
    /// requires) at depth 0 that pages with `pager` when a builder seals it: how the paged
    /// reduce tactic builds its output chunks.
    pub(crate) fn from_records_paging(
        records: Vec<((K, V), T, R)>,
        pager: Option<Rc<Pager>>,
    ) -> Self {
        PagedChunk::resident(Records::from_vec(records), 0, pager)
    }

    /// The chunk's depth: 0 for batcher output, one more than its deepest input for a merge
    /// output. Reports count it as level [`crate::level_of`]`(depth)`.
    pub fn depth(&self) -> u8 {
        self.0.depth
    }

    /// Whether the body lives in the pool (resident in a slot or evicted to an extent), rather
    /// than on the heap.
    pub fn is_pooled(&self) -> bool {
        matches!(
            self.0.body,
            ChunkBody::Columnar {
                store: Store::Pool(_),
                ..
            }
        )
    }

    /// Bytes the body takes where it is held: its columnar body's length once sealed (packed
    /// on the heap or pooled), or its rows' (`len × size_of` of an update) before.
    pub fn body_bytes(&self) -> usize {
        match &self.0.body {
            ChunkBody::Rows(vec) => size_of_val(vec.as_slice()),
            ChunkBody::Columnar { layout, .. } => layout.bytes(),
        }
    }

    /// The body's records, if it is rows (not yet sealed into columns).
    pub(crate) fn rows(&self) -> Option<&[Update<K, V, T, R>]> {
        match &self.0.body {
            ChunkBody::Rows(vec) => Some(vec.as_slice()),
            ChunkBody::Columnar { .. } => None,
        }
    }

    pub(super) fn pager(&self) -> Option<&Rc<Pager>> {
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
    /// The body as [`Records`]: free for rows, one decode when columnar (from a pin when
    /// pooled, never from the stable bytes, whose released pages it would fault back
    /// uncounted).
    pub(crate) fn materialize(&self) -> Records<K, V, T, R> {
        match &self.0.body {
            ChunkBody::Rows(vec) => vec.clone(),
            ChunkBody::Columnar { store, layout, .. } => Records::from_vec(match store {
                Store::Heap(bytes) => layout.decode(bytes),
                Store::Pool(handle) => layout.decode(&self.pin_body(handle)),
            }),
        }
    }

    /// The stable bytes of a pooled body, for by-reference reads: stored from a pin on first
    /// use, and *opened* (counted resident; its pages may have been released) with the
    /// pager. A cursor calls this once, on its first read, holds the returned body while it
    /// lives (so the pager leaves it resident), and reads [`PagedChunk::stable_bytes`].
    pub(super) fn open_stable(&self) -> Rc<StableBody> {
        let pager = self.pager().expect("pooled chunks have a pager");
        let stable = self.0.stable.get_or_init(|| {
            let ChunkBody::Columnar {
                store: Store::Pool(handle),
                ..
            } = &self.0.body
            else {
                unreachable!("only pooled bodies are stored")
            };
            self.prefetch_next();
            pager.store(&self.pin_body(handle))
        });
        pager.open(stable);
        Rc::clone(stable)
    }

    /// The stable bytes of a pooled body opened before ([`PagedChunk::open_stable`]).
    #[inline(always)]
    pub(super) fn stable_bytes(&self) -> &[u8] {
        self.0.stable.get().expect("opened").bytes()
    }

    /// The first and last `(key, val, time)`: resident metadata, no decode. A val is `None`
    /// when it is too wide to keep beside the body ([`FENCE_VAL_BYTES`]; read it with
    /// [`PagedChunk::body_val`]).
    #[allow(clippy::type_complexity)]
    #[inline(always)]
    pub(crate) fn fences(&self) -> ((&K, Option<&V>, &T), (&K, Option<&V>, &T)) {
        match &self.0.body {
            ChunkBody::Rows(vec) => {
                let s = vec.as_slice();
                let (f, l) = (&s[0], &s[s.len() - 1]);
                (
                    (&f.0 .0, Some(&f.0 .1), &f.1),
                    (&l.0 .0, Some(&l.0 .1), &l.1),
                )
            }
            ChunkBody::Columnar { first, last, .. } => (
                (&first.0, first.1.as_ref(), &first.2),
                (&last.0, last.1.as_ref(), &last.2),
            ),
        }
    }

    /// Record `i`'s val, borrowed from the body for the chunk's lifetime: in place for rows
    /// and packed bodies, from the stable bytes for a pooled one (stored and opened with the
    /// pager as a cursor's read would be). For fence vals not kept as metadata.
    #[cold]
    #[inline(never)]
    pub(super) fn body_val(&self, i: usize) -> V::Item<'_> {
        match &self.0.body {
            ChunkBody::Rows(vec) => vec.as_slice()[i].0 .1.item(),
            ChunkBody::Columnar { store, layout, .. } => {
                let bytes: &[u8] = match store {
                    Store::Heap(bytes) => bytes,
                    Store::Pool(_) => {
                        drop(self.open_stable());
                        self.stable_bytes()
                    }
                };
                V::borrow(&bytes[layout.val::<V>(bytes, i)])
            }
        }
    }

    /// The val of the chunk's first record (`last` false) or last one (`last` true): its
    /// fence when kept, else read from the body (see [`PagedChunk::body_val`]).
    #[inline(always)]
    pub(crate) fn edge_val(&self, last: bool) -> V::Item<'_> {
        let ((_, first, _), (_, end, _)) = self.fences();
        match if last { end } else { first } {
            Some(v) => v.item(),
            // When every fence val is kept, the body is out of reach here: nothing but loads,
            // which the compiler drops where the caller reads only the keys.
            None if fence_vals_kept::<V>() => unreachable!("fixed-width fence vals are kept"),
            None => self.body_val(if last { self.len_records() - 1 } else { 0 }),
        }
    }

    /// How a lookup reads this chunk: rows, a packed body, or a pooled body to pin.
    pub(crate) fn lookup_body(&self) -> LookupBody<'_, K, V, T, R> {
        match &self.0.body {
            ChunkBody::Rows(vec) => LookupBody::Records(vec.as_slice()),
            ChunkBody::Columnar { store, layout, .. } => match store {
                Store::Heap(bytes) => LookupBody::Packed {
                    bytes,
                    layout: *layout,
                },
                Store::Pool(handle) => LookupBody::Pooled {
                    handle,
                    layout: *layout,
                    pool: self.pager().expect("pooled chunks have a pager").pool(),
                },
            },
        }
    }

    /// Seals non-empty rows `records` (which [`Layout::measure`] measured) into a columnar body: into the
    /// pool when `page`, else packed on the heap.
    pub(super) fn columnar(
        records: &[Update<K, V, T, R>],
        (layout, ends): (Layout, Vec<u32>),
        depth: u8,
        pager: Option<&Rc<Pager>>,
        page: bool,
    ) -> Self {
        let len = records.len();
        let store = match pager.filter(|_| page) {
            Some(pager) => Store::Pool(pager.pool().insert_with(
                layout.bytes(),
                pager.hints(depth),
                |body| layout.write(records, &ends, body),
            )),
            None => {
                let mut bytes = vec![0u8; layout.bytes()].into_boxed_slice();
                layout.write(records, &ends, &mut bytes);
                Store::Heap(bytes)
            }
        };
        let (f, l) = (&records[0], &records[len - 1]);
        PagedChunk(Rc::new(ChunkInner {
            body: ChunkBody::Columnar {
                store,
                layout,
                encoded: match fixed_update_bytes::<K, V, T, R>() {
                    Some(w) => len * w,
                    None => records.iter().map(update_bytes).sum(),
                },
                first: (f.0 .0.clone(), fence_val(&f.0 .1), f.1.clone()),
                last: (l.0 .0.clone(), fence_val(&l.0 .1), l.1.clone()),
            },
            depth,
            pager: pager.cloned(),
            next: OnceCell::new(),
            seek_hint: Cell::new(0),
            stable: OnceCell::new(),
        }))
    }

    /// This chunk with a columnar body: itself if it has one, else its rows (non-empty)
    /// sealed packed on the heap.
    pub(crate) fn packed(self) -> Self {
        let ChunkBody::Rows(vec) = &self.0.body else {
            return self;
        };
        let layout = Layout::measure(vec.as_slice());
        PagedChunk::columnar(vec.as_slice(), layout, self.depth(), self.pager(), false)
    }

    /// This packed chunk paging with `pager`: moved into the pool (one copy of its body)
    /// when `page`, else kept on the heap. A pooled chunk is returned as it is.
    pub(super) fn repaged(mut self, pager: Option<&Rc<Pager>>, page: bool) -> Self {
        let same = match (self.pager(), pager) {
            (None, None) => true,
            (Some(a), Some(b)) => Rc::ptr_eq(a, b),
            _ => false,
        };
        let packed = matches!(
            &self.0.body,
            ChunkBody::Columnar {
                store: Store::Heap(_),
                ..
            }
        );
        let moves = pager.is_some() && page;
        if !packed || (same && !moves) {
            return self;
        }
        if !moves {
            if let Some(inner) = Rc::get_mut(&mut self.0) {
                inner.pager = pager.cloned();
                return self;
            }
        }
        let ChunkBody::Columnar {
            store: Store::Heap(bytes),
            layout,
            encoded,
            first,
            last,
        } = &self.0.body
        else {
            unreachable!("checked packed")
        };
        let store = match pager.filter(|_| page) {
            Some(pager) => Store::Pool(pager.pool().insert_with(
                bytes.len(),
                pager.hints(self.depth()),
                |slot| slot.copy_from_slice(bytes),
            )),
            None => Store::Heap(bytes.clone()),
        };
        let body = ChunkBody::Columnar {
            store,
            layout: *layout,
            encoded: *encoded,
            first: first.clone(),
            last: last.clone(),
        };
        PagedChunk::sealed(body, self.depth(), pager.cloned())
    }

    /// The resident body, for the chunker's in-place building (copy-on-write if shared).
    pub(super) fn building(&mut self) -> &mut Vec<Update<K, V, T, R>> {
        if Rc::get_mut(&mut self.0).is_none() || self.rows().is_none() {
            let (vec, depth, pager) = (self.materialize(), self.0.depth, self.0.pager.clone());
            *self = PagedChunk::resident(vec, depth, pager);
        }
        match &mut Rc::get_mut(&mut self.0).expect("unique").body {
            ChunkBody::Rows(vec) => vec.make_mut(),
            ChunkBody::Columnar { .. } => unreachable!("materialized above"),
        }
    }
}

/// A chunk as a lookup reads it (see [`PagedChunk::lookup_body`]).
pub(crate) enum LookupBody<'c, K, V, T, R> {
    Records(&'c [((K, V), T, R)]),
    Packed {
        bytes: &'c [u8],
        layout: Layout,
    },
    Pooled {
        handle: &'c ChunkHandle,
        layout: Layout,
        pool: &'c spillway_pool::Pool,
    },
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
pub(super) fn leftover<K, V, T, R>(
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

impl<K, V, T, R> PagedChunk<K, V, T, R> {
    #[inline]
    pub(super) fn len_records(&self) -> usize {
        match &self.0.body {
            ChunkBody::Rows(vec) => vec.as_slice().len(),
            ChunkBody::Columnar { layout, .. } => layout.len,
        }
    }
}
