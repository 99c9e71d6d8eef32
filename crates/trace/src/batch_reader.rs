//! A batch of a paged trace read forward in key order, one chunk at a time: each chunk is
//! read at most once ([`PagedChunk::materialize`]: free for rows, one decode of a columnar
//! (packed or pooled) body), and kept until the reader moves past its last record. Seeks skip chunks by their
//! resident fence keys, so a chunk that cannot hold the key sought is never read.
//!
//! [`MergedBatches`] reads several batches together, merged by key. Shared by the paged
//! reduce (each side of a retire: it seeks the keys it visits and drains their updates) and
//! the vectored join's fresh side (which takes the batches' records in key order).

use std::rc::Rc;

use differential_dataflow::difference::Semigroup;
use differential_dataflow::lattice::Lattice;
use timely::progress::Timestamp;

use crate::batch::PagedBatch;
use crate::data::PagedData;
use crate::records::{gallop, Records};

/// A batch of a paged trace.
pub(crate) type Batch<K, V, T, R> = Rc<PagedBatch<K, V, T, R>>;

/// One batch read forward in key order (see the module docs).
pub(crate) struct BatchReader<K, V, T, R>
where
    K: PagedData,
    V: PagedData,
    T: PagedData + Lattice + Timestamp,
    R: PagedData + Semigroup,
{
    batch: Batch<K, V, T, R>,
    /// The current chunk.
    chunk: usize,
    /// The current chunk's records, once read.
    body: Option<Records<K, V, T, R>>,
    /// The next unread record of `body`.
    at: usize,
}

impl<K, V, T, R> BatchReader<K, V, T, R>
where
    K: PagedData,
    V: PagedData,
    T: PagedData + Lattice + Timestamp,
    R: PagedData + Semigroup,
{
    /// A reader before the first record of `batch`.
    pub(crate) fn new(batch: Batch<K, V, T, R>) -> Self {
        BatchReader {
            batch,
            chunk: 0,
            body: None,
            at: 0,
        }
    }

    /// The next unread record (reading its chunk), if any.
    pub(crate) fn head(&mut self) -> Option<&((K, V), T, R)> {
        loop {
            if let Some(body) = &self.body {
                if self.at < body.len() {
                    break;
                }
                self.body = None;
                self.chunk += 1;
                self.at = 0;
            }
            let chunk = self.batch.chunks().get(self.chunk)?;
            self.body = Some(chunk.materialize());
        }
        self.body.as_ref().map(|b| &b.as_slice()[self.at])
    }

    /// Moves past the record [`BatchReader::head`] returned.
    pub(crate) fn step(&mut self) {
        self.at += 1;
    }

    /// Moves to the first record whose key is at least `key`, reading a chunk only when its
    /// fences say it may hold `key`; true if that record's key is `key`.
    pub(crate) fn seek(&mut self, key: &K) -> bool {
        loop {
            if let Some(body) = &self.body {
                let s = body.as_slice();
                if self.at < s.len() && s[s.len() - 1].0 .0 >= *key {
                    self.at = gallop(s, self.at, |u| u.0 .0 < *key);
                    return s[self.at].0 .0 == *key;
                }
                self.body = None;
                self.chunk += 1;
                self.at = 0;
                continue;
            }
            let Some(chunk) = self.batch.chunks().get(self.chunk) else {
                return false;
            };
            let ((first, _, _), (last, _, _)) = chunk.fences();
            if last < key {
                self.chunk += 1;
                continue;
            }
            if first > key {
                return false;
            }
            self.body = Some(chunk.materialize());
            self.at = 0;
        }
    }

    /// Appends the updates of `key` to `out` and moves past them; true if there were any.
    pub(crate) fn drain_key(&mut self, key: &K, out: &mut Vec<(V, T, R)>) -> bool {
        let mut found = false;
        while self.seek(key) {
            found = true;
            let s = self.body.as_ref().expect("seek read the chunk").as_slice();
            let mut at = self.at;
            while at < s.len() && s[at].0 .0 == *key {
                let ((_, v), t, r) = &s[at];
                out.push((v.clone(), t.clone(), r.clone()));
                at += 1;
            }
            self.at = at;
        }
        found
    }
}

/// Several batches read forward together, merged by key: each by its own [`BatchReader`].
pub(crate) struct MergedBatches<K, V, T, R>
where
    K: PagedData,
    V: PagedData,
    T: PagedData + Lattice + Timestamp,
    R: PagedData + Semigroup,
{
    /// One reader per batch.
    pub(crate) readers: Vec<BatchReader<K, V, T, R>>,
}

