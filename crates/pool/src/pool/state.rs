//! The pool's shared state: the chunk slab under one lock, and what lives beside it.
//!
//! Invariants this module's types carry (every transition, in the sibling modules, keeps
//! them under the `state` lock):
//! - An entry's [`Body`] is the chunk's state; the slot it names (if any) has this chunk as
//!   its only owner, and `resident_bytes` is the sum of the slot sizes of bodies that name a
//!   slot.
//! - A chunk is named by `(slab index, generation)` ([`ChunkRef`]); reclaiming bumps the
//!   generation, so a stale name finds a newer chunk or a vacant entry and does nothing.
//! - An entry is listed in its level's eviction queue at most once (`queued`); stale queue entries of
//!   reclaimed chunks are dropped once they make up half of a queue.
//! - Extents of reclaimed chunks are collected in `to_free` and released in the store only
//!   after the lock is dropped ([`Shared::unlock`]).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::hints::{ChunkHints, LEVELS};
use crate::aligned::AlignedBuf;
use crate::codec::{ExtentEncoder, FrameMeta};
use crate::config::PoolConfig;
use crate::extent::{ExtentAddr, ExtentStore};
use crate::region::SlotRegion;
use crate::slot::{slot_size, SLOT_CLASSES};
use crate::spill::{ChunkRef, SpillQueue};
use crate::stats::{Counters, LevelCounters};

/// The class recorded for oversize chunks.
pub(super) const OVERSIZE: u8 = u8::MAX;

/// An extent holding a chunk, and how to decode it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Stored {
    pub(super) addr: ExtentAddr,
    pub(super) meta: FrameMeta,
}

/// A chunk's state and the memory it holds.
pub(super) enum Body {
    Vacant,
    Resident {
        slot: u32,
        extent: Option<Stored>,
    },
    /// A write is queued (`running == false`) or under way. `evict`: release the slot when
    /// the write lands.
    Writing {
        slot: u32,
        evict: bool,
        running: bool,
    },
    Loading {
        slot: u32,
        extent: Stored,
    },
    Evicted {
        extent: Stored,
    },
    Oversize {
        buf: AlignedBuf,
    },
}

/// One slab entry: a live chunk, or a vacant entry waiting for reuse.
pub(super) struct Entry {
    pub(super) gen: u32,
    pub(super) len: usize,
    pub(super) class: u8,
    pub(super) hints: ChunkHints,
    pub(super) pins: u32,
    pub(super) referenced: bool,
    /// The handle is gone; reclaim when the last pin and any running I/O are done.
    pub(super) freed: bool,
    /// Listed in its level's eviction queue (at most once).
    pub(super) queued: bool,
    pub(super) body: Body,
}

impl Entry {
    pub(super) fn level(&self) -> usize {
        self.hints.level()
    }

    /// Bytes the chunk holds against the budget when resident: its slot size (oversize
    /// chunks, class `OVERSIZE`, hold no slot).
    pub(super) fn slot_bytes(&self) -> u64 {
        if self.class == OVERSIZE {
            0
        } else {
            slot_size(self.class as usize) as u64
        }
    }

    /// Bytes a pin of this chunk keeps in memory.
    pub(super) fn pinned_bytes(&self) -> u64 {
        if self.class == OVERSIZE {
            self.len as u64
        } else {
            self.slot_bytes()
        }
    }
}

/// Free slots of one class.
#[derive(Default)]
pub(super) struct ClassSlots {
    /// Pages kept: no fault, no zeroing on reuse.
    pub(super) warm: Vec<u32>,
    /// Pages released.
    pub(super) cold: Vec<u32>,
    /// Slots below this index have been handed out at least once.
    pub(super) next: u32,
}

/// Everything behind the `state` lock.
#[derive(Default)]
pub(super) struct State {
    pub(super) entries: Vec<Entry>,
    pub(super) vacant: Vec<u32>,
    pub(super) queues: [VecDeque<ChunkRef>; LEVELS],
    pub(super) classes: [ClassSlots; SLOT_CLASSES],
    pub(super) live_chunks: u64,
    pub(super) resident_bytes: u64,
    pub(super) peak_resident_bytes: u64,
    pub(super) pinned_bytes: u64,
    pub(super) warm_bytes: u64,
    pub(super) oversize_bytes: u64,
    /// Slot bytes of chunks being written with `evict` set: they leave when the write lands.
    pub(super) pending_evict_bytes: u64,
    /// Write jobs queued or running.
    pub(super) writes_in_flight: u64,
    /// Queue entries of chunks reclaimed while queued, per level (compaction trigger).
    pub(super) stale: [usize; LEVELS],
    /// Extents of reclaimed chunks, released in the store once the state lock is dropped.
    pub(super) to_free: Vec<Stored>,
    /// Threads waiting on `Shared::changed`: notifying costs a system call, so state changes
    /// notify only when someone waits (see [`Shared::wake`]).
    pub(super) waiters: u32,
}

