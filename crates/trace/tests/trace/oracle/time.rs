//! The times an oracle run arranges at, and the scope it runs in.
//!
//! Invariant: the harness never assumes a total order. A time type says where each input
//! round starts, where an update of a round lands, which frontiers logical compaction moves
//! to, and at which times accumulations are compared; every comparison of times goes through
//! `PartialOrder::less_equal`. Two types: `u64` (rounds are times) and `Product<u64, u32>`
//! (round `r` is the outer coordinate, updates land at any inner coordinate up to [`INNER`],
//! so the updates of one round are mutually incomparable, and compaction frontiers are
//! antichains of two incomparable elements).

use std::fmt::Debug;
use std::hash::Hash;

use differential_dataflow::lattice::Lattice;
use differential_dataflow::{AsCollection, Data, ExchangeData, VecCollection};
use spillway_trace::PagedData;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::Scope;
use timely::order::Product;
use timely::progress::{Antichain, Timestamp};

/// The diff type of every collection in the oracle.
pub(super) type Diff = isize;

/// Largest inner coordinate of a `Product` update's time.
pub(super) const INNER: u32 = 3;

/// A time type the oracle arranges at (see the module docs).
pub(super) trait OracleTime:
    Timestamp + Lattice + Copy + PagedData + ExchangeData + Hash + Debug + Sync
{
    /// The time of an update entered in `round` and dated `delay` rounds later; `draw` gives
    /// randomness for any further coordinate (called at most once).
    fn at(round: u64, delay: u64, draw: impl FnOnce() -> u64) -> Self;
    /// The least time of round `round`: the traces' upper once round `round - 1` is complete.
    fn start(round: u64) -> Self;
    /// The round a time belongs to.
    fn round(&self) -> u64;
    /// The logical compaction frontier `lag` rounds behind the completion of round
    /// `completed`; `cut` places the first element of a two-element frontier.
    fn frontier(completed: u64, lag: u64, cut: u32) -> Antichain<Self>;
    /// Every time of rounds `first..=last` at which accumulations may differ.
    fn times(first: u64, last: u64) -> Vec<Self>;
    /// Runs `build` over `a` and `b`, entered into a scope at this time inside `outer`, each
    /// update `((data, time), diff)` moved to its own `time` (at or after the round it was
    /// entered in).
    fn scoped<'o, A: Data, B: Data, R>(
        outer: Scope<'o, u64>,
        a: VecCollection<'o, u64, (A, Self), Diff>,
        b: VecCollection<'o, u64, (B, Self), Diff>,
        build: impl for<'s> FnOnce(
            VecCollection<'s, Self, A, Diff>,
            VecCollection<'s, Self, B, Diff>,
        ) -> R,
    ) -> R;
}

impl OracleTime for u64 {
    fn at(round: u64, delay: u64, _draw: impl FnOnce() -> u64) -> Self {
        round + delay
    }
    fn start(round: u64) -> Self {
        round
    }
    fn round(&self) -> u64 {
        *self
    }
    fn frontier(completed: u64, lag: u64, _cut: u32) -> Antichain<Self> {
        Antichain::from_elem((completed + 1).saturating_sub(lag))
    }
    fn times(first: u64, last: u64) -> Vec<Self> {
        (first..=last).collect()
    }
    fn scoped<'o, A: Data, B: Data, R>(
        _outer: Scope<'o, u64>,
        a: VecCollection<'o, u64, (A, Self), Diff>,
        b: VecCollection<'o, u64, (B, Self), Diff>,
        build: impl for<'s> FnOnce(
            VecCollection<'s, Self, A, Diff>,
            VecCollection<'s, Self, B, Diff>,
        ) -> R,
    ) -> R {
        build(at_own_times(a), at_own_times(b))
    }
}

impl OracleTime for Product<u64, u32> {
    fn at(round: u64, delay: u64, draw: impl FnOnce() -> u64) -> Self {
        Product::new(round + delay, (draw() % (INNER as u64 + 1)) as u32)
    }
    fn start(round: u64) -> Self {
        Product::new(round, 0)
    }
    fn round(&self) -> u64 {
        self.outer
    }
    /// `{(m, cut), (m + 1, 0)}` with `m` the `u64` frontier: incomparable unless `cut` is 0,
    /// and a merge advancing `(m, x)` with `x < cut` gets `(m, cut)` while `(m, x)` with
    /// `x >= cut` stays, so advanced times are joins, not maxima.
    fn frontier(completed: u64, lag: u64, cut: u32) -> Antichain<Self> {
        let m = (completed + 1).saturating_sub(lag);
        let mut frontier = Antichain::new();
        frontier.insert(Product::new(m, cut));
        frontier.insert(Product::new(m + 1, 0));
        frontier
    }
    fn times(first: u64, last: u64) -> Vec<Self> {
        (first..=last)
            .flat_map(|a| (0..=INNER).map(move |b| Product::new(a, b)))
            .collect()
    }
    fn scoped<'o, A: Data, B: Data, R>(
        outer: Scope<'o, u64>,
        a: VecCollection<'o, u64, (A, Self), Diff>,
        b: VecCollection<'o, u64, (B, Self), Diff>,
        build: impl for<'s> FnOnce(
            VecCollection<'s, Self, A, Diff>,
            VecCollection<'s, Self, B, Diff>,
        ) -> R,
    ) -> R {
        // timely roots a dataflow at a totally ordered time; `Product` times live in a
        // nested scope, entered at `(round, 0)`.
        outer.iterative::<u32, _, _>(|inner| {
            build(at_own_times(a.enter(inner)), at_own_times(b.enter(inner)))
        })
    }
}

/// Moves each update `((data, time), t, diff)` to `(data, time, diff)`: its own time, at or
/// after the time `t` it entered at. One session per distinct time of a batch (a session per
/// update would send a message per update).
fn at_own_times<'s, T: Timestamp, D: Data>(
    entered: VecCollection<'s, T, (D, T), Diff>,
) -> VecCollection<'s, T, D, Diff> {
    entered
        .inner
        .unary::<CapacityContainerBuilder<Vec<(D, T, Diff)>>, _, _, _>(
            Pipeline,
            "AtOwnTimes",
            |_, _| {
                move |input, output| {
                    input.for_each(|cap, updates| {
                        updates.sort_by(|a, b| (a.0).1.cmp(&(b.0).1));
                        let mut updates = updates.drain(..).peekable();
                        while let Some(((data, time), _, diff)) = updates.next() {
                            let at = cap.delayed(&time, output.output_index());
                            let mut session = output.session(&at);
                            session.give((data, time.clone(), diff));
                            while let Some(((data, _), _, diff)) =
                                updates.next_if(|u| (u.0).1 == time)
                            {
                                session.give((data, time.clone(), diff));
                            }
                        }
                    })
                }
            },
        )
        .as_collection()
}
