//! [`PagedBatchCursor`]: the cursor over a [`PagedBatch`], one [`PagedCursor`] into the
//! chunk being read.
//!
//! Invariant: while the cursor is at a key, `inner` is a cursor into chunk `chunk` at a valid
//! key, and `key_chunk` is the first chunk holding that key. `inner` runs out of keys only
//! past the batch's last key: a step that exhausts a chunk moves on to the next one at once.
//!
//! A batch is one sorted sequence cut into chunks, so a key, or a `(key, val)`, that spans a
//! boundary *continues* into the next chunk: its vals (times) there follow the ones before.
//! Only the last key (`(key, val)`) of a chunk can continue, so the cursor looks at the
//! batch's spill flags (see the parent module) only when the chunk cursor says it stands on
//! that one (its group runs to the chunk's end, a comparison of two known positions);
//! elsewhere a step is the chunk cursor's step. Seeks gallop over the chunks' resident last
//! keys from the current chunk (seeks move forward, as differential's cursors are used), and
//! read a chunk's body only when the key sought may be in it.

use differential_dataflow::difference::Semigroup;
use differential_dataflow::lattice::Lattice;
use differential_dataflow::trace::chunk::NavigableChunk;
use differential_dataflow::trace::cursor::Cursor;
use differential_dataflow::trace::Navigable;
use timely::progress::Timestamp;

use super::{PagedBatch, Spill};
use crate::chunk::{PagedChunk, PagedCursor};
use crate::data::{equal, less, PagedData};
use crate::records::gallop_index;

/// A cursor over a [`PagedBatch`] (its `Navigable::Cursor`): see the module docs.
pub struct PagedBatchCursor<K, V, T, R> {
    /// The chunk being read (0 for an empty batch).
    chunk: usize,
    /// The first chunk of the current key: where `rewind_vals` returns.
    key_chunk: usize,
    /// A cursor into `chunk` (an exhausted one for an empty batch).
    inner: PagedCursor<K, V, T, R>,
}

impl<K, V, T, R> PagedBatchCursor<K, V, T, R>
where
    K: PagedData,
    V: PagedData,
    T: PagedData + Lattice + Timestamp,
    R: PagedData + Semigroup,
{
    pub(super) fn new(batch: &PagedBatch<K, V, T, R>) -> Self {
        PagedBatchCursor {
            chunk: 0,
            key_chunk: 0,
            inner: match batch.chunks().first() {
                Some(chunk) => chunk.cursor(),
                None => PagedCursor::exhausted(),
            },
        }
    }

    /// Moves to the start of chunk `c` (which exists).
    #[inline]
    fn goto(&mut self, s: &PagedBatch<K, V, T, R>, c: usize) {
        self.chunk = c;
        self.inner = s.chunks()[c].cursor();
    }

    #[inline(always)]
    fn current<'a>(&self, s: &'a PagedBatch<K, V, T, R>) -> &'a PagedChunk<K, V, T, R> {
        &s.chunks()[self.chunk]
    }

    /// Whether the current `(key, val)`, the last of chunk `c`, continues into chunk `c + 1`.
    #[inline(always)]
    fn val_spills(&self, s: &PagedBatch<K, V, T, R>, c: usize) -> bool {
        match s.spills[c] {
            Spill::Val => true,
            Spill::KeyWideVal => wide_val_spills(s, c),
            Spill::None | Spill::Key => false,
        }
    }

    /// Whether the current key, the last of chunk `c`, continues into chunk `c + 1`.
    #[inline(always)]
    fn key_spills(s: &PagedBatch<K, V, T, R>, c: usize) -> bool {
        s.spills[c] != Spill::None
    }

    /// After a move within `chunk` (the current one) that may have run past its vals of the
    /// current key: if it did and the key continues into the next chunk, moves to the key's
    /// start there.
    #[inline(always)]
    fn follow_key(&mut self, s: &PagedBatch<K, V, T, R>, chunk: &PagedChunk<K, V, T, R>) {
        if !self.inner.val_valid(chunk)
            && self.inner.key_ends_chunk(chunk)
            && Self::key_spills(s, self.chunk)
        {
            self.goto(s, self.chunk + 1);
        }
    }
}

/// Whether the last `(key, val)` of chunk `c` continues into chunk `c + 1`, when both fence
/// vals are too wide to keep: reads them from the bodies (rare: a key that straddles a
/// boundary at a val of more than 256 bytes).
#[cold]
#[inline(never)]
fn wide_val_spills<K, V, T, R>(s: &PagedBatch<K, V, T, R>, c: usize) -> bool
where
    K: PagedData,
    V: PagedData,
    T: PagedData + Lattice + Timestamp,
    R: PagedData + Semigroup,
{
    let chunks = s.chunks();
    equal::<V>(chunks[c].bounds().1 .1, chunks[c + 1].bounds().0 .1)
}

