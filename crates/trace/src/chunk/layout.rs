//! [`Layout`]: the columnar body of a sealed chunk, on the heap or in a pool slot.
//!
//! Invariant: a body written by [`Layout::write`] for a sorted, consolidated run of records
//! reads back ([`Layout::decode`], or item by item) as exactly that run. Every read is
//! bounds-checked against the body; against its column's offsets ([`Layout::measure`]) too
//! for variable-length items, and in debug builds for fixed-width ones (their position is
//! arithmetic on the hot path of a scan).
//!
//! A sealed chunk's records are kept as differential's `OrdValSpine` keeps a batch, not as
//! rows: each distinct key once, with where its run of records ends, then the vals, times and
//! diffs column by column. Columns (each in the encoding of [`crate::data`]):
//! 0. **keys**: the `keys` distinct keys, in order;
//! 1. **key ends**: for each distinct key, the index one past its last record, a little-endian
//!    `u32` (empty when every record has its own key: the end of key `i` is then `i + 1`);
//! 2. **vals**: one per record;
//! 3. **times**: one per record, or one in all when every record has the same time (the
//!    common case once a batch is compacted: a round's batch is all at its round);
//! 4. **diffs**: one per record, or one in all when every record has the same diff (all `+1`
//!    for inserts).
//!
//! For `(u64, u64, u64, i64)` records at four updates per key, that is 11 bytes a record
//! against 32 as rows: the same body is what pages (smaller extents, more chunks in a budget)
//! and what stays resident when paging is off (less memory than `OrdValSpine`, whose vals
//! carry an offset each). Readers see records by index (a cursor walks key by key, using the
//! key ends); nothing but [`Layout`] knows the format.

use std::ops::Range;

use crate::data::{column_len, column_values, item_range, write_column, PagedData};
use crate::records::Update;

/// Bytes of a key end.
pub(super) const END: usize = 4;

/// Where the columns of a columnar body lie, and what they hold (see the module docs).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Layout {
    /// Records in the body.
    pub len: usize,
    /// Distinct keys in the body.
    pub keys: usize,
    /// Byte offsets of the keys, key ends, vals, times and diffs columns, and the body's end.
    offsets: [usize; 6],
    /// Whether all records share one time (stored once).
    one_time: bool,
    /// Whether all records share one diff (stored once).
    one_diff: bool,
    /// Whether every `(key, val)` has one record (always so when `one_time`): a cursor
    /// steps from val to val without comparing them.
    pub one_per_val: bool,
}

impl Layout {
    /// The layout of the body of `records` (sorted by `((key, val), time)`, non-empty), and
    /// the end of each key's run of records, for [`Layout::write`].
    pub fn measure<K, V, T, R>(records: &[Update<K, V, T, R>]) -> (Layout, Vec<u32>)
    where
        K: PagedData,
        V: PagedData,
        T: PagedData,
        R: PagedData,
    {
        let len = records.len();
        assert!(
            len > 0 && len <= u32::MAX as usize,
            "a chunk of {len} records"
        );
        let first = &records[0];
        let mut key_bytes = column_len(std::iter::once(&first.0 .0));
        let mut ends = Vec::new();
        let (mut one_time, mut one_diff, mut one_per_val) = (true, true, true);
        for (i, pair) in records.windows(2).enumerate() {
            let (prev, r) = (&pair[0], &pair[1]);
            if r.0 .0 != prev.0 .0 {
                ends.push(i as u32 + 1);
                key_bytes += column_len(std::iter::once(&r.0 .0));
            } else if r.0 .1 == prev.0 .1 {
                one_per_val = false;
            }
            one_time &= r.1 == first.1;
            one_diff &= r.2 == first.2;
        }
        ends.push(len as u32);
        let keys = ends.len();
        let end_bytes = if keys == len { 0 } else { keys * END };
        let val_bytes = column_len(records.iter().map(|r| &r.0 .1));
        let times = if one_time { 1 } else { len };
        let time_bytes = column_len(records[..times].iter().map(|r| &r.1));
        let diffs = if one_diff { 1 } else { len };
        let diff_bytes = column_len(records[..diffs].iter().map(|r| &r.2));
        let layout = Layout::from_columns(
            len,
            keys,
            [key_bytes, end_bytes, val_bytes, time_bytes, diff_bytes],
            (one_time, one_diff, one_per_val),
        );
        (layout, ends)
    }

