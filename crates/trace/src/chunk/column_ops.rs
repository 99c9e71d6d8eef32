//! The `Chunk` operations on columnar bodies: merge, advance, extract, and `settle`'s
//! combine and split, reading [`Source`]s and writing [`BodyBuilder`]s.
//!
//! Invariant: each takes sorted, consolidated chunks and gives sorted, consolidated chunks of
//! at most [`crate::records::TARGET_BYTES`] encoded bytes (or one larger record), exactly the
//! records the row algorithms of [`crate::records`] give for the same input; a chunk an
//! operation leaves whole is passed on as itself (a pooled chunk stays pooled).
//!
//! These are what variable-length records take ([`columnar_ops`]): keys and vals are copied
//! from body to body as bytes and compared as borrowed items, so a merge of `String`s
//! allocates per output chunk, not per record, where the row algorithms decode every chunk
//! into owned rows. Fixed-width records keep the row algorithms: decoding them is a copy, and
//! their merge gallops over whole runs (measured: see `doc/benchmarks.md`).

use std::cmp::Ordering;
use std::collections::VecDeque;
use std::rc::Rc;

use differential_dataflow::consolidation::consolidate;
use differential_dataflow::difference::Semigroup;
use differential_dataflow::lattice::Lattice;
use timely::progress::frontier::AntichainRef;
use timely::progress::{Antichain, Timestamp};

use super::body::PagedChunk;
use super::builder::{BodyBuilder, Source};
use crate::data::PagedData;
use crate::pager::Pager;
use crate::records::{fixed_update_bytes, Records};

/// Whether chunks of these types are merged, advanced, extracted and packed as columns
/// (variable-length records) rather than as decoded rows (fixed-width ones).
pub(super) const fn columnar_ops<K, V, T, R>() -> bool
where
    K: PagedData,
    V: PagedData,
    T: PagedData,
    R: PagedData,
{
    fixed_update_bytes::<K, V, T, R>().is_none()
}

/// The order of two sources' current records by `(key, val, time)`, on their encodings.
#[inline(always)]
fn order<K, V, T, R>(a: &Source<K, V, T, R>, b: &Source<K, V, T, R>) -> Ordering
where
    K: PagedData,
    V: PagedData,
    T: PagedData,
    R: PagedData,
{
    K::cmp_encoded(a.key_bytes(), b.key_bytes())
        .then_with(|| V::cmp_encoded(a.val_bytes(), b.val_bytes()))
        .then_with(|| T::cmp_encoded(a.time_bytes(), b.time_bytes()))
}

/// Whether `source`'s current `(key, val)` is the one encoded in `key` and `val`.
#[inline(always)]
fn same_key_val<K, V, T, R>(source: &Source<K, V, T, R>, key: &[u8], val: &[u8]) -> bool
where
    K: PagedData,
    V: PagedData,
    T: PagedData,
    R: PagedData,
{
    V::cmp_encoded(source.val_bytes(), val).is_eq()
        && K::cmp_encoded(source.key_bytes(), key).is_eq()
}

/// Output chunks a merge call makes at most before it returns: differential's merger hands
/// `merge` a burst of up to 8 chunks a side and the batcher whole chains, so this bounds the
/// batcher's packed output between settles (2 MiB), and amortizes the copy of a partly read
/// head ([`Source::rest`]) over that many chunks.
const MERGE_CHUNKS: usize = 8;

