//! Where a paged arrangement's updates live, level by level.
//!
//! [`spine_levels`] counts a trace's batches, chunks and records per level, from the chunks'
//! resident metadata only (it reads no body and takes no pin). A batch's level is that of its
//! deepest chunk; a chunk's is [`crate::level_of`] its depth. The pool's side of the same
//! levels (resident and extent bytes, writes, elisions, fault-ins) is
//! `spillway_pool::Pool::level_stats`, and the merge cost per level
//! [`crate::take_merge_times`].

use std::borrow::Borrow;

use differential_dataflow::difference::Semigroup;
use differential_dataflow::lattice::Lattice;
use differential_dataflow::trace::chunk::Chunk;
use timely::progress::Timestamp;

use crate::batch::PagedBatch;
use crate::chunk::PagedChunk;
use crate::data::PagedData;
use crate::level::{level_of, LEVELS};

/// One level of a trace: how many of its batches, chunks and records sit at this level.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SpineLevel {
    /// Batches whose deepest chunk is at this level.
    pub batches: u64,
    /// Chunks at this level (of any batch).
    pub chunks: u64,
    /// Of `chunks`, those whose body is in the pool (resident in a slot or evicted to an
    /// extent); the others are resident on the heap.
    pub pooled_chunks: u64,
    /// Records in `chunks`.
    pub records: u64,
}

/// The levels of `batches`, indexed by level: for example a trace's `batches_through` the
/// empty frontier, to census the whole trace. Reads only resident metadata.
pub fn spine_levels<B, K, V, T, R>(batches: &[B]) -> [SpineLevel; LEVELS]
where
    B: Borrow<PagedBatch<K, V, T, R>>,
    K: PagedData,
    V: PagedData,
    T: PagedData + Lattice + Timestamp,
    R: PagedData + Semigroup,
{
    let mut levels = [SpineLevel::default(); LEVELS];
    for batch in batches {
        let chunks = batch.borrow().chunks();
        if let Some(deepest) = chunks.iter().map(PagedChunk::depth).max() {
            levels[level_of(deepest)].batches += 1;
        }
        for chunk in chunks {
            let level = &mut levels[level_of(chunk.depth())];
            level.chunks += 1;
            level.pooled_chunks += u64::from(chunk.is_pooled());
            level.records += chunk.len() as u64;
        }
    }
    levels
}
