//! The oracle's verdict on a run: the side under test against upstream, and upstream against
//! a from-scratch model, so a harness bug cannot make both sides agree on nonsense.
//!
//! Invariant: every comparison is of accumulations at times (never of update lists alone,
//! whose times may legitimately differ under a partial order), at every time of the run
//! where they may differ ([`Case::all_times`]) or at the reads' query times; the model is
//! computed one time at a time from the case's updates, so memory stays at one snapshot.

use std::collections::BTreeMap;

use differential_dataflow::consolidation::consolidate_updates;

use super::case::{accumulate, Case};
use super::flavor::Flavor;
use super::run::{min_max, run, weighted_sum, ChunkStats, Side, Sink};
use super::time::{Diff, OracleTime};

/// Largest join output (in updates) still checked against the from-scratch model.
const MODEL_JOIN_LIMIT: usize = 20_000;

fn take<D: Ord + Clone, T: OracleTime>(s: &Sink<D, T>) -> Vec<(D, T, Diff)> {
    let mut v = s.lock().unwrap().clone();
    consolidate_updates(&mut v);
    v
}

/// Accumulated contents of `updates` at time `t`, nonzero only.
fn at<D: Ord + Clone, T: OracleTime>(updates: &[(D, T, Diff)], t: &T) -> BTreeMap<D, Diff> {
    let mut m = BTreeMap::new();
    for (d, time, r) in updates {
        if time.less_equal(t) {
            *m.entry(d.clone()).or_insert(0) += *r;
        }
    }
    m.retain(|_, r| *r != 0);
    m
}

fn first_diff<D: Ord + std::fmt::Debug>(a: &BTreeMap<D, Diff>, b: &BTreeMap<D, Diff>) -> String {
    let only_a: Vec<_> = a
        .iter()
        .filter(|(k, r)| b.get(*k) != Some(*r))
        .take(5)
        .collect();
    let only_b: Vec<_> = b
        .iter()
        .filter(|(k, r)| a.get(*k) != Some(*r))
        .take(5)
        .collect();
    format!(
        "{} vs {} entries; left-only/differing {:?}; right-only/differing {:?}",
        a.len(),
        b.len(),
        only_a,
        only_b
    )
}

/// Equal at every time of `times` (left: under test, right: upstream): fast path on
/// consolidated updates, else per time.
fn same_at_every_time<D: Ord + Clone + std::fmt::Debug, T: OracleTime>(
    what: &str,
    test: &[(D, T, Diff)],
    upstream: &[(D, T, Diff)],
    times: &[T],
) -> Result<(), String> {
    if test == upstream {
        return Ok(());
    }
    for t in times {
        let (a, b) = (at(test, t), at(upstream, t));
        if a != b {
            return Err(format!(
                "{what}: differ at time {t:?}: {}",
                first_diff(&a, &b)
            ));
        }
    }
    Ok(())
}

/// An upstream output against the model's contents at `t`.
fn model_at<D: Ord + Clone + std::fmt::Debug, T: OracleTime>(
    what: &str,
    upstream: &[(D, T, Diff)],
    t: &T,
    model: BTreeMap<D, Diff>,
) -> Result<(), String> {
    let got = at(upstream, t);
    if got != model {
        return Err(format!(
            "{what} at time {t:?}: upstream vs model (harness bug?): {}",
            first_diff(&got, &model)
        ));
    }
    Ok(())
}

/// Records grouped by key, values in order.
type ByKey<S> = BTreeMap<<S as Flavor>::K, Vec<(<S as Flavor>::V, Diff)>>;

fn per_key<S: Flavor>(m: &BTreeMap<(S::K, S::V), Diff>) -> ByKey<S> {
    let mut g: ByKey<S> = BTreeMap::new();
    for ((k, v), r) in m {
        g.entry(k.clone()).or_default().push((v.clone(), *r));
    }
    g
}