impl<K, V, T, R> MergedBatches<K, V, T, R>
where
    K: PagedData,
    V: PagedData,
    T: PagedData + Lattice + Timestamp,
    R: PagedData + Semigroup,
{
    /// Readers before the first record of each of `batches`.
    pub(crate) fn new(batches: Vec<Batch<K, V, T, R>>) -> Self {
        MergedBatches {
            readers: batches.into_iter().map(BatchReader::new).collect(),
        }
    }

    /// The least key not yet read, if any.
    pub(crate) fn head(&mut self) -> Option<K> {
        self.readers
            .iter_mut()
            .filter_map(|r| r.head().map(|u| &u.0 .0))
            .min()
            .cloned()
    }

    /// Appends the updates of `key` to `out`, sorted by value (times in no particular order);
    /// returns how many batches held some.
    pub(crate) fn drain_key(&mut self, key: &K, out: &mut Vec<(V, T, R)>) -> usize {
        let mut batches = 0;
        for reader in &mut self.readers {
            batches += usize::from(reader.drain_key(key, out));
        }
        if batches > 1 {
            out.sort_by(|x, y| x.0.cmp(&y.0));
        }
        batches
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type U = ((u64, u64), u64, isize);

    /// A batch of resident chunks of `per_chunk` records each, from sorted `records`.
    fn batch(records: &[U], per_chunk: usize) -> Batch<u64, u64, u64, isize> {
        let chunks = records
            .chunks(per_chunk)
            .map(|c| crate::PagedChunk::from_records(c.to_vec()))
            .collect();
        Rc::new(PagedBatch::new(chunks))
    }

    /// Sorted, distinct records: keys `key(i)` for `i` in `0..n`, two values each.
    fn records(n: u64, key: impl Fn(u64) -> u64) -> Vec<U> {
        let mut out: Vec<U> = (0..n)
            .flat_map(|i| [((key(i), 1), i, 1), ((key(i), 2), i, -1)])
            .collect();
        out.sort();
        out
    }

    #[test]
    fn head_and_step_read_every_record_in_order() {
        let all = records(50, |i| i * 3);
        let mut reader = BatchReader::new(batch(&all, 7));
        let mut read = Vec::new();
        while let Some(u) = reader.head() {
            read.push(*u);
            reader.step();
        }
        assert_eq!(read, all);
    }

    #[test]
    fn merged_batches_drain_every_key_once_in_key_order() {
        let (a, b) = (records(40, |i| i * 2), records(30, |i| i * 3 + 1));
        let mut merged = MergedBatches::new(vec![batch(&a, 5), batch(&b, 4)]);
        let mut expected: Vec<u64> = a.iter().chain(&b).map(|u| u.0 .0).collect();
        expected.sort();
        expected.dedup();
        let mut keys = Vec::new();
        while let Some(key) = merged.head() {
            let mut out = Vec::new();
            let batches = merged.drain_key(&key, &mut out);
            let want: Vec<(u64, u64, isize)> = a
                .iter()
                .chain(&b)
                .filter(|u| u.0 .0 == key)
                .map(|&((_, v), t, r)| (v, t, r))
                .collect();
            let holding = [&a, &b]
                .iter()
                .filter(|run| run.iter().any(|u| u.0 .0 == key))
                .count();
            assert_eq!(batches, holding, "key {key}");
            let mut got = out.clone();
            got.sort();
            let mut want = want;
            want.sort();
            assert_eq!(got, want, "key {key}");
            assert!(out.windows(2).all(|w| w[0].0 <= w[1].0), "sorted by value");
            keys.push(key);
        }
        assert_eq!(keys, expected);
    }

    #[test]
    fn seek_skips_to_the_key_and_reports_absent_keys() {
        let all = records(60, |i| i * 5);
        let mut reader = BatchReader::new(batch(&all, 6));
        assert!(reader.seek(&100));
        assert_eq!(reader.head().map(|u| u.0 .0), Some(100));
        assert!(!reader.seek(&101), "no key 101");
        assert_eq!(reader.head().map(|u| u.0 .0), Some(105));
        let mut out = Vec::new();
        assert!(reader.drain_key(&105, &mut out));
        assert_eq!(out.len(), 2);
        assert!(!reader.drain_key(&1_000, &mut out));
        assert!(reader.head().is_none());
    }
}
