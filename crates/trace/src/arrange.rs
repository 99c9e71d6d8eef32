//! Wiring [`PagedChunk`] into differential: the spine, batcher and builder types, and the
//! `arrange_by_key_paged` / `arrange_by_self_paged` extension traits.
//!
//! Invariant: every chunk a paged arrangement seals is sealed inside its own batcher's paging
//! scope or carries its pager, so it pages (or not) exactly as its arrangement's [`Paging`]
//! says. [`PagedBatcher`] keeps it by entering the scope around each batcher call.
//!
//! Upstream's chunk harness does the rest: [`PagedSpine`] is differential's `Spine` of
//! `Rc`-shared [`PagedBatch`]es (upstream's `ChunkBatch` with our cursor); the batcher is its
//! merge batcher over [`PagedChunk`]s with our [`RunChunker`], which sorts input in runs of
//! [`SORT_RUN_BYTES`] of encoded records, sealing chains with [`PagedBuilder`].

use std::collections::VecDeque;
use std::rc::Rc;

use differential_dataflow::batcher::merge::MergeBatcher;
use differential_dataflow::batcher::{Batcher, Extract};
use differential_dataflow::consolidation::consolidate_updates;
use differential_dataflow::difference::Semigroup;
use differential_dataflow::lattice::Lattice;
use differential_dataflow::logging::Logger;
use differential_dataflow::operators::arrange::arrangement::{arrange_core, Arranged};
use differential_dataflow::operators::arrange::TraceAgent;
use differential_dataflow::trace::chunk::ChunkMerger;
use differential_dataflow::trace::implementations::spine_fueled::Spine;
use differential_dataflow::{ExchangeData, Hashable, VecCollection};
use timely::container::{ContainerBuilder, PushInto};
use timely::dataflow::channels::pact::Exchange;
use timely::progress::frontier::AntichainRef;
use timely::progress::Timestamp;

use crate::batch::{PagedBatch, PagedBuilder};
use crate::chunk::PagedChunk;
use crate::data::PagedData;
use crate::pager::{PagerScope, Paging};
use crate::records::{
    fitting_prefix, fixed_update_bytes, records_per, update_bytes, Update, TARGET_BYTES,
};

/// The trace of a paged arrangement: a spine of `Rc`-shared [`PagedBatch`]es.
pub type PagedSpine<K, V, T, R> = Spine<Rc<PagedBatch<K, V, T, R>>>;

/// The batcher inside a [`PagedBatcher`]: upstream's merge batcher over [`PagedChunk`]s
/// (its `ChunkBatcher`, sealing into [`PagedBatch`]es).
type InnerBatcher<K, V, T, R> = MergeBatcher<
    RunChunker<K, V, T, R>,
    ChunkMerger<PagedChunk<K, V, T, R>>,
    PagedBuilder<K, V, T, R>,
>;

/// Encoded bytes of records a paged arrangement's batcher sorts at once before merging (32
/// chunks of [`crate::TARGET_BYTES`]: 8 MiB). The run being filled is heap memory outside the
/// pool's budget, one per arrangement and worker, freed when a round is sealed.
pub const SORT_RUN_BYTES: usize = 32 * TARGET_BYTES;

/// Records in a sort run of `(u64, u64, u64, i64)` updates (32 bytes each): [`SORT_RUN_BYTES`]
/// over 32. Runs of other records hold what fits in `SORT_RUN_BYTES`.
pub const SORT_RUN: usize = SORT_RUN_BYTES / 32;

/// The batcher's chunker: sorts and consolidates its input in runs of [`SORT_RUN_BYTES`] and
/// cuts each run into full chunks (of [`crate::TARGET_BYTES`] each). Upstream's chunker sorts one chunk at a time, so the
/// batcher's merge ladder starts from one-chunk chains and merges a round's data
/// log2(chunks) times, paging it at every step of the ladder under a small budget. The chunks of one run
/// are disjoint, so while the ladder combines a run's chains of 1 to 16 chunks, `merge` only
/// meets disjoint heads and passes them through whole (no copy, no decode): five fewer
/// merge passes over every record.
///
/// Public only because [`PagedBatcher`]'s trait impls name it; [`ArrangePaged`] wires it in,
/// and callers have no reason to build one.
pub struct RunChunker<K, V, T, R> {
    pending: Vec<Update<K, V, T, R>>,
    /// Encoded bytes of `pending` (variable-length records only; fixed-width runs count
    /// records).
    pending_bytes: usize,
    ready: VecDeque<PagedChunk<K, V, T, R>>,
    /// The chunk last handed out by `extract` (the batcher takes it).
    current: PagedChunk<K, V, T, R>,
}

impl<K, V, T, R> Default for RunChunker<K, V, T, R> {
    fn default() -> Self {
        RunChunker {
            pending: Vec::new(),
            pending_bytes: 0,
            ready: VecDeque::new(),
            current: PagedChunk::default(),
        }
    }
}

