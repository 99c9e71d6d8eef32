//! [`PagedChunk`]: a differential `Chunk` whose body is resident or pooled.
//!
//! Invariant: a chunk's records are sorted by `((key, val), time)` and consolidated, whether
//! they sit on the heap or in the pool, and no reference into pool memory outlives the pin
//! that protects it. Everything in the submodules serves one of the two.
//!
//! The module is laid out as upstream's `trace::chunk` is, one concern per file, each
//! opening with the invariant it keeps; none imports another that imports it back:
//! - [`body`]: the representation: [`PagedChunk`], its resident or pooled body, its fences
//!   and metadata, and how a body is materialized, paged out or handed to a lookup;
//! - [`ops`]: the `Chunk` operations (`merge`, `extract`, `advance`, `settle` and its
//!   commit hook `seal`) and the container traits the chunker builds chunks with; imports
//!   [`body`];
//! - [`cursor`]: [`PagedCursor`], the `Navigable` cursor over one chunk, and
//!   `NavigableChunk::bounds`; imports [`body`].

mod body;
mod cursor;
mod ops;

pub use body::PagedChunk;
pub(crate) use body::{unreadable, Columns, LookupBody};
pub use cursor::PagedCursor;
pub(crate) use ops::chunk_bytes;
