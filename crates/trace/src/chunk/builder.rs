//! [`BodyBuilder`]: builds a columnar body record by record from encoded items, and
//! [`Source`]: reads one forward, so chunk operations copy bytes instead of decoding rows.
//!
//! Invariant: the records pushed into a builder are sorted by `((key, val), time)` and
//! consolidated (the caller's duty, as for every chunk), and what [`BodyBuilder::finish`]
//! returns is the body [`Layout::write`] would write for those records, with the same
//! [`Layout`] flags and the same encoded size ([`crate::records::update_bytes`] summed), so a
//! chunk built here is indistinguishable from one sealed from rows.
//!
//! Keys and vals are pushed as the bytes of their encoding, copied from another body; times
//! and diffs as bytes too, or as values when an operation made them (a summed diff, an
//! advanced time). Nothing is decoded into an owned value but the fences of a finished body
//! (two keys and times a chunk, and vals up to [`super::body`]'s fence width): merging,
//! advancing and splitting variable-length records allocates per chunk, not per item.
//!
//! Equality of keys (a new key run or not) and of vals (whether every `(key, val)` has one
//! record) is decided as the order is ([`PagedData::cmp_encoded`]); equality of times and diffs (stored once
//! when constant) on their encoded bytes, which can only miss that optimization, never
//! mislabel a body.

use std::rc::Rc;

use spillway_pool::PinGuard;

use super::body::{ChunkBody, PagedChunk, Store};
use super::layout::{Layout, END};
use crate::data::PagedData;
use crate::pager::Pager;
use crate::records::{min_update_bytes, records_per, TARGET_BYTES};

/// Bytes of a variable-length column's end offset, per value (see [`crate::data`]).
const OFFSET: usize = 8;

/// One column being built: its items' encodings laid end to end, and for a variable-length
/// type the end offset of each.
struct Column {
    width: Option<usize>,
    data: Vec<u8>,
    ends: Vec<u64>,
    n: usize,
}

impl Column {
    /// An empty column with room for `items` items of `bytes` in all (when variable-length).
    fn new<X: PagedData>(items: usize, bytes: usize) -> Self {
        Column {
            width: X::WIDTH,
            data: Vec::with_capacity(X::WIDTH.map_or(bytes, |w| w * items)),
            ends: Vec::with_capacity(if X::WIDTH.is_none() { items } else { 0 }),
            n: 0,
        }
    }

    #[inline(always)]
    fn push_bytes(&mut self, bytes: &[u8]) {
        debug_assert!(self.width.is_none_or(|w| w == bytes.len()));
        self.data.extend_from_slice(bytes);
        self.close_item();
    }

    #[inline(always)]
    fn push_value<X: PagedData>(&mut self, x: &X) {
        let (at, len) = (self.data.len(), x.encoded_len());
        self.data.resize(at + len, 0);
        x.encode(&mut self.data[at..]);
        self.close_item();
    }

    #[inline(always)]
    fn close_item(&mut self) {
        if self.width.is_none() {
            self.ends.push(self.data.len() as u64);
        }
        self.n += 1;
    }

    /// The encoding of item `i`.
    #[inline(always)]
    fn item(&self, i: usize) -> &[u8] {
        match self.width {
            Some(w) => &self.data[i * w..(i + 1) * w],
            None => {
                let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
                &self.data[start..self.ends[i] as usize]
            }
        }
    }

    /// Bytes of the column's first `n` items as a body stores them.
    fn bytes(&self, n: usize) -> usize {
        match self.width {
            Some(w) => n * w,
            None if n == 0 => 0,
            None => n * OFFSET + self.ends[n - 1] as usize,
        }
    }

    /// Writes the first `n` items as a body stores them (exactly `bytes(n)`).
    fn write(&self, n: usize, out: &mut [u8]) {
        match self.width {
            Some(w) => out.copy_from_slice(&self.data[..n * w]),
            None => {
                let (ends, data) = out.split_at_mut(n * OFFSET);
                for (slot, end) in ends.chunks_exact_mut(OFFSET).zip(&self.ends[..n]) {
                    slot.copy_from_slice(&end.to_le_bytes());
                }
                data.copy_from_slice(&self.data[..data.len()]);
            }
        }
    }
}

/// The bytes an item of `X` encoded in `len` bytes adds to a record's encoded size (see
/// [`crate::records::update_bytes`]).
#[inline(always)]
fn field_bytes<X: PagedData>(len: usize) -> usize {
    match X::WIDTH {
        Some(w) => w,
        None => OFFSET + len,
    }
}

