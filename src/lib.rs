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
//!   [`ArrangePaged`], [`ArrangeSelfPaged`], [`PagedSpine`] (a spine of [`PagedBatch`]es, as
//!   `batches_through` hands them out), [`PagedData`] (the trait, and
//!   `#[derive(PagedData)]` for your own structs and enums), [`FixedWidth`], [`Seq`],
//!   [`StableBytesReport`] (what `String`/`Vec<u8>` cursor reads keep resident),
//!   vectored lookups ([`get_vectored`], [`for_each_update`], [`LookupStats`]) and the
//!   vectored join ([`JoinVectored`]), per-level reports ([`spine_levels`], [`SpineLevel`]).
//! - Paged operators: the reduce tactic ([`PagedReduce`], [`ReducePaged`], [`ThresholdPaged`],
//!   [`CountTotalPaged`]) and differential's collection operators with every arrangement in
//!   the pool ([`PagedCollectionExt`]: `join_paged`, `reduce_paged`, `distinct_paged`, ...).
//!
//! Your own key, value and time types page through the derive, with no codec to write (the
//! type's `Ord` must be the derived one):
//!
//! ```
//! use spillway::PagedData;
//!
//! #[derive(PagedData, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
//! struct Account {
//!     region: u16,
//!     name: String, // so cursors read an `AccountRef<'a>` with `name: &'a str`
//! }
//!
//! #[derive(PagedData, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
//! enum Status {
//!     Open(u32),
//!     Closed,
//! } // all fields fixed-width: read by value, 5 bytes
//!
//! let account = Account { region: 3, name: "ada".into() };
//! let AccountRef { region, name } = account.item();
//! assert_eq!((region, name), (3, "ada"));
//! assert_eq!(<Status as PagedData>::WIDTH, Some(5));
//! fn by_value<X: spillway::FixedWidth>() {}
//! by_value::<Status>();
//! ```
//!
//! The `spillway` binary (feature `cli`, on by default) runs the workloads of the
//! `spillway-workload` crate; a library user can turn it off with `default-features = false`
//! and compiles no flag parser or progress bar. See `doc/architecture.md` for the design and
//! `README.md` for usage.

#![forbid(unsafe_code)]

/// `#[derive(PagedData)]`: spillway-trace's derive, generating code against this crate's paths.
pub use spillway_derive::SpillwayPagedData as PagedData;
pub use spillway_pool::{
    format_size, parse_size, ChunkHandle, ChunkHints, ConfigError, ExtentBackend, LevelStats,
    PinGuard, Pool, PoolConfig, PoolError, PoolStats,
};
/// What `#[derive(spillway::PagedData)]` generates code against (not public API).
#[doc(hidden)]
pub use spillway_trace::__derive;
/// The trait (spillway-trace's `PagedData`); the derive of the same name is below.
pub use spillway_trace::__derive::PagedData;
pub use spillway_trace::{
    for_each_update, get_vectored, ArrangePaged, ArrangeSelfPaged, FixedWidth, JoinVectored,
    LookupStats, PagedBatch, PagedSpine, Paging, PagingPolicy, Seq, StableBytesReport,
};
pub use spillway_trace::{spine_levels, SpineLevel};

pub use spillway_trace::{
    CountTotalPaged, KeyVal, PagedCollectionExt, PagedReduce, ReducePaged, ThresholdPaged,
};

/// The README's code blocks, compiled and run as doctests so they cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
