//! Oracle cases: random update streams, as a function of their [`Params`], and the times at
//! which a case's traces are read.
//!
//! Invariant: a case is a deterministic function of its `Params` and its flavor (shrinking
//! `n` shrinks the stream to a prefix), and every update of round `r` is dated at or after
//! the round's start ([`OracleTime::start`]), so the driver can enter it during round `r`.

use timely::order::PartialOrder;
use timely::progress::{Antichain, Timestamp};

use differential_dataflow::lattice::Lattice;

use super::flavor::Flavor;
use super::time::{Diff, OracleTime};

/// One update: entered during `round`, at logical `time` (in round `round` or later).
pub(super) struct Upd<S: Flavor> {
    pub round: u64,
    pub data: (S::K, S::V),
    pub time: S::T,
    pub diff: Diff,
}

// Derived impls would ask `S: Clone` rather than the associated types.
impl<S: Flavor> Clone for Upd<S> {
    fn clone(&self) -> Self {
        Upd {
            round: self.round,
            data: self.data.clone(),
            time: self.time,
            diff: self.diff,
        }
    }
}

impl<S: Flavor> std::fmt::Debug for Upd<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "r{} {:?} @{:?} {:+}",
            self.round, self.data, self.time, self.diff
        )
    }
}

/// How far in the future an update may be dated, in rounds.
pub(super) const MAX_DELAY: u64 = 2;

#[derive(Clone, Debug)]
pub(super) struct Params {
    pub seed: u64,
    pub n: usize,
    pub probe_n: usize,
    pub keys: u64,
    pub vals: u64,
    pub rounds: u64,
    pub retract_pct: u64,
    pub future_pct: u64,
    /// Share of updates entered in round 0 (the rest are spread uniformly), so one batch can
    /// exceed the chunk `TARGET` on its own.
    pub burst_pct: u64,
    /// Extra `worker.step()`s after each round, letting idle merging (`merge_effort`) finish
    /// spine merges, whose outputs span several chunks.
    pub settle_steps: usize,
    /// Logical compaction lag behind the completed round; `None`: our handles never advance
    /// logical compaction (physical compaction always advances, so spines still merge).
    pub lag: Option<u64>,
    /// Where a two-element compaction frontier's first element lies ([`OracleTime::frontier`];
    /// `u64` times ignore it).
    pub cut: u32,
    /// `idle_merge_effort`, so spines merge (and so advance chunks) between rounds.
    pub merge_effort: Option<isize>,
    pub paging_budget: usize,
}

pub(super) struct Case<S: Flavor> {
    pub rounds: u64,
    pub data: Vec<Upd<S>>,
    pub probe: Vec<Upd<S>>,
    pub lag: Option<u64>,
    pub cut: u32,
    pub merge_effort: Option<isize>,
    pub settle_steps: usize,
    pub paging_budget: usize,
    /// Paging on (through a pool of `paging_budget` bytes) or off (same types, resident).
    pub paging: bool,
}

impl<S: Flavor> Clone for Case<S> {
    fn clone(&self) -> Self {
        Case {
            rounds: self.rounds,
            data: self.data.clone(),
            probe: self.probe.clone(),
            lag: self.lag,
            cut: self.cut,
            merge_effort: self.merge_effort,
            settle_steps: self.settle_steps,
            paging_budget: self.paging_budget,
            paging: self.paging,
        }
    }
}

impl<S: Flavor> Case<S> {
    /// Rounds the driver steps through: input rounds plus the future-dated tail.
    pub fn total_rounds(&self) -> u64 {
        self.rounds + MAX_DELAY
    }

    /// The logical compaction frontier after round `completed` (`None`: never advanced).
    pub fn frontier_after(&self, completed: u64) -> Option<Antichain<S::T>> {
        Some(S::T::frontier(completed, self.lag?, self.cut))
    }

    /// The logical compaction frontier in force when round `r`'s traces are read.
    pub fn frontier_at_read(&self, r: u64) -> Antichain<S::T> {
        r.checked_sub(1)
            .and_then(|completed| self.frontier_after(completed))
            .unwrap_or_else(|| Antichain::from_elem(S::T::minimum()))
    }