/// Everything the pool's handles and spill threads share.
pub(crate) struct Shared {
    pub(super) config: PoolConfig,
    pub(super) budget: AtomicU64,
    pub(super) regions: Vec<SlotRegion>,
    pub(super) store: Arc<dyn ExtentStore>,
    pub(super) state: Mutex<State>,
    /// Signalled on every state change that a waiter could care about: a write or load
    /// landing, a chunk freed or unpinned.
    pub(super) changed: Condvar,
    pub(super) counters: Counters,
    /// Counters per level (see [`crate::LevelStats`]).
    pub(super) levels: [LevelCounters; LEVELS],
    pub(super) queue: Arc<SpillQueue>,
    /// The inline writer's encoder: single-flight for evictions written on a worker thread.
    pub(super) inline: Mutex<ExtentEncoder>,
    /// Read buffers for fault-ins and copy-outs on caller threads.
    pub(super) read_bufs: Mutex<Vec<AlignedBuf>>,
    pub(super) writes_disabled: AtomicBool,
    pub(super) store_full: AtomicBool,
    /// When the store was last said to be full (see `health::FULL_WARNING_INTERVAL`).
    pub(super) full_warned_at: Mutex<Option<Instant>>,
    /// While writes are disabled: when the next probe write is due (see `health`).
    pub(super) next_probe: Mutex<Instant>,
    /// A probe write is under way.
    pub(super) probing: AtomicBool,
}

/// Locks `m`, recovering from poisoning.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a pool lock leaves counts possibly stale but memory safe; keep
    // serving rather than cascading panics into every worker.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    /// The current byte budget.
    pub(super) fn budget(&self) -> u64 {
        self.budget.load(Ordering::Relaxed)
    }

    /// The write-behind allowance at `budget`.
    pub(super) fn write_behind(&self, budget: u64) -> u64 {
        self.config.write_behind_for(budget)
    }

    /// Whether an eviction may start a write now.
    pub(super) fn writes_open(&self) -> bool {
        !self.writes_disabled.load(Ordering::Relaxed) && !self.store_full.load(Ordering::Relaxed)
    }

    /// Adds a live chunk to the slab (queued for eviction if it is resident).
    pub(super) fn new_entry(
        &self,
        st: &mut State,
        len: usize,
        class: u8,
        hints: ChunkHints,
        body: Body,
    ) -> ChunkRef {
        let resident = matches!(body, Body::Resident { .. });
        let entry = Entry {
            gen: 0,
            len,
            class,
            hints,
            pins: 0,
            referenced: false,
            freed: false,
            queued: false,
            body,
        };
        let id = match st.vacant.pop() {
            Some(id) => {
                let e = &mut st.entries[id as usize];
                let gen = e.gen;
                *e = Entry { gen, ..entry };
                id
            }
            None => {
                st.entries.push(entry);
                (st.entries.len() - 1) as u32
            }
        };
        st.live_chunks += 1;
        if resident {
            enqueue(st, id);
        }
        (id, st.entries[id as usize].gen)
    }

    /// Wakes the threads waiting on `changed`, if any. Callers hold the state lock and made
    /// their change under it, so a thread that is about to wait (counted in `waiters` under
    /// the same lock) either sees the change or is counted here.
    pub(super) fn wake(&self, st: &State) {
        if st.waiters > 0 {
            self.changed.notify_all();
        }
    }

    /// Waits on `changed`, counted in `waiters`.
    pub(super) fn wait<'a>(&'a self, mut st: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        st.waiters += 1;
        let mut st = self.changed.wait(st).unwrap_or_else(|p| p.into_inner());
        st.waiters -= 1;
        st
    }

    /// [`Shared::wait`] for at most `timeout`.
    pub(super) fn wait_timeout<'a>(
        &'a self,
        mut st: MutexGuard<'a, State>,
        timeout: Duration,
    ) -> MutexGuard<'a, State> {
        st.waiters += 1;
        let (mut st, _) = self
            .changed
            .wait_timeout(st, timeout)
            .unwrap_or_else(|p| p.into_inner());
        st.waiters -= 1;
        st
    }

    /// Drops the state lock, then releases in the store the extents reclaimed under it (store
    /// calls may block: a hole punch, a swap-in on a neighbouring slot).
    pub(super) fn unlock(&self, mut st: MutexGuard<'_, State>) {
        if st.to_free.is_empty() {
            return;
        }
        let frees = std::mem::take(&mut st.to_free);
        drop(st);
        for x in frees {
            self.store.free(x.addr, x.meta.padded_len());
        }
        self.store_full.store(false, Ordering::Relaxed);
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.queue.shutdown();
    }
}

/// Lists resident chunk `id` at the back of its level's eviction queue.
pub(super) fn enqueue(st: &mut State, id: u32) {
    let e = &mut st.entries[id as usize];
    e.queued = true;
    let (level, gen) = (e.level(), e.gen);
    st.queues[level].push_back((id, gen));
}

/// Drops the entries of reclaimed chunks from the queue of `level` once they make up half of it, so
/// a pool that stays under budget (and never runs an eviction pass) keeps its queues bounded
/// by its live chunks. Amortized O(1) per reclaim.
pub(super) fn compact_queue(st: &mut State, level: usize) {
    let State {
        entries,
        queues,
        stale,
        ..
    } = st;
    if stale[level] < 64 || stale[level] * 2 < queues[level].len() {
        return;
    }
    queues[level].retain(|&(id, gen)| {
        let e = &entries[id as usize];
        e.gen == gen && e.queued
    });
    stale[level] = 0;
}
