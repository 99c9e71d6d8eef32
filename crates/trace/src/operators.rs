//! [`PagedCollectionExt`]: differential's collection operators with every arrangement in the
//! pool.
//!
//! Each method mirrors the `VecCollection` method of the same name with a `_paged` suffix
//! and one more argument, the [`Paging`] of the arrangements it makes: `x.join(y)` becomes
//! `x.join_paged(y, &paging)`, `x.distinct()` becomes `x.distinct_paged(&paging)`. The
//! suffix is needed, not a style: inherent methods win over trait methods in Rust, so a trait
//! method called `join` on a `VecCollection` could never be called with method syntax. With
//! `Paging::disabled()` the same dataflow runs with resident arrangements (same types).
//!
//! Joins run the vectored join tactic over two paged arrangements
//! ([`crate::JoinVectored`]); reductions run the paged reduce tactic ([`crate::PagedReduce`]),
//! whose output arrangements page through the same `paging`. User closures see owned keys and
//! values by reference, as upstream's do (`&K`, `&V`); paged arrangements read fixed-width
//! items by value, so the adapters copy each item once per call (a clone for `String`s).

use differential_dataflow::difference::{Abelian, Multiply, Semigroup};
use differential_dataflow::lattice::Lattice;
use differential_dataflow::trace::implementations::BatchContainer;
use differential_dataflow::{ExchangeData, Hashable, VecCollection};
use timely::order::TotalOrder;
use timely::progress::Timestamp;

use crate::data::PagedData;
use crate::pager::Paging;
use crate::reduce::{CountTotalPaged, ReducePaged, ThresholdPaged};
use crate::{ArrangePaged, ArrangeSelfPaged, JoinVectored};

/// The owned value of a paged item.
#[inline(always)]
fn own<X: PagedData>(item: X::Item<'_>) -> X {
    <X::Container as BatchContainer>::into_owned(item)
}

/// Reuses an empty vector's allocation for an element type of the same layout.
fn recycle<A, B>(mut vec: Vec<A>) -> Vec<B> {
    vec.clear();
    vec.into_iter().map(|_| unreachable!("empty")).collect()
}

/// Records that are `(key, val)` pairs: lets the keyed methods of [`PagedCollectionExt`]
/// name the key and value types of a collection of `D`. Implemented for every pair; callers
/// have no reason to implement it.
pub trait KeyVal<K, V>: Sized {
    /// The collection as one of `(key, val)` pairs (the identity for pairs).
    fn keyed<'scope, T: Timestamp, R: 'static>(
        collection: VecCollection<'scope, T, Self, R>,
    ) -> VecCollection<'scope, T, (K, V), R>;
}

impl<K: 'static, V: 'static> KeyVal<K, V> for (K, V) {
    fn keyed<'scope, T: Timestamp, R: 'static>(
        collection: VecCollection<'scope, T, Self, R>,
    ) -> VecCollection<'scope, T, (K, V), R> {
        collection
    }
}

