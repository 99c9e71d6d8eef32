//! The paging policy of an arrangement, and the one thread-local it needs.
//!
//! [`Paging`] is what a user hands to `arrange_by_key_paged`: either disabled (chunks stay
//! resident, the trace behaves like upstream's `VecChunk` trace) or enabled over a
//! [`spillway_pool::Pool`] with a [`PagingPolicy`]. The same types serve both, so a runtime
//! flag switches paging without changing the dataflow's types.
//!
//! # Where `settle` finds the pool
//! differential's `Chunk` methods are static (no `self`, no context), yet `settle`, the commit
//! point where chunks enter the pool, must know the pool. Chunks therefore carry their
//! [`ColumnPager`]; chunks made by merging inherit it from their inputs. Chunks fresh from the
//! chunker carry none, so [`crate::PagedBatcher`] installs its arrangement's pager in a
//! thread-local *scope* for the duration of each batcher call (`PagerScope`), and `settle`
//! adopts it for pager-less chunks. The scope is per worker thread, restored on exit (even on
//! panic), read once per `settle` call and never per record.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use spillway_pool::{Backing, ChunkHints, Compression, Pool};

/// When chunks page, and how each *level* (a chunk's depth: 0 for batcher output, merge
/// outputs one deeper than their deepest input) is backed.
///
/// Young levels are merged away soon: writing them to extents early is wasted compression and
/// I/O, and under pressure they are the last evicted anyway (the pool evicts deepest first).
/// Old levels live long and are read by every join: backing them early, while spill threads
/// are idle, turns their later eviction into a page release. So:
/// - levels `≤ lazy_below` are **lazy**: written only when budget pressure evicts them (a
///   chunk freed before that costs no write at all);
/// - levels `≥ eager_from` are **eager**: backed by idle spill threads as soon as sealed;
/// - levels in between are backed eagerly only if the pool is already under pressure (over
///   [`PRESSURE`] of its budget) when they are sealed, lazily otherwise.
///
/// The default (level 0 lazy and raw, every deeper level eager under pressure, none eager
/// unconditionally) was chosen from the measurements in `doc/benchmarks.md` ("Spine
/// levels"): level 0 is where lazy backing saves writes (half its chunks are merged away
/// before pressure reaches them), deeper levels are all written under pressure anyway, and
/// unconditional eager backing only costs when the budget holds everything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PagingPolicy {
    /// Bodies smaller than this stay resident: paging them costs more than it saves.
    pub min_bytes: usize,
    /// Depth-0 chunks (fresh from the batcher, consumed by the next merge) are stored
    /// uncompressed when they page: their extents are read back soon.
    pub raw_depth0: bool,
    /// Levels at or below this are lazy; `None`: no level is forced lazy.
    pub lazy_below: Option<u8>,
    /// Levels at or above this are eager; `None`: no level is forced eager.
    pub eager_from: Option<u8>,
}

/// The residency, as a fraction of the budget, above which levels between `lazy_below` and
/// `eager_from` are backed eagerly.
pub const PRESSURE: f64 = 0.75;

impl Default for PagingPolicy {
    fn default() -> Self {
        PagingPolicy {
            min_bytes: 64 << 10,
            raw_depth0: true,
            lazy_below: Some(0),
            eager_from: None,
        }
    }
}

impl PagingPolicy {
    /// Every level lazy: chunks are written only when evicted.
    pub fn lazy_everywhere() -> Self {
        PagingPolicy {
            lazy_below: Some(u8::MAX),
            eager_from: None,
            ..Self::default()
        }
    }

    /// Every level eager: chunks are backed as soon as they are sealed.
    pub fn eager_everywhere() -> Self {
        PagingPolicy {
            lazy_below: None,
            eager_from: Some(0),
            ..Self::default()
        }
    }

    /// Refuses thresholds that overlap (a level both lazy and eager).
    pub fn validate(&self) -> Result<(), String> {
        match (self.lazy_below, self.eager_from) {
            (Some(lazy), Some(eager)) if lazy >= eager => Err(format!(
                "lazy_below ({lazy}) must be below eager_from ({eager}): a level cannot be both"
            )),
            _ => Ok(()),
        }
    }

    /// How a chunk at `depth` is backed; `pressed` says whether the pool is under pressure
    /// (asked only for levels between the two thresholds).
    pub fn backing(&self, depth: u8, pressed: impl FnOnce() -> bool) -> Backing {
        match (self.lazy_below, self.eager_from) {
            (Some(lazy), _) if depth <= lazy => Backing::Lazy,
            (_, Some(eager)) if depth >= eager => Backing::Eager,
            _ if pressed() => Backing::Eager,
            _ => Backing::Lazy,
        }
    }
}

/// An arrangement's pager: the pool its chunks page through, and the policy.
#[derive(Debug)]
pub struct ColumnPager {
    pool: Pool,
    policy: PagingPolicy,
    /// Heap bytes of decoded pooled bodies cached for by-reference reads, now and at peak.
    decoded: Cell<usize>,
    decoded_peak: Cell<usize>,
}

impl ColumnPager {
    /// The pool chunks page through.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The policy in force.
    pub fn policy(&self) -> PagingPolicy {
        self.policy
    }

    /// Heap bytes of pooled bodies decoded for by-reference cursor reads (variable-length
    /// types; see [`crate::chunk`]), now and at their peak.
    pub fn decoded_cache_bytes(&self) -> (usize, usize) {
        (self.decoded.get(), self.decoded_peak.get())
    }

