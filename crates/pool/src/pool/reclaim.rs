//! Reclaim: a freed chunk gives back its slot and extent once nothing needs it.
//!
//! Invariants: a chunk whose handle is gone (`freed`) is reclaimed exactly once, when it has
//! no pins and no running write or load (those reclaim it when they land); a queued write of
//! a freed chunk is cancelled, so a chunk freed before it was written costs no compression
//! and no I/O (*die-young elision*, counted in `writes_elided`); reclaiming bumps the entry's
//! generation, so jobs still naming the old chunk do nothing; the extent is released in the
//! store only after the state lock is dropped.

use super::state::{compact_queue, lock, Body, Shared, State};
use crate::spill::ChunkRef;
use crate::stats::bump;

impl Shared {
    /// Frees a chunk whose handle is gone once nothing else needs it: no pins, no running
    /// write or load; releases its slot and extent.
    pub(super) fn try_reclaim(&self, st: &mut State, id: u32) {
        let e = &mut st.entries[id as usize];
        if !e.freed || e.pins > 0 {
            return;
        }
        match e.body {
            // The running write or load reclaims the chunk when it lands.
            Body::Writing { running: true, .. } | Body::Loading { .. } => return,
            // A queued job will find a newer generation and do nothing; cancel_write comes
            // back here with the chunk unbacked-resident.
            Body::Writing { running: false, .. } => return self.cancel_write(st, id),
            _ => {}
        }
        let size = e.slot_bytes();
        let class = e.class as usize;
        let level = e.level();
        let was_queued = e.queued;
        let mut extent = None;
        match std::mem::replace(&mut e.body, Body::Vacant) {
            Body::Writing { .. } | Body::Loading { .. } => unreachable!("handled above"),
            Body::Resident { slot, extent: x } => {
                st.resident_bytes -= size;
                self.release_slot(st, class, slot);
                match x {
                    Some(x) => extent = Some(x),
                    None => {
                        bump(&self.counters.writes_elided, 1);
                        bump(&self.levels[level].writes_elided, 1);
                    }
                }
            }
            Body::Evicted { extent: x } => extent = Some(x),
            Body::Oversize { buf } => st.oversize_bytes -= buf.len() as u64,
            Body::Vacant => unreachable!("double free of chunk {id}"),
        }
        let e = &mut st.entries[id as usize];
        e.gen = e.gen.wrapping_add(1);
        e.freed = false;
        e.queued = false;
        st.vacant.push(id);
        st.live_chunks -= 1;
        st.to_free.extend(extent);
        if was_queued {
            st.stale[level] += 1;
            compact_queue(st, level);
        }
    }

    /// Frees the chunk `c` (its handle was dropped).
    pub(super) fn free(&self, c: ChunkRef) {
        let mut st = lock(&self.state);
        let e = &mut st.entries[c.0 as usize];
        debug_assert_eq!(e.gen, c.1, "stale chunk handle");
        e.freed = true;
        bump(&self.counters.frees, 1);
        self.try_reclaim(&mut st, c.0);
        self.wake(&st);
        self.unlock(st);
    }

    /// Drops one pin of chunk `id`; the last unpin of a freed chunk reclaims it.
    pub(super) fn unpin(&self, id: u32) {
        let mut st = lock(&self.state);
        let e = &mut st.entries[id as usize];
        e.pins -= 1;
        if e.pins == 0 {
            st.pinned_bytes -= e.pinned_bytes();
            if st.entries[id as usize].freed {
                self.try_reclaim(&mut st, id);
            }
            self.wake(&st);
            self.unlock(st);
        }
    }
}
