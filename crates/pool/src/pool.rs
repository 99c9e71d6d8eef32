//! Layer 2: the buffer pool.
//!
//! A [`Pool`] holds chunks (immutable byte bodies, typically one sealed columnar run) in
//! size-class slots under a byte budget, and moves cold ones to an extent store.
//!
//! # Chunk states
//! ```text
//!   insert_with ──► UnbackedResident ──evict (queue/inline)──► WriteInFlight ──► Evicted
//!                       │    ▲                                   │  (eager: ──► BackedResident)
//!                       │    └──── write failed (ENOSPC/EIO) ◄───┘
//!                       │
//!   Evicted ──pin/prefetch──► Loading ──► BackedResident ──evict: page release, no I/O──► Evicted
//!   len > 8 MiB ──► Oversize (heap, outside the budget, never evicted)
//! ```
//! A chunk keeps its extent once written: a backed chunk that is evicted again costs no I/O
//! (*cheap eviction*), and a chunk freed before it was ever written costs no compression and
//! no I/O (*die-young elision*: freeing a chunk whose write is still queued cancels it).
//!
//! # Pins
//! [`ChunkHandle::pin`] returns a [`PinGuard`], a zero-copy view of the body in its slot. A
//! pinned chunk is never evicted and its slot never reused, so the view stays valid for the
//! guard's life; the guard owns its pin (it holds the pool, not a borrow of the handle), so
//! cursors can keep it. Dropping the handle while pins exist defers the free to the last
//! unpin. Slot memory is written only by `insert_with`'s fill (before the chunk is published)
//! and by a fault-in (in state `Loading`, before it is published), never while a view exists.
//!
//! # Budget identity
//! `resident_bytes` is the sum of slot sizes of chunks that hold a slot (resident, being
//! written, being loaded). Inserts and fault-ins wait until
//! `resident_bytes + slot ≤ budget + write_behind`, and eviction works towards
//! `resident_bytes ≤ budget`; the difference is the write-behind allowance for evictions whose
//! writes are in flight. Only pins can push residency above that (counted in
//! `budget_overshoots`). Freed slots keep their pages on a warm list capped at
//! `min(budget/8, 1 GiB)` (`warm_bytes`), beyond which they are released. So the pool's memory
//! is at most `budget + write_behind + warm cap + pinned overshoot`, plus oversize chunks.
//!
//! # Eviction
//! Resident chunks sit in second-chance FIFO queues, one per depth band (the depth hint,
//! clamped to 15); enforcement scans the deepest (oldest) band first. A pin marks a chunk
//! referenced; the scan clears the mark and skips the chunk once. Enforcement runs under the
//! state lock, so it is single-flight; the expensive part (compression and I/O) happens on
//! spill threads, or inline (one writer at a time) when the spill queue is full.
//!
//! # Lock order
//! `inline writer` → `state` → `spill queue`. Extent-store calls and codec work happen with
//! no pool lock held (extents of reclaimed chunks are collected under `state` and released
//! after it is dropped), except `madvise` of a released slot (under `state`).

use std::collections::VecDeque;
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::Duration;

use crate::aligned::{AlignedBuf, PAGE};
use crate::codec::{self, Compression, DecodeError, ExtentEncoder, FrameMeta};
use crate::config::{validate_budget, ExtentBackend, PoolConfig};
use crate::error::{ConfigError, PoolError};
use crate::extent::file::{FileStore, FileStoreOptions};
use crate::extent::memory::MemoryStore;
use crate::extent::swap::{SwapStore, SwapStoreOptions};
use crate::extent::{ExtentAddr, ExtentStore, StoreError};
use crate::region::SlotRegion;
use crate::slot::{slot_class_of, slot_size, SLOT_CLASSES};
use crate::spill::{self, ChunkRef, SpillQueue};
use crate::stats::{bump, read, Counters, LevelCounters, LevelStats, PoolStats, StatsSource};

mod vectored;
pub use vectored::{VectoredReads, COALESCE_CAP, READ_AHEAD};

/// Number of depth bands; deeper hints share the last band.
pub const DEPTH_BANDS: usize = 16;

/// The class recorded for oversize chunks.
const OVERSIZE: u8 = u8::MAX;

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
}

/// The observable state of a chunk (see the module docs for the transitions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkState {
    UnbackedResident,
    WriteInFlight,
    BackedResident,
    Loading,
    Evicted,
    Oversize,
}

/// An extent holding a chunk, and how to decode it.
#[derive(Clone, Copy, Debug)]
struct Stored {
    addr: ExtentAddr,
    meta: FrameMeta,
}

enum Body {
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

struct Entry {
    gen: u32,
    len: usize,
    class: u8,
    hints: ChunkHints,
    pins: u32,
    referenced: bool,
    /// The handle is gone; reclaim when the last pin and any running I/O are done.
    freed: bool,
    /// Listed in its band queue (at most once).
    queued: bool,
    body: Body,
}

impl Entry {
    fn band(&self) -> usize {
        (self.hints.depth as usize).min(DEPTH_BANDS - 1)
    }

    /// Bytes the chunk holds against the budget when resident: its slot size (oversize
    /// chunks, class `OVERSIZE`, hold no slot).
    fn slot_bytes(&self) -> u64 {
        if self.class == OVERSIZE {
            0
        } else {
            slot_size(self.class as usize) as u64
        }
    }

