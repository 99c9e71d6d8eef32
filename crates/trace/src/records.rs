//! [`Records`]: a chunk body as rows (what operations build and read), and the record-level
//! algorithms the chunk operations run on it.
//!
//! # Representation
//! A `Records` is a shared buffer of updates `((key, val), time, diff)` and a start offset:
//! its records are `buffer[start..]`. Clones share the buffer (a refcount bump); a *suffix*
//! is the same buffer with a later start, so the leftovers a merge or an advance pushes back
//! to their inputs cost no copy. Writing ([`Records::make_mut`]) copies only when the buffer
//! is shared or is a suffix view.
//!
//! # Sizing
//! Chunks are cut by the bytes of their records encoded as rows (each field in the encoding
//! of [`crate::data`]), not by records: [`update_bytes`] is one update's share (a fixed-width field's width; an 8-byte
//! end offset plus the encoding for a variable-length one), and every producer here
//! ([`Filler`], [`Advancer`], [`fitting_prefix`]) cuts *before* the update that would take a
//! chunk past its byte limit, so a chunk holds at most that many bytes, or is one update that
//! is larger on its own. A sealed chunk's columnar body (`chunk::Layout`: keys once, constant
//! columns once) is never larger than that measure, so it fits the same slot class or a
//! smaller one. For fixed-width updates the bytes are `records × width`, so the
//! cut is a record count derived once from the width ([`records_per`]) and nothing is
//! measured per update.
//!
//! # Invariants
//! - The records are sorted by `((key, val), time)` and consolidated (no two share a
//!   `((key, val), time)`, no diff is zero), as a [`differential_dataflow::trace::chunk::Chunk`]
//!   requires; the algorithms below take and give such runs.
//! - A suffix view keeps its whole buffer alive, so views are transient: they are pushed back
//!   to an operation's input and consumed by its next call. A view that is about to be kept
//!   (a sealed chunk that stays resident) is compacted first ([`Records::is_view`]).

use std::cell::Cell;
use std::rc::Rc;

use differential_dataflow::difference::Semigroup;
use differential_dataflow::lattice::Lattice;
use timely::progress::frontier::AntichainRef;

use crate::data::{column_len, PagedData};

/// One update: `((key, val), time, diff)`.
pub type Update<K, V, T, R> = ((K, V), T, R);

/// A sorted, consolidated run of updates: a shared buffer and a start offset (see the module
/// docs).
pub struct Records<K, V, T, R> {
    buffer: Rc<Vec<Update<K, V, T, R>>>,
    start: usize,
    /// The encoded bytes of the records once measured (variable-length updates only; see
    /// [`Records::bytes`]), `UNKNOWN` before.
    bytes: Cell<usize>,
}

/// [`Records::bytes`] not measured yet.
const UNKNOWN: usize = usize::MAX;

impl<K, V, T, R> Clone for Records<K, V, T, R> {
    fn clone(&self) -> Self {
        Records {
            buffer: Rc::clone(&self.buffer),
            start: self.start,
            bytes: self.bytes.clone(),
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
            bytes: Cell::new(UNKNOWN),
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
            bytes: Cell::new(UNKNOWN),
        }
    }

    /// Whether this is a suffix view that keeps records before it alive.
    pub fn is_view(&self) -> bool {
        self.start > 0
    }
}

