//! `PagedCollectionExt`: a small upstream dataflow ported by renaming each operator to its
//! `_paged` form and passing a `Paging`, checked against the upstream original, with paging
//! on (a tiny pool) and off, on 1 and 2 workers, over rounds with retractions.

use std::sync::{Arc, Mutex};

use differential_dataflow::consolidation::consolidate_updates;
use differential_dataflow::input::Input;
use differential_dataflow::VecCollection;
use spillway_pool::{ExtentBackend, Pool, PoolConfig};
use spillway_trace::{PagedCollectionExt, Paging, PagingPolicy};

type Record = (u64, u64, u64);
type Updates = Vec<(Record, u64, isize)>;
type Out = Arc<Mutex<Updates>>;

/// The upstream dataflow: label propagation over one hop. Each node takes the least label of
/// its in-neighbours (`join`, `reduce`); nodes reached by no edge keep their own labels
/// (`distinct`, `antijoin`); edges whose source is labelled, relabelled (`join_map`,
/// `semijoin`); everything tagged and `consolidate`d.
fn upstream<'s>(
    edges: VecCollection<'s, u64, (u64, u64)>,
    labels: VecCollection<'s, u64, (u64, u64)>,
) -> VecCollection<'s, u64, Record> {
    let reached = edges
        .clone()
        .join(labels.clone())
        .map(|(_src, (dst, label))| (dst, label))
        .reduce(|_dst, input, output| output.push((*input[0].0, 1)));
    let hit = reached.clone().map(|(dst, _)| dst).distinct();
    let kept = labels.clone().antijoin(hit);
    let relabelled = edges
        .clone()
        .join_map(labels.clone(), |src, dst, label| (*dst, src + label));
    let labelled = edges.semijoin(labels.map(|(node, _)| node));
    reached
        .map(|(n, l)| (0, n, l))
        .concat(kept.map(|(n, l)| (1, n, l)))
        .concat(relabelled.map(|(n, l)| (2, n, l)))
        .concat(labelled.map(|(s, d)| (3, s, d)))
        .consolidate()
}

/// The same dataflow, ported: `_paged` names and a `&Paging` argument, nothing else.
fn ported<'s>(
    edges: VecCollection<'s, u64, (u64, u64)>,
    labels: VecCollection<'s, u64, (u64, u64)>,
    paging: &Paging,
) -> VecCollection<'s, u64, Record> {
    let reached = edges
        .clone()
        .join_paged(labels.clone(), paging)
        .map(|(_src, (dst, label))| (dst, label))
        .reduce_paged(paging, |_dst, input, output| output.push((*input[0].0, 1)));
    let hit = reached.clone().map(|(dst, _)| dst).distinct_paged(paging);
    let kept = labels.clone().antijoin_paged(hit, paging);
    let relabelled = edges
        .clone()
        .join_map_paged(labels.clone(), paging, |src, dst, label| {
            (*dst, src + label)
        });
    let labelled = edges.semijoin_paged(labels.map(|(node, _)| node), paging);
    reached
        .map(|(n, l)| (0, n, l))
        .concat(kept.map(|(n, l)| (1, n, l)))
        .concat(relabelled.map(|(n, l)| (2, n, l)))
        .concat(labelled.map(|(s, d)| (3, s, d)))
        .consolidate_paged(paging)
}

/// Runs both dataflows on `workers` workers; returns their consolidated outputs and whether
/// the pool took any chunk.
fn run(workers: usize, page: bool) -> (Updates, Updates, bool) {
    let pool = Pool::new(PoolConfig {
        budget: 256 << 10,
        extents: ExtentBackend::Memory { capacity: None },
        ..PoolConfig::default()
    })
    .unwrap();
    let (up, pa): (Out, Out) = Default::default();
    let (pool2, up2, pa2) = (pool.clone(), up.clone(), pa.clone());
    timely::execute(timely::Config::process(workers), move |worker| {
        let paging = if page {
            Paging::with_policy(
                &pool2,
                PagingPolicy {
                    min_bytes: 0,
                    raw_depth0: false,
                    ..PagingPolicy::default()
                },
            )
        } else {
            Paging::disabled()
        };
        let (up3, pa3) = (up2.clone(), pa2.clone());
        let (mut edges, mut labels) = worker.dataflow::<u64, _, _>(|scope| {
            let (edges_in, edges) = scope.new_collection::<(u64, u64), isize>();
            let (labels_in, labels) = scope.new_collection::<(u64, u64), isize>();
            upstream(edges.clone(), labels.clone()).inspect(move |x| up3.lock().unwrap().push(*x));
            ported(edges, labels, &paging).inspect(move |x| pa3.lock().unwrap().push(*x));
            (edges_in, labels_in)
        });
        if worker.index() == 0 {
            let mut x = 7u64;
            let mut next = || {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                x >> 33
            };
            let mut live = Vec::new();
            for round in 0..4u64 {
                for _ in 0..3_000 {
                    let edge = (next() % 2_000, next() % 2_000);
                    edges.insert(edge);
                    live.push(edge);
                }
                for node in (round * 500)..(round * 500 + 700) {
                    labels.insert((node, next() % 100));
                }
                // Retract a quarter of the edges inserted so far.
                for edge in live.iter().step_by(4).copied().collect::<Vec<_>>() {
                    edges.remove(edge);
                }
                live.retain(|e| e.0 % 4 != 0);
                edges.advance_to(round + 1);
                labels.advance_to(round + 1);
            }
        }
    })
    .unwrap();
    let mut up = up.lock().unwrap().clone();
    let mut pa = pa.lock().unwrap().clone();
    consolidate_updates(&mut up);
    consolidate_updates(&mut pa);
    (up, pa, pool.stats().inserts > 0)
}

#[test]
fn ported_dataflow_matches_upstream_paged_and_resident() {
    for workers in [1, 2] {
        for page in [false, true] {
            let (up, pa, paged) = run(workers, page);
            assert!(up.len() > 1_000, "a nontrivial output: {}", up.len());
            assert_eq!(up, pa, "workers {workers}, paging {page}");
            assert_eq!(
                paged, page,
                "the pool took chunks exactly when paging was on"
            );
        }
    }
}