/// The case's verdict on one run's two sides.
pub(super) fn check<S: Flavor>(
    case: &Case<S>,
    test: &Side<S>,
    upstream: &Side<S>,
) -> Result<(), String> {
    for (name, side) in [("under test", test), ("upstream", upstream)] {
        let errors = side.errors.lock().unwrap();
        if !errors.is_empty() {
            return Err(format!("{name}: {}", errors.join("; ")));
        }
    }
    let times = case.all_times();

    // (a) trace contents at each round's query times: under test == upstream.
    let (tr, ur) = (test.reads.lock().unwrap(), upstream.reads.lock().unwrap());
    let (tk, uk) = (
        test.key_reads.lock().unwrap(),
        upstream.key_reads.lock().unwrap(),
    );
    let empty = BTreeMap::new();
    let mut reads_at: BTreeMap<S::T, Vec<u64>> = BTreeMap::new();
    for r in 0..case.total_rounds() {
        for q in case.queries(r) {
            let at = (r, q);
            let (got, want) = (tr.get(&at).unwrap_or(&empty), ur.get(&at).unwrap_or(&empty));
            if got != want {
                return Err(format!(
                    "trace contents at round {r}, time {q:?}: under test vs upstream: {}",
                    first_diff(got, want)
                ));
            }
            let (got, want) = (
                tk.get(&at).unwrap_or(&BTreeMap::new()).clone(),
                uk.get(&at).unwrap_or(&BTreeMap::new()).clone(),
            );
            if got != want {
                return Err(format!(
                    "key-only trace contents at round {r}, time {q:?}: under test vs upstream: {}",
                    first_diff(&got, &want)
                ));
            }
            reads_at.entry(q).or_default().push(r);
        }
    }

    // (a) batch streams.
    let (ts, us) = (take(&test.stream), take(&upstream.stream));
    same_at_every_time("as_collection (key, val)", &ts, &us, &times)?;
    let mut input: Vec<_> = case
        .data
        .iter()
        .map(|u| (u.data.clone(), u.time, u.diff))
        .collect();
    consolidate_updates(&mut input);
    if us != input {
        return Err(
            "as_collection of upstream arrangement != consolidated input (harness bug?)".into(),
        );
    }
    same_at_every_time(
        "as_collection (key, ())",
        &take(&test.key_stream),
        &take(&upstream.key_stream),
        &times,
    )?;

    // (b) - (d): the operators, under test against upstream.
    let (tj, uj) = (take(&test.join), take(&upstream.join));
    same_at_every_time("join_core", &tj, &uj, &times)?;
    let (tc, uc) = (take(&test.count), take(&upstream.count));
    same_at_every_time("count", &tc, &uc, &times)?;
    let (td, ud) = (take(&test.distinct_keys), take(&upstream.distinct_keys));
    same_at_every_time("distinct (keys)", &td, &ud, &times)?;
    let (tp, up) = (take(&test.distinct_pairs), take(&upstream.distinct_pairs));
    same_at_every_time("distinct (pairs)", &tp, &up, &times)?;
    let (tm, um) = (take(&test.min_max), take(&upstream.min_max));
    same_at_every_time("reduce (min, max)", &tm, &um, &times)?;
    let (tsum, usum) = (take(&test.sum), take(&upstream.sum));
    same_at_every_time("reduce (weighted sum)", &tsum, &usum, &times)?;

    // Upstream against the model, one time at a time.
    for t in &times {
        let snap = accumulate(&case.data, t);
        for r in reads_at.get(t).into_iter().flatten() {
            let got = ur.get(&(*r, *t)).unwrap_or(&empty);
            if *got != snap {
                return Err(format!(
                    "trace contents at round {r}, time {t:?}: upstream vs model (harness bug?): {}",
                    first_diff(got, &snap)
                ));
            }
        }
        let keyed = per_key::<S>(&snap);
        // The join model is quadratic per key and slow in a debug build: small cases only
        // (the model checks the harness, which the small cases exercise just as well).
        if uj.len() <= MODEL_JOIN_LIMIT {
            let probe = per_key::<S>(&accumulate(&case.probe, t));
            let mut m = BTreeMap::new();
            for (k, av) in &keyed {
                if let Some(bv) = probe.get(k) {
                    for (v1, r1) in av {
                        for (v2, r2) in bv {
                            *m.entry((k.clone(), v1.clone(), v2.clone())).or_insert(0) += r1 * r2;
                        }
                    }
                }
            }
            m.retain(|_, r| *r != 0);
            model_at("join_core", &uj, t, m)?;
        }
        let totals = || {
            keyed
                .iter()
                .map(|(k, vs)| (k, vs.iter().map(|x| x.1).sum::<Diff>()))
                .filter(|(_, c)| *c != 0)
        };
        model_at(
            "count",
            &uc,
            t,
            totals().map(|(k, c)| ((k.clone(), c as u64), 1)).collect(),
        )?;
        model_at(
            "distinct (keys)",
            &ud,
            t,
            totals().map(|(k, _)| (k.clone(), 1)).collect(),
        )?;
        model_at(
            "distinct (pairs)",
            &up,
            t,
            snap.keys().map(|kv| (kv.clone(), 1)).collect(),
        )?;
        let mut mm = BTreeMap::new();
        for (k, vs) in &keyed {
            for v in min_max(vs.iter().map(|x| x.0.clone())) {
                mm.insert((k.clone(), v), 1);
            }
        }
        model_at("reduce (min, max)", &um, t, mm)?;
        model_at(
            "reduce (weighted sum)",
            &usum,
            t,
            keyed
                .iter()
                .map(|(k, vs)| ((k.clone(), weighted_sum::<S>(vs.iter().cloned())), 1))
                .collect(),
        )?;
    }
    Ok(())
}

/// What the fixed cases assert on: per worker count, the batch shapes seen under test and
/// the pool's counters.
pub(super) struct Outcome {
    pub shapes: Vec<ChunkStats>,
    pub pools: Vec<spillway_pool::PoolStats>,
}

/// Runs a case with 1 and with 2 workers and checks both.
pub(super) fn run_and_check<S: Flavor>(case: &Case<S>) -> Result<Outcome, String> {
    let mut out = Outcome {
        shapes: Vec::new(),
        pools: Vec::new(),
    };
    for workers in [1, 2] {
        let t0 = std::time::Instant::now();
        let done = run(case, workers)
            .map_err(|e| format!("{workers} worker(s): computation failed: {e}"))?;
        let t1 = std::time::Instant::now();
        check(case, &done.test, &done.upstream).map_err(|e| format!("{workers} worker(s): {e}"))?;
        let shape = done.test.stats.lock().unwrap().clone();
        if std::env::var_os("ORACLE_DEBUG").is_some() {
            eprintln!(
                "{} {workers} worker(s): {} updates, run {:?}, check {:?}, {shape:?}, fault-ins {}",
                std::any::type_name::<S>().rsplit("::").next().unwrap_or(""),
                case.data.len(),
                t1 - t0,
                t1.elapsed(),
                done.pool.fault_ins,
            );
        }
        out.shapes.push(shape);
        out.pools.push(done.pool);
    }
    Ok(out)
}
