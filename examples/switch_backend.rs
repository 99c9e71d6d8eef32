//! One flag switches every arrangement of an existing dataflow between upstream
//! differential and spillway. The dataflow counts, for every node of a generated graph, its
//! out-degree and the number of its two-hop paths (a self-join of the edges); both backends
//! must give the same answer.
//!
//! ```text
//! cargo run --release --example switch_backend            # runs both and compares
//! cargo run --release --example switch_backend -- upstream
//! cargo run --release --example switch_backend -- spillway
//! ```

use std::sync::{Arc, Mutex};

use differential_dataflow::input::Input;
use differential_dataflow::VecCollection;
use spillway::{ArrangePaged, Paging, Pool, PoolConfig};

const NODES: u64 = 200_000;
const EDGES: u64 = 1_000_000;

/// The answer: `(Σ degree · hash(node), Σ two-hop paths)`, order independent.
type Answer = (u64, i64);

fn run(spillway: bool) -> Result<Answer, Box<dyn std::error::Error>> {
    let pool = Pool::new(PoolConfig::default().budget("16MiB")?)?;
    let answer: Arc<Mutex<Answer>> = Arc::default();
    let sink = answer.clone();
    timely::execute(timely::Config::thread(), move |worker| {
        let paging = Paging::enabled(&pool);
        let (a, b) = (sink.clone(), sink.clone());
        let mut edges = worker.dataflow::<u64, _, _>(|scope| {
            let (input, edges) = scope.new_collection::<(u64, u64), isize>();
            // The one switch: every arrangement below is upstream's or spillway's.
            let reversed = edges.clone().map(|(src, dst)| (dst, src));
            let degrees: VecCollection<_, (u64, u64), isize>;
            let paths: VecCollection<_, (u64, u64, u64), isize>;
            if spillway {
                let by_src = edges.clone().arrange_by_key_paged(&paging);
                degrees = edges
                    .map(|(src, _)| (src, ()))
                    .arrange_by_key_paged(&paging)
                    .as_collection(|k, _| (k, 1));
                paths = reversed
                    .arrange_by_key_paged(&paging)
                    .join_core(by_src, |mid, src, dst| Some((src, mid, dst)));
            } else {
                let by_src = edges.clone().arrange_by_key();
                degrees = edges
                    .map(|(src, _)| (src, ()))
                    .arrange_by_key()
                    .as_collection(|k, _| (*k, 1));
                paths = reversed
                    .arrange_by_key()
                    .join_core(by_src, |mid, src, dst| Some((*src, *mid, *dst)));
            }
            degrees.inspect(move |((node, _), _, diff)| {
                let mut a = a.lock().unwrap();
                a.0 = a.0.wrapping_add(
                    node.wrapping_mul(0x9E37_79B9_7F4A_7C15)
                        .wrapping_mul(*diff as u64),
                );
            });
            paths.inspect(move |(_, _, diff)| b.lock().unwrap().1 += *diff as i64);
            input
        });
        if worker.index() == 0 {
            for i in 0..EDGES {
                let x = i.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ (i << 7);
                edges.insert((x % NODES, (x >> 32) % NODES));
            }
        }
    })?;
    let result = *answer.lock().unwrap();
    Ok(result)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let which = std::env::args().nth(1);
    let mut answers = Vec::new();
    for (name, spillway) in [("upstream", false), ("spillway", true)] {
        if which.as_deref().is_some_and(|w| w != name) {
            continue;
        }
        let started = std::time::Instant::now();
        let answer = run(spillway)?;
        println!(
            "{name:>8}: degree checksum {:016x}, {} two-hop paths ({:.2} s)",
            answer.0,
            answer.1,
            started.elapsed().as_secs_f64()
        );
        answers.push(answer);
    }
    if answers.len() == 2 {
        if answers[0] != answers[1] {
            return Err("the backends disagree".into());
        }
        println!("both backends give the same answer");
    }
    Ok(())
}
