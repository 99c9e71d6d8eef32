//! [`Records`]: a resident chunk body, and the record-level algorithms the chunk operations
//! run on it.
//!
//! # Representation
//! A `Records` is a shared buffer of updates `((key, val), time, diff)` and a start offset:
//! its records are `buffer[start..]`. Clones share the buffer (a refcount bump); a *suffix*
//! is the same buffer with a later start, so the leftovers a merge or an advance pushes back
//! to their inputs cost no copy. Writing ([`Records::make_mut`]) copies only when the buffer
//! is shared or is a suffix view.
//!
//! # Invariants
//! - The records are sorted by `((key, val), time)` and consolidated (no two share a
//!   `((key, val), time)`, no diff is zero), as a [`differential_dataflow::trace::chunk::Chunk`]
//!   requires; the algorithms below take and give such runs.
//! - A suffix view keeps its whole buffer alive, so views are transient: they are pushed back
//!   to an operation's input and consumed by its next call. A view that is about to be kept
//!   (a sealed chunk that stays resident) is compacted first ([`Records::is_view`]).

use std::rc::Rc;

use differential_dataflow::difference::Semigroup;
use differential_dataflow::lattice::Lattice;
use timely::progress::frontier::AntichainRef;

/// One update: `((key, val), time, diff)`.
pub type Update<K, V, T, R> = ((K, V), T, R);

/// A sorted, consolidated run of updates: a shared buffer and a start offset (see the module
/// docs).
pub struct Records<K, V, T, R> {
    buffer: Rc<Vec<Update<K, V, T, R>>>,
    start: usize,
}

impl<K, V, T, R> Clone for Records<K, V, T, R> {
    fn clone(&self) -> Self {
        Records {
            buffer: Rc::clone(&self.buffer),
            start: self.start,
        }
    }
}

impl<K, V, T, R> Default for Records<K, V, T, R> {
    fn default() -> Self {
        Records::from_vec(Vec::new())
    }
}

impl<K, V, T, R> Records<K, V, T, R> {
    /// Records owning `vec` (which must be sorted and consolidated).
    pub fn from_vec(vec: Vec<Update<K, V, T, R>>) -> Self {
        Records {
            buffer: Rc::new(vec),
            start: 0,
        }
    }

    /// The records.
    #[inline(always)]
    pub fn as_slice(&self) -> &[Update<K, V, T, R>] {
        &self.buffer[self.start..]
    }

    /// How many records.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.buffer.len() - self.start
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The records from position `from` on, sharing this buffer (no copy).
    pub fn suffix(&self, from: usize) -> Self {
        debug_assert!(from <= self.len());
        Records {
            buffer: Rc::clone(&self.buffer),
            start: self.start + from,
        }
    }

    /// Whether this is a suffix view that keeps records before it alive.
    pub fn is_view(&self) -> bool {
        self.start > 0
    }
}

impl<K: Clone, V: Clone, T: Clone, R: Clone> Records<K, V, T, R> {
    /// The buffer, for appending: copied first if it is shared or a view.
    pub fn make_mut(&mut self) -> &mut Vec<Update<K, V, T, R>> {
        if self.start > 0 || Rc::get_mut(&mut self.buffer).is_none() {
            *self = Records::from_vec(self.as_slice().to_vec());
        }
        Rc::get_mut(&mut self.buffer).expect("unique after the copy")
    }

    /// A compact copy when this is a view, else itself.
    pub fn compacted(self) -> Self {
        if self.is_view() {
            Records::from_vec(self.as_slice().to_vec())
        } else {
            self
        }
    }
}

/// The first index at or after `from` where `below` turns false (galloping search: O(log d)
/// for a hop of d; `below` must be true then false).
#[inline]
pub fn gallop<U>(slice: &[U], from: usize, below: impl Fn(&U) -> bool) -> usize {
    gallop_index(from, slice.len(), |i| below(&slice[i]))
}

/// [`gallop`] over the indices `from..n` of any sorted sequence.
#[inline]
pub fn gallop_index(from: usize, n: usize, below: impl Fn(usize) -> bool) -> usize {
    if from >= n || !below(from) {
        return from;
    }
    let (mut lo, mut step) = (from, 1usize);
    while lo + step < n && below(lo + step) {
        lo += step;
        step <<= 1;
    }
    // `below` holds at `lo` and fails at `lo + step` (or past the end).
    let (mut a, mut b) = (lo + 1, (lo + step).min(n));
    while a < b {
        let m = a + (b - a) / 2;
        if below(m) {
            a = m + 1;
        } else {
            b = m;
        }
    }
    a
}

