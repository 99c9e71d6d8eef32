//! Paged arrangements inside `iterate`: BFS distances over a graph whose edges change.
//!
//! differential's `iterate` runs its body at `Product<u64, u64>` time. Here the edges are
//! arranged paged outside the loop and brought in with `Arranged::enter`; the loop variable
//! (`(node, distance)` pairs) is arranged paged inside it, at `Product<u64, u64>` time, and
//! joined with `join_core` against the entered edges. Every round inserts and deletes edges;
//! each round's distances are compared with a plain-Rust BFS over that round's graph, at 1 and
//! 2 workers, paged at a tiny budget (the pools must evict and fault chunks back in) and with
//! `Paging::disabled()`. A second test arranges and joins paged two scopes deep, at
//! `Product<Product<u64, u64>, u32>` time.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use differential_dataflow::consolidation::consolidate_updates;
use differential_dataflow::input::Input;
use differential_dataflow::operators::Iterate;
use spillway_pool::{ExtentBackend, Pool, PoolConfig, PoolStats};
use spillway_trace::{ArrangePaged, Paging, PagingPolicy};
use timely::dataflow::operators::probe::Handle as ProbeHandle;

const NODES: u64 = 6_000;
const INITIAL_EDGES: usize = 15_000;
const CHANGES_PER_ROUND: usize = 150;
const ROUNDS: u64 = 4;
const ROOTS: [u64; 2] = [0, 1];

type Edge = (u64, u64);
/// `(node, distance)` updates at outer (round) times.
type Out = Vec<((u64, u64), u64, isize)>;

