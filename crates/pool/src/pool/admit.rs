//! Admission: how a chunk gets a slot (inserted as `UnbackedResident`, or faulted in), and
//! where freed slots go.
//!
//! Invariant, the budget identity: when [`Shared::reserve_room`] grants room,
//! `resident_bytes` (slot bytes of chunks holding a slot) plus the room is at most
//! `budget + min(pending, write_behind)`, where `pending` is the slot bytes of evictions whose
//! writes are in flight (they leave their slots when the writes land): every byte over the
//! budget is on its way out. The one exception is when nothing more is evictable (pins hold
//! the rest, writes are off, the store is full) and no write is in flight: then the room is
//! granted over budget and counted in `budget_overshoots`. Freed slots keep their
//! pages on a warm list up to the warm cap, beyond it they are released (cold list), so the
//! pool holds at most `budget + write_behind + warm cap + overshoot`, plus oversize chunks.
//! While writes are closed, the overshoot is the unbacked chunks that cannot leave plus at
//! most one budget of backed ones (so reads do not thrash against the stuck data).

use std::sync::MutexGuard;

use super::handle::{ChunkHandle, Pool};
use super::hints::{Backing, ChunkHints};
use super::slot_view::fill_slot;
use super::state::{lock, Body, Shared, State, OVERSIZE};
use crate::aligned::AlignedBuf;
use crate::slot::{slot_class_of, slot_size, SLOT_CLASSES};
use crate::stats::bump;

impl Pool {
    /// Inserts a chunk of `len` bytes, letting `fill` write the body straight into its slot
    /// (no staging copy). Waits for room in the budget first (see the module docs). `fill`
    /// receives exactly `len` bytes, which may hold stale data: it must write all of them.
    pub fn insert_with(
        &self,
        len: usize,
        hints: ChunkHints,
        fill: impl FnOnce(&mut [u8]),
    ) -> ChunkHandle {
        let sh = &self.shared;
        let Some(class) = slot_class_of(len) else {
            return self.insert_oversize(len, hints, fill);
        };
        let size = slot_size(class) as u64;
        let st = lock(&sh.state);
        let (mut st, _) = sh.reserve_room(st, size, true);
        let Some(slot) = sh.take_slot(&mut st, class) else {
            drop(st);
            return self.insert_oversize(len, hints, fill);
        };
        sh.add_resident(&mut st, size);
        drop(st);

        // Give the slot back if `fill` panics.
        struct SlotGuard<'a> {
            sh: &'a Shared,
            class: usize,
            slot: u32,
            armed: bool,
        }
        impl Drop for SlotGuard<'_> {
            fn drop(&mut self) {
                if self.armed {
                    let mut st = lock(&self.sh.state);
                    st.resident_bytes -= slot_size(self.class) as u64;
                    self.sh.release_slot(&mut st, self.class, self.slot);
                    self.sh.wake(&st);
                }
            }
        }
        let mut guard = SlotGuard {
            sh,
            class,
            slot,
            armed: true,
        };
        // The slot was just taken off the free lists: this thread is its only owner.
        fill_slot(&sh.regions[class], slot, len, fill);
        guard.armed = false;

        let mut st = lock(&sh.state);
        let id = sh.new_entry(
            &mut st,
            len,
            class as u8,
            hints,
            Body::Resident { slot, extent: None },
        );
        bump(&sh.counters.inserts, 1);
        drop(st);
        if hints.backing == Backing::Eager {
            sh.queue.try_eager(id);
        }
        ChunkHandle::new(&self.shared, id, len)
    }

    /// Inserts a copy of `bytes`.
    pub fn insert(&self, bytes: &[u8], hints: ChunkHints) -> ChunkHandle {
        self.insert_with(bytes.len(), hints, |dst| dst.copy_from_slice(bytes))
    }

    fn insert_oversize(
        &self,
        len: usize,
        hints: ChunkHints,
        fill: impl FnOnce(&mut [u8]),
    ) -> ChunkHandle {
        let sh = &self.shared;
        let mut buf = AlignedBuf::with_capacity(len.max(1));
        buf.resize(len);
        fill(buf.as_mut_slice());
        let mut st = lock(&sh.state);
        st.oversize_bytes += len as u64;
        let id = sh.new_entry(&mut st, len, OVERSIZE, hints, Body::Oversize { buf });
        bump(&sh.counters.inserts, 1);
        bump(&sh.counters.oversize_chunks, 1);
        ChunkHandle::new(&self.shared, id, len)
    }
}