/// Output of a record-level operation: fills a buffer of up to `target` records and hands
/// each full one to `emit`.
pub struct Filler<U, E: FnMut(Vec<U>)> {
    buffer: Vec<U>,
    target: usize,
    emit: E,
    /// Buffers emitted so far.
    emitted: usize,
}

impl<U: Clone, E: FnMut(Vec<U>)> Filler<U, E> {
    /// An empty filler of `target`-record buffers.
    pub fn new(target: usize, emit: E) -> Self {
        Filler {
            buffer: Vec::with_capacity(target),
            target,
            emit,
            emitted: 0,
        }
    }

    /// Records that fit before the buffer is full.
    pub fn room(&self) -> usize {
        self.target - self.buffer.len()
    }

    /// Whether `buffers` full buffers are out and nothing is buffered: a point where a
    /// producer can stop without leaving a partial buffer.
    pub fn stopped(&self, buffers: usize) -> bool {
        self.emitted >= buffers && self.buffer.is_empty()
    }

    /// Appends `records`, emitting every buffer that fills.
    pub fn extend(&mut self, mut records: &[U]) {
        while !records.is_empty() {
            let take = records.len().min(self.target - self.buffer.len());
            self.buffer.extend_from_slice(&records[..take]);
            records = &records[take..];
            self.flush_full();
        }
    }

    #[inline]
    fn flush_full(&mut self) {
        if self.buffer.len() >= self.target {
            let full = std::mem::replace(&mut self.buffer, Vec::with_capacity(self.target));
            self.emitted += 1;
            (self.emit)(full);
        }
    }

    /// Emits what is buffered, if anything.
    pub fn finish(mut self) {
        if !self.buffer.is_empty() {
            (self.emit)(std::mem::take(&mut self.buffer));
        }
    }
}

/// Merges the sorted, consolidated runs `a[*pa..]` and `b[*pb..]` into `out` until either is
/// exhausted or `out` has stopped after `stop_after` buffers (see [`Filler::stopped`]),
/// adding the diffs of updates present in both and dropping those that cancel. Advances `pa`
/// and `pb` past what it consumed.
pub fn merge_into<K, V, T, R, E>(
    a: &[Update<K, V, T, R>],
    pa: &mut usize,
    b: &[Update<K, V, T, R>],
    pb: &mut usize,
    out: &mut Filler<Update<K, V, T, R>, E>,
    stop_after: usize,
) where
    K: Ord + Clone,
    V: Ord + Clone,
    T: Ord + Clone,
    R: Semigroup + Clone,
    E: FnMut(Vec<Update<K, V, T, R>>),
{
    #[inline(always)]
    fn key<K, V, T, R>(u: &Update<K, V, T, R>) -> (&K, &V, &T) {
        (&u.0 .0, &u.0 .1, &u.1)
    }
    // Record by record while the inputs interleave; after `GALLOP` wins in a row from one
    // side, gallop over its run below the other's head and copy the run whole.
    const GALLOP: usize = 8;
    let (mut wins_a, mut wins_b) = (0usize, 0usize);
    while *pa < a.len() && *pb < b.len() && !out.stopped(stop_after) {
        if wins_a >= GALLOP {
            copy_run(a, pa, &b[*pb], out);
            wins_a = 0;
            continue;
        }
        if wins_b >= GALLOP {
            copy_run(b, pb, &a[*pa], out);
            wins_b = 0;
            continue;
        }
        // Up to a full buffer without checking for a flush on each push.
        let room = out.room();
        let buffer = &mut out.buffer;
        let limit = buffer.len() + room;
        while buffer.len() < limit && *pa < a.len() && *pb < b.len() {
            let (x, y) = (&a[*pa], &b[*pb]);
            match key(x).cmp(&key(y)) {
                std::cmp::Ordering::Less => {
                    buffer.push(x.clone());
                    *pa += 1;
                    wins_a += 1;
                    wins_b = 0;
                }
                std::cmp::Ordering::Greater => {
                    buffer.push(y.clone());
                    *pb += 1;
                    wins_b += 1;
                    wins_a = 0;
                }
                std::cmp::Ordering::Equal => {
                    let mut diff = x.2.clone();
                    diff.plus_equals(&y.2);
                    if !diff.is_zero() {
                        buffer.push((x.0.clone(), x.1.clone(), diff));
                    }
                    *pa += 1;
                    *pb += 1;
                    (wins_a, wins_b) = (0, 0);
                }
            }
            if wins_a >= GALLOP || wins_b >= GALLOP {
                break;
            }
        }
        out.flush_full();
    }
}

