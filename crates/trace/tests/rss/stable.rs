//! Reading a paged arrangement of variable-length data through cursors, in full, twice, keeps
//! the process's resident memory bounded: items borrow from the chunks' stable bytes, which
//! stay valid without staying resident.

use differential_dataflow::input::Input;

use super::{scratch_pool, status_bytes, ONE_AT_A_TIME};
use differential_dataflow::trace::cursor::Cursor;
use differential_dataflow::trace::{Navigable, TraceReader};
use spillway_trace::{ArrangePaged, Paging};
use timely::dataflow::operators::Probe;
use timely::progress::frontier::AntichainRef;

const RECORDS: u64 = 150_000;
const BUDGET: u64 = 2 << 20;

/// Keys of 16 bytes, values of 200 (hex of a mixed counter, hardly compressible): about
/// 36 MB of `(String, String)` updates, 18 times the budget.
fn record(i: u64) -> (String, String) {
    let mix = |x: u64| x.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(23) ^ (x << 7);
    let key = format!("{:016x}", mix(i) % (RECORDS / 3));
    let val = (0..13)
        .map(|j| format!("{:016x}", mix(i * 13 + j)))
        .collect::<String>();
    (key, val[..200].to_string())
}

#[test]
fn reading_strings_twice_stays_within_the_stable_cap() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let Some(pool) = scratch_pool(BUDGET) else {
        return;
    };
    let pool2 = pool.clone();
    timely::execute_directly(move |worker| {
        let paging = Paging::enabled(&pool2);
        let (mut input, probe, mut trace) = worker.dataflow::<u64, _, _>(|scope| {
            let (input, data) = scope.new_collection::<(String, String), isize>();
            let arranged = data.arrange_by_key_paged(&paging);
            (input, arranged.stream.probe().0, arranged.trace)
        });
        for round in 0..3 {
            for i in (round..RECORDS).step_by(3) {
                input.insert(record(i));
            }
            input.advance_to(round + 1);
            input.flush();
            while probe.less_than(input.time()) {
                worker.step();
            }
        }
        let batches = trace.batches_through(AntichainRef::new(&[])).unwrap();
        let before = status_bytes("VmRSS:");
        let file_before = status_bytes("RssFile:");
        let mut peak = before;
        let (mut count, mut bytes) = (0u64, 0usize);
        for _pass in 0..2 {
            for batch in &batches {
                let mut cursor = batch.cursor();
                while cursor.key_valid(batch) {
                    let key: &str = cursor.key(batch); // borrowed from the chunk, no copy
                    while let Some(val) = cursor.get_val(batch) {
                        cursor.map_times(batch, |_, _| count += 1);
                        bytes += key.len() + val.len();
                        cursor.step_val(batch);
                    }
                    cursor.step_key(batch);
                    if count % 4096 == 0 {
                        peak = peak.max(status_bytes("VmRSS:"));
                    }
                }
                peak = peak.max(status_bytes("VmRSS:"));
            }
        }
        let stable = paging.stable_bytes();
        let growth = peak.saturating_sub(before);
        eprintln!(
            "records read {count}, {bytes} bytes; RSS {before} -> peak {peak} (+{growth}); \
             RssFile {file_before} -> {}; {stable:?}; {:?}",
            status_bytes("RssFile:"),
            pool2.stats()
        );
        assert_eq!(count, 2 * RECORDS, "both passes read every record");
        assert_eq!(bytes as u64, 2 * RECORDS * 216);
        // Everything was stored as stable bytes; at most the cap plus the one body a live
        // cursor reads was resident at once.
        assert!(stable.total_peak as u64 > 16 * BUDGET, "{stable:?}");
        assert_eq!(stable.cap as u64, BUDGET / 2);
        assert!(stable.resident_peak <= stable.cap + (8 << 20), "{stable:?}");
        assert!(stable.releases > 0 && stable.heap_bytes == 0, "{stable:?}");
        // The process's resident memory grew by far less than what was read (36 MB twice):
        // the pool stays at its budget and released stable pages leave the resident set.
        assert!(
            growth < 24 << 20,
            "RSS grew by {growth} bytes while reading"
        );
    });
}