/// Merges the heads of `in1` and `in2` (both non-empty) until [`MERGE_CHUNKS`] full output
/// chunks are out or an input runs dry, pushing partly read heads back as their rest;
/// returns the records output.
pub(super) fn merge<K, V, T, R>(
    in1: &mut VecDeque<PagedChunk<K, V, T, R>>,
    in2: &mut VecDeque<PagedChunk<K, V, T, R>>,
    out: &mut VecDeque<PagedChunk<K, V, T, R>>,
    depth: u8,
    pager: Option<Rc<Pager>>,
) -> usize
where
    K: PagedData,
    V: PagedData,
    T: PagedData,
    R: PagedData + Semigroup,
{
    let mut a = Source::open(in1.pop_front().expect("non-empty"));
    let mut b = Source::open(in2.pop_front().expect("non-empty"));
    let mut builder = BodyBuilder::chunk();
    let (mut records, mut chunks) = (0, 0);
    let mut emit = |builder: &mut BodyBuilder<K, V, T, R>| {
        records += builder.len();
        chunks += 1;
        out.push_back(builder.finish(depth, pager.clone()));
        chunks < MERGE_CHUNKS
    };
    loop {
        if a.done() {
            let Some(next) = in1.pop_front() else { break };
            a = Source::open(next);
        }
        if b.done() {
            let Some(next) = in2.pop_front() else { break };
            b = Source::open(next);
        }
        let ord = order(&a, &b);
        let from = match ord {
            Ordering::Less => &mut a,
            Ordering::Greater => &mut b,
            Ordering::Equal => {
                let mut diff = a.diff();
                diff.plus_equals(&b.diff());
                if !diff.is_zero() {
                    let (key, val, time) = (a.key_bytes(), a.val_bytes(), a.time_bytes());
                    if !builder.fits(key, val, time.len(), diff.encoded_len())
                        && !emit(&mut builder)
                    {
                        break;
                    }
                    builder.push_made(key, val, &a.time(), &diff);
                }
                a.step();
                b.step();
                if builder.is_full() && !emit(&mut builder) {
                    break;
                }
                continue;
            }
        };
        if !builder.fits(
            from.key_bytes(),
            from.val_bytes(),
            from.time_bytes().len(),
            from.diff_bytes().len(),
        ) && !emit(&mut builder)
        {
            break;
        }
        builder.push_from(from);
        from.step();
        if builder.is_full() && !emit(&mut builder) {
            break;
        }
    }
    if builder.len() > 0 {
        emit(&mut builder);
    }
    if let Some(rest) = a.rest() {
        in1.push_front(rest);
    }
    if let Some(rest) = b.rest() {
        in2.push_front(rest);
    }
    records
}

/// Advances the times of `input`'s chunks by `frontier` and consolidates each `(key, val)`
/// group into `out`; unless `done`, withholds the last group (it may go on in the next
/// call), pushing it back to `input`.
pub(super) fn advance<K, V, T, R>(
    input: &mut VecDeque<PagedChunk<K, V, T, R>>,
    frontier: AntichainRef<T>,
    done: bool,
    out: &mut VecDeque<PagedChunk<K, V, T, R>>,
) where
    K: PagedData,
    V: PagedData,
    T: PagedData + Lattice,
    R: PagedData + Semigroup,
{
    if input.is_empty() {
        return;
    }
    let depth = input.iter().map(|c| c.depth()).max().unwrap_or(0);
    let pager = input.iter().find_map(|c| c.pager().cloned());
    let chunks: Vec<_> = input.drain(..).collect();
    let cut = if done {
        (chunks.len(), 0)
    } else {
        last_group_start(&chunks)
    };
    let mut group = Group::default();
    let mut builder = BodyBuilder::chunk();
    let mut emit = |builder: &mut BodyBuilder<K, V, T, R>| {
        if builder.len() > 0 {
            out.push_back(builder.finish(depth, pager.clone()));
        }
    };
    for (c, chunk) in chunks.iter().enumerate().take(cut.0 + 1) {
        let mut source = Source::open(chunk.clone());
        let end = if c == cut.0 { cut.1 } else { source.len() };
        while source.position() < end {
            if !group.is_open() || !same_key_val(&source, &group.key, &group.val) {
                group.close(&mut builder, &mut emit);
                group.open(source.key_bytes(), source.val_bytes());
            }
            let mut time = source.time();
            time.advance_by(frontier);
            group.push(time, source.diff());
            source.step();
        }
    }
    group.close(&mut builder, &mut emit);
    emit(&mut builder);
    if cut.0 < chunks.len() {
        let mut source = Source::open(chunks[cut.0].clone());
        while source.position() < cut.1 {
            source.step();
        }
        input.extend(source.rest());
        input.extend(chunks[cut.0 + 1..].iter().cloned());
    }
}

