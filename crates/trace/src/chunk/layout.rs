//! [`Layout`]: the columnar body of a sealed chunk, on the heap or in a pool slot.
//!
//! Invariant: a body written by [`Layout::write`] for a sorted, consolidated run of records
//! reads back ([`Layout::decode`], or item by item) as exactly that run, and every read is
//! bounds-checked against the offsets [`Layout::measure`] computed for it.
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

use crate::data::{column_len, item_range, write_column, PagedData};
use crate::records::Update;

/// Bytes of a key end.
const END: usize = 4;

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
}

impl Layout {
    /// The layout of the body of `records` (sorted by `((key, val), time)`, non-empty).
    pub fn measure<K, V, T, R>(records: &[Update<K, V, T, R>]) -> Layout
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
        let keys = distinct_keys(records).count();
        let one_time = records.iter().all(|r| r.1 == records[0].1);
        let one_diff = records.iter().all(|r| r.2 == records[0].2);
        let key_bytes = column_len(distinct_keys(records));
        let end_bytes = if keys == len { 0 } else { keys * END };
        let val_bytes = column_len(records.iter().map(|r| &r.0 .1));
        let time_bytes = column_len(
            records
                .iter()
                .take(if one_time { 1 } else { len })
                .map(|r| &r.1),
        );
        let diff_bytes = column_len(
            records
                .iter()
                .take(if one_diff { 1 } else { len })
                .map(|r| &r.2),
        );
        let mut offsets = [0; 6];
        for (c, bytes) in [key_bytes, end_bytes, val_bytes, time_bytes, diff_bytes]
            .into_iter()
            .enumerate()
        {
            offsets[c + 1] = offsets[c] + bytes;
        }
        Layout {
            len,
            keys,
            offsets,
            one_time,
            one_diff,
        }
    }

    /// Bytes of the body.
    pub fn bytes(&self) -> usize {
        self.offsets[5]
    }

    /// Writes the body of `records` (which this layout measured) into `out`, exactly
    /// [`Layout::bytes`] long.
    pub fn write<K, V, T, R>(&self, records: &[Update<K, V, T, R>], out: &mut [u8])
    where
        K: PagedData,
        V: PagedData,
        T: PagedData,
        R: PagedData,
    {
        debug_assert_eq!(out.len(), self.bytes());
        write_column(self.keys, distinct_keys(records), &mut out[self.span(0)]);
        if self.keys < self.len {
            let ends = &mut out[self.span(1)];
            let mut k = 0;
            for i in 1..=self.len {
                if i == self.len || records[i].0 .0 != records[i - 1].0 .0 {
                    ends[k * END..][..END].copy_from_slice(&(i as u32).to_le_bytes());
                    k += 1;
                }
            }
            debug_assert_eq!(k, self.keys);
        }
        write_column(
            self.len,
            records.iter().map(|r| &r.0 .1),
            &mut out[self.span(2)],
        );
        let times = if self.one_time { 1 } else { self.len };
        write_column(
            times,
            records.iter().take(times).map(|r| &r.1),
            &mut out[self.span(3)],
        );
        let diffs = if self.one_diff { 1 } else { self.len };
        write_column(
            diffs,
            records.iter().take(diffs).map(|r| &r.2),
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
        let mut vec = Vec::with_capacity(self.len);
        let time = self
            .one_time
            .then(|| T::decode(&body[self.time::<T>(body, 0)]));
        let diff = self
            .one_diff
            .then(|| R::decode(&body[self.diff::<R>(body, 0)]));
        let mut start = 0;
        for k in 0..self.keys {
            let key = K::decode(&body[self.key::<K>(body, k)]);
            let end = self.key_end(body, k);
            for i in start..end {
                let val = V::decode(&body[self.val::<V>(body, i)]);
                let t = match &time {
                    Some(t) => t.clone(),
                    None => T::decode(&body[self.time::<T>(body, i)]),
                };
                let r = match &diff {
                    Some(r) => r.clone(),
                    None => R::decode(&body[self.diff::<R>(body, i)]),
                };
                vec.push(((key.clone(), val), t, r));
            }
            start = end;
        }
        debug_assert_eq!(vec.len(), self.len);
        vec
    }
}

/// The distinct keys of sorted `records`, in order.
fn distinct_keys<K: PagedData, V, T, R>(
    records: &[Update<K, V, T, R>],
) -> impl Iterator<Item = &K> + '_ {
    records
        .iter()
        .enumerate()
        .filter(move |(i, r)| *i == 0 || records[i - 1].0 .0 != r.0 .0)
        .map(|(_, r)| &r.0 .0)
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
        let layout = Layout::measure(&records);
        let mut body = vec![0u8; layout.bytes()];
        layout.write(&records, &mut body);
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
            (("héllo".into(), vec![0; 300]), 0, 2),
        ];
        let layout = round_trip(records);
        assert_eq!(layout.keys, 3);
        round_trip::<String, String, u64, i64>(vec![(("k".into(), "v".into()), 3, -1)]);
    }
}
