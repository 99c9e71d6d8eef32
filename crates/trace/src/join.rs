//! A vectored join tactic: [`VectoredJoin`], and [`JoinVectored::join_core_vectored`].
//!
//! differential's `join_with_tactic` hands a tactic, for each freshly arrived batch, the
//! batches of the other side's trace, and pulls the iterator the tactic returns for output
//! containers until its fuel (about a million records per input per activation) is spent,
//! resuming the same iterator on the next activation. The cursor tactic (`join_core`) walks a
//! cursor over the fresh batch and seeks each of its keys in a cursor over the other side,
//! chunk by chunk. [`VectoredJoin`] instead reads the fresh side in key order, a **block** of
//! up to [`VectoredJoin::group`] keys at a time, and looks each block up in the other side
//! with [vectored lookups](crate::vectored): every chunk of the other side that the block
//! touches is read once per block, with coalesced reads, and only its matching records are
//! decoded.
//!
//! # Bounded work and memory under skew
//! Every buffer is bounded by a record count and, where records vary in size, by bytes,
//! whatever the keys' multiplicities:
//! - a block holds at most [`VectoredJoin::fresh_records`] fresh updates and at most
//!   [`VectoredJoin::fresh_bytes`] of their encoded bytes (unless its one update is larger): a
//!   hot fresh key with more is split over several blocks (each looks the key up again: a
//!   block nested loop);
//! - the other side's chunks a block touches are read in **windows** of at most
//!   [`VectoredJoin::window_records`] records and [`VectoredJoin::window_bytes`] encoded bytes
//!   (by the chunks' lengths and encoded body bytes, so a window never holds more updates or
//!   bytes than that, even for one hot key spanning many chunks, unless its one chunk is
//!   larger), in key order; each window is one vectored lookup;
//! - the cross product of a block and a window is produced incrementally: each `next()`
//!   pushes at most [`VectoredJoin::step_records`] output records (plus what one call of the
//!   join logic returns), then yields, and the next call resumes at the same pair of updates.
//!   So the driver's fuel applies within a hot key's cross product as well, and output per
//!   activation is the driver's fuel plus one step.
//!
//! By bilinearity (`(a + b) ⋈ c = a ⋈ c + b ⋈ c`) splitting a key over blocks or windows
//! changes no output collection; it only forgoes consolidation of a split key's updates
//! across blocks or windows (the cancelling outputs are then consolidated downstream).
//!
//! Memory outside the pool, per prepared unit being drained (the driver drains at most one
//! per input at a time; the queued ones hold only their batches' `Rc`s): one decoded chunk per
//! fresh batch; the block's keys (≤ `group`) and its fresh updates (≤ `fresh_records` and
//! ≤ `fresh_bytes` encoded); the window plan (three words per chunk the block touches) and
//! the window's updates (≤ `window_records` and ≤ `window_bytes` of encoded chunks); and the
//! output not yet pulled (≤ `step_records` plus the builder's two containers). An update in a
//! buffer is `((usize, V), T, R)`: 32 bytes for `u64`s, so the defaults (16 Ki keys, 256 Ki
//! fresh and 512 Ki window updates, 16 Ki output records per step) bound it at about 25 MiB
//! plus a chunk per fresh batch; for wide records the byte bounds (8 MiB fresh, 16 MiB of
//! window chunks by default) bind first, so with 4 KiB values a window holds about 4 Ki
//! updates, not 512 Ki (about 2 GiB). A decoded variable-length field takes its encoded bytes
//! plus its resident header (a `String`'s 24 bytes against an 8-byte offset), so the byte
//! bounds hold the buffers to a small multiple of them plus the record counts' headers.
//! [`VectoredJoin::join_stats`] reports the largest of each buffer and of each step, as
//! measured. (Output the driver has shipped, up to its fuel per activation, is downstream's,
//! as with any tactic.)
//!
//! Nothing is stored in the chunks (no stable bytes, which the cursor path of variable-length
//! keys and values writes and keeps under a cap; see [`crate::chunk`]): memory outside the
//! pool is bounded by the counts above.
//!
//! # Output
//! For each key, every pair of updates `(v0, t0, r0)`, `(v1, t1, r1)` yields
//! `logic(key, v0, v1)` at `t0 ∨ t1` with diff `r0 · r1`, as `join_core` does; the
//! accumulated (non-fresh) side's times are first advanced by the driver's `meet` and
//! consolidated, which changes no output (every output time is at or beyond `meet`). The
//! output collection equals `join_core`'s (tests check it with proptest, and under skew in
//! `tests/skew.rs`).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use differential_dataflow::consolidation::{consolidate_updates, ConsolidatingContainerBuilder};
use differential_dataflow::difference::{Multiply, Semigroup};
use differential_dataflow::lattice::Lattice;
use differential_dataflow::operators::arrange::{Arranged, TraceAgent};
use differential_dataflow::operators::join::{join_with_tactic, Fresh, JoinTactic};
use differential_dataflow::trace::chunk::Chunk;
use differential_dataflow::{AsCollection, Data, VecCollection};
use timely::container::{ContainerBuilder, PushInto};
use timely::progress::Timestamp;

