//! The integration tests of spillway-trace, in one binary (one link, and the tests of every
//! module run in parallel). None of them needs a process of its own: each builds its own
//! pool and asserts on that pool's counters, never on process-wide figures such as RSS or a
//! global allocator's, and the trace's only thread-locals (the batcher's paging scope, the
//! per-level merge times) are per worker thread.
//!
//! - [`oracle`]: paged and resident arrangements against upstream's `OrdValSpine` and a model,
//!   through cursors, batch streams, `join_core`, `count`, `distinct` and reduces, for `u64`
//!   records, `String` keys and values, a derived struct key and enum value, and
//!   `Product<u64, u32>` times (proptest).
//! - [`product_time`]: partially ordered `Product<u64, u32>` times, compacted by two-element
//!   frontiers, against `OrdValSpine` and a model (proptest).
//! - [`pass_through`]: chunk-level behaviour the oracle cannot see (pooled chunks stay pooled).
//! - [`smoke`], [`import`], [`reduce_output`], [`strings`]: end-to-end joins, imports,
//!   reduce outputs and variable-length types under tiny budgets.
//! - [`residency`], [`die_young`]: the pool's bounds (resident bytes, die-young elision).
//! - [`iterate`]: paged arrangements inside `iterate` (`Product<u64, u64>` times), BFS over
//!   changing edges against a sequential BFS.
//! - [`types`]: the provided types (`i32`, tuple and `Present` diffs; `Option`, `Reverse`,
//!   `char`, arrays, wide tuples, `Duration`, `Product` keys and values; `(String, u64)`,
//!   `Vec<u32>`, `Option<String>`, `(u32, Vec<String>)`; derived structs and enums) paged
//!   against `OrdValSpine`.
//! - [`codec`]: every kind of `PagedData`, derived ones included, round-trips through its
//!   encoding and orders as its values (proptest).
//! - [`operators`]: an upstream dataflow ported to `PagedCollectionExt`, against the original.
//! - [`reduce_paged`]: the paged reduce tactic and `PagedCollectionExt` against upstream.
//! - [`vectored`]: vectored lookups and the vectored join against their cursor counterparts.
//! - [`skew`]: the vectored join under hot keys: equal to upstream, buffers within bounds.
//! - [`wide`]: records of 4 KiB, 64 KiB and over 8 MiB: chunks cut by bytes page, and the one
//!   oversize record is counted and read back.

#[path = "trace/codec.rs"]
mod codec;
#[path = "trace/die_young.rs"]
mod die_young;
#[path = "trace/import.rs"]
mod import;
#[path = "trace/iterate.rs"]
mod iterate;
#[path = "trace/operators.rs"]
mod operators;
#[path = "trace/oracle/mod.rs"]
mod oracle;
#[path = "trace/pass_through.rs"]
mod pass_through;
#[path = "trace/product_time.rs"]
mod product_time;
#[path = "trace/reduce_output.rs"]
mod reduce_output;
#[path = "trace/reduce_paged.rs"]
mod reduce_paged;
#[path = "trace/residency.rs"]
mod residency;
#[path = "trace/skew.rs"]
mod skew;
#[path = "trace/smoke.rs"]
mod smoke;
#[path = "trace/strings.rs"]
mod strings;
#[path = "trace/types.rs"]
mod types;
#[path = "trace/vectored.rs"]
mod vectored;
#[path = "trace/wide.rs"]
mod wide;
