//! The extent codec: lz4 (block format) plus a crc32c over the stored bytes.
//!
//! A chunk body is encoded into a *frame*: the stored bytes (lz4-compressed, or the body
//! itself when compression does not pay) padded with zeros to a 4 KiB page, plus a
//! [`FrameMeta`] that stays in memory with the chunk. Bodies that shrink by less than
//! [`MIN_RATIO`] are stored raw: decoding them is a memcpy.
//!
//! # Scratch ownership and bound
//! Each writer owns one [`ExtentEncoder`] (each spill thread, and the pool's inline writer);
//! nothing shares scratch through a thread-local. The scratch is cleared at the start of
//! every `encode`, including calls that fail, and never grows past [`SCRATCH_BOUND`]: a body
//! larger than [`MAX_BODY`] is refused before anything is written. Decoding needs no scratch
//! of its own beyond the read buffer.

use crate::aligned::{AlignedBuf, PAGE};

/// Largest body the codec accepts: the largest pool slot class.
pub const MAX_BODY: usize = 8 << 20;

/// Upper bound of an encoder's scratch, in bytes: lz4_flex's worst-case output for
/// [`MAX_BODY`] (it asks for 110 % + 20 bytes up front), padded to a page: 8.8 MiB.
pub const SCRATCH_BOUND: usize =
    lz4_flex::block::get_maximum_output_size(MAX_BODY).next_multiple_of(PAGE);

/// Compression must shrink a body by at least this factor, or the body is stored raw.
pub const MIN_RATIO: f64 = 1.1;

/// How the caller would like a body stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Compression {
    /// Try lz4; fall back to raw when it does not pay.
    #[default]
    Lz4,
    /// Store the body as is (for example fresh chunks that will be read back soon).
    Raw,
}

/// The codec actually used for a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameCodec {
    Raw,
    Lz4,
}

/// What the pool remembers about a stored frame, in memory next to the chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameMeta {
    pub codec: FrameCodec,
    /// Length of the decoded body.
    pub raw_len: u32,
    /// Length of the stored bytes before padding.
    pub stored_len: u32,
    /// crc32c of the `stored_len` stored bytes.
    pub crc: u32,
}

impl FrameMeta {
    /// Length of the frame as written: `stored_len` rounded up to a page.
    pub fn padded_len(&self) -> usize {
        (self.stored_len as usize).next_multiple_of(PAGE)
    }
}

/// Why a body could not be encoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EncodeError {
    #[error("chunk body of {len} bytes exceeds the codec maximum of {MAX_BODY} bytes")]
    TooLarge { len: usize },
}

/// Why stored bytes could not be decoded. The pool turns this into a
/// [`crate::PoolError`] naming the extent.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("stored crc32c {expected:#010x}, computed {actual:#010x}")]
    Checksum { expected: u32, actual: u32 },
    #[error("{0}")]
    Corrupt(String),
}

/// A writer's encoder, owning its scratch.
#[derive(Debug, Default)]
pub struct ExtentEncoder {
    scratch: AlignedBuf,
}

impl ExtentEncoder {
    pub fn new() -> Self {
        Self::default()
    }

    #[cfg(test)]
    /// Bytes the scratch currently holds allocated (never above [`SCRATCH_BOUND`]).
    pub fn scratch_capacity(&self) -> usize {
        self.scratch.capacity()
    }

    /// The frame produced by the last successful `encode` (empty after a failed one).
    pub fn frame(&self) -> &[u8] {
        self.scratch.as_slice()
    }