/// Where the last `(key, val)` group of `chunks` starts: `(chunk, record)`.
fn last_group_start<K, V, T, R>(chunks: &[PagedChunk<K, V, T, R>]) -> (usize, usize)
where
    K: PagedData,
    V: PagedData,
    T: PagedData,
    R: PagedData,
{
    let mut last = Source::open(chunks[chunks.len() - 1].clone());
    last.rewind_to(last.len() - 1);
    let (key, val) = (last.key_bytes().to_vec(), last.val_bytes().to_vec());
    for c in (0..chunks.len()).rev() {
        let mut source = Source::open(chunks[c].clone());
        let mut at = source.len();
        while at > 0 {
            source.rewind_to(at - 1);
            if !same_key_val(&source, &key, &val) {
                break;
            }
            at -= 1;
        }
        if at > 0 {
            return (c, at);
        }
    }
    (0, 0)
}

/// The `(key, val)` group an advance is consolidating: its key and val encodings, and its
/// advanced times and diffs (buffers reused from group to group).
struct Group<T, R> {
    key: Vec<u8>,
    val: Vec<u8>,
    updates: Vec<(T, R)>,
    open: bool,
    /// Whether the advanced times are still strictly increasing (then nothing merges).
    in_order: bool,
}

impl<T, R> Default for Group<T, R> {
    fn default() -> Self {
        Group {
            key: Vec::new(),
            val: Vec::new(),
            updates: Vec::new(),
            open: false,
            in_order: true,
        }
    }
}

impl<T: PagedData, R: PagedData + Semigroup> Group<T, R> {
    fn is_open(&self) -> bool {
        self.open
    }

    fn open(&mut self, key: &[u8], val: &[u8]) {
        self.key.clear();
        self.key.extend_from_slice(key);
        self.val.clear();
        self.val.extend_from_slice(val);
        self.open = true;
        self.in_order = true;
    }

    fn push(&mut self, time: T, diff: R) {
        if let Some(last) = self.updates.last() {
            self.in_order &= last.0 < time;
        }
        self.updates.push((time, diff));
    }

    /// Consolidates the group (if advancing reordered or merged its times) and appends it to
    /// `builder`, handing each full chunk to `emit`.
    fn close<K: PagedData, V: PagedData>(
        &mut self,
        builder: &mut BodyBuilder<K, V, T, R>,
        emit: &mut impl FnMut(&mut BodyBuilder<K, V, T, R>),
    ) {
        if !self.open {
            return;
        }
        self.open = false;
        if !self.in_order {
            // Advancing reordered or merged times: sort, sum equal times, drop zeros.
            consolidate(&mut self.updates);
        }
        for (time, diff) in self.updates.drain(..) {
            if diff.is_zero() {
                continue;
            }
            if !builder.fits(&self.key, &self.val, time.encoded_len(), diff.encoded_len()) {
                emit(builder);
            }
            builder.push_made(&self.key, &self.val, &time, &diff);
            if builder.is_full() {
                emit(builder);
            }
        }
    }
}

/// Splits `head` by `frontier`: the whole chunk into `keep` (times at or beyond the
/// frontier, each noted in `residual`) or `ship` when it goes one way, else a packed piece
/// into each.
pub(super) fn extract<K, V, T, R>(
    head: PagedChunk<K, V, T, R>,
    frontier: AntichainRef<T>,
    residual: &mut Antichain<T>,
    keep: &mut VecDeque<PagedChunk<K, V, T, R>>,
    ship: &mut VecDeque<PagedChunk<K, V, T, R>>,
) where
    K: PagedData,
    V: PagedData,
    T: PagedData + Timestamp,
    R: PagedData,
{
    let (depth, pager) = (head.depth(), head.pager().cloned());
    let mut source = Source::open(head);
    let mut kept = 0;
    while !source.done() {
        let time = source.time();
        if frontier.less_equal(&time) {
            residual.insert_ref(&time);
            kept += 1;
        }
        source.step();
    }
    if kept == source.len() {
        // The chunk as read: itself if columnar, packed once if it was rows.
        keep.push_back(source.into_chunk());
    } else if kept == 0 {
        ship.push_back(source.into_chunk());
    } else {
        let shipped = source.len() - kept;
        let mut k = BodyBuilder::piece(kept, source.share(kept));
        let mut s = BodyBuilder::piece(shipped, source.share(shipped));
        source.rewind_to(0);
        while !source.done() {
            if frontier.less_equal(&source.time()) {
                k.push_from(&source);
            } else {
                s.push_from(&source);
            }
            source.step();
        }
        keep.push_back(k.finish(depth, pager.clone()));
        ship.push_back(s.finish(depth, pager));
    }
}

