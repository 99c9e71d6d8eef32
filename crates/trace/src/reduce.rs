//! The paged reduce: a [`ReduceTactic`] over paged arrangements ([`PagedReduce`]), the
//! `reduce`/`count`/`threshold` family on paged arrangements ([`ReducePaged`]), and the
//! total-order `count`/`threshold` operators ([`CountTotalPaged`]).
//!
//! # How a retire reads its batches
//! differential's `reduce_with_tactic` hands the tactic, per interval `[lower, upper)`, the
//! input trace's batches before the interval (*source*), the output trace's batches (*output*)
//! and the interval's new input batches (*input*). The tactic visits the keys of the input
//! batches and of its pending interesting times in key order. Every batch is read by one
//! [`BatchReader`](crate::batch_reader::BatchReader) that only moves forward: it skips chunks
//! by their resident fence keys (no decode, no pin) and reads a chunk that may hold the key
//! sought once, as rows (free) or one decode of a columnar (packed or pooled) body, keeping
//! it until it moves past it. So each chunk is read at most once per interval, and chunks
//! holding no key of interest are never read.
//!
//! # Per key
//! The key's updates of each side are copied out (owned values), and the interesting-times
//! replay of differential's cursor tactic (`operators::cursor::reduce`, `HistoryReplayer`) runs
//! over them unchanged, on [`ValueHistory`]s of value *indices*: the same times are examined,
//! the same synthetic times made, the same user logic called with the same accumulations,
//! so the output equals upstream's for partially ordered times too (tests compare them).
//!
//! # Output
//! Output updates are staged in key order and cut into chunks of [`crate::TARGET_BYTES`] of
//! encoded records (a [`Filler`], as a merge's output is), built with
//! the [`Paging`] the tactic was made with: the output trace pages by itself, with no
//! `PagedChunk::with_paging` in user code.

use std::rc::Rc;

use differential_dataflow::consolidation::{consolidate, consolidate_updates};
use differential_dataflow::difference::{Abelian, Semigroup};
use differential_dataflow::lattice::Lattice;
use differential_dataflow::operators::arrange::{Arranged, TraceAgent};
use differential_dataflow::operators::reduce::{reduce_with_tactic, ReduceTactic};
use differential_dataflow::operators::ValueHistory;
use differential_dataflow::trace::{Builder, Description, Span, TraceReader};
use differential_dataflow::{AsCollection, Data, VecCollection};
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::{CapabilitySet, Operator};
use timely::order::TotalOrder;
use timely::progress::{Antichain, Timestamp};

use crate::batch_reader::{Batch, MergedBatches};
use crate::chunk::PagedChunk;
use crate::data::PagedData;
use crate::pager::{Pager, Paging};
use crate::records::{Filler, TARGET_BYTES};
use crate::{PagedBuilder, PagedSpine};

/// A paged arrangement.
type PagedArranged<'scope, K, V, T, R> = Arranged<'scope, TraceAgent<PagedSpine<K, V, T, R>>>;

/// Sorts and deduplicates a list of times.
fn sort_dedup<T: Ord>(list: &mut Vec<T>) {
    list.dedup();
    list.sort();
    list.dedup();
}

/// Updates an optional meet by an optional time.
fn update_meet<T: Lattice + Clone>(meet: &mut Option<T>, other: Option<&T>) {
    if let Some(time) = other {
        if let Some(meet) = meet.as_mut() {
            meet.meet_assign(time);
        } else {
            *meet = Some(time.clone());
        }
    }
}

/// Reuses an empty vector's allocation for another element type of the same layout (item
/// types that differ only in lifetime): in-place collection keeps the buffer.
fn recycle<A, B>(mut vec: Vec<A>) -> Vec<B> {
    vec.clear();
    vec.into_iter().map(|_| unreachable!("empty")).collect()
}