/// differential's collection operators over paged arrangements (see the module docs):
/// `join`, `join_map`, `semijoin`, `antijoin`, `reduce`, `count`, `distinct`, `threshold`,
/// `consolidate`, and the total-order `count_total`, `distinct_total`, `threshold_total`,
/// each with a `_paged` suffix and a `&Paging` argument. Keyed methods apply to collections
/// of `(key, val)` pairs; keys, values, times and diffs must be [`PagedData`].
pub trait PagedCollectionExt<'scope, T, D, R>: Sized
where
    T: Timestamp + Lattice + PagedData,
    R: ExchangeData + Semigroup + PagedData,
{
    /// `join`: `(key, (val, val2))` for each pair of records with equal keys.
    #[allow(clippy::type_complexity)]
    fn join_paged<K, V, V2, R2>(
        self,
        other: VecCollection<'scope, T, (K, V2), R2>,
        paging: &Paging,
    ) -> VecCollection<'scope, T, (K, (V, V2)), <R as Multiply<R2>>::Output>
    where
        D: KeyVal<K, V>,
        K: ExchangeData + Hashable + PagedData,
        V: ExchangeData + PagedData,
        V2: ExchangeData + PagedData,
        R2: ExchangeData + Semigroup + PagedData,
        R: Multiply<R2, Output: Semigroup + 'static>,
    {
        self.join_map_paged(other, paging, |k: &K, v: &V, v2: &V2| {
            (k.clone(), (v.clone(), v2.clone()))
        })
    }

    /// `join_map`: `logic(key, val, val2)` for each pair of records with equal keys.
    fn join_map_paged<K, V, V2, R2, D2, L>(
        self,
        other: VecCollection<'scope, T, (K, V2), R2>,
        paging: &Paging,
        logic: L,
    ) -> VecCollection<'scope, T, D2, <R as Multiply<R2>>::Output>
    where
        D: KeyVal<K, V>,
        K: ExchangeData + Hashable + PagedData,
        V: ExchangeData + PagedData,
        V2: ExchangeData + PagedData,
        R2: ExchangeData + Semigroup + PagedData,
        R: Multiply<R2, Output: Semigroup + 'static>,
        D2: differential_dataflow::Data,
        L: FnMut(&K, &V, &V2) -> D2 + 'static;

    /// `semijoin`: the records whose key is in `other`, multiplicities multiplied.
    fn semijoin_paged<K, V, R2>(
        self,
        other: VecCollection<'scope, T, K, R2>,
        paging: &Paging,
    ) -> VecCollection<'scope, T, (K, V), <R as Multiply<R2>>::Output>
    where
        D: KeyVal<K, V>,
        K: ExchangeData + Hashable + PagedData,
        V: ExchangeData + PagedData,
        R2: ExchangeData + Semigroup + PagedData,
        R: Multiply<R2, Output: Semigroup + 'static>;

    /// `antijoin`: `self` minus its semijoin with `other`.
    fn antijoin_paged<K, V, R2>(
        self,
        other: VecCollection<'scope, T, K, R2>,
        paging: &Paging,
    ) -> VecCollection<'scope, T, (K, V), R>
    where
        D: KeyVal<K, V>,
        K: ExchangeData + Hashable + PagedData,
        V: ExchangeData + PagedData,
        R2: ExchangeData + Semigroup + PagedData,
        R: Multiply<R2, Output = R> + Abelian;

    /// `reduce`: `logic(key, input, output)` pushes the key's output given its input (sorted
    /// by value, nonzero diffs; never empty).
    fn reduce_paged<K, V, V2, R2, L>(
        self,
        paging: &Paging,
        logic: L,
    ) -> VecCollection<'scope, T, (K, V2), R2>
    where
        D: KeyVal<K, V>,
        K: ExchangeData + Hashable + PagedData,
        V: ExchangeData + PagedData,
        V2: ExchangeData + PagedData,
        R2: ExchangeData + Abelian + PagedData,
        L: FnMut(&K, &[(&V, R)], &mut Vec<(V2, R2)>) + 'static;

    /// `count`: each record with its accumulated multiplicity.
    fn count_paged(self, paging: &Paging) -> VecCollection<'scope, T, (D, R), isize>
    where
        D: ExchangeData + Hashable + PagedData;

    /// `distinct`: each record with a nonzero multiplicity, once.
    fn distinct_paged(self, paging: &Paging) -> VecCollection<'scope, T, D, isize>
    where
        D: ExchangeData + Hashable + PagedData,
    {
        self.threshold_paged(paging, |_, _| 1)
    }

    /// `threshold`: each record with multiplicity `thresh(record, multiplicity)`.
    fn threshold_paged<R2, F>(self, paging: &Paging, thresh: F) -> VecCollection<'scope, T, D, R2>
    where
        D: ExchangeData + Hashable + PagedData,
        R2: ExchangeData + Abelian + PagedData,
        F: FnMut(&D, &R) -> R2 + 'static;

    /// `consolidate`: equal records folded into one, through a paged arrangement.
    fn consolidate_paged(self, paging: &Paging) -> VecCollection<'scope, T, D, R>
    where
        D: ExchangeData + Hashable + PagedData;

    /// `count_total` (totally ordered times): outputs change only at input times.
    fn count_total_paged(self, paging: &Paging) -> VecCollection<'scope, T, (D, R), isize>
    where
        D: ExchangeData + Hashable + PagedData,
        T: TotalOrder;

    /// `threshold_total` (totally ordered times).
    fn threshold_total_paged<R2, F>(
        self,
        paging: &Paging,
        thresh: F,
    ) -> VecCollection<'scope, T, D, R2>
    where
        D: ExchangeData + Hashable + PagedData,
        T: TotalOrder,
        R2: Abelian + 'static,
        F: FnMut(&D, &R) -> R2 + 'static;

    /// `distinct_total` (totally ordered times).
    fn distinct_total_paged(self, paging: &Paging) -> VecCollection<'scope, T, D, isize>
    where
        D: ExchangeData + Hashable + PagedData,
        T: TotalOrder,
    {
        self.threshold_total_paged(paging, |_, _| 1)
    }
}

