//! Variable-length keys and values (`String`) round trip through paged arrangements: join,
//! count and a reduce give upstream's answers with paging on (at a tiny budget) and off, and a
//! scan of the paged arrangement reads every update back, twice, as `&str` borrowed from the
//! chunks' stable bytes, whose resident part stays under the pager's cap.

use std::sync::{Arc, Mutex};

use differential_dataflow::consolidation::consolidate_updates;
use differential_dataflow::input::Input;
use differential_dataflow::trace::cursor::Cursor;
use differential_dataflow::trace::{Navigable, TraceReader};
use spillway_pool::{ExtentBackend, Pool, PoolConfig, PoolStats};
use spillway_trace::{
    ArrangePaged, PagedBuilder, PagedSpine, Paging, PagingPolicy, StableBytesReport,
};
use timely::container::PushInto;
use timely::dataflow::operators::Probe;
use timely::progress::frontier::AntichainRef;

type Sink<D> = Arc<Mutex<Vec<(D, u64, isize)>>>;

#[derive(Default, Clone)]
struct Outputs {
    join: Sink<(String, String, u64)>,
    count: Sink<(String, u64)>,
    max: Sink<(String, String)>,
    scan: Sink<(String, String)>,
}

#[derive(Clone, Copy, PartialEq)]
enum Backend {
    Upstream,
    PagedOff,
    PagedOn,
}

const ROUNDS: u64 = 6;
const PER_ROUND: u64 = 4_000;

/// A key and a value of varying lengths (up to ~60 bytes), some empty values.
fn record(round: u64, i: u64) -> (String, String) {
    let x = (round * PER_ROUND + i).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let key = format!("k{:0width$}", x % 2_000, width = (x >> 60) as usize % 8);
    let val = "v".repeat((x >> 20) as usize % 40) + &format!("{}", (x >> 30) % 500);
    (key, val)
}

/// Pool counters and the stable bytes of a paged run.
type PagedStats = Option<(PoolStats, StableBytesReport)>;

fn run(backend: Backend) -> (Outputs, PagedStats) {
    let out = Outputs::default();
    let pool = Pool::new(PoolConfig {
        budget: 256 << 10,
        extents: ExtentBackend::Memory { capacity: None },
        ..PoolConfig::default()
    })
    .unwrap();
    let cache: Arc<Mutex<StableBytesReport>> = Arc::default();
    let (out2, pool2, cache2) = (out.clone(), pool.clone(), cache.clone());
    timely::execute(timely::Config::thread(), move |worker| {
        let paging = match backend {
            Backend::PagedOn => Paging::with_policy(
                &pool2,
                PagingPolicy {
                    min_bytes: 1024,
                    raw_depth0: false,
                    ..PagingPolicy::default()
                },
            ),
            _ => Paging::disabled(),
        };
        let o = out2.clone();
        let (mut data, mut probes, probe, trace) = worker.dataflow::<u64, _, _>(|scope| {
            let (data_in, data) = scope.new_collection::<(String, String), isize>();
            let (probes_in, probes) = scope.new_collection::<(String, u64), isize>();
            if backend == Backend::Upstream {
                let a = data.clone().arrange_by_key();
                let b = probes.arrange_by_key();
                a.clone().join_core(b, |k, v1, v2| Some((k.clone(), v1.clone(), *v2)))
                    .inspect(sink(&o.join));
                data.clone()
                    .map(|(k, _)| (k, ()))
                    .reduce(|_k, s, t| t.push((s[0].1 as u64, 1)))
                    .inspect(sink(&o.count));
                data.reduce(|_k, s, t| t.push((s[s.len() - 1].0.clone(), 1)))
                    .inspect(sink(&o.max));
                let (probe, _) = a.stream.probe();
                (data_in, probes_in, probe, None)
            } else {
                let a = data.clone().arrange_by_key_paged(&paging);
                let b = probes.arrange_by_key_paged(&paging);
                a.clone()
                    .join_core(b, |k: &str, v1: &str, v2| Some((k.to_owned(), v1.to_owned(), v2)))
                    .inspect(sink(&o.join));
                data.map(|(k, _)| (k, ()))
                    .arrange_by_key_paged(&paging)
                    .reduce_abelian::<_, PagedBuilder<String, u64, u64, isize>, PagedSpine<String, u64, u64, isize>, _, _>(
                        "Count",
                        |_k, s, t| t.push((s[0].1 as u64, 1)),
                        fill,
                    )
                    .as_collection(|k, c| (k.to_owned(), c))
                    .inspect(sink(&o.count));
                a.clone()
                    .reduce_abelian::<_, PagedBuilder<String, String, u64, isize>, PagedSpine<String, String, u64, isize>, _, _>(
                        "Max",
                        |_k, s, t| t.push((s[s.len() - 1].0.to_owned(), 1)),
                        fill,
                    )
                    .as_collection(|k, v| (k.to_owned(), v.to_owned()))
                    .inspect(sink(&o.max));
                let (probe, _) = a.stream.probe();
                (data_in, probes_in, probe, Some(a.trace))
            }
        });
        for round in 0..ROUNDS {
            for i in 0..PER_ROUND {
                data.update(record(round, i), 1);
                // Retract a tenth of the previous round's updates.
                if round > 0 && i % 10 == 0 {
                    data.update(record(round - 1, i), -1);
                }
            }
            if round == 0 {
                for k in (0..2_000u64).step_by(7) {
                    let (key, _) = record(0, k);
                    probes.update((key, k), 1);
                }
            }
            data.advance_to(round + 1);
            probes.advance_to(round + 1);
            data.flush();
            probes.flush();
            while probe.less_than(data.time()) {
                worker.step();
            }
        }
        drop((data, probes));
        while worker.step() {}
        // Scan the paged arrangement twice (the second scan faults released bodies back).
        if let Some(mut trace) = trace {
            for pass in 0..2 {
                let batches = trace.batches_through(AntichainRef::new(&[])).unwrap();
                for batch in &batches {
                    let mut cursor = batch.cursor();
                    while cursor.key_valid(batch) {
                        while cursor.val_valid(batch) {
                            let (k, v) = (cursor.key(batch), cursor.val(batch));
                            cursor.map_times(batch, |t, r| {
                                if pass == 0 {
                                    o.scan.lock().unwrap().push(((k.to_owned(), v.to_owned()), t, r));
                                }
                            });
                            cursor.step_val(batch);
                        }
                        cursor.step_key(batch);
                    }
                }
            }
            *cache2.lock().unwrap() = paging.stable_bytes();
        }
    })
    .unwrap();
    let stats = (backend == Backend::PagedOn).then(|| (pool.stats(), *cache.lock().unwrap()));
    (out, stats)
}