impl<K, V, T, R> Cursor for PagedBatchCursor<K, V, T, R>
where
    K: PagedData,
    V: PagedData,
    T: PagedData + Lattice + Timestamp,
    R: PagedData + Semigroup,
{
    type Storage = PagedBatch<K, V, T, R>;

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
    fn key_valid(&self, _s: &Self::Storage) -> bool {
        self.inner.has_key()
    }
    #[inline(always)]
    fn val_valid(&self, s: &Self::Storage) -> bool {
        self.inner.has_key() && self.inner.val_valid(self.current(s))
    }
    #[inline(always)]
    fn key<'a>(&self, s: &'a Self::Storage) -> K::Item<'a> {
        self.inner.key(self.current(s))
    }
    #[inline(always)]
    fn val<'a>(&self, s: &'a Self::Storage) -> V::Item<'a> {
        self.inner.val(self.current(s))
    }
    #[inline(always)]
    fn get_key<'a>(&self, s: &'a Self::Storage) -> Option<K::Item<'a>> {
        self.key_valid(s).then(|| self.key(s))
    }
    #[inline(always)]
    fn get_val<'a>(&self, s: &'a Self::Storage) -> Option<V::Item<'a>> {
        self.val_valid(s).then(|| self.val(s))
    }

    #[inline]
    fn map_times<L: FnMut(T::Item<'_>, R::Item<'_>)>(&mut self, s: &Self::Storage, mut logic: L) {
        if !self.inner.has_key() {
            return;
        }
        let chunk = self.current(s);
        if !self.inner.val_valid(chunk) {
            return;
        }
        self.inner.map_times(chunk, &mut logic);
        // The pair's times continue at the start of the chunks it spills into (it spills
        // on from one only if it fills it).
        let (mut c, mut ends) = (self.chunk, self.inner.val_ends_chunk(chunk));
        while ends && self.val_spills(s, c) {
            c += 1;
            let next = &s.chunks()[c];
            let mut cursor = next.cursor();
            cursor.map_times(next, &mut logic);
            ends = cursor.val_ends_chunk(next);
        }
    }

    #[inline]
    fn step_key(&mut self, s: &Self::Storage) {
        if !self.inner.has_key() {
            return;
        }
        loop {
            self.inner.step_key(self.current(s));
            if self.inner.has_key() || self.chunk + 1 == s.chunks().len() {
                break;
            }
            // Past the chunk's last key: the next chunk starts with the next key, or with
            // more of the one just stepped over (then step over that too).
            let spilled = Self::key_spills(s, self.chunk);
            self.goto(s, self.chunk + 1);
            if !spilled {
                break;
            }
        }
        self.key_chunk = self.chunk;
    }

    #[inline]
    fn seek_key(&mut self, s: &Self::Storage, key: K::Item<'_>) {
        if !self.inner.has_key() {
            return;
        }
        if !less::<K>(self.key(s), key) {
            // At the key already, or past it (seeks only move forward): its first val.
            return self.rewind_vals(s);
        }
        // The first chunk, from here, whose last key is not below `key`; chunks before the
        // current one hold only keys below the current key.
        let chunks = s.chunks();
        let below = |c: usize| less::<K>(chunks[c].fences().1 .0.item(), key);
        let c = gallop_index(self.chunk, chunks.len(), below);
        if c == chunks.len() {
            // Past the last key: exhausted at the end of the last chunk.
            if self.chunk + 1 < chunks.len() {
                self.goto(s, chunks.len() - 1);
            }
            self.inner.step_past_end(self.current(s));
            self.key_chunk = self.chunk;
            return;
        }
        if c != self.chunk {
            self.goto(s, c);
        }
        // Chunk `c` has a key not below `key`, and its first such key does not continue from
        // chunk `c - 1` (whose last key is below `key`).
        self.inner.seek_key(self.current(s), key);
        self.key_chunk = c;
    }

    #[inline]
    fn step_val(&mut self, s: &Self::Storage) {
        if !self.inner.has_key() {
            return;
        }
        let mut chunk = self.current(s);
        if !self.inner.val_valid(chunk) {
            return;
        }
        // Over the chunks the current pair continues into, to the last one.
        while self.inner.val_ends_chunk(chunk) && self.val_spills(s, self.chunk) {
            self.goto(s, self.chunk + 1);
            chunk = self.current(s);
        }
        self.inner.step_val(chunk);
        self.follow_key(s, chunk);
    }

    #[inline]
    fn seek_val(&mut self, s: &Self::Storage, val: V::Item<'_>) {
        if !self.inner.has_key() {
            return;
        }
        loop {
            let chunk = self.current(s);
            self.inner.seek_val(chunk, val);
            let before = self.chunk;
            self.follow_key(s, chunk);
            if self.chunk == before {
                return;
            }
        }
    }

    #[inline]
    fn rewind_keys(&mut self, s: &Self::Storage) {
        if !s.chunks().is_empty() {
            self.goto(s, 0);
        }
        self.key_chunk = 0;
    }

    #[inline]
    fn rewind_vals(&mut self, s: &Self::Storage) {
        if !self.inner.has_key() {
            return;
        }
        if self.chunk == self.key_chunk {
            self.inner.rewind_vals(self.current(s));
            return;
        }
        // The key started in an earlier chunk, as that chunk's last key.
        let key = self.key(s);
        self.goto(s, self.key_chunk);
        self.inner.seek_key(self.current(s), key);
    }
}

