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
//! thread-local *scope* for the duration of each batcher call ([`PagerScope`]), and `settle`
//! adopts it for pager-less chunks. The scope is per worker thread, restored on exit (even on
//! panic), read once per `settle` call and never per record.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use spillway_pool::{ChunkHints, Compression, Pool};

/// When chunks page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PagingPolicy {
    /// Bodies smaller than this stay resident: paging them costs more than it saves.
    pub min_bytes: usize,
    /// Depth-0 chunks (fresh from the batcher, consumed by the next merge) are stored
    /// uncompressed when they page: their extents are read back soon.
    pub raw_depth0: bool,
}

impl Default for PagingPolicy {
    fn default() -> Self {
        PagingPolicy {
            min_bytes: 64 << 10,
            raw_depth0: true,
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
        let hints = ChunkHints::depth(depth);
        if depth == 0 && self.policy.raw_depth0 {
            ChunkHints {
                compression: Compression::Raw,
                ..hints
            }
        } else {
            hints
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