    /// Bytes a pin of this chunk keeps in memory.
    fn pinned_bytes(&self) -> u64 {
        if self.class == OVERSIZE {
            self.len as u64
        } else {
            self.slot_bytes()
        }
    }
}

#[derive(Default)]
struct ClassSlots {
    warm: Vec<u32>,
    cold: Vec<u32>,
    next: u32,
}

#[derive(Default)]
struct State {
    entries: Vec<Entry>,
    vacant: Vec<u32>,
    bands: [VecDeque<ChunkRef>; DEPTH_BANDS],
    classes: [ClassSlots; SLOT_CLASSES],
    live_chunks: u64,
    resident_bytes: u64,
    peak_resident_bytes: u64,
    pinned_bytes: u64,
    warm_bytes: u64,
    oversize_bytes: u64,
    /// Slot bytes of chunks being written with `evict` set: they leave when the write lands.
    pending_evict_bytes: u64,
    /// Write jobs queued or running.
    writes_in_flight: u64,
    /// Band-queue entries of chunks reclaimed while queued, per band (compaction trigger).
    stale: [usize; DEPTH_BANDS],
    /// Extents of reclaimed chunks, released in the store once the state lock is dropped.
    to_free: Vec<Stored>,
    /// Threads waiting on `Shared::changed`: notifying costs a system call, so state changes
    /// notify only when someone waits (see [`Shared::wake`]).
    waiters: u32,
}

/// Everything the pool's handles and spill threads share.
pub(crate) struct Shared {
    config: PoolConfig,
    budget: AtomicU64,
    regions: Vec<SlotRegion>,
    store: Arc<dyn ExtentStore>,
    state: Mutex<State>,
    /// Signalled on every state change that a waiter could care about: a write or load
    /// landing, a chunk freed or unpinned.
    changed: Condvar,
    counters: Counters,
    /// Counters per depth band (see [`LevelStats`]).
    levels: [LevelCounters; DEPTH_BANDS],
    queue: Arc<SpillQueue>,
    /// The inline writer's encoder: single-flight for evictions written on a worker thread.
    inline: Mutex<ExtentEncoder>,
    /// Read buffers for fault-ins and copy-outs on caller threads.
    read_bufs: Mutex<Vec<AlignedBuf>>,
    writes_disabled: AtomicBool,
    store_full: AtomicBool,
}

/// A byte-budgeted buffer pool. Cheap to clone (all clones share one pool); one pool per
/// process is meant to serve every worker thread.
#[derive(Clone)]
pub struct Pool {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("budget", &self.budget())
            .field("extents", &self.shared.store.name())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a pool lock leaves counts possibly stale but memory safe; keep
    // serving rather than cascading panics into every worker.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Pool {
    /// Whether `other` is a clone of this pool (the same buffers and store).
    pub fn same_pool(&self, other: &Pool) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    /// Statistics per depth band (level), deepest band last: where the pool's bytes live, and
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
            let level = &mut out[e.band()];
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

    /// Slot bytes of resident chunks now (the budgeted quantity; see [`PoolStats`]).
    pub fn resident_bytes(&self) -> u64 {
        lock(&self.shared.state).resident_bytes
    }

    /// Builds a pool, validating the configuration and opening the extent store first.
    pub fn new(config: PoolConfig) -> Result<Pool, ConfigError> {
        config.validate()?;
        let store: Arc<dyn ExtentStore> = match &config.extents {
            ExtentBackend::File {
                dir,
                direct_io,
                capacity,
            } => {
                let dir = dir.clone().unwrap_or_else(std::env::temp_dir);
                let opts = FileStoreOptions {
                    direct_io: *direct_io,
                    capacity: *capacity,
                };
                Arc::new(FileStore::open(&dir, opts)?)
            }
            ExtentBackend::Swap { rss_target } => Arc::new(SwapStore::new(SwapStoreOptions {
                rss_target: *rss_target,
                ..SwapStoreOptions::default()
            })?),
            ExtentBackend::Memory { capacity } => Arc::new(MemoryStore::new(*capacity)),
        };
        Self::with_store(config, store)
    }

