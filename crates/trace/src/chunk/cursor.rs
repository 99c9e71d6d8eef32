//! [`PagedCursor`]: the cursor over one [`PagedChunk`], and `NavigableChunk::bounds`.
//!
//! Invariant: cursor reads are sound and bounded: no item borrows pool memory past the pin
//! that protects it.
//!
//! A packed body (a sealed chunk kept on the heap) is read in place, for the life of the
//! chunk: items of any type borrow from its buffer, which the chunk owns and never moves.
//! Rows (unsealed chunks) are read in place too. The rest is about pooled bodies.
//!
//! When all four types are fixed-width ([`PagedData::WIDTH`] is `Some`), items are returned
//! **by value** (`Key<'a> = K` and so on), and the pin that keeps a pooled body resident is
//! owned by the *cursor* ([`PagedCursor`]), taken on the cursor's first read and released
//! when it drops. No reference into pool memory is ever handed out, so no item can outlive
//! its pin, and pinned bytes scale with live cursors (the batch cursor keeps one inner cursor
//! per batch), not with chunks ever read.
//!
//! Variable-length types (`String`, `Vec<u8>`) are returned **by reference**, as `&'a str`
//! and `&'a [u8]` read straight out of the encoded column (offsets, then bytes: no decode,
//! no allocation per item), and differential lets such a reference live as long as the
//! borrow of the chunk, longer than any cursor or pin. So a pooled chunk's items borrow from
//! bytes the *chunk* owns: on its first by-reference read, the chunk copies its encoded body
//! from a pin, once, into *stable bytes* (`spillway_pool::StableBytes`: written once into an
//! unlinked scratch file on the pool's extent disk and mapped read-only and shared until the
//! chunk drops). Those bytes stay **valid** for every borrow of the chunk, but need not stay
//! **resident**: the arrangement's pager counts the bodies cursors opened (each cursor opens
//! its chunk on its first read) and, past its cap (min(budget / 2, 64 MiB)), releases the
//! least recently opened ones with `MADV_DONTNEED`, which drops their pages from the resident
//! set while the file keeps the contents; a later read faults them back. A body a live
//! cursor reads is never released (the cursor holds it, as a fixed-width cursor holds its
//! pin). So reading a paged arrangement of variable-length data in full, any number of
//! times, holds at most the cap plus the bodies of live cursors (one per batch being read)
//! of stable bytes resident, besides the pool's budget. Counted per
//! arrangement: [`crate::Paging::stable_bytes`]. The bound does not cover pages that a
//! caller touches again through references kept from an earlier read (they come back
//! uncounted until the chunk drops or its pager releases it again). Merges, extracts,
//! `settle` and lookups never store or read stable bytes (they pin the pool body).

use std::cell::{Cell, OnceCell};
use std::rc::Rc;

use differential_dataflow::difference::Semigroup;
use differential_dataflow::lattice::Lattice;
use differential_dataflow::trace::chunk::NavigableChunk;
use differential_dataflow::trace::cursor::Cursor;
use differential_dataflow::trace::Navigable;
use spillway_pool::PinGuard;
use timely::progress::Timestamp;

use super::body::{ChunkBody, PagedChunk, Store};
use crate::data::{equal, less, PagedData};
use crate::pager::{Pager, StableBody};
use crate::records::gallop_index;

/// A cursor's cached group end that is not known yet.
const UNKNOWN: usize = usize::MAX;

/// Bytes of the copies a cursor keeps of its current key's and val's encodings, when the
/// type is fixed-width and that narrow (see [`PagedCursor`]).
const CACHED: usize = 16;

/// Whether a cursor keeps a copy of its current `X` item's encoding.
const fn cached<X: PagedData>() -> bool {
    matches!(X::WIDTH, Some(w) if w <= CACHED)
}