use crate::batch::PagedBatch;
use crate::batch_reader::{Batch, MergedBatches};
use crate::chunk::chunk_bytes;
use crate::data::PagedData;
use crate::records::update_bytes;
use crate::vectored::{for_each_update, LookupStats};
use crate::PagedSpine;

/// Keys per block, by default.
pub const JOIN_GROUP_KEYS: usize = 16 * 1024;
/// Fresh updates per block, by default.
pub const JOIN_FRESH_RECORDS: usize = 256 * 1024;
/// Encoded bytes of fresh updates per block, by default.
pub const JOIN_FRESH_BYTES: usize = 8 << 20;
/// Records (by chunk length) of the other side per window, by default.
pub const JOIN_WINDOW_RECORDS: usize = 512 * 1024;
/// Encoded bytes (by the chunks' body bytes) of the other side per window, by default.
pub const JOIN_WINDOW_BYTES: usize = 16 << 20;
/// Output records pushed per `next()`, by default.
pub const JOIN_STEP_RECORDS: usize = 16 * 1024;

type Output<D, T, R> = ConsolidatingContainerBuilder<Vec<(D, T, R)>>;

/// What a [`VectoredJoin`] did, and the largest of its bounded buffers (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JoinStats {
    /// Blocks of fresh keys joined.
    pub blocks: u64,
    /// Windows of the other side looked up.
    pub windows: u64,
    /// `next()` calls that produced output records (steps).
    pub steps: u64,
    /// Output records pushed (before consolidation).
    pub records_out: u64,
    /// The most output records pushed in one `next()`.
    pub max_step_records: u64,
    /// The most records in one container handed to the driver.
    pub max_container_records: u64,
    /// The most fresh updates in one block.
    pub max_block_updates: u64,
    /// The most other-side updates in one window.
    pub max_window_updates: u64,
    /// The most encoded bytes of fresh updates in one block.
    pub max_block_bytes: u64,
    /// The most encoded bytes of the other side's chunks in one window.
    pub max_window_bytes: u64,
}

/// The vectored [`JoinTactic`] over two paged traces with key `K` (see the module docs).
/// `logic(key, v0, v1)` returns the output records of a matching pair, as `join_core`'s.
pub struct VectoredJoin<L> {
    logic: Rc<RefCell<L>>,
    limits: Limits,
    stats: Rc<RefCell<LookupStats>>,
    join_stats: Rc<RefCell<JoinStats>>,
}

/// The bounds of one prepared unit (see the module docs).
#[derive(Clone, Copy, Debug)]
struct Limits {
    group: usize,
    fresh: usize,
    fresh_bytes: usize,
    window: usize,
    window_bytes: usize,
    step: usize,
}

impl<L> VectoredJoin<L> {
    /// A tactic applying `logic` to each matching `(key, v0, v1)`.
    pub fn new(logic: L) -> Self {
        VectoredJoin {
            logic: Rc::new(RefCell::new(logic)),
            limits: Limits {
                group: JOIN_GROUP_KEYS,
                fresh: JOIN_FRESH_RECORDS,
                fresh_bytes: JOIN_FRESH_BYTES,
                window: JOIN_WINDOW_RECORDS,
                window_bytes: JOIN_WINDOW_BYTES,
                step: JOIN_STEP_RECORDS,
            },
            stats: Rc::default(),
            join_stats: Rc::default(),
        }
    }

