//! Pool statistics: a [`PoolStats`] snapshot and its Prometheus export.
//!
//! Every statistic is declared once, in the `pool_stats!` table below, with its kind
//! (monotonic counter or gauge), help text and, where the field name does not end in its
//! unit, its metric name; the struct, [`PoolStats::fields`] and the `spillway_pool_*`
//! Prometheus metrics (feature `prometheus`) all come from that table, so they cannot drift
//! apart. Metric names put the unit last (`spillway_pool_extent_written_bytes_total`); every
//! monotonic count is a Prometheus counter (with `_total`), only true levels are gauges.
//!
//! # Balances that hold when the pool is quiescent (tests check them)
//! - `inserts == frees + live_chunks`
//! - Every chunk freed before it was ever written counts once in `writes_elided`;
//!   `spill_cancelled` counts writes abandoned because their chunk was freed first (most of
//!   them before compression).
//! - `resident_bytes` is the sum of the slot sizes of chunks holding a slot.

use std::sync::atomic::{AtomicU64, Ordering};
#[cfg(feature = "prometheus")]
use std::sync::Weak;

#[cfg(feature = "prometheus")]
use prometheus::core::{Collector, Desc};
#[cfg(feature = "prometheus")]
use prometheus::{IntCounter, IntGauge, Opts, Registry};

/// Whether a statistic only grows (a counter) or goes up and down (a gauge).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatKind {
    /// Only grows (exported as a Prometheus counter).
    Counter,
    /// Goes up and down (exported as a Prometheus gauge).
    Gauge,
}

/// A statistic's Prometheus name (before `spillway_pool_` and `_total`): its field name, or
/// the name given after `as`.
#[cfg(feature = "prometheus")]
macro_rules! metric_name {
    ($name:ident) => {
        stringify!($name)
    };
    ($name:ident $metric:ident) => {
        stringify!($metric)
    };
}

macro_rules! pool_stats {
    ($( $kind:ident $name:ident $(as $metric:ident)? : $help:literal ),* $(,)?) => {
        /// A snapshot of the pool's counters and gauges. See the module docs for the balances.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
        #[cfg_attr(feature = "serde", serde(default))]
        pub struct PoolStats {
            $( #[doc = $help] pub $name: u64, )*
        }

        /// Field-wise sum, gauges included: the totals of several pools (a cluster's processes).
        impl std::ops::AddAssign<&PoolStats> for PoolStats {
            fn add_assign(&mut self, other: &PoolStats) {
                $( self.$name += other.$name; )*
            }
        }

        impl PoolStats {
            /// Every statistic as `(name, kind, help, value)`, in declaration order.
            pub fn fields(&self) -> Vec<(&'static str, StatKind, &'static str, u64)> {
                vec![ $( (stringify!($name), StatKind::$kind, $help, self.$name), )* ]
            }
        }

        /// Every statistic's metric name, in declaration order (see `metric_name!`).
        #[cfg(feature = "prometheus")]
        const METRIC_NAMES: &[&str] = &[ $( metric_name!($name $($metric)?), )* ];

        /// The pool's counters, bumped with relaxed atomics off the state lock. One atomic per
        /// statistic; the pool overwrites gauges and store counters at snapshot time.
        #[derive(Debug, Default)]
        pub(crate) struct Counters {
            $( pub $name: AtomicU64, )*
        }

        impl Counters {
            /// Every counter's current value.
            pub(crate) fn load(&self) -> PoolStats {
                PoolStats { $( $name: read(&self.$name), )* }
            }
        }
    };
}

pool_stats! {
    Counter inserts: "Chunks inserted.",
    Counter frees: "Chunks freed (handle dropped or taken).",
    Gauge live_chunks: "Chunks currently alive, in any state.",
        Counter writes_elided: "Chunks freed before they were ever written to an extent (no I/O; no compression unless a write had started).",
    Counter evictions_compress: "Evictions that compressed and wrote the chunk first.",
    Counter evictions_cheap: "Evictions of already-backed chunks: a page release, no I/O.",
    Counter eager_writes: "Chunks backed early by idle spill threads (stayed resident).",
    Counter fault_ins: "Evicted chunks read back into a slot (pin or prefetch).",
    Counter copy_out_reads: "Evicted chunks read into a caller buffer without taking a slot.",
    Counter vectored_calls: "Pool::pin_each calls (vectored pins).",
    Counter vectored_chunks: "Chunks pinned through pin_each.",
    Counter vectored_reads: "Extent reads issued by pin_each (one per coalesced run of adjacent extents).",
    Counter vectored_extents_coalesced: "Extents that pin_each read together with an earlier extent (read calls saved).",
    Counter prefetches: "Prefetches requested for evicted chunks.",
    Counter prefetches_dropped: "Prefetches skipped (queue full, no room in the budget, or chunk gone).",
    Gauge resident_bytes: "Slot bytes held by resident chunks (the budgeted quantity).",
    Gauge peak_resident_bytes: "Highest resident_bytes seen.",
    Gauge pinned_bytes: "Slot bytes of chunks pinned right now.",
    Gauge warm_bytes: "Free slot bytes kept with their pages on the warm list.",
    Gauge oversize_bytes: "Bytes of oversize chunks on the heap (outside the budget).",
    Counter oversize_chunks: "Chunks inserted oversize (over the largest slot class): kept on the heap, never evicted.",
    Gauge budget_bytes: "The current byte budget.",
    Counter budget_overshoots: "Times a slot was granted over budget + write-behind because nothing was evictable.",
    Counter extent_bytes_written as extent_written_bytes: "Bytes written to the extent store (padded frame lengths).",
    Counter extent_bytes_read as extent_read_bytes: "Bytes read from the extent store.",
    Gauge extent_bytes_live as extent_live_bytes: "Bytes of live extents in the store.",
    Counter bytes_compressed_in as compressed_input_bytes: "Uncompressed chunk bytes handed to the codec for writing.",
    Counter spill_scheduled: "Write jobs queued for spill threads.",
        Counter spill_cancelled: "Writes (queued, eager or inline) abandoned because the chunk was freed before its frame was written.",
    Gauge spill_in_flight: "Write jobs queued or running.",
    Counter inline_writes: "Evictions written inline because the spill queue was full (or no spill threads).",
    Counter write_nospace: "Writes refused because the extent store was full; the chunk stayed resident.",
    Counter io_errors: "I/O errors from the extent store (writes and reads).",
    Counter checksum_failures: "Extent reads whose checksum did not match.",
    Counter write_retries: "Extent writes retried (after a backoff) because the store returned an I/O error.",
    Counter read_retries: "Extent reads retried (re-reading the extent) after an I/O error or checksum mismatch.",
    Gauge writes_disabled: "1 while writes are disabled after a persistent write failure; data then stays resident and a probe write re-enables them.",
    Counter writes_reenabled: "Times a probe write succeeded and re-enabled writes after they were disabled.",
    Counter spill_panics: "Panics caught on spill threads (a store or codec call panicked); the chunk stayed intact and the thread kept serving.",
    Counter holes_punched: "Free extent ranges returned to the filesystem.",
    Counter extent_bytes_filled as extent_filled_bytes: "Zero bytes written to fill extent slots on first use, so that class files stay dense and are freed in a few large extents (not in extent_bytes_written).",
    Counter pageout_retries: "MADV_PAGEOUT retries (swap backend).",
    Counter pageout_declined: "Extents left resident after the last pageout retry (swap backend).",
}

/// Statistics of one *level*: the chunks inserted with that depth hint (deeper hints share
/// the last level, [`crate::LEVELS`]` - 1`). From [`crate::Pool::level_stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct LevelStats {
    /// Live chunks.
    pub chunks: u64,
    /// Slot bytes of its chunks that hold a slot (resident, being written or loaded).
    pub resident_bytes: u64,
    /// Padded bytes of its chunks' live extents.
    pub extent_bytes: u64,
    /// Chunks written to an extent (by eviction or eager backing).
    pub chunks_written: u64,
    /// Padded bytes those writes stored.
    pub extent_bytes_written: u64,
    /// Chunks freed before they were ever written.
    pub writes_elided: u64,
    /// Evicted chunks read back into a slot.
    pub fault_ins: u64,
}

