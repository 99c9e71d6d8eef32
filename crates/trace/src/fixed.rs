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
//! # Provided types
//! Everything differential users arrange or nest, so none of them meets the orphan rule:
//! - every integer (`u8` to `u128`, `i8` to `i128`, `usize`, `isize`; little-endian), `bool`
//!   (one byte), `char` (its scalar value as a `u32`), `()` (zero bytes);
//! - timestamps: the integers, `()`, [`std::time::Duration`] (seconds then nanoseconds),
//!   timely's [`Product<A, B>`](timely::order::Product) of fixed-width `A` and `B` (outer then
//!   inner: the time of `iterate` and of nested scopes, to any depth), and tuples (timely's
//!   lexicographic pairs);
//! - diffs: the integers, tuples of them (differential implements `Semigroup` for tuples of
//!   up to four), [`std::num::Wrapping`] and differential's `Present`;
//! - compound values: tuples of up to 12 fixed-width fields, arrays `[T; N]`,
//!   `Option<T>` (a tag byte, then `T`'s encoding or zeros) and [`std::cmp::Reverse<T>`].
//!
//! Nothing compares encodings: chunks, fences, cursors, merges and lookups compare decoded
//! values, so every type's order is its own `Ord` (for `Option`, `None` first; for
//! `Product`, the derived lexicographic `Ord` that differential sorts by; for little-endian
//! integers, not the byte order). An encoding only has to round-trip.
//!
//! [`FixedColumn<T>`] is differential's `BatchContainer` for such types with
//! `ReadItem<'a> = T`: `reborrow` is the identity, and `Copy + Ord` holds because `T` is.
//! Implement `FixedWidth` for your own types (for example a newtype around `u64`, or a
//! `#[repr]`-free struct of integers) by writing and reading its fields at fixed offsets.

use differential_dataflow::difference::Present;
use differential_dataflow::trace::implementations::BatchContainer;
use timely::order::Product;

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

/// One byte, `0` or `1`.
impl FixedWidth for bool {
    const WIDTH: usize = 1;
    #[inline(always)]
    fn write(&self, out: &mut [u8]) {
        out[0] = u8::from(*self);
    }
    #[inline(always)]
    fn read(bytes: &[u8]) -> Self {
        match bytes[0] {
            0 => false,
            1 => true,
            b => panic!("spillway: a paged bool reads back as byte {b}"),
        }
    }
}

/// The scalar value as a little-endian `u32`.
impl FixedWidth for char {
    const WIDTH: usize = 4;
    #[inline(always)]
    fn write(&self, out: &mut [u8]) {
        out.copy_from_slice(&u32::from(*self).to_le_bytes());
    }
    #[inline(always)]
    fn read(bytes: &[u8]) -> Self {
        let scalar = u32::read(bytes);
        // The bytes were a `char` when written and are checksummed in the extent.
        char::from_u32(scalar).expect("spillway: a paged char is not a Unicode scalar value")
    }
}

/// Whole seconds (`u64`) then the sub-second nanoseconds (`u32`): timely's `Duration`
/// timestamps.
impl FixedWidth for std::time::Duration {
    const WIDTH: usize = 12;
    #[inline(always)]
    fn write(&self, out: &mut [u8]) {
        self.as_secs().write(&mut out[..8]);
        self.subsec_nanos().write(&mut out[8..12]);
    }
    #[inline(always)]
    fn read(bytes: &[u8]) -> Self {
        std::time::Duration::new(u64::read(&bytes[..8]), u32::read(&bytes[8..12]))
    }
}

/// A tag byte (`0` for `None`, `1` for `Some`) then `T`'s encoding (zeros for `None`), so
/// the width is fixed.
impl<T: FixedWidth> FixedWidth for Option<T> {
    const WIDTH: usize = 1 + T::WIDTH;
    #[inline(always)]
    fn write(&self, out: &mut [u8]) {
        match self {
            None => out.fill(0),
            Some(x) => {
                out[0] = 1;
                x.write(&mut out[1..]);
            }
        }
    }
    #[inline(always)]
    fn read(bytes: &[u8]) -> Self {
        match bytes[0] {
            0 => None,
            1 => Some(T::read(&bytes[1..])),
            b => panic!("spillway: a paged Option reads back with tag {b}"),
        }
    }
}

/// The elements' encodings in order.
impl<T: FixedWidth, const N: usize> FixedWidth for [T; N] {
    const WIDTH: usize = N * T::WIDTH;
    #[inline(always)]
    fn write(&self, out: &mut [u8]) {
        for (i, x) in self.iter().enumerate() {
            x.write(&mut out[i * T::WIDTH..][..T::WIDTH]);
        }
    }
    #[inline(always)]
    fn read(bytes: &[u8]) -> Self {
        std::array::from_fn(|i| T::read(&bytes[i * T::WIDTH..][..T::WIDTH]))
    }
}

