//! The `dd-col` backend: upstream's columnar `ColChunk` trace, with upstream's own spill
//! (`differential_dataflow::columnar::trace::spill`) installed on each worker at a record
//! budget of `budget / 32` and backed by an append-only scratch file in the extent
//! directory. Upstream's policy is a high-water mark: the first `budget` records of committed
//! chunks stay resident, every later chunk is written out, and the file never shrinks.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use differential_dataflow::batcher::merge::chunker::ContainerChunker;
use differential_dataflow::columnar::trace::spill::{self, BytesSource, BytesStore, SpillStats};
use differential_dataflow::columnar::trace::{ColChunk, Spine};
use differential_dataflow::operators::arrange::arrangement::arrange_core;
use differential_dataflow::operators::arrange::{Arranged, TraceAgent};
use differential_dataflow::trace::chunk::ChunkBatcher;
use differential_dataflow::{Hashable, VecCollection};
use timely::dataflow::channels::pact::Exchange;

/// Bytes per record of the record budget (a record budget of `budget / 32`).
pub const RECORD_BYTES: u64 = 32;

type Update = (u64, u64, u64, isize);
type Batcher = ChunkBatcher<ContainerChunker<ColChunk<Update>>, ColChunk<Update>>;

/// The columnar trace of `(u64, u64)` updates.
pub type ColSpine = Spine<u64, u64, u64, isize>;

/// Arranges `data` by key into upstream's columnar trace.
pub fn arrange<'s>(
    data: VecCollection<'s, u64, (u64, u64), isize>,
) -> Arranged<'s, TraceAgent<ColSpine>> {
    let exchange = Exchange::new(|u: &((u64, u64), u64, isize)| (u.0).0.hashed());
    arrange_core::<_, _, Batcher, ColSpine>(data.inner, exchange, "ColArrange", Batcher::new)
}

/// An append-only scratch file shared by the chunks one worker spilled.
struct ScratchFile {
    file: Rc<File>,
    end: u64,
}

struct ScratchBytes {
    file: Rc<File>,
    at: u64,
    len: usize,
}

impl BytesStore for ScratchFile {
    fn store(&mut self, bytes: &[u8]) -> Box<dyn BytesSource> {
        self.file
            .write_all_at(bytes, self.end)
            .unwrap_or_else(|e| panic!("spillway: dd-col spill write failed: {e}"));
        let source = ScratchBytes {
            file: Rc::clone(&self.file),
            at: self.end,
            len: bytes.len(),
        };
        self.end += bytes.len() as u64;
        Box::new(source)
    }
}

impl BytesSource for ScratchBytes {
    fn load(&self) -> Vec<u8> {
        let mut out = vec![0u8; self.len];
        self.file
            .read_exact_at(&mut out, self.at)
            .unwrap_or_else(|e| panic!("spillway: dd-col spill read failed: {e}"));
        out
    }
}

/// Removes this worker's spill state when dropped.
pub struct Installed {
    /// What the spill did (bytes written, ...), shared with upstream's spill.
    pub stats: Arc<SpillStats>,
}

impl Drop for Installed {
    fn drop(&mut self) {
        spill::uninstall();
    }
}

/// Installs upstream's spill on this worker thread, with a scratch file in `dir` and a record
/// budget of `budget_bytes / RECORD_BYTES`.
pub fn install(dir: &Path, budget_bytes: u64) -> std::io::Result<Installed> {
    let file = tempfile::tempfile_in(dir)?;
    let stats = Arc::new(SpillStats::default());
    let budget_records = (budget_bytes / RECORD_BYTES) as usize;
    spill::install(
        budget_records,
        Box::new(ScratchFile {
            file: Rc::new(file),
            end: 0,
        }),
        Arc::clone(&stats),
    );
    Ok(Installed { stats })
}