/// A cursor over one [`PagedChunk`] (its `Navigable::Cursor`; the batch cursor,
/// [`crate::PagedBatchCursor`], keeps one into the chunk it reads). Returns fixed-width items by value, pinning a pooled body on its
/// first read (not at creation: differential opens cursors it may never read) and holding the
/// pin for as long as it lives; returns variable-length items by reference (`&str`, `&[u8]`)
/// from a packed body in place, or from a pooled chunk's stable bytes, stored on the chunk's
/// first such read and opened with the pager on each cursor's first read.
///
/// Positions are record indexes. On a columnar body the cursor also keeps the index of the
/// current key among the body's distinct keys, and finds a key's records from the key ends
/// (no comparison); on rows it compares neighbouring keys.
///
/// Callers ask for the current key and val more than once per position (a join compares
/// its two cursors' keys at every step, a trace's `CursorList` compares its batches' keys
/// at every step). So a cursor keeps a copy
/// of the current key's and val's encodings when they are fixed-width and at most
/// `CACHED` bytes (every integer, most tuples of them), taken from the body once per
/// position, with the group end that is found at the same time: a repeated `key()` or
/// `val()` decodes that copy, without reaching the body. Every move forgets both (the end
/// becomes `UNKNOWN`), so a copy is never of another position's item.
pub struct PagedCursor<K, V, T, R> {
    /// Records in the chunk (fixed once the cursor is made: chunks are immutable while read).
    len: usize,
    /// The first record of the current key.
    key_pos: usize,
    /// The current key's index among a columnar body's distinct keys (unused for rows).
    key_idx: usize,
    val_pos: usize,
    /// The end of the current key's records and of the current `(key, val)`'s records, found
    /// on first need and forgotten when the position moves (`UNKNOWN` until then), so a scan
    /// compares each record's key and val once. Finding one also copies the current key's
    /// (val's) encoding into `key` (`val`) when the type is cached.
    key_end: Cell<usize>,
    val_end: Cell<usize>,
    /// The current key's and val's encodings, valid while `key_end` (`val_end`) is known and
    /// the position is valid (used only for [`cached`] types).
    key: Cell<[u8; CACHED]>,
    val: Cell<[u8; CACHED]>,
    /// The pinned body of a pooled chunk read by value, taken on first read (never set for
    /// rows or packed bodies, which are read in place, nor for by-reference reads).
    pin: OnceCell<PinGuard>,
    /// The stable bytes of a pooled chunk read by reference, opened on first read and held
    /// while the cursor lives: the pager does not release bodies a live cursor reads.
    reading: OnceCell<(Rc<StableBody>, Rc<Pager>)>,
    _marker: std::marker::PhantomData<(K, V, T, R)>,
}

impl<K, V, T, R> Drop for PagedCursor<K, V, T, R> {
    fn drop(&mut self) {
        // The body this cursor read may now be released, if its pager is over the cap.
        if let Some((body, pager)) = self.reading.take() {
            drop(body);
            pager.trim(None);
        }
    }
}

