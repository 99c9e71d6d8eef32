//! What a paged chunk can hold: [`PagedData`], and the column codec of pooled bodies.
//!
//! Invariant: a column read back returns exactly the values written into it, in order, and
//! [`PagedData::read_item`] is `Some` exactly for fixed-width types, so only those are ever
//! read by value from a cursor's pin; borrowed items ([`column_item`]) borrow from bytes that
//! outlive the borrow (a pin held for it, or a chunk's stable bytes; see [`crate::chunk`]).
//!
//! Every key, value, time and diff type of a paged arrangement is [`PagedData`]. There are two
//! kinds, and the kind decides how a cursor reads a pooled body:
//! - **fixed-width** ([`FixedWidth`] types: integers, `bool`, `char`, `()`, `Duration`,
//!   timely's `Product` times, tuples to 12 fields, arrays, `Option`, `Reverse`, `Wrapping`,
//!   differential's `Present`, your own; see [`crate::fixed`]), with `WIDTH = Some(w)`: a
//!   column is a run of `w`-byte encodings, read in place from the cursor's pin and returned
//!   **by value** (`Item<'a> = Self`);
//! - **variable-length** (`String`, `Vec<u8>`, or your own), with `WIDTH = None`: a column
//!   is `n` little-endian `u64` end offsets followed by the concatenated encodings, and a
//!   cursor returns items **borrowed** from the encoded bytes, in the columnar form
//!   (`Item<'a> = &'a str` for `String`, `&'a [u8]` for `Vec<u8>`; containers [`StrColumn`],
//!   [`BytesColumn`]): no decode, no allocation per item. Items must borrow from the chunk,
//!   not from a pin the cursor may drop, so a pooled chunk's cursor reads come from the
//!   chunk's *stable bytes* (see [`crate::chunk`]); resident bodies hand out `s.as_str()`.
//!
//! A chunk is read by value only when all four of its types are fixed-width. Nothing orders
//! encoded bytes: every comparison (fences, merges, cursors, lookups) is on items (`&str`
//! compares as `String` does), so an encoding need only round-trip.

use differential_dataflow::trace::implementations::BatchContainer;

use crate::fixed::{FixedColumn, FixedWidth};

/// A type a paged chunk can store: how it encodes into a pool slot, and how cursors return it.
///
/// Provided for every [`FixedWidth`] type (by value), `String` (as `&str`) and `Vec<u8>` (as
/// `&[u8]`).
/// An implementation must round-trip (`decode` of what `encode` wrote is an equal value) and
/// keep `WIDTH` and `read_item` in step: `WIDTH = Some(w)` means every value encodes in
/// exactly `w` bytes and `read_item` returns `Some`; `WIDTH = None` means `read_item` returns
/// `None`, and items are references that borrow from the chunk. `item` and `borrow` must agree
/// with `Ord`: `a.item() < b.item()` exactly when `a < b`.
pub trait PagedData: Ord + Clone + 'static {
    /// What a cursor returns: `Self` for fixed-width types, a borrowed form otherwise
    /// (`&'a str`, `&'a [u8]`).
    type Item<'a>: Copy + Ord;
    /// differential's container for these items (the cursor's `KeyContainer` and so on).
    type Container: for<'a> BatchContainer<ReadItem<'a> = Self::Item<'a>, Owned = Self>;
    /// `Some(w)` when every value encodes in exactly `w` bytes.
    const WIDTH: Option<usize>;

    /// The item for a resident value.
    fn item(&self) -> Self::Item<'_>;
    /// Bytes of this value's encoding.
    fn encoded_len(&self) -> usize;
    /// Writes the encoding into `out` (exactly `encoded_len` bytes).
    fn encode(&self, out: &mut [u8]);
    /// Decodes a value from exactly the bytes `encode` wrote.
    fn decode(bytes: &[u8]) -> Self;
    /// Decodes an item by value, with no borrow: `Some` exactly for fixed-width types.
    #[inline(always)]
    fn read_item<'a>(_bytes: &[u8]) -> Option<Self::Item<'a>> {
        None
    }
    /// The item of exactly the bytes `encode` wrote, borrowed from them (by value for
    /// fixed-width types): no allocation.
    fn borrow(bytes: &[u8]) -> Self::Item<'_>;
}

impl<X: FixedWidth> PagedData for X {
    type Item<'a> = X;
    type Container = FixedColumn<X>;
    const WIDTH: Option<usize> = Some(X::WIDTH);

