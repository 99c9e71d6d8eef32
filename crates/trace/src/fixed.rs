//! Fixed-width encodings and a by-value batch container.
//!
//! Invariant: every value of a [`FixedWidth`] type encodes in exactly `WIDTH` bytes and
//! decodes back to itself, so item `i` of a column is found by arithmetic alone.
//!
//! A [`FixedWidth`] type has an encoding of exactly `WIDTH` bytes. Paged chunk bodies store
//! each column as a run of such encodings, so a cursor reads item `i` of a column at byte
//! `i * WIDTH` of the pinned body and returns it **by value**: no reference into pool memory
//! escapes the pin that protects it (see [`crate::chunk`] for the soundness argument).
//!
//! [`FixedColumn<T>`] is differential's `BatchContainer` for such types with
//! `ReadItem<'a> = T`: `reborrow` is the identity, and `Copy + Ord` holds because `T` is.
//! Implement `FixedWidth` for your own types (for example a newtype around `u64`, or a
//! `#[repr]`-free struct of integers) by writing and reading its fields in little-endian order.

use differential_dataflow::trace::implementations::BatchContainer;

/// A type with an encoding of exactly [`FixedWidth::WIDTH`] bytes.
///
/// Implementations must round-trip (`read(write(x)) == x`) and preserve nothing else: the
/// order of encodings is never used, only the order of decoded values.
pub trait FixedWidth: Copy + Ord + 'static {
    /// Bytes of one encoded value.
    const WIDTH: usize;
    /// Writes `self` into `out` (exactly `WIDTH` bytes).
    fn write(&self, out: &mut [u8]);
    /// Reads a value from `bytes` (exactly `WIDTH` bytes).
    fn read(bytes: &[u8]) -> Self;
}

macro_rules! fixed_int {
    ($($t:ty),*) => {$(
        impl FixedWidth for $t {
            const WIDTH: usize = std::mem::size_of::<$t>();
            #[inline(always)]
            fn write(&self, out: &mut [u8]) {
                out.copy_from_slice(&self.to_le_bytes());
            }
            #[inline(always)]
            fn read(bytes: &[u8]) -> Self {
                <$t>::from_le_bytes(bytes.try_into().expect("width"))
            }
        }
    )*};
}
fixed_int!(u8, u16, u32, u64, u128, i8, i16, i32, i64, i128, usize, isize);

impl FixedWidth for () {
    const WIDTH: usize = 0;
    fn write(&self, _out: &mut [u8]) {}
    fn read(_bytes: &[u8]) -> Self {}
}

macro_rules! fixed_tuple {
    ($($name:ident),+) => {
        impl<$($name: FixedWidth),+> FixedWidth for ($($name,)+) {
            const WIDTH: usize = 0 $(+ $name::WIDTH)+;
            #[allow(non_snake_case)]
            fn write(&self, out: &mut [u8]) {
                let ($($name,)+) = self;
                let mut at = 0;
                $( $name.write(&mut out[at..at + $name::WIDTH]); at += $name::WIDTH; )+
                let _ = at;
            }
            #[allow(non_snake_case)]
            fn read(bytes: &[u8]) -> Self {
                let mut at = 0;
                $( let $name = $name::read(&bytes[at..at + $name::WIDTH]); at += $name::WIDTH; )+
                let _ = at;
                ($($name,)+)
            }
        }
    };
}
fixed_tuple!(A);
fixed_tuple!(A, B);
fixed_tuple!(A, B, C);
fixed_tuple!(A, B, C, D);

/// A column of fixed-width values that reads them back by value.
#[derive(Clone, Debug, Default)]
pub struct FixedColumn<T>(pub Vec<T>);

impl<T: FixedWidth> BatchContainer for FixedColumn<T> {
    type Owned = T;
    type ReadItem<'a> = T;

    #[inline(always)]
    fn into_owned<'a>(item: T) -> T {
        item
    }
    #[inline(always)]
    fn clone_onto<'a>(item: T, other: &mut T) {
        *other = item;
    }
    fn push_ref(&mut self, item: T) {
        self.0.push(item)
    }
    fn push_own(&mut self, item: &T) {
        self.0.push(*item)
    }
    fn clear(&mut self) {
        self.0.clear()
    }
    fn with_capacity(size: usize) -> Self {
        FixedColumn(Vec::with_capacity(size))
    }
    fn merge_capacity(cont1: &Self, cont2: &Self) -> Self {
        FixedColumn(Vec::with_capacity(cont1.0.len() + cont2.0.len()))
    }
    #[inline(always)]
    fn reborrow<'b, 'a: 'b>(item: T) -> T {
        item
    }
    #[inline(always)]
    fn index(&self, index: usize) -> T {
        self.0[index]
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: FixedWidth + std::fmt::Debug>(x: T) {
        let mut buf = vec![0u8; T::WIDTH];
        x.write(&mut buf);
        assert_eq!(T::read(&buf), x);
    }

    #[test]
    fn encodings_round_trip() {
        round_trip(0xDEAD_BEEF_u64);
        round_trip(-7i64);
        round_trip(-1isize);
        round_trip((3u32, -4i16));
        round_trip(((1u64, 2u8), (), 9u128));
        assert_eq!(<(u64, u32)>::WIDTH, 12);
    }
}