/// A columnar body being built from encoded items (see the module docs).
pub(crate) struct BodyBuilder<K, V, T, R> {
    keys: Column,
    /// The end of each key's run of records; the last key's is `len` once it closes.
    ends: Vec<u32>,
    vals: Column,
    times: Column,
    diffs: Column,
    len: usize,
    one_time: bool,
    one_diff: bool,
    one_per_val: bool,
    /// The records' encoded size as rows (what chunks are cut and graded by).
    encoded: usize,
    /// Above this many encoded bytes the builder is full (the chunk target, or unbounded).
    limit: usize,
    _types: std::marker::PhantomData<(K, V, T, R)>,
}

impl<K, V, T, R> BodyBuilder<K, V, T, R>
where
    K: PagedData,
    V: PagedData,
    T: PagedData,
    R: PagedData,
{
    /// A builder of chunks of at most [`TARGET_BYTES`] encoded bytes (or one larger record),
    /// with room for a full chunk (it keeps its buffers from chunk to chunk).
    pub fn chunk() -> Self {
        let records = records_per(TARGET_BYTES, min_update_bytes::<K, V, T, R>());
        Self::with_limit(TARGET_BYTES, records, TARGET_BYTES)
    }

    /// A builder with no size limit, for a piece of chunks already within one: room for
    /// `records` records of about `bytes` encoded, so that it grows no buffer on the way.
    pub fn piece(records: usize, bytes: usize) -> Self {
        Self::with_limit(usize::MAX, records, bytes)
    }

    fn with_limit(limit: usize, records: usize, bytes: usize) -> Self {
        BodyBuilder {
            keys: Column::new::<K>(records, bytes / 4),
            ends: Vec::with_capacity(records),
            vals: Column::new::<V>(records, bytes),
            times: Column::new::<T>(records, 0),
            diffs: Column::new::<R>(records, 0),
            len: 0,
            one_time: true,
            one_diff: true,
            one_per_val: true,
            encoded: 0,
            limit,
            _types: std::marker::PhantomData,
        }
    }

    /// Records pushed so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether a record of these encoded parts fits (always, into an empty builder).
    #[inline(always)]
    pub fn fits(&self, key: &[u8], val: &[u8], time: usize, diff: usize) -> bool {
        self.len == 0
            || self.encoded
                + field_bytes::<K>(key.len())
                + field_bytes::<V>(val.len())
                + field_bytes::<T>(time)
                + field_bytes::<R>(diff)
                <= self.limit
    }

    /// Whether no record of the smallest size fits any more.
    #[inline(always)]
    pub fn is_full(&self) -> bool {
        self.len > 0
            && self
                .encoded
                .saturating_add(min_update_bytes::<K, V, T, R>())
                > self.limit
    }

    /// Appends a record under `key` (its encoding), opening a new key run unless `key` equals
    /// the last record's key.
    #[inline(always)]
    fn push_key_val(&mut self, key: &[u8], val: &[u8]) {
        let same_key =
            self.keys.n > 0 && K::cmp_encoded(self.keys.item(self.keys.n - 1), key).is_eq();
        if same_key {
            if self.one_per_val && V::cmp_encoded(self.vals.item(self.len - 1), val).is_eq() {
                self.one_per_val = false;
            }
        } else {
            if self.keys.n > 0 {
                self.ends.push(self.len as u32);
            }
            self.keys.push_bytes(key);
        }
        self.vals.push_bytes(val);
        self.encoded += field_bytes::<K>(key.len()) + field_bytes::<V>(val.len());
    }

    /// Appends a record from encoded parts.
    #[inline(always)]
    pub fn push(&mut self, key: &[u8], val: &[u8], time: &[u8], diff: &[u8]) {
        self.push_key_val(key, val);
        self.times.push_bytes(time);
        self.diffs.push_bytes(diff);
        self.close_record(time.len(), diff.len());
    }

    /// Appends a record with a time and diff made by the operation.
    #[inline(always)]
    pub fn push_made(&mut self, key: &[u8], val: &[u8], time: &T, diff: &R) {
        self.push_key_val(key, val);
        self.times.push_value(time);
        self.diffs.push_value(diff);
        let (t, d) = (
            self.times.item(self.len).len(),
            self.diffs.item(self.len).len(),
        );
        self.close_record(t, d);
    }

    #[inline(always)]
    fn close_record(&mut self, time: usize, diff: usize) {
        if self.len > 0 {
            self.one_time &= self.times.item(self.len) == self.times.item(0);
            self.one_diff &= self.diffs.item(self.len) == self.diffs.item(0);
        }
        self.encoded += field_bytes::<T>(time) + field_bytes::<R>(diff);
        self.len += 1;
    }

    /// Appends the current record of `source` (copied as bytes).
    #[inline(always)]
    pub fn push_from(&mut self, source: &Source<K, V, T, R>) {
        self.push(
            source.key_bytes(),
            source.val_bytes(),
            source.time_bytes(),
            source.diff_bytes(),
        );
    }

    /// The chunk of the records pushed (at least one), packed on the heap, at `depth` with
    /// `pager`; the builder is left empty.
    pub fn finish(&mut self, depth: u8, pager: Option<Rc<Pager>>) -> PagedChunk<K, V, T, R> {
        assert!(self.len > 0, "an empty chunk");
        let (len, keys) = (self.len, self.keys.n);
        let times = if self.one_time { 1 } else { len };
        let diffs = if self.one_diff { 1 } else { len };
        let end_bytes = if keys == len { 0 } else { keys * END };
        let layout = Layout::from_columns(
            len,
            keys,
            [
                self.keys.bytes(keys),
                end_bytes,
                self.vals.bytes(len),
                self.times.bytes(times),
                self.diffs.bytes(diffs),
            ],
            (self.one_time, self.one_diff, self.one_per_val),
        );
        let mut body = vec![0u8; layout.bytes()].into_boxed_slice();
        let mut at = 0;
        let mut next = |bytes: usize| {
            at += bytes;
            at - bytes..at
        };
        self.keys
            .write(keys, &mut body[next(self.keys.bytes(keys))]);
        if keys < len {
            self.ends.push(len as u32);
            for (slot, end) in body[next(end_bytes)].chunks_exact_mut(END).zip(&self.ends) {
                slot.copy_from_slice(&end.to_le_bytes());
            }
        }
        self.vals.write(len, &mut body[next(self.vals.bytes(len))]);
        self.times
            .write(times, &mut body[next(self.times.bytes(times))]);
        self.diffs
            .write(diffs, &mut body[next(self.diffs.bytes(diffs))]);
        debug_assert_eq!(at, body.len());
        let fence = |key: &[u8], val: &[u8], time: &[u8]| {
            (
                K::decode(key),
                super::body::fence_val_of::<V>(val),
                T::decode(time),
            )
        };
        let first = fence(self.keys.item(0), self.vals.item(0), self.times.item(0));
        let last = fence(
            self.keys.item(keys - 1),
            self.vals.item(len - 1),
            self.times.item(if self.one_time { 0 } else { len - 1 }),
        );
        let chunk = PagedChunk::sealed(
            ChunkBody::Columnar {
                store: Store::Heap(body),
                layout,
                encoded: self.encoded,
                first,
                last,
            },
            depth,
            pager,
        );
        self.reset();
        chunk
    }

    fn reset(&mut self) {
        for column in [
            &mut self.keys,
            &mut self.vals,
            &mut self.times,
            &mut self.diffs,
        ] {
            column.data.clear();
            column.ends.clear();
            column.n = 0;
        }
        self.ends.clear();
        self.len = 0;
        (self.one_time, self.one_diff, self.one_per_val) = (true, true, true);
        self.encoded = 0;
    }
}

