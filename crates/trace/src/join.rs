//! A vectored join tactic: [`VectoredJoin`], and [`JoinVectored::join_core_vectored`].
//!
//! differential's `join_with_tactic` hands a tactic, for each freshly arrived batch, the
//! batches of the other side's trace. The cursor tactic (`join_core`) walks a cursor over the
//! fresh batch and seeks each of its keys in a cursor over the other side, chunk by chunk.
//! [`VectoredJoin`] instead reads the fresh side in key order, a group of
//! [`VectoredJoin::group`] keys at a time, and looks each group up in the other side with one
//! [vectored lookup](crate::vectored): every chunk of the other side that the group touches
//! is read once per group, with coalesced reads, and only its matching records are decoded.
//!
//! Nothing is cached in the chunks: for variable-length keys and values (whose cursor path
//! keeps decoded bodies; see [`crate::chunk`]) this is the bounded-memory join. Memory per
//! activation: one decoded chunk per fresh batch, and the records of one group of keys.
//!
//! # Output
//! For each key, every pair of updates `(v0, t0, r0)`, `(v1, t1, r1)` yields
//! `logic(key, v0, v1)` at `t0 ∨ t1` with diff `r0 · r1`, as `join_core` does; the
//! accumulated (non-fresh) side's times are first advanced by the driver's `meet` and
//! consolidated, which changes no output (every output time is at or beyond `meet`). The
//! output collection equals `join_core`'s (tests check it with proptest).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use differential_dataflow::consolidation::{consolidate_updates, ConsolidatingContainerBuilder};
use differential_dataflow::difference::{Multiply, Semigroup};
use differential_dataflow::lattice::Lattice;
use differential_dataflow::operators::arrange::{Arranged, TraceAgent};
use differential_dataflow::operators::join::{join_with_tactic, Fresh, JoinTactic};
use differential_dataflow::trace::chunk::ChunkBatch;
use differential_dataflow::{AsCollection, Data, VecCollection};
use timely::container::{ContainerBuilder, PushInto};
use timely::progress::Timestamp;

use crate::chunk::{LookupBody, PagedChunk};
use crate::data::PagedData;
use crate::vectored::{for_each_update, LookupStats};
use crate::PagedSpine;

/// Keys per vectored lookup, by default.
pub const DEFAULT_GROUP: usize = 16 * 1024;

type Batch<K, V, T, R> = Rc<ChunkBatch<PagedChunk<K, V, T, R>>>;
type Output<D, T, R> = ConsolidatingContainerBuilder<Vec<(D, T, R)>>;

/// The vectored [`JoinTactic`] over two paged traces with key `K` (see the module docs).
/// `logic(key, v0, v1)` returns the output records of a matching pair, as `join_core`'s.
pub struct VectoredJoin<L> {
    logic: Rc<RefCell<L>>,
    group: usize,
    stats: Rc<RefCell<LookupStats>>,
}

impl<L> VectoredJoin<L> {
    /// A tactic applying `logic` to each matching `(key, v0, v1)`.
    pub fn new(logic: L) -> Self {
        VectoredJoin {
            logic: Rc::new(RefCell::new(logic)),
            group: DEFAULT_GROUP,
            stats: Rc::default(),
        }
    }

    /// Keys per vectored lookup (at least 1; 16 Ki by default): larger groups read each
    /// touched chunk of the other side fewer times; smaller ones hold fewer records at once.
    pub fn group(mut self, keys: usize) -> Self {
        self.group = keys.max(1);
        self
    }

