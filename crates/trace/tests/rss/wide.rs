//! Wide records keep resident memory bounded: arranging `(String, String)` updates with values
//! of 4 KiB and of 64 KiB, many times the pool's budget, and reading the arrangement back in
//! full with cursors, grows the process's resident set by the budget and a few fixed buffers
//! (the batcher's sort run, a merge's chunks, the stable-bytes cap), not with the data: nothing
//! per chunk that scales with a record's width stays on the heap.
//! Each case is measured against the RSS it starts from.

use differential_dataflow::input::Input;

use super::{rss, scratch_pool, ONE_AT_A_TIME};
use differential_dataflow::trace::cursor::Cursor;
use differential_dataflow::trace::{Navigable, TraceReader};
use spillway_trace::{ArrangePaged, Paging};
use timely::dataflow::operators::Probe;
use timely::progress::frontier::AntichainRef;

const BUDGET: u64 = 4 << 20;
/// Encoded bytes of records arranged per case: 16 times the budget.
const DATA: u64 = 64 << 20;
/// Records entered between worker steps (a stream, as a user's input is).
const SLICE_BYTES: u64 = 1 << 20;

/// Value `i`: `len` hex digits of a mixed counter (lz4 cannot squeeze them much).
fn value(i: u64, len: usize) -> String {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = String::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push(char::from_digit((x % 16) as u32, 16).unwrap());
    }
    out
}

/// Arranges `DATA` bytes of records with `len`-byte values (four per key, so keys span chunk
/// boundaries) in three rounds, reads the trace in full twice, and asserts how far RSS grew.
fn wide_records_stay_within_the_bound(len: usize) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let Some(pool) = scratch_pool(BUDGET) else {
        return;
    };
    let records = DATA / len as u64;
    let slice = (SLICE_BYTES / len as u64).max(1);
    let pool2 = pool.clone();
    timely::execute_directly(move |worker| {
        let before = rss();
        let mut peak = before;
        let paging = Paging::enabled(&pool2);
        let (mut input, probe, mut trace) = worker.dataflow::<u64, _, _>(|scope| {
            let (input, data) = scope.new_collection::<(String, String), isize>();
            let arranged = data.arrange_by_key_paged(&paging);
            (input, arranged.stream.probe().0, arranged.trace)
        });
        for round in 0..3u64 {
            for (n, i) in (round..records).step_by(3).enumerate() {
                input.insert((format!("key/{:09}", i / 4), value(i, len)));
                if (n as u64 + 1).is_multiple_of(slice) {
                    input.flush();
                    worker.step();
                    peak = peak.max(rss());
                }
            }
            input.advance_to(round + 1);
            input.flush();
            while probe.less_than(input.time()) {
                worker.step();
                peak = peak.max(rss());
            }
        }
        drop(input);
        while worker.step() {
            peak = peak.max(rss());
        }
        let built = peak;
        let batches = trace.batches_through(AntichainRef::new(&[])).unwrap();
        let (mut count, mut bytes) = (0u64, 0u64);
        for _pass in 0..2 {
            for batch in &batches {
                let mut cursor = batch.cursor();
                while let Some(key) = cursor.get_key(batch) {
                    while let Some(val) = cursor.get_val(batch) {
                        cursor.map_times(batch, |_, _| count += 1);
                        bytes += (key.len() + val.len()) as u64;
                        cursor.step_val(batch);
                    }
                    cursor.step_key(batch);
                    peak = peak.max(rss());
                }
            }
        }
        let stats = pool2.stats();
        let growth = peak.saturating_sub(before);
        eprintln!(
            "{len}-byte values, {records} records: RSS {before} -> {built} built, {peak} read \
             (+{growth}); {:?}; {stats:?}",
            paging.stable_bytes()
        );
        assert_eq!(count, 2 * records, "both passes read every record");
        assert_eq!(bytes, 2 * records * (13 + len as u64));
        assert!(stats.extent_bytes_written > DATA, "{stats:?}");
        assert!(
            stats.fault_ins > 0 && stats.oversize_chunks == 0,
            "{stats:?}"
        );
        // The budget, the 8 MiB sort run (moved into chunks when sealed), a merge's chunks,
        // the stable-bytes cap, input slices and the allocator's slack: far less than DATA.
        // Resident fences holding two whole values per 256 KiB chunk would add 2/3 of DATA
        // at 64 KiB values.
        let bound = BUDGET + (32 << 20);
        assert!(
            growth <= bound,
            "RSS grew by {growth} bytes arranging and reading {DATA} bytes of {len}-byte \
             values (bound {bound})"
        );
    });
}

#[test]
fn records_of_4_kib_stay_within_the_bound() {
    wide_records_stay_within_the_bound(4 << 10);
}

/// A chunk of 64 KiB values holds three or four records: were its first and last
/// `(key, val, time)` kept resident in full, two of them would stay on the heap beside the
/// pool (+54 MiB here; a 1 GiB peak for 786 MB of such records in `spillway join --records
/// strings --val-bytes 64KiB --updates 12k`). Fence vals over 256 bytes are read from the
/// body instead.
#[test]
fn records_of_64_kib_stay_within_the_bound() {
    wide_records_stay_within_the_bound(64 << 10);
}
