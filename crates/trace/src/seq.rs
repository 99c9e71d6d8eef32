//! [`PagedData`] for the variable-length sequences: `String` (read as `&str`) and `Vec<T>`
//! of any paged `T` (read as `&[u8]` for `Vec<u8>`, as a [`Seq<'a, T>`] otherwise).
//!
//! Invariant: a sequence's item borrows from the resident value or from exactly the bytes
//! its `encode` wrote, never allocates, and orders as the owned sequence does
//! (lexicographically by element, `&str` as `String`).
//!
//! Encodings (every length and offset a little-endian `u32`; a longer sequence panics on
//! write, and only a part of a composite that is not the last needs a length):
//! - `String`: its UTF-8 bytes; `Vec<u8>`, and `Vec<T>` of any fixed-width `T` of width
//!   `w > 0`: the elements' encodings end to end (the count is the length over `w`);
//! - `Vec<T>` of a zero-width `T` (`Vec<()>`): the count;
//! - `Vec<T>` of a variable-length `T`: the count `n`, then `n` end offsets into the data,
//!   then the elements' encodings end to end (the column format of [`crate::data`] in small).
//!
//! How a `Vec<T>` reads back is `T`'s choice ([`PagedData::Seq`], a [`SeqForm`]): every
//! provided type but `u8` chooses [`Elements`], a [`Seq`] view whose elements are `T`'s
//! items (`Vec<String>` reads as a `Seq<'a, String>` of `&'a str`); `u8` chooses [`Bytes`],
//! so `Vec<u8>` reads as `&[u8]` as upstream's and columnar's bytes do. The choice lives on
//! the element type because `Vec<u8>` and `Vec<T>` cannot both implement `PagedData`.

use std::cmp::Ordering;
use std::fmt;

use crate::data::{ItemColumn, PagedData, SeqForm};

/// Bytes of a count or an offset in a sequence's encoding.
const LEN: usize = 4;

/// Reads the `u32` at `at`.
#[inline(always)]
fn u32_at(bytes: &[u8], at: usize) -> usize {
    u32::from_le_bytes(bytes[at..at + LEN].try_into().expect("4 bytes")) as usize
}

/// A count or offset as the `u32` an encoding stores.
#[inline(always)]
fn as_u32(x: usize) -> [u8; LEN] {
    u32::try_from(x)
        .expect("spillway: a paged sequence encodes in over 4 GiB")
        .to_le_bytes()
}

/// `String`'s UTF-8 bytes, read as `&str` (the columnar form: code that reads a key as
/// `&str` compiles against a paged arrangement unchanged).
impl PagedData for String {
    type Item<'a> = &'a str;
    type Container = ItemColumn<String>;
    type Seq = Elements;
    const WIDTH: Option<usize> = None;

    #[inline(always)]
    fn item(&self) -> &str {
        self
    }
    #[inline(always)]
    fn encoded_len(&self) -> usize {
        self.len()
    }
    #[inline(always)]
    fn encode(&self, out: &mut [u8]) {
        out.copy_from_slice(self.as_bytes())
    }
    #[inline]
    fn borrow(bytes: &[u8]) -> &str {
        // The bytes were a `String` when encoded and are checksummed in the extent.
        std::str::from_utf8(bytes).expect("spillway: a paged String is not UTF-8")
    }
    #[inline(always)]
    fn cmp_encoded(a: &[u8], b: &[u8]) -> Ordering {
        // `str` orders as its UTF-8 bytes do, and the encoding is those bytes.
        a.cmp(b)
    }
    #[inline(always)]
    fn reborrow<'b, 'a: 'b>(item: &'a str) -> &'b str {
        item
    }
    #[inline(always)]
    fn into_owned(item: &str) -> String {
        item.to_owned()
    }
    #[inline]
    fn clone_onto(item: &str, other: &mut String) {
        item.clone_into(other)
    }
}

/// The elements (a count, offsets and encodings when they are variable-length); read as `T`
/// chooses ([`PagedData::Seq`]).
impl<T: PagedData> PagedData for Vec<T> {
    type Item<'a> = <T::Seq as SeqForm<T>>::Item<'a>;
    type Container = ItemColumn<Self>;
    type Seq = Elements;
    const WIDTH: Option<usize> = None;

