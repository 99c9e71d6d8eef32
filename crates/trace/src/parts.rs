//! The encoding of a sequence of parts: tuples, arrays, `Option`'s payload, `Product`, and
//! the fields of derived structs and enum variants.
//!
//! Invariant: a sequence of `n` parts written by a [`FieldWriter`] of `n` reads back, part by
//! part, through a [`FieldReader`] of `n` over exactly the written bytes, each part's item
//! borrowed from those bytes with no allocation.
//!
//! The layout is the parts' encodings in order. A fixed-width part (`WIDTH = Some(w)`) takes
//! exactly `w` bytes; a variable-length part takes a little-endian `u32` length prefix and
//! then its encoding, except the last part, which takes the rest of the bytes. So a sequence
//! of fixed-width parts is their encodings laid end to end (`(u64, u32)` is 12 bytes, as a
//! hand-written codec would be), `(u64, String)` is 8 bytes then the string's, and
//! `(String, String)` is a 4-byte length, the first string, then the second. A derived enum
//! is a tag byte (the variant's index) then its variant's fields as such a sequence, padded
//! with zeros to the widest variant when every variant is fixed-width. A part may not
//! encode in more than `u32::MAX` bytes unless it is the last (writing one panics).
//!
//! [`fixed_width`] computes a sequence's `WIDTH` in const context: `Some(sum)` when every
//! part is fixed-width. Part sizes compile to constants for fixed-width parts, so the by-value
//! fast path stays arithmetic.

use crate::data::PagedData;

/// Bytes of the length prefix of a variable-length part that is not the last.
const PREFIX: usize = 4;

/// The width of a sequence of parts of these widths: `Some(sum)` when all are fixed.
pub const fn fixed_width(widths: &[Option<usize>]) -> Option<usize> {
    let mut sum = 0;
    let mut i = 0;
    while i < widths.len() {
        match widths[i] {
            Some(w) => sum += w,
            None => return None,
        }
        i += 1;
    }
    Some(sum)
}

/// The widest of these widths, if all are fixed (an enum's widest variant).
pub const fn widest(widths: &[Option<usize>]) -> Option<usize> {
    let mut max = 0;
    let mut i = 0;
    while i < widths.len() {
        match widths[i] {
            Some(w) if w > max => max = w,
            Some(_) => {}
            None => return None,
        }
        i += 1;
    }
    Some(max)
}

/// Sums the encoded length of a sequence of `n` parts, pushed in order.
#[derive(Debug)]
pub struct FieldsLen {
    left: usize,
    len: usize,
}

impl FieldsLen {
    /// A sum over `n` parts.
    #[inline(always)]
    pub fn new(n: usize) -> Self {
        FieldsLen { left: n, len: 0 }
    }
    /// Counts the next part.
    #[inline(always)]
    pub fn add<X: PagedData>(&mut self, x: &X) -> &mut Self {
        self.left -= 1;
        self.len += match X::WIDTH {
            Some(w) => w,
            None if self.left == 0 => x.encoded_len(),
            None => PREFIX + x.encoded_len(),
        };
        self
    }
    /// The sequence's encoded length.
    #[inline(always)]
    pub fn total(&self) -> usize {
        self.len
    }
}

/// Writes a sequence of `n` parts, in order, into exactly the bytes [`FieldsLen`] counted.
#[derive(Debug)]
pub struct FieldWriter<'o> {
    out: &'o mut [u8],
    at: usize,
    left: usize,
}

impl<'o> FieldWriter<'o> {
    /// A writer of `n` parts into `out`.
    #[inline(always)]
    pub fn new(out: &'o mut [u8], n: usize) -> Self {
        FieldWriter {
            out,
            at: 0,
            left: n,
        }
    }
    /// Writes the next part.
    #[inline(always)]
    pub fn put<X: PagedData>(&mut self, x: &X) -> &mut Self {
        self.left -= 1;
        let len = match X::WIDTH {
            Some(w) => w,
            None => {
                let len = x.encoded_len();
                if self.left > 0 {
                    let prefix = u32::try_from(len)
                        .expect("spillway: a part that is not the last encodes in over 4 GiB");
                    self.out[self.at..self.at + PREFIX].copy_from_slice(&prefix.to_le_bytes());
                    self.at += PREFIX;
                }
                len
            }
        };
        x.encode(&mut self.out[self.at..self.at + len]);
        self.at += len;
        self
    }
    /// Fills the rest of the output with zeros (an enum variant narrower than its widest).
    #[inline(always)]
    pub fn pad(&mut self) {
        self.out[self.at..].fill(0);
        self.at = self.out.len();
    }
}

/// Reads a sequence of `n` parts, in order, from exactly the bytes a [`FieldWriter`] wrote.
#[derive(Debug)]
pub struct FieldReader<'a> {
    bytes: &'a [u8],
    at: usize,
    left: usize,
}

impl<'a> FieldReader<'a> {
    /// A reader of `n` parts from `bytes`.
    #[inline(always)]
    pub fn new(bytes: &'a [u8], n: usize) -> Self {
        FieldReader {
            bytes,
            at: 0,
            left: n,
        }
    }
    /// The bytes of the next part, of type `X`.
    #[inline(always)]
    fn next<X: PagedData>(&mut self) -> &'a [u8] {
        self.left -= 1;
        let len = match X::WIDTH {
            Some(w) => w,
            None if self.left == 0 => self.bytes.len() - self.at,
            None => {
                let prefix = &self.bytes[self.at..self.at + PREFIX];
                self.at += PREFIX;
                u32::from_le_bytes(prefix.try_into().expect("4 bytes")) as usize
            }
        };
        let part = &self.bytes[self.at..self.at + len];
        self.at += len;
        part
    }
    /// The next part's item, borrowed from the bytes.
    #[inline(always)]
    pub fn item<X: PagedData>(&mut self) -> X::Item<'a> {
        X::borrow(self.next::<X>())
    }
    /// The next part's item by value, with no borrow: `Some` exactly when `X` is
    /// fixed-width (see [`PagedData::read_item`]).
    #[inline(always)]
    pub fn read_item<'x, X: PagedData>(&mut self) -> Option<X::Item<'x>> {
        X::WIDTH?;
        X::read_item(self.next::<X>())
    }
    /// The next part, decoded.
    #[inline(always)]
    pub fn decode<X: PagedData>(&mut self) -> X {
        X::decode(self.next::<X>())
    }
    /// Skips the next part.
    #[inline(always)]
    pub fn skip<X: PagedData>(&mut self) {
        self.next::<X>();
    }
}