/// `updates` (sorted by value) with each value replaced by its index in `vals` (sorted, a
/// superset of their values).
fn indexed<'a, V: Ord, T: Clone, R: Clone>(
    vals: &'a [V],
    updates: &'a [(V, T, R)],
) -> impl Iterator<Item = (usize, T, R)> + 'a {
    let mut p = 0;
    updates.iter().map(move |(v, t, r)| {
        while vals[p] != *v {
            p += 1;
        }
        (p, t.clone(), r.clone())
    })
}

/// The per-key state of a retire: the key's updates from each side, and the replay of
/// differential's `HistoryReplayer` over them.
struct Replayer<V1: PagedData, T, R1, V2, R2> {
    /// The key's updates in the new input batches, the input trace and the output trace.
    bat: Vec<(V1, T, R1)>,
    src: Vec<(V1, T, R1)>,
    out: Vec<(V2, T, R2)>,
    /// The distinct input values (of `bat` and `src`), and output values (of `out`).
    in_vals: Vec<V1>,
    out_vals: Vec<V2>,
    bat_h: ValueHistory<usize, T, R1>,
    src_h: ValueHistory<usize, T, R1>,
    out_h: ValueHistory<usize, T, R2>,
    input_buffer: Vec<(usize, R1)>,
    /// The input handed to the logic (kept for its allocation; always empty between calls).
    items: Vec<(V1::Item<'static>, R1)>,
    output_buffer: Vec<(V2, R2)>,
    update_buffer: Vec<(V2, R2)>,
    output_produced: Vec<((V2, T), R2)>,
    synth_times: Vec<T>,
    meets: Vec<T>,
    times_current: Vec<T>,
    temporary: Vec<T>,
    /// The key's output updates.
    outputs: Vec<(V2, T, R2)>,
}

impl<V1, T, R1, V2, R2> Replayer<V1, T, R1, V2, R2>
where
    V1: PagedData,
    T: PagedData + Lattice + Timestamp,
    R1: PagedData + Semigroup,
    V2: PagedData,
    R2: PagedData + Semigroup,
{
    fn new() -> Self {
        Replayer {
            bat: Vec::new(),
            src: Vec::new(),
            out: Vec::new(),
            in_vals: Vec::new(),
            out_vals: Vec::new(),
            bat_h: ValueHistory::new(),
            src_h: ValueHistory::new(),
            out_h: ValueHistory::new(),
            input_buffer: Vec::new(),
            items: Vec::new(),
            output_buffer: Vec::new(),
            update_buffer: Vec::new(),
            output_produced: Vec::new(),
            synth_times: Vec::new(),
            meets: Vec::new(),
            times_current: Vec::new(),
            temporary: Vec::new(),
            outputs: Vec::new(),
        }
    }

    fn clear(&mut self) {
        self.bat.clear();
        self.src.clear();
        self.out.clear();
        self.outputs.clear();
    }

    /// Collects the distinct values of `bat` and `src` into `in_vals`, of `out` into `out_vals`.
    fn index_values(&mut self) {
        self.in_vals.clear();
        let (a, b) = (&self.bat, &self.src);
        let (mut i, mut j) = (0, 0);
        while i < a.len() || j < b.len() {
            let v = if j == b.len() || (i < a.len() && a[i].0 <= b[j].0) {
                i += 1;
                &a[i - 1].0
            } else {
                j += 1;
                &b[j - 1].0
            };
            if self.in_vals.last() != Some(v) {
                self.in_vals.push(v.clone());
            }
        }
        self.out_vals.clear();
        for (v, _, _) in &self.out {
            if self.out_vals.last() != Some(v) {
                self.out_vals.push(v.clone());
            }
        }
    }

    /// differential's `HistoryReplayer::compute` for one key, over the loaded `bat`, `src` and
    /// `out` (each sorted by value): appends output updates to `outputs` and interesting times
    /// at or beyond `upper_limit` to `new_interesting` (sorted, deduplicated).
    #[allow(clippy::too_many_arguments)]
    fn compute<KI: Copy, L>(
        &mut self,
        key: KI,
        times: &[T],
        logic: &mut L,
        upper_limit: &Antichain<T>,
        held: &[T],
        new_interesting: &mut Vec<T>,
    ) where
        L: FnMut(KI, &[(V1::Item<'_>, R1)], &mut Vec<(V2, R2)>, &mut Vec<(V2, R2)>),
    {
        self.index_values();
        self.bat_h
            .load_iter(indexed(&self.in_vals, &self.bat), None);

        self.meets.clear();
        self.meets.extend(times.iter().cloned());
        for index in (1..self.meets.len()).rev() {
            self.meets[index - 1] = self.meets[index - 1].meet(&self.meets[index]);
        }

        let mut meet = None;
        update_meet(&mut meet, self.meets.first());
        update_meet(&mut meet, self.bat_h.meet());

        self.src_h
            .load_iter(indexed(&self.in_vals, &self.src), meet.as_ref());
        self.out_h
            .load_iter(indexed(&self.out_vals, &self.out), meet.as_ref());

        self.synth_times.clear();
        self.times_current.clear();
        self.output_produced.clear();

        let mut times_slice = times;
        let mut meets_slice = &self.meets[..];

        while let Some(next_time) = [
            self.bat_h.time(),
            times_slice.first(),
            self.src_h.time(),
            self.out_h.time(),
            self.synth_times.last(),
        ]
        .into_iter()
        .flatten()
        .min()
        .cloned()
        {
            self.src_h.step_while_time_is(&next_time);
            self.out_h.step_while_time_is(&next_time);

            let mut interesting = self.bat_h.step_while_time_is(&next_time);
            if interesting {
                if let Some(meet) = meet.as_ref() {
                    self.bat_h.advance_buffer_by(meet);
                }
            }

            while self.synth_times.last() == Some(&next_time) {
                self.times_current
                    .push(self.synth_times.pop().expect("a synthetic time"));
                interesting = true;
            }
            while times_slice.first() == Some(&next_time) {
                self.times_current.push(times_slice[0].clone());
                times_slice = &times_slice[1..];
                meets_slice = &meets_slice[1..];
                interesting = true;
            }

            interesting = interesting
                || self
                    .bat_h
                    .buffer()
                    .iter()
                    .any(|((_, t), _)| t.less_equal(&next_time));
            interesting =
                interesting || self.times_current.iter().any(|t| t.less_equal(&next_time));

            if !upper_limit.less_equal(&next_time) {
                let joins =
                    |time: &T| (!time.less_equal(&next_time)).then(|| time.join(&next_time));
                self.temporary.extend(
                    self.bat_h
                        .buffer()
                        .iter()
                        .filter_map(|((_, t), _)| joins(t)),
                );
                self.temporary
                    .extend(self.times_current.iter().filter_map(joins));
                if interesting {
                    if let Some(meet) = meet.as_ref() {
                        self.src_h.advance_buffer_by(meet);
                        self.out_h.advance_buffer_by(meet);
                    }
                    self.temporary.extend(
                        self.src_h
                            .buffer()
                            .iter()
                            .filter_map(|((_, t), _)| joins(t)),
                    );
                    self.temporary.extend(
                        self.out_h
                            .buffer()
                            .iter()
                            .filter_map(|((_, t), _)| joins(t)),
                    );
                    self.temporary.extend(
                        self.output_produced
                            .iter()
                            .filter_map(|((_, t), _)| joins(t)),
                    );
                }
                sort_dedup(&mut self.temporary);

                let synth_len = self.synth_times.len();
                for time in self.temporary.drain(..) {
                    if upper_limit.less_equal(&time) {
                        debug_assert!(held.iter().any(|t| t.less_equal(&time)));
                        new_interesting.push(time);
                    } else {
                        self.synth_times.push(time);
                    }
                }
                if self.synth_times.len() > synth_len {
                    self.synth_times.sort_by(|x, y| y.cmp(x));
                    self.synth_times.dedup();
                }

                if interesting {
                    debug_assert!(self.input_buffer.is_empty());
                    for ((value, time), diff) in self.src_h.buffer() {
                        if time.less_equal(&next_time) {
                            self.input_buffer.push((*value, diff.clone()));
                        }
                    }
                    for ((value, time), diff) in self.bat_h.buffer() {
                        if time.less_equal(&next_time) {
                            self.input_buffer.push((*value, diff.clone()));
                        }
                    }
                    // Indices sort as their values do.
                    consolidate(&mut self.input_buffer);

                    for ((value, time), diff) in self.out_h.buffer() {
                        if time.less_equal(&next_time) {
                            self.output_buffer
                                .push((self.out_vals[*value].clone(), diff.clone()));
                        }
                    }
                    for ((value, time), diff) in &self.output_produced {
                        if time.less_equal(&next_time) {
                            self.output_buffer.push((value.clone(), diff.clone()));
                        }
                    }
                    consolidate(&mut self.output_buffer);

                    if !self.input_buffer.is_empty() || !self.output_buffer.is_empty() {
                        let mut items: Vec<(V1::Item<'_>, R1)> =
                            recycle(std::mem::take(&mut self.items));
                        items.extend(
                            self.input_buffer
                                .drain(..)
                                .map(|(i, r)| (self.in_vals[i].item(), r)),
                        );
                        logic(
                            key,
                            &items,
                            &mut self.output_buffer,
                            &mut self.update_buffer,
                        );
                        self.items = recycle(items);
                        self.output_buffer.clear();

                        consolidate(&mut self.update_buffer);
                        if !self.update_buffer.is_empty() {
                            assert!(
                                held.iter().any(|time| time.less_equal(&next_time)),
                                "failed to find capability"
                            );
                            for (val, diff) in self.update_buffer.drain(..) {
                                self.output_produced
                                    .push(((val.clone(), next_time.clone()), diff.clone()));
                                self.outputs.push((val, next_time.clone(), diff));
                            }
                            if let Some(meet) = meet.as_ref() {
                                for entry in &mut self.output_produced {
                                    (entry.0).1.join_assign(meet);
                                }
                            }
                            consolidate(&mut self.output_produced);
                        }
                    }
                    self.input_buffer.clear();
                    self.output_buffer.clear();
                }
            } else if interesting {
                new_interesting.push(next_time.clone());
                debug_assert!(held.iter().any(|t| t.less_equal(&next_time)));
            }

            meet = None;
            update_meet(&mut meet, self.bat_h.meet());
            update_meet(&mut meet, self.src_h.meet());
            update_meet(&mut meet, self.out_h.meet());
            for time in &self.synth_times {
                update_meet(&mut meet, Some(time));
            }
            update_meet(&mut meet, meets_slice.first());

            if let Some(meet) = meet.as_ref() {
                for time in &mut self.times_current {
                    *time = time.join(meet);
                }
            }
            sort_dedup(&mut self.times_current);
        }
        sort_dedup(new_interesting);
    }
}

/// The paged [`ReduceTactic`]: reads input, source and output [`PagedSpine`] batches in key
/// order (each chunk at most once per interval), runs `logic` per key exactly as
/// differential's cursor tactic (`reduce_core`) does, and builds output batches of chunks that
/// page through the [`Paging`] it was made with (see the module docs).
///
/// `logic(key, input, output, updates)` has `reduce_core`'s contract: given the key's
/// accumulated input (sorted by value, nonzero diffs) and its current output, push onto
/// `updates` the changes that bring the output in line; `input` may be empty (then `output` is
/// not). [`ReducePaged`] wraps it for the common operators.
pub struct PagedReduce<K, V1, T, R1, V2, R2, L>
where
    V1: PagedData,
{
    logic: L,
    pager: Option<Rc<Pager>>,
    /// Outstanding `(key, time)` interesting moments, sorted, and the next round's.
    pending: Vec<(K, T)>,
    next_pending: Vec<(K, T)>,
    interesting: Vec<T>,
    new_interesting: Vec<T>,
    replayer: Replayer<V1, T, R1, V2, R2>,
}

impl<K, V1, T, R1, V2, R2, L> PagedReduce<K, V1, T, R1, V2, R2, L>
where
    K: PagedData,
    V1: PagedData,
    T: PagedData + Lattice + Timestamp,
    R1: PagedData + Semigroup,
    V2: PagedData,
    R2: PagedData + Semigroup,
    L: FnMut(K::Item<'_>, &[(V1::Item<'_>, R1)], &mut Vec<(V2, R2)>, &mut Vec<(V2, R2)>),
{
    /// A tactic applying `logic` (`reduce_core`'s) whose output chunks page with `paging`.
    pub fn new(paging: &Paging, logic: L) -> Self {
        PagedReduce {
            logic,
            pager: paging.pager().cloned(),
            pending: Vec::new(),
            next_pending: Vec::new(),
            interesting: Vec::new(),
            new_interesting: Vec::new(),
            replayer: Replayer::new(),
        }
    }
}

impl<K, V1, T, R1, V2, R2, L> ReduceTactic<T, Batch<K, V1, T, R1>, Batch<K, V2, T, R2>>
    for PagedReduce<K, V1, T, R1, V2, R2, L>
where
    K: PagedData,
    V1: PagedData,
    T: PagedData + Lattice + Timestamp,
    R1: PagedData + Semigroup,
    V2: PagedData,
    R2: PagedData + Semigroup,
    L: FnMut(K::Item<'_>, &[(V1::Item<'_>, R1)], &mut Vec<(V2, R2)>, &mut Vec<(V2, R2)>),
{
    fn retire(
        &mut self,
        source_batches: Vec<Batch<K, V1, T, R1>>,
        output_batches: Vec<Batch<K, V2, T, R2>>,
        input_batches: Vec<Batch<K, V1, T, R1>>,
        lower: &Antichain<T>,
        upper: &Antichain<T>,
        held: &Antichain<T>,
    ) -> (Option<Span<T, Batch<K, V2, T, R2>>>, Antichain<T>) {
        if !held.elements().iter().any(|time| !upper.less_equal(time)) {
            return (None, held.clone());
        }
        let mut source = MergedBatches::new(source_batches);
        let mut output = MergedBatches::new(output_batches);
        let mut input = MergedBatches::new(input_batches);
        let mut builder = PagedBuilder::<K, V2, T, R2>::default();
        let pager = &self.pager;
        let mut staged = Filler::new(TARGET_BYTES, |records| {
            let mut chunk = PagedChunk::from_records_paging(records, pager.clone());
            builder.push(&mut chunk);
        });
        let pending = std::mem::take(&mut self.pending);
        let mut pending_pos = 0;
        loop {
            let next_pending = pending.get(pending_pos).map(|(k, _)| k);
            let key = match (next_pending, input.head()) {
                (Some(a), Some(b)) => {
                    if *a < b {
                        a.clone()
                    } else {
                        b
                    }
                }
                (Some(a), None) => a.clone(),
                (None, Some(b)) => b,
                (None, None) => break,
            };

            let prior_pos = pending_pos;
            self.interesting.clear();
            while let Some((k, t)) = pending.get(pending_pos) {
                if *k != key {
                    break;
                }
                if !upper.less_equal(t) {
                    self.interesting.push(t.clone());
                }
                pending_pos += 1;
            }
            sort_dedup(&mut self.interesting);

            let replayer = &mut self.replayer;
            replayer.clear();
            let fresh = input.drain_key(&key, &mut replayer.bat);
            if fresh > 0 || !self.interesting.is_empty() {
                source.drain_key(&key, &mut replayer.src);
                output.drain_key(&key, &mut replayer.out);
                self.new_interesting.clear();
                replayer.compute(
                    key.item(),
                    &self.interesting,
                    &mut self.logic,
                    upper,
                    held.elements(),
                    &mut self.new_interesting,
                );
                for (_, t) in &pending[prior_pos..pending_pos] {
                    if upper.less_equal(t) {
                        self.new_interesting.push(t.clone());
                    }
                }
                sort_dedup(&mut self.new_interesting);
                for time in self.new_interesting.drain(..) {
                    self.next_pending.push((key.clone(), time));
                }
                consolidate_updates(&mut replayer.outputs);
                for (v, t, r) in replayer.outputs.drain(..) {
                    staged.push(((key.clone(), v), t, r));
                }
            } else {
                self.next_pending
                    .extend(pending[prior_pos..pending_pos].iter().cloned());
            }
        }
        staged.finish();

        let description = Description::new(
            lower.clone(),
            upper.clone(),
            Antichain::from_elem(T::minimum()),
        );
        let produced = Span::new(description, builder.done().map(Rc::new));

        self.pending = pending;
        self.pending.clear();
        std::mem::swap(&mut self.pending, &mut self.next_pending);

        let mut frontier = Antichain::new();
        for (_, time) in &self.pending {
            frontier.insert_ref(time);
        }
        (Some(produced), frontier)
    }
}

/// Reductions of paged arrangements into paged arrangements, through [`PagedReduce`]: the
/// paged counterparts of differential's `reduce_abelian`/`reduce_core` (on
/// `Arranged`), `count`, `distinct` and `threshold` (arranged by self). Each takes the
/// [`Paging`] of its output trace; with `Paging::disabled()` the output stays resident.
pub trait ReducePaged<'scope, K, V, T, R>: Sized
where
    K: PagedData,
    V: PagedData,
    T: PagedData + Lattice + Timestamp,
    R: PagedData + Semigroup,
{
    /// `reduce_core`: `logic(key, input, output, updates)` pushes the output changes onto
    /// `updates` (see [`PagedReduce`]).
    fn reduce_core_paged<V2, R2, L>(
        self,
        paging: &Paging,
        logic: L,
    ) -> PagedArranged<'scope, K, V2, T, R2>
    where
        V2: PagedData,
        R2: PagedData + Semigroup,
        L: FnMut(K::Item<'_>, &[(V::Item<'_>, R)], &mut Vec<(V2, R2)>, &mut Vec<(V2, R2)>)
            + 'static;

    /// `reduce_abelian`: `logic(key, input, output)` pushes the key's whole output (called
    /// only with non-empty input, which is sorted by value with nonzero diffs).
    fn reduce_paged<V2, R2, L>(
        self,
        paging: &Paging,
        mut logic: L,
    ) -> PagedArranged<'scope, K, V2, T, R2>
    where
        V2: PagedData,
        R2: PagedData + Abelian,
        L: FnMut(K::Item<'_>, &[(V::Item<'_>, R)], &mut Vec<(V2, R2)>) + 'static,
    {
        self.reduce_core_paged(paging, move |key, input, output, change| {
            if !input.is_empty() {
                logic(key, input, change);
            }
            change.extend(output.drain(..).map(|(x, mut d)| {
                d.negate();
                (x, d)
            }));
            consolidate(change);
        })
    }
}

