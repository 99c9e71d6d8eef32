//! # spillway-trace: paged arrangements for differential dataflow (layer 3)
//!
//! A [`PagedChunk`] implements differential's `Chunk` and `NavigableChunk`, so upstream's
//! chunk harness turns it into a full trace: [`PagedSpine`], [`PagedBatcher`],
//! [`PagedBuilder`]. Switch an arrangement with one call and a runtime flag:
//!
//! ```ignore
//! let pool = spillway::Pool::new(spillway::PoolConfig::default().budget("256MiB")?)?;
//! timely::execute(config, move |worker| {
//!     let paging = spillway::Paging::enabled(&pool); // or Paging::disabled()
//!     worker.dataflow(|scope| {
//!         let arranged = collection.arrange_by_key_paged(&paging);
//!         arranged.join_core(other_arranged, |k, v1, v2| ...);
//!     });
//! })
//! ```
//!
//! Keys, values, times and diffs must be [`PagedData`]: fixed-width types ([`FixedWidth`]:
//! integers, tuples of them, your own), which cursors return by value, or variable-length
//! ones (`String`, `Vec<u8>`), returned by reference (see [`chunk`] for why both are sound,
//! and what the by-reference path costs). Many keys are looked up at once with
//! [`get_vectored`] / [`for_each_update`] (one sweep per batch, coalesced reads, no caches),
//! and [`JoinVectored::join_core_vectored`] joins through them. [`PagingPolicy`] backs each
//! spine level lazily or eagerly; [`levels`] and `Pool::level_stats` report per level. See
//! `doc/design/paged-trace.md` for the design and what is still to come.

pub mod arrange;
pub mod chunk;
pub mod data;
pub mod fixed;
pub mod join;
pub mod levels;
pub mod pager;
pub mod records;
pub mod vectored;

pub use arrange::{ArrangePaged, ArrangeSelfPaged, PagedBatcher, PagedBuilder, PagedSpine};
pub use chunk::{PagedChunk, PagedCursor};
pub use data::PagedData;
pub use fixed::{FixedColumn, FixedWidth};
pub use join::{JoinStats, JoinVectored, VectoredJoin};
pub use pager::{ColumnPager, Paging, PagingPolicy};
pub use vectored::{for_each_update, get_vectored, LookupStats};
