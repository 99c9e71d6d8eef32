//! Eviction: resident chunks leave their slots, deepest first.
//!
//! `BackedResident → Evicted` is a page release on the spot (*cheap eviction*, no I/O);
//! `UnbackedResident → WriteInFlight` queues the chunk for the compressors, or returns it to
//! be written inline by the evicting thread when the spill queue is full (see `land` for how
//! the write ends).
//!
//! Invariants: a pass runs under the state lock, so it is single-flight; it never evicts a
//! pinned chunk; a chunk referenced since the last pass (pinned, or touched while written)
//! gets a second chance: the pass clears the mark and skips it once. Resident chunks sit in
//! FIFO queues, one per level (the depth hint, clamped to `LEVELS - 1`); the pass scans the
//! deepest (oldest) level first and examines each queue entry at most twice.

use std::time::Duration;

use super::handle::Pool;
use super::hints::LEVELS;
use super::state::{lock, Body, Shared, State};
use crate::spill::ChunkRef;
use crate::stats::bump;

impl Pool {
    /// Evicts until at most `target` bytes are resident (or only pinned chunks remain), and
    /// waits for the writes. For memory-pressure handling and tests; does not change the
    /// budget.
    pub fn evict_to(&self, target: u64) {
        let sh = &self.shared;
        sh.probe_writes();
        let mut st = lock(&sh.state);
        loop {
            let inline = sh.evict_pass(&mut st, target, true);
            if !inline.is_empty() {
                drop(st);
                sh.write_inline(inline);
                st = lock(&sh.state);
                continue;
            }
            if st.resident_bytes <= target || st.pending_evict_bytes == 0 {
                break;
            }
            st = sh
                .changed
                .wait_timeout(st, Duration::from_millis(50))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

impl Shared {
    /// One eviction pass towards `resident - pending ≤ target`, deepest level first, second
    /// chance within a level. Backed chunks are released at once; unbacked ones are queued for
    /// spill threads, or returned to be written inline when the queue is full. Without
    /// `allow_writes` only backed chunks are evicted (no compression, no I/O).
    pub(super) fn evict_pass(
        &self,
        st: &mut State,
        target: u64,
        allow_writes: bool,
    ) -> Vec<ChunkRef> {
        let mut inline = Vec::new();
        let can_write = allow_writes && self.writes_open();
        for level in (0..LEVELS).rev() {
            let mut budget_examined = st.queues[level].len() * 2;
            while st.resident_bytes - st.pending_evict_bytes > target && budget_examined > 0 {
                budget_examined -= 1;
                let Some((id, gen)) = st.queues[level].pop_front() else {
                    break;
                };
                let e = &mut st.entries[id as usize];
                if e.gen != gen {
                    continue;
                }
                let size = e.slot_bytes();
                let keep;
                match &mut e.body {
                    Body::Resident { .. } | Body::Writing { evict: false, .. }
                        if e.pins > 0 || e.referenced =>
                    {
                        e.referenced = false;
                        keep = true;
                    }
                    Body::Resident {
                        slot,
                        extent: Some(extent),
                    } => {
                        let (slot, extent) = (*slot, *extent);
                        e.body = Body::Evicted { extent };
                        e.queued = false;
                        let class = e.class as usize;
                        st.resident_bytes -= size;
                        self.release_slot(st, class, slot);
                        bump(&self.counters.evictions_cheap, 1);
                        continue;
                    }
                    Body::Resident { slot, extent: None } => {
                        if !can_write {
                            keep = true;
                        } else {
                            let running = !self.queue.try_write((id, gen));
                            e.body = Body::Writing {
                                slot: *slot,
                                evict: true,
                                running,
                            };
                            e.queued = false;
                            st.pending_evict_bytes += size;
                            st.writes_in_flight += 1;
                            if running {
                                inline.push((id, gen));
                            } else {
                                bump(&self.counters.spill_scheduled, 1);
                            }
                            continue;
                        }
                    }
                    Body::Writing { evict: false, .. } if !allow_writes => keep = true,
                    Body::Writing { evict, .. } => {
                        if !*evict {
                            *evict = true;
                            st.pending_evict_bytes += size;
                        }
                        e.queued = false;
                        continue;
                    }
                    _ => {
                        e.queued = false;
                        continue;
                    }
                }
                if keep {
                    st.queues[level].push_back((id, gen));
                }
            }
        }
        inline
    }

    /// Writes chunks the spill queue could not take, on this thread, one writer at a time.
    pub(super) fn write_inline(&self, chunks: Vec<ChunkRef>) {
        let mut encoder = lock(&self.inline);
        for c in chunks {
            if let Some(meta) = self.encode_chunk(c, &mut encoder) {
                bump(&self.counters.inline_writes, 1);
                self.store_and_land(c, meta, &encoder);
            }
        }
    }
}