impl<'scope, K, V, T, R> ReducePaged<'scope, K, V, T, R> for PagedArranged<'scope, K, V, T, R>
where
    K: PagedData,
    V: PagedData,
    T: PagedData + Lattice + Timestamp,
    R: PagedData + Semigroup,
{
    fn reduce_core_paged<V2, R2, L>(
        self,
        paging: &Paging,
        logic: L,
    ) -> PagedArranged<'scope, K, V2, T, R2>
    where
        V2: PagedData,
        R2: PagedData + Semigroup,
        L: FnMut(K::Item<'_>, &[(V::Item<'_>, R)], &mut Vec<(V2, R2)>, &mut Vec<(V2, R2)>)
            + 'static,
    {
        reduce_with_tactic(self, "ReducePaged", PagedReduce::new(paging, logic))
    }
}

/// `count`, `distinct` and `threshold` on paged arrangements of keys (`arrange_by_self_paged`),
/// into paged arrangements, through [`PagedReduce`].
pub trait ThresholdPaged<'scope, K, T, R>: ReducePaged<'scope, K, (), T, R>
where
    K: PagedData,
    T: PagedData + Lattice + Timestamp,
    R: PagedData + Semigroup,
{
    /// Each key with its count (the accumulated diff), as differential's `count`.
    fn count_paged(self, paging: &Paging) -> PagedArranged<'scope, K, R, T, isize> {
        self.reduce_paged(paging, |_k, s, t| t.push((s[0].1.clone(), 1)))
    }

    /// Each key whose count is not zero, once, as differential's `distinct`.
    fn distinct_paged(self, paging: &Paging) -> PagedArranged<'scope, K, (), T, isize> {
        self.threshold_paged(paging, |_, _| 1)
    }

    /// Each key with multiplicity `thresh(key, count)`, as differential's `threshold`
    /// (`thresh` is called with the key's owned value).
    fn threshold_paged<R2, F>(
        self,
        paging: &Paging,
        mut thresh: F,
    ) -> PagedArranged<'scope, K, (), T, R2>
    where
        R2: PagedData + Abelian,
        F: FnMut(&K, &R) -> R2 + 'static,
    {
        self.reduce_paged(paging, move |k, s, t| {
            let key = <K::Container as differential_dataflow::trace::implementations::BatchContainer>::into_owned(k);
            t.push(((), thresh(&key, &s[0].1)))
        })
    }
}

