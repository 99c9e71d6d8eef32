//! Every kind of `PagedData` round-trips through its encoding (proptest): composites with
//! variable-length parts, vectors, options, and `#[derive(PagedData)]` structs and enums
//! (named, tuple and unit; by value and borrowed; generic). For each value: `encode` writes
//! exactly `encoded_len` bytes (`WIDTH` when fixed), `decode` and `into_owned(borrow)` give
//! the value back, the borrowed item equals the resident one, `read_item` is `Some` exactly
//! for fixed-width types, and items order as the values do. Each value is also checked as the
//! middle part of a tuple, so a length prefix that is not the last part's is read back.
//! The column format over the same types is checked by data.rs's unit tests.

use std::fmt::Debug;

use proptest::prelude::*;
use spillway_trace::{FixedWidth, PagedData, Seq};
use timely::order::Product;

/// Checks one value's encoding (see the module docs).
fn value<X: PagedData + Debug>(x: &X) {
    let len = x.encoded_len();
    if let Some(w) = X::WIDTH {
        assert_eq!(len, w, "{x:?}: WIDTH");
    }
    let mut buf = vec![0xAAu8; len];
    x.encode(&mut buf);
    assert_eq!(&X::decode(&buf), x, "decode");
    let borrowed = X::borrow(&buf);
    assert_eq!(borrowed, x.item(), "borrowed item");
    assert_eq!(&X::into_owned(borrowed), x, "into_owned");
    assert_eq!(
        X::read_item(&buf).is_some(),
        X::WIDTH.is_some(),
        "read_item"
    );
    if let Some(item) = X::read_item(&buf) {
        assert_eq!(item, x.item());
    }
}

/// Checks `xs`, their order against their items', and each inside `(String, X, u8)`.
fn all<X: PagedData + Debug>(xs: &[X]) {
    for x in xs {
        value(x);
        value(&("before".to_string(), x.clone(), 7u8));
        value(&(x.clone(), x.clone()));
    }
    for a in xs {
        for b in xs.iter().take(8) {
            assert_eq!(a.cmp(b), a.item().cmp(&b.item()), "{a:?} against {b:?}");
        }
    }
}

/// A user's struct with a `String`: a borrowed item, `CustomerRef<'a>`.
#[derive(PagedData, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Customer {
    name: String,
    id: u64,
    tags: Vec<String>,
}

/// A tuple struct of fixed-width fields: by value.
#[derive(PagedData, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Point(i32, u64);

/// A struct of a user's by-value type, asked by value.
#[derive(PagedData, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[paged(by_value)]
struct Edge {
    src: Point,
    dst: Point,
}

/// A unit struct: zero bytes, by value.
#[derive(PagedData, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Marker;

/// A fixed-width enum: a tag then the widest variant's bytes, by value.
#[derive(PagedData, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Shape {
    Dot,
    Line(u16, i16),
    Box { w: u8, h: u64 },
}

/// A variable-length enum with every kind of variant: a borrowed item, `EventRef<'a>`.
#[derive(PagedData, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[paged(item = "EventView")]
enum Event {
    Closed,
    Note(String, Option<String>),
    Moved { to: Point, path: Vec<u32> },
}

/// A struct naming the trait's crate, asked borrowed though fixed-width.
#[derive(PagedData, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[paged(crate = "spillway_trace", borrowed)]
struct Pair {
    a: u8,
    b: (u16, u32),
}

/// A generic struct: `T`'s item inside the generated one.
#[derive(PagedData, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Tagged<T>(T, Vec<u8>);

fn string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-c]{0,3}",
        "[a-zé☃]{0,40}".prop_map(|s| s.to_string()),
    ]
}

fn customer() -> impl Strategy<Value = Customer> {
    (
        string(),
        any::<u64>(),
        prop::collection::vec(string(), 0..4),
    )
        .prop_map(|(name, id, tags)| Customer { name, id, tags })
}

