//! # spillway-trace: paged arrangements for differential dataflow (layer 3)
//!
//! A [`PagedChunk`] implements differential's `Chunk` and `NavigableChunk`, so upstream's
//! chunk harness maintains a trace of them: [`PagedSpine`] (of [`PagedBatch`]es, read with
//! our [`PagedBatchCursor`]), [`PagedBatcher`], [`PagedBuilder`]. Sealed chunks of at least [`PagingPolicy::min_bytes`] enter a
//! [`spillway_pool::Pool`] when they settle, and come back when a merge, a cursor or a
//! lookup reads them. Switch an arrangement with one call and a runtime flag:
//!
//! ```
//! use differential_dataflow::input::Input;
//! use spillway_pool::{Pool, PoolConfig};
//! use spillway_trace::{ArrangePaged, Paging};
//! use std::sync::{Arc, Mutex};
//!
//! let pool = Pool::new(PoolConfig::default().budget("16MiB")?)?;
//! let page = true; // a runtime flag: the dataflow's types do not depend on it
//! let joined = Arc::new(Mutex::new(Vec::new()));
//! let sink = joined.clone();
//! timely::execute_directly(move |worker| {
//!     let paging = if page { Paging::enabled(&pool) } else { Paging::disabled() };
//!     let (mut left, mut right) = worker.dataflow::<u64, _, _>(|scope| {
//!         let (left_in, left) = scope.new_collection::<(u64, u64), isize>();
//!         let (right_in, right) = scope.new_collection::<(u64, u64), isize>();
//!         left.arrange_by_key_paged(&paging)
//!             .join_core(right.arrange_by_key_paged(&paging), |k, v1, v2| Some((k, v1 + v2)))
//!             .inspect(move |(record, _time, diff)| sink.lock().unwrap().push((*record, *diff)));
//!         (left_in, right_in)
//!     });
//!     for key in 0..100u64 {
//!         left.update((key, 1), 1);
//!         right.update((key, 2), 1);
//!     }
//! }); // the inputs close here, and the dataflow runs to completion
//! let mut joined = joined.lock().unwrap().clone();
//! joined.sort();
//! assert_eq!(joined, (0..100).map(|k| ((k, 3), 1)).collect::<Vec<_>>());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## What a paged arrangement holds
//! Keys, values, times and diffs must be [`PagedData`], implemented per type and
//! structurally: fixed-width types (every part fixed-width; [`FixedWidth`] names those read
//! by value) come back from cursors by value, with the cursor holding the pin;
//! variable-length ones come back borrowed, from bytes that stay valid while the batch is
//! borrowed without staying resident (a pooled chunk's *stable bytes*; counted by
//! [`Paging::stable_bytes`]), in their columnar form: `&str` for `String`, `&[u8]` for
//! `Vec<u8>`, a [`Seq`] for other vectors, and the same composite of its parts' items for a
//! tuple, array, `Option` or `Product` (`(&str, u64)` for `(String, u64)`). spillway provides
//! [`PagedData`] for every type a differential user arranges or nests, so the orphan rule
//! never stands in the way:
//! - every integer (to `u128`/`i128`, `usize`/`isize`), `bool`, `char`, `()`, `String`,
//!   `Vec<T>`;
//! - timestamps: the integers, `()`, `Duration`, tuples, and timely's `Product<A, B>` to any
//!   depth, so arrangements inside `iterate` (at `Product<T, u64>`) and nested scopes page;
//!   partially ordered times are compacted by `set_logical_compaction` like upstream's;
//! - diffs: the integers, tuples of them (differential's `Semigroup` goes to four fields),
//!   `Wrapping` and differential's `Present`;
//! - tuples of up to 12 fields, arrays `[T; N]`, `Option<T>`, `Reverse<T>`, with fixed-width
//!   and variable-length parts mixed freely (`(String, u64)`, `Option<String>`,
//!   `(u32, Vec<String>)`);
//! - your own structs and enums: `#[derive(PagedData)]` (the type's `Ord` must be the derived
//!   one). All fields fixed-width: read by value; otherwise through a generated
//!   `FooRef<'a>` of the fields' items.
//!
//! Order is always the value's `Ord` (items order as values do); encodings are never
//! compared.
//! Both sides of a `join_core` must be paged arrangements. A `reduce` into a
//! [`PagedSpine`] pages its output when its `push` closure starts each chunk with
//! [`PagedChunk::with_paging`].
//!
//! Inside `iterate`, arrange the loop variable paged at `Product<T, u64>` time and bring
//! outer arrangements in with `Arranged::enter`:
//!
//! ```
//! use differential_dataflow::input::Input;
//! use differential_dataflow::operators::Iterate;
//! use spillway_pool::{Pool, PoolConfig};
//! use spillway_trace::{ArrangePaged, Paging};
//! use std::sync::{Arc, Mutex};
//!
//! let pool = Pool::new(PoolConfig::default().budget("16MiB")?)?;
//! let reached = Arc::new(Mutex::new(Vec::new()));
//! let sink = reached.clone();
//! timely::execute_directly(move |worker| {
//!     let paging = Paging::enabled(&pool);
//!     let (mut roots, mut edges) = worker.dataflow::<u64, _, _>(|scope| {
//!         let (roots_in, roots) = scope.new_collection::<u64, isize>();
//!         let (edges_in, edges) = scope.new_collection::<(u64, u64), isize>();
//!         let edges = edges.arrange_by_key_paged(&paging);
//!         let roots = roots.map(|node| (node, ()));
//!         roots
//!             .clone()
//!             .iterate(move |inner, reach| {
//!                 reach
//!                     .arrange_by_key_paged(&paging) // at Product<u64, u64> time
//!                     .join_core(edges.enter(inner), |_src, (), dst| Some((dst, ())))
//!                     .concat(roots.enter(inner))
//!                     .distinct()
//!             })
//!             .inspect(move |((node, ()), _time, diff)| sink.lock().unwrap().push((*node, *diff)));
//!         (roots_in, edges_in)
//!     });
//!     roots.update(0, 1);
//!     for (src, dst) in [(0, 1), (1, 2), (2, 0), (3, 4)] {
//!         edges.update((src, dst), 1);
//!     }
//! });
//! let mut reached = reached.lock().unwrap().clone();
//! reached.sort();
//! assert_eq!(reached, vec![(0, 1), (1, 1), (2, 1)]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Paged operators
//! [`ReducePaged::reduce_paged`] (and `reduce_core_paged`, [`ThresholdPaged`]'s `count`,
//! `distinct`, `threshold`) reduces a paged arrangement into one whose chunks page with the
//! [`Paging`] it is given, through the [`PagedReduce`] tactic: each batch read in key order,
//! each chunk at most once per interval, the output equal to upstream's cursor tactic's for
//! partially ordered times too. [`CountTotalPaged`] has the total-order `count_total`,
//! `threshold_total`, `distinct_total`. [`PagedCollectionExt`] puts them and the joins on
//! `VecCollection` as differential's own operators with a `_paged` suffix and a `&Paging`,
//! every arrangement in the pool: porting a dataflow is a rename plus the paging argument.
//!
//! ## Vectored reads
//! [`get_vectored`] and [`for_each_update`] look many sorted keys up at once: each batch is
//! swept once over its chunks' resident fences, every touched pooled chunk is read once with
//! coalesced reads, and nothing is cached, so memory stays bounded for every type.
//! [`JoinVectored::join_core_vectored`] joins through them ([`VectoredJoin`]).
//!
//! ## Levels
//! A chunk carries a *depth* (0 for batcher output, merge outputs one deeper than their
//! deepest input); reports call it its *level* ([`level_of`], [`LEVELS`]). [`PagingPolicy`]
//! backs each level lazily or eagerly; [`spine_levels`] counts a trace's batches, chunks and
//! records per level, [`take_merge_times`] the merge time per level, and
//! `Pool::level_stats` the pool's side.
//!
//! ## Features
//! - `serde`: `Serialize` and `Deserialize` for [`PagingPolicy`], `Serialize` for the level
//!   reports [`SpineLevel`] and [`MergeTime`].
//!
//! This crate has no `unsafe` code: pool memory is only read through the pool's pins.