impl<'scope, K, T, R> ThresholdPaged<'scope, K, T, R> for PagedArranged<'scope, K, (), T, R>
where
    K: PagedData,
    T: PagedData + Lattice + Timestamp,
    R: PagedData + Semigroup,
{
}

/// The total-order operators on paged arrangements of keys, as differential's `CountTotal`
/// and `ThresholdTotal`: for totally ordered times they output changes at exactly the times of
/// the input's changes (no output arrangement, no interesting-times bookkeeping). Each reads
/// the arrangement's new batches and its trace in key order, each chunk at most once per
/// activation.
pub trait CountTotalPaged<'scope, K, T, R>
where
    K: PagedData + Data,
    T: PagedData + Lattice + Timestamp + TotalOrder,
    R: PagedData + Semigroup + Data,
{
    /// Each key with its count, as `count_total`.
    fn count_total_paged(self) -> VecCollection<'scope, T, (K, R), isize>;

    /// `threshold_semigroup`: `thresh(key, new, old)` gives the output change when a key's
    /// count goes from `old` (`None` if it had none) to `new`.
    fn threshold_semigroup_paged<R2, F>(self, thresh: F) -> VecCollection<'scope, T, K, R2>
    where
        R2: Semigroup + 'static,
        F: FnMut(&K, &R, Option<&R>) -> Option<R2> + 'static;

    /// Each key with multiplicity `thresh(key, count)`, as `threshold_total`.
    fn threshold_total_paged<R2, F>(self, mut thresh: F) -> VecCollection<'scope, T, K, R2>
    where
        Self: Sized,
        R2: Abelian + 'static,
        F: FnMut(&K, &R) -> R2 + 'static,
    {
        self.threshold_semigroup_paged(move |key, new, old| {
            let mut new = if new.is_zero() {
                R2::zero()
            } else {
                thresh(key, new)
            };
            if let Some(old) = old.filter(|old| !old.is_zero()) {
                let mut add = thresh(key, old);
                add.negate();
                new.plus_equals(&add);
            }
            (!new.is_zero()).then_some(new)
        })
    }

    /// Each key with a nonzero count, once, as `distinct_total`.
    fn distinct_total_paged(self) -> VecCollection<'scope, T, K, isize>
    where
        Self: Sized,
    {
        self.threshold_total_paged(|_, _| 1)
    }
}