    /// Builds a pool over a given extent store (for example a file store with a fault-injecting
    /// I/O seam). `config.extents` is ignored.
    pub fn with_store(
        config: PoolConfig,
        store: Arc<dyn ExtentStore>,
    ) -> Result<Pool, ConfigError> {
        config.validate()?;
        let per_class = config.region_bytes_per_class.unwrap_or_else(|| {
            let usable = crate::machine::usable_memory_bytes();
            (2 * usable).max(4 * config.budget)
        });
        let mut regions = Vec::with_capacity(SLOT_CLASSES);
        for class in 0..SLOT_CLASSES {
            let size = slot_size(class);
            let capacity = (per_class / size as u64).clamp(4, u32::MAX as u64) as u32;
            regions.push(SlotRegion::reserve(size, capacity, config.huge_pages)?);
        }
        let queue = Arc::new(SpillQueue::new(
            config.spill_threads,
            config.spill_queue_depth,
        ));
        let shared = Arc::new(Shared {
            budget: AtomicU64::new(config.budget),
            regions,
            store,
            state: Mutex::default(),
            changed: Condvar::new(),
            counters: Counters::default(),
            levels: Default::default(),
            queue: Arc::clone(&queue),
            inline: Mutex::default(),
            read_bufs: Mutex::default(),
            writes_disabled: AtomicBool::new(false),
            store_full: AtomicBool::new(false),
            config,
        });
        let io_threads = if shared.config.spill_threads == 0 {
            0
        } else {
            shared.config.io_threads
        };
        spill::start(
            shared.config.spill_threads,
            io_threads,
            &queue,
            Arc::downgrade(&shared),
        )
        .map_err(|e| ConfigError::Invalid(format!("cannot start spill threads: {e}")))?;
        Ok(Pool { shared })
    }

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
        let ptr = sh.regions[class].slot_ptr(slot);
        // SAFETY: the slot was just taken from the free lists, so no chunk, view or job refers
        // to it; it is `slot_size(class) >= len` bytes inside the region, which outlives this
        // call (the region lives as long as `Shared`, which we borrow).
        let body = unsafe { std::slice::from_raw_parts_mut(ptr.as_ptr(), len) };
        fill(body);
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
        ChunkHandle {
            shared: Arc::clone(&self.shared),
            id: id.0,
            gen: id.1,
            len,
        }
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
        ChunkHandle {
            shared: Arc::clone(&self.shared),
            id: id.0,
            gen: id.1,
            len,
        }
    }

    /// The current byte budget.
    pub fn budget(&self) -> u64 {
        self.shared.budget()
    }

    /// Changes the byte budget at run time. Shrinking schedules evictions right away (without
    /// waiting for them).
    pub fn set_budget(&self, bytes: u64) -> Result<(), ConfigError> {
        validate_budget(bytes)?;
        let sh = &self.shared;
        sh.budget.store(bytes, Ordering::Relaxed);
        let st = lock(&sh.state);
        let (mut st, _) = sh.reserve_room(st, 0, false);
        sh.trim_warm(&mut st);
        // Waiters for room re-check against the new budget.
        sh.wake(&st);
        Ok(())
    }

    /// Evicts until at most `target` bytes are resident (or only pinned chunks remain), and
    /// waits for the writes. For memory-pressure handling and tests; does not change the
    /// budget.
    pub fn evict_to(&self, target: u64) {
        let sh = &self.shared;
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

    /// Waits until no write, prefetch or eager-backing job is queued or running.
    pub fn quiesce(&self) {
        let sh = &self.shared;
        loop {
            let st = lock(&sh.state);
            if st.writes_in_flight == 0 && sh.queue.pending() == 0 {
                return;
            }
            drop(sh.wait_timeout(st, Duration::from_millis(5)));
        }
    }

    /// A snapshot of the pool's counters and gauges.
    pub fn stats(&self) -> PoolStats {
        self.shared.snapshot()
    }

    /// Registers the `spillway_pool_*` metrics in `registry`, read from this pool at each
    /// scrape. `labels` are attached to every metric (e.g. `[("process", "0")]`).
    pub fn register_metrics(
        &self,
        registry: &prometheus::Registry,
        labels: &[(&str, &str)],
    ) -> prometheus::Result<()> {
        let weak: Weak<dyn StatsSource> = Arc::downgrade(&self.shared) as Weak<Shared>;
        crate::stats::register(weak, registry, labels)
    }

    /// The configuration the pool was built with (its `budget` is the initial one).
    pub fn config(&self) -> &PoolConfig {
        &self.shared.config
    }

    /// The extent store's name (`file`, `swap`, `memory`).
    pub fn extent_backend(&self) -> &'static str {
        self.shared.store.name()
    }
}

impl Shared {
    fn budget(&self) -> u64 {
        self.budget.load(Ordering::Relaxed)
    }

    fn write_behind(&self, budget: u64) -> u64 {
        self.config.write_behind_for(budget)
    }