    /// The layout of a body whose columns (keys, key ends, vals, times, diffs) take `bytes`,
    /// holding `len` records of `keys` distinct keys, with the flags `(one_time, one_diff,
    /// one_per_val)`: what [`crate::chunk::builder::BodyBuilder`] measured as it went.
    pub fn from_columns(
        len: usize,
        keys: usize,
        bytes: [usize; 5],
        (one_time, one_diff, one_per_val): (bool, bool, bool),
    ) -> Layout {
        let mut offsets = [0; 6];
        for (c, b) in bytes.into_iter().enumerate() {
            offsets[c + 1] = offsets[c] + b;
        }
        Layout {
            len,
            keys,
            offsets,
            one_time,
            one_diff,
            one_per_val,
        }
    }

    /// Bytes of the body.
    pub fn bytes(&self) -> usize {
        self.offsets[5]
    }

    /// Writes the body of `records` (which this layout measured, finding the key run `ends`)
    /// into `out`, exactly [`Layout::bytes`] long.
    pub fn write<K, V, T, R>(&self, records: &[Update<K, V, T, R>], ends: &[u32], out: &mut [u8])
    where
        K: PagedData,
        V: PagedData,
        T: PagedData,
        R: PagedData,
    {
        debug_assert_eq!(out.len(), self.bytes());
        debug_assert_eq!(ends.len(), self.keys);
        let keys = ends.iter().map(|&end| &records[end as usize - 1].0 .0);
        write_column(self.keys, keys, &mut out[self.span(0)]);
        if self.keys < self.len {
            for (slot, end) in out[self.span(1)].chunks_exact_mut(END).zip(ends) {
                slot.copy_from_slice(&end.to_le_bytes());
            }
        }
        write_column(
            self.len,
            records.iter().map(|r| &r.0 .1),
            &mut out[self.span(2)],
        );
        let times = if self.one_time { 1 } else { self.len };
        write_column(
            times,
            records[..times].iter().map(|r| &r.1),
            &mut out[self.span(3)],
        );
        let diffs = if self.one_diff { 1 } else { self.len };
        write_column(
            diffs,
            records[..diffs].iter().map(|r| &r.2),
            &mut out[self.span(4)],
        );
    }

    /// The bytes of column `c` within the body.
    #[inline(always)]
    fn span(&self, c: usize) -> Range<usize> {
        self.offsets[c]..self.offsets[c + 1]
    }

    /// Where, in `body`, item `i` of column `c` (of `n` items, of type `X`) lies.
    #[inline(always)]
    fn item<X: PagedData>(&self, body: &[u8], c: usize, n: usize, i: usize) -> Range<usize> {
        let start = self.offsets[c];
        if let Some(w) = X::WIDTH {
            // Arithmetic alone: the caller's slicing checks the body's bounds, and (in debug
            // builds) this checks the column's.
            debug_assert!(
                start + (i + 1) * w <= self.offsets[c + 1],
                "item {i} of column {c}"
            );
            return start + i * w..start + (i + 1) * w;
        }
        let r = item_range::<X>(&body[start..self.offsets[c + 1]], n, i);
        start + r.start..start + r.end
    }

    /// Where distinct key `k` lies in `body`.
    #[inline(always)]
    pub fn key<K: PagedData>(&self, body: &[u8], k: usize) -> Range<usize> {
        self.item::<K>(body, 0, self.keys, k)
    }

    /// Where record `i`'s val lies in `body`.
    #[inline(always)]
    pub fn val<V: PagedData>(&self, body: &[u8], i: usize) -> Range<usize> {
        self.item::<V>(body, 2, self.len, i)
    }

    /// Where record `i`'s time lies in `body`.
    #[inline(always)]
    pub fn time<T: PagedData>(&self, body: &[u8], i: usize) -> Range<usize> {
        if self.one_time {
            self.item::<T>(body, 3, 1, 0)
        } else {
            self.item::<T>(body, 3, self.len, i)
        }
    }

    /// Where record `i`'s diff lies in `body`.
    #[inline(always)]
    pub fn diff<R: PagedData>(&self, body: &[u8], i: usize) -> Range<usize> {
        if self.one_diff {
            self.item::<R>(body, 4, 1, 0)
        } else {
            self.item::<R>(body, 4, self.len, i)
        }
    }

    /// The index one past the last record of distinct key `k`.
    #[inline(always)]
    pub fn key_end(&self, body: &[u8], k: usize) -> usize {
        if self.keys == self.len {
            return k + 1;
        }
        let at = self.offsets[1] + k * END;
        u32::from_le_bytes(body[at..at + END].try_into().expect("4 bytes")) as usize
    }

    /// The index of the first record of distinct key `k`.
    #[inline(always)]
    pub fn key_start(&self, body: &[u8], k: usize) -> usize {
        if k == 0 {
            0
        } else {
            self.key_end(body, k - 1)
        }
    }