/// `settle`'s combine: a run of chunks that fit one chunk together, as one packed chunk.
pub(super) fn combine<K, V, T, R>(run: Vec<PagedChunk<K, V, T, R>>) -> PagedChunk<K, V, T, R>
where
    K: PagedData,
    V: PagedData,
    T: PagedData,
    R: PagedData,
{
    let depth = run.iter().map(|c| c.depth()).max().unwrap_or(0);
    let pager = run.iter().find_map(|c| c.pager().cloned());
    let records = run.iter().map(|c| c.len_records()).sum();
    if records == 0 {
        // Empty chunks (a reduce may push one) combine into an empty chunk, as rows would.
        return PagedChunk::resident(Records::default(), depth, pager);
    }
    let bytes = run.iter().map(|c| c.body_bytes()).sum();
    let mut builder = BodyBuilder::piece(records, bytes);
    for chunk in run {
        let mut source = Source::open(chunk);
        while !source.done() {
            builder.push_from(&source);
            source.step();
        }
    }
    builder.finish(depth, pager)
}

/// `settle`'s split: `chunk`'s first `n` records (0 < n < its length) and the rest, packed.
#[allow(clippy::type_complexity)]
pub(super) fn split<K, V, T, R>(
    chunk: PagedChunk<K, V, T, R>,
    n: usize,
) -> (PagedChunk<K, V, T, R>, PagedChunk<K, V, T, R>)
where
    K: PagedData,
    V: PagedData,
    T: PagedData,
    R: PagedData,
{
    let (depth, pager) = (chunk.depth(), chunk.pager().cloned());
    let mut source = Source::open(chunk);
    let mut head = BodyBuilder::piece(n, source.share(n));
    while source.position() < n {
        head.push_from(&source);
        source.step();
    }
    let rest = source.rest().expect("a split leaves records");
    (head.finish(depth, pager), rest)
}

/// How many leading records of `chunk` fit in `limit` encoded bytes (at least one): where an
/// over-sized chunk is cut.
pub(super) fn fitting_records<K, V, T, R>(chunk: &PagedChunk<K, V, T, R>, limit: usize) -> usize
where
    K: PagedData,
    V: PagedData,
    T: PagedData,
    R: PagedData,
{
    let mut source = Source::open(chunk.clone());
    let mut bytes = 0;
    while !source.done() {
        let b = source.record_bytes();
        if source.position() > 0 && bytes + b > limit {
            break;
        }
        bytes += b;
        source.step();
    }
    source.position()
}

#[cfg(test)]
mod tests {
    use super::*;
    use differential_dataflow::consolidation::consolidate_updates;
    use timely::order::Product;

    use crate::records::{run_bytes, Update, TARGET_BYTES};

