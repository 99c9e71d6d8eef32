//! Levels: a chunk's depth, as reports count it.
//!
//! A chunk carries a *depth* hint: 0 for batcher output, one more than its deepest input for a
//! merge output (a chunk a merge passes through whole keeps its own). Wherever spillway
//! reports per depth it says *level*: level `l` holds the chunks of depth `l`, and every depth
//! from [`LEVELS`]` - 1` on shares the last level, as it does in the pool (which tracks
//! `spillway_pool::LEVELS` levels and evicts deeper ones first). [`level_of`] is that mapping and the only one: the
//! trace's reports ([`crate::spine_levels`], [`crate::take_merge_times`]) and the pool's
//! (`Pool::level_stats`) index the same levels.

/// How many levels there are: the pool's. Per-level reports are arrays of this
/// length, indexed by level.
pub const LEVELS: usize = spillway_pool::LEVELS;

/// The level of a chunk of `depth` (see the module docs): `depth`, or `LEVELS - 1` for deeper.
pub fn level_of(depth: u8) -> usize {
    (depth as usize).min(LEVELS - 1)
}