/// Runs `per_key(key, trace count, batch updates sorted by time)` for every key of every
/// batch reaching `arranged`, in key order, with the key's accumulated diff over the trace
/// before the batch; `per_key` gives its output to the session it is handed.
fn total_operator<'scope, K, T, R, D, R2, F>(
    arranged: PagedArranged<'scope, K, (), T, R>,
    name: &str,
    mut per_key: F,
) -> VecCollection<'scope, T, D, R2>
where
    K: PagedData,
    T: PagedData + Lattice + Timestamp + TotalOrder,
    R: PagedData + Semigroup,
    D: Data,
    R2: Semigroup + 'static,
    F: FnMut(&K, Option<R>, &[((), T, R)], &mut Vec<(D, T, R2)>) + 'static,
{
    let mut trace = arranged.trace.clone();
    arranged
        .stream
        .unary_frontier(Pipeline, name, move |_, _| {
            let mut lower_limit = Antichain::from_elem(T::minimum());
            let mut upper_limit = Antichain::from_elem(T::minimum());
            let mut updates = Vec::new();
            let mut history = Vec::new();
            let mut out = Vec::new();
            move |(input, _frontier), output| {
                let mut batches = Vec::new();
                lower_limit.clone_from(&upper_limit);
                let mut caps = CapabilitySet::new();
                input.for_each(|capability, spans| {
                    for capability in capability.retain_stamp(0).iter() {
                        caps.insert(capability.clone());
                    }
                    for span in spans.drain(..) {
                        upper_limit.clone_from(span.upper());
                        batches.extend(span.inner);
                    }
                });
                if !caps.is_empty() {
                    let mut session = output.session(&caps);
                    let mut fresh = MergedBatches::new(batches);
                    let mut old = MergedBatches::new(
                        trace
                            .batches_through(lower_limit.borrow())
                            .expect("failed to acquire trace batches"),
                    );
                    while let Some(key) = fresh.head() {
                        updates.clear();
                        history.clear();
                        fresh.drain_key(&key, &mut updates);
                        updates.sort_by(|x: &((), T, R), y| x.1.cmp(&y.1));
                        old.drain_key(&key, &mut history);
                        let mut count: Option<R> = None;
                        for (_, _, r) in history.drain(..) {
                            match &mut count {
                                Some(c) => c.plus_equals(&r),
                                None => count = Some(r),
                            }
                        }
                        per_key(&key, count, &updates, &mut out);
                        for record in out.drain(..) {
                            session.give(record);
                        }
                    }
                }
                trace.advance_upper(&mut upper_limit);
                trace.set_logical_compaction(upper_limit.borrow());
                trace.set_physical_compaction(upper_limit.borrow());
            }
        })
        .as_collection()
}