impl<K: Clone, V: Clone, T: Clone, R: Clone> Records<K, V, T, R> {
    /// The buffer, for appending: copied first if it is shared or a view. Forgets the measured
    /// bytes (a caller that knows them after its change says so with [`Records::note_bytes`]).
    pub fn make_mut(&mut self) -> &mut Vec<Update<K, V, T, R>> {
        self.bytes.set(UNKNOWN);
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

impl<K: PagedData, V: PagedData, T: PagedData, R: PagedData> Records<K, V, T, R> {
    /// The encoded bytes of the records (an upper bound of their columnar body): arithmetic for
    /// fixed-width updates; measured once and remembered for variable-length ones.
    #[inline]
    pub fn bytes(&self) -> usize {
        if let Some(w) = fixed_update_bytes::<K, V, T, R>() {
            return self.len() * w;
        }
        if self.bytes.get() == UNKNOWN {
            self.bytes.set(run_bytes(self.as_slice()));
        }
        self.bytes.get()
    }

    /// Records that the records take `bytes` encoded (what [`Records::bytes`] would measure;
    /// the caller derived it from the parts it appended, so nothing is walked).
    pub fn note_bytes(&self, bytes: usize) {
        self.bytes.set(bytes);
    }
}

/// The encoded body bytes a chunk is cut at: 256 KiB, exactly 8192 updates of
/// `(u64, u64, u64, i64)` (32 bytes each), and one pool slot class.
pub const TARGET_BYTES: usize = 256 << 10;

/// Bytes of a variable-length field's end offset (see [`crate::data`]).
const OFFSET: usize = 8;

/// The encoded bytes of one update (see the module docs).
#[inline(always)]
pub fn update_bytes<K, V, T, R>(u: &Update<K, V, T, R>) -> usize
where
    K: PagedData,
    V: PagedData,
    T: PagedData,
    R: PagedData,
{
    if let Some(w) = fixed_update_bytes::<K, V, T, R>() {
        return w;
    }
    column_len(std::iter::once(&u.0 .0))
        + column_len(std::iter::once(&u.0 .1))
        + column_len(std::iter::once(&u.1))
        + column_len(std::iter::once(&u.2))
}

/// The bytes of every update when all four types are fixed-width, else `None`.
#[inline(always)]
pub const fn fixed_update_bytes<K, V, T, R>() -> Option<usize>
where
    K: PagedData,
    V: PagedData,
    T: PagedData,
    R: PagedData,
{
    match (K::WIDTH, V::WIDTH, T::WIDTH, R::WIDTH) {
        (Some(k), Some(v), Some(t), Some(r)) => Some(k + v + t + r),
        _ => None,
    }
}

/// The fewest bytes an update can take (a variable-length field takes at least its end
/// offset), and at least one.
#[inline(always)]
pub const fn min_update_bytes<K, V, T, R>() -> usize
where
    K: PagedData,
    V: PagedData,
    T: PagedData,
    R: PagedData,
{
    const fn least(width: Option<usize>) -> usize {
        match width {
            Some(w) => w,
            None => OFFSET,
        }
    }
    let bytes = least(K::WIDTH) + least(V::WIDTH) + least(T::WIDTH) + least(R::WIDTH);
    if bytes == 0 {
        1
    } else {
        bytes
    }
}

/// How many updates of `width` bytes fill `limit` bytes (at least one).
#[inline(always)]
pub const fn records_per(limit: usize, width: usize) -> usize {
    match limit.checked_div(width) {
        Some(0) => 1,
        Some(n) => n,
        None if limit == 0 => 1,
        None => limit,
    }
}

/// The encoded bytes of `records`.
pub fn run_bytes<K, V, T, R>(records: &[Update<K, V, T, R>]) -> usize
where
    K: PagedData,
    V: PagedData,
    T: PagedData,
    R: PagedData,
{
    match fixed_update_bytes::<K, V, T, R>() {
        Some(w) => records.len() * w,
        None => records.iter().map(update_bytes).sum(),
    }
}

/// How many leading `records` fit in `limit` bytes, at least one (when there is one), and
/// their bytes: where a chunk of `limit` bytes is cut.
pub fn fitting_prefix<K, V, T, R>(records: &[Update<K, V, T, R>], limit: usize) -> (usize, usize)
where
    K: PagedData,
    V: PagedData,
    T: PagedData,
    R: PagedData,
{
    if let Some(w) = fixed_update_bytes::<K, V, T, R>() {
        let n = records.len().min(records_per(limit, w));
        return (n, n * w);
    }
    let mut bytes = 0;
    for (i, u) in records.iter().enumerate() {
        let b = update_bytes(u);
        if i > 0 && bytes + b > limit {
            return (i, bytes);
        }
        bytes += b;
    }
    (records.len(), bytes)
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

/// Output of a record-level operation: fills buffers of up to `limit` encoded bytes (see the
/// module docs) and hands each full one to `emit`.
pub struct Filler<K, V, T, R, E: FnMut(Vec<Update<K, V, T, R>>)> {
    buffer: Vec<Update<K, V, T, R>>,
    /// Encoded bytes of `buffer` (counted for variable-length updates only).
    bytes: usize,
    limit: usize,
    /// For fixed-width updates, how many fill a buffer (derived once from the width).
    per_buffer: Option<usize>,
    /// An update did not fit: the buffer is full and goes out at the next flush.
    blocked: bool,
    emit: E,
    /// Buffers emitted so far.
    emitted: usize,
}

impl<K, V, T, R, E> Filler<K, V, T, R, E>
where
    K: PagedData,
    V: PagedData,
    T: PagedData,
    R: PagedData,
    E: FnMut(Vec<Update<K, V, T, R>>),
{
    /// An empty filler of buffers of at most `limit` encoded bytes (or one larger update).
    pub fn new(limit: usize, emit: E) -> Self {
        let per_buffer = fixed_update_bytes::<K, V, T, R>().map(|w| records_per(limit, w));
        Filler {
            buffer: Vec::with_capacity(per_buffer.unwrap_or(0)),
            bytes: 0,
            limit,
            per_buffer,
            blocked: false,
            emit,
            emitted: 0,
        }
    }

    /// Updates that surely fit before the buffer is full: exact for fixed-width updates;
    /// unbounded for variable-length ones, which [`Filler::fits`] measures one by one.
    #[inline(always)]
    pub fn room(&self) -> usize {
        match self.per_buffer {
            Some(n) => n - self.buffer.len(),
            None => usize::MAX - self.buffer.len(),
        }
    }

    /// Whether `u` fits in the buffer (always, for fixed-width updates within
    /// [`Filler::room`]); if not, the buffer is full and the next flush emits it.
    #[inline(always)]
    pub fn fits(&mut self, u: &Update<K, V, T, R>) -> bool {
        if fixed_update_bytes::<K, V, T, R>().is_some()
            || self.buffer.is_empty()
            || self.bytes + update_bytes(u) <= self.limit
        {
            return true;
        }
        self.blocked = true;
        false
    }

    /// Appends `u`, which [`Filler::fits`].
    #[inline(always)]
    fn push_fitting(&mut self, u: Update<K, V, T, R>) {
        if fixed_update_bytes::<K, V, T, R>().is_none() {
            self.bytes += update_bytes(&u);
        }
        self.buffer.push(u);
    }

    /// Appends `u`, emitting the buffer first if `u` does not fit and after if it is full.
    pub fn push(&mut self, u: Update<K, V, T, R>) {
        if !self.fits(&u) {
            self.flush_full();
        }
        self.push_fitting(u);
        self.flush_full();
    }

    /// Whether `buffers` full buffers are out and nothing is buffered: a point where a
    /// producer can stop without leaving a partial buffer.
    pub fn stopped(&self, buffers: usize) -> bool {
        self.emitted >= buffers && self.buffer.is_empty()
    }

    /// Appends the leading `records` that fit in the buffer, emitting it if it fills; returns
    /// how many it took.
    pub fn take_fitting(&mut self, records: &[Update<K, V, T, R>]) -> usize {
        let n = match self.per_buffer {
            Some(_) => records.len().min(self.room()),
            None => {
                let (mut n, mut bytes) = (0, self.bytes);
                for u in records {
                    let b = update_bytes(u);
                    if (n > 0 || !self.buffer.is_empty()) && bytes + b > self.limit {
                        self.blocked = true;
                        break;
                    }
                    bytes += b;
                    n += 1;
                }
                self.bytes = bytes;
                n
            }
        };
        self.buffer.extend_from_slice(&records[..n]);
        self.flush_full();
        n
    }

    /// Emits the buffer if it is full: no update of the smallest size fits, or one did not.
    #[inline]
    fn flush_full(&mut self) {
        let full = match self.per_buffer {
            Some(n) => self.buffer.len() >= n,
            None => self.blocked || self.bytes + min_update_bytes::<K, V, T, R>() > self.limit,
        };
        if full && !self.buffer.is_empty() {
            let capacity = self.per_buffer.unwrap_or(self.buffer.len());
            let full = std::mem::replace(&mut self.buffer, Vec::with_capacity(capacity));
            (self.bytes, self.blocked) = (0, false);
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
    out: &mut Filler<K, V, T, R, E>,
    stop_after: usize,
) where
    K: PagedData,
    V: PagedData,
    T: PagedData,
    R: PagedData + Semigroup,
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
        // Up to a full buffer without checking for a flush on each push: fixed-width updates
        // count against `room`; variable-length ones are measured as they go (`fits`).
        let limit = out.buffer.len().saturating_add(out.room());
        while out.buffer.len() < limit && *pa < a.len() && *pb < b.len() {
            let (x, y) = (&a[*pa], &b[*pb]);
            match key(x).cmp(&key(y)) {
                std::cmp::Ordering::Less => {
                    if !out.fits(x) {
                        break;
                    }
                    out.push_fitting(x.clone());
                    *pa += 1;
                    wins_a += 1;
                    wins_b = 0;
                }
                std::cmp::Ordering::Greater => {
                    if !out.fits(y) {
                        break;
                    }
                    out.push_fitting(y.clone());
                    *pb += 1;
                    wins_b += 1;
                    wins_a = 0;
                }
                std::cmp::Ordering::Equal => {
                    let mut diff = x.2.clone();
                    diff.plus_equals(&y.2);
                    if !diff.is_zero() {
                        let sum = (x.0.clone(), x.1.clone(), diff);
                        if !out.fits(&sum) {
                            break;
                        }
                        out.push_fitting(sum);
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

/// Copies the run of `source` from `*at` below `head` (as much as fits in the buffer of `out`:
/// a run below the other input's head has no collisions) and moves `at` past what it copied.
fn copy_run<K, V, T, R, E>(
    source: &[Update<K, V, T, R>],
    at: &mut usize,
    head: &Update<K, V, T, R>,
    out: &mut Filler<K, V, T, R, E>,
) where
    K: PagedData,
    V: PagedData,
    T: PagedData,
    R: PagedData,
    E: FnMut(Vec<Update<K, V, T, R>>),
{
    let below =
        |u: &Update<K, V, T, R>| (&u.0 .0, &u.0 .1, &u.1) < (&head.0 .0, &head.0 .1, &head.1);
    let run = gallop(source, *at, below).min(at.saturating_add(out.room()));
    *at += out.take_fitting(&source[*at..run]);
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
    /// Encoded bytes of the closed groups in `out` (variable-length updates only).
    closed_bytes: usize,
    limit: usize,
    /// For fixed-width updates, how many fill a buffer (derived once from the width).
    per_buffer: Option<usize>,
}

impl<'f, K, V, T, R> Advancer<'f, K, V, T, R>
where
    K: PagedData,
    V: PagedData,
    T: PagedData + Lattice,
    R: PagedData + Semigroup,
{
    /// An advancer to `frontier`, emitting buffers of at most `limit` encoded bytes (or one
    /// larger update).
    pub fn new(frontier: AntichainRef<'f, T>, limit: usize) -> Self {
        let per_buffer = fixed_update_bytes::<K, V, T, R>().map(|w| records_per(limit, w));
        Advancer {
            frontier,
            group: None,
            out: Vec::with_capacity(per_buffer.unwrap_or(0)),
            closed_bytes: 0,
            limit,
            per_buffer,
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
        if let Some(per_buffer) = self.per_buffer {
            while self.out.len() >= per_buffer {
                // The records past a full buffer move to a fresh one (one allocation, no copy
                // of the full part).
                let rest = self.out.len() - per_buffer;
                let mut next = Vec::with_capacity(per_buffer.max(rest));
                next.extend(self.out.drain(per_buffer..));
                emit(std::mem::replace(&mut self.out, next));
            }
            return;
        }
        self.closed_bytes += run_bytes(&self.out[start.min(self.out.len())..]);
        while !self.out.is_empty()
            && self.closed_bytes + min_update_bytes::<K, V, T, R>() > self.limit
        {
            // Full: cut before the update that would overflow the buffer.
            let (cut, bytes) = fitting_prefix(&self.out, self.limit);
            let mut next = Vec::with_capacity(cut.max(self.out.len() - cut));
            next.extend(self.out.drain(cut..));
            self.closed_bytes -= bytes;
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
            let mut filler = Filler::new(7 * 32, |v: Vec<U>| {
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
            let mut advancer = Advancer::new(frontier.borrow(), 5 * 32);
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
            let mut advancer = Advancer::new(frontier.borrow(), 6 * 36);
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
    fn variable_length_updates_are_cut_by_bytes() {
        // Values of 0 to 299 bytes: every buffer holds at most `limit` encoded bytes unless it
        // is one larger update, and is full (its successor's first update would not fit).
        type S = ((u64, Vec<u8>), u64, i64);
        let mut seed = 0x2545_F491_4F6C_DD1D;
        let run: Vec<S> = (0..2000u64)
            .map(|k| ((k, vec![7u8; (rng(&mut seed) % 300) as usize]), 0, 1))
            .collect();
        for limit in [1, 100, 1000, 4096] {
            let mut buffers = Vec::new();
            let mut filler = Filler::new(limit, |v: Vec<S>| buffers.push(v));
            for u in &run {
                filler.push(u.clone());
            }
            filler.finish();
            assert_eq!(buffers.concat(), run);
            for pair in buffers.windows(2) {
                let bytes = run_bytes(&pair[0]);
                assert!(bytes <= limit || pair[0].len() == 1, "{bytes} > {limit}");
                assert!(bytes + update_bytes(&pair[1][0]) > limit);
            }
            let mut advanced = Vec::new();
            let mut emit = |v: Vec<S>| advanced.push(v);
            let frontier = Antichain::from_elem(0);
            let mut advancer = Advancer::new(frontier.borrow(), limit);
            advancer.push(&run, &mut emit);
            advancer.finish(&mut emit);
            assert_eq!(advanced.concat(), run);
            assert!(advanced
                .iter()
                .all(|b| run_bytes(b) <= limit || b.len() == 1));
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