/// An `inspect` closure appending to `sink`.
fn sink<D: Clone + 'static>(sink: &Sink<D>) -> impl Fn(&(D, u64, isize)) + 'static {
    let sink = sink.clone();
    move |x| sink.lock().unwrap().push(x.clone())
}

/// The `push` of `reduce_abelian`: one key's output updates into a builder chunk.
fn fill<V: Clone + Ord + 'static, C: Default + PushInto<((String, V), u64, isize)>>(
    buf: &mut C,
    key: &str,
    upds: &mut Vec<(V, u64, isize)>,
) {
    *buf = C::default();
    for (v, t, r) in upds.drain(..) {
        buf.push_into(((key.to_owned(), v), t, r));
    }
}

fn settled<D: Ord + Clone>(sink: &Sink<D>) -> Vec<(D, isize)> {
    let mut v: Vec<_> = sink
        .lock()
        .unwrap()
        .iter()
        .map(|(d, _t, r)| (d.clone(), 0u64, *r))
        .collect();
    consolidate_updates(&mut v);
    v.into_iter().map(|(d, _, r)| (d, r)).collect()
}

#[test]
fn string_keys_round_trip_through_join_and_reduce() {
    let (upstream, _) = run(Backend::Upstream);
    let (off, _) = run(Backend::PagedOff);
    let (on, stats) = run(Backend::PagedOn);
    let (stats, stable) = stats.unwrap();

    let join = settled(&upstream.join);
    assert!(join.len() > 1_000, "join too small to test: {}", join.len());
    assert_eq!(settled(&off.join), join, "join, paging off");
    assert_eq!(settled(&on.join), join, "join, paging on");
    let count = settled(&upstream.count);
    assert_eq!(settled(&off.count), count, "count, paging off");
    assert_eq!(settled(&on.count), count, "count, paging on");
    let max = settled(&upstream.max);
    assert_eq!(settled(&off.max), max, "max, paging off");
    assert_eq!(settled(&on.max), max, "max, paging on");

    // The scan reads the whole input back: every update, at its time, with its sign.
    let mut expected = Vec::new();
    for round in 0..ROUNDS {
        for i in 0..PER_ROUND {
            expected.push((record(round, i), 0u64, 1isize));
            if round > 0 && i % 10 == 0 {
                expected.push((record(round - 1, i), 0, -1));
            }
        }
    }
    consolidate_updates(&mut expected);
    let expected: Vec<_> = expected.into_iter().map(|(d, _, r)| (d, r)).collect();
    assert_eq!(settled(&off.scan), expected, "scan, paging off");
    assert_eq!(settled(&on.scan), expected, "scan, paging on");

    // Paging really happened, the scan faulted bodies in and stored them as stable bytes,
    // released past the cap (half the 256 KiB budget) but for the bodies cursors read.
    assert!(
        stats.inserts > 0 && stats.extent_bytes_written > 0,
        "{stats:?}"
    );
    assert!(stats.fault_ins > 0, "the scan never faulted: {stats:?}");
    assert!(
        stable.total_peak > 0,
        "nothing was stored for by-reference reads"
    );
    assert_eq!(stable.cap, 128 << 10);
    assert!(
        stable.total_peak > stable.cap && stable.releases > 0,
        "{stable:?}"
    );
    assert!(stable.resident_peak < stable.total_peak, "{stable:?}");
    eprintln!("stable bytes: {stable:?}; {stats:?}");
}