fn rng(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

/// Each round's edge updates: round 0 inserts the initial graph, later rounds insert new
/// random edges and delete existing ones (so distances grow as well as shrink, and nodes
/// become unreachable and reachable again). Duplicate edges are allowed (multiplicity 2).
fn edge_rounds() -> Vec<Vec<(Edge, isize)>> {
    let mut seed = 0x2545_F491_4F6C_DD1D_u64;
    let mut live: Vec<Edge> = Vec::new();
    let mut rounds = Vec::new();
    // Mostly short hops (long shortest paths, so many iterations), some long jumps.
    let random_edge = |seed: &mut u64| {
        let src = rng(seed) % NODES;
        let dst = if rng(seed).is_multiple_of(8) {
            rng(seed) % NODES
        } else {
            (src + 1 + rng(seed) % 40) % NODES
        };
        (src, dst)
    };
    let mut first = Vec::new();
    for _ in 0..INITIAL_EDGES {
        let e = random_edge(&mut seed);
        live.push(e);
        first.push((e, 1));
    }
    rounds.push(first);
    for _ in 1..ROUNDS {
        let mut round = Vec::new();
        for _ in 0..CHANGES_PER_ROUND {
            let e = random_edge(&mut seed);
            live.push(e);
            round.push((e, 1));
            let gone = live.swap_remove((rng(&mut seed) % live.len() as u64) as usize);
            round.push((gone, -1));
        }
        rounds.push(round);
    }
    rounds
}

/// Shortest hop counts from `ROOTS` over the edges with positive multiplicity.
fn bfs(edges: &BTreeMap<Edge, isize>) -> BTreeMap<u64, u64> {
    let mut adjacency: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for (&(src, dst), &count) in edges {
        assert!(count >= 0, "the generator deletes only live edges");
        if count > 0 {
            adjacency.entry(src).or_default().push(dst);
        }
    }
    let mut dist = BTreeMap::new();
    let mut queue = VecDeque::new();
    for root in ROOTS {
        dist.insert(root, 0);
        queue.push_back(root);
    }
    while let Some(node) = queue.pop_front() {
        let d = dist[&node];
        for &next in adjacency.get(&node).into_iter().flatten() {
            dist.entry(next).or_insert_with(|| {
                queue.push_back(next);
                d + 1
            });
        }
    }
    dist
}

/// The expected distances after each round.
fn expected(rounds: &[Vec<(Edge, isize)>]) -> Vec<BTreeMap<u64, u64>> {
    let mut edges = BTreeMap::new();
    rounds
        .iter()
        .map(|round| {
            for &(e, d) in round {
                *edges.entry(e).or_insert(0) += d;
            }
            bfs(&edges)
        })
        .collect()
}

/// A pool with a tiny budget, so both arrangements evict and fault back in.
fn tiny_pool() -> Pool {
    Pool::new(PoolConfig {
        budget: 256 << 10,
        extents: ExtentBackend::Memory { capacity: None },
        poison_released_slots: true,
        ..PoolConfig::default()
    })
    .unwrap()
}

fn paging(pool: Option<&Pool>) -> Paging {
    match pool {
        // Every chunk may page, however small (as the oracle does).
        Some(pool) => Paging::with_policy(
            pool,
            PagingPolicy {
                min_bytes: 0,
                ..PagingPolicy::default()
            },
        ),
        None => Paging::disabled(),
    }
}

/// Runs the BFS on `workers` workers; the edges page through `edge_pool` and the loop
/// variable through `loop_pool` (or nothing pages). Returns the output updates.
fn run(workers: usize, pools: Option<(Pool, Pool)>) -> Out {
    let rounds = Arc::new(edge_rounds());
    let out: Arc<Mutex<Out>> = Arc::default();
    let sink = out.clone();
    let config = if workers == 1 {
        timely::Config::thread()
    } else {
        timely::Config::process(workers)
    };
    timely::execute(config, move |worker| {
        let (index, peers) = (worker.index(), worker.peers());
        let edge_paging = paging(pools.as_ref().map(|p| &p.0));
        let loop_paging = paging(pools.as_ref().map(|p| &p.1));
        let sink = sink.clone();
        let probe = ProbeHandle::<u64>::new();
        let (mut roots_in, mut edges_in) = worker.dataflow::<u64, _, _>(|scope| {
            let (roots_in, roots) = scope.new_collection::<u64, isize>();
            let (edges_in, edges) = scope.new_collection::<Edge, isize>();
            let edges = edges.arrange_by_key_paged(&edge_paging);
            let nodes = roots.map(|root| (root, 0u64));
            let distances = nodes.clone().iterate(move |inner, reached| {
                let edges = edges.enter(inner);
                let nodes = nodes.enter(inner);
                // A paged arrangement at `Product<u64, u64>` time.
                reached
                    .arrange_by_key_paged(&loop_paging)
                    .join_core(edges, |_src, dist, dst| Some((dst, dist + 1)))
                    .concat(nodes)
                    .reduce(|_node, dists, out| out.push((*dists[0].0, 1)))
            });
            distances
                .inspect(move |update| sink.lock().unwrap().push(*update))
                .probe_with(&probe);
            (roots_in, edges_in)
        });
        if index == 0 {
            for root in ROOTS {
                roots_in.update(root, 1);
            }
        }
        for (round, updates) in rounds.iter().enumerate() {
            for (i, &(edge, diff)) in updates.iter().enumerate() {
                if i % peers == index {
                    edges_in.update(edge, diff);
                }
            }
            let next = round as u64 + 1;
            roots_in.advance_to(next);
            edges_in.advance_to(next);
            roots_in.flush();
            edges_in.flush();
            worker.step_while(|| probe.less_than(&next));
        }
    })
    .unwrap();
    let mut out = out.lock().unwrap().clone();
    consolidate_updates(&mut out);
    out
}

/// Checks every round's accumulated output against the sequential BFS.
fn check(out: &Out, label: &str) {
    let want = expected(&edge_rounds());
    for (round, want) in want.iter().enumerate() {
        let mut got: BTreeMap<(u64, u64), isize> = BTreeMap::new();
        for &(pair, time, diff) in out {
            if time <= round as u64 {
                *got.entry(pair).or_insert(0) += diff;
            }
        }
        got.retain(|_, d| *d != 0);
        let want: BTreeMap<(u64, u64), isize> = want.iter().map(|(&n, &d)| ((n, d), 1)).collect();
        if got != want {
            let extra: Vec<_> = got
                .iter()
                .filter(|(k, v)| want.get(k) != Some(v))
                .take(5)
                .collect();
            let missing: Vec<_> = want
                .iter()
                .filter(|(k, v)| got.get(k) != Some(v))
                .take(5)
                .collect();
            panic!(
                "{label}, round {round}: {} distances, expected {}; wrong {extra:?}, missing {missing:?}",
                got.len(),
                want.len()
            );
        }
    }
}

fn check_paged(workers: usize) {
    let (edge_pool, loop_pool) = (tiny_pool(), tiny_pool());
    let out = run(workers, Some((edge_pool.clone(), loop_pool.clone())));
    check(&out, &format!("paged, {workers} worker(s)"));
    let (edges, inner): (PoolStats, PoolStats) = (edge_pool.stats(), loop_pool.stats());
    eprintln!("iterate, {workers} worker(s): edges {edges:?}\nloop {inner:?}");
    assert!(edges.fault_ins > 0, "the edges never faulted in: {edges:?}");
    assert!(
        inner.inserts > 0,
        "the loop variable's arrangement never paged: {inner:?}"
    );
    assert!(
        inner.fault_ins > 0,
        "the loop variable's arrangement never faulted in: {inner:?}"
    );
}

#[test]
fn sequential_bfs_sees_changes() {
    // The generated rounds really move distances (a guard on the test itself).
    let want = expected(&edge_rounds());
    assert!(want[0].len() > NODES as usize / 2, "most nodes reachable");
    assert!(
        want.windows(2).all(|w| w[0] != w[1]),
        "every round changes distances"
    );
    let max = want.iter().flat_map(|m| m.values()).max().copied().unwrap();
    assert!(max >= 10, "long paths: many iterations ({max})");
}

#[test]
fn iterate_bfs_paged_one_worker() {
    check_paged(1);
}

#[test]
fn iterate_bfs_paged_two_workers() {
    check_paged(2);
}

#[test]
fn iterate_bfs_paging_disabled() {
    for workers in [1, 2] {
        let out = run(workers, None);
        check(&out, &format!("paging disabled, {workers} worker(s)"));
    }
}

/// Arrangements two scopes deep, at `Product<Product<u64, u64>, u32>` time, page and join
/// like the collections they came from.
#[test]
fn nested_scopes_arrange_paged() {
    type Joined = Vec<((u64, u64, u64), u64, isize)>;
    let pool = tiny_pool();
    let out: Arc<Mutex<Joined>> = Arc::default();
    let (sink, pool2) = (out.clone(), pool.clone());
    let record = |i: u64| {
        let x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (x % 4_000, (x >> 32) % 5)
    };
    // Each round inserts 10_000 records and deletes half of the previous round's.
    let rounds: Vec<Vec<((u64, u64), isize)>> = (0..3u64)
        .map(|r| {
            let mut updates: Vec<_> = (r * 10_000..(r + 1) * 10_000)
                .map(|i| (record(i), 1))
                .collect();
            if r > 0 {
                updates.extend(
                    ((r - 1) * 10_000..r * 10_000)
                        .step_by(2)
                        .map(|i| (record(i), -1)),
                );
            }
            updates
        })
        .collect();
    let rounds2 = rounds.clone();
    timely::execute_directly(move |worker| {
        let paging = paging(Some(&pool2));
        let probe = ProbeHandle::<u64>::new();
        let mut input = worker.dataflow::<u64, _, _>(|scope| {
            let (input, data) = scope.new_collection::<(u64, u64), isize>();
            let joined = scope.iterative::<u64, _, _>(|outer| {
                outer
                    .iterative::<u32, _, _>(|inner| {
                        let data = data.enter(outer).enter(inner);
                        let left = data.clone().arrange_by_key_paged(&paging);
                        let right = data.map(|(k, v)| (k, v + 10)).arrange_by_key_paged(&paging);
                        left.join_core(right, |k, v1, v2| Some((k, v1, v2)))
                            .leave(outer)
                    })
                    .leave(scope)
            });
            joined
                .inspect(move |update| sink.lock().unwrap().push(*update))
                .probe_with(&probe);
            input
        });
        for (round, updates) in rounds2.iter().enumerate() {
            for &(record, diff) in updates {
                input.update(record, diff);
            }
            let next = round as u64 + 1;
            input.advance_to(next);
            input.flush();
            worker.step_while(|| probe.less_than(&next));
        }
    });
    let got = out.lock().unwrap().clone();
    let mut data: BTreeMap<(u64, u64), isize> = BTreeMap::new();
    for (round, updates) in rounds.iter().enumerate() {
        for &(record, diff) in updates {
            *data.entry(record).or_insert(0) += diff;
        }
        let mut by_key: BTreeMap<u64, Vec<(u64, isize)>> = BTreeMap::new();
        for (&(k, v), &d) in &data {
            if d != 0 {
                by_key.entry(k).or_default().push((v, d));
            }
        }
        let mut want: BTreeMap<(u64, u64, u64), isize> = BTreeMap::new();
        for (k, vals) in &by_key {
            for &(v1, d1) in vals {
                for &(v2, d2) in vals {
                    *want.entry((*k, v1, v2 + 10)).or_insert(0) += d1 * d2;
                }
            }
        }
        want.retain(|_, d| *d != 0);
        let mut have: BTreeMap<(u64, u64, u64), isize> = BTreeMap::new();
        for &(x, t, d) in &got {
            if t <= round as u64 {
                *have.entry(x).or_insert(0) += d;
            }
        }
        have.retain(|_, d| *d != 0);
        assert_eq!(have.len(), want.len(), "round {round}");
        assert!(have == want, "round {round}: the nested join differs");
    }
    let stats = pool.stats();
    assert!(stats.fault_ins > 0, "nothing faulted in: {stats:?}");
}