impl<K, V, T, R> PagedCursor<K, V, T, R>
where
    K: PagedData,
    V: PagedData,
    T: PagedData,
    R: PagedData,
{
    /// Whether pooled bodies are read from a pin, by value.
    const BY_VALUE: bool =
        K::WIDTH.is_some() && V::WIDTH.is_some() && T::WIDTH.is_some() && R::WIDTH.is_some();

    #[inline(always)]
    fn n(&self, _s: &PagedChunk<K, V, T, R>) -> usize {
        self.len
    }

    /// The bytes of a columnar body, for reads by value (and of key ends): in place when
    /// packed, from the cursor's pin or the chunk's stable bytes when pooled.
    #[inline(always)]
    fn body<'a>(&'a self, s: &'a PagedChunk<K, V, T, R>, store: &'a Store) -> &'a [u8] {
        match store {
            Store::Heap(bytes) => bytes,
            Store::Pool(handle) if Self::BY_VALUE => self.pin.get_or_init(|| {
                // A scan reads chunks in order: fault the next one in meanwhile.
                s.prefetch_next();
                s.pin_body(handle)
            }),
            Store::Pool(_) => self.stable(s),
        }
    }

    /// The bytes of a columnar body that items may borrow for the chunk's lifetime: in place
    /// when packed, the stable bytes when pooled.
    #[inline(always)]
    fn lasting<'a>(&self, s: &'a PagedChunk<K, V, T, R>, store: &'a Store) -> &'a [u8] {
        match store {
            Store::Heap(bytes) => bytes,
            Store::Pool(_) => self.stable(s),
        }
    }

    /// A pooled chunk's stable bytes, opened on this cursor's first read.
    #[inline(always)]
    fn stable<'a>(&self, s: &'a PagedChunk<K, V, T, R>) -> &'a [u8] {
        self.reading.get_or_init(|| {
            let pager = Rc::clone(s.pager().expect("pooled chunks have a pager"));
            (s.open_stable(), pager)
        });
        s.stable_bytes()
    }

    /// An item of a columnar body at `range` (of `layout`, from `store`): by value from
    /// [`PagedCursor::body`] when the chunk reads by value, else borrowed from
    /// [`PagedCursor::lasting`].
    #[inline(always)]
    fn item<'a, X: PagedData>(
        &self,
        s: &'a PagedChunk<K, V, T, R>,
        store: &'a Store,
        range: impl Fn(&[u8]) -> std::ops::Range<usize>,
    ) -> X::Item<'a> {
        if Self::BY_VALUE || matches!(store, Store::Heap(_)) && X::WIDTH.is_some() {
            let body = self.body(s, store);
            X::read_item(&body[range(body)]).expect("fixed-width")
        } else {
            let body = self.lasting(s, store);
            X::borrow(&body[range(body)])
        }
    }

    /// Key `k` of the chunk's key sequence: distinct key `k` of a columnar body, record `k`'s
    /// key for rows (see [`PagedCursor::at_key_index`]).
    #[inline(always)]
    fn key_item<'a>(&self, s: &'a PagedChunk<K, V, T, R>, k: usize) -> K::Item<'a> {
        match &s.0.body {
            ChunkBody::Rows(vec) => vec.as_slice()[k].0 .0.item(),
            ChunkBody::Columnar { store, layout, .. } => {
                self.item::<K>(s, store, |b| layout.key::<K>(b, k))
            }
        }
    }

    #[inline(always)]
    fn val_at<'a>(&self, s: &'a PagedChunk<K, V, T, R>, i: usize) -> V::Item<'a> {
        match &s.0.body {
            ChunkBody::Rows(vec) => vec.as_slice()[i].0 .1.item(),
            ChunkBody::Columnar { store, layout, .. } => {
                self.item::<V>(s, store, |b| layout.val::<V>(b, i))
            }
        }
    }

    /// The end of the current key's records (see [`PagedCursor::key_end`]); finding it also
    /// copies the current key's encoding, if cached.
    #[inline(always)]
    fn key_end(&self, s: &PagedChunk<K, V, T, R>) -> usize {
        let end = self.key_end.get();
        if end != UNKNOWN {
            return end;
        }
        self.find_key_end(s)
    }

    /// [`PagedCursor::key_end`] when not known yet: read from the key ends of a columnar
    /// body (here, small enough to inline), found by comparing rows otherwise.
    #[inline(always)]
    fn find_key_end(&self, s: &PagedChunk<K, V, T, R>) -> usize {
        let mut end = self.key_pos;
        if end < self.len {
            match &s.0.body {
                ChunkBody::Columnar { store, layout, .. } => {
                    let body = self.body(s, store);
                    end = layout.key_end(body, self.key_idx);
                    if cached::<K>() {
                        let mut copy = [0; CACHED];
                        let at = layout.key::<K>(body, self.key_idx);
                        copy[..at.len()].copy_from_slice(&body[at]);
                        self.key.set(copy);
                    }
                }
                ChunkBody::Rows(_) => end = self.rows_key_end(s),
            }
        }
        self.key_end.set(end);
        end
    }

    /// [`PagedCursor::find_key_end`] on rows (the current key is valid).
    #[inline(never)]
    fn rows_key_end(&self, s: &PagedChunk<K, V, T, R>) -> usize {
        let rows = s.rows().expect("rows");
        let mut end = self.key_pos;
        let key = rows[end].0 .0.item();
        if cached::<K>() {
            let mut copy = [0; CACHED];
            rows[end].0 .0.encode(&mut copy[..K::WIDTH.unwrap_or(0)]);
            self.key.set(copy);
        }
        end += 1;
        while end < rows.len() && equal::<K>(rows[end].0 .0.item(), key) {
            end += 1;
        }
        end
    }

    /// The end of the current `(key, val)`'s records (the current key's end if the val is
    /// not valid); finding it also copies the current val's encoding, if cached.
    #[inline(always)]
    fn val_end(&self, s: &PagedChunk<K, V, T, R>) -> usize {
        let end = self.val_end.get();
        if end != UNKNOWN {
            return end;
        }
        self.find_val_end(s)
    }

    /// [`PagedCursor::val_end`] when not known yet: the next record on a columnar body with
    /// one record per `(key, val)` (here, small enough to inline), found by comparing vals
    /// otherwise.
    #[inline(always)]
    fn find_val_end(&self, s: &PagedChunk<K, V, T, R>) -> usize {
        let key_end = self.key_end(s);
        let mut end = self.val_pos;
        if end < key_end {
            match &s.0.body {
                ChunkBody::Columnar { store, layout, .. } if layout.one_per_val => {
                    if cached::<V>() {
                        let body = self.body(s, store);
                        let mut copy = [0; CACHED];
                        let at = layout.val::<V>(body, end);
                        copy[..at.len()].copy_from_slice(&body[at]);
                        self.val.set(copy);
                    }
                    end += 1;
                }
                _ => end = self.compared_val_end(s, key_end),
            }
        }
        self.val_end.set(end);
        end
    }

    /// [`PagedCursor::find_val_end`] by comparing vals (the current val is valid).
    #[inline(never)]
    fn compared_val_end(&self, s: &PagedChunk<K, V, T, R>, key_end: usize) -> usize {
        let mut end = self.val_pos;
        if cached::<V>() {
            let mut copy = [0; CACHED];
            match &s.0.body {
                ChunkBody::Columnar { store, layout, .. } => {
                    let body = self.body(s, store);
                    let at = layout.val::<V>(body, end);
                    copy[..at.len()].copy_from_slice(&body[at]);
                }
                ChunkBody::Rows(vec) => {
                    vec.as_slice()[end]
                        .0
                         .1
                        .encode(&mut copy[..V::WIDTH.unwrap_or(0)]);
                }
            }
            self.val.set(copy);
        }
        let val = self.val_at(s, end);
        end += 1;
        while end < key_end && equal::<V>(self.val_at(s, end), val) {
            end += 1;
        }
        end
    }

    /// Moves to the key whose first record is `key_pos` (and whose index among a columnar
    /// body's distinct keys is `key_idx`), to its first val.
    #[inline(always)]
    fn at_key(&mut self, key_pos: usize, key_idx: usize) {
        if key_pos != self.key_pos {
            self.key_pos = key_pos;
            self.key_idx = key_idx;
            self.key_end.set(UNKNOWN);
            // The val's end (and copy) belong to the key they were found under.
            self.val_pos = key_pos;
            self.val_end.set(UNKNOWN);
        } else {
            self.at_val(key_pos);
        }
    }

    /// Moves to the val at `val_pos` (within the current key).
    #[inline(always)]
    fn at_val(&mut self, val_pos: usize) {
        if val_pos != self.val_pos {
            self.val_pos = val_pos;
            self.val_end.set(UNKNOWN);
        }
    }

    /// Moves to the key at position `at` of the chunk's key sequence (a distinct key's
    /// index for columnar bodies, a record's for rows).
    #[inline(always)]
    fn at_key_index(&mut self, s: &PagedChunk<K, V, T, R>, at: usize) {
        match &s.0.body {
            ChunkBody::Columnar { store, layout, .. } => {
                let pos = if at >= layout.keys {
                    layout.len
                } else {
                    layout.key_start(self.body(s, store), at)
                };
                self.at_key(pos, at);
            }
            ChunkBody::Rows(_) => self.at_key(at, at),
        }
    }

    /// `seek_key` past the current key: gallops from here, or from the chunk's seek hint.
    #[inline(never)]
    fn seek_key_from_here(&mut self, s: &PagedChunk<K, V, T, R>, key: K::Item<'_>) {
        // Every key before the hint is below `key` if the hint's is; if the hint's is not
        // but the one before it is, the hint is the answer (another cursor of the same scan
        // in key order often sought this very key). Positions are in the key sequence.
        let (n, here) = (self.key_count(s), self.key_index(s));
        let hint = s.0.seek_hint.get();
        let below = |i: usize| less::<K>(self.key_item(s, i), key);
        let from = if hint > here && hint < n {
            if below(hint) {
                hint
            } else if below(hint - 1) {
                self.at_key_index(s, hint);
                return;
            } else {
                here
            }
        } else {
            here
        };
        let at = gallop_index(from, n, below);
        s.0.seek_hint.set(at);
        self.at_key_index(s, at);
    }

    /// Whether the cursor is at a key (as `key_valid`, without the chunk: a cursor knows its
    /// chunk's length).
    #[inline(always)]
    pub(crate) fn has_key(&self) -> bool {
        self.key_pos < self.len
    }

    /// Whether the current key's records run to the end of the chunk (the key is valid):
    /// the one key that may continue into the next chunk of a batch.
    #[inline(always)]
    pub(crate) fn key_ends_chunk(&self, s: &PagedChunk<K, V, T, R>) -> bool {
        self.key_end(s) == self.len
    }

    /// Whether the current `(key, val)`'s records run to the end of the chunk (the val is
    /// valid): the one pair that may continue into the next chunk of a batch.
    #[inline(always)]
    pub(crate) fn val_ends_chunk(&self, s: &PagedChunk<K, V, T, R>) -> bool {
        self.val_end(s) == self.len
    }

    /// A cursor past the end of an empty chunk sequence: no key, and no chunk to read.
    pub(crate) fn exhausted() -> Self {
        Self::at_start(0)
    }

    /// A cursor at the first record of a chunk of `len` records.
    fn at_start(len: usize) -> Self {
        // An empty chunk's group ends are known: its (no) records end at 0.
        let end = if len == 0 { 0 } else { UNKNOWN };
        PagedCursor {
            len,
            key_pos: 0,
            key_idx: 0,
            val_pos: 0,
            key_end: Cell::new(end),
            val_end: Cell::new(end),
            key: Cell::new([0; CACHED]),
            val: Cell::new([0; CACHED]),
            pin: OnceCell::new(),
            reading: OnceCell::new(),
            _marker: std::marker::PhantomData,
        }
    }

    /// Length of the chunk's key sequence (see [`PagedCursor::at_key_index`]).
    #[inline(always)]
    fn key_count(&self, s: &PagedChunk<K, V, T, R>) -> usize {
        match &s.0.body {
            ChunkBody::Columnar { layout, .. } => layout.keys,
            ChunkBody::Rows(vec) => vec.as_slice().len(),
        }
    }

    /// The current key's position in the key sequence.
    #[inline(always)]
    fn key_index(&self, s: &PagedChunk<K, V, T, R>) -> usize {
        match &s.0.body {
            ChunkBody::Columnar { .. } => self.key_idx,
            ChunkBody::Rows(_) => self.key_pos,
        }
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

    #[inline(always)]
    fn key_valid(&self, s: &Self::Storage) -> bool {
        self.key_pos < self.n(s)
    }
    #[inline(always)]
    fn val_valid(&self, s: &Self::Storage) -> bool {
        self.val_pos < self.key_end(s)
    }
    #[inline(always)]
    fn key<'a>(&self, s: &'a Self::Storage) -> K::Item<'a> {
        if cached::<K>() {
            self.key_end(s);
            let copy = self.key.get();
            return K::read_item(&copy[..K::WIDTH.unwrap_or(0)]).expect("fixed-width");
        }
        self.key_item(s, self.key_index(s))
    }
    #[inline(always)]
    fn val<'a>(&self, s: &'a Self::Storage) -> V::Item<'a> {
        if cached::<V>() {
            self.val_end(s);
            let copy = self.val.get();
            return V::read_item(&copy[..V::WIDTH.unwrap_or(0)]).expect("fixed-width");
        }
        self.val_at(s, self.val_pos)
    }
    #[inline(always)]
    fn get_key<'a>(&self, s: &'a Self::Storage) -> Option<K::Item<'a>> {
        self.key_valid(s).then(|| self.key(s))
    }
    #[inline(always)]
    fn get_val<'a>(&self, s: &'a Self::Storage) -> Option<V::Item<'a>> {
        self.val_valid(s).then(|| self.val(s))
    }
    #[inline(always)]
    fn map_times<L: FnMut(T::Item<'_>, R::Item<'_>)>(&mut self, s: &Self::Storage, mut logic: L) {
        let range = self.val_pos..self.val_end(s);
        match &s.0.body {
            ChunkBody::Rows(vec) => {
                for r in &vec.as_slice()[range] {
                    logic(r.1.item(), r.2.item());
                }
            }
            ChunkBody::Columnar { store, layout, .. } => {
                if T::WIDTH.is_some()
                    && R::WIDTH.is_some()
                    && (Self::BY_VALUE || matches!(store, Store::Heap(_)))
                {
                    // By value from one body (what `item` reads), found once.
                    let body = self.body(s, store);
                    for i in range {
                        logic(
                            T::read_item(&body[layout.time::<T>(body, i)]).expect("fixed-width"),
                            R::read_item(&body[layout.diff::<R>(body, i)]).expect("fixed-width"),
                        );
                    }
                } else {
                    for i in range {
                        logic(
                            self.item::<T>(s, store, |b| layout.time::<T>(b, i)),
                            self.item::<R>(s, store, |b| layout.diff::<R>(b, i)),
                        );
                    }
                }
            }
        }
    }
    #[inline(always)]
    fn step_key(&mut self, s: &Self::Storage) {
        if self.key_valid(s) {
            let (end, idx) = (self.key_end(s), self.key_idx + 1);
            self.at_key(end, idx);
        }
    }
    #[inline(always)]
    fn seek_key(&mut self, s: &Self::Storage, key: K::Item<'_>) {
        // Seeks only move forward: at a key not below `key` already (differential's batch
        // cursor seeks the current key before each step), the answer is here.
        if self.key_pos < self.len && !less::<K>(self.key(s), key) {
            self.at_val(self.key_pos);
            return;
        }
        self.seek_key_from_here(s, key);
    }
    #[inline(always)]
    fn step_val(&mut self, s: &Self::Storage) {
        if self.val_valid(s) {
            self.at_val(self.val_end(s));
        }
    }
    #[inline]
    fn seek_val(&mut self, s: &Self::Storage, val: V::Item<'_>) {
        if !self.key_valid(s) {
            return;
        }
        // Within the current key, vals are sorted.
        let key_end = self.key_end(s);
        let at = gallop_index(self.val_pos, key_end, |i| less::<V>(self.val_at(s, i), val));
        self.at_val(at.min(key_end));
    }
    #[inline]
    fn rewind_keys(&mut self, s: &Self::Storage) {
        self.at_key_index(s, 0);
    }
    #[inline(always)]
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

    #[inline]
    fn cursor(&self) -> Self::Cursor {
        PagedCursor::at_start(self.len_records())
    }
}

