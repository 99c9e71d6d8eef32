//! What a paged chunk can hold: [`PagedData`], and the column codec of pooled bodies.
//!
//! Invariant: a column read back returns exactly the values written into it, in order;
//! [`PagedData::read_item`] is `Some` exactly for fixed-width types, so only those are ever
//! read by value from a cursor's pin; borrowed items ([`column_item`], [`PagedData::borrow`])
//! borrow from bytes that outlive the borrow (a pin held for it, or a chunk's stable bytes;
//! see [`crate::chunk`]) and never allocate.
//!
//! Every key, value, time and diff type of a paged arrangement is [`PagedData`], and the
//! trait is implemented *structurally*: per type, with `WIDTH` computed in const context from
//! the parts' widths and the item built from the parts' items. There are two kinds, and the
//! kind decides how a cursor reads a pooled body:
//! - **fixed-width**, `WIDTH = Some(w)` (integers, `bool`, `char`, `()`, `Duration`,
//!   `Present`, and every composite of fixed-width parts: tuples, arrays, `Option`, `Product`,
//!   `Wrapping`, `Reverse`, derived structs and enums): a column is a run of `w`-byte
//!   encodings, read in place from the cursor's pin; the item of a fixed-width part is the
//!   value itself (`u64`, `(u64, u32)`, `Product<u64, u64>`), so these come back **by value**
//!   ([`crate::FixedWidth`] names the types whose item is `Self`);
//! - **variable-length**, `WIDTH = None` (`String`, `Vec<T>`, and every composite with a
//!   variable-length part: `(String, u64)`, `Option<String>`, `(u32, Vec<String>)`): a
//!   column is `n` little-endian `u64` end offsets followed by the concatenated encodings,
//!   and a cursor returns items **borrowed** from the encoded bytes: `&'a str` for `String`,
//!   `&'a [u8]` for `Vec<u8>`, [`Seq<'a, T>`](crate::Seq) for other vectors, and for a
//!   composite the same composite of its parts' items (`(&'a str, u64)`,
//!   `Option<&'a str>`): no decode, no allocation per item. Items must borrow from the chunk,
//!   not from a pin the cursor may drop, so a pooled chunk's cursor reads come from the
//!   chunk's *stable bytes* (see [`crate::chunk`]); resident bodies hand out
//!   [`PagedData::item`] of the resident value.
//!
//! A composite's encoding is its parts' encodings in order (see [`crate::FieldWriter`]):
//! fixed-width parts take their width, and each variable-length part but the last is
//! preceded by its length, so [`PagedData::borrow`] splits the bytes by arithmetic and the
//! fixed-width composites keep exactly the layout of their parts laid end to end.
//!
//! A chunk is read by value only when all four of its types are fixed-width. Nothing orders
//! encoded bytes: every comparison (fences, merges, cursors, lookups) is on items, and an
//! item orders as its owned value does (`&str` as `String`, `(A::Item, B::Item)` as
//! `(A, B)`), so an encoding need only round-trip.
//!
//! One container serves every type: [`ItemColumn<X>`] holds owned values and hands out their
//! items, so a fixed-width column indexes by value exactly as the `Vec<u64>` it wraps.
//!
//! # Your own types: `#[derive(PagedData)]`
//! The derive (crate `spillway-derive`, re-exported as `spillway_trace::PagedData` and
//! `spillway::PagedData`) encodes a struct's fields, or an enum's tag byte and its variant's
//! fields, as a composite's parts. A type whose fields are all fixed-width by their spelling
//! (or that says `#[paged(by_value)]`, or has no fields) is read by value (`Item<'a> = Self`,
//! so it must be `Copy`); any other gets a generated `FooRef<'a>` of the same shape whose
//! fields are the fields' items, ordered lexicographically by field and by variant index.
//! So **the type's `Ord` must be the derived one** (`#[derive(Ord)]`, fields in declaration
//! order): the trait's contract that items order as values do rests on it.
//!
//! Why not the `columnar` crate's `Columnar` derive (columnar 0.13, which differential
//! already depends on): its unit of encoding is a *container* (a struct of columns, one
//! `Vec` per field, recursively), serialized as a list of `u64`-aligned byte slices through
//! `AsBytes`/`FromBytes`, and read back by reconstructing the borrowed container from those
//! aligned slices. A paged chunk needs the opposite grain: `X::borrow(bytes)` of one value's
//! bytes at any offset of an lz4-decoded body (no alignment promise), a by-value read at a
//! constant offset for fixed-width rows, and an item that orders as the value does (columnar's
//! `Ref` types are `Copy` but `Ord` only on request, and `u64`'s is `&'a u64`, not by value).
//! Building on it would mean a second, per-item codec on top of its types anyway, and giving
//! up the by-value path the `u64` join's speed rests on. Its containers remain the natural
//! fit for a columnar *resident* body (issue 13 item 5), where whole columns are built at once.