impl<K, V, T, R> RunChunker<K, V, T, R>
where
    K: PagedData,
    V: PagedData,
    T: PagedData,
    R: PagedData + Semigroup,
{
    /// Sorts and consolidates the pending run and cuts it into ready chunks, moving the
    /// records (a wide record's strings are not copied; the run's buffer is kept for the next).
    fn seal_run(&mut self) {
        consolidate_updates(&mut self.pending);
        let mut records = self.pending.drain(..);
        while !records.as_slice().is_empty() {
            let (piece, _) = fitting_prefix(records.as_slice(), TARGET_BYTES);
            let chunk: Vec<_> = records.by_ref().take(piece).collect();
            self.ready.push_back(PagedChunk::from_records(chunk));
        }
        self.pending_bytes = 0;
    }
}

impl<K, V, T, R> PushInto<&mut Vec<Update<K, V, T, R>>> for RunChunker<K, V, T, R>
where
    K: PagedData,
    V: PagedData,
    T: PagedData,
    R: PagedData + Semigroup,
{
    fn push_into(&mut self, input: &mut Vec<Update<K, V, T, R>>) {
        let mut input = input.drain(..);
        let Some(width) = fixed_update_bytes::<K, V, T, R>() else {
            // Variable-length records: measured one by one.
            for update in input {
                self.pending_bytes += update_bytes(&update);
                self.pending.push(update);
                if self.pending_bytes >= SORT_RUN_BYTES {
                    self.seal_run();
                }
            }
            return;
        };
        // Fixed-width records: the run is a record count, derived once from the width.
        let run = records_per(SORT_RUN_BYTES, width);
        loop {
            if self.pending.capacity() < run {
                self.pending.reserve_exact(run - self.pending.len());
            }
            let room = run - self.pending.len();
            self.pending.extend(input.by_ref().take(room));
            if self.pending.len() < run {
                return;
            }
            self.seal_run();
        }
    }
}

impl<K, V, T, R> ContainerBuilder for RunChunker<K, V, T, R>
where
    K: PagedData,
    V: PagedData,
    T: PagedData + Lattice + Timestamp,
    R: PagedData + Semigroup,
{
    type Container = PagedChunk<K, V, T, R>;

    fn extract(&mut self) -> Option<&mut Self::Container> {
        self.current = self.ready.pop_front()?;
        Some(&mut self.current)
    }

    fn finish(&mut self) -> Option<&mut Self::Container> {
        if !self.pending.is_empty() {
            self.seal_run();
            // The batcher sorts in runs only while data streams in: free the run buffer.
            self.pending = Vec::new();
        }
        self.extract()
    }
}

/// The merge batcher of a paged arrangement: upstream's chunk batcher, run inside its
/// arrangement's paging scope so that `settle` can page the chains it seals.
///
/// [`ArrangePaged`] builds one per arrangement; name it yourself only to call
/// differential's `arrange_core` with a custom exchange.
pub struct PagedBatcher<K, V, T, R>
where
    K: PagedData,
    V: PagedData,
    T: PagedData + Lattice + Timestamp,
    R: PagedData + Semigroup,
{
    inner: InnerBatcher<K, V, T, R>,
    paging: Paging,
}

impl<K, V, T, R> PagedBatcher<K, V, T, R>
where
    K: PagedData,
    V: PagedData,
    T: PagedData + Lattice + Timestamp,
    R: PagedData + Semigroup,
{
    /// A batcher for an arrangement that pages with `paging`; `logger` and `operator_id` are
    /// what `arrange_core` hands its batcher constructor.
    pub fn new(logger: Option<Logger>, operator_id: usize, paging: Paging) -> Self {
        PagedBatcher {
            inner: InnerBatcher::new(logger, operator_id),
            paging,
        }
    }
}

impl<C, K, V, T, R> Batcher<C> for PagedBatcher<K, V, T, R>
where
    K: PagedData,
    V: PagedData,
    T: PagedData + Lattice + Timestamp,
    R: PagedData + Semigroup,
    InnerBatcher<K, V, T, R>: Batcher<C, Time = T>,
{
    fn insert(&mut self, container: &mut C) {
        // Merging chains: their heads are consumed by the next merge; keep them resident.
        let _scope = PagerScope::enter(self.paging.pager(), true);
        self.inner.insert(container);
    }
}

impl<K, V, T, R> Extract for PagedBatcher<K, V, T, R>
where
    K: PagedData,
    V: PagedData,
    T: PagedData + Lattice + Timestamp,
    R: PagedData + Semigroup,
{
    type Time = T;
    type Output = <InnerBatcher<K, V, T, R> as Extract>::Output;

    fn extract<'a>(
        &'a mut self,
        upper: AntichainRef<'_, T>,
    ) -> (Option<Self::Output>, AntichainRef<'a, T>) {
        // Extracting and sealing a batch for the spine: every chunk may page.
        let _scope = PagerScope::enter(self.paging.pager(), false);
        self.inner.extract(upper)
    }
}

