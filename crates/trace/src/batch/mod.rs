//! [`PagedBatch`]: the batch of a paged trace, an ordered sequence of [`PagedChunk`]s, with
//! what lets it be read by cursor without looking at its chunks' bounds on every step.
//!
//! Invariant: a batch's chunks are non-empty, sorted and consolidated as one sequence (their
//! concatenation is the batch), and `spills[c]` says truly whether the last key (and the last
//! `(key, val)`) of chunk `c` continues at the start of chunk `c + 1`. The chunks are fixed
//! when the batch is made (batches are immutable), and so are the flags, but for one case
//! answered on first need and then kept: a key that continues where a fence val is too wide
//! to keep resident, so whether the val continues too is read from the bodies.
//!
//! Upstream's chunk harness does trace maintenance. A [`PagedBatch`] holds differential's
//! `ChunkBatch`, its merger ([`PagedMerger`]) drives upstream's `ChunkBatchMerger`, and its
//! builder ([`PagedBuilder`], also the batcher's sealer) drives upstream's
//! `ChunkBatchBuilder`; each only wraps the batch it makes. What is ours is the cursor
//! ([`cursor`]): upstream's `ChunkBatchCursor` asks both neighbouring chunks' bounds whether
//! the current key or `(key, val)` spills, up to four times per `(key, val)` of a scan, and
//! checks an `Option` on every call; two thirds of a paging-off scan's instructions were
//! spent there (stop 13's callgrind counts: 555 instructions per record against 193 for the
//! chunk cursors alone). Ours reads the spill, answered once per boundary here, only at
//! the last key or `(key, val)` of a chunk.

mod cursor;

use std::cell::Cell;

use differential_dataflow::difference::Semigroup;
use differential_dataflow::lattice::Lattice;
use differential_dataflow::trace::chunk::{ChunkBatch, ChunkBatchBuilder, ChunkBatchMerger};
use differential_dataflow::trace::implementations::spine_fueled::{Merger, SpineBatch};
use differential_dataflow::trace::{Builder, Navigable};
use timely::progress::frontier::AntichainRef;
use timely::progress::Timestamp;

use crate::chunk::PagedChunk;
use crate::data::{equal, PagedData};

pub use cursor::PagedBatchCursor;

/// Whether the records at the end of a chunk continue at the start of the next one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Spill {
    /// The next chunk starts with another key (or there is no next chunk).
    None,
    /// The next chunk starts with the same key, at another val.
    Key,
    /// The next chunk starts with the same `(key, val)`.
    Val,
    /// The next chunk starts with the same key; whether with the same val is not known yet (a
    /// fence val is too wide to keep resident): read from the bodies when first asked, then
    /// `Key` or `Val`.
    KeyMaybeVal,
}

/// A batch of a paged trace: ordered, non-empty [`PagedChunk`]s, and whether each chunk's
/// last key or `(key, val)` continues into the next (see the module docs).
pub struct PagedBatch<K, V, T, R>
where
    K: PagedData,
    V: PagedData,
    T: PagedData + Lattice + Timestamp,
    R: PagedData + Semigroup,
{
    inner: ChunkBatch<PagedChunk<K, V, T, R>>,
    /// One per chunk: what continues from chunk `c` into chunk `c + 1` (`None` for the last).
    spills: Vec<Cell<Spill>>,
}

impl<K, V, T, R> PagedBatch<K, V, T, R>
where
    K: PagedData,
    V: PagedData,
    T: PagedData + Lattice + Timestamp,
    R: PagedData + Semigroup,
{
    /// A batch of `chunks`, which must be non-empty and, in order, one sorted and
    /// consolidated sequence. Reads only the chunks' resident fences.
    pub fn new(chunks: Vec<PagedChunk<K, V, T, R>>) -> Self {
        Self::from_inner(ChunkBatch::new(chunks))
    }

    fn from_inner(inner: ChunkBatch<PagedChunk<K, V, T, R>>) -> Self {
        let chunks = &inner.chunks;
        let spills = (0..chunks.len())
            .map(|c| match chunks.get(c + 1) {
                Some(next) => Cell::new(spill(&chunks[c], next)),
                None => Cell::new(Spill::None),
            })
            .collect();
        PagedBatch { inner, spills }
    }

    /// The batch's chunks, in order.
    pub fn chunks(&self) -> &[PagedChunk<K, V, T, R>] {
        &self.inner.chunks
    }
}