    /// Keys per block (at least 1; 16 Ki by default): larger blocks read each touched chunk of
    /// the other side fewer times; smaller ones hold fewer records at once.
    pub fn group(mut self, keys: usize) -> Self {
        self.limits.group = keys.max(1);
        self
    }

    /// Fresh updates per block (at least 1); a key with more is split over blocks.
    pub fn fresh_records(mut self, updates: usize) -> Self {
        self.limits.fresh = updates.max(1);
        self
    }

    /// Encoded bytes of fresh updates per block (at least 1); a key with more is split over
    /// blocks. A block always takes at least one update, so an update larger than this is a
    /// block by itself.
    pub fn fresh_bytes(mut self, bytes: usize) -> Self {
        self.limits.fresh_bytes = bytes.max(1);
        self
    }

    /// Records of the other side per window, counted by the touched chunks' lengths (at
    /// least 1; a window always takes at least one chunk, so chunks bound it from below).
    pub fn window_records(mut self, records: usize) -> Self {
        self.limits.window = records.max(1);
        self
    }

    /// Encoded bytes of the other side per window, counted by the touched chunks' body bytes
    /// (at least 1; a window always takes at least one chunk, so a chunk larger than this is
    /// a window by itself).
    pub fn window_bytes(mut self, bytes: usize) -> Self {
        self.limits.window_bytes = bytes.max(1);
        self
    }

    /// Output records pushed per `next()` of a prepared unit (at least 1) before it yields.
    pub fn step_records(mut self, records: usize) -> Self {
        self.limits.step = records.max(1);
        self
    }

    /// The lookups this tactic has done so far (shared: read it after the dataflow ran).
    pub fn stats(&self) -> Rc<RefCell<LookupStats>> {
        Rc::clone(&self.stats)
    }

    /// Blocks, windows, steps and the largest buffers so far (shared, like [`Self::stats`]).
    pub fn join_stats(&self) -> Rc<RefCell<JoinStats>> {
        Rc::clone(&self.join_stats)
    }
}

impl<K, V0, V1, T, R0, R1, L, I>
    JoinTactic<T, Batch<K, V0, T, R0>, Batch<K, V1, T, R1>, Vec<(I::Item, T, R0::Output)>>
    for VectoredJoin<L>
where
    K: PagedData,
    V0: PagedData,
    V1: PagedData,
    T: PagedData + Lattice + Timestamp,
    R0: PagedData + Semigroup + Multiply<R1, Output: Semigroup + 'static>,
    R1: PagedData + Semigroup,
    L: for<'a> FnMut(K::Item<'a>, V0::Item<'a>, V1::Item<'a>) -> I + 'static,
    I: IntoIterator<Item: Data>,
{
    fn prep(
        &mut self,
        input0: Vec<Batch<K, V0, T, R0>>,
        input1: Vec<Batch<K, V1, T, R1>>,
        fresh: Fresh,
        meet: T,
    ) -> Box<dyn Iterator<Item = Vec<(I::Item, T, R0::Output)>>> {
        let driver = match fresh {
            Fresh::Input0 => Driver::Input0(MergedBatches::new(input0), input1),
            Fresh::Input1 => Driver::Input1(input0, MergedBatches::new(input1)),
        };
        Box::new(VectoredIter {
            driver,
            meet,
            limits: self.limits,
            logic: Rc::clone(&self.logic),
            stats: Rc::clone(&self.stats),
            join_stats: Rc::clone(&self.join_stats),
            keys: Vec::new(),
            side0: Vec::new(),
            side1: Vec::new(),
            windows: VecDeque::new(),
            at: Position::default(),
            joining: false,
            builder: Output::default(),
            ready: VecDeque::new(),
            done: false,
        })
    }
}

/// Which side drives: the fresh side's stream, and the other side's batches.
enum Driver<K, V0, V1, T, R0, R1>
where
    K: PagedData,
    V0: PagedData,
    V1: PagedData,
    T: PagedData + Lattice + Timestamp,
    R0: PagedData + Semigroup,
    R1: PagedData + Semigroup,
{
    Input0(MergedBatches<K, V0, T, R0>, Vec<Batch<K, V1, T, R1>>),
    Input1(Vec<Batch<K, V0, T, R0>>, MergedBatches<K, V1, T, R1>),
}

