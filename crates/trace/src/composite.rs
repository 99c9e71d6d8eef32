//! [`PagedData`] for composites of paged parts: tuples (to 12 fields), arrays `[T; N]`,
//! `Option<T>`, timely's `Product<A, B>`, `Wrapping<T>` and `Reverse<T>`.
//!
//! Invariant: a composite's item is the same composite of its parts' items
//! (`(A::Item<'a>, B::Item<'a>)`, `Option<T::Item<'a>>`, `Product<A::Item<'a>, B::Item<'a>>`,
//! ...), so it orders exactly as the owned composite does (the derived lexicographic orders,
//! `None` first, `Reverse` reversed), and it is the value itself when every part is
//! fixed-width: `(u64, u32)`, `Option<i64>` and `Product<u64, u64>` still come back by value.
//!
//! Encodings are the parts' in order ([`crate::FieldWriter`]); `WIDTH` is `Some(sum)` when
//! every part is fixed-width ([`crate::parts::fixed_width`]), computed in const context.
//! `Option<T>` is a tag byte (`0` for `None`, `1` for `Some`) then `T`'s encoding, zeros for
//! `None` when `T` is fixed-width (so the width stays fixed) and nothing otherwise.
//! `Product<A, B>` is the outer time then the inner one: the timestamps of `iterate` and of
//! nested scopes, to any depth. `Wrapping<T>` and `Reverse<T>` are `T`'s encoding (the order
//! is reversed by `Reverse`'s `Ord`, not by the encoding).

use std::cmp::Reverse;
use std::num::Wrapping;

use timely::order::Product;

use crate::data::{ItemColumn, PagedData};
use crate::parts::{fixed_width, FieldReader, FieldWriter, FieldsLen};
use crate::seq::Elements;

macro_rules! tuple {
    ($n:expr; $($t:ident $x:ident),+) => {
        /// The fields' encodings in order; the item is the tuple of the fields' items.
        impl<$($t: PagedData),+> PagedData for ($($t,)+) {
            type Item<'a> = ($($t::Item<'a>,)+);
            type Container = ItemColumn<Self>;
            type Seq = Elements;
            const WIDTH: Option<usize> = fixed_width(&[$($t::WIDTH),+]);

            #[inline(always)]
            fn item(&self) -> Self::Item<'_> {
                let ($($x,)+) = self;
                ($($x.item(),)+)
            }
            #[inline(always)]
            fn encoded_len(&self) -> usize {
                match Self::WIDTH {
                    Some(w) => w,
                    None => {
                        let ($($x,)+) = self;
                        FieldsLen::new($n)$(.add($x))+.total()
                    }
                }
            }
            #[inline(always)]
            fn encode(&self, out: &mut [u8]) {
                let ($($x,)+) = self;
                FieldWriter::new(out, $n)$(.put($x))+;
            }
            #[inline(always)]
            fn decode(bytes: &[u8]) -> Self {
                let mut r = FieldReader::new(bytes, $n);
                ($(r.decode::<$t>(),)+)
            }
            #[inline(always)]
            fn read_item<'a>(bytes: &[u8]) -> Option<Self::Item<'a>> {
                Self::WIDTH?;
                let mut r = FieldReader::new(bytes, $n);
                Some(($(r.read_item::<$t>()?,)+))
            }
            #[inline(always)]
            fn borrow(bytes: &[u8]) -> Self::Item<'_> {
                let mut r = FieldReader::new(bytes, $n);
                ($(r.item::<$t>(),)+)
            }
            #[inline(always)]
            fn reborrow<'b, 'a: 'b>(item: Self::Item<'a>) -> Self::Item<'b> {
                let ($($x,)+) = item;
                ($($t::reborrow($x),)+)
            }
            #[inline(always)]
            fn into_owned(item: Self::Item<'_>) -> Self {
                let ($($x,)+) = item;
                ($($t::into_owned($x),)+)
            }
        }
    };
}
tuple!(1; A a);
tuple!(2; A a, B b);
tuple!(3; A a, B b, C c);
tuple!(4; A a, B b, C c, D d);
tuple!(5; A a, B b, C c, D d, E e);
tuple!(6; A a, B b, C c, D d, E e, F f);
tuple!(7; A a, B b, C c, D d, E e, F f, G g);
tuple!(8; A a, B b, C c, D d, E e, F f, G g, H h);
tuple!(9; A a, B b, C c, D d, E e, F f, G g, H h, I i);
tuple!(10; A a, B b, C c, D d, E e, F f, G g, H h, I i, J j);
tuple!(11; A a, B b, C c, D d, E e, F f, G g, H h, I i, J j, K k);
tuple!(12; A a, B b, C c, D d, E e, F f, G g, H h, I i, J j, K k, L l);

