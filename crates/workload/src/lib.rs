//! # spillway-workload: the workloads the `spillway` CLI, the examples and the benches run
//!
//! Every workload is a function of a plain, already validated description: an
//! [`input::InputSpec`] says which updates and probes are generated, a [`plan::QueryPlan`]
//! which query runs on which backend with which pool, a [`pool_throughput::ThroughputSpec`]
//! what the pool-throughput measurement moves. Nothing here parses flags or draws on a
//! terminal: the binary turns its flags into these structs (and rejects bad ones) before any
//! work starts, and shows progress through the [`progress::Progress`] trait. Each item has one
//! path, through its module.
//!
//! - [`input`]: the generated updates and probes, and the order-independent checksums;
//! - [`string_input`]: the same input as string records (`--records strings`), and the hashes
//!   of their checksums;
//! - [`data`]: columnar chunks of synthetic updates (pool-level workloads);
//! - [`plan`]: workloads, backends, join tactics and the validated [`plan::QueryPlan`];
//! - [`colspill`]: the `dd-col` backend, upstream's `ColChunk` trace with its spill;
//! - [`levels`]: the per-spine-level recorder behind `spillway levels`;
//! - [`report`]: the typed [`report::RunReport`] (the JSON contract) and what workers exchange;
//! - [`run`]: runs a plan's build / query / scan dataflows (one body for every backend and
//!   kind of record, in the private `phases` module; the `u64` records and their backends in
//!   the private `query` module, string records in `strings`) on timely workers and gathers
//!   one report;
//! - [`lookup`]: per-key versus vectored point lookups;
//! - [`pool_throughput`]: the pool's evict and fault-in throughput against raw lz4;
//! - [`progress`], [`units`], [`rss`]: progress hooks, count parsing and rates, memory use.

#![forbid(unsafe_code)]

pub mod colspill;
pub mod data;
pub mod input;
pub mod key_dist;
pub mod levels;
pub mod lookup;
mod phases;
pub mod plan;
pub mod pool_throughput;
pub mod progress;
mod query;
pub mod report;
pub mod rss;
pub mod run;
pub mod string_input;
mod strings;
pub mod units;
