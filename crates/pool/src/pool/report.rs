//! Reports: the pool's [`PoolStats`] snapshot and its per-level [`LevelStats`].
//!
//! Invariant: a report only reads. Store calls are made before the state lock is taken (they
//! may block on the store's own locks), and the gauges come from one state-lock section, so
//! they are consistent with each other.

use std::sync::atomic::Ordering;

use super::handle::Pool;
use super::state::{lock, Body, Shared};
use crate::stats::{read, LevelStats, PoolStats, StatsSource};

impl Pool {
    /// Statistics per level (the depth hint, clamped to `LEVELS - 1`), deepest last: where the pool's bytes live, and
    /// what each level cost in writes, elisions and fault-ins. Takes the state lock once and
    /// walks every chunk: for reports, not for hot paths.
    pub fn level_stats(&self) -> Vec<LevelStats> {
        let sh = &self.shared;
        let mut out: Vec<LevelStats> = sh
            .levels
            .iter()
            .map(|c| LevelStats {
                chunks_written: read(&c.chunks_written),
                extent_bytes_written: read(&c.extent_bytes_written),
                writes_elided: read(&c.writes_elided),
                fault_ins: read(&c.fault_ins),
                ..LevelStats::default()
            })
            .collect();
        let st = lock(&sh.state);
        for e in &st.entries {
            let (holds_slot, extent) = match &e.body {
                Body::Vacant => continue,
                Body::Resident { extent, .. } => (true, *extent),
                Body::Writing { .. } => (true, None),
                Body::Loading { extent, .. } => (true, Some(*extent)),
                Body::Evicted { extent } => (false, Some(*extent)),
                Body::Oversize { .. } => (false, None),
            };
            let level = &mut out[e.level()];
            level.chunks += 1;
            if holds_slot {
                level.resident_bytes += e.slot_bytes();
            }
            if let Some(extent) = extent {
                level.extent_bytes += extent.meta.padded_len() as u64;
            }
        }
        out
    }
}

impl StatsSource for Shared {
    fn snapshot(&self) -> PoolStats {
        // Store calls stay outside the state lock (they may block on the store's own locks).
        let store = self.store.counters();
        let extent_bytes_live = self.store.live_bytes();
        let st = lock(&self.state);
        PoolStats {
            live_chunks: st.live_chunks,
            resident_bytes: st.resident_bytes,
            peak_resident_bytes: st.peak_resident_bytes,
            pinned_bytes: st.pinned_bytes,
            warm_bytes: st.warm_bytes,
            oversize_bytes: st.oversize_bytes,
            budget_bytes: self.budget(),
            extent_bytes_live,
            spill_in_flight: st.writes_in_flight,
            writes_disabled: self.writes_disabled.load(Ordering::Relaxed) as u64,
            holes_punched: store.holes_punched,
            extent_bytes_filled: store.fill_bytes,
            pageout_retries: store.pageout_retries,
            pageout_declined: store.pageout_declined,
            ..self.counters.load()
        }
    }
}