use std::fmt::Debug;

use differential_dataflow::trace::implementations::BatchContainer;

/// A type a paged chunk can store: how it encodes into a pool slot, and how cursors return it.
///
/// Provided for every integer, `bool`, `char`, `()`, `Duration`, `Present`, `String`,
/// `Vec<T>`, and for tuples (to 12 fields), arrays, `Option`, `Product`, `Wrapping` and
/// `Reverse` of `PagedData` parts; `#[derive(PagedData)]` implements it for your own structs
/// and enums (see [`derive@crate::PagedData`]).
///
/// An implementation must round-trip (`into_owned(borrow(bytes))` of what `encode` wrote is
/// an equal value) and keep `WIDTH` and `read_item` in step: `WIDTH = Some(w)` means every
/// value encodes in exactly `w` bytes and `read_item` returns `Some`; `WIDTH = None` means
/// `read_item` returns `None`, and items may borrow from the chunk. `item` and `borrow` must
/// agree with `Ord`: `a.item() < b.item()` exactly when `a < b`.
pub trait PagedData: Ord + Clone + 'static {
    /// What a cursor returns: `Self` for fixed-width types, a borrowed form otherwise
    /// (`&'a str`, `&'a [u8]`, a tuple of its parts' items, ...).
    type Item<'a>: Copy + Ord + Debug;
    /// differential's container for these items (the cursor's `KeyContainer` and so on):
    /// [`ItemColumn<Self>`] for every provided type.
    type Container: for<'a> BatchContainer<ReadItem<'a> = Self::Item<'a>, Owned = Self>;
    /// How a `Vec<Self>` reads back: [`crate::Elements`] (as a [`crate::Seq`]) for every type
    /// but `u8`, whose vectors read as `&[u8]` ([`crate::Bytes`]).
    type Seq: SeqForm<Self>;
    /// `Some(w)` when every value encodes in exactly `w` bytes.
    const WIDTH: Option<usize>;

    /// The item for a resident value.
    fn item(&self) -> Self::Item<'_>;
    /// Bytes of this value's encoding.
    fn encoded_len(&self) -> usize;
    /// Writes the encoding into `out` (exactly `encoded_len` bytes).
    fn encode(&self, out: &mut [u8]);
    /// Decodes a value from exactly the bytes `encode` wrote.
    #[inline]
    fn decode(bytes: &[u8]) -> Self {
        Self::into_owned(Self::borrow(bytes))
    }
    /// Decodes an item by value, with no borrow: `Some` exactly for fixed-width types.
    #[inline(always)]
    fn read_item<'a>(_bytes: &[u8]) -> Option<Self::Item<'a>> {
        None
    }
    /// The item of exactly the bytes `encode` wrote, borrowed from them (by value for
    /// fixed-width types): no allocation.
    fn borrow(bytes: &[u8]) -> Self::Item<'_>;
    /// The order of the values encoded in `a` and `b` (as `encode` wrote them): by default
    /// that of their items; a type whose encoding orders bytewise as its values do
    /// (`String`) compares the bytes, with no decode or validation. What chunk operations
    /// compare records by as they copy them between bodies.
    #[inline(always)]
    fn cmp_encoded(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
        Self::reborrow(Self::borrow(a)).cmp(&Self::reborrow(Self::borrow(b)))
    }
    /// The item for a shorter borrow (items are covariant in meaning; composites of
    /// projections need this spelled out).
    fn reborrow<'b, 'a: 'b>(item: Self::Item<'a>) -> Self::Item<'b>;
    /// The owned value of an item (allocates for variable-length types).
    fn into_owned(item: Self::Item<'_>) -> Self;
    /// Overwrites `other` with the owned value of `item`, reusing its allocation where the
    /// type can (`String` does).
    #[inline(always)]
    fn clone_onto(item: Self::Item<'_>, other: &mut Self) {
        *other = Self::into_owned(item);
    }
}