    /// The times at which round `r`'s traces are read and compared: the round's own times
    /// beyond the frontier in force, and the frontier's elements in rounds up to `r`, where
    /// compaction has collapsed times.
    pub fn queries(&self, r: u64) -> Vec<S::T> {
        let frontier = self.frontier_at_read(r);
        let mut q: Vec<S::T> = S::T::times(r, r)
            .into_iter()
            .filter(|t| frontier.less_equal(t))
            .collect();
        q.extend(frontier.elements().iter().filter(|t| t.round() <= r));
        q.sort();
        q.dedup();
        q
    }

    /// Every time of the run at which accumulations may differ.
    pub fn all_times(&self) -> Vec<S::T> {
        S::T::times(0, self.total_rounds())
    }
}

/// The accumulation of `updates` at time `t`, nonzero only.
pub(super) fn accumulate<S: Flavor>(
    updates: &[Upd<S>],
    t: &S::T,
) -> std::collections::BTreeMap<(S::K, S::V), Diff> {
    let mut m = std::collections::BTreeMap::new();
    for u in updates.iter().filter(|u| u.time.less_equal(t)) {
        *m.entry(u.data.clone()).or_insert(0) += u.diff;
    }
    m.retain(|_, r| *r != 0);
    m
}

/// splitmix64: a tiny deterministic generator, so a case is a function of its `Params` and
/// shrinking `n` shrinks the stream to a prefix.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A stream of inserts and retractions of earlier inserts, rounds non-decreasing. Most
/// retractions target inserts of earlier rounds (so they survive consolidation into the
/// round's batch); some target the current round (cancelling within the batcher). A
/// retraction lands at the join of its own time and the insert's.
fn gen_stream<S: Flavor>(rng: &mut Rng, n: usize, p: &Params) -> Vec<Upd<S>> {
    let Params {
        keys,
        vals,
        rounds,
        retract_pct,
        future_pct,
        burst_pct,
        ..
    } = *p;
    let mut rounds_of: Vec<u64> = (0..n)
        .map(|_| {
            if rng.below(100) < burst_pct {
                0
            } else {
                rng.below(rounds)
            }
        })
        .collect();
    rounds_of.sort_unstable();
    // Inserts of earlier rounds, and of the current round.
    type Inserts<S> = Vec<((<S as Flavor>::K, <S as Flavor>::V), <S as Flavor>::T)>;
    let (mut live, mut fresh): (Inserts<S>, Inserts<S>) = (Vec::new(), Vec::new());
    let mut current = 0;
    let mut out = Vec::with_capacity(n);
    for round in rounds_of {
        if round != current {
            live.append(&mut fresh);
            current = round;
        }
        let delay = if rng.below(100) < future_pct {
            1 + rng.below(MAX_DELAY)
        } else {
            0
        };
        let time = S::T::at(round, delay, || rng.next());
        let retract = rng.below(100) < retract_pct;
        let same_round = rng.below(100) < 15;
        let pool = match (retract, same_round) {
            (true, true) if !fresh.is_empty() => Some(&mut fresh),
            (true, false) if !live.is_empty() => Some(&mut live),
            _ => None,
        };
        if let Some(pool) = pool {
            let (data, t0) = pool.swap_remove(rng.below(pool.len() as u64) as usize);
            out.push(Upd {
                round,
                data,
                time: time.join(&t0),
                diff: -1,
            });
        } else {
            let data = (S::key(rng.below(keys)), S::val(rng.below(vals)));
            fresh.push((data.clone(), time));
            out.push(Upd {
                round,
                data,
                time,
                diff: 1,
            });
        }
    }
    out
}

/// The case of `p`: paging on for two seeds in three.
pub(super) fn gen_case<S: Flavor>(p: &Params) -> Case<S> {
    let mut rng = Rng(p.seed);
    let data = gen_stream(&mut rng, p.n, p);
    let probe = gen_stream(&mut rng, p.probe_n, p);
    Case {
        rounds: p.rounds,
        data,
        probe,
        lag: p.lag,
        cut: p.cut,
        merge_effort: p.merge_effort,
        settle_steps: p.settle_steps,
        paging_budget: p.paging_budget,
        paging: !p.seed.is_multiple_of(3),
    }
}
