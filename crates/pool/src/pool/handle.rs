//! The user's handles: [`Pool`] (a clone of the shared state, for inserting and control) and
//! [`ChunkHandle`] (owns one chunk).
//!
//! Invariant: a live `ChunkHandle` names a live chunk (its slab entry has the handle's
//! generation and is not `freed`); dropping the handle is the only way a chunk is freed.
//! Opening a pool validates the configuration and opens the extent store before any chunk
//! exists, so bad configuration is refused up front.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::hints::{ChunkHints, ChunkState};
use super::state::{lock, Body, Shared};
use crate::config::{validate_budget, ExtentBackend, PoolConfig};
use crate::error::ConfigError;
use crate::extent::file::{FileStore, FileStoreOptions};
use crate::extent::memory::MemoryStore;
use crate::extent::swap::{SwapStore, SwapStoreOptions};
use crate::extent::ExtentStore;
use crate::region::SlotRegion;
use crate::slot::{slot_size, SLOT_CLASSES};
use crate::spill::{self, ChunkRef, SpillQueue};
use crate::stats::{Counters, PoolStats, StatsSource};

/// A byte-budgeted buffer pool. Cheap to clone (all clones share one pool); one pool per
/// process is meant to serve every worker thread.
///
/// # Chunk states
/// ```text
///   insert_with ──► UnbackedResident ──evict (queue/inline)──► WriteInFlight ──► Evicted
///                       │    ▲                                   │  (eager: ──► BackedResident)
///                       │    └──── write failed (ENOSPC/EIO) ◄───┘
///                       │
///   Evicted ──pin/prefetch──► Loading ──► BackedResident ──evict: page release, no I/O──► Evicted
///   len > 8 MiB ──► Oversize (heap, outside the budget, never evicted)
/// ```
/// A chunk keeps its extent once written: a backed chunk that is evicted again costs no I/O
/// (*cheap eviction*), and a chunk freed before it was ever written costs no compression and
/// no I/O (*die-young elision*: freeing a chunk whose write is still queued cancels it).
///
/// # Pins
/// [`ChunkHandle::pin`] returns a [`PinGuard`](crate::PinGuard), a zero-copy view of the body in its slot. A
/// pinned chunk is never evicted and its slot never reused, so the view stays valid for the
/// guard's life; the guard owns its pin (it holds the pool, not a borrow of the handle), so
/// cursors can keep it. Dropping the handle while pins exist defers the free to the last
/// unpin. Slot memory is written only by `insert_with`'s fill (before the chunk is published)
/// and by a fault-in (in state `Loading`, before it is published), never while a view exists.
///
/// # Budget identity
/// `resident_bytes` is the sum of slot sizes of chunks that hold a slot (resident, being
/// written, being loaded). Eviction works towards `resident_bytes ≤ budget`; inserts and
/// fault-ins wait until `resident_bytes + slot ≤ budget + min(pending, write_behind)`, where
/// `pending` is the slot bytes of evictions whose writes are in flight: residency over the
/// budget is the write-behind allowance, evictions on their way out. Only pins (or writes
/// that cannot happen) push residency over the budget otherwise, counted in
/// `budget_overshoots`. Freed slots keep their pages on a warm list capped at
/// `min(budget/8, 1 GiB)` (`warm_bytes`), beyond which they are released. So the pool's memory
/// is at most `budget + write_behind + warm cap + pinned overshoot`, plus oversize chunks.
///
/// # Eviction
/// Resident chunks sit in second-chance FIFO queues, one per level (the depth hint, clamped
/// to `LEVELS - 1`); enforcement scans the deepest (oldest) level first. A pin marks a chunk
/// referenced; the scan clears the mark and skips the chunk once. Enforcement runs under the
/// state lock, so it is single-flight; the expensive part (compression and I/O) happens on
/// spill threads, or inline (one writer at a time) when the spill queue is full.
///
#[derive(Clone)]
pub struct Pool {
    pub(super) shared: Arc<Shared>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("budget", &self.budget())
            .field("extents", &self.shared.store.name())
            .finish_non_exhaustive()
    }
}

impl Pool {
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
            full_warned_at: Mutex::default(),
            next_probe: Mutex::new(std::time::Instant::now()),
            probing: AtomicBool::new(false),
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

    /// Whether `other` is a clone of this pool (the same buffers and store).
    pub fn same_pool(&self, other: &Pool) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
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

    /// Slot bytes of resident chunks now (the budgeted quantity; see [`PoolStats`]).
    pub fn resident_bytes(&self) -> u64 {
        lock(&self.shared.state).resident_bytes
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
    /// scrape. `labels` are attached to every metric (e.g. `[("process", "0")]`). Feature
    /// `prometheus`.
    #[cfg(feature = "prometheus")]
    pub fn register_metrics(
        &self,
        registry: &prometheus::Registry,
        labels: &[(&str, &str)],
    ) -> prometheus::Result<()> {
        let weak: std::sync::Weak<dyn StatsSource> =
            Arc::downgrade(&self.shared) as std::sync::Weak<Shared>;
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

/// Owns one chunk of a [`Pool`]; dropping it frees the chunk (deferred while pins exist).
pub struct ChunkHandle {
    pub(super) shared: Arc<Shared>,
    pub(super) id: u32,
    pub(super) gen: u32,
    pub(super) len: usize,
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
    /// A handle owning the chunk `c` of `shared`.
    pub(super) fn new(shared: &Arc<Shared>, c: ChunkRef, len: usize) -> ChunkHandle {
        ChunkHandle {
            shared: Arc::clone(shared),
            id: c.0,
            gen: c.1,
            len,
        }
    }

    /// Body length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for an empty body.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The chunk's name in the slab.
    pub(super) fn chunk(&self) -> ChunkRef {
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