/// How a `Vec<T>` of a [`PagedData`] type `T` reads back: the item type of `Vec<T>`.
///
/// Two forms are provided: [`crate::Elements`] for every `T` (a [`crate::Seq`] view over the
/// values or their encoding) and [`crate::Bytes`] for `u8` (`&[u8]`, upstream's and
/// columnar's form of bytes). The encoding of a `Vec<T>` does not depend on the form.
pub trait SeqForm<T>: 'static {
    /// The item of a `Vec<T>`.
    type Item<'a>: Copy + Ord + Debug;
    /// The item of resident values.
    fn of_slice(values: &[T]) -> Self::Item<'_>;
    /// The item of exactly the bytes `Vec<T>`'s `encode` wrote, borrowed from them.
    fn borrow(bytes: &[u8]) -> Self::Item<'_>;
    /// The item for a shorter borrow.
    fn reborrow<'b, 'a: 'b>(item: Self::Item<'a>) -> Self::Item<'b>;
    /// The owned vector of an item.
    fn into_owned(item: Self::Item<'_>) -> Vec<T>;
}

/// differential's container for the keys, vals, times and diffs of a paged arrangement of
/// `X`: holds owned values, reads each back as its [`PagedData::Item`] (by value for
/// fixed-width types, `&str` for `String`, and so on).
#[derive(Clone, Debug)]
pub struct ItemColumn<X>(pub Vec<X>);

impl<X> Default for ItemColumn<X> {
    fn default() -> Self {
        ItemColumn(Vec::new())
    }
}

impl<X: PagedData> BatchContainer for ItemColumn<X> {
    type Owned = X;
    type ReadItem<'a> = X::Item<'a>;

    #[inline(always)]
    fn into_owned<'a>(item: X::Item<'a>) -> X {
        X::into_owned(item)
    }
    #[inline(always)]
    fn clone_onto<'a>(item: X::Item<'a>, other: &mut X) {
        X::clone_onto(item, other)
    }
    fn push_ref(&mut self, item: X::Item<'_>) {
        self.0.push(X::into_owned(item))
    }
    fn push_own(&mut self, item: &X) {
        self.0.push(item.clone())
    }
    fn clear(&mut self) {
        self.0.clear()
    }
    fn with_capacity(size: usize) -> Self {
        ItemColumn(Vec::with_capacity(size))
    }
    fn merge_capacity(cont1: &Self, cont2: &Self) -> Self {
        ItemColumn(Vec::with_capacity(cont1.0.len() + cont2.0.len()))
    }
    #[inline(always)]
    fn reborrow<'b, 'a: 'b>(item: X::Item<'a>) -> X::Item<'b> {
        X::reborrow(item)
    }
    #[inline(always)]
    fn index(&self, index: usize) -> X::Item<'_> {
        self.0[index].item()
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

/// Whether `a < b` for items borrowed for different lifetimes.
#[inline(always)]
pub(crate) fn less<X: PagedData>(a: X::Item<'_>, b: X::Item<'_>) -> bool {
    X::Container::reborrow(a) < X::Container::reborrow(b)
}

/// Whether `a == b` for items borrowed for different lifetimes.
#[inline(always)]
pub(crate) fn equal<X: PagedData>(a: X::Item<'_>, b: X::Item<'_>) -> bool {
    X::Container::reborrow(a) == X::Container::reborrow(b)
}

/// Bytes of the offsets that precede a variable-length column's data, per value.
const OFFSET: usize = 8;

/// Bytes of a column holding `values`.
pub(crate) fn column_len<'v, X: PagedData>(values: impl Iterator<Item = &'v X>) -> usize {
    match X::WIDTH {
        Some(w) => values.count() * w,
        None => values.map(|x| OFFSET + x.encoded_len()).sum(),
    }
}

