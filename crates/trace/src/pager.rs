//! Whether and how an arrangement pages: [`Paging`] and its [`PagingPolicy`], and the one
//! thread-local the trace needs.
//!
//! Invariant: a chunk pages through the pool of the arrangement it belongs to, under that
//! arrangement's policy, and no other; with paging disabled nothing enters a pool.
//!
//! [`Paging`] is what a user hands to `arrange_by_key_paged`: either disabled (chunks stay
//! resident, the trace behaves like upstream's `VecChunk` trace) or enabled over a
//! [`spillway_pool::Pool`] with a [`PagingPolicy`]. The same types serve both, so a runtime
//! flag switches paging without changing the dataflow's types.
//!
//! # Where `settle` finds the pool
//! differential's `Chunk` methods are static (no `self`, no context), yet `settle`, the commit
//! point where chunks enter the pool, must know the pool. Chunks therefore carry their
//! arrangement's [`Pager`] (the `Rc` inside an enabled `Paging`); chunks made by merging
//! inherit it from their inputs. Chunks fresh from the chunker carry none, so
//! [`crate::PagedBatcher`] installs its arrangement's pager in a thread-local *scope* for the
//! duration of each batcher call ([`PagerScope`]), and `settle` adopts it for pager-less
//! chunks. The scope is per worker thread, restored on exit (even on panic), read once per
//! `settle` call and never per record.

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::VecDeque;
use std::rc::{Rc, Weak};

use spillway_pool::{
    Backing, ChunkHints, Compression, ExtentBackend, Pool, StableArena, StableBytes,
};

/// When chunks page, and how each *level* (a chunk's depth: 0 for batcher output, merge
/// outputs one deeper than their deepest input) is backed.
///
/// The thresholds are compared with a chunk's depth as it is sealed; the pool evicts deeper
/// chunks first whatever the policy, so the policy only decides *when* a chunk's extent is
/// written. Build one with struct update syntax over [`PagingPolicy::default`], or (with the
/// `serde` feature) deserialize it: every field is optional and defaults as below, unknown
/// fields are refused. Call [`PagingPolicy::validate`] on a policy built from user input.
///
/// Young levels are merged away soon: writing them to extents early is wasted compression and
/// I/O, and under pressure they are the last evicted anyway (the pool evicts deepest first).
/// Old levels live long and are read by every join: backing them early, while spill threads
/// are idle, turns their later eviction into a page release. So:
/// - levels `≤ lazy_below` are **lazy**: written only when budget pressure evicts them (a
///   chunk freed before that costs no write at all);
/// - levels `≥ eager_from` are **eager**: backed by idle spill threads as soon as sealed;
/// - levels in between are backed eagerly only if the pool is already under pressure (over
///   [`PagingPolicy::PRESSURE`] of its budget) when they are sealed, lazily otherwise.
///
/// The default (level 0 lazy and raw, every deeper level eager under pressure, none eager
/// unconditionally) was chosen from the measurements in `doc/benchmarks.md` ("Spine
/// levels"): level 0 is where lazy backing saves writes (half its chunks are merged away
/// before pressure reaches them), deeper levels are all written under pressure anyway, and
/// unconditional eager backing only costs when the budget holds everything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct PagingPolicy {
    /// Bodies smaller than this many bytes stay resident: paging them costs more than it
    /// saves. Default 64 KiB, the pool's smallest slot.
    pub min_bytes: usize,
    /// Whether depth-0 chunks (fresh from the batcher, consumed by the next merge) are stored
    /// uncompressed when they page: their extents are read back soon. Default `true`.
    pub raw_depth0: bool,
    /// Levels at or below this are lazy; `None`: no level is forced lazy. Default `Some(0)`.
    pub lazy_below: Option<u8>,
    /// Levels at or above this are eager; `None` (the default): no level is forced eager.
    pub eager_from: Option<u8>,
}