impl<'scope, T, D, R> PagedCollectionExt<'scope, T, D, R> for VecCollection<'scope, T, D, R>
where
    T: Timestamp + Lattice + PagedData,
    D: ExchangeData,
    R: ExchangeData + Semigroup + PagedData,
{
    fn join_map_paged<K, V, V2, R2, D2, L>(
        self,
        other: VecCollection<'scope, T, (K, V2), R2>,
        paging: &Paging,
        mut logic: L,
    ) -> VecCollection<'scope, T, D2, <R as Multiply<R2>>::Output>
    where
        D: KeyVal<K, V>,
        K: ExchangeData + Hashable + PagedData,
        V: ExchangeData + PagedData,
        V2: ExchangeData + PagedData,
        R2: ExchangeData + Semigroup + PagedData,
        R: Multiply<R2, Output: Semigroup + 'static>,
        D2: differential_dataflow::Data,
        L: FnMut(&K, &V, &V2) -> D2 + 'static,
    {
        let left = D::keyed(self).arrange_by_key_paged(paging);
        let right = other.arrange_by_key_paged(paging);
        left.join_core_vectored(right, move |k, v, v2| {
            Some(logic(&own::<K>(k), &own::<V>(v), &own::<V2>(v2)))
        })
    }

    fn semijoin_paged<K, V, R2>(
        self,
        other: VecCollection<'scope, T, K, R2>,
        paging: &Paging,
    ) -> VecCollection<'scope, T, (K, V), <R as Multiply<R2>>::Output>
    where
        D: KeyVal<K, V>,
        K: ExchangeData + Hashable + PagedData,
        V: ExchangeData + PagedData,
        R2: ExchangeData + Semigroup + PagedData,
        R: Multiply<R2, Output: Semigroup + 'static>,
    {
        let left = D::keyed(self).arrange_by_key_paged(paging);
        let right = other.arrange_by_self_paged(paging);
        left.join_core_vectored(right, |k, v, _| Some((own::<K>(k), own::<V>(v))))
    }

    fn antijoin_paged<K, V, R2>(
        self,
        other: VecCollection<'scope, T, K, R2>,
        paging: &Paging,
    ) -> VecCollection<'scope, T, (K, V), R>
    where
        D: KeyVal<K, V>,
        K: ExchangeData + Hashable + PagedData,
        V: ExchangeData + PagedData,
        R2: ExchangeData + Semigroup + PagedData,
        R: Multiply<R2, Output = R> + Abelian,
    {
        let keyed = D::keyed(self);
        keyed
            .clone()
            .concat(keyed.semijoin_paged(other, paging).negate())
    }

    fn reduce_paged<K, V, V2, R2, L>(
        self,
        paging: &Paging,
        mut logic: L,
    ) -> VecCollection<'scope, T, (K, V2), R2>
    where
        D: KeyVal<K, V>,
        K: ExchangeData + Hashable + PagedData,
        V: ExchangeData + PagedData,
        V2: ExchangeData + PagedData,
        R2: ExchangeData + Abelian + PagedData,
        L: FnMut(&K, &[(&V, R)], &mut Vec<(V2, R2)>) + 'static,
    {
        // Owned copies of the key's input values, and the slice of references handed to
        // `logic` (kept for their allocations).
        let mut vals: Vec<V> = Vec::new();
        let mut refs: Vec<(&'static V, R)> = Vec::new();
        D::keyed(self)
            .arrange_by_key_paged(paging)
            .reduce_paged(paging, move |key, input, output| {
                let key = own::<K>(key);
                vals.clear();
                vals.extend(input.iter().map(|(v, _)| own::<V>(*v)));
                let mut slice: Vec<(&V, R)> = recycle(std::mem::take(&mut refs));
                slice.extend(vals.iter().zip(input).map(|(v, (_, r))| (v, r.clone())));
                logic(&key, &slice, output);
                refs = recycle(slice);
            })
            .as_collection(|k, v| (own::<K>(k), own::<V2>(v)))
    }

    fn count_paged(self, paging: &Paging) -> VecCollection<'scope, T, (D, R), isize>
    where
        D: ExchangeData + Hashable + PagedData,
    {
        self.arrange_by_self_paged(paging)
            .count_paged(paging)
            .as_collection(|k, c| (own::<D>(k), own::<R>(c)))
    }

    fn threshold_paged<R2, F>(self, paging: &Paging, thresh: F) -> VecCollection<'scope, T, D, R2>
    where
        D: ExchangeData + Hashable + PagedData,
        R2: ExchangeData + Abelian + PagedData,
        F: FnMut(&D, &R) -> R2 + 'static,
    {
        self.arrange_by_self_paged(paging)
            .threshold_paged(paging, thresh)
            .as_collection(|k, _| own::<D>(k))
    }

    fn consolidate_paged(self, paging: &Paging) -> VecCollection<'scope, T, D, R>
    where
        D: ExchangeData + Hashable + PagedData,
    {
        self.arrange_by_self_paged(paging)
            .as_collection(|k, _| own::<D>(k))
    }

    fn count_total_paged(self, paging: &Paging) -> VecCollection<'scope, T, (D, R), isize>
    where
        D: ExchangeData + Hashable + PagedData,
        T: TotalOrder,
    {
        self.arrange_by_self_paged(paging).count_total_paged()
    }

    fn threshold_total_paged<R2, F>(
        self,
        paging: &Paging,
        thresh: F,
    ) -> VecCollection<'scope, T, D, R2>
    where
        D: ExchangeData + Hashable + PagedData,
        T: TotalOrder,
        R2: Abelian + 'static,
        F: FnMut(&D, &R) -> R2 + 'static,
    {
        self.arrange_by_self_paged(paging)
            .threshold_total_paged(thresh)
    }
}