    fn new_entry(
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

    fn add_resident(&self, st: &mut State, bytes: u64) {
        st.resident_bytes += bytes;
        st.peak_resident_bytes = st.peak_resident_bytes.max(st.resident_bytes);
    }

    fn take_slot(&self, st: &mut State, class: usize) -> Option<u32> {
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
    fn release_slot(&self, st: &mut State, class: usize, slot: u32) {
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

    fn trim_warm(&self, st: &mut State) {
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
    /// waits for in-flight writes until `resident + needed <= budget + write_behind`.
    /// Returns whether the room is there; with `wait` it always is (over budget only if
    /// nothing is evictable, counted as an overshoot).
    fn reserve_room<'a>(
        &'a self,
        mut st: MutexGuard<'a, State>,
        needed: u64,
        wait: bool,
    ) -> (MutexGuard<'a, State>, bool) {
        loop {
            let budget = self.budget();
            let limit = budget + self.write_behind(budget);
            if st.resident_bytes + needed <= budget {
                return (st, true);
            }
            let inline = self.evict_pass(&mut st, budget.saturating_sub(needed), true);
            if !inline.is_empty() {
                drop(st);
                self.write_inline(inline);
                st = lock(&self.state);
                continue;
            }
            if st.resident_bytes + needed <= limit {
                return (st, true);
            }
            if !wait {
                return (st, false);
            }
            if st.pending_evict_bytes == 0 {
                bump(&self.counters.budget_overshoots, 1);
                return (st, true);
            }
            st = self.wait(st);
        }
    }

    /// One eviction pass towards `resident - pending ≤ target`, deepest band first, second
    /// chance within a band. Backed chunks are released at once; unbacked ones are queued for
    /// spill threads, or returned to be written inline when the queue is full. Without
    /// `allow_writes` only backed chunks are evicted (no compression, no I/O).
    fn evict_pass(&self, st: &mut State, target: u64, allow_writes: bool) -> Vec<ChunkRef> {
        let mut inline = Vec::new();
        let can_write = allow_writes
            && !self.writes_disabled.load(Ordering::Relaxed)
            && !self.store_full.load(Ordering::Relaxed);
        for band in (0..DEPTH_BANDS).rev() {
            let mut budget_examined = st.bands[band].len() * 2;
            while st.resident_bytes - st.pending_evict_bytes > target && budget_examined > 0 {
                budget_examined -= 1;
                let Some((id, gen)) = st.bands[band].pop_front() else {
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
                    st.bands[band].push_back((id, gen));
                }
            }
        }
        inline
    }

    /// Writes chunks the spill queue could not take, on this thread, one writer at a time.
    fn write_inline(&self, chunks: Vec<ChunkRef>) {
        let mut encoder = lock(&self.inline);
        for c in chunks {
            if let Some(meta) = self.encode_chunk(c, &mut encoder) {
                bump(&self.counters.inline_writes, 1);
                self.store_and_land(c, meta, &encoder);
            }
        }
    }

    /// Wakes `quiesce` waiters after a spill job.
    pub(crate) fn job_finished(&self) {
        let st = lock(&self.state);
        self.wake(&st);
    }

    /// Claims a queued eviction write for a compressor (`Writing { running: true }`). False if
    /// the chunk was freed while queued: a newer generation means nothing to do (the free
    /// counted the cancellation).
    pub(crate) fn claim_write(&self, c: ChunkRef) -> bool {
        let mut st = lock(&self.state);
        let e = &mut st.entries[c.0 as usize];
        if e.gen != c.1 {
            return false;
        }
        match &mut e.body {
            Body::Writing { running, .. } if !*running => {
                if e.freed {
                    // Freed while pinned: nothing to write; the last unpin reclaims it.
                    self.cancel_write(&mut st, c.0);
                    self.unlock(st);
                    return false;
                }
                *running = true;
                true
            }
            _ => false,
        }
    }

    /// Abandons the write of a freed chunk (queued, claimed or already encoded): the chunk
    /// goes back to unbacked-resident and is reclaimed as soon as no pin holds it.
    fn cancel_write(&self, st: &mut State, id: u32) {
        let e = &mut st.entries[id as usize];
        let Body::Writing { slot, evict, .. } = e.body else {
            unreachable!("cancel_write on a chunk that is not being written")
        };
        let size = e.slot_bytes();
        e.body = Body::Resident { slot, extent: None };
        st.writes_in_flight -= 1;
        if evict {
            st.pending_evict_bytes -= size;
        }
        bump(&self.counters.spill_cancelled, 1);
        self.try_reclaim(st, id);
        self.wake(st);
    }

    /// Wakes the threads waiting on `changed`, if any. Callers hold the state lock and made
    /// their change under it, so a thread that is about to wait (counted in `waiters` under
    /// the same lock) either sees the change or is counted here.
    fn wake(&self, st: &State) {
        if st.waiters > 0 {
            self.changed.notify_all();
        }
    }

    /// Waits on `changed`, counted in `waiters`.
    fn wait<'a>(&'a self, mut st: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        st.waiters += 1;
        let mut st = self.changed.wait(st).unwrap_or_else(|p| p.into_inner());
        st.waiters -= 1;
        st
    }

    /// [`Shared::wait`] for at most `timeout`.
    fn wait_timeout<'a>(
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
    fn unlock(&self, mut st: MutexGuard<'_, State>) {
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

    /// Claims a resident, unbacked chunk for eager backing. False if it is gone, already
    /// backed or being written, or writes are off.
    pub(crate) fn claim_eager(&self, c: ChunkRef) -> bool {
        if self.writes_disabled.load(Ordering::Relaxed) || self.store_full.load(Ordering::Relaxed) {
            return false;
        }
        let mut st = lock(&self.state);
        let e = &mut st.entries[c.0 as usize];
        if e.gen != c.1 || e.freed {
            return false;
        }
        let Body::Resident { slot, extent: None } = e.body else {
            return false;
        };
        e.body = Body::Writing {
            slot,
            evict: false,
            running: true,
        };
        st.writes_in_flight += 1;
        true
    }

    /// Encodes a claimed chunk (`Writing { running: true }`) into `encoder`'s scratch; `None`
    /// (and the write cancelled) if the chunk was freed since it was claimed.
    pub(crate) fn encode_chunk(
        &self,
        c: ChunkRef,
        encoder: &mut ExtentEncoder,
    ) -> Option<FrameMeta> {
        let (ptr, len, compression) = {
            let mut st = lock(&self.state);
            let e = &st.entries[c.0 as usize];
            debug_assert_eq!(e.gen, c.1);
            let Body::Writing {
                slot,
                running: true,
                ..
            } = e.body
            else {
                unreachable!("encode_chunk on a chunk that is not being written")
            };
            if e.freed {
                self.cancel_write(&mut st, c.0);
                self.unlock(st);
                return None;
            }
            (
                self.regions[e.class as usize].slot_ptr(slot),
                e.len,
                e.hints.compression,
            )
        };
        // SAFETY: the chunk is `Writing { running: true }`: its slot is neither released nor
        // rewritten until `land_write` (free defers reclaim of running writes, eviction waits
        // for the write), and its first `len` bytes were initialized by `fill`.
        let body = unsafe { std::slice::from_raw_parts(ptr.as_ptr(), len) };
        bump(&self.counters.bytes_compressed_in, len as u64);
        match encoder.encode(body, compression) {
            Ok((meta, _)) => Some(meta),
            Err(e) => unreachable!("slot bodies fit the codec: {e}"),
        }
    }

    /// Writes the frame `encoder` holds for chunk `c` and lands the write. A chunk freed since
    /// it was encoded is not written at all.
    pub(crate) fn store_and_land(&self, c: ChunkRef, meta: FrameMeta, encoder: &ExtentEncoder) {
        {
            let mut st = lock(&self.state);
            let e = &mut st.entries[c.0 as usize];
            if e.freed {
                self.cancel_write(&mut st, c.0);
                self.unlock(st);
                return;
            }
        }
        let frame = encoder.frame();
        let result = self.store.write(frame).map(|addr| {
            bump(&self.counters.extent_bytes_written, frame.len() as u64);
            Stored { addr, meta }
        });
        self.land_write(c, result);
    }

    fn land_write(&self, c: ChunkRef, result: Result<Stored, StoreError>) {
        let mut guard = lock(&self.state);
        guard.writes_in_flight -= 1;
        let st = &mut *guard;
        let e = &mut st.entries[c.0 as usize];
        let Body::Writing { slot, evict, .. } = e.body else {
            unreachable!()
        };
        let size = e.slot_bytes();
        let class = e.class as usize;
        if evict {
            st.pending_evict_bytes -= size;
        }
        match result {
            Ok(extent) => {
                let level = &self.levels[e.band()];
                bump(&level.chunks_written, 1);
                bump(&level.extent_bytes_written, extent.meta.padded_len() as u64);
                if evict && e.pins == 0 && !e.freed && !e.referenced {
                    e.body = Body::Evicted { extent };
                    st.resident_bytes -= size;
                    self.release_slot(st, class, slot);
                    bump(&self.counters.evictions_compress, 1);
                } else {
                    e.body = Body::Resident {
                        slot,
                        extent: Some(extent),
                    };
                    // Kept: pinned, freed (reclaimed below), or touched while being written
                    // (its second chance, used up now).
                    e.referenced = false;
                    if !evict {
                        bump(&self.counters.eager_writes, 1);
                    }
                    if !e.queued && !e.freed {
                        enqueue(st, c.0);
                    }
                }
            }
            Err(err) => {
                e.body = Body::Resident { slot, extent: None };
                match err {
                    StoreError::NoSpace => {
                        bump(&self.counters.write_nospace, 1);
                        self.store_full.store(true, Ordering::Relaxed);
                        tracing::warn!("extent store full: keeping chunks resident");
                    }
                    StoreError::Io { .. } => {
                        bump(&self.counters.io_errors, 1);
                        self.writes_disabled.store(true, Ordering::Relaxed);
                        tracing::error!(
                            "extent write failed, disabling writes (data stays resident): {err}"
                        );
                    }
                }
                let e = &mut st.entries[c.0 as usize];
                if !e.queued && !e.freed {
                    enqueue(st, c.0);
                }
            }
        }
        self.try_reclaim(st, c.0);
        self.wake(st);
        self.unlock(guard);
    }

    /// Spill-thread entry point for a prefetch: fault the chunk in if there is room without
    /// waiting.
    pub(crate) fn run_prefetch(&self, c: ChunkRef, read_buf: &mut AlignedBuf) {
        let st = lock(&self.state);
        let e = &st.entries[c.0 as usize];
        if e.gen != c.1 || e.freed || !matches!(e.body, Body::Evicted { .. }) {
            bump(&self.counters.prefetches_dropped, 1);
            return;
        }
        // Admit only into free room, or room made by releasing backed chunks: a prefetch is
        // a hint, and never worth a compression or a write of another chunk.
        let size = e.slot_bytes();
        let mut st = st;
        let budget = self.budget();
        if st.resident_bytes + size > budget {
            self.evict_pass(&mut st, budget.saturating_sub(size), false);
        }
        let room = st.resident_bytes + size <= budget;
        let e = &st.entries[c.0 as usize];
        let extent = match e.body {
            Body::Evicted { extent } if room && e.gen == c.1 => extent,
            _ => {
                bump(&self.counters.prefetches_dropped, 1);
                return;
            }
        };
        let (len, class) = (e.len, e.class as usize);
        let Some(slot) = self.take_slot(&mut st, class) else {
            bump(&self.counters.prefetches_dropped, 1);
            return;
        };
        self.add_resident(&mut st, size);
        st.entries[c.0 as usize].body = Body::Loading { slot, extent };
        drop(st);
        let result = self.load(extent, class, slot, len, read_buf);
        let mut st = lock(&self.state);
        self.land_load(&mut st, c.0, result.is_ok());
        self.wake(&st);
        self.unlock(st);
    }

    /// Reads and decodes `extent` into `slot`. The caller holds the chunk in `Loading`.
    fn load(
        &self,
        extent: Stored,
        class: usize,
        slot: u32,
        len: usize,
        buf: &mut AlignedBuf,
    ) -> Result<(), PoolError> {
        self.fill_loading_slot(class, slot, len, |dst| self.read_extent(extent, buf, dst))
    }

    /// Runs `fill` on the first `len` bytes of `slot`, which the caller holds in `Loading`.
    fn fill_loading_slot<R>(
        &self,
        class: usize,
        slot: u32,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> R,
    ) -> R {
        let ptr = self.regions[class].slot_ptr(slot);
        // SAFETY: the chunk is `Loading` with this slot: no view of the slot exists (pins are
        // only handed out once it is resident) and no other thread writes it.
        let dst = unsafe { std::slice::from_raw_parts_mut(ptr.as_ptr(), len) };
        fill(dst)
    }

    /// Reads and decodes `extent` into `dst`, counting bytes and failures.
    fn read_extent(
        &self,
        extent: Stored,
        buf: &mut AlignedBuf,
        dst: &mut [u8],
    ) -> Result<(), PoolError> {
        self.read_span(extent.addr, 1, extent.meta.padded_len(), buf)?;
        self.decode_frame(extent, buf.as_slice(), dst)
    }

    /// Reads `count` extents at consecutive slots from `first` with one store call (see
    /// [`ExtentStore::read_span`]), counting bytes and failures.
    fn read_span(
        &self,
        first: ExtentAddr,
        count: u32,
        last_len: usize,
        buf: &mut AlignedBuf,
    ) -> Result<(), PoolError> {
        self.store
            .read_span(first, count, last_len, buf)
            .map_err(|e| {
                bump(&self.counters.io_errors, 1);
                let source = match e {
                    StoreError::Io { source, .. } => source,
                    StoreError::NoSpace => std::io::Error::other("store reported no space on read"),
                };
                PoolError::ReadIo {
                    extent: first,
                    source,
                }
            })?;
        bump(&self.counters.extent_bytes_read, buf.len() as u64);
        Ok(())
    }

    /// Verifies and decodes the stored `frame` of `extent` into `dst`.
    fn decode_frame(&self, extent: Stored, frame: &[u8], dst: &mut [u8]) -> Result<(), PoolError> {
        codec::decode_into(&extent.meta, frame, dst).map_err(|e| match e {
            DecodeError::Checksum { expected, actual } => {
                bump(&self.counters.checksum_failures, 1);
                PoolError::Checksum {
                    extent: extent.addr,
                    expected,
                    actual,
                }
            }
            DecodeError::Corrupt(reason) => {
                bump(&self.counters.checksum_failures, 1);
                PoolError::Corrupt {
                    extent: extent.addr,
                    reason,
                }
            }
        })
    }

    /// Lands a fault-in: `Loading` becomes `BackedResident` (or back to `Evicted` on failure).
    fn land_load(&self, st: &mut State, id: u32, ok: bool) {
        let e = &mut st.entries[id as usize];
        let Body::Loading { slot, extent } = e.body else {
            unreachable!()
        };
        let class = e.class as usize;
        if ok {
            e.body = Body::Resident {
                slot,
                extent: Some(extent),
            };
            e.referenced = true;
            bump(&self.counters.fault_ins, 1);
            bump(&self.levels[e.band()].fault_ins, 1);
            if !e.queued && !e.freed {
                enqueue(st, id);
            }
        } else {
            e.body = Body::Evicted { extent };
            st.resident_bytes -= slot_size(class) as u64;
            self.release_slot(st, class, slot);
        }
        self.try_reclaim(st, id);
    }

    fn take_read_buf(&self) -> AlignedBuf {
        lock(&self.read_bufs).pop().unwrap_or_default()
    }

    fn return_read_buf(&self, mut buf: AlignedBuf) {
        buf.shrink_to_bound(codec::SCRATCH_BOUND);
        buf.clear();
        let mut bufs = lock(&self.read_bufs);
        if bufs.len() < 8 {
            bufs.push(buf);
        }
    }

    /// Frees a chunk whose handle is gone once nothing else needs it: no pins, no running
    /// write or load; releases its slot and extent.
    fn try_reclaim(&self, st: &mut State, id: u32) {
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
        let band = e.band();
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
                        bump(&self.levels[band].writes_elided, 1);
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
            st.stale[band] += 1;
            compact_band(st, band);
        }
    }

    /// Frees the chunk `c` (its handle was dropped).
    fn free(&self, c: ChunkRef) {
        let mut st = lock(&self.state);
        let e = &mut st.entries[c.0 as usize];
        debug_assert_eq!(e.gen, c.1, "stale chunk handle");
        e.freed = true;
        bump(&self.counters.frees, 1);
        self.try_reclaim(&mut st, c.0);
        self.wake(&st);
        self.unlock(st);
    }

    fn unpin(&self, id: u32) {
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

    /// Pins a chunk that holds its body in memory; `None` if it is evicted or loading.
    fn pin_resident(self: &Arc<Self>, st: &mut State, c: ChunkRef) -> Option<PinGuard> {
        let e = &mut st.entries[c.0 as usize];
        let ptr = match &e.body {
            Body::Resident { slot, .. } | Body::Writing { slot, .. } => {
                self.regions[e.class as usize].slot_ptr(*slot)
            }
            Body::Oversize { buf } => {
                NonNull::new(buf.as_slice().as_ptr().cast_mut()).unwrap_or(NonNull::dangling())
            }
            _ => return None,
        };
        e.pins += 1;
        e.referenced = true;
        let len = e.len;
        if e.pins == 1 {
            st.pinned_bytes += e.pinned_bytes();
        }
        Some(PinGuard {
            shared: Arc::clone(self),
            id: c.0,
            ptr,
            len,
        })
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
            pageout_retries: store.pageout_retries,
            pageout_declined: store.pageout_declined,
            ..self.counters.load()
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.queue.shutdown();
    }
}

/// Drops the entries of reclaimed chunks from band `band` once they make up half of it, so
/// a pool that stays under budget (and never runs an eviction pass) keeps its queues bounded
/// by its live chunks. Amortized O(1) per reclaim.
fn compact_band(st: &mut State, band: usize) {
    let State {
        entries,
        bands,
        stale,
        ..
    } = st;
    if stale[band] < 64 || stale[band] * 2 < bands[band].len() {
        return;
    }
    bands[band].retain(|&(id, gen)| {
        let e = &entries[id as usize];
        e.gen == gen && e.queued
    });
    stale[band] = 0;
}

fn enqueue(st: &mut State, id: u32) {
    let e = &mut st.entries[id as usize];
    e.queued = true;
    let (band, gen) = (e.band(), e.gen);
    st.bands[band].push_back((id, gen));
}

/// Owns one chunk of a [`Pool`]; dropping it frees the chunk (deferred while pins exist).
pub struct ChunkHandle {
    shared: Arc<Shared>,
    id: u32,
    gen: u32,
    len: usize,
}

impl std::fmt::Debug for ChunkHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkHandle")
            .field("id", &self.id)
            .field("len", &self.len)
            .field("state", &self.state())
            .finish()
    }
}

impl ChunkHandle {
    /// Body length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for an empty body.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn chunk(&self) -> ChunkRef {
        (self.id, self.gen)
    }

