//! What a caller says about a chunk ([`ChunkHints`]) and what it can observe of it
//! ([`ChunkState`]).
//!
//! Invariant: hints are fixed at insert and never change; they steer eviction order (the
//! depth) and backing (when and how the chunk is written), never correctness.

use crate::codec::Compression;

/// Number of levels the pool tracks separately (eviction queues, [`crate::LevelStats`]): a
/// chunk's level is its depth hint; deeper chunks share the last level, `LEVELS - 1`.
pub const LEVELS: usize = 16;

/// When a chunk should be written to an extent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backing {
    /// Only when budget pressure evicts it (die-young chunks are then never written).
    #[default]
    Lazy,
    /// As soon as a spill thread is idle; the chunk stays resident, and its eviction later is
    /// a page release. For long-lived chunks.
    Eager,
}

/// What the caller knows about a chunk, used by eviction and backing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChunkHints {
    /// Age of the data: 0 for fresh runs, growing with each merge. Deeper is evicted first.
    pub depth: u8,
    /// When to write the chunk.
    pub backing: Backing,
    /// How to store it.
    pub compression: Compression,
}

impl ChunkHints {
    /// Hints with the given depth, lazy backing and lz4.
    pub fn depth(depth: u8) -> Self {
        ChunkHints {
            depth,
            ..Self::default()
        }
    }

    /// The same hints with eager backing.
    pub fn eager(self) -> Self {
        ChunkHints {
            backing: Backing::Eager,
            ..self
        }
    }

    /// The same hints, stored uncompressed.
    pub fn raw(self) -> Self {
        ChunkHints {
            compression: Compression::Raw,
            ..self
        }
    }

    /// The level the chunk is queued and counted in: its depth, clamped to `LEVELS - 1`.
    pub(crate) fn level(&self) -> usize {
        (self.depth as usize).min(LEVELS - 1)
    }
}

/// The observable state of a chunk (see the [pool module docs](crate::Pool) for the
/// transitions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkState {
    /// In a slot, with no extent: evicting it costs a compression and a write.
    UnbackedResident,
    /// In a slot, its write queued or under way.
    WriteInFlight,
    /// In a slot, with an extent: evicting it is a page release, no I/O.
    BackedResident,
    /// Being read back from its extent into a slot.
    Loading,
    /// Only in its extent; a pin faults it back in.
    Evicted,
    /// Longer than the largest slot: on the heap, outside the budget, never evicted.
    Oversize,
}