/// One window: chunks of the other side as `(batch index, chunk index)`, by batch and chunk.
type Window = Vec<(usize, usize)>;

/// Where the cross product of the current block and window stands: the runs of the current
/// key in `side0` (`a..a_end`) and `side1` (`b..b_end`), and the next pair `(ia, ib)` in them.
#[derive(Clone, Copy, Debug, Default)]
struct Position {
    a: usize,
    b: usize,
    a_end: usize,
    b_end: usize,
    ia: usize,
    ib: usize,
    /// Whether the runs are set (the current key matches on both sides).
    in_key: bool,
}

/// The deferred work of one `prep`: an iterator of output containers.
struct VectoredIter<K, V0, V1, T, R0, R1, L, D>
where
    K: PagedData,
    V0: PagedData,
    V1: PagedData,
    T: PagedData + Lattice + Timestamp,
    R0: PagedData + Semigroup + Multiply<R1>,
    R1: PagedData + Semigroup,
{
    driver: Driver<K, V0, V1, T, R0, R1>,
    meet: T,
    limits: Limits,
    logic: Rc<RefCell<L>>,
    stats: Rc<RefCell<LookupStats>>,
    join_stats: Rc<RefCell<JoinStats>>,
    /// The current block's keys, and each side's updates `((key index, val), time, diff)`:
    /// the fresh side's for the block, the other side's for the current window.
    keys: Vec<K>,
    side0: Vec<((usize, V0), T, R0)>,
    side1: Vec<((usize, V1), T, R1)>,
    /// The windows of the current block not yet looked up.
    windows: VecDeque<(Window, usize)>,
    at: Position,
    /// Whether a window is loaded and its cross product not finished.
    joining: bool,
    builder: Output<D, T, R0::Output>,
    ready: VecDeque<Vec<(D, T, R0::Output)>>,
    done: bool,
}

impl<K, V0, V1, T, R0, R1, L, I> Iterator for VectoredIter<K, V0, V1, T, R0, R1, L, I::Item>
where
    K: PagedData,
    V0: PagedData,
    V1: PagedData,
    T: PagedData + Lattice + Timestamp,
    R0: PagedData + Semigroup + Multiply<R1, Output: Semigroup + 'static>,
    R1: PagedData + Semigroup,
    L: for<'a> FnMut(K::Item<'a>, V0::Item<'a>, V1::Item<'a>) -> I,
    I: IntoIterator<Item: Data>,
{
    type Item = Vec<(I::Item, T, R0::Output)>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut pushed = 0;
        while self.ready.is_empty() && !self.done {
            if self.joining {
                // Resumes the cross product; at most one step of output per call.
                let room = self.limits.step.saturating_sub(pushed);
                if room == 0 {
                    // A step pushed records that all consolidated away: yield nothing yet,
                    // but bound this call's work. An empty container costs the driver no
                    // fuel and carries no records.
                    break;
                }
                let (n, finished) = self.join_some(room);
                pushed += n;
                self.joining = !finished;
                while let Some(container) = self.builder.extract() {
                    self.ready.push_back(std::mem::take(container));
                }
            } else if let Some(window) = self.windows.pop_front() {
                self.load_window(window);
                self.joining = true;
            } else if !self.next_block() {
                self.done = true;
                while let Some(container) = self.builder.finish() {
                    self.ready.push_back(std::mem::take(container));
                }
            }
        }
        let out = self.ready.pop_front();
        let mut stats = self.join_stats.borrow_mut();
        if pushed > 0 {
            stats.steps += 1;
            stats.records_out += pushed as u64;
            stats.max_step_records = stats.max_step_records.max(pushed as u64);
        }
        if let Some(container) = &out {
            stats.max_container_records = stats.max_container_records.max(container.len() as u64);
        }
        if out.is_none() && !self.done {
            // Out of step budget with nothing consolidated to show: an empty container keeps
            // the driver pulling (and rescheduling) without buffering anything.
            return Some(Vec::new());
        }
        out
    }
}