fn point() -> impl Strategy<Value = Point> {
    (any::<i32>(), 0u64..4).prop_map(|(a, b)| Point(a, b))
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        Just(Event::Closed),
        (string(), prop::option::of(string())).prop_map(|(a, b)| Event::Note(a, b)),
        (point(), prop::collection::vec(0u32..5, 0..5))
            .prop_map(|(to, path)| Event::Moved { to, path }),
    ]
}

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        Just(Shape::Dot),
        (any::<u16>(), any::<i16>()).prop_map(|(a, b)| Shape::Line(a, b)),
        (any::<u8>(), 0u64..3).prop_map(|(w, h)| Shape::Box { w, h }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn composites_of_variable_length_parts(
        a in prop::collection::vec((string(), any::<u64>()), 1..12),
        b in prop::collection::vec(prop::option::of(string()), 1..12),
        c in prop::collection::vec((any::<u32>(), prop::collection::vec(string(), 0..4)), 1..12),
        d in prop::collection::vec(prop::collection::vec(any::<u32>(), 0..6), 1..12),
        e in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..6), 1..12),
        f in prop::collection::vec([string(), string()], 1..8),
        g in prop::collection::vec((string(), string(), any::<i8>(), string()), 1..8),
    ) {
        all(&a);
        all(&b);
        all(&c);
        all(&d);
        all(&e);
        all(&f);
        all(&g);
        all(&[vec![(); 3], vec![]]);
        all(&[vec![Some(()), None]]);
        all(&[Product::new("outer".to_string(), 3u32)]);
        all(&[std::cmp::Reverse("r".to_string()), std::cmp::Reverse(String::new())]);
    }

    #[test]
    fn derived_types(
        customers in prop::collection::vec(customer(), 1..12),
        points in prop::collection::vec(point(), 1..12),
        events in prop::collection::vec(event(), 1..12),
        shapes in prop::collection::vec(shape(), 1..12),
        tagged in prop::collection::vec((string(), prop::collection::vec(any::<u8>(), 0..4)), 1..8),
    ) {
        all(&customers);
        all(&points);
        let edges: Vec<Edge> = points.windows(2).map(|w| Edge { src: w[0], dst: w[1] }).collect();
        all(&edges);
        all(&events);
        all(&shapes);
        all(&[Marker]);
        all(&points.iter().map(|p| Pair { a: p.0 as u8, b: (p.1 as u16, 9) }).collect::<Vec<_>>());
        let tagged: Vec<Tagged<String>> = tagged.into_iter().map(|(a, b)| Tagged(a, b)).collect();
        all(&tagged);
        all(&[Tagged(Some(3u8), vec![1]), Tagged(None, vec![])]);
    }
}

#[test]
fn widths_and_item_forms() {
    // Fixed-width composites keep their parts' widths end to end and come back by value.
    fn by_value<X: FixedWidth>() {}
    by_value::<(u64, u64)>();
    by_value::<Point>();
    by_value::<Edge>();
    by_value::<Shape>();
    by_value::<Marker>();
    by_value::<Product<Product<u64, u32>, u64>>();
    assert_eq!(Point::WIDTH, Some(12));
    assert_eq!(Edge::WIDTH, Some(24));
    assert_eq!(Shape::WIDTH, Some(1 + 9));
    assert_eq!(Marker::WIDTH, Some(0));
    assert_eq!(<(String, u64)>::WIDTH, None);
    assert_eq!(Customer::WIDTH, None);
    assert_eq!(Event::WIDTH, None);
    assert_eq!(<[String; 0]>::WIDTH, Some(0));
    // Borrowed on request: fixed-width, but read through `PairRef`.
    assert_eq!(Pair::WIDTH, Some(7));
    let PairRef { a, b } = Pair { a: 1, b: (2, 3) }.item();
    assert_eq!((a, b), (1, (2, 3)));
    // Items read as upstream's and columnar's borrowed forms.
    let key = ("abc".to_string(), 5u64);
    let (s, n): (&str, u64) = key.item();
    assert_eq!((s, n), ("abc", 5));
    let raw = vec![1u8, 2];
    let bytes: &[u8] = raw.item();
    assert_eq!(bytes, &[1, 2]);
    let words = vec!["x".to_string(), "yz".to_string()];
    let seq: Seq<'_, String> = words.item();
    assert_eq!(seq.iter().collect::<Vec<&str>>(), ["x", "yz"]);
    let c = Customer {
        name: "n".into(),
        id: 1,
        tags: vec![],
    };
    let CustomerRef { name, id, tags } = c.item();
    assert_eq!((name, id, tags.len()), ("n", 1, 0));
    let e = Event::Note("a".into(), None);
    assert!(matches!(e.item(), EventView::Note("a", None)));
    assert_eq!(format!("{:?}", e.item()), "Note(\"a\", None)");
}

#[test]
#[should_panic(expected = "tag")]
fn a_corrupt_enum_tag_is_loud() {
    let _ = Shape::decode(&[9; 10]);
}