/// A columnar chunk read forward, record by record, for an operation: its items (to compare)
/// and their encodings (to copy). A chunk of rows is sealed into a packed body first.
pub(crate) struct Source<K, V, T, R> {
    chunk: PagedChunk<K, V, T, R>,
    /// The pin of a pooled body (`None` for a packed one, read through the chunk).
    pin: Option<PinGuard>,
    layout: Layout,
    /// The current record, and its key's index and run end.
    i: usize,
    k: usize,
    key_end: usize,
}

impl<K, V, T, R> Source<K, V, T, R>
where
    K: PagedData,
    V: PagedData,
    T: PagedData,
    R: PagedData,
{
    /// Opens `chunk` at its first record (packing it first if it is rows); an empty chunk
    /// opens read to its end.
    pub fn open(chunk: PagedChunk<K, V, T, R>) -> Self {
        if chunk.len_records() == 0 {
            return Source {
                chunk,
                pin: None,
                layout: Layout::from_columns(0, 0, [0; 5], (true, true, true)),
                i: 0,
                k: 0,
                key_end: 0,
            };
        }
        let chunk = chunk.packed();
        let ChunkBody::Columnar { store, layout, .. } = &chunk.0.body else {
            unreachable!("packed above")
        };
        let layout = *layout;
        let pin = match store {
            Store::Heap(_) => None,
            Store::Pool(handle) => Some(chunk.pin_body(handle)),
        };
        let mut source = Source {
            chunk,
            pin,
            layout,
            i: 0,
            k: 0,
            key_end: 0,
        };
        source.key_end = source.layout.key_end(source.bytes(), 0);
        source
    }

    #[inline(always)]
    fn bytes(&self) -> &[u8] {
        match &self.pin {
            Some(pin) => pin,
            None => match &self.chunk.0.body {
                ChunkBody::Columnar {
                    store: Store::Heap(bytes),
                    ..
                } => bytes,
                // Only an empty chunk is opened as rows, and nothing of it is read.
                _ => &[],
            },
        }
    }

    /// Records in the chunk.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.layout.len
    }

    /// The chunk read: the one opened, or its packed form if it was rows.
    pub fn into_chunk(self) -> PagedChunk<K, V, T, R> {
        self.chunk
    }

    /// Bytes of the chunk's body.
    pub fn body_bytes(&self) -> usize {
        self.layout.bytes()
    }

    /// About the body bytes of `records` of the chunk's records (a share of the body).
    pub fn share(&self, records: usize) -> usize {
        (self.body_bytes() as u128 * records as u128 / self.len().max(1) as u128) as usize
    }

    /// The current record's index.
    #[inline(always)]
    pub fn position(&self) -> usize {
        self.i
    }

    /// Whether every record has been read.
    #[inline(always)]
    pub fn done(&self) -> bool {
        self.i == self.layout.len
    }

    /// Moves to the next record.
    #[inline(always)]
    pub fn step(&mut self) {
        self.i += 1;
        if self.i == self.key_end && self.i < self.layout.len {
            self.k += 1;
            self.key_end = self.layout.key_end(self.bytes(), self.k);
        }
    }

    /// Moves back to record `i` (at most the current one).
    pub fn rewind_to(&mut self, i: usize) {
        while self.k > 0 && self.layout.key_start(self.bytes(), self.k) > i {
            self.k -= 1;
        }
        self.key_end = self.layout.key_end(self.bytes(), self.k);
        self.i = i;
    }

    /// The current record's time, decoded.
    #[inline(always)]
    pub fn time(&self) -> T {
        T::decode(self.time_bytes())
    }

    /// The current record's diff, decoded.
    #[inline(always)]
    pub fn diff(&self) -> R {
        R::decode(self.diff_bytes())
    }

    #[inline(always)]
    pub fn key_bytes(&self) -> &[u8] {
        let b = self.bytes();
        &b[self.layout.key::<K>(b, self.k)]
    }

    #[inline(always)]
    pub fn val_bytes(&self) -> &[u8] {
        let b = self.bytes();
        &b[self.layout.val::<V>(b, self.i)]
    }

    #[inline(always)]
    pub fn time_bytes(&self) -> &[u8] {
        let b = self.bytes();
        &b[self.layout.time::<T>(b, self.i)]
    }

    #[inline(always)]
    pub fn diff_bytes(&self) -> &[u8] {
        let b = self.bytes();
        &b[self.layout.diff::<R>(b, self.i)]
    }

    /// The encoded size of the current record as rows.
    #[inline(always)]
    pub fn record_bytes(&self) -> usize {
        field_bytes::<K>(self.key_bytes().len())
            + field_bytes::<V>(self.val_bytes().len())
            + field_bytes::<T>(self.time_bytes().len())
            + field_bytes::<R>(self.diff_bytes().len())
    }

    /// What is left of the chunk from the current record on, if anything: the chunk itself
    /// when nothing was read (so a pooled chunk stays pooled), else a packed copy of the rest.
    pub fn rest(mut self) -> Option<PagedChunk<K, V, T, R>> {
        if self.done() {
            return None;
        }
        if self.i == 0 {
            return Some(self.chunk);
        }
        let left = self.len() - self.i;
        let mut out = BodyBuilder::piece(left, self.share(left));
        while !self.done() {
            out.push_from(&self);
            self.step();
        }
        Some(out.finish(self.chunk.depth(), self.chunk.pager().cloned()))
    }
}