    /// The chunk's current state.
    pub fn state(&self) -> ChunkState {
        let st = lock(&self.shared.state);
        match &st.entries[self.id as usize].body {
            Body::Resident { extent: None, .. } => ChunkState::UnbackedResident,
            Body::Resident {
                extent: Some(_), ..
            } => ChunkState::BackedResident,
            Body::Writing { .. } => ChunkState::WriteInFlight,
            Body::Loading { .. } => ChunkState::Loading,
            Body::Evicted { .. } => ChunkState::Evicted,
            Body::Oversize { .. } => ChunkState::Oversize,
            Body::Vacant => unreachable!("live handle to a vacant entry"),
        }
    }

    /// Pins the body in memory and returns a zero-copy view of it, faulting an evicted chunk
    /// back into a slot first (waiting for room in the budget). Fails, naming the extent, when
    /// the extent cannot be read back intact.
    pub fn pin(&self) -> Result<PinGuard, PoolError> {
        let sh = &self.shared;
        self.pin_with(|extent, dst| {
            let mut buf = sh.take_read_buf();
            let result = sh.read_extent(extent, &mut buf, dst);
            sh.return_read_buf(buf);
            result
        })
    }

    /// [`ChunkHandle::pin`], with `load` filling the body of an evicted chunk from its extent.
    fn pin_with(
        &self,
        mut load: impl FnMut(Stored, &mut [u8]) -> Result<(), PoolError>,
    ) -> Result<PinGuard, PoolError> {
        let sh = &self.shared;
        let mut st = lock(&sh.state);
        loop {
            if let Some(pin) = sh.pin_resident(&mut st, self.chunk()) {
                return Ok(pin);
            }
            let e = &st.entries[self.id as usize];
            let Body::Evicted { .. } = e.body else {
                // Loading (a prefetch): wait for it to land.
                st = sh.wait(st);
                continue;
            };
            let (size, class) = (e.slot_bytes(), e.class as usize);
            let (s, _) = sh.reserve_room(st, size, true);
            st = s;
            // The state may have changed while we waited for room.
            let Body::Evicted { extent } = st.entries[self.id as usize].body else {
                continue;
            };
            let Some(slot) = sh.take_slot(&mut st, class) else {
                // Address space for this class is exhausted (a budget far beyond the region
                // reservation): serve a copy on the heap instead.
                drop(st);
                let mut bytes = vec![0; self.len];
                load(extent, &mut bytes)?;
                bump(&sh.counters.copy_out_reads, 1);
                return Ok(PinGuard::detached(sh, bytes));
            };
            sh.add_resident(&mut st, size);
            st.entries[self.id as usize].body = Body::Loading { slot, extent };
            drop(st);
            let result = sh.fill_loading_slot(class, slot, self.len, |dst| load(extent, dst));
            st = lock(&sh.state);
            sh.land_load(&mut st, self.id, result.is_ok());
            sh.wake(&st);
            result?;
        }
    }