/// What continues from `chunk` into `next`, from their resident fences.
fn spill<K, V, T, R>(chunk: &PagedChunk<K, V, T, R>, next: &PagedChunk<K, V, T, R>) -> Spill
where
    K: PagedData,
    V: PagedData,
    T: PagedData,
    R: PagedData,
{
    let ((_, _, _), (last_key, last_val, _)) = chunk.fences();
    let ((first_key, first_val, _), _) = next.fences();
    if !equal::<K>(last_key.item(), first_key.item()) {
        return Spill::None;
    }
    match (last_val, first_val) {
        (Some(a), Some(b)) if equal::<V>(a.item(), b.item()) => Spill::Val,
        (Some(_), Some(_)) => Spill::Key,
        _ => Spill::KeyMaybeVal,
    }
}

impl<K, V, T, R> SpineBatch for PagedBatch<K, V, T, R>
where
    K: PagedData,
    V: PagedData,
    T: PagedData + Lattice + Timestamp,
    R: PagedData + Semigroup,
{
    type Time = T;
    type Merger = PagedMerger<K, V, T, R>;
    fn len(&self) -> usize {
        self.inner.len()
    }
}

/// Merges two [`PagedBatch`]es a fuel-bounded step at a time: upstream's `ChunkBatchMerger`
/// (merge, advance to the compaction frontier, settle), wrapping the batch it makes.
pub struct PagedMerger<K, V, T, R>(ChunkBatchMerger<PagedChunk<K, V, T, R>>)
where
    K: PagedData,
    V: PagedData,
    T: PagedData + Lattice + Timestamp,
    R: PagedData + Semigroup;

impl<K, V, T, R> Merger<PagedBatch<K, V, T, R>> for PagedMerger<K, V, T, R>
where
    K: PagedData,
    V: PagedData,
    T: PagedData + Lattice + Timestamp,
    R: PagedData + Semigroup,
{
    fn new(
        source1: &PagedBatch<K, V, T, R>,
        source2: &PagedBatch<K, V, T, R>,
        frontier: AntichainRef<T>,
    ) -> Self {
        PagedMerger(ChunkBatchMerger::new(
            &source1.inner,
            &source2.inner,
            frontier,
        ))
    }
    fn work(
        &mut self,
        source1: &PagedBatch<K, V, T, R>,
        source2: &PagedBatch<K, V, T, R>,
        fuel: &mut isize,
    ) {
        self.0.work(&source1.inner, &source2.inner, fuel)
    }
    fn done(self) -> Option<PagedBatch<K, V, T, R>> {
        self.0.done().map(PagedBatch::from_inner)
    }
}

/// Builds [`PagedBatch`]es from chunks pushed in order (differential's `Builder`, as the
/// reduce's output builder), and seals the merge batcher's chains into them (its `Sealer`):
/// upstream's `ChunkBatchBuilder`, wrapping the batch it makes.
pub struct PagedBuilder<K, V, T, R>(ChunkBatchBuilder<PagedChunk<K, V, T, R>>)
where
    K: PagedData,
    V: PagedData,
    T: PagedData + Lattice + Timestamp,
    R: PagedData + Semigroup;

impl<K, V, T, R> Default for PagedBuilder<K, V, T, R>
where
    K: PagedData,
    V: PagedData,
    T: PagedData + Lattice + Timestamp,
    R: PagedData + Semigroup,
{
    fn default() -> Self {
        PagedBuilder(ChunkBatchBuilder::default())
    }
}

impl<K, V, T, R> Builder for PagedBuilder<K, V, T, R>
where
    K: PagedData,
    V: PagedData,
    T: PagedData + Lattice + Timestamp,
    R: PagedData + Semigroup,
{
    type Input = PagedChunk<K, V, T, R>;
    type Time = T;
    type Output = PagedBatch<K, V, T, R>;

    fn push(&mut self, chunk: &mut Self::Input) {
        self.0.push(chunk)
    }
    fn done(self) -> Option<Self::Output> {
        self.0.done().map(PagedBatch::from_inner)
    }
}

impl<K, V, T, R> differential_dataflow::batcher::merge::Sealer<PagedChunk<K, V, T, R>>
    for PagedBuilder<K, V, T, R>
where
    K: PagedData,
    V: PagedData,
    T: PagedData + Lattice + Timestamp,
    R: PagedData + Semigroup,
{
    type Output = PagedBatch<K, V, T, R>;

    fn seal(chain: &mut Vec<PagedChunk<K, V, T, R>>) -> Option<Self::Output> {
        <ChunkBatchBuilder<_> as differential_dataflow::batcher::merge::Sealer<_>>::seal(chain)
            .map(PagedBatch::from_inner)
    }
}

impl<K, V, T, R> Navigable for PagedBatch<K, V, T, R>
where
    K: PagedData,
    V: PagedData,
    T: PagedData + Lattice + Timestamp,
    R: PagedData + Semigroup,
{
    type Cursor = PagedBatchCursor<K, V, T, R>;
    fn cursor(&self) -> Self::Cursor {
        PagedBatchCursor::new(self)
    }
}
