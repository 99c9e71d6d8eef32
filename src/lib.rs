//! # spillway
//!
//! A larger-than-memory state backend for differential dataflow: arrangements keep their
//! sealed sorted runs in a byte-budgeted buffer pool, and cold chunks are lz4-compressed into
//! checksummed extents on a scratch file (or swap, or memory) and read back on demand.
//!
//! This crate is the facade: every item a user needs, at one flat path each.
//! - The pool (crate `spillway-pool`, layers 1–2): [`Pool`], [`PoolConfig`], [`ChunkHandle`],
//!   [`ChunkHints`], [`PinGuard`], [`PoolStats`], [`LevelStats`], [`ExtentBackend`],
//!   [`ConfigError`], [`PoolError`], and the size helpers [`parse_size`], [`format_size`].
//! - Paged arrangements (crate `spillway-trace`, layer 3): [`Paging`], [`PagingPolicy`],
//!   [`ArrangePaged`], [`ArrangeSelfPaged`], [`PagedSpine`], [`PagedData`], [`FixedWidth`],
//!   [`StableBytesReport`] (what `String`/`Vec<u8>` cursor reads keep resident),
//!   vectored lookups ([`get_vectored`], [`for_each_update`], [`LookupStats`]) and the
//!   vectored join ([`JoinVectored`]), per-level reports ([`spine_levels`], [`SpineLevel`]).
//! - Paged operators: the reduce tactic ([`PagedReduce`], [`ReducePaged`], [`ThresholdPaged`],
//!   [`CountTotalPaged`]) and differential's collection operators with every arrangement in
//!   the pool ([`PagedCollectionExt`]: `join_paged`, `reduce_paged`, `distinct_paged`, ...).
//!
//! The `spillway` binary (feature `cli`, on by default) runs the workloads of the
//! `spillway-workload` crate; a library user can turn it off with `default-features = false`
//! and compiles no flag parser or progress bar. See `doc/architecture.md` for the design and
//! `README.md` for usage.

#![forbid(unsafe_code)]

pub use spillway_pool::{
    format_size, parse_size, ChunkHandle, ChunkHints, ConfigError, ExtentBackend, LevelStats,
    PinGuard, Pool, PoolConfig, PoolError, PoolStats,
};
pub use spillway_trace::{
    for_each_update, get_vectored, ArrangePaged, ArrangeSelfPaged, FixedWidth, JoinVectored,
    LookupStats, PagedData, PagedSpine, Paging, PagingPolicy, StableBytesReport,
};
pub use spillway_trace::{spine_levels, SpineLevel};

pub use spillway_trace::{
    CountTotalPaged, KeyVal, PagedCollectionExt, PagedReduce, ReducePaged, ThresholdPaged,
};

/// The README's code blocks, compiled and run as doctests so they cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