/// Arranges collections of `(key, val)` pairs into paged traces: `arrange_by_key` for
/// [`PagedSpine`].
///
/// Implemented for differential's `VecCollection`s whose key, value, time and diff types are
/// all [`crate::PagedData`] (and exchangeable, as `arrange_by_key` requires). Records are
/// exchanged between workers by the key's hash, as upstream's `arrange_by_key` does.
///
/// # Example
///
/// Two collections arranged paged and joined; each key's values meet once per match.
///
/// ```
/// use differential_dataflow::input::Input;
/// use spillway_pool::{Pool, PoolConfig};
/// use spillway_trace::{ArrangePaged, Paging};
/// use std::sync::{Arc, Mutex};
///
/// let pool = Pool::new(PoolConfig::default().budget("16MiB")?)?;
/// let out = Arc::new(Mutex::new(Vec::new()));
/// let sink = out.clone();
/// timely::execute_directly(move |worker| {
///     let paging = Paging::enabled(&pool);
///     let (mut names, mut ages) = worker.dataflow::<u64, _, _>(|scope| {
///         let (names_in, names) = scope.new_collection::<(u64, u64), isize>();
///         let (ages_in, ages) = scope.new_collection::<(u64, u64), isize>();
///         names
///             .arrange_by_key_paged(&paging)
///             .join_core(ages.arrange_by_key_paged(&paging), |id, name, age| {
///                 Some((id, name, age))
///             })
///             .inspect(move |(record, _time, diff)| sink.lock().unwrap().push((*record, *diff)));
///         (names_in, ages_in)
///     });
///     names.update((1, 100), 1);
///     names.update((2, 200), 1);
///     ages.update((1, 31), 1);
///     ages.update((3, 43), 1);
/// });
/// assert_eq!(*out.lock().unwrap(), vec![((1, 100, 31), 1)]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait ArrangePaged<'scope, T, K, V, R>
where
    T: Timestamp + Lattice + PagedData,
    K: PagedData,
    V: PagedData,
    R: PagedData + Semigroup,
{
    /// Arranges `(key, val)` records by key into a [`PagedSpine`] whose chunks page as
    /// `paging` says. With `Paging::disabled()` the chunks stay resident; the types are the
    /// same either way.
    fn arrange_by_key_paged(
        self,
        paging: &Paging,
    ) -> Arranged<'scope, TraceAgent<PagedSpine<K, V, T, R>>>;
}

/// Arranges collections of keys into paged traces: `arrange_by_self` for [`PagedSpine`]
/// (with `()` values).
pub trait ArrangeSelfPaged<'scope, T, K, R>
where
    T: Timestamp + Lattice + PagedData,
    K: PagedData,
    R: PagedData + Semigroup,
{
    /// Arranges records by themselves (as `(key, ())`) into a [`PagedSpine`] whose chunks
    /// page as `paging` says.
    fn arrange_by_self_paged(
        self,
        paging: &Paging,
    ) -> Arranged<'scope, TraceAgent<PagedSpine<K, (), T, R>>>;
}

impl<'scope, T, K, V, R> ArrangePaged<'scope, T, K, V, R> for VecCollection<'scope, T, (K, V), R>
where
    T: Timestamp + Lattice + PagedData,
    K: ExchangeData + Hashable + PagedData,
    V: ExchangeData + PagedData,
    R: ExchangeData + Semigroup + PagedData,
{
    fn arrange_by_key_paged(
        self,
        paging: &Paging,
    ) -> Arranged<'scope, TraceAgent<PagedSpine<K, V, T, R>>> {
        let paging = paging.clone();
        let exchange = Exchange::new(|update: &((K, V), T, R)| (update.0).0.hashed().into());
        arrange_core::<_, _, PagedBatcher<K, V, T, R>, PagedSpine<K, V, T, R>>(
            self.inner,
            exchange,
            "ArrangeByKeyPaged",
            move |logger, operator_id| PagedBatcher::new(logger, operator_id, paging),
        )
    }
}

impl<'scope, T, K, R> ArrangeSelfPaged<'scope, T, K, R> for VecCollection<'scope, T, K, R>
where
    T: Timestamp + Lattice + PagedData,
    K: ExchangeData + Hashable + PagedData,
    R: ExchangeData + Semigroup + PagedData,
{
    fn arrange_by_self_paged(
        self,
        paging: &Paging,
    ) -> Arranged<'scope, TraceAgent<PagedSpine<K, (), T, R>>> {
        self.map(|k| (k, ())).arrange_by_key_paged(paging)
    }
}