/// Writes a column of `n` values into `out` (exactly `column_len` bytes).
pub(crate) fn write_column<'v, X: PagedData>(
    n: usize,
    values: impl Iterator<Item = &'v X>,
    out: &mut [u8],
) {
    match X::WIDTH {
        Some(0) => {}
        Some(w) => {
            for (slot, x) in out.chunks_exact_mut(w).zip(values) {
                x.encode(slot);
            }
        }
        None => {
            let (ends, data) = out.split_at_mut(n * OFFSET);
            let mut at = 0usize;
            for (i, x) in values.enumerate() {
                let len = x.encoded_len();
                x.encode(&mut data[at..at + len]);
                at += len;
                ends[i * OFFSET..][..OFFSET].copy_from_slice(&(at as u64).to_le_bytes());
            }
        }
    }
}

/// Item `i` of a column of `n` values, borrowed from the column (by value for fixed-width
/// types): comparisons and in-place reads allocate nothing.
#[cfg(test)]
pub(crate) fn column_item<X: PagedData>(column: &[u8], n: usize, i: usize) -> X::Item<'_> {
    match X::WIDTH {
        Some(w) => X::borrow(&column[i * w..][..w]),
        None => X::borrow(&column[value_range(column, n, i)]),
    }
}

/// Where item `i` of a column of `n` values lies in the column.
#[inline(always)]
pub(crate) fn item_range<X: PagedData>(
    column: &[u8],
    n: usize,
    i: usize,
) -> std::ops::Range<usize> {
    match X::WIDTH {
        Some(w) => i * w..(i + 1) * w,
        None => value_range(column, n, i),
    }
}

/// The `n` values of a column, decoded in order.
pub(crate) fn column_values<X: PagedData>(column: &[u8], n: usize) -> ColumnValues<'_, X> {
    ColumnValues {
        walk: match X::WIDTH {
            // Fixed widths walk the column in steps of the width: no offsets read.
            Some(w) if w > 0 => Walk::Fixed(column.chunks_exact(w)),
            _ => Walk::Indexed { column, n, i: 0 },
        },
        _marker: std::marker::PhantomData,
    }
}

/// The values of a column, decoded in order ([`column_values`]).
pub(crate) struct ColumnValues<'b, X> {
    walk: Walk<'b>,
    _marker: std::marker::PhantomData<X>,
}

/// How [`ColumnValues`] walks its column.
enum Walk<'b> {
    Fixed(std::slice::ChunksExact<'b, u8>),
    Indexed {
        column: &'b [u8],
        n: usize,
        i: usize,
    },
}

impl<X: PagedData> ExactSizeIterator for ColumnValues<'_, X> {}

impl<X: PagedData> Iterator for ColumnValues<'_, X> {
    type Item = X;

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = match &self.walk {
            Walk::Fixed(chunks) => chunks.len(),
            Walk::Indexed { n, i, .. } => n - i,
        };
        (left, Some(left))
    }

    #[inline(always)]
    fn next(&mut self) -> Option<X> {
        match &mut self.walk {
            Walk::Fixed(chunks) => chunks.next().map(X::decode),
            Walk::Indexed { column, n, i } => {
                if *i == *n {
                    return None;
                }
                *i += 1;
                Some(X::decode(&column[item_range::<X>(column, *n, *i - 1)]))
            }
        }
    }
}

/// Where value `i` of a variable-length column of `n` values lies in the column.
#[inline]
fn value_range(column: &[u8], n: usize, i: usize) -> std::ops::Range<usize> {
    let end_at =
        |j: usize| u64::from_le_bytes(column[j * OFFSET..][..OFFSET].try_into().expect("8 bytes"));
    let start = if i == 0 { 0 } else { end_at(i - 1) as usize };
    n * OFFSET + start..n * OFFSET + end_at(i) as usize
}