    /// Copies the body into `out` (replacing its contents) without admitting an evicted chunk
    /// to the pool: the extent is decoded straight into `out`.
    pub fn read_into(&self, out: &mut Vec<u8>) -> Result<(), PoolError> {
        let sh = &self.shared;
        let mut st = lock(&sh.state);
        loop {
            if let Some(pin) = sh.pin_resident(&mut st, self.chunk()) {
                drop(st);
                out.clear();
                out.extend_from_slice(&pin);
                return Ok(());
            }
            if let Body::Evicted { extent } = st.entries[self.id as usize].body {
                drop(st);
                out.clear();
                out.resize(self.len, 0);
                let mut buf = sh.take_read_buf();
                let result = sh.read_extent(extent, &mut buf, out);
                sh.return_read_buf(buf);
                bump(&sh.counters.copy_out_reads, 1);
                return result;
            }
            st = sh.wait(st);
        }
    }

    /// The body as a new vector (copy-out; does not admit).
    pub fn read_to_vec(&self) -> Result<Vec<u8>, PoolError> {
        let mut v = Vec::new();
        self.read_into(&mut v)?;
        Ok(v)
    }

    /// Consumes the chunk, returning its body.
    pub fn take(self) -> Result<Vec<u8>, PoolError> {
        self.read_to_vec()
    }

