//! The by-value primitives: integers, `bool`, `char`, `()`, `Duration`, `Present`; and
//! [`FixedWidth`], the types whose item is the value itself.
//!
//! Invariant: every value of these types encodes in exactly `WIDTH` bytes and decodes back
//! to itself, so item `i` of a column is found by arithmetic alone and read **by value**: no
//! reference into pool memory escapes the pin that protects it (see [`crate::chunk`]).
//!
//! # Provided types
//! - every integer (`u8` to `u128`, `i8` to `i128`, `usize`, `isize`; little-endian), `bool`
//!   (one byte), `char` (its scalar value as a `u32`), `()` (zero bytes);
//! - [`std::time::Duration`] (seconds then nanoseconds: timely's `Duration` timestamps) and
//!   differential's `Present` (zero bytes: the diff of insert-only collections).
//!
//! Composites of these (tuples, arrays, `Option`, timely's `Product`, `Wrapping`, `Reverse`,
//! derived structs and enums) are fixed-width too when all their parts are, with the parts'
//! encodings end to end, and come back by value; see [`crate::composite`].
//!
//! Nothing compares encodings: every type's order is its own `Ord` (for little-endian
//! integers, not the byte order). An encoding only has to round-trip.
//!
//! # Why `FixedWidth` is a marker, not a codec
//! Each type implements [`PagedData`] directly, so composites can mix fixed-width and
//! variable-length parts without coherence conflicts (a blanket `PagedData` impl over a codec
//! trait forbade `(String, u64)`). What a codec trait gave, the by-value fast path, is
//! `WIDTH = Some(w)` with `read_item`, and it is exactly as fast: `u64`'s `read_item` is
//! `from_le_bytes`, and a tuple's is its parts' at constant offsets. [`FixedWidth`] stays as
//! the name of that path for generic code: it holds for every `PagedData` type that is `Copy`
//! and whose item is itself, so code bounded by it takes keys and values by value. It is
//! implemented automatically; nothing implements it by hand.

use differential_dataflow::difference::Present;

use crate::data::{ItemColumn, PagedData};
use crate::seq::{Bytes, Elements};

/// A [`PagedData`] type that cursors return by value: `Copy`, and its item is itself.
///
/// Implemented for every such type (integers, `bool`, `char`, `()`, `Duration`, `Present`,
/// and tuples, arrays, `Option`, `Product`, `Wrapping`, `Reverse` and by-value derived types
/// of them): a bound for generic code that reads keys as `K` rather than `K::Item<'_>`.
pub trait FixedWidth: Copy + for<'a> PagedData<Item<'a> = Self> {}

impl<X: Copy + for<'a> PagedData<Item<'a> = X>> FixedWidth for X {}

/// Implements [`PagedData`] for a by-value primitive of width `$w` from its `write` and
/// `read` expressions.
macro_rules! by_value {
    ($t:ty, $seq:ty, $w:expr, |$x:ident, $out:ident| $write:expr, |$bytes:ident| $read:expr) => {
        impl PagedData for $t {
            type Item<'a> = $t;
            type Container = ItemColumn<$t>;
            type Seq = $seq;
            const WIDTH: Option<usize> = Some($w);

            #[inline(always)]
            fn item(&self) -> $t {
                *self
            }
            #[inline(always)]
            fn encoded_len(&self) -> usize {
                $w
            }
            #[inline(always)]
            #[allow(clippy::unused_unit)]
            fn encode(&self, $out: &mut [u8]) {
                let $x = *self;
                $write
            }
            #[inline(always)]
            fn decode($bytes: &[u8]) -> $t {
                $read
            }
            #[inline(always)]
            fn read_item<'a>($bytes: &[u8]) -> Option<Self::Item<'a>> {
                Some($read)
            }
            #[inline(always)]
            fn borrow($bytes: &[u8]) -> $t {
                $read
            }
            #[inline(always)]
            fn reborrow<'b, 'a: 'b>(item: $t) -> $t {
                item
            }
            #[inline(always)]
            fn into_owned(item: $t) -> $t {
                item
            }
        }
    };
}

macro_rules! int {
    ($($t:ty),*) => {$(
        by_value!($t, Elements, std::mem::size_of::<$t>(),
            |x, out| out.copy_from_slice(&x.to_le_bytes()),
            |bytes| <$t>::from_le_bytes(bytes.try_into().expect("width")));
    )*};
}
int!(u16, u32, u64, u128, i8, i16, i32, i64, i128, usize, isize);
// `Vec<u8>` reads as `&[u8]`.
by_value!(u8, Bytes, 1, |x, out| out[0] = x, |bytes| bytes[0]);

by_value!((), Elements, 0, |_x, _out| (), |_bytes| ());

// Zero bytes: differential's diff for collections that are only ever inserted into.
by_value!(Present, Elements, 0, |_x, _out| (), |_bytes| Present);

// One byte, `0` or `1`.
by_value!(
    bool,
    Elements,
    1,
    |x, out| out[0] = u8::from(x),
    |bytes| match bytes[0] {
        0 => false,
        1 => true,
        b => panic!("spillway: a paged bool reads back as byte {b}"),
    }
);

// The scalar value as a little-endian `u32`. The bytes were a `char` when written and are
// checksummed in the extent.
by_value!(
    char,
    Elements,
    4,
    |x, out| out.copy_from_slice(&u32::from(x).to_le_bytes()),
    |bytes| char::from_u32(u32::from_le_bytes(bytes.try_into().expect("width")))
        .expect("spillway: a paged char is not a Unicode scalar value")
);

// Whole seconds (`u64`) then the sub-second nanoseconds (`u32`): timely's `Duration`
// timestamps.
by_value!(
    std::time::Duration,
    Elements,
    12,
    |x, out| {
        out[..8].copy_from_slice(&x.as_secs().to_le_bytes());
        out[8..12].copy_from_slice(&x.subsec_nanos().to_le_bytes());
    },
    |bytes| std::time::Duration::new(
        u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")),
        u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")),
    )
);

#[cfg(test)]
mod tests {
    use super::*;
    use timely::order::Product;

    /// Round-trips `x` by value: `WIDTH` bytes, `decode`, `read_item` and `borrow` all give
    /// `x` back, and the item is `x` itself.
    fn round_trip<T: FixedWidth + std::fmt::Debug>(x: T) {
        let width = T::WIDTH.expect("fixed-width");
        assert_eq!(x.encoded_len(), width);
        let mut buf = vec![0u8; width];
        x.encode(&mut buf);
        assert_eq!(T::decode(&buf), x);
        assert_eq!(T::read_item(&buf), Some(x));
        assert_eq!(T::borrow(&buf), x);
        assert_eq!(x.item(), x);
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
        assert_eq!(<(u64, u32)>::WIDTH, Some(12));
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
        assert_eq!(<Option<u64>>::WIDTH, Some(9));
        assert_eq!(<Product<u64, u64>>::WIDTH, Some(16));
        assert_eq!(<[u32; 5]>::WIDTH, Some(20));
        assert_eq!(<(u8, u16, u32, u64, u8, u16, u32, u64)>::WIDTH, Some(30));
        assert_eq!(Present::WIDTH, Some(0));
    }

    #[test]
    #[should_panic(expected = "tag")]
    fn a_corrupt_option_tag_is_loud() {
        let _ = <Option<u8>>::decode(&[7, 0]);
    }
}
