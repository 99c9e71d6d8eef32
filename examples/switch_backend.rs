//! Porting a dataflow to spillway is a rename plus one argument, and one flag then switches
//! it between resident and paged arrangements. The dataflow finds every node reachable from a
//! few roots of a generated graph (`iterate`, so its arrangements live at `Product<u64, u64>`
//! time) and every node's out-degree; it is written once with upstream's operators and once
//! with [`PagedCollectionExt`] (`join_map` → `join_map_paged(.., &paging, ..)`, `distinct` →
//! `distinct_paged(&paging)`, `count` → `count_paged(&paging)`). All three runs must agree.
//!
//! ```text
//! cargo run --release --example switch_backend            # runs all three and compares
//! cargo run --release --example switch_backend -- upstream|resident|paged
//! ```

use std::sync::{Arc, Mutex};

use differential_dataflow::input::Input;
use differential_dataflow::operators::Iterate;
use spillway::{PagedCollectionExt, Paging, Pool, PoolConfig};

const NODES: u64 = 100_000;
const EDGES: u64 = 400_000;
const ROOTS: u64 = 10;

/// The answer, order independent: `(reachable nodes, Σ hash(node) over them, Σ degree ·
/// hash(node))`.
type Answer = (i64, u64, u64);

/// Which arrangements the dataflow uses.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Backend {
    /// Upstream differential's operators (`OrdValSpine` arrangements).
    Upstream,
    /// spillway's operators with `Paging::disabled()`: resident `PagedSpine`s.
    Resident,
    /// spillway's operators with `Paging::enabled(&pool)` at a 16 MiB budget.
    Paged,
}

fn hash(node: u64) -> u64 {
    node.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

fn run(backend: Backend) -> Result<(Answer, u64), Box<dyn std::error::Error>> {
    let pool = Pool::new(PoolConfig::default().budget("16MiB")?)?;
    let answer: Arc<Mutex<Answer>> = Arc::default();
    let sink = answer.clone();
    let worker_pool = pool.clone();
    timely::execute(timely::Config::thread(), move |worker| {
        let paging = match backend {
            Backend::Paged => Paging::enabled(&worker_pool),
            _ => Paging::disabled(),
        };
        let (a, b) = (sink.clone(), sink.clone());
        let (mut edges, mut roots) = worker.dataflow::<u64, _, _>(|scope| {
            let (edges_in, edges) = scope.new_collection::<(u64, u64), isize>();
            let (roots_in, roots) = scope.new_collection::<u64, isize>();
            let roots = roots.map(|node| (node, ()));
            let (reach, degrees) = if backend == Backend::Upstream {
                let (e, r) = (edges.clone(), roots.clone());
                let reach = roots.iterate(move |inner, reach| {
                    reach
                        .join_map(e.enter(inner), |_src, (), dst| (*dst, ()))
                        .concat(r.enter(inner))
                        .distinct()
                });
                (reach, edges.map(|(src, _)| src).count())
            } else {
                let (e, r, p) = (edges.clone(), roots.clone(), paging.clone());
                let reach = roots.iterate(move |inner, reach| {
                    reach
                        .join_map_paged(e.enter(inner), &p, |_src, (), dst| (*dst, ()))
                        .concat(r.enter(inner))
                        .distinct_paged(&p)
                });
                (reach, edges.map(|(src, _)| src).count_paged(&paging))
            };
            reach.inspect(move |((node, ()), _, diff)| {
                let mut a = a.lock().unwrap();
                a.0 += *diff as i64;
                a.1 = a.1.wrapping_add(hash(*node).wrapping_mul(*diff as u64));
            });
            degrees.inspect(move |((node, degree), _, diff)| {
                let mut b = b.lock().unwrap();
                let term = hash(*node).wrapping_mul(*degree as u64);
                b.2 = b.2.wrapping_add(term.wrapping_mul(*diff as u64));
            });
            (edges_in, roots_in)
        });
        if worker.index() == 0 {
            for i in 0..EDGES {
                let x = i.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ (i << 7);
                edges.insert((x % NODES, (x >> 32) % NODES));
            }
            for root in 0..ROOTS {
                roots.insert(root * (NODES / ROOTS));
            }
        }
    })?;
    let result = *answer.lock().unwrap();
    Ok((result, pool.stats().extent_bytes_written))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let which = std::env::args().nth(1);
    let backends = [
        ("upstream", Backend::Upstream),
        ("resident", Backend::Resident),
        ("paged", Backend::Paged),
    ];
    if let Some(w) = &which {
        if !backends.iter().any(|(name, _)| name == w) {
            return Err(format!("unknown backend {w:?}: upstream, resident or paged").into());
        }
    }
    let mut answers = Vec::new();
    for (name, backend) in backends {
        if which.as_deref().is_some_and(|w| w != name) {
            continue;
        }
        let started = std::time::Instant::now();
        let (answer, written) = run(backend)?;
        println!(
            "{name:>8}: {} reachable (checksum {:016x}), degree checksum {:016x}, {written} extent bytes written ({:.2} s)",
            answer.0,
            answer.1,
            answer.2,
            started.elapsed().as_secs_f64()
        );
        answers.push(answer);
    }
    if answers.windows(2).any(|w| w[0] != w[1]) {
        return Err("the backends disagree".into());
    }
    if answers.len() > 1 {
        println!("every backend gives the same answer");
    }
    Ok(())
}