    /// Asks a spill thread to fault an evicted chunk back in ahead of a read. Does nothing for
    /// resident chunks; dropped (and counted) when the queue is full or the budget has no
    /// room without waiting.
    pub fn prefetch(&self) {
        let sh = &self.shared;
        let evicted = matches!(
            lock(&sh.state).entries[self.id as usize].body,
            Body::Evicted { .. }
        );
        if evicted {
            bump(&sh.counters.prefetches, 1);
            if !sh.queue.try_prefetch(self.chunk()) {
                bump(&sh.counters.prefetches_dropped, 1);
            }
        }
    }

    /// The depth hint the chunk was inserted with.
    pub fn hints(&self) -> ChunkHints {
        lock(&self.shared.state).entries[self.id as usize].hints
    }
}

impl Drop for ChunkHandle {
    fn drop(&mut self) {
        self.shared.free(self.chunk());
    }
}

/// A pinned, zero-copy view of a chunk body. The chunk stays resident, in the same slot,
/// until the guard drops. Owns its pin: it may outlive the borrow of the handle, and even the
/// handle (the free is then deferred).
pub struct PinGuard {
    shared: Arc<Shared>,
    /// `u32::MAX`: a detached heap copy (see [`ChunkHandle::pin`]), not a pin.
    id: u32,
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: a PinGuard is a shared view of immutable bytes whose lifetime is guaranteed by the
// pin (like `Arc<[u8]>`); unpinning goes through the pool's mutex.
unsafe impl Send for PinGuard {}
// SAFETY: as above; `&PinGuard` only gives `&[u8]`.
unsafe impl Sync for PinGuard {}

const DETACHED: u32 = u32::MAX;

impl PinGuard {
    fn detached(shared: &Arc<Shared>, bytes: Vec<u8>) -> PinGuard {
        let bytes = Box::leak(bytes.into_boxed_slice());
        PinGuard {
            shared: Arc::clone(shared),
            id: DETACHED,
            ptr: NonNull::new(bytes.as_mut_ptr()).unwrap_or(NonNull::dangling()),
            len: bytes.len(),
        }
    }