/// Slot bytes of resident chunks with no extent: what cannot leave while writes are closed.
fn unbacked_resident_bytes(st: &State) -> u64 {
    st.entries
        .iter()
        .filter(|e| matches!(e.body, Body::Resident { extent: None, .. }))
        .map(|e| e.slot_bytes())
        .sum()
}

impl Shared {
    /// Counts `bytes` more as resident.
    pub(super) fn add_resident(&self, st: &mut State, bytes: u64) {
        st.resident_bytes += bytes;
        st.peak_resident_bytes = st.peak_resident_bytes.max(st.resident_bytes);
    }

    /// A free slot of `class` (warm first, then cold, then a never-used one); `None` when the
    /// class's address range is exhausted.
    pub(super) fn take_slot(&self, st: &mut State, class: usize) -> Option<u32> {
        let size = slot_size(class) as u64;
        let slots = &mut st.classes[class];
        if let Some(s) = slots.warm.pop() {
            st.warm_bytes -= size;
            return Some(s);
        }
        if let Some(s) = slots.cold.pop() {
            return Some(s);
        }
        if slots.next < self.regions[class].capacity() {
            slots.next += 1;
            return Some(slots.next - 1);
        }
        None
    }

    /// Returns a slot to the warm list (pages kept) or, past the warm cap, to the cold list
    /// (pages released).
    pub(super) fn release_slot(&self, st: &mut State, class: usize, slot: u32) {
        let size = slot_size(class) as u64;
        if self.config.poison_released_slots {
            self.regions[class].fill(slot, 0xDE);
        }
        if st.warm_bytes + size <= self.config.warm_cap_for(self.budget()) {
            st.warm_bytes += size;
            st.classes[class].warm.push(slot);
        } else {
            self.regions[class].release(slot);
            st.classes[class].cold.push(slot);
        }
    }

    /// Releases warm slots, largest class first, until the warm list is within its cap.
    pub(super) fn trim_warm(&self, st: &mut State) {
        let cap = self.config.warm_cap_for(self.budget());
        let mut class = SLOT_CLASSES;
        while st.warm_bytes > cap && class > 0 {
            class -= 1;
            while st.warm_bytes > cap {
                let Some(slot) = st.classes[class].warm.pop() else {
                    break;
                };
                st.warm_bytes -= slot_size(class) as u64;
                self.regions[class].release(slot);
                st.classes[class].cold.push(slot);
            }
        }
    }

    /// Makes room for `needed` more resident bytes: runs eviction towards
    /// `budget - needed`, writes inline what the spill queue cannot take, and (with `wait`)
    /// waits for in-flight writes until `resident + needed <= budget + min(pending,
    /// write_behind)` (`pending`: slot bytes of evictions being written).
    /// Returns whether the room is there; with `wait` it always is (over budget only if
    /// nothing is evictable, counted as an overshoot).
    pub(super) fn reserve_room<'a>(
        &'a self,
        mut st: MutexGuard<'a, State>,
        needed: u64,
        wait: bool,
    ) -> (MutexGuard<'a, State>, bool) {
        loop {
            let budget = self.budget();
            if st.resident_bytes + needed <= budget {
                return (st, true);
            }
            // With writes closed (store full, writes disabled) unbacked chunks cannot leave:
            // give the backed ones (the read set) a whole budget beside them, instead of
            // evicting each one the next read needs (a fault-in thrash measured at 5x).
            let stuck = if self.writes_open() {
                0
            } else {
                unbacked_resident_bytes(&st)
            };
            let target = (budget + stuck).saturating_sub(needed);
            let inline = self.evict_pass(&mut st, target, true);
            if !inline.is_empty() {
                drop(st);
                self.write_inline(inline);
                st = lock(&self.state);
                continue;
            }
            // Over the budget only by evictions being written, and at most `write_behind`
            // of them: pinned or unwritable chunks over the budget wait for those writes,
            // then count as an overshoot.
            let leaving = st.pending_evict_bytes.min(self.write_behind(budget));
            if st.resident_bytes + needed <= budget + leaving {
                return (st, true);
            }
            if !wait {
                return (st, false);
            }
            if st.pending_evict_bytes == 0 {
                // Over budget because writes are disabled: probe the store first.
                if self.probe_due() {
                    drop(st);
                    let reopened = self.probe_writes();
                    st = lock(&self.state);
                    if reopened {
                        continue;
                    }
                }
                bump(&self.counters.budget_overshoots, 1);
                return (st, true);
            }
            st = self.wait(st);
        }
    }
}