    /// Encodes `body` into a page-padded frame in this encoder's scratch.
    pub fn encode(
        &mut self,
        body: &[u8],
        compression: Compression,
    ) -> Result<(FrameMeta, &[u8]), EncodeError> {
        self.scratch.clear();
        if body.len() > MAX_BODY {
            return Err(EncodeError::TooLarge { len: body.len() });
        }
        let mut codec = FrameCodec::Raw;
        let mut stored_len = body.len();
        if compression == Compression::Lz4 && !body.is_empty() {
            let worst = lz4_flex::block::get_maximum_output_size(body.len());
            debug_assert!(worst <= SCRATCH_BOUND);
            self.scratch.reserve_total(worst);
            let out = &mut self.scratch.spare_mut()[..worst];
            let n = lz4_flex::block::compress_into(body, out)
                .expect("lz4 output sized to its worst case");
            if (n as f64) * MIN_RATIO <= body.len() as f64 {
                codec = FrameCodec::Lz4;
                stored_len = n;
            }
        }
        let padded = stored_len.next_multiple_of(PAGE);
        self.scratch.resize(padded);
        let frame = self.scratch.as_mut_slice();
        if codec == FrameCodec::Raw {
            frame[..stored_len].copy_from_slice(body);
        }
        frame[stored_len..].fill(0);
        let crc = crc32c::crc32c(&frame[..stored_len]);
        let meta = FrameMeta {
            codec,
            raw_len: body.len() as u32,
            stored_len: stored_len as u32,
            crc,
        };
        Ok((meta, self.scratch.as_slice()))
    }
}

