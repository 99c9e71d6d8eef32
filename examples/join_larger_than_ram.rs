//! A paged join under a byte budget: 20M `(key, val)` updates (640 MB as 32-byte records) are
//! arranged through a 64 MiB pool and joined against 200k probe keys. The arrangement lives
//! mostly in lz4 extents in the system temp dir; process memory stays near the budget.
//!
//! ```text
//! cargo run --release --example join_larger_than_ram [-- UPDATES [BUDGET]]
//! ```

use std::cell::Cell;
use std::rc::Rc;

use differential_dataflow::input::Input;
use spillway::{ArrangePaged, Paging, Pool, PoolConfig};
use timely::dataflow::operators::Probe;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let updates: u64 = args
        .next()
        .map_or(Ok(20_000_000), |s| s.replace('_', "").parse())?;
    let budget = args.next().unwrap_or_else(|| "64MiB".into());

    // One pool per process, shared by every worker and the spill threads.
    let pool = Pool::new(PoolConfig::default().budget(budget.as_str())?)?;
    let worker_pool = pool.clone();
    timely::execute(timely::Config::thread(), move |worker| {
        // `Paging::disabled()` here gives the same dataflow with resident arrangements.
        let paging = Paging::enabled(&worker_pool);
        let matches = Rc::new(Cell::new(0i64));
        let sink = matches.clone();
        let (mut data, mut probes, probe) = worker.dataflow::<u64, _, _>(|scope| {
            let (data_in, data) = scope.new_collection::<(u64, u64), isize>();
            let (probes_in, probes) = scope.new_collection::<(u64, u64), isize>();
            // The only change from a resident dataflow: `arrange_by_key_paged(&paging)`.
            let joined = data
                .arrange_by_key_paged(&paging)
                .join_core(probes.arrange_by_key_paged(&paging), |k, v, p| {
                    Some((k, v, p))
                })
                .inspect(move |(_, _, diff)| sink.set(sink.get() + *diff as i64));
            (data_in, probes_in, joined.inner.probe().0)
        });
        let keys = updates / 4;
        for i in 0..updates {
            let x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            data.insert((x % keys, x >> 40));
            // Keep the dataflow consuming as we go, so input does not queue up in memory.
            if i % 65_536 == 0 {
                data.flush();
                worker.step();
            }
            if i % (updates / 10).max(1) == 0 {
                let next = data.time() + 1;
                data.advance_to(next);
                probes.advance_to(next);
                data.flush();
                probes.flush();
                worker.step_while(|| probe.less_than(data.time()));
            }
        }
        for k in (0..keys).step_by((keys / 200_000).max(1) as usize) {
            probes.insert((k, k));
        }
        drop((data, probes));
        worker.step_while(|| !probe.done());
        println!("{} join results", matches.get());
    })?;

    let stats = pool.stats();
    println!(
        "{updates} updates through a {budget} pool: peak resident {} MiB, {} MiB written to extents, {} fault-ins; peak RSS {} MiB",
        stats.peak_resident_bytes >> 20,
        stats.extent_bytes_written >> 20,
        stats.fault_ins,
        spillway_workload::rss::peak_rss() >> 20
    );
    Ok(())
}