impl<K, V0, V1, T, R0, R1, L, I> VectoredIter<K, V0, V1, T, R0, R1, L, I::Item>
where
    K: PagedData,
    V0: PagedData,
    V1: PagedData,
    T: PagedData + Lattice + Timestamp,
    R0: PagedData + Semigroup + Multiply<R1, Output: Semigroup + 'static>,
    R1: PagedData + Semigroup,
    L: for<'a> FnMut(K::Item<'a>, V0::Item<'a>, V1::Item<'a>) -> I,
    I: IntoIterator<Item: Data>,
{
    /// Loads the next block of fresh keys with their fresh updates, and plans the other
    /// side's windows for it; false when no fresh key is left.
    fn next_block(&mut self) -> bool {
        let Limits {
            group,
            fresh: cap,
            fresh_bytes: cap_bytes,
            window,
            window_bytes,
            ..
        } = self.limits;
        let (keys, side0, side1) = (&mut self.keys, &mut self.side0, &mut self.side1);
        keys.clear();
        side0.clear();
        side1.clear();
        let (fresh_len, fresh_bytes) = match &mut self.driver {
            Driver::Input0(fresh, other) => {
                let bytes = fresh.take_keys(group, (cap, cap_bytes), keys, side0);
                consolidate_updates(side0);
                self.windows = plan_windows(other, keys, (window, window_bytes));
                (side0.len(), bytes)
            }
            Driver::Input1(other, fresh) => {
                let bytes = fresh.take_keys(group, (cap, cap_bytes), keys, side1);
                consolidate_updates(side1);
                self.windows = plan_windows(other, keys, (window, window_bytes));
                (side1.len(), bytes)
            }
        };
        if keys.is_empty() {
            return false;
        }
        let mut stats = self.join_stats.borrow_mut();
        stats.blocks += 1;
        stats.max_block_updates = stats.max_block_updates.max(fresh_len as u64);
        stats.max_block_bytes = stats.max_block_bytes.max(fresh_bytes as u64);
        true
    }

    /// Looks the block's keys up in one window of the other side, replacing that side's
    /// updates, and starts the window's cross product.
    fn load_window(&mut self, (window, bytes): (Window, usize)) {
        let (keys, meet) = (&self.keys, &self.meet);
        let (stats, loaded) = match &self.driver {
            Driver::Input0(_, other) => {
                let side1 = &mut self.side1;
                side1.clear();
                let stats = for_each_update(&window_batches(other, &window), keys, |i, v, t, r| {
                    side1.push(((i, v), t.join(meet), r))
                });
                consolidate_updates(side1);
                (stats, side1.len())
            }
            Driver::Input1(other, _) => {
                let side0 = &mut self.side0;
                side0.clear();
                let stats = for_each_update(&window_batches(other, &window), keys, |i, v, t, r| {
                    side0.push(((i, v), t.join(meet), r))
                });
                consolidate_updates(side0);
                (stats, side0.len())
            }
        };
        *self.stats.borrow_mut() += stats;
        let mut join_stats = self.join_stats.borrow_mut();
        join_stats.windows += 1;
        join_stats.max_window_updates = join_stats.max_window_updates.max(loaded as u64);
        join_stats.max_window_bytes = join_stats.max_window_bytes.max(bytes as u64);
        self.at = Position::default();
    }

    /// Pushes the cross product of the loaded block and window into the builder, from where
    /// it stopped, until at least `room` records are pushed or it is finished; returns the
    /// records pushed and whether it is finished.
    fn join_some(&mut self, room: usize) -> (usize, bool) {
        let mut logic = self.logic.borrow_mut();
        let (s0, s1, at) = (&self.side0, &self.side1, &mut self.at);
        let mut pushed = 0;
        loop {
            if !at.in_key {
                // The next key present on both sides.
                loop {
                    if at.a >= s0.len() || at.b >= s1.len() {
                        return (pushed, true);
                    }
                    let (i, j) = (s0[at.a].0 .0, s1[at.b].0 .0);
                    if i < j {
                        at.a += s0[at.a..].partition_point(|x| x.0 .0 < j);
                    } else if j < i {
                        at.b += s1[at.b..].partition_point(|x| x.0 .0 < i);
                    } else {
                        at.a_end = at.a + s0[at.a..].partition_point(|x| x.0 .0 == i);
                        at.b_end = at.b + s1[at.b..].partition_point(|x| x.0 .0 == i);
                        (at.ia, at.ib, at.in_key) = (at.a, at.b, true);
                        break;
                    }
                }
            }
            let key = self.keys[s0[at.a].0 .0].item();
            while at.ia < at.a_end {
                let ((_, v0), t0, r0) = &s0[at.ia];
                while at.ib < at.b_end {
                    let ((_, v1), t1, r1) = &s1[at.ib];
                    at.ib += 1;
                    let time = t0.join(t1);
                    let diff = r0.clone().multiply(r1);
                    for datum in (logic)(key, v0.item(), v1.item()) {
                        self.builder.push_into((datum, time.clone(), diff.clone()));
                        pushed += 1;
                    }
                    if pushed >= room {
                        return (pushed, false);
                    }
                }
                at.ib = at.b;
                at.ia += 1;
            }
            at.in_key = false;
            (at.a, at.b) = (at.a_end, at.b_end);
        }
    }
}