/// The elements' encodings in order; the item is the array of the elements' items.
impl<T: PagedData, const N: usize> PagedData for [T; N] {
    type Item<'a> = [T::Item<'a>; N];
    type Container = ItemColumn<Self>;
    type Seq = Elements;
    const WIDTH: Option<usize> = match T::WIDTH {
        Some(w) => Some(N * w),
        None if N == 0 => Some(0),
        None => None,
    };

    #[inline(always)]
    fn item(&self) -> Self::Item<'_> {
        self.each_ref().map(|x| x.item())
    }
    #[inline(always)]
    fn encoded_len(&self) -> usize {
        match Self::WIDTH {
            Some(w) => w,
            None => {
                let mut len = FieldsLen::new(N);
                self.iter().for_each(|x| {
                    len.add(x);
                });
                len.total()
            }
        }
    }
    #[inline(always)]
    fn encode(&self, out: &mut [u8]) {
        let mut w = FieldWriter::new(out, N);
        self.iter().for_each(|x| {
            w.put(x);
        });
    }
    #[inline(always)]
    fn decode(bytes: &[u8]) -> Self {
        let mut r = FieldReader::new(bytes, N);
        std::array::from_fn(|_| r.decode::<T>())
    }
    #[inline(always)]
    fn read_item<'a>(bytes: &[u8]) -> Option<Self::Item<'a>> {
        Self::WIDTH?;
        let mut r = FieldReader::new(bytes, N);
        Some(std::array::from_fn(|_| {
            r.read_item::<T>()
                .expect("a fixed-width part reads by value")
        }))
    }
    #[inline(always)]
    fn borrow(bytes: &[u8]) -> Self::Item<'_> {
        let mut r = FieldReader::new(bytes, N);
        std::array::from_fn(|_| r.item::<T>())
    }
    #[inline(always)]
    fn reborrow<'b, 'a: 'b>(item: Self::Item<'a>) -> Self::Item<'b> {
        item.map(T::reborrow)
    }
    #[inline(always)]
    fn into_owned(item: Self::Item<'_>) -> Self {
        item.map(T::into_owned)
    }
}

/// A tag byte (`0` for `None`, `1` for `Some`) then `T`'s encoding: zeros for `None` when `T`
/// is fixed-width, so the width stays fixed; nothing for `None` otherwise.
impl<T: PagedData> PagedData for Option<T> {
    type Item<'a> = Option<T::Item<'a>>;
    type Container = ItemColumn<Self>;
    type Seq = Elements;
    const WIDTH: Option<usize> = match T::WIDTH {
        Some(w) => Some(1 + w),
        None => None,
    };

    #[inline(always)]
    fn item(&self) -> Self::Item<'_> {
        self.as_ref().map(T::item)
    }
    #[inline(always)]
    fn encoded_len(&self) -> usize {
        match (Self::WIDTH, self) {
            (Some(w), _) => w,
            (None, None) => 1,
            (None, Some(x)) => 1 + x.encoded_len(),
        }
    }
    #[inline(always)]
    fn encode(&self, out: &mut [u8]) {
        match self {
            None => out.fill(0),
            Some(x) => {
                out[0] = 1;
                x.encode(&mut out[1..]);
            }
        }
    }
    #[inline(always)]
    fn read_item<'a>(bytes: &[u8]) -> Option<Self::Item<'a>> {
        Self::WIDTH?;
        match option_tag(bytes) {
            false => Some(None),
            true => Some(Some(T::read_item(&bytes[1..])?)),
        }
    }
    #[inline(always)]
    fn borrow(bytes: &[u8]) -> Self::Item<'_> {
        option_tag(bytes).then(|| T::borrow(&bytes[1..]))
    }
    #[inline(always)]
    fn reborrow<'b, 'a: 'b>(item: Self::Item<'a>) -> Self::Item<'b> {
        item.map(T::reborrow)
    }
    #[inline(always)]
    fn into_owned(item: Self::Item<'_>) -> Self {
        item.map(T::into_owned)
    }
}