impl std::fmt::Display for PagingPolicy {
    /// The policy in words, e.g. `lazy ≤ 0, deeper levels eager under pressure, raw level 0`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.lazy_below, self.eager_from) {
            (Some(lazy), Some(eager)) => write!(
                f,
                "lazy ≤ {lazy}, eager ≥ {eager}, between: eager under pressure"
            )?,
            (Some(lazy), None) => write!(f, "lazy ≤ {lazy}, deeper levels eager under pressure")?,
            (None, Some(eager)) => {
                write!(f, "eager ≥ {eager}, shallower levels eager under pressure")?
            }
            (None, None) => f.write_str("every level eager under pressure")?,
        }
        if self.raw_depth0 {
            f.write_str(", raw level 0")?;
        }
        Ok(())
    }
}

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
    /// The pool's residency, as a fraction of its budget, above which levels between
    /// `lazy_below` and `eager_from` are backed eagerly.
    pub const PRESSURE: f64 = 0.75;

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

    /// Refuses thresholds that overlap (a level both lazy and eager), with a message naming
    /// both.
    pub fn validate(&self) -> Result<(), String> {
        match (self.lazy_below, self.eager_from) {
            (Some(lazy), Some(eager)) if lazy >= eager => Err(format!(
                "lazy_below ({lazy}) must be below eager_from ({eager}): a level cannot be both"
            )),
            _ => Ok(()),
        }
    }

    /// How a chunk sealed at `depth` is backed; `pressed` says whether the pool is under
    /// pressure (called only for depths between the two thresholds).
    pub fn backing(&self, depth: u8, pressed: impl FnOnce() -> bool) -> Backing {
        match (self.lazy_below, self.eager_from) {
            (Some(lazy), _) if depth <= lazy => Backing::Lazy,
            (_, Some(eager)) if depth >= eager => Backing::Eager,
            _ if pressed() => Backing::Eager,
            _ => Backing::Lazy,
        }
    }
}

/// An arrangement's pager: the pool its chunks page through, the policy, and the stable bytes
/// of pooled bodies read by cursors (see [`crate::chunk`]), which it keeps resident under a
/// cap by releasing the least recently opened. Shared (`Rc`) by the arrangement's [`Paging`]
/// and every chunk it sealed.
#[derive(Debug)]
pub(crate) struct Pager {
    /// Names the paging (its arrangements) in errors: `paging #id`, numbered per process in
    /// the order `Paging`s are enabled.
    id: u64,
    pool: Pool,
    policy: PagingPolicy,
    /// The scratch file stable bodies are stored in, made on first use.
    arena: OnceCell<StableArena>,
    /// Stable bodies resident (opened since last released), least recently opened first;
    /// entries of dropped bodies are skipped (and swept out now and then).
    opened: RefCell<VecDeque<Weak<StableBody>>>,
    /// Bodies in `opened` that are alive and resident.
    opened_live: Cell<usize>,
    stable: Cell<StableBytesReport>,
}

/// A pooled body's encoded bytes, stored once for by-reference cursor reads: owned by its
/// chunk (valid until the chunk drops), released by its pager when over the cap.
#[derive(Debug)]
pub(crate) struct StableBody {
    bytes: StableBytes,
    /// Whether counted resident (opened and not released since).
    resident: Cell<bool>,
}

impl StableBody {
    /// The stored body, valid for as long as `self` is borrowed.
    #[inline(always)]
    pub(crate) fn bytes(&self) -> &[u8] {
        self.bytes.as_bytes()
    }
}