    /// The records of `body`, decoded.
    pub fn decode<K, V, T, R>(&self, body: &[u8]) -> Vec<Update<K, V, T, R>>
    where
        K: PagedData,
        V: PagedData,
        T: PagedData,
        R: PagedData,
    {
        let (n, column) = (self.len, |c: usize| &body[self.span(c)]);
        let (keys, vals, times, diffs) = (column(0), column(2), column(3), column(4));
        // A column of one value (all records alike) is decoded once and cloned.
        let time = (self.one_time).then(|| column_values::<T>(times, 1).next().expect("a time"));
        let diff = (self.one_diff).then(|| column_values::<R>(diffs, 1).next().expect("a diff"));
        let mut times = column_values::<T>(times, if time.is_some() { 0 } else { n });
        let mut diffs = column_values::<R>(diffs, if diff.is_some() { 0 } else { n });
        let mut keys = column_values::<K>(keys, self.keys);
        // Record by record (`extend` over a sized iterator: no capacity check a record), taking
        // the next key where the last one's run ends.
        let (mut k, mut end, mut key) = (0, 0, None);
        let mut vec = Vec::with_capacity(n);
        vec.extend(column_values::<V>(vals, n).enumerate().map(|(i, val)| {
            if i == end {
                key = keys.next();
                end = self.key_end(body, k);
                k += 1;
            }
            let t = match &time {
                Some(t) => t.clone(),
                None => times.next().expect("a time a record"),
            };
            let r = match &diff {
                Some(r) => r.clone(),
                None => diffs.next().expect("a diff a record"),
            };
            ((key.clone().expect("a key a run"), val), t, r)
        }));
        debug_assert_eq!(vec.len(), n);
        vec
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<K, V, T, R>(records: Vec<Update<K, V, T, R>>) -> Layout
    where
        K: PagedData + std::fmt::Debug,
        V: PagedData + std::fmt::Debug,
        T: PagedData + std::fmt::Debug,
        R: PagedData + std::fmt::Debug,
    {
        let (layout, ends) = Layout::measure(&records);
        let mut body = vec![0u8; layout.bytes()];
        layout.write(&records, &ends, &mut body);
        assert_eq!(layout.decode::<K, V, T, R>(&body), records);
        let mut i = 0;
        for k in 0..layout.keys {
            assert_eq!(layout.key_start(&body, k), i);
            let key = K::decode(&body[layout.key::<K>(&body, k)]);
            while i < layout.key_end(&body, k) {
                assert_eq!(records[i].0 .0, key);
                assert_eq!(V::decode(&body[layout.val::<V>(&body, i)]), records[i].0 .1);
                assert_eq!(T::decode(&body[layout.time::<T>(&body, i)]), records[i].1);
                assert_eq!(R::decode(&body[layout.diff::<R>(&body, i)]), records[i].2);
                i += 1;
            }
        }
        assert_eq!(i, records.len());
        layout
    }

    #[test]
    fn keys_are_stored_once_and_constant_columns_once() {
        let records: Vec<Update<u64, u64, u64, i64>> =
            (0..1000u64).map(|i| ((i / 4, i), 7, 1)).collect();
        let layout = round_trip(records);
        assert_eq!(layout.keys, 250);
        assert!(layout.one_per_val);
        // 250 keys, 250 ends, 1000 vals, one time, one diff.
        assert_eq!(layout.bytes(), 250 * 8 + 250 * 4 + 1000 * 8 + 8 + 8);
    }

    #[test]
    fn distinct_keys_need_no_ends_and_varying_columns_are_full() {
        let records: Vec<Update<u64, u32, u64, i64>> = (0..100u64)
            .map(|i| ((i, 1), i % 3, 1 - 2 * (i as i64 % 2)))
            .collect();
        let layout = round_trip(records);
        assert_eq!(layout.bytes(), 100 * 8 + 100 * 4 + 100 * 8 + 100 * 8);
    }

    #[test]
    fn variable_length_columns_round_trip() {
        let records: Vec<Update<String, Vec<u8>, u64, i64>> = vec![
            (("".into(), vec![]), 0, 1),
            (("a".into(), vec![1]), 0, 1),
            (("a".into(), vec![1, 2]), 1, 1),
            (("a".into(), vec![1, 2]), 2, 1),
            (("héllo".into(), vec![0; 300]), 0, 2),
        ];
        let layout = round_trip(records);
        assert_eq!(layout.keys, 3);
        assert!(!layout.one_per_val);
        round_trip::<String, String, u64, i64>(vec![(("k".into(), "v".into()), 3, -1)]);
    }
}