/// Copies the run of `source` from `*at` below `head` (up to a full buffer of `out`: a run
/// below the other input's head has no collisions) and moves `at` past it.
fn copy_run<K, V, T, R, E>(
    source: &[Update<K, V, T, R>],
    at: &mut usize,
    head: &Update<K, V, T, R>,
    out: &mut Filler<Update<K, V, T, R>, E>,
) where
    K: Ord + Clone,
    V: Ord + Clone,
    T: Ord + Clone,
    R: Clone,
    E: FnMut(Vec<Update<K, V, T, R>>),
{
    let below =
        |u: &Update<K, V, T, R>| (&u.0 .0, &u.0 .1, &u.1) < (&head.0 .0, &head.0 .1, &head.1);
    let run = gallop(source, *at, below).min(*at + out.room());
    out.extend(&source[*at..run]);
    *at = run;
}

/// Advances the times of sorted, consolidated `records` by `frontier` and consolidates each
/// `(key, val)` group, appending to `out`. The caller passes whole groups: a group's last
/// update must not continue past the end of `records` (except where it is the input's end).
pub struct Advancer<'f, K, V, T, R> {
    frontier: AntichainRef<'f, T>,
    /// The group being built: its start in `out`, whether its advanced times are still in
    /// order, and whether a diff has cancelled.
    group: Option<(usize, bool, bool)>,
    out: Vec<Update<K, V, T, R>>,
    target: usize,
}