/// The stable bytes of pooled bodies read by cursors (variable-length types; see
/// [`crate::PagedCursor`]): what [`Paging::stable_bytes`] reports.
///
/// A pooled chunk read by a cursor copies its encoded body once into a read-only, file-backed
/// mapping it owns (so items borrowed from it stay valid as long as the chunk is borrowed);
/// the pager keeps at most `cap` bytes of them resident, plus the bodies live cursors are
/// reading (one per batch being read), releasing the least recently opened chunks' pages,
/// which a later read faults back in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct StableBytesReport {
    /// Bytes counted resident now: bodies opened by a cursor and not released since.
    pub resident: usize,
    /// The most `resident` has been.
    pub resident_peak: usize,
    /// Bytes of all stable bodies alive (resident or released; on disk or in page cache).
    pub total: usize,
    /// The most `total` has been.
    pub total_peak: usize,
    /// Bodies released to keep `resident` under the cap.
    pub releases: u64,
    /// The cap on `resident`: min(budget / 2, 64 MiB), read at each open.
    pub cap: usize,
    /// Bytes stored on the heap instead (the scratch directory is on tmpfs, or a write
    /// failed): never released. Zero on a real disk.
    pub heap_bytes: u64,
}

/// The next [`Pager`] id.
static NEXT_PAGER_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl Pager {
    /// The id that names this paging (and the arrangements given it) in errors.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// The most bytes of stable bodies kept resident: min(budget / 2, 64 MiB).
    pub(crate) const STABLE_CAP: usize = 64 << 20;

    fn new(pool: &Pool, policy: PagingPolicy) -> Self {
        Pager {
            id: NEXT_PAGER_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            pool: pool.clone(),
            policy,
            arena: OnceCell::new(),
            opened: RefCell::new(VecDeque::new()),
            opened_live: Cell::new(0),
            stable: Cell::new(StableBytesReport::default()),
        }
    }

    /// The pool chunks page through.
    pub(crate) fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The stable-bytes counts (see [`StableBytesReport`]).
    pub(crate) fn stable_report(&self) -> StableBytesReport {
        let mut report = self.stable.get();
        report.cap = self.stable_cap();
        report.heap_bytes = self.arena.get().map_or(0, |a| a.stats().heap_bytes);
        report
    }

    fn stable_cap(&self) -> usize {
        usize::try_from(self.pool.budget() / 2)
            .unwrap_or(usize::MAX)
            .min(Self::STABLE_CAP)
    }

    /// The scratch file of stable bodies: in the pool's extent directory, else (other
    /// backends, or that directory is tmpfs) the system temp dir, else `/var/tmp`; heap
    /// copies, with a warning, if all of them are refused.
    fn arena(&self) -> &StableArena {
        self.arena.get_or_init(|| {
            let mut dirs = Vec::new();
            if let ExtentBackend::File { dir: Some(dir), .. } = &self.pool.config().extents {
                dirs.push(dir.clone());
            }
            dirs.push(std::env::temp_dir());
            dirs.push("/var/tmp".into());
            let (last, first) = dirs.split_last().expect("two candidates");
            first
                .iter()
                .find_map(|dir| StableArena::new(dir).ok())
                .unwrap_or_else(|| StableArena::new_or_heap(last))
        })
    }

    fn update(&self, f: impl FnOnce(&mut StableBytesReport)) {
        let mut report = self.stable.get();
        f(&mut report);
        report.resident_peak = report.resident_peak.max(report.resident);
        report.total_peak = report.total_peak.max(report.total);
        self.stable.set(report);
    }

    /// Stores a pooled body's bytes as a stable body, opened.
    pub(crate) fn store(&self, body: &[u8]) -> Rc<StableBody> {
        let stable = Rc::new(StableBody {
            bytes: self.arena().store(body),
            resident: Cell::new(false),
        });
        self.update(|r| r.total += body.len());
        self.open(&stable);
        stable
    }

    /// Notes that a cursor reads `body` (its pages come back if released): counts it resident
    /// and releases the least recently opened others while over the cap.
    pub(crate) fn open(&self, body: &Rc<StableBody>) {
        if body.resident.get() {
            return;
        }
        body.resident.set(true);
        let len = body.bytes.len();
        self.update(|r| r.resident += len);
        self.opened.borrow_mut().push_back(Rc::downgrade(body));
        self.opened_live.set(self.opened_live.get() + 1);
        self.trim(Some(body));
    }

    /// Releases the least recently opened bodies that no live cursor reads (nor `keep`),
    /// each looked at once, until resident bytes are under the cap. Called when a body is
    /// opened and when a cursor that read one drops.
    pub(crate) fn trim(&self, keep: Option<&Rc<StableBody>>) {
        let cap = self.stable_cap();
        if self.stable.get().resident <= cap {
            return;
        }
        let mut opened = self.opened.borrow_mut();
        let mut budget = opened.len();
        while self.stable.get().resident > cap && budget > 0 {
            budget -= 1;
            let Some(old) = opened.pop_front() else { break };
            let Some(old_body) = old.upgrade() else {
                continue;
            };
            // Held by its chunk, by the upgrade above, and by any cursor reading it.
            if Rc::strong_count(&old_body) > 2 || keep.is_some_and(|b| Rc::ptr_eq(&old_body, b)) {
                opened.push_back(old);
                continue;
            }
            old_body.bytes.release();
            old_body.resident.set(false);
            self.opened_live.set(self.opened_live.get() - 1);
            let len = old_body.bytes.len();
            self.update(|r| {
                r.resident -= len;
                r.releases += 1;
            });
        }
        // Entries of dropped bodies: sweep them out once they outnumber the live ones.
        if opened.len() > 2 * self.opened_live.get() + 64 {
            opened.retain(|w| w.strong_count() > 0);
        }
    }

    /// Uncounts a stable body whose chunk is dropping.
    pub(crate) fn forget(&self, body: &StableBody) {
        let len = body.bytes.len();
        let resident = body.resident.get();
        if resident {
            self.opened_live.set(self.opened_live.get() - 1);
        }
        self.update(|r| {
            r.total -= len;
            if resident {
                r.resident -= len;
            }
        });
    }

    /// Whether a sealed chunk body of `bytes` is large enough to be worth paging.
    pub(crate) fn should_page(&self, bytes: usize) -> bool {
        bytes >= self.policy.min_bytes
    }

    /// Pool hints for a chunk at `depth`.
    pub(crate) fn hints(&self, depth: u8) -> ChunkHints {
        let pool = &self.pool;
        let backing = self.policy.backing(depth, || {
            pool.resident_bytes() as f64 > PagingPolicy::PRESSURE * pool.budget() as f64
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

/// Whether and how an arrangement pages: disabled, or a pool and a [`PagingPolicy`].
///
/// Hand it to [`crate::ArrangePaged::arrange_by_key_paged`]; the arrangement's type is the
/// same either way. Cheap to clone (an `Rc`), and not `Send`: create one per worker, inside
/// the worker closure, from a [`Pool`] cloned into it. Arrangements given clones of one
/// `Paging` share its stable-bytes count and cap.
///
/// # Example
///
/// A paged arrangement (at a budget far below its size, so chunks are written to extents
/// and read back) joined with another: the output is the same as with paging off.
///
/// ```
/// use differential_dataflow::input::Input;
/// use spillway_pool::{ExtentBackend, Pool, PoolConfig};
/// use spillway_trace::{ArrangePaged, Paging, PagingPolicy};
/// use std::sync::{Arc, Mutex};
///
/// let pool = Pool::new(PoolConfig {
///     budget: 1 << 20,
///     extents: ExtentBackend::Memory { capacity: None },
///     ..PoolConfig::default()
/// })?;
/// let joined = Arc::new(Mutex::new(0isize));
/// let (pool2, sink) = (pool.clone(), joined.clone());
/// timely::execute_directly(move |worker| {
///     // Page every chunk of at least 4 KiB (the default waits for 64 KiB ones).
///     let policy = PagingPolicy { min_bytes: 4096, ..PagingPolicy::default() };
///     let paging = Paging::with_policy(&pool2, policy);
///     assert!(paging.is_enabled() && !Paging::disabled().is_enabled());
///     let (mut big, mut probe) = worker.dataflow::<u64, _, _>(|scope| {
///         let (big_in, big) = scope.new_collection::<(u64, u64), isize>();
///         let (probe_in, probe) = scope.new_collection::<(u64, ()), isize>();
///         let big = big.arrange_by_key_paged(&paging);
///         let probe = probe.arrange_by_key_paged(&paging);
///         big.join_core(probe, |_key, val, ()| Some(val))
///             .inspect(move |(_, _, diff)| *sink.lock().unwrap() += diff);
///         (big_in, probe_in)
///     });
///     for i in 0..200_000u64 {
///         big.update((i % 1000, i), 1); // 200 values for each of 1000 keys
///     }
///     for key in 0..10 {
///         probe.update((key, ()), 1);
///     }
/// });
/// assert_eq!(*joined.lock().unwrap(), 10 * 200);
/// assert!(pool.stats().extent_bytes_written > 0, "the big side paged out");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct Paging {
    pager: Option<Rc<Pager>>,
}

impl Paging {
    /// Chunks page through `pool` with the default policy.
    pub fn enabled(pool: &Pool) -> Self {
        Self::with_policy(pool, PagingPolicy::default())
    }

    /// Chunks page through `pool` with `policy`.
    pub fn with_policy(pool: &Pool, policy: PagingPolicy) -> Self {
        Paging {
            pager: Some(Rc::new(Pager::new(pool, policy))),
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

    /// The number that names this paging, and the arrangements given it or a clone, in read
    /// errors (`paging #3`); `None` when paging is off.
    pub fn id(&self) -> Option<u64> {
        self.pager.as_ref().map(|pager| pager.id())
    }

    /// The stable bytes of pooled bodies read by cursors (variable-length types only) in the
    /// arrangements of this worker given this paging or a clone of it: resident now and at
    /// peak (at most [`StableBytesReport::cap`] plus one body), and in total; zeros when
    /// paging is off. See [`StableBytesReport`].
    pub fn stable_bytes(&self) -> StableBytesReport {
        self.pager
            .as_ref()
            .map_or_else(StableBytesReport::default, |pager| pager.stable_report())
    }

    /// The pager chunks carry, `None` when paging is disabled.
    pub(crate) fn pager(&self) -> Option<&Rc<Pager>> {
        self.pager.as_ref()
    }
}

/// A batcher call in progress.
#[derive(Clone)]
struct BatcherCall {
    /// The arrangement's pager (`None` when its paging is disabled).
    pager: Option<Rc<Pager>>,
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
    /// Installs a batcher call with `pager` (its arrangement's) on this thread; heads of
    /// chains stay resident while `keep_chain_heads`.
    pub(crate) fn enter(pager: Option<&Rc<Pager>>, keep_chain_heads: bool) -> Self {
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
pub(crate) fn batcher_pager() -> Option<Rc<Pager>> {
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

    #[cfg(feature = "serde")]
    #[test]
    fn policy_deserializes_from_json() {
        let policy: PagingPolicy = serde_json::from_str(
            r#"{"min_bytes": 4096, "raw_depth0": false, "lazy_below": null, "eager_from": 2}"#,
        )
        .unwrap();
        assert_eq!(
            policy,
            PagingPolicy {
                min_bytes: 4096,
                raw_depth0: false,
                lazy_below: None,
                eager_from: Some(2),
            }
        );
        // Missing fields take their defaults; serializing round-trips.
        let partial: PagingPolicy = serde_json::from_str(r#"{"eager_from": 3}"#).unwrap();
        assert_eq!(
            partial,
            PagingPolicy {
                eager_from: Some(3),
                ..PagingPolicy::default()
            }
        );
        let empty: PagingPolicy = serde_json::from_str("{}").unwrap();
        assert_eq!(empty, PagingPolicy::default());
        let json = serde_json::to_string(&policy).unwrap();
        assert_eq!(serde_json::from_str::<PagingPolicy>(&json).unwrap(), policy);
        // A misspelt field is an error, not a silently ignored setting.
        assert!(serde_json::from_str::<PagingPolicy>(r#"{"eager_form": 3}"#).is_err());
        assert!(serde_json::from_str::<PagingPolicy>(r#"{"lazy_below": 256}"#).is_err());
    }
}
