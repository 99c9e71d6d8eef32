//! [`PagedBatchCursor`]: the cursor over a [`PagedBatch`], one [`PagedCursor`] into the
//! chunk being read.
//!
//! Invariant: while the cursor is at a key, `inner` is a cursor into chunk `chunk` at a valid
//! key, and `key_chunk` is the first chunk holding that key. `inner` runs out of keys only
//! past the batch's last key (a step that exhausts a chunk moves on to the next one at once),
//! and then it is replaced by a cursor into no chunk, so an exhausted cursor holds no pin.
//!
//! A batch is one sorted sequence cut into chunks, so a key, or a `(key, val)`, that spans a
//! boundary *continues* into the next chunk: its vals (times) there follow the ones before.
//! Only the last key (`(key, val)`) of a chunk can continue, so the cursor looks at the
//! batch's spill flags (see the parent module) only when the chunk cursor says it stands on
//! that one (its group runs to the chunk's end, a comparison of two known positions);
//! elsewhere a step is the chunk cursor's step. Seeks gallop over the chunks' resident last
//! keys from the current chunk (seeks move forward, as differential's cursors are used), and
//! read a chunk's body only when the key sought may be in it. A cursor that moves on to the
//! next chunk asks the pool to fault in the few after it, so a scan of evicted chunks
//! overlaps their reads with its own work.

use differential_dataflow::difference::Semigroup;
use differential_dataflow::lattice::Lattice;
use differential_dataflow::trace::cursor::Cursor;
use differential_dataflow::trace::Navigable;
use timely::progress::Timestamp;

use super::{PagedBatch, Spill};
use crate::chunk::{PagedChunk, PagedCursor};
use crate::data::{equal, less, PagedData};
use crate::records::gallop_index;

/// Chunks a cursor moving on in order asks the pool to fault in beyond the next one (see
/// `PagedBatchCursor::goto_next`): with the next, 1 MiB of 256 KiB chunks ahead. Measured
/// on the 10M join at 32 MiB: the pool's scan 0.29 s against 0.39 s with the next chunk
/// only (medians of 5 interleaved runs).
const READ_AHEAD: usize = 3;

/// A cursor over a [`PagedBatch`] (its `Navigable::Cursor`): see the module docs.
///
/// Seeks move forward only, as `OrdValBatch`'s cursor's do: `seek_key` to a key at or below
/// the current one stays at the current key (and rewinds its vals), `seek_val` to a val below
/// the current one stays. Differential's operators seek in key order (a `CursorList` passes
/// every seek to every batch's cursor, so one already past the key sought stays).
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

    /// Past the batch's last key: lets go of the last chunk (its pin or stable bytes) at once.
    fn run_out(&mut self) {
        self.inner = PagedCursor::exhausted();
        self.key_chunk = self.chunk;
    }

    /// Moves to the start of chunk `c` (which exists).
    #[inline]
    fn goto(&mut self, s: &PagedBatch<K, V, T, R>, c: usize) {
        self.chunk = c;
        self.inner = s.chunks()[c].cursor();
    }

    /// Moves to the start of the next chunk (which exists), reading on in order: asks the
    /// pool to fault in the [`READ_AHEAD`] chunks after it (the chunk's own cursor asks for
    /// the one right after on its first read).
    #[inline]
    fn goto_next(&mut self, s: &PagedBatch<K, V, T, R>) {
        self.goto(s, self.chunk + 1);
        for ahead in s.chunks().iter().skip(self.chunk + 2).take(READ_AHEAD) {
            ahead.prefetch();
        }
    }

    #[inline(always)]
    fn current<'a>(&self, s: &'a PagedBatch<K, V, T, R>) -> &'a PagedChunk<K, V, T, R> {
        &s.chunks()[self.chunk]
    }

    /// Whether the current `(key, val)`, the last of chunk `c`, continues into chunk `c + 1`.
    #[inline(always)]
    fn val_spills(s: &PagedBatch<K, V, T, R>, c: usize) -> bool {
        match s.spills[c].get() {
            Spill::Val => true,
            Spill::KeyMaybeVal => wide_val_spills(s, c),
            Spill::None | Spill::Key => false,
        }
    }

    /// Whether the current key, the last of chunk `c`, continues into chunk `c + 1`.
    #[inline(always)]
    fn key_spills(s: &PagedBatch<K, V, T, R>, c: usize) -> bool {
        s.spills[c].get() != Spill::None
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
            self.goto_next(s);
        }
    }
}