impl<'f, K, V, T, R> Advancer<'f, K, V, T, R>
where
    K: Ord + Clone,
    V: Ord + Clone,
    T: Ord + Clone + Lattice,
    R: Semigroup + Clone,
{
    /// An advancer to `frontier`, emitting buffers of about `target` records.
    pub fn new(frontier: AntichainRef<'f, T>, target: usize) -> Self {
        Advancer {
            frontier,
            group: None,
            out: Vec::with_capacity(target),
            target,
        }
    }

    /// Advances `records` (continuing the open group if the first of them belong to it),
    /// handing each full buffer to `emit`. A buffer never ends inside a group that is
    /// still open, so it can be consolidated in place when it closes.
    pub fn push(
        &mut self,
        records: &[Update<K, V, T, R>],
        emit: &mut impl FnMut(Vec<Update<K, V, T, R>>),
    ) {
        for u in records {
            let mut time = u.1.clone();
            time.advance_by(self.frontier);
            match &mut self.group {
                Some((start, in_order, cancelled)) if self.out[*start].0 == u.0 => {
                    let last = self.out.last_mut().expect("an open group has a record");
                    if last.1 == time {
                        last.2.plus_equals(&u.2);
                        *cancelled |= last.2.is_zero();
                        continue;
                    }
                    *in_order &= last.1 < time;
                }
                _ => {
                    self.close(emit);
                    self.group = Some((self.out.len(), true, false));
                }
            }
            self.out.push((u.0.clone(), time, u.2.clone()));
        }
    }

    /// Closes the open group: sorts and consolidates it if advancing reordered or merged
    /// its times, then emits the buffer if it is full.
    fn close(&mut self, emit: &mut impl FnMut(Vec<Update<K, V, T, R>>)) {
        let Some((start, in_order, cancelled)) = self.group.take() else {
            return;
        };
        if !in_order {
            let group = &mut self.out[start..];
            group.sort_by(|x, y| x.1.cmp(&y.1));
            // Fold equal times into their first occurrence.
            let mut w = start;
            for r in start + 1..self.out.len() {
                if self.out[r].1 == self.out[w].1 {
                    let d = self.out[r].2.clone();
                    self.out[w].2.plus_equals(&d);
                } else {
                    w += 1;
                    self.out.swap(w, r);
                }
            }
            self.out.truncate(w + 1);
        }
        if !in_order || cancelled {
            let mut w = start;
            for r in start..self.out.len() {
                if !self.out[r].2.is_zero() {
                    self.out.swap(w, r);
                    w += 1;
                }
            }
            self.out.truncate(w);
        }
        while self.out.len() >= self.target {
            // The records past a full buffer move to a fresh one (one allocation, no copy of
            // the full part).
            let rest = self.out.len() - self.target;
            let mut next = Vec::with_capacity(self.target.max(rest));
            next.extend(self.out.drain(self.target..));
            emit(std::mem::replace(&mut self.out, next));
        }
    }

    /// Closes the last group and emits what is left.
    pub fn finish(mut self, emit: &mut impl FnMut(Vec<Update<K, V, T, R>>)) {
        self.close(emit);
        if !self.out.is_empty() {
            emit(self.out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use differential_dataflow::consolidation::consolidate_updates;
    use timely::progress::Antichain;

    type U = ((u64, u64), u64, i64);

    fn sorted(mut v: Vec<U>) -> Vec<U> {
        consolidate_updates(&mut v);
        v
    }

    fn rng(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    fn random_run(seed: &mut u64, n: usize) -> Vec<U> {
        sorted(
            (0..n)
                .map(|_| {
                    let (k, v, t) = (rng(seed) % 30, rng(seed) % 3, rng(seed) % 6);
                    let d = if rng(seed).is_multiple_of(3) { -1 } else { 1 };
                    ((k, v), t, d)
                })
                .collect(),
        )
    }

    #[test]
    fn merge_matches_consolidation() {
        let mut seed = 0x9E37_79B9_7F4A_7C15;
        for round in 0..300 {
            let (a, mut b) = (random_run(&mut seed, 80), random_run(&mut seed, 80));
            // Shifted keys overlap in part: long runs from one side take the galloping path.
            for u in &mut b {
                u.0 .0 += (round % 3) * 20;
            }
            let mut got = Vec::new();
            let mut filler = Filler::new(7, |v: Vec<U>| {
                assert!(v.len() <= 7);
                got.extend(v)
            });
            let (mut pa, mut pb) = (0, 0);
            merge_into(&a, &mut pa, &b, &mut pb, &mut filler, usize::MAX);
            filler.finish();
            assert!(pa == a.len() || pb == b.len());
            got.extend_from_slice(&a[pa..]);
            got.extend_from_slice(&b[pb..]);
            assert_eq!(got, sorted([a, b].concat()));
        }
    }

    #[test]
    fn advance_matches_consolidation_across_pieces() {
        let mut seed = 0xD1B5_4A32_D192_ED03;
        for _ in 0..200 {
            let run = random_run(&mut seed, 120);
            let frontier = Antichain::from_elem(rng(&mut seed) % 7);
            let mut got = Vec::new();
            let mut emit = |v: Vec<U>| got.extend(v);
            let mut advancer = Advancer::new(frontier.borrow(), 5);
            // Feed it in arbitrary pieces: groups straddle them.
            let mut at = 0;
            while at < run.len() {
                let end = (at + 1 + (rng(&mut seed) % 9) as usize).min(run.len());
                advancer.push(&run[at..end], &mut emit);
                at = end;
            }
            advancer.finish(&mut emit);
            let f = frontier.borrow()[0];
            let want = sorted(run.iter().map(|&(kv, t, d)| (kv, t.max(f), d)).collect());
            assert_eq!(got, want);
        }
    }

    #[test]
    fn advance_by_a_partially_ordered_frontier() {
        // `Product` times: advancing by a two-element antichain reorders and merges times
        // within a group in ways no total order would; the result must still be sorted (by
        // `Ord`) and consolidated, as upstream's consolidation of the advanced times is.
        use timely::order::Product;
        type P = ((u64, u64), Product<u64, u32>, i64);
        let mut seed = 0xA076_1D64_78BD_642F;
        for _ in 0..200 {
            let mut run: Vec<P> = (0..100)
                .map(|_| {
                    let kv = (rng(&mut seed) % 8, rng(&mut seed) % 2);
                    let t = Product::new(rng(&mut seed) % 4, (rng(&mut seed) % 4) as u32);
                    (
                        kv,
                        t,
                        if rng(&mut seed).is_multiple_of(3) {
                            -1
                        } else {
                            1
                        },
                    )
                })
                .collect();
            consolidate_updates(&mut run);
            let m = rng(&mut seed) % 3;
            let mut frontier = Antichain::new();
            frontier.insert(Product::new(m, 1 + (rng(&mut seed) % 3) as u32));
            frontier.insert(Product::new(m + 1, 0));
            let mut got = Vec::new();
            let mut emit = |v: Vec<P>| got.extend(v);
            let mut advancer = Advancer::new(frontier.borrow(), 6);
            for piece in run.chunks(1 + (rng(&mut seed) % 7) as usize) {
                advancer.push(piece, &mut emit);
            }
            advancer.finish(&mut emit);
            let mut want: Vec<P> = run
                .iter()
                .map(|&(kv, mut t, d)| {
                    t.advance_by(frontier.borrow());
                    (kv, t, d)
                })
                .collect();
            consolidate_updates(&mut want);
            assert_eq!(got, want);
        }
    }

    #[test]
    fn views_share_and_copy_on_write() {
        let r = Records::from_vec(vec![((1u64, 1u64), 0u64, 1i64), ((2, 1), 0, 1)]);
        let mut s = r.suffix(1);
        assert!(s.is_view());
        assert_eq!(s.as_slice(), &[((2, 1), 0, 1)]);
        s.make_mut().push(((3, 1), 0, 1));
        assert!(!s.is_view());
        assert_eq!(r.len(), 2);
        assert_eq!(s.as_slice(), &[((2, 1), 0, 1), ((3, 1), 0, 1)]);
    }
}
