//! [`PagedChunk`]: a differential `Chunk` whose body is resident or pooled.
//!
//! Invariant: a chunk's records are sorted by `((key, val), time)` and consolidated, whether
//! they sit on the heap or in the pool, and no reference into pool memory outlives the pin
//! that protects it. Everything in the submodules serves one of the two.
//!
//! The module is laid out as upstream's `trace::chunk` is, one concern per file, each
//! opening with the invariant it keeps; none imports another that imports it back:
//! - [`layout`]: the columnar body of a sealed chunk ([`Layout`]: keys once, then vals,
//!   times and diffs by column), the same bytes on the heap and in a pool slot;
//! - [`body`]: the representation: [`PagedChunk`], its rows or columnar body (packed on the
//!   heap or pooled), its fences and metadata, and how a body is materialized, sealed or
//!   handed to a lookup; imports [`layout`];
//! - [`builder`]: a columnar body written record by record from encoded items
//!   (`BodyBuilder`) and read forward (`Source`); imports [`body`] and [`layout`];
//! - [`column_ops`]: the operations on variable-length records, on columnar bodies through
//!   [`builder`]: bytes copied, encodings compared, nothing decoded per item;
//! - [`ops`]: the `Chunk` operations (`merge`, `extract`, `advance`, `settle` and its
//!   commit hook `seal`) and the container traits the chunker builds chunks with, on rows
//!   for fixed-width records and through [`column_ops`] for variable-length ones; imports
//!   [`body`] and [`column_ops`];
//! - [`cursor`]: [`PagedCursor`], the `Navigable` cursor over one chunk, and
//!   `NavigableChunk::bounds`; imports [`body`].

mod body;
mod builder;
mod column_ops;
mod cursor;
mod layout;
mod ops;

pub use body::PagedChunk;
pub(crate) use body::{unreadable, LookupBody};
pub use cursor::PagedCursor;
pub(crate) use layout::Layout;
pub(crate) use ops::chunk_bytes;
