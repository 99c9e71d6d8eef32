//! # spillway
//!
//! A larger-than-memory state backend for differential dataflow: arrangements keep their
//! sealed sorted runs in a byte-budgeted buffer pool, and cold chunks are lz4-compressed into
//! checksummed extents on a scratch file (or swap, or memory) and read back on demand.
//!
//! This package is the facade: it re-exports the layers and hosts the `spillway` binary, the
//! examples and the benches.
//! - [`pool`] (crate `spillway-pool`): layers 1–2, the extent stores and the buffer pool.
//! - [`trace`] (crate `spillway-trace`): layer 3, paged arrangements for differential.
//!
//! See `doc/architecture.md` for the design and `README.md` for usage.

pub use spillway_pool as pool;
pub use spillway_pool::{
    ChunkHandle, ChunkHints, ConfigError, ExtentBackend, PinGuard, Pool, PoolConfig, PoolError,
    PoolStats,
};
pub use spillway_trace as trace;
pub use spillway_trace::{ArrangePaged, ArrangeSelfPaged, Paging, PagingPolicy};

pub mod workload;
