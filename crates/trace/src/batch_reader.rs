//! A batch of a paged trace read forward in key order, one chunk at a time: each chunk is
//! read at most once ([`PagedChunk::materialize`]: free when resident, one decode of a pooled
//! body), and kept until the reader moves past its last record. Seeks skip chunks by their
//! resident fence keys, so a chunk that cannot hold the key sought is never read.
//!
//! [`MergedBatches`] reads several batches together, merged by key. Shared by the paged
//! reduce (each side of a retire: it seeks the keys it visits and drains their updates) and
//! the vectored join's fresh side (which takes the batches' records in key order).

use std::rc::Rc;

use differential_dataflow::difference::Semigroup;
use differential_dataflow::lattice::Lattice;
use differential_dataflow::trace::chunk::ChunkBatch;
use timely::progress::Timestamp;

use crate::chunk::PagedChunk;
use crate::data::PagedData;
use crate::records::{gallop, Records};

/// A batch of a paged trace.
pub(crate) type Batch<K, V, T, R> = Rc<ChunkBatch<PagedChunk<K, V, T, R>>>;

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
            let chunk = self.batch.chunks.get(self.chunk)?;
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
            let Some(chunk) = self.batch.chunks.get(self.chunk) else {
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
