//! Where a paged arrangement's updates live, level by level, and what merging each level
//! cost.
//!
//! A chunk's *level* is its depth: 0 for batcher output, one more than its deepest input for
//! a merge output (chunks a merge passes through keep theirs). A batch's level is that of its
//! deepest chunk. Levels deeper than [`LEVELS`]` - 1` share the last, as they share the pool's
//! last depth band; [`spillway_pool::Pool::level_stats`] gives the pool's side (resident and
//! extent bytes, writes, elisions and fault-ins per level).

use std::borrow::Borrow;
use std::cell::RefCell;
use std::time::Duration;

use differential_dataflow::difference::Semigroup;
use differential_dataflow::lattice::Lattice;
use differential_dataflow::trace::chunk::{Chunk, ChunkBatch};
use timely::progress::Timestamp;

use crate::chunk::PagedChunk;
use crate::data::PagedData;

/// Levels reported: the pool's depth bands.
pub const LEVELS: usize = spillway_pool::LEVELS;

/// The level of a depth.
pub fn level_of(depth: u8) -> usize {
    (depth as usize).min(LEVELS - 1)
}

/// One level of a trace: its batches (by their deepest chunk), chunks and records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpineLevel {
    pub batches: u64,
    pub chunks: u64,
    /// Of `chunks`, those whose body is in the pool (resident or evicted).
    pub pooled_chunks: u64,
    pub records: u64,
}

/// The levels of `batches` (for example a trace's `batches_through` the empty frontier).
pub fn spine_levels<B, K, V, T, R>(batches: &[B]) -> [SpineLevel; LEVELS]
where
    B: Borrow<ChunkBatch<PagedChunk<K, V, T, R>>>,
    K: PagedData,
    V: PagedData,
    T: PagedData + Lattice + Timestamp,
    R: PagedData + Semigroup,
{
    let mut levels = [SpineLevel::default(); LEVELS];
    for batch in batches {
        let chunks = &batch.borrow().chunks;
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

/// Time spent merging into one level, and the records the merges produced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MergeTime {
    pub time: Duration,
    pub records: u64,
}

thread_local! {
    /// This worker thread's merges, per output level.
    static MERGES: RefCell<[MergeTime; LEVELS]> = const {
        RefCell::new([MergeTime { time: Duration::ZERO, records: 0 }; LEVELS])
    };
}

/// The merges this thread ran into each level since it started or the last call (which it
/// resets), over every paged arrangement it maintains, paged or not. Batcher merges count at
/// level 0.
pub fn take_merge_times() -> [MergeTime; LEVELS] {
    MERGES.with(|m| std::mem::take(&mut *m.borrow_mut()))
}

/// Counts one merge step into `depth`.
pub(crate) fn record_merge(depth: u8, time: Duration, records: usize) {
    MERGES.with(|m| {
        let level = &mut m.borrow_mut()[level_of(depth)];
        level.time += time;
        level.records += records as u64;
    });
}