    pub(crate) fn cache(&self, bytes: usize) {
        let now = self.decoded.get() + bytes;
        self.decoded.set(now);
        self.decoded_peak.set(self.decoded_peak.get().max(now));
    }

    pub(crate) fn uncache(&self, bytes: usize) {
        self.decoded.set(self.decoded.get() - bytes);
    }

    /// Whether a sealed chunk body of `bytes` is large enough to be worth paging.
    pub(crate) fn should_page(&self, bytes: usize) -> bool {
        bytes >= self.policy.min_bytes
    }

    /// Pool hints for a chunk at `depth`.
    pub(crate) fn hints(&self, depth: u8) -> ChunkHints {
        let pool = &self.pool;
        let backing = self.policy.backing(depth, || {
            pool.resident_bytes() as f64 > PRESSURE * pool.budget() as f64
        });
        let compression = if depth == 0 && self.policy.raw_depth0 {
            Compression::Raw
        } else {
            Compression::default()
        };
        ChunkHints {
            depth,
            backing,
            compression,
        }
    }
}

/// Whether and how an arrangement pages. Cheap to clone; create one per worker.
#[derive(Clone, Debug, Default)]
pub struct Paging {
    pager: Option<Rc<ColumnPager>>,
}

impl Paging {
    /// Chunks page through `pool` with the default policy.
    pub fn enabled(pool: &Pool) -> Self {
        Self::with_policy(pool, PagingPolicy::default())
    }

    /// Chunks page through `pool` with `policy`.
    pub fn with_policy(pool: &Pool, policy: PagingPolicy) -> Self {
        Paging {
            pager: Some(Rc::new(ColumnPager {
                pool: pool.clone(),
                policy,
                decoded: Cell::new(0),
                decoded_peak: Cell::new(0),
            })),
        }
    }

    /// Chunks stay resident.
    pub fn disabled() -> Self {
        Paging { pager: None }
    }

    /// Whether paging is on.
    pub fn is_enabled(&self) -> bool {
        self.pager.is_some()
    }

    /// Heap bytes of pooled bodies decoded for by-reference reads by this worker's
    /// arrangements with this paging, now and at peak (zeros when paging is off).
    pub fn decoded_cache_bytes(&self) -> (usize, usize) {
        self.pager
            .as_ref()
            .map_or((0, 0), |pager| pager.decoded_cache_bytes())
    }

    pub(crate) fn pager(&self) -> Option<&Rc<ColumnPager>> {
        self.pager.as_ref()
    }
}

/// A batcher call in progress.
#[derive(Clone)]
struct BatcherCall {
    /// The arrangement's pager (`None` when its paging is disabled).
    pager: Option<Rc<ColumnPager>>,
    /// Whether the heads of chains being built stay resident: true while the batcher merges
    /// its chains (`insert`), false while it extracts and seals a batch for the spine.
    keep_chain_heads: bool,
}

thread_local! {
    /// `Some` while a batcher call is in progress on this worker thread.
    static CURRENT: RefCell<Option<BatcherCall>> = const { RefCell::new(None) };
}

/// Marks a batcher call in progress until dropped (then restores what was there before).
pub(crate) struct PagerScope {
    previous: Option<BatcherCall>,
}

impl PagerScope {
    pub(crate) fn enter(pager: Option<&Rc<ColumnPager>>, keep_chain_heads: bool) -> Self {
        let call = BatcherCall {
            pager: pager.cloned(),
            keep_chain_heads,
        };
        let previous = CURRENT.with(|c| c.replace(Some(call)));
        PagerScope { previous }
    }
}

impl Drop for PagerScope {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

/// Whether a batcher call is in progress on this thread (its merges keep depth 0).
pub(crate) fn in_batcher() -> bool {
    CURRENT.with(|c| c.borrow().is_some())
}

/// The pager of the batcher call in progress on this thread, if any and if paging is on.
pub(crate) fn batcher_pager() -> Option<Rc<ColumnPager>> {
    CURRENT.with(|c| c.borrow().as_ref().and_then(|call| call.pager.clone()))
}

/// Whether the batcher call in progress keeps the heads of its chains resident.
pub(crate) fn keep_chain_heads() -> bool {
    CURRENT.with(|c| {
        c.borrow()
            .as_ref()
            .is_some_and(|call| call.keep_chain_heads)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_lazy_eager_or_pressure_driven() {
        let policy = PagingPolicy::default();
        let (calm, pressed) = (|| false, || true);
        assert_eq!(policy.backing(0, pressed), Backing::Lazy);
        assert_eq!(policy.backing(1, calm), Backing::Lazy);
        assert_eq!(policy.backing(1, pressed), Backing::Eager);
        assert_eq!(policy.backing(200, calm), Backing::Lazy);
        assert_eq!(policy.backing(200, pressed), Backing::Eager);
        let keyed = PagingPolicy {
            eager_from: Some(2),
            ..policy
        };
        assert_eq!(keyed.backing(1, calm), Backing::Lazy);
        assert_eq!(keyed.backing(2, calm), Backing::Eager);
        let lazy = PagingPolicy::lazy_everywhere();
        assert!((0..=255).all(|d| lazy.backing(d, pressed) == Backing::Lazy));
        let eager = PagingPolicy::eager_everywhere();
        assert!((0..=255).all(|d| eager.backing(d, calm) == Backing::Eager));
        for p in [policy, keyed, lazy, eager] {
            assert_eq!(p.validate(), Ok(()));
        }
        let overlapping = PagingPolicy {
            lazy_below: Some(3),
            eager_from: Some(3),
            ..policy
        };
        assert!(overlapping.validate().is_err());
    }
}