    #[inline(always)]
    fn item(&self) -> X {
        *self
    }
    #[inline(always)]
    fn encoded_len(&self) -> usize {
        X::WIDTH
    }
    #[inline(always)]
    fn encode(&self, out: &mut [u8]) {
        self.write(out)
    }
    #[inline(always)]
    fn decode(bytes: &[u8]) -> X {
        X::read(bytes)
    }
    #[inline(always)]
    fn read_item<'a>(bytes: &[u8]) -> Option<Self::Item<'a>> {
        Some(X::read(bytes))
    }
    #[inline(always)]
    fn borrow(bytes: &[u8]) -> X {
        X::read(bytes)
    }
}

impl PagedData for String {
    type Item<'a> = &'a str;
    type Container = StrColumn;
    const WIDTH: Option<usize> = None;

    fn item(&self) -> &str {
        self
    }
    fn encoded_len(&self) -> usize {
        self.len()
    }
    fn encode(&self, out: &mut [u8]) {
        out.copy_from_slice(self.as_bytes())
    }
    fn decode(bytes: &[u8]) -> String {
        Self::borrow(bytes).to_owned()
    }
    #[inline]
    fn borrow(bytes: &[u8]) -> &str {
        // The bytes were a `String` when encoded and are checksummed in the extent.
        std::str::from_utf8(bytes).expect("spillway: a paged String is not UTF-8")
    }
}

impl PagedData for Vec<u8> {
    type Item<'a> = &'a [u8];
    type Container = BytesColumn;
    const WIDTH: Option<usize> = None;

    fn item(&self) -> &[u8] {
        self
    }
    fn encoded_len(&self) -> usize {
        self.len()
    }
    fn encode(&self, out: &mut [u8]) {
        out.copy_from_slice(self)
    }
    fn decode(bytes: &[u8]) -> Vec<u8> {
        bytes.to_vec()
    }
    #[inline]
    fn borrow(bytes: &[u8]) -> &[u8] {
        bytes
    }
}

/// Defines a `BatchContainer` over owned variable-length values whose read items are slices
/// (`&str` for `String`, `&[u8]` for `Vec<u8>`): what differential's cursors of such a
/// chunk name as their key or val container.
macro_rules! slice_column {
    ($(#[$doc:meta])* $name:ident, $owned:ty, $slice:ty) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Default)]
        pub struct $name(Vec<$owned>);

        impl BatchContainer for $name {
            type Owned = $owned;
            type ReadItem<'a> = &'a $slice;

            #[inline(always)]
            fn into_owned(item: &$slice) -> $owned {
                item.to_owned()
            }
            #[inline(always)]
            fn clone_onto(item: &$slice, other: &mut $owned) {
                item.clone_into(other);
            }
            fn push_ref(&mut self, item: &$slice) {
                self.0.push(item.to_owned())
            }
            fn push_own(&mut self, item: &$owned) {
                self.0.push(item.clone())
            }
            fn clear(&mut self) {
                self.0.clear()
            }
            fn with_capacity(size: usize) -> Self {
                $name(Vec::with_capacity(size))
            }
            fn merge_capacity(cont1: &Self, cont2: &Self) -> Self {
                $name(Vec::with_capacity(cont1.0.len() + cont2.0.len()))
            }
            #[inline(always)]
            fn reborrow<'b, 'a: 'b>(item: &'a $slice) -> &'b $slice {
                item
            }
            #[inline(always)]
            fn index(&self, index: usize) -> &$slice {
                &self.0[index]
            }
            fn len(&self) -> usize {
                self.0.len()
            }
        }
    };
}

slice_column!(
    /// differential's container for `String` keys and vals of a paged arrangement: holds
    /// `String`s, reads them as `&str` (the columnar form: code that reads a key as `&str`
    /// compiles against a paged arrangement unchanged).
    StrColumn,
    String,
    str
);
slice_column!(
    /// differential's container for `Vec<u8>` keys and vals of a paged arrangement: holds
    /// `Vec<u8>`s, reads them as `&[u8]`.
    BytesColumn,
    Vec<u8>,
    [u8]
);

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
        Some(w) => {
            for (i, x) in values.enumerate() {
                x.encode(&mut out[i * w..][..w]);
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

    fn round_trip<X: PagedData + std::fmt::Debug>(values: Vec<X>) {
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