/// Decodes value `i` of a column of `n` values.
#[cfg(test)]
pub(crate) fn read_column<X: PagedData>(column: &[u8], n: usize, i: usize) -> X {
    match X::WIDTH {
        Some(w) => X::decode(&column[i * w..][..w]),
        None => X::decode(&column[value_range(column, n, i)]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<X: PagedData + Debug>(values: Vec<X>) {
        let len = column_len(values.iter());
        let mut out = vec![0u8; len];
        write_column(values.len(), values.iter(), &mut out);
        for (i, x) in values.iter().enumerate() {
            assert_eq!(&read_column::<X>(&out, values.len(), i), x);
            assert!(equal::<X>(
                column_item::<X>(&out, values.len(), i),
                x.item()
            ));
        }
    }

    #[test]
    fn columns_round_trip() {
        round_trip(vec![1u64, 2, u64::MAX]);
        round_trip(vec![(1u32, -2i64), (3, 4)]);
        round_trip(vec![
            String::new(),
            "héllo".to_string(),
            String::new(),
            "x".into(),
        ]);
        round_trip(vec![vec![0u8; 0], vec![1, 2, 3], vec![255; 1000]]);
        round_trip::<String>(vec![]);
        round_trip(vec![("a".to_string(), 1u64), (String::new(), u64::MAX)]);
        round_trip(vec![None, Some("x".to_string()), Some(String::new())]);
        round_trip(vec![
            (3u32, vec!["a".to_string(), String::new()]),
            (4, vec![]),
        ]);
        round_trip(vec![vec![1u32, 2], vec![], vec![u32::MAX]]);
        round_trip(vec![vec![(); 5], vec![]]);
    }

    /// A derived struct with a variable-length field, for the column proptest.
    #[derive(crate::PagedData, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
    struct Account {
        name: String,
        id: u64,
    }

    /// A derived enum with fixed-width and variable-length variants.
    #[derive(crate::PagedData, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
    enum Event {
        Closed,
        Note(String),
        Moved { x: i32, y: Option<u8> },
    }

    /// A derived fixed-width struct: read by value from a column.
    #[derive(crate::PagedData, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
    struct Cell(i16, bool);

    proptest::proptest! {
        #[test]
        fn composite_and_derived_columns_round_trip(
            pairs in proptest::collection::vec(("[a-z☃]{0,12}", proptest::num::u64::ANY), 0..40),
            words in proptest::collection::vec(proptest::collection::vec("[ab]{0,3}", 0..4), 0..20),
            cells in proptest::collection::vec((proptest::num::i16::ANY, proptest::bool::ANY), 0..40),
        ) {
            let accounts: Vec<Account> =
                pairs.iter().map(|(name, id)| Account { name: name.clone(), id: *id }).collect();
            let events: Vec<Event> = pairs
                .iter()
                .map(|(name, id)| match id % 3 {
                    0 => Event::Closed,
                    1 => Event::Note(name.clone()),
                    _ => Event::Moved { x: *id as i32, y: id.is_multiple_of(2).then_some(7) },
                })
                .collect();
            let cells: Vec<Cell> = cells.into_iter().map(|(a, b)| Cell(a, b)).collect();
            for (i, cell) in cells.iter().enumerate() {
                let mut out = vec![0u8; column_len(cells.iter())];
                write_column(cells.len(), cells.iter(), &mut out);
                let width = Cell::WIDTH.expect("fixed-width");
                assert_eq!(Cell::read_item(&out[i * width..][..width]), Some(*cell));
            }
            round_trip(pairs);
            round_trip(words);
            round_trip(accounts);
            round_trip(events);
            round_trip(cells);
        }
    }

    proptest::proptest! {
        #[test]
        fn encodings_order_as_values(
            a in "[a-zé☃\u{0}]{0,6}", b in "[a-zé☃\u{0}]{0,6}", x in 0u64..4, y in 0u64..4,
        ) {
            fn enc<X: PagedData>(x: &X) -> Vec<u8> {
                let mut out = vec![0u8; x.encoded_len()];
                x.encode(&mut out);
                out
            }
            let (s, t) = (a.to_string(), b.to_string());
            assert_eq!(String::cmp_encoded(&enc(&s), &enc(&t)), s.cmp(&t));
            let (p, q) = ((s.clone(), x), (t.clone(), y));
            assert_eq!(<(String, u64)>::cmp_encoded(&enc(&p), &enc(&q)), p.cmp(&q));
            assert_eq!(u64::cmp_encoded(&enc(&(x << 60)), &enc(&y)), (x << 60).cmp(&y));
        }
    }

    #[test]
    fn items_are_by_value_exactly_for_fixed_width() {
        assert_eq!(<u64 as PagedData>::read_item(&7u64.to_le_bytes()), Some(7));
        assert!(<String as PagedData>::read_item(b"abc").is_none());
        assert!(less::<String>("a", "b"));
        assert_eq!(<String as PagedData>::borrow(b"abc"), "abc");
        assert!(equal::<u64>(3, 3));
    }
}