impl<'scope, K, T, R> CountTotalPaged<'scope, K, T, R> for PagedArranged<'scope, K, (), T, R>
where
    K: PagedData + Data,
    T: PagedData + Lattice + Timestamp + TotalOrder,
    R: PagedData + Semigroup + Data,
{
    fn count_total_paged(self) -> VecCollection<'scope, T, (K, R), isize> {
        total_operator(self, "CountTotalPaged", |key, mut count, updates, out| {
            for (_, time, diff) in updates {
                if let Some(count) = count.as_ref().filter(|c| !c.is_zero()) {
                    out.push(((key.clone(), count.clone()), time.clone(), -1));
                }
                match &mut count {
                    Some(c) => c.plus_equals(diff),
                    None => count = Some(diff.clone()),
                }
                if let Some(count) = count.as_ref().filter(|c| !c.is_zero()) {
                    out.push(((key.clone(), count.clone()), time.clone(), 1));
                }
            }
        })
    }

    fn threshold_semigroup_paged<R2, F>(self, mut thresh: F) -> VecCollection<'scope, T, K, R2>
    where
        R2: Semigroup + 'static,
        F: FnMut(&K, &R, Option<&R>) -> Option<R2> + 'static,
    {
        total_operator(
            self,
            "ThresholdTotalPaged",
            move |key, mut count, updates, out| {
                for (_, time, diff) in updates {
                    let difference = match &count {
                        Some(old) => {
                            let mut temp = old.clone();
                            temp.plus_equals(diff);
                            thresh(key, &temp, Some(old))
                        }
                        None => thresh(key, diff, None),
                    };
                    match &mut count {
                        Some(c) => c.plus_equals(diff),
                        None => count = Some(diff.clone()),
                    }
                    if let Some(difference) = difference.filter(|d| !d.is_zero()) {
                        out.push((key.clone(), time.clone(), difference));
                    }
                }
            },
        )
    }
}