    fn rng(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    type S = Update<String, String, u64, i64>;

    /// A sorted, consolidated run of string records: keys of a few widths, some vals long
    /// enough that a few make a chunk.
    fn run(seed: &mut u64, n: usize, wide: bool) -> Vec<S> {
        let mut v: Vec<S> = (0..n)
            .map(|_| {
                let k = format!("key/{:03}", rng(seed) % 40);
                let len = if wide && rng(seed).is_multiple_of(4) {
                    40_000 + (rng(seed) % 30_000) as usize
                } else {
                    (rng(seed) % 12) as usize
                };
                let v = "v".repeat(len) + &(rng(seed) % 3).to_string();
                let d = if rng(seed).is_multiple_of(3) { -1 } else { 1 };
                ((k, v), rng(seed) % 5, d)
            })
            .collect();
        consolidate_updates(&mut v);
        v
    }

    /// `records` as a queue of chunks of random lengths (rows or packed).
    fn chunks<K: PagedData, V: PagedData, T: PagedData, R: PagedData>(
        seed: &mut u64,
        records: &[Update<K, V, T, R>],
    ) -> VecDeque<PagedChunk<K, V, T, R>> {
        let mut out = VecDeque::new();
        let mut at = 0;
        while at < records.len() {
            let end = (at + 1 + (rng(seed) % 30) as usize).min(records.len());
            let chunk = PagedChunk::from_records(records[at..end].to_vec());
            out.push_back(if rng(seed).is_multiple_of(2) {
                chunk.packed()
            } else {
                chunk
            });
            at = end;
        }
        out
    }

    fn contents<K: PagedData, V: PagedData, T: PagedData, R: PagedData>(
        chunks: impl IntoIterator<Item = PagedChunk<K, V, T, R>>,
    ) -> Vec<Update<K, V, T, R>> {
        let mut all = Vec::new();
        for chunk in chunks {
            let records = chunk.materialize();
            assert!(!records.is_empty());
            assert!(
                run_bytes(records.as_slice()) <= TARGET_BYTES || records.len() == 1,
                "a chunk over the target"
            );
            all.extend_from_slice(records.as_slice());
        }
        all
    }

    fn merged<K, V, T, R>(
        seed: &mut u64,
        a: &[Update<K, V, T, R>],
        b: &[Update<K, V, T, R>],
    ) -> Vec<Update<K, V, T, R>>
    where
        K: PagedData,
        V: PagedData,
        T: PagedData,
        R: PagedData + Semigroup,
    {
        let (mut in1, mut in2) = (chunks(seed, a), chunks(seed, b));
        let mut out = VecDeque::new();
        while !in1.is_empty() && !in2.is_empty() {
            let before = out.len();
            merge(&mut in1, &mut in2, &mut out, 1, None);
            assert!(out.len() <= before + MERGE_CHUNKS, "a bounded burst a call");
        }
        out.extend(in1);
        out.extend(in2);
        contents(out)
    }

    #[test]
    fn merge_matches_consolidation() {
        let mut seed = 0x9E37_79B9_7F4A_7C15;
        for round in 0..200 {
            let wide = round % 10 == 0;
            let (a, b) = (run(&mut seed, 150, wide), run(&mut seed, 150, wide));
            let mut want = [a.clone(), b.clone()].concat();
            consolidate_updates(&mut want);
            assert_eq!(merged(&mut seed, &a, &b), want);
            // Fixed-width records through the same code.
            let num = |r: &S| {
                (
                    (r.0 .0.len() as u64 * 7 + r.0 .1.len() as u64, r.1),
                    r.1,
                    r.2,
                )
            };
            let (mut x, mut y): (Vec<_>, Vec<_>) =
                (a.iter().map(num).collect(), b.iter().map(num).collect());
            consolidate_updates(&mut x);
            consolidate_updates(&mut y);
            let mut want = [x.clone(), y.clone()].concat();
            consolidate_updates(&mut want);
            assert_eq!(merged(&mut seed, &x, &y), want);
        }
    }

    #[test]
    fn advance_matches_consolidation_across_calls() {
        let mut seed = 0xD1B5_4A32_D192_ED03;
        for round in 0..200 {
            let records = run(&mut seed, 200, round % 10 == 0);
            let f = rng(&mut seed) % 6;
            let frontier = Antichain::from_elem(f);
            let mut input = VecDeque::new();
            let mut out = VecDeque::new();
            for chunk in chunks(&mut seed, &records) {
                input.push_back(chunk);
                advance(&mut input, frontier.borrow(), false, &mut out);
            }
            advance(&mut input, frontier.borrow(), true, &mut out);
            assert!(input.is_empty());
            let mut want: Vec<S> = records
                .iter()
                .map(|(kv, t, d)| (kv.clone(), (*t).max(f), *d))
                .collect();
            consolidate_updates(&mut want);
            assert_eq!(contents(out), want);
        }
    }

    #[test]
    fn advance_by_a_partially_ordered_frontier() {
        type P = Update<String, u64, Product<u64, u32>, i64>;
        let mut seed = 0xA076_1D64_78BD_642F;
        for _ in 0..100 {
            let mut records: Vec<P> = (0..120)
                .map(|_| {
                    let kv = (format!("k{}", rng(&mut seed) % 8), rng(&mut seed) % 2);
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
            consolidate_updates(&mut records);
            let m = rng(&mut seed) % 3;
            let mut frontier = Antichain::new();
            frontier.insert(Product::new(m, 1 + (rng(&mut seed) % 3) as u32));
            frontier.insert(Product::new(m + 1, 0));
            let mut input = chunks(&mut seed, &records);
            let mut out = VecDeque::new();
            advance(&mut input, frontier.borrow(), true, &mut out);
            let mut want: Vec<P> = records
                .iter()
                .map(|(kv, t, d)| {
                    let mut t = *t;
                    t.advance_by(frontier.borrow());
                    (kv.clone(), t, *d)
                })
                .collect();
            consolidate_updates(&mut want);
            assert_eq!(contents(out), want);
        }
    }

    #[test]
    fn extract_combine_and_split_keep_every_record() {
        let mut seed = 0x2545_F491_4F6C_DD1D;
        for _ in 0..100 {
            let records = run(&mut seed, 60, false);
            let f = rng(&mut seed) % 6;
            let frontier = Antichain::from_elem(f);
            let (mut keep, mut ship, mut residual) =
                (VecDeque::new(), VecDeque::new(), Antichain::new());
            for chunk in chunks(&mut seed, &records) {
                extract(
                    chunk,
                    frontier.borrow(),
                    &mut residual,
                    &mut keep,
                    &mut ship,
                );
            }
            let kept: Vec<S> = records.iter().filter(|r| r.1 >= f).cloned().collect();
            let shipped: Vec<S> = records.iter().filter(|r| r.1 < f).cloned().collect();
            assert_eq!(contents(keep), kept);
            assert_eq!(contents(ship), shipped);
            let want = kept.iter().map(|r| r.1).min();
            assert_eq!(residual.elements().first().copied(), want);
            if records.len() >= 2 {
                let whole = combine(chunks(&mut seed, &records).into_iter().collect());
                assert_eq!(contents([whole.clone()]), records);
                let n = 1 + (rng(&mut seed) as usize % (records.len() - 1));
                let (head, rest) = split(whole, n);
                assert_eq!(contents([head, rest]), records);
            }
        }
    }

    #[test]
    fn empty_chunks_combine_and_open_as_read() {
        let empty = || PagedChunk::<String, String, u64, i64>::from_records(Vec::new());
        assert_eq!(combine(vec![empty(), empty()]).len_records(), 0);
        let one = PagedChunk::from_records(vec![(("k".to_string(), "v".to_string()), 0, 1)]);
        let combined = combine(vec![empty(), one, empty()]);
        assert_eq!(contents([combined]).len(), 1);
        assert!(Source::open(empty()).done());
    }

    #[test]
    fn built_bodies_match_sealed_ones() {
        // A body built from bytes has the layout and bytes of the same records sealed from
        // rows.
        let mut seed = 0x1234_5678_9ABC_DEF1;
        for _ in 0..50 {
            let records = run(&mut seed, 80, false);
            let built = combine(vec![PagedChunk::from_records(records.clone())]);
            let sealed = PagedChunk::from_records(records.clone()).packed();
            assert_eq!(built.body_bytes(), sealed.body_bytes());
            assert_eq!(contents([built.clone()]), records);
            assert_eq!(built.fences().0 .0, sealed.fences().0 .0);
            assert_eq!(built.fences().1 .2, sealed.fences().1 .2);
            assert_eq!(fitting_records(&built, 64), fitting_records(&sealed, 64));
        }
    }
}
