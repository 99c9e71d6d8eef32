//! End to end: a paged arrangement under a tiny budget joins like upstream's OrdValSpine.

use std::sync::{Arc, Mutex};

use differential_dataflow::input::Input;
use spillway_pool::{ExtentBackend, Pool, PoolConfig};
use spillway_trace::{ArrangePaged, Paging, PagingPolicy};

type Out = Vec<((u64, u64, u64), u64, isize)>;

fn run(paged: bool, pool: Pool) -> (Out, spillway_pool::PoolStats) {
    let out: Arc<Mutex<Out>> = Arc::default();
    let sink = out.clone();
    let pool2 = pool.clone();
    timely::execute(timely::Config::thread(), move |worker| {
        let sink = sink.clone();
        let paging = Paging::with_policy(
            &pool2,
            PagingPolicy {
                min_bytes: 4096,
                raw_depth0: true,
                ..PagingPolicy::default()
            },
        );
        let (mut data, mut probe_keys) = worker.dataflow::<u64, _, _>(|scope| {
            let (data_in, data) = scope.new_collection::<(u64, u64), isize>();
            let (keys_in, keys) = scope.new_collection::<(u64, u64), isize>();
            let joined = if paged {
                let a = data.arrange_by_key_paged(&paging);
                let b = keys.arrange_by_key_paged(&paging);
                a.join_core(b, |k, v1, v2| Some((k, v1, v2)))
            } else {
                let a = data.arrange_by_key();
                let b = keys.arrange_by_key();
                a.join_core(b, |k, v1, v2| Some((*k, *v1, *v2)))
            };
            joined.inspect(move |x| sink.lock().unwrap().push(*x));
            (data_in, keys_in)
        });
        for round in 0..5u64 {
            for i in 0..40_000u64 {
                let x = i.wrapping_mul(0x9E3779B97F4A7C15) ^ round;
                data.update(
                    (x % 5_000, x % 1_000),
                    if i % 7 == 0 && round > 0 { -1 } else { 1 },
                );
            }
            if round == 0 {
                for k in (0..5_000u64).step_by(50) {
                    probe_keys.update((k, k), 1);
                }
            }
            data.advance_to(round + 1);
            probe_keys.advance_to(round + 1);
            data.flush();
            probe_keys.flush();
            for _ in 0..50 {
                worker.step();
            }
        }
    })
    .unwrap();
    let mut v = out.lock().unwrap().clone();
    differential_dataflow::consolidation::consolidate_updates(&mut v);
    (v, pool.stats())
}

#[test]
fn paged_join_matches_ord_val_spine() {
    let pool = Pool::new(PoolConfig {
        budget: 1 << 20,
        extents: ExtentBackend::Memory { capacity: None },
        ..PoolConfig::default()
    })
    .unwrap();
    let (expected, _) = run(false, pool.clone());
    let (got, stats) = run(true, pool);
    assert!(!expected.is_empty());
    assert_eq!(got, expected);
    eprintln!("{stats:?}");
    assert!(stats.inserts > 0, "nothing paged: {stats:?}");
}

/// A memory store whose reads all fail, as a dead device would.
struct DeadReads(spillway_pool::MemoryStore);

impl spillway_pool::ExtentStore for DeadReads {
    fn name(&self) -> &'static str {
        "dead-reads"
    }
    fn write(&self, frame: &[u8]) -> Result<spillway_pool::ExtentAddr, spillway_pool::StoreError> {
        self.0.write(frame)
    }
    fn read(
        &self,
        addr: spillway_pool::ExtentAddr,
        _len: usize,
        _buf: &mut spillway_pool::AlignedBuf,
    ) -> Result<(), spillway_pool::StoreError> {
        Err(spillway_pool::StoreError::Io {
            op: "read",
            addr,
            source: std::io::Error::from_raw_os_error(5),
        })
    }
    fn free(&self, addr: spillway_pool::ExtentAddr, len: usize) {
        self.0.free(addr, len)
    }
    fn live_bytes(&self) -> u64 {
        self.0.live_bytes()
    }
}

#[test]
fn an_unreadable_chunk_is_a_loud_error_naming_paging_chunk_and_extent() {
    let store = Arc::new(DeadReads(spillway_pool::MemoryStore::new(None)));
    let config = PoolConfig {
        budget: 1 << 20,
        spill_threads: 0,
        write_behind: Some(0),
        ..PoolConfig::default()
    };
    let pool = Pool::with_store(config, store).unwrap();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        timely::execute_directly(move |worker| {
            let paging = Paging::with_policy(
                &pool,
                PagingPolicy {
                    min_bytes: 4096,
                    ..PagingPolicy::default()
                },
            );
            let (mut data, _trace) = worker.dataflow::<u64, _, _>(|scope| {
                let (data_in, data) = scope.new_collection::<(u64, u64), isize>();
                (data_in, data.arrange_by_key_paged(&paging).trace)
            });
            for round in 0..20u64 {
                for i in 0..20_000u64 {
                    data.update((i.wrapping_mul(0x9E37_79B9) % 50_000, round), 1);
                }
                data.advance_to(round + 1);
                data.flush();
                for _ in 0..20 {
                    worker.step();
                }
                // Everything sealed so far goes to (unreadable) extents; merges read it back.
                pool.evict_to(0);
            }
        })
    }));
    let payload = caught.expect_err("reading unreadable chunks panics");
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    for part in ["paging #", "depth ", " records", "extent class", "slot"] {
        assert!(message.contains(part), "{part:?} missing from: {message}");
    }
}