    /// The lookups this tactic has done so far (shared: read it after the dataflow ran).
    pub fn stats(&self) -> Rc<RefCell<LookupStats>> {
        Rc::clone(&self.stats)
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
            Fresh::Input0 => Driver::Input0(BatchStream::new(input0), input1),
            Fresh::Input1 => Driver::Input1(input0, BatchStream::new(input1)),
        };
        Box::new(VectoredIter {
            driver,
            meet,
            group: self.group,
            logic: Rc::clone(&self.logic),
            stats: Rc::clone(&self.stats),
            keys: Vec::new(),
            side0: Vec::new(),
            side1: Vec::new(),
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
    Input0(BatchStream<K, V0, T, R0>, Vec<Batch<K, V1, T, R1>>),
    Input1(Vec<Batch<K, V0, T, R0>>, BatchStream<K, V1, T, R1>),
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
    group: usize,
    logic: Rc<RefCell<L>>,
    stats: Rc<RefCell<LookupStats>>,
    /// The current group's keys, and each side's updates `((key index, val), time, diff)`.
    keys: Vec<K>,
    side0: Vec<((usize, V0), T, R0)>,
    side1: Vec<((usize, V1), T, R1)>,
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
        while self.ready.is_empty() && !self.done {
            if self.next_group() {
                self.join_group();
                while let Some(container) = self.builder.extract() {
                    self.ready.push_back(std::mem::take(container));
                }
            } else {
                self.done = true;
                while let Some(container) = self.builder.finish() {
                    self.ready.push_back(std::mem::take(container));
                }
            }
        }
        self.ready.pop_front()
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
    /// Loads the next group of fresh keys with both sides' updates; false when none is left.
    fn next_group(&mut self) -> bool {
        let (keys, side0, side1, meet) =
            (&mut self.keys, &mut self.side0, &mut self.side1, &self.meet);
        keys.clear();
        side0.clear();
        side1.clear();
        let stats = match &mut self.driver {
            Driver::Input0(fresh, other) => {
                fresh.take_keys(self.group, keys, side0);
                for_each_update(other, keys, |i, v, t, r| {
                    side1.push(((i, v), t.join(meet), r))
                })
            }
            Driver::Input1(other, fresh) => {
                fresh.take_keys(self.group, keys, side1);
                for_each_update(other, keys, |i, v, t, r| {
                    side0.push(((i, v), t.join(meet), r))
                })
            }
        };
        *self.stats.borrow_mut() += stats;
        !keys.is_empty()
    }

    /// Joins the loaded group into the builder.
    fn join_group(&mut self) {
        consolidate_updates(&mut self.side0);
        consolidate_updates(&mut self.side1);
        let mut logic = self.logic.borrow_mut();
        let (mut a, mut b) = (0, 0);
        let (s0, s1) = (&self.side0, &self.side1);
        while a < s0.len() && b < s1.len() {
            let (i, j) = (s0[a].0 .0, s1[b].0 .0);
            if i < j {
                a += s0[a..].partition_point(|x| x.0 .0 == i);
            } else if j < i {
                b += s1[b..].partition_point(|x| x.0 .0 == j);
            } else {
                let a_end = a + s0[a..].partition_point(|x| x.0 .0 == i);
                let b_end = b + s1[b..].partition_point(|x| x.0 .0 == i);
                let key = self.keys[i].item();
                for ((_, v0), t0, r0) in &s0[a..a_end] {
                    for ((_, v1), t1, r1) in &s1[b..b_end] {
                        let time = t0.join(t1);
                        let diff = r0.clone().multiply(r1);
                        for datum in (logic)(key, v0.item(), v1.item()) {
                            self.builder.push_into((datum, time.clone(), diff.clone()));
                        }
                    }
                }
                (a, b) = (a_end, b_end);
            }
        }
    }
}

/// The fresh side read in key order: each batch one decoded chunk at a time, the batches
/// merged by key.
struct BatchStream<K, V, T, R>
where
    K: PagedData,
    V: PagedData,
    T: PagedData + Lattice + Timestamp,
    R: PagedData + Semigroup,
{
    batches: Vec<ChunkCursor<K, V, T, R>>,
}

/// A batch's position: its current chunk, read in place when resident and decoded (once)
/// when pooled, and the next record in it.
struct ChunkCursor<K, V, T, R>
where
    K: PagedData,
    V: PagedData,
    T: PagedData + Lattice + Timestamp,
    R: PagedData + Semigroup,
{
    batch: Batch<K, V, T, R>,
    /// Index of the current chunk; `None` before the first.
    chunk: Option<usize>,
    /// The current chunk's body, if it is pooled.
    decoded: Option<crate::records::Records<K, V, T, R>>,
    at: usize,
}

impl<K, V, T, R> ChunkCursor<K, V, T, R>
where
    K: PagedData,
    V: PagedData,
    T: PagedData + Lattice + Timestamp,
    R: PagedData + Semigroup,
{
    /// The current chunk's records.
    fn records(&self) -> &[((K, V), T, R)] {
        if let Some(decoded) = &self.decoded {
            return decoded.as_slice();
        }
        match self.chunk.map(|c| self.batch.chunks[c].lookup_body()) {
            Some(LookupBody::Records(records)) => records,
            _ => &[],
        }
    }

    /// The next record, moving to the next chunk when the current one is used up.
    fn head(&mut self) -> Option<&((K, V), T, R)> {
        while self.at == self.records().len() {
            let next = self.chunk.map_or(0, |c| c + 1);
            let chunk = self.batch.chunks.get(next)?;
            self.decoded = chunk.is_pooled().then(|| chunk.materialize());
            self.chunk = Some(next);
            self.at = 0;
        }
        Some(&self.records()[self.at])
    }
}

impl<K, V, T, R> BatchStream<K, V, T, R>
where
    K: PagedData,
    V: PagedData,
    T: PagedData + Lattice + Timestamp,
    R: PagedData + Semigroup,
{
    fn new(batches: Vec<Batch<K, V, T, R>>) -> Self {
        let batches = batches
            .into_iter()
            .map(|batch| ChunkCursor {
                batch,
                chunk: None,
                decoded: None,
                at: 0,
            })
            .collect();
        BatchStream { batches }
    }

    /// Appends up to `group` next distinct keys to `keys`, and their updates (with the key's
    /// index in `keys`) to `updates`.
    fn take_keys(
        &mut self,
        group: usize,
        keys: &mut Vec<K>,
        updates: &mut Vec<((usize, V), T, R)>,
    ) {
        while keys.len() < group {
            let Some(key) = self
                .batches
                .iter_mut()
                .filter_map(|b| b.head().map(|r| r.0 .0.clone()))
                .min()
            else {
                return;
            };
            let i = keys.len();
            for b in &mut self.batches {
                while let Some(((k, v), t, r)) = b.head() {
                    if *k != key {
                        break;
                    }
                    updates.push(((i, v.clone()), t.clone(), r.clone()));
                    b.at += 1;
                }
            }
            keys.push(key);
        }
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