/// The chunks of `batches` that some of `keys` (sorted, no duplicates) can fall into, by
/// their resident fences, cut into windows of at most `cap.0` records (by chunk length) and
/// `cap.1` encoded bytes (by the chunks' body bytes), at least one chunk each; each window
/// with its bytes. Chunks are taken in the order of the first key falling into them,
/// so a key's chunks from different batches tend to share a window (and its updates are
/// consolidated together).
fn plan_windows<K, V, T, R>(
    batches: &[Batch<K, V, T, R>],
    keys: &[K],
    (cap, cap_bytes): (usize, usize),
) -> VecDeque<(Window, usize)>
where
    K: PagedData,
    V: PagedData,
    T: PagedData + Lattice + Timestamp,
    R: PagedData + Semigroup,
{
    // (index of the first key in the chunk, batch, chunk, records, bytes)
    let mut touched: Vec<(usize, usize, usize, usize, usize)> = Vec::new();
    for (b, batch) in batches.iter().enumerate() {
        let mut lo = 0;
        for (c, chunk) in batch.chunks().iter().enumerate() {
            if lo == keys.len() {
                break;
            }
            let ((first, _, _), (last, _, _)) = chunk.fences();
            while lo < keys.len() && keys[lo] < *first {
                lo += 1;
            }
            if lo < keys.len() && keys[lo] <= *last {
                touched.push((lo, b, c, chunk.len(), chunk_bytes(chunk)));
            }
            // The next chunk may start with this chunk's last key: do not move `lo` past it.
        }
    }
    touched.sort_unstable();
    let mut windows = VecDeque::new();
    let (mut window, mut records, mut bytes): (Window, usize, usize) = (Vec::new(), 0, 0);
    for (_, b, c, len, size) in touched {
        if !window.is_empty() && (records + len > cap || bytes + size > cap_bytes) {
            window.sort_unstable();
            windows.push_back((std::mem::take(&mut window), bytes));
            (records, bytes) = (0, 0);
        }
        window.push((b, c));
        records += len;
        bytes += size;
    }
    if !window.is_empty() {
        window.sort_unstable();
        windows.push_back((window, bytes));
    }
    windows
}

/// A window's chunks as batches (each batch's chunks in order) for a vectored lookup.
fn window_batches<K, V, T, R>(
    batches: &[Batch<K, V, T, R>],
    window: &Window,
) -> Vec<PagedBatch<K, V, T, R>>
where
    K: PagedData,
    V: PagedData,
    T: PagedData + Lattice + Timestamp,
    R: PagedData + Semigroup,
{
    let mut out = Vec::new();
    let mut chunks = Vec::new();
    let mut last = None;
    for &(b, c) in window {
        if last != Some(b) && !chunks.is_empty() {
            out.push(PagedBatch::new(std::mem::take(&mut chunks)));
        }
        last = Some(b);
        chunks.push(batches[b].chunks()[c].clone());
    }
    if !chunks.is_empty() {
        out.push(PagedBatch::new(chunks));
    }
    out
}

