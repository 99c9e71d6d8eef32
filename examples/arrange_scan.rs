//! Arrange N updates over 10 rounds, then scan the arrangement once with a cursor, on one
//! backend per process (so each run reports its own peak RSS):
//!
//! ```text
//! cargo run --release --example arrange_scan -- ord   10000000
//! cargo run --release --example arrange_scan -- off   10000000          # PagedSpine, paging off
//! cargo run --release --example arrange_scan -- col   10000000          # upstream ColChunk
//! cargo run --release --example arrange_scan -- paged 10000000 32MiB    # PagedSpine, paging on
//! cargo run --release --example arrange_scan -- paged-str 10000000 32MiB  # String keys
//! cargo run --release --example arrange_scan -- paged-strs 2000000 32MiB 2  # (String, String), 2 scans
//! ```
//! Updates are `(key: u64, val: u64)` with keys uniform over N/4, `u64` times, `isize` diffs;
//! the `-str` backends (`ord-str`, `off-str`, `paged-str`) use the key's 16-digit hex `String`,
//! the `-strs` backends (`ord-strs`, `off-strs`, `paged-strs`) also a 96-character hex
//! `String` value (about 130 bytes an update). The optional fourth argument is the number of
//! scans (default 1). For the paged backends the line also reports the stable bytes of
//! by-reference reads (`stable_*`, see `Paging::stable_bytes`).
//! Prints one JSON line: `build_s`, `scan_s`, `scan_records`, `peak_rss_bytes` (VmHWM),
//! `rss_after_scan_bytes` (VmRSS) and, for `paged`, the pool's counters.

use std::time::Instant;

use differential_dataflow::input::Input;
use differential_dataflow::trace::cursor::Cursor;
use differential_dataflow::trace::{Navigable, TraceReader};
use spillway::{ArrangePaged, Paging};
use spillway_workload::data::SplitMix64;
use spillway_workload::rss::{current_rss, peak_rss};
use timely::dataflow::operators::Probe;
use timely::progress::frontier::AntichainRef;

const ROUNDS: u64 = 10;

/// Counts the records of every batch of `trace` with each batch's cursor.
fn scan<Tr>(trace: &mut Tr) -> u64
where
    Tr: TraceReader<Time = u64>,
    Tr::Batch: Navigable,
{
    let batches = trace
        .batches_through(AntichainRef::new(&[]))
        .expect("batches");
    let mut records = 0u64;
    for batch in &batches {
        let mut cursor = batch.cursor();
        while cursor.key_valid(batch) {
            while cursor.val_valid(batch) {
                cursor.map_times(batch, |_, _| records += 1);
                cursor.step_val(batch);
            }
            cursor.step_key(batch);
        }
    }
    records
}

/// The `String` key of the `-str` backends.
fn hex(key: u64) -> String {
    format!("{key:016x}")
}