/// The outer time's encoding then the inner one's: the timestamps of `iterate` and of
/// nested scopes (`Product<Product<u64, u32>, u64>` and so on, to any depth).
impl<A: FixedWidth, B: FixedWidth> FixedWidth for Product<A, B> {
    const WIDTH: usize = A::WIDTH + B::WIDTH;
    #[inline(always)]
    fn write(&self, out: &mut [u8]) {
        self.outer.write(&mut out[..A::WIDTH]);
        self.inner.write(&mut out[A::WIDTH..][..B::WIDTH]);
    }
    #[inline(always)]
    fn read(bytes: &[u8]) -> Self {
        Product::new(
            A::read(&bytes[..A::WIDTH]),
            B::read(&bytes[A::WIDTH..][..B::WIDTH]),
        )
    }
}

/// `T`'s encoding (differential's wrapping diffs).
impl<T: FixedWidth> FixedWidth for std::num::Wrapping<T> {
    const WIDTH: usize = T::WIDTH;
    #[inline(always)]
    fn write(&self, out: &mut [u8]) {
        self.0.write(out)
    }
    #[inline(always)]
    fn read(bytes: &[u8]) -> Self {
        std::num::Wrapping(T::read(bytes))
    }
}

/// `T`'s encoding; the order is reversed by `Reverse`'s `Ord`, not by the encoding.
impl<T: FixedWidth> FixedWidth for std::cmp::Reverse<T> {
    const WIDTH: usize = T::WIDTH;
    #[inline(always)]
    fn write(&self, out: &mut [u8]) {
        self.0.write(out)
    }
    #[inline(always)]
    fn read(bytes: &[u8]) -> Self {
        std::cmp::Reverse(T::read(bytes))
    }
}

/// Zero bytes: differential's diff for collections that are only ever inserted into.
impl FixedWidth for Present {
    const WIDTH: usize = 0;
    fn write(&self, _out: &mut [u8]) {}
    fn read(_bytes: &[u8]) -> Self {
        Present
    }
}

macro_rules! fixed_tuple {
    ($($name:ident),+) => {
        /// The fields' encodings in order.
        impl<$($name: FixedWidth),+> FixedWidth for ($($name,)+) {
            const WIDTH: usize = 0 $(+ $name::WIDTH)+;
            #[allow(non_snake_case)]
            #[inline(always)]
            fn write(&self, out: &mut [u8]) {
                let ($($name,)+) = self;
                let mut at = 0;
                $( $name.write(&mut out[at..at + $name::WIDTH]); at += $name::WIDTH; )+
                let _ = at;
            }
            #[allow(non_snake_case)]
            #[inline(always)]
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
fixed_tuple!(A, B, C, D, E);
fixed_tuple!(A, B, C, D, E, F);
fixed_tuple!(A, B, C, D, E, F, G);
fixed_tuple!(A, B, C, D, E, F, G, H);
fixed_tuple!(A, B, C, D, E, F, G, H, I);
fixed_tuple!(A, B, C, D, E, F, G, H, I, J);
fixed_tuple!(A, B, C, D, E, F, G, H, I, J, K);
fixed_tuple!(A, B, C, D, E, F, G, H, I, J, K, L);

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
        round_trip(usize::MAX);
        round_trip(i128::MIN);
        round_trip(u128::MAX - 3);
        round_trip((3u32, -4i16));
        round_trip(((1u64, 2u8), (), 9u128));
        assert_eq!(<(u64, u32)>::WIDTH, 12);
    }

    #[test]
    fn every_provided_type_round_trips() {
        for b in [false, true] {
            round_trip(b);
        }
        for c in ['\0', 'a', 'é', '\u{10FFFF}', char::MAX] {
            round_trip(c);
        }
        round_trip(std::time::Duration::new(u64::MAX, 999_999_999));
        round_trip(std::time::Duration::ZERO);
        round_trip(None::<i64>);
        round_trip(Some(-1i64));
        round_trip(Some(None::<u8>));
        round_trip(Some(Some(())));
        round_trip([1u16, 2, u16::MAX]);
        round_trip([(); 4]);
        round_trip::<[u64; 0]>([]);
        round_trip([[Some(3i8), None], [None, Some(-128)]]);
        round_trip(Product::new(5u64, 7u32));
        round_trip(Product::new(
            Product::new(1u64, 2u32),
            Product::new(3u16, 4u64),
        ));
        round_trip(std::num::Wrapping(-5i32));
        round_trip(std::cmp::Reverse((1u8, 'x')));
        round_trip(Present);
        round_trip((1u8, 2u16, 3u32, 4u64, 5u128, 6i8, 7i16, 8i32));
        round_trip((
            1u8,
            2i16,
            3u32,
            -4i64,
            true,
            'z',
            (),
            Some(9u8),
            [1u8; 3],
            10u64,
            11i32,
            12u16,
        ));
        assert_eq!(<Option<u64>>::WIDTH, 9);
        assert_eq!(<Product<u64, u64>>::WIDTH, 16);
        assert_eq!(<[u32; 5]>::WIDTH, 20);
        assert_eq!(<(u8, u16, u32, u64, u8, u16, u32, u64)>::WIDTH, 30);
        assert_eq!(Present::WIDTH, 0);
    }

    #[test]
    #[should_panic(expected = "tag")]
    fn a_corrupt_option_tag_is_loud() {
        let _ = <Option<u8>>::read(&[7, 0]);
    }
}