/// The per-level counters behind [`LevelStats`] (its gauges are computed at snapshot time).
#[derive(Debug, Default)]
pub(crate) struct LevelCounters {
    pub chunks_written: AtomicU64,
    pub extent_bytes_written: AtomicU64,
    pub writes_elided: AtomicU64,
    pub fault_ins: AtomicU64,
}

/// Increments a counter by `n`.
pub(crate) fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// Reads a counter.
pub(crate) fn read(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

/// Something whose stats can be exported: implemented by the pool's shared state.
pub(crate) trait StatsSource: Send + Sync {
    fn snapshot(&self) -> PoolStats;
}

/// A Prometheus collector that snapshots a pool on every scrape.
#[cfg(feature = "prometheus")]
struct PoolCollector {
    source: Weak<dyn StatsSource>,
    counters: Vec<IntCounter>,
    gauges: Vec<IntGauge>,
    descs: Vec<Desc>,
}

#[cfg(feature = "prometheus")]
impl Collector for PoolCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        let stats = self
            .source
            .upgrade()
            .map(|s| s.snapshot())
            .unwrap_or_default();
        let (mut ci, mut gi) = (0, 0);
        let mut out = Vec::new();
        for (_, kind, _, value) in stats.fields() {
            match kind {
                StatKind::Counter => {
                    let c = &self.counters[ci];
                    ci += 1;
                    // Counters only grow; a fresh pool behind the same registry is not expected.
                    c.inc_by(value.saturating_sub(c.get()));
                    out.extend(c.collect());
                }
                StatKind::Gauge => {
                    let g = &self.gauges[gi];
                    gi += 1;
                    g.set(value as i64);
                    out.extend(g.collect());
                }
            }
        }
        out
    }
}

/// Registers the `spillway_pool_*` metrics of `source` in `registry`. Counters get a
/// `_total` suffix; `labels` (for example `{"process": "0"}`) are attached to every metric.
#[cfg(feature = "prometheus")]
pub(crate) fn register(
    source: Weak<dyn StatsSource>,
    registry: &Registry,
    labels: &[(&str, &str)],
) -> prometheus::Result<()> {
    let mut counters = Vec::new();
    let mut gauges = Vec::new();
    let mut descs = Vec::new();
    let fields = PoolStats::default().fields();
    for ((_, kind, help, _), name) in fields.into_iter().zip(METRIC_NAMES) {
        let mut opts = match kind {
            StatKind::Counter => Opts::new(format!("spillway_pool_{name}_total"), help),
            StatKind::Gauge => Opts::new(format!("spillway_pool_{name}"), help),
        };
        for (k, v) in labels {
            opts = opts.const_label(*k, *v);
        }
        match kind {
            StatKind::Counter => {
                let c = IntCounter::with_opts(opts)?;
                descs.extend(c.desc().into_iter().cloned());
                counters.push(c);
            }
            StatKind::Gauge => {
                let g = IntGauge::with_opts(opts)?;
                descs.extend(g.desc().into_iter().cloned());
                gauges.push(g);
            }
        }
    }
    registry.register(Box::new(PoolCollector {
        source,
        counters,
        gauges,
        descs,
    }))
}
