//! What merging into each level cost on this worker thread.
//!
//! Every merge step of a paged chunk (`Chunk::merge`) adds its time and output records to a
//! per-thread counter for the level it writes ([`crate::level_of`] of its output depth;
//! batcher merges write depth 0). [`take_merge_times`] reads and resets this thread's
//! counters. The counters are thread-local, so they need no synchronisation and a worker
//! sees only its own merges, over every paged arrangement it maintains.

use std::cell::RefCell;
use std::time::Duration;

use crate::level::{level_of, LEVELS};

/// Time spent merging into one level, and the records those merges produced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct MergeTime {
    /// Wall-clock time of the merge steps into this level.
    pub time: Duration,
    /// Records those merge steps wrote.
    pub records: u64,
}

thread_local! {
    /// This worker thread's merges, per output level.
    static MERGES: RefCell<[MergeTime; LEVELS]> = const {
        RefCell::new([MergeTime { time: Duration::ZERO, records: 0 }; LEVELS])
    };
}

/// The merges this thread ran into each level (indexed by level) since the thread started or
/// since the last call, which resets them; over every paged arrangement the thread maintains,
/// paging or not. Batcher merges count at level 0.
pub fn take_merge_times() -> [MergeTime; LEVELS] {
    MERGES.with(|m| std::mem::take(&mut *m.borrow_mut()))
}

/// Counts one merge step that wrote `records` records at `depth` in `time`.
pub(crate) fn record_merge(depth: u8, time: Duration, records: usize) {
    MERGES.with(|m| {
        let level = &mut m.borrow_mut()[level_of(depth)];
        level.time += time;
        level.records += records as u64;
    });
}