/// Whether the last `(key, val)` of chunk `c` continues into chunk `c + 1`, when a fence val
/// is too wide to keep: reads the two vals (from the bodies where not kept) and keeps the
/// answer (rare: a key that straddles a boundary at a val of more than 256 bytes).
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
    let same = equal::<V>(chunks[c].edge_val(true), chunks[c + 1].edge_val(false));
    s.spills[c].set(if same { Spill::Val } else { Spill::Key });
    same
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
        debug_assert!(self.inner.has_key(), "key() of a cursor past the last key");
        self.inner.key(self.current(s))
    }
    #[inline(always)]
    fn val<'a>(&self, s: &'a Self::Storage) -> V::Item<'a> {
        debug_assert!(
            self.val_valid(s),
            "val() of a cursor past the key's last val"
        );
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
        while ends && Self::val_spills(s, c) {
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
            if self.inner.has_key() {
                break;
            }
            if self.chunk + 1 == s.chunks().len() {
                self.run_out();
                break;
            }
            // Past the chunk's last key: the next chunk starts with the next key, or with
            // more of the one just stepped over (then step over that too).
            let spilled = Self::key_spills(s, self.chunk);
            self.goto_next(s);
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
        // The first chunk, from here, whose last key is not below `key` (from the resident
        // fences: a chunk the key is not in is not read); chunks before the current one hold
        // only keys below the current key.
        let chunks = s.chunks();
        let below = |c: usize| less::<K>(chunks[c].fences().1 .0.item(), key);
        let c = gallop_index(self.chunk, chunks.len(), below);
        if c == self.chunk && !less::<K>(self.key(s), key) {
            // At the key already, or past it (seeks only move forward): its first val.
            return self.rewind_vals(s);
        }
        if c == chunks.len() {
            // Past the last key.
            self.run_out();
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
        while self.inner.val_ends_chunk(chunk) && Self::val_spills(s, self.chunk) {
            self.goto_next(s);
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
    //! straddling one or several chunks), each chunk rows or columnar, with fixed-width vals
    //! (read by value, cached) and string vals of mixed widths (some too wide to keep as
    //! fences).

    use differential_dataflow::trace::chunk::ChunkBatch;
    use proptest::prelude::*;

    use super::*;

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
                2 => (0u8..8).prop_map(Move::SeekVal),
                1 => Just(Move::RewindVals),
                1 => Just(Move::RewindKeys),
            ],
            1..80,
        )
    }

    /// Where a cursor stands: its key, its val, and the val's times.
    type Observed<V> = (Option<u64>, Option<V>, Vec<(u64, isize)>);

    fn observe<V, C>(cursor: &mut C, s: &C::Storage) -> Observed<V>
    where
        C: for<'a> Cursor<Key<'a> = u64, ValOwn = V, TimeGat<'a> = u64, DiffGat<'a> = isize>,
    {
        let key = cursor.get_key(s);
        let val = cursor.get_val(s).map(C::owned_val);
        let mut times = Vec::new();
        cursor.map_times(s, |t, r| times.push((t, r)));
        (key, val, times)
    }

    /// Applies `step` to `cursor`, with `val_of` naming vals; seeks only forward, as
    /// operators seek (upstream's cursor also seeks backward; ours stays, by design).
    fn apply<V: PagedData, C>(
        cursor: &mut C,
        s: &C::Storage,
        step: &Move,
        val_of: &impl Fn(u8) -> V,
    ) where
        C: for<'a> Cursor<Key<'a> = u64, Val<'a> = V::Item<'a>>,
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
                let v = val_of(v);
                if cursor.get_val(s).is_some_and(|at| at <= v.item()) {
                    cursor.seek_val(s, v.item());
                }
            }
            Move::RewindVals => cursor.rewind_vals(s),
            Move::RewindKeys => cursor.rewind_keys(s),
        }
    }

    /// Sorted, consolidated records from `(key, val, time)` triples (few keys and vals, so
    /// groups straddle chunks), cut into chunks of the `cuts` sizes, each columnar or rows as
    /// its flag says; then our cursor and upstream's make `moves` and must agree after each,
    /// and ours walks every record once, in order.
    fn agree<V: PagedData + std::fmt::Debug>(
        groups: &[(u8, u8, u8)],
        cuts: &[(usize, bool)],
        moves: &[Move],
        val_of: impl Fn(u8) -> V,
    ) -> Result<(), TestCaseError> {
        let mut records: Vec<_> = groups
            .iter()
            .map(|&(k, v, t)| ((u64::from(k), val_of(v)), u64::from(t), 1isize))
            .collect();
        records.sort();
        records.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
        let mut chunks = Vec::new();
        let (mut at, mut cut) = (0, cuts.iter().cycle());
        while at < records.len() {
            let &(size, columnar) = cut.next().expect("cuts are not empty");
            let end = (at + size).min(records.len());
            let chunk = PagedChunk::from_records(records[at..end].to_vec());
            chunks.push(if columnar { chunk.packed() } else { chunk });
            at = end;
        }
        let ours = PagedBatch::new(chunks.clone());
        let theirs = ChunkBatch::new(chunks);
        let (mut a, mut b) = (ours.cursor(), theirs.cursor());
        prop_assert_eq!(observe(&mut a, &ours), observe(&mut b, &theirs));
        for step in moves {
            apply(&mut a, &ours, step, &val_of);
            apply(&mut b, &theirs, step, &val_of);
            prop_assert_eq!(
                observe(&mut a, &ours),
                observe(&mut b, &theirs),
                "after {:?}",
                step
            );
        }
        let mut walked = Vec::new();
        a.rewind_keys(&ours);
        while let Some(k) = a.get_key(&ours) {
            while let Some(v) = a.get_val(&ours) {
                a.map_times(&ours, |t, r| walked.push(((k, V::into_owned(v)), t, r)));
                a.step_val(&ours);
            }
            a.step_key(&ours);
        }
        prop_assert_eq!(walked, records);
        Ok(())
    }

    fn groups() -> impl Strategy<Value = Vec<(u8, u8, u8)>> {
        prop::collection::vec((0u8..10, 0u8..6, 0u8..4), 1..120)
    }

    fn cuts() -> impl Strategy<Value = Vec<(usize, bool)>> {
        prop::collection::vec((1usize..9, any::<bool>()), 1..40)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// String vals, each 3 or 300 bytes as `wide` says (300 is over the fence width).
        #[test]
        fn answers_as_upstreams_batch_cursor(
            groups in groups(), cuts in cuts(), wide in any::<u8>(), moves in moves(),
        ) {
            let val_of = |v: u8| {
                let width = if wide >> v & 1 == 1 { 300 } else { 3 };
                format!("{v}{}", "0".repeat(width - 1))
            };
            agree(&groups, &cuts, &moves, val_of)?;
        }

        /// `u64` vals: read by value, cached by the chunk cursor, one record per val.
        #[test]
        fn answers_as_upstreams_batch_cursor_by_value(
            groups in groups(), cuts in cuts(), moves in moves(),
        ) {
            agree(&groups, &cuts, &moves, u64::from)?;
        }
    }

    #[test]
    fn a_pair_straddling_a_rows_and_a_columnar_chunk_is_read_once() {
        // A rows chunk keeps every fence val; a columnar one only those of at most 256 bytes.
        let wide = "x".repeat(300);
        let rows = PagedChunk::from_records(vec![((1u64, wide.clone()), 0u64, 1isize)]);
        let packed = PagedChunk::from_records(vec![((1u64, wide.clone()), 1u64, 1isize)]).packed();
        let batch = PagedBatch::new(vec![rows, packed]);
        let mut cursor = batch.cursor();
        let mut times = Vec::new();
        cursor.map_times(&batch, |t, r| times.push((t, r)));
        assert_eq!(times, vec![(0, 1), (1, 1)]);
        cursor.step_val(&batch);
        assert!(!cursor.val_valid(&batch));
        cursor.step_key(&batch);
        assert!(!cursor.key_valid(&batch));
    }

    #[test]
    fn exhausted_and_empty_cursors_stay_invalid_until_rewound() {
        let empty = PagedBatch::<u64, u64, u64, isize>::new(Vec::new());
        let mut cursor = empty.cursor();
        cursor.step_key(&empty);
        cursor.step_val(&empty);
        cursor.seek_key(&empty, 3);
        cursor.seek_val(&empty, 3);
        cursor.rewind_vals(&empty);
        cursor.rewind_keys(&empty);
        cursor.map_times(&empty, |_, _| panic!("no times in an empty batch"));
        assert!(!cursor.key_valid(&empty) && !cursor.val_valid(&empty));

        let records =
            |keys: std::ops::Range<u64>| keys.map(|k| ((k, k), 0u64, 1isize)).collect::<Vec<_>>();
        let batch = PagedBatch::new(vec![
            PagedChunk::from_records(records(0..3)),
            PagedChunk::from_records(records(3..6)).packed(),
        ]);
        let mut cursor = batch.cursor();
        cursor.seek_key(&batch, 9);
        assert!(!cursor.key_valid(&batch) && !cursor.val_valid(&batch));
        // Every move of an exhausted cursor keeps it exhausted.
        cursor.seek_key(&batch, 1);
        cursor.step_key(&batch);
        cursor.step_val(&batch);
        cursor.seek_val(&batch, 0);
        cursor.rewind_vals(&batch);
        assert_eq!(cursor.get_key(&batch), None);
        cursor.rewind_keys(&batch);
        assert_eq!(
            (cursor.get_key(&batch), cursor.get_val(&batch)),
            (Some(0), Some(0))
        );
        cursor.seek_key(&batch, 4);
        assert_eq!(cursor.get_key(&batch), Some(4));
        cursor.step_key(&batch);
        cursor.step_key(&batch);
        assert!(!cursor.key_valid(&batch));
    }
}