    #[inline(always)]
    fn item(&self) -> Self::Item<'_> {
        T::Seq::of_slice(self)
    }
    #[inline]
    fn encoded_len(&self) -> usize {
        match T::WIDTH {
            Some(0) => LEN,
            Some(w) => w * self.len(),
            None => LEN * (1 + self.len()) + self.iter().map(T::encoded_len).sum::<usize>(),
        }
    }
    fn encode(&self, out: &mut [u8]) {
        match T::WIDTH {
            Some(0) => out.copy_from_slice(&as_u32(self.len())),
            Some(w) => {
                for (x, out) in self.iter().zip(out.chunks_exact_mut(w)) {
                    x.encode(out);
                }
            }
            None => {
                let n = self.len();
                out[..LEN].copy_from_slice(&as_u32(n));
                let (ends, data) = out[LEN..].split_at_mut(n * LEN);
                let mut at = 0;
                for (x, end) in self.iter().zip(ends.chunks_exact_mut(LEN)) {
                    let len = x.encoded_len();
                    x.encode(&mut data[at..at + len]);
                    at += len;
                    end.copy_from_slice(&as_u32(at));
                }
            }
        }
    }
    #[inline(always)]
    fn borrow(bytes: &[u8]) -> Self::Item<'_> {
        T::Seq::borrow(bytes)
    }
    #[inline(always)]
    fn reborrow<'b, 'a: 'b>(item: Self::Item<'a>) -> Self::Item<'b> {
        T::Seq::reborrow(item)
    }
    #[inline(always)]
    fn into_owned(item: Self::Item<'_>) -> Self {
        T::Seq::into_owned(item)
    }
}

/// The [`SeqForm`] of every element type but `u8`: a `Vec<T>` reads as a [`Seq<'a, T>`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Elements;

impl<T: PagedData> SeqForm<T> for Elements {
    type Item<'a> = Seq<'a, T>;

    #[inline(always)]
    fn of_slice(values: &[T]) -> Seq<'_, T> {
        Seq(Repr::Values(values))
    }
    #[inline]
    fn borrow(bytes: &[u8]) -> Seq<'_, T> {
        let n = match T::WIDTH {
            Some(0) => u32_at(bytes, 0),
            Some(w) => bytes.len() / w,
            None => u32_at(bytes, 0),
        };
        Seq(Repr::Encoded { bytes, n })
    }
    #[inline(always)]
    fn reborrow<'b, 'a: 'b>(item: Seq<'a, T>) -> Seq<'b, T> {
        item
    }
    fn into_owned(item: Seq<'_, T>) -> Vec<T> {
        item.iter().map(T::into_owned).collect()
    }
}

/// The [`SeqForm`] of `u8`: a `Vec<u8>` reads as `&[u8]`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Bytes;

impl SeqForm<u8> for Bytes {
    type Item<'a> = &'a [u8];

    #[inline(always)]
    fn of_slice(values: &[u8]) -> &[u8] {
        values
    }
    #[inline(always)]
    fn borrow(bytes: &[u8]) -> &[u8] {
        bytes
    }
    #[inline(always)]
    fn reborrow<'b, 'a: 'b>(item: &'a [u8]) -> &'b [u8] {
        item
    }
    #[inline(always)]
    fn into_owned(item: &[u8]) -> Vec<u8> {
        item.to_vec()
    }
}

/// The item of a `Vec<T>` (for every `T` but `u8`): its elements' items, borrowed from the
/// resident vector or from its encoding, with no allocation. Orders lexicographically, as
/// `Vec<T>` does.
pub struct Seq<'a, T>(Repr<'a, T>);

/// Where a [`Seq`]'s elements are.
enum Repr<'a, T> {
    /// A resident vector's.
    Values(&'a [T]),
    /// An encoded vector of `n` elements (see [`crate::seq`]).
    Encoded { bytes: &'a [u8], n: usize },
}

impl<'a, T: PagedData> Seq<'a, T> {
    /// The number of elements.
    #[inline]
    pub fn len(&self) -> usize {
        match self.0 {
            Repr::Values(values) => values.len(),
            Repr::Encoded { n, .. } => n,
        }
    }
    /// Whether there are no elements.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Element `i`'s item. Panics if `i` is out of bounds.
    #[inline]
    pub fn get(&self, i: usize) -> T::Item<'a> {
        match self.0 {
            Repr::Values(values) => values[i].item(),
            Repr::Encoded { bytes, n } => {
                assert!(i < n, "spillway: Seq index {i} out of bounds ({n})");
                match T::WIDTH {
                    Some(w) => T::borrow(&bytes[i * w..][..w]),
                    None => {
                        let data = LEN * (1 + n);
                        let start = if i == 0 { 0 } else { u32_at(bytes, LEN * i) };
                        let end = u32_at(bytes, LEN * (1 + i));
                        T::borrow(&bytes[data + start..data + end])
                    }
                }
            }
        }
    }
    /// The elements' items, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = T::Item<'a>> + 'a {
        let seq = *self;
        (0..seq.len()).map(move |i| seq.get(i))
    }
    /// The owned elements.
    pub fn to_vec(&self) -> Vec<T> {
        self.iter().map(T::into_owned).collect()
    }
}

impl<T> Clone for Seq<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Seq<'_, T> {}
impl<T> Clone for Repr<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Repr<'_, T> {}

impl<T: PagedData> PartialEq for Seq<'_, T> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}
impl<T: PagedData> Eq for Seq<'_, T> {}
impl<T: PagedData> PartialOrd for Seq<'_, T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T: PagedData> Ord for Seq<'_, T> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.iter().cmp(other.iter())
    }
}
impl<T: PagedData> fmt::Debug for Seq<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}