/// The fresh side read in key order: its batches merged by key.
impl<K, V, T, R> MergedBatches<K, V, T, R>
where
    K: PagedData,
    V: PagedData,
    T: PagedData + Lattice + Timestamp,
    R: PagedData + Semigroup,
{
    /// Appends up to `group` next distinct keys to `keys`, and their updates (with the key's
    /// index in `keys`) to `updates`, stopping once `updates` holds `cap.0` updates or the
    /// next update would take their encoded bytes past `cap.1` (the first update is always
    /// taken), even within a key: the next call then starts with the rest of that key.
    /// Returns the encoded bytes of the updates taken.
    fn take_keys(
        &mut self,
        group: usize,
        (cap, cap_bytes): (usize, usize),
        keys: &mut Vec<K>,
        updates: &mut Vec<((usize, V), T, R)>,
    ) -> usize {
        let mut bytes = 0;
        let mut full = false;
        while !full && keys.len() < group && updates.len() < cap {
            let Some(key) = self.head() else {
                break;
            };
            let (i, before) = (keys.len(), updates.len());
            'batches: for b in &mut self.readers {
                while updates.len() < cap {
                    let Some(update) = b.head() else {
                        break;
                    };
                    if update.0 .0 != key {
                        break;
                    }
                    let size = update_bytes(update);
                    if !updates.is_empty() && bytes + size > cap_bytes {
                        full = true;
                        break 'batches;
                    }
                    let ((_, v), t, r) = update;
                    updates.push(((i, v.clone()), t.clone(), r.clone()));
                    bytes += size;
                    b.step();
                }
            }
            if updates.len() > before {
                keys.push(key);
            }
        }
        bytes
    }
}

/// `join_core` with the vectored tactic, for arrangements of [`PagedSpine`]s.
pub trait JoinVectored<'scope, K, V0, T, R0>: Sized
where
    K: PagedData,
    V0: PagedData,
    T: PagedData + Lattice + Timestamp,
    R0: PagedData + Semigroup,
{
    /// Joins `self` with `other` on their keys, as `join_core(other, logic)` does, through
    /// [`VectoredJoin`].
    fn join_core_vectored<V1, R1, L, I>(
        self,
        other: Arranged<'scope, TraceAgent<PagedSpine<K, V1, T, R1>>>,
        logic: L,
    ) -> VecCollection<'scope, T, I::Item, R0::Output>
    where
        V1: PagedData,
        R1: PagedData + Semigroup,
        R0: Multiply<R1, Output: Semigroup + 'static>,
        L: for<'a> FnMut(K::Item<'a>, V0::Item<'a>, V1::Item<'a>) -> I + 'static,
        I: IntoIterator<Item: Data>,
    {
        self.join_with(other, VectoredJoin::new(logic))
    }

    /// [`JoinVectored::join_core_vectored`] with a configured tactic (group size, stats).
    fn join_with<V1, R1, L, I>(
        self,
        other: Arranged<'scope, TraceAgent<PagedSpine<K, V1, T, R1>>>,
        tactic: VectoredJoin<L>,
    ) -> VecCollection<'scope, T, I::Item, R0::Output>
    where
        V1: PagedData,
        R1: PagedData + Semigroup,
        R0: Multiply<R1, Output: Semigroup + 'static>,
        L: for<'a> FnMut(K::Item<'a>, V0::Item<'a>, V1::Item<'a>) -> I + 'static,
        I: IntoIterator<Item: Data>;
}

impl<'scope, K, V0, T, R0> JoinVectored<'scope, K, V0, T, R0>
    for Arranged<'scope, TraceAgent<PagedSpine<K, V0, T, R0>>>
where
    K: PagedData,
    V0: PagedData,
    T: PagedData + Lattice + Timestamp,
    R0: PagedData + Semigroup,
{
    fn join_with<V1, R1, L, I>(
        self,
        other: Arranged<'scope, TraceAgent<PagedSpine<K, V1, T, R1>>>,
        tactic: VectoredJoin<L>,
    ) -> VecCollection<'scope, T, I::Item, R0::Output>
    where
        V1: PagedData,
        R1: PagedData + Semigroup,
        R0: Multiply<R1, Output: Semigroup + 'static>,
        L: for<'a> FnMut(K::Item<'a>, V0::Item<'a>, V1::Item<'a>) -> I + 'static,
        I: IntoIterator<Item: Data>,
    {
        join_with_tactic(self, other, "JoinVectored", tactic).as_collection()
    }
}
