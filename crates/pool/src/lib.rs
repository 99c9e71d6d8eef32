//! # spillway-pool: a byte-budgeted buffer pool over compressed extents
//!
//! Layers 1 and 2 of spillway. A [`Pool`] keeps immutable chunk bodies (sealed sorted runs,
//! in spillway's case) in size-class slots of reserved address space, under a byte budget
//! that can change at run time. When the budget is exceeded, cold chunks are lz4-compressed
//! and checksummed into *extents* on an [`ExtentStore`] by spill threads, and read
//! back (verified) when pinned again. This crate knows nothing of differential dataflow.
//!
//! ```
//! use spillway_pool::{ChunkHints, Pool, PoolConfig};
//!
//! let pool = Pool::new(PoolConfig::default().budget("64MiB")?)?;
//! let chunk = pool.insert_with(1 << 20, ChunkHints::depth(0), |body| body.fill(7));
//! let view = chunk.pin()?; // zero-copy; faults the chunk back in if it was evicted
//! assert!(view.iter().all(|&b| b == 7));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Invariants (each has a test)
//! - A read returns the bytes inserted, or an error naming the extent; never other bytes.
//! - `resident_bytes ≤ budget + write_behind`, except when nothing is evictable (pins hold
//!   the rest, or writes are disabled or the store is full): then a slot is granted over
//!   budget and counted in `budget_overshoots`. The pool's total is bounded by the budget
//!   identity: `budget + write_behind + warm cap + overshoot`, plus oversize chunks.
//! - A chunk freed before it was written costs no compression and no I/O; evicting an
//!   already-backed chunk costs no I/O.
//! - No view into pool memory outlives the pin that protects it ([`PinGuard`]).
//! - Codec scratch belongs to its writer, is cleared on every use, and is bounded
//!   (lz4's worst case for the largest slot body).
//! - Bad configuration is refused by [`Pool::new`] with a [`ConfigError`]; write failures keep
//!   data resident and are counted, never lost.
//!
//! ## Unsafe code
//! Confined to `aligned` (page-aligned buffers), `region` (slot mappings),
//! `pool/slot_view` (the only code turning slot memory into slices), the `swap` extent store
//! (its arena), the file store's `os` module (`fallocate`, `fcntl`) and `machine`
//! (`sysconf`), and `stable` (the read-only shared file mappings behind [`StableBytes`]); each block names its invariant in a `// SAFETY:` comment. With the `heap-regions` feature the
//! mappings are replaced by heap blocks so Miri can check the pool logic.

//!
//! ## Public surface
//! Everything is exported at the crate root; the modules are private. Besides the pool
//! ([`Pool`], [`ChunkHandle`], [`PinGuard`], ...), the extent stores are public so that a
//! pool can be built over a custom or instrumented one ([`Pool::with_store`]): the
//! [`ExtentStore`] trait with [`FileStore`], [`SwapStore`] and [`MemoryStore`]. With the
//! `fault-injection` feature, `FaultyIo` injects I/O faults into a [`FileStore`].

mod aligned;
mod codec;
mod config;
mod error;
mod extent;
mod machine;
mod pool;
mod region;
mod slot;
mod spill;
mod stable;
mod stats;

pub use aligned::AlignedBuf;
pub use codec::Compression;
pub use config::{format_size, parse_size, validate_budget, ByteSize, ExtentBackend, PoolConfig};
pub use error::{ConfigError, PoolError};
pub use extent::file::{DiskUsage, ExtentIo, FileStore, FileStoreOptions, ZERO_FILL_CHUNK};
#[cfg(feature = "fault-injection")]
pub use extent::file::{FaultRates, FaultyIo, ReadFault, WriteFault};
pub use extent::memory::MemoryStore;
pub use extent::swap::{swap_available, SwapStore, SwapStoreOptions, SWAP_FREE_MARGIN};
pub use extent::{ExtentAddr, ExtentStore, StoreCounters, StoreError, EXTENT_ALIGN};
pub use pool::{
    Backing, ChunkHandle, ChunkHints, ChunkState, PinGuard, Pool, VectoredReads, COALESCE_CAP,
    LEVELS, READ_RETRY_DELAYS, WRITE_PROBE_INTERVAL, WRITE_RETRY_DELAYS,
};
pub use slot::{MAX_SLOT, MIN_SLOT};
pub use stable::{StableArena, StableBytes, StableStats};
pub use stats::{LevelStats, PoolStats, StatKind};