/// The 96-character `String` value of the `-strs` backends, from an update's random draw.
fn long_hex(r: u64) -> String {
    let mut rng = SplitMix64::new(r);
    (0..6).map(|_| format!("{:016x}", rng.next_u64())).collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let backend = args.get(1).cloned().unwrap_or_else(|| "off".into());
    let updates: u64 = args
        .get(2)
        .map_or(10_000_000, |s| s.replace('_', "").parse().expect("updates"));
    let budget = args
        .get(3)
        .map(|s| spillway::parse_size(s).expect("budget"));
    // Default budget: one tenth of the arrangement (32 bytes an update, 48 with String keys).
    let record_bytes = match backend.as_str() {
        "paged-str" => 48,
        "paged-strs" => 144,
        _ => 32,
    };
    let passes: u32 = args.get(4).map_or(1, |s| s.parse().expect("scans"));
    let pool = match backend.as_str() {
        "paged" | "paged-str" | "paged-strs" => Some(
            spillway::Pool::new(
                spillway::PoolConfig::default()
                    .budget(budget.unwrap_or(updates * record_bytes / 10))
                    .expect("budget"),
            )
            .expect("pool"),
        ),
        "ord" | "off" | "col" | "ord-str" | "off-str" | "ord-strs" | "off-strs" => None,
        other => panic!(
            "unknown backend {other:?}: ord, off, col, paged, ord-str, off-str, paged-str, \
             ord-strs, off-strs or paged-strs"
        ),
    };
    let keys = (updates / 4).max(1);
    let (backend2, pool2) = (backend.clone(), pool.clone());
    let result = std::sync::Arc::new(std::sync::Mutex::new((
        0.0,
        0.0,
        0u64,
        0u64,
        spillway::StableBytesReport::default(),
    )));
    let sink = result.clone();
    timely::execute(timely::Config::thread(), move |worker| {
        let t0 = Instant::now();
        let paging = pool2
            .as_ref()
            .map_or_else(Paging::disabled, Paging::enabled);
        macro_rules! run {
            ($data:ident => $arrange:expr) => {
                run!($data: u64, |k| k => $arrange)
            };
            ($data:ident: $key:ty, $make_key:expr => $arrange:expr) => {
                run!($data: $key, $make_key, u64, |r: u64| r >> 40 => $arrange)
            };
            ($data:ident: $key:ty, $make_key:expr, $val:ty, $make_val:expr => $arrange:expr) => {{
                let (mut input, probe, mut trace) = worker.dataflow::<u64, _, _>(|scope| {
                    let (input, $data) = scope.new_collection::<($key, $val), isize>();
                    let arranged = $arrange;
                    let (probe, _) = arranged.stream.probe();
                    (input, probe, arranged.trace)
                });
                let mut rng = SplitMix64::new(1);
                for round in 0..ROUNDS {
                    for _ in 0..updates / ROUNDS {
                        let r = rng.next_u64();
                        input.update(($make_key(r % keys), $make_val(r)), 1);
                    }
                    input.advance_to(round + 1);
                    input.flush();
                    while probe.less_than(input.time()) {
                        worker.step();
                    }
                }
                let build_s = t0.elapsed().as_secs_f64();
                let t1 = Instant::now();
                let records = (0..passes).map(|_| scan(&mut trace)).sum();
                let scan_s = t1.elapsed().as_secs_f64();
                // Read while the arrangement is still alive.
                *sink.lock().unwrap() = (
                    build_s,
                    scan_s,
                    records,
                    current_rss(),
                    paging.stable_bytes(),
                );
            }};
        }
        match backend2.as_str() {
            "ord" => run!(d => d.arrange_by_key()),
            "col" => {
                use differential_dataflow::batcher::merge::chunker::ContainerChunker;
                use differential_dataflow::columnar::trace::{ColChunk, Spine};
                use differential_dataflow::operators::arrange::arrangement::arrange_core;
                use differential_dataflow::trace::chunk::ChunkBatcher;
                use differential_dataflow::Hashable;
                use timely::dataflow::channels::pact::Exchange;
                type Ba = ChunkBatcher<
                    ContainerChunker<ColChunk<(u64, u64, u64, isize)>>,
                    ColChunk<(u64, u64, u64, isize)>,
                >;
                type Sp = Spine<u64, u64, u64, isize>;
                run!(d => {
                    let exchange = Exchange::new(|u: &((u64, u64), u64, isize)| (u.0).0.hashed());
                    arrange_core::<_, _, Ba, Sp>(d.inner, exchange, "ColArrange", Ba::new)
                })
            }
            "ord-str" => run!(d: String, hex => d.arrange_by_key()),
            "off-str" | "paged-str" => run!(d: String, hex => d.arrange_by_key_paged(&paging)),
            "ord-strs" => run!(d: String, hex, String, long_hex => d.arrange_by_key()),
            "off-strs" | "paged-strs" => {
                run!(d: String, hex, String, long_hex => d.arrange_by_key_paged(&paging))
            }
            _ => run!(d => d.arrange_by_key_paged(&paging)),
        }
    })
    .expect("timely");
    let (build_s, scan_s, records, rss_after_scan, stable) = *result.lock().unwrap();
    let stats = pool.as_ref().map(|p| p.stats()).unwrap_or_default();
    println!(
        "{{\"backend\":\"{backend}\",\"updates\":{updates},\"budget_bytes\":{},\"build_s\":{build_s:.3},\"scan_s\":{scan_s:.3},\"scan_records\":{records},\"peak_rss_bytes\":{},\"rss_after_scan_bytes\":{},\"peak_resident_bytes\":{},\"extent_bytes_written\":{},\"bytes_compressed_in\":{},\"fault_ins\":{},\"writes_elided\":{},\"stable_resident_peak_bytes\":{},\"stable_total_peak_bytes\":{},\"stable_releases\":{},\"stable_cap_bytes\":{},\"stable_heap_bytes\":{}}}",
        pool.as_ref().map_or(0, |p| p.budget()),
        peak_rss(),
        rss_after_scan,
        stats.peak_resident_bytes,
        stats.extent_bytes_written,
        stats.bytes_compressed_in,
        stats.fault_ins,
        stats.writes_elided,
        stable.resident_peak,
        stable.total_peak,
        stable.releases,
        stable.cap,
        stable.heap_bytes,
    );
}