#[cfg(test)]
mod tests {
    //! The cursor against upstream's `ChunkBatchCursor` over the same chunks: the same random
    //! moves, the same answers after each, on batches cut anywhere (keys and `(key, val)`s
    //! straddling one or several chunks), rows and columnar bodies, fixed-width and wide
    //! (fence-less) vals.

    use differential_dataflow::trace::chunk::ChunkBatch;
    use proptest::prelude::*;

    use super::*;

    /// Sorted, consolidated records with few keys and vals, so groups straddle chunks; vals
    /// are `val_width` bytes wide (over 256 leaves them out of the fences).
    fn records(groups: &[(u8, u8, u8)], val_width: usize) -> Vec<((u64, String), u64, isize)> {
        let mut out: Vec<_> = groups
            .iter()
            .map(|&(k, v, t)| {
                let val = format!("{v:0width$}", width = val_width);
                ((u64::from(k), val), u64::from(t), 1isize)
            })
            .collect();
        out.sort();
        out.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
        out
    }

    #[derive(Clone, Debug)]
    enum Move {
        StepKey,
        StepVal,
        SeekKey(u8),
        SeekVal(u8),
        RewindVals,
        RewindKeys,
    }

    fn moves() -> impl Strategy<Value = Vec<Move>> {
        prop::collection::vec(
            prop_oneof![
                4 => Just(Move::StepKey),
                6 => Just(Move::StepVal),
                2 => (0u8..12).prop_map(Move::SeekKey),
                2 => (0u8..12).prop_map(Move::SeekVal),
                1 => Just(Move::RewindVals),
                1 => Just(Move::RewindKeys),
            ],
            1..80,
        )
    }

    type Observed = (Option<u64>, Option<String>, Vec<(u64, isize)>);

    /// Where a cursor stands: its key, its val, and the val's times.
    fn observe<C>(cursor: &mut C, s: &C::Storage) -> Observed
    where
        C: for<'a> Cursor<Key<'a> = u64, Val<'a> = &'a str, TimeGat<'a> = u64, DiffGat<'a> = isize>,
    {
        let key = cursor.get_key(s);
        let val = cursor.get_val(s).map(str::to_owned);
        let mut times = Vec::new();
        cursor.map_times(s, |t, r| times.push((t, r)));
        (key, val, times)
    }

    /// Applies `step` to `cursor` (seeks only forward, as operators seek).
    fn apply<C>(cursor: &mut C, s: &C::Storage, step: &Move, width: usize)
    where
        C: for<'a> Cursor<Key<'a> = u64, Val<'a> = &'a str, TimeGat<'a> = u64, DiffGat<'a> = isize>,
    {
        match *step {
            Move::StepKey => cursor.step_key(s),
            Move::StepVal => cursor.step_val(s),
            Move::SeekKey(k) => {
                if cursor.get_key(s).is_some_and(|at| at <= u64::from(k)) {
                    cursor.seek_key(s, u64::from(k));
                }
            }
            Move::SeekVal(v) => {
                let v = format!("{v:0width$}");
                if cursor.get_val(s).is_some_and(|at| at <= v.as_str()) {
                    cursor.seek_val(s, &v);
                }
            }
            Move::RewindVals => cursor.rewind_vals(s),
            Move::RewindKeys => cursor.rewind_keys(s),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn answers_as_upstreams_batch_cursor(
            groups in prop::collection::vec((0u8..10, 0u8..6, 0u8..4), 1..120),
            cuts in prop::collection::vec(1usize..9, 1..40),
            wide in any::<bool>(),
            columnar in any::<bool>(),
            moves in moves(),
        ) {
            let width = if wide { 300 } else { 3 };
            let records = records(&groups, width);
            let mut chunks = Vec::new();
            let (mut at, mut cut) = (0, cuts.iter().cycle());
            while at < records.len() {
                let end = (at + cut.next().unwrap()).min(records.len());
                let chunk = PagedChunk::from_records(records[at..end].to_vec());
                chunks.push(if columnar { chunk.packed() } else { chunk });
                at = end;
            }
            let ours = PagedBatch::new(chunks.clone());
            let theirs = ChunkBatch::new(chunks);
            let (mut a, mut b) = (ours.cursor(), theirs.cursor());
            prop_assert_eq!(observe(&mut a, &ours), observe(&mut b, &theirs));
            for step in &moves {
                apply(&mut a, &ours, step, width);
                apply(&mut b, &theirs, step, width);
                prop_assert_eq!(observe(&mut a, &ours), observe(&mut b, &theirs), "after {:?}", step);
            }
            // And a full walk reads every record once, in order.
            let mut walked = Vec::new();
            a.rewind_keys(&ours);
            while let Some(k) = a.get_key(&ours) {
                while let Some(v) = a.get_val(&ours) {
                    a.map_times(&ours, |t, r| walked.push(((k, v.to_owned()), t, r)));
                    a.step_val(&ours);
                }
                a.step_key(&ours);
            }
            prop_assert_eq!(walked, records);
        }
    }
}
