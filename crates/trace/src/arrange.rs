//! Wiring [`PagedChunk`] into differential: the batcher, builder and spine types, and the
//! `arrange_by_key_paged` / `arrange_by_self_paged` extension trait.

use differential_dataflow::batcher::merge::chunker::ContainerChunker;
use differential_dataflow::batcher::{Batcher, Extract};
use differential_dataflow::difference::Semigroup;
use differential_dataflow::lattice::Lattice;
use differential_dataflow::logging::Logger;
use differential_dataflow::operators::arrange::arrangement::{arrange_core, Arranged};
use differential_dataflow::operators::arrange::TraceAgent;
use differential_dataflow::trace::chunk::{ChunkBatcher, ChunkBuilder, ChunkSpine};
use differential_dataflow::{ExchangeData, Hashable, VecCollection};
use timely::dataflow::channels::pact::Exchange;
use timely::progress::frontier::AntichainRef;
use timely::progress::Timestamp;

use crate::chunk::PagedChunk;
use crate::data::PagedData;
use crate::pager::{PagerScope, Paging};

/// The trace of a paged arrangement: a spine of `Rc`-shared batches of [`PagedChunk`]s.
pub type PagedSpine<K, V, T, R> = ChunkSpine<PagedChunk<K, V, T, R>>;

/// Builds batches of [`PagedChunk`]s.
pub type PagedBuilder<K, V, T, R> = ChunkBuilder<PagedChunk<K, V, T, R>>;

type InnerBatcher<K, V, T, R> =
    ChunkBatcher<ContainerChunker<PagedChunk<K, V, T, R>>, PagedChunk<K, V, T, R>>;

/// The merge batcher of a paged arrangement: upstream's chunk batcher, run inside its
/// arrangement's paging scope so that `settle` can page the chains it seals.
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
    /// A batcher for an arrangement with the given paging.
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

/// Arranges collections into paged traces.
pub trait ArrangePaged<'scope, T, K, V, R>
where
    T: Timestamp + Lattice + PagedData,
    K: PagedData,
    V: PagedData,
    R: PagedData + Semigroup,
{
    /// Arranges `(key, val)` records by key into a [`PagedSpine`]. With `Paging::disabled()`
    /// the chunks stay resident; the types are the same either way.
    fn arrange_by_key_paged(
        self,
        paging: &Paging,
    ) -> Arranged<'scope, TraceAgent<PagedSpine<K, V, T, R>>>;
}

/// Arranges collections of keys into paged traces.
pub trait ArrangeSelfPaged<'scope, T, K, R>
where
    T: Timestamp + Lattice + PagedData,
    K: PagedData,
    R: PagedData + Semigroup,
{
    /// Arranges records by themselves (`(key, ())`) into a [`PagedSpine`].
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