#![forbid(unsafe_code)]

// The derive names this crate as `::spillway_trace`, in its own tests too.
extern crate self as spillway_trace;

mod arrange;
mod batch;
mod batch_reader;
mod chunk;
mod composite;
mod data;
mod fixed;
mod join;
mod level;
mod merge_times;
mod operators;
mod pager;
mod parts;
mod records;
mod reduce;
mod seq;
mod spine_levels;
mod vectored;

pub use arrange::{
    ArrangePaged, ArrangeSelfPaged, PagedBatcher, PagedSpine, RunChunker, SORT_RUN, SORT_RUN_BYTES,
};
pub use batch::{PagedBatch, PagedBatchCursor, PagedBuilder, PagedMerger};
pub use chunk::{PagedChunk, PagedCursor};
pub use data::{ItemColumn, PagedData, SeqForm};
pub use fixed::FixedWidth;
pub use join::{
    JoinStats, JoinVectored, VectoredJoin, JOIN_FRESH_BYTES, JOIN_FRESH_RECORDS, JOIN_GROUP_KEYS,
    JOIN_STEP_RECORDS, JOIN_WINDOW_BYTES, JOIN_WINDOW_RECORDS,
};
pub use level::{level_of, LEVELS};
pub use merge_times::{take_merge_times, MergeTime};
pub use operators::{KeyVal, PagedCollectionExt};
pub use pager::{Paging, PagingPolicy, StableBytesReport};
pub use parts::{fixed_width, widest, FieldReader, FieldWriter, FieldsLen};
pub use records::TARGET_BYTES;
pub use reduce::{CountTotalPaged, PagedReduce, ReducePaged, ThresholdPaged};
pub use seq::{Bytes, Elements, Seq};
/// `#[derive(PagedData)]` for your own structs and enums (see the `PagedData` trait).
pub use spillway_derive::PagedData;
pub use spine_levels::{spine_levels, SpineLevel};
pub use vectored::{chunks_touched, for_each_update, get_vectored, LookupStats};

/// What `#[derive(PagedData)]` generates code against (not public API: use the items at the
/// crate root).
#[doc(hidden)]
pub mod __derive {
    pub use crate::data::{ItemColumn, PagedData};
    pub use crate::parts::{fixed_width, widest, FieldReader, FieldWriter, FieldsLen};
    pub use crate::seq::Elements;
}