impl<K, V, T, R> NavigableChunk for PagedChunk<K, V, T, R>
where
    K: PagedData,
    V: PagedData,
    T: PagedData + Lattice + Timestamp,
    R: PagedData + Semigroup,
{
    /// Resident fences: cheap enough to inline (upstream's `ChunkBatchCursor`, which the
    /// tests compare ours against, calls this two or three times per `(key, val)` of a
    /// scan; our batch finds its spill flags from `fences` once); only a fence val too wide
    /// to keep resident is read from the body.
    #[allow(clippy::type_complexity)]
    #[inline(always)]
    fn bounds(
        &self,
    ) -> (
        (K::Item<'_>, V::Item<'_>, T::Item<'_>),
        (K::Item<'_>, V::Item<'_>, T::Item<'_>),
    ) {
        let ((k0, _, t0), (k1, _, t1)) = self.fences();
        (
            (k0.item(), self.edge_val(false), t0.item()),
            (k1.item(), self.edge_val(true), t1.item()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::layout::Layout;

    type Rec = ((u64, u64), u64, isize);

    /// Every `(key, val)` a cursor sees, with its records, read with the moves given.
    fn walk(chunk: &PagedChunk<u64, u64, u64, isize>) -> Vec<Rec> {
        let mut out = Vec::new();
        let mut c = chunk.cursor();
        while c.key_valid(chunk) {
            let k = c.key(chunk);
            // Read twice per position: the second read is the cached copy.
            while c.val_valid(chunk) {
                let v = c.val(chunk);
                assert_eq!((c.key(chunk), c.val(chunk)), (k, v));
                c.map_times(chunk, |t, r| out.push(((k, v), t, r)));
                c.step_val(chunk);
            }
            // A rewind and a seek to the current key start the key over.
            c.rewind_vals(chunk);
            assert_eq!(c.val(chunk), out.iter().find(|r| r.0 .0 == k).unwrap().0 .1);
            c.seek_key(chunk, k);
            assert_eq!(c.key(chunk), k);
            c.step_key(chunk);
        }
        out
    }

    fn chunks(records: &[Rec]) -> [PagedChunk<u64, u64, u64, isize>; 2] {
        [
            PagedChunk::from_records(records.to_vec()),
            PagedChunk::columnar(records, Layout::measure(records), 0, None, false),
        ]
    }

    #[test]
    fn cached_items_follow_every_move() {
        // Keys with one and several vals, vals with one and several times.
        let records: Vec<Rec> = vec![
            ((1, 10), 0, 1),
            ((1, 11), 0, 2),
            ((1, 11), 1, -1),
            ((2, 5), 3, 1),
            ((4, 1), 0, 1),
            ((4, 2), 0, 1),
            ((4, 2), 2, 1),
            ((4, 3), 0, 7),
        ];
        for chunk in chunks(&records) {
            assert_eq!(walk(&chunk), records);
            // Seeks forward, seek_val within a key, and a seek past the end.
            let mut c = chunk.cursor();
            c.seek_key(&chunk, 3);
            assert_eq!(c.key(&chunk), 4);
            c.seek_val(&chunk, 2);
            assert_eq!(c.val(&chunk), 2);
            let mut times = Vec::new();
            c.map_times(&chunk, |t, r| times.push((t, r)));
            assert_eq!(times, vec![(0, 1), (2, 1)]);
            c.step_val(&chunk);
            assert_eq!(c.val(&chunk), 3);
            c.rewind_vals(&chunk);
            assert_eq!(c.val(&chunk), 1);
            c.rewind_keys(&chunk);
            assert_eq!((c.key(&chunk), c.val(&chunk)), (1, 10));
            c.seek_key(&chunk, 2);
            assert_eq!((c.key(&chunk), c.val(&chunk)), (2, 5));
            c.seek_key(&chunk, 5);
            assert!(!c.key_valid(&chunk));
        }
    }

    #[test]
    fn one_record_per_val_steps_without_comparing() {
        let records: Vec<Rec> = (0..100u64).map(|i| ((i / 3, i), 5, 1)).collect();
        for chunk in chunks(&records) {
            assert_eq!(walk(&chunk), records);
        }
    }
}