/// Whether an encoded `Option` is `Some`.
#[inline(always)]
fn option_tag(bytes: &[u8]) -> bool {
    match bytes[0] {
        0 => false,
        1 => true,
        b => panic!("spillway: a paged Option reads back with tag {b}"),
    }
}

/// The outer time's encoding then the inner one's: the timestamps of `iterate` and of
/// nested scopes (`Product<Product<u64, u32>, u64>` and so on, to any depth).
impl<A: PagedData, B: PagedData> PagedData for Product<A, B> {
    type Item<'a> = Product<A::Item<'a>, B::Item<'a>>;
    type Container = ItemColumn<Self>;
    type Seq = Elements;
    const WIDTH: Option<usize> = fixed_width(&[A::WIDTH, B::WIDTH]);

    #[inline(always)]
    fn item(&self) -> Self::Item<'_> {
        Product::new(self.outer.item(), self.inner.item())
    }
    #[inline(always)]
    fn encoded_len(&self) -> usize {
        match Self::WIDTH {
            Some(w) => w,
            None => FieldsLen::new(2).add(&self.outer).add(&self.inner).total(),
        }
    }
    #[inline(always)]
    fn encode(&self, out: &mut [u8]) {
        FieldWriter::new(out, 2).put(&self.outer).put(&self.inner);
    }
    #[inline(always)]
    fn decode(bytes: &[u8]) -> Self {
        let mut r = FieldReader::new(bytes, 2);
        let outer = r.decode::<A>();
        Product::new(outer, r.decode::<B>())
    }
    #[inline(always)]
    fn read_item<'a>(bytes: &[u8]) -> Option<Self::Item<'a>> {
        Self::WIDTH?;
        let mut r = FieldReader::new(bytes, 2);
        let outer = r.read_item::<A>()?;
        Some(Product::new(outer, r.read_item::<B>()?))
    }
    #[inline(always)]
    fn borrow(bytes: &[u8]) -> Self::Item<'_> {
        let mut r = FieldReader::new(bytes, 2);
        let outer = r.item::<A>();
        Product::new(outer, r.item::<B>())
    }
    #[inline(always)]
    fn reborrow<'b, 'a: 'b>(item: Self::Item<'a>) -> Self::Item<'b> {
        Product::new(A::reborrow(item.outer), B::reborrow(item.inner))
    }
    #[inline(always)]
    fn into_owned(item: Self::Item<'_>) -> Self {
        Product::new(A::into_owned(item.outer), B::into_owned(item.inner))
    }
}

/// Implements [`PagedData`] for a one-field wrapper (`Wrapping`, `Reverse`) as its field.
macro_rules! wrapper {
    ($w:ident) => {
        /// `T`'s encoding; the item is the wrapped item.
        impl<T: PagedData> PagedData for $w<T> {
            type Item<'a> = $w<T::Item<'a>>;
            type Container = ItemColumn<Self>;
            type Seq = Elements;
            const WIDTH: Option<usize> = T::WIDTH;

            #[inline(always)]
            fn item(&self) -> Self::Item<'_> {
                $w(self.0.item())
            }
            #[inline(always)]
            fn encoded_len(&self) -> usize {
                self.0.encoded_len()
            }
            #[inline(always)]
            fn encode(&self, out: &mut [u8]) {
                self.0.encode(out)
            }
            #[inline(always)]
            fn decode(bytes: &[u8]) -> Self {
                $w(T::decode(bytes))
            }
            #[inline(always)]
            fn read_item<'a>(bytes: &[u8]) -> Option<Self::Item<'a>> {
                T::read_item(bytes).map($w)
            }
            #[inline(always)]
            fn borrow(bytes: &[u8]) -> Self::Item<'_> {
                $w(T::borrow(bytes))
            }
            #[inline(always)]
            fn reborrow<'b, 'a: 'b>(item: Self::Item<'a>) -> Self::Item<'b> {
                $w(T::reborrow(item.0))
            }
            #[inline(always)]
            fn into_owned(item: Self::Item<'_>) -> Self {
                $w(T::into_owned(item.0))
            }
        }
    };
}
wrapper!(Wrapping);
wrapper!(Reverse);