    /// The body as `u64` words. Panics if the length is not a multiple of 8. Slots are
    /// page-aligned, so the cast never fails on alignment.
    pub fn as_u64s(&self) -> &[u64] {
        assert_eq!(
            self.len % 8,
            0,
            "chunk length {} is not a multiple of 8",
            self.len
        );
        assert_eq!(
            self.ptr.as_ptr() as usize % 8,
            0,
            "chunk body is not 8-byte aligned"
        );
        // SAFETY: the bytes are valid and immutable while the pin is held (see `deref`);
        // alignment and length were checked, and every bit pattern is a valid u64.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().cast::<u64>(), self.len / 8) }
    }
}

impl Deref for PinGuard {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: the pin keeps the chunk resident in this slot (or oversize buffer), which
        // nobody writes while pinned, and the region outlives `self.shared`, which we hold.
        // The first `len` bytes were initialized by the fill or by the fault-in's decode.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl AsRef<[u8]> for PinGuard {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl Clone for PinGuard {
    fn clone(&self) -> Self {
        if self.id == DETACHED {
            return PinGuard::detached(&self.shared, self.to_vec());
        }
        let mut st = lock(&self.shared.state);
        st.entries[self.id as usize].pins += 1;
        PinGuard {
            shared: Arc::clone(&self.shared),
            id: self.id,
            ptr: self.ptr,
            len: self.len,
        }
    }
}

impl Drop for PinGuard {
    fn drop(&mut self) {
        if self.id == DETACHED {
            // SAFETY: `detached` leaked exactly this boxed slice; we reclaim it once.
            drop(unsafe {
                Box::from_raw(std::ptr::slice_from_raw_parts_mut(
                    self.ptr.as_ptr(),
                    self.len,
                ))
            });
            return;
        }
        self.shared.unpin(self.id);
    }
}

impl std::fmt::Debug for PinGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinGuard").field("len", &self.len).finish()
    }
}

// Slot views are handed out as `&[u64]`: slots must be at least 8-byte aligned.
const _: () = assert!(PAGE % 8 == 0);