/// Verifies and decodes a frame's stored bytes into `out` (exactly `meta.raw_len` bytes).
pub fn decode_into(meta: &FrameMeta, stored: &[u8], out: &mut [u8]) -> Result<(), DecodeError> {
    let stored_len = meta.stored_len as usize;
    if stored.len() < stored_len {
        return Err(DecodeError::Corrupt(format!(
            "read {} bytes, frame has {stored_len}",
            stored.len()
        )));
    }
    if out.len() != meta.raw_len as usize {
        return Err(DecodeError::Corrupt(format!(
            "destination of {} bytes for a body of {}",
            out.len(),
            meta.raw_len
        )));
    }
    let stored = &stored[..stored_len];
    let actual = crc32c::crc32c(stored);
    if actual != meta.crc {
        return Err(DecodeError::Checksum {
            expected: meta.crc,
            actual,
        });
    }
    match meta.codec {
        FrameCodec::Raw => {
            if stored_len != out.len() {
                return Err(DecodeError::Corrupt("raw frame length mismatch".into()));
            }
            out.copy_from_slice(stored);
        }
        FrameCodec::Lz4 => {
            let n = lz4_flex::block::decompress_into(stored, out)
                .map_err(|e| DecodeError::Corrupt(format!("lz4: {e}")))?;
            if n != out.len() {
                return Err(DecodeError::Corrupt(format!(
                    "lz4 produced {n} bytes, expected {}",
                    out.len()
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted_u64s(n: usize) -> Vec<u8> {
        (0..n as u64).flat_map(|i| (i * 3).to_le_bytes()).collect()
    }

    #[test]
    fn round_trip_compressible_and_raw() {
        let mut enc = ExtentEncoder::new();
        let body = sorted_u64s(10_000);
        let (meta, frame) = enc.encode(&body, Compression::Lz4).unwrap();
        assert_eq!(meta.codec, FrameCodec::Lz4);
        assert!((meta.stored_len as usize) < body.len());
        assert_eq!(frame.len() % PAGE, 0);
        let frame = frame.to_vec();
        let mut out = vec![0; body.len()];
        decode_into(&meta, &frame, &mut out).unwrap();
        assert_eq!(out, body);

        let (meta, frame) = enc.encode(&body, Compression::Raw).unwrap();
        assert_eq!(meta.codec, FrameCodec::Raw);
        let mut out = vec![0; body.len()];
        decode_into(&meta, frame, &mut out).unwrap();
        assert_eq!(out, body);
    }

    #[test]
    fn incompressible_is_stored_raw() {
        let mut x = 0x9E3779B97F4A7C15u64;
        let body: Vec<u8> = (0..65536)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let mut enc = ExtentEncoder::new();
        let (meta, _) = enc.encode(&body, Compression::Lz4).unwrap();
        assert_eq!(meta.codec, FrameCodec::Raw);
        assert_eq!(meta.stored_len as usize, body.len());
    }

    #[test]
    fn flipped_byte_is_a_checksum_error() {
        let mut enc = ExtentEncoder::new();
        let body = sorted_u64s(4096);
        let (meta, frame) = enc.encode(&body, Compression::Lz4).unwrap();
        let mut frame = frame.to_vec();
        frame[7] ^= 0x40;
        let mut out = vec![0; body.len()];
        assert!(matches!(
            decode_into(&meta, &frame, &mut out),
            Err(DecodeError::Checksum { .. })
        ));
    }

    #[test]
    fn too_large_is_refused_and_scratch_cleared() {
        let mut enc = ExtentEncoder::new();
        let _ = enc.encode(&sorted_u64s(1000), Compression::Lz4).unwrap();
        let big = vec![0u8; MAX_BODY + 1];
        assert_eq!(
            enc.encode(&big, Compression::Lz4).unwrap_err(),
            EncodeError::TooLarge { len: MAX_BODY + 1 }
        );
        assert!(enc.scratch_capacity() <= SCRATCH_BOUND);
    }

    /// Set in the child process that runs the memory measurement alone.
    const MEASURE_ALONE: &str = "SPILLWAY_CODEC_SCRATCH_CHILD";

    fn rss_bytes() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap();
        kib * 1024
    }

    /// The codec's scratch stays bounded and memory stays flat across a million encodes, a
    /// tenth of which fail (bodies over the codec maximum) and a tenth of which are
    /// incompressible. RSS is a whole-process figure, so the measurement runs in a child
    /// process that runs only this test: the other tests of this binary allocate concurrently.
    #[test]
    #[cfg_attr(miri, ignore)]
    fn a_million_encodes_with_failures_keep_memory_flat() {
        if std::env::var_os(MEASURE_ALONE).is_none() {
            let child = std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "codec::tests::a_million_encodes_with_failures_keep_memory_flat",
                    "--test-threads=1",
                ])
                .env(MEASURE_ALONE, "1")
                .output()
                .unwrap();
            assert!(
                child.status.success(),
                "the measuring child failed: {}\n{}{}",
                child.status,
                String::from_utf8_lossy(&child.stdout),
                String::from_utf8_lossy(&child.stderr)
            );
            return;
        }

        let mut enc = ExtentEncoder::new();
        let too_large = vec![7u8; MAX_BODY + 1];
        let mut noise = 0x9E3779B97F4A7C15u64;
        let incompressible: Vec<u8> = (0..256)
            .map(|_| {
                noise ^= noise << 13;
                noise ^= noise >> 7;
                noise ^= noise << 17;
                noise as u8
            })
            .collect();
        let compressible: Vec<u8> = (0..64u64).flat_map(|i| (i / 3).to_le_bytes()).collect();
        // One large encode first, so the scratch reaches its working size before measuring.
        enc.encode(&vec![1u8; MAX_BODY], Compression::Lz4).unwrap();
        let warm_capacity = enc.scratch_capacity();
        assert!(warm_capacity <= SCRATCH_BOUND);
        let rss_before = rss_bytes();
        let (mut failures, mut out) = (0u32, vec![0u8; incompressible.len()]);
        for i in 0..1_000_000u32 {
            match i % 10 {
                0 => {
                    assert!(enc.encode(&too_large, Compression::Lz4).is_err());
                    assert!(enc.frame().is_empty(), "scratch cleared on the error path");
                    failures += 1;
                }
                1 => {
                    let (meta, frame) = enc.encode(&incompressible, Compression::Lz4).unwrap();
                    decode_into(&meta, frame, &mut out).unwrap();
                    assert_eq!(out, incompressible);
                }
                _ => {
                    let (meta, _) = enc.encode(&compressible, Compression::Lz4).unwrap();
                    assert!((meta.stored_len as usize) < compressible.len());
                }
            }
            assert!(enc.scratch_capacity() <= SCRATCH_BOUND);
        }
        assert_eq!(failures, 100_000);
        assert_eq!(enc.scratch_capacity(), warm_capacity, "scratch grew");
        let growth = rss_bytes().saturating_sub(rss_before);
        assert!(
            growth < 8 << 20,
            "RSS grew by {growth} bytes over a million encodes"
        );
    }
}
