//! The codec's scratch stays bounded and memory stays flat across a million encodes, a tenth
//! of which fail (bodies over the codec maximum) and a tenth of which are incompressible.

use spillway_pool::codec::{decode_into, ExtentEncoder, MAX_BODY, SCRATCH_BOUND};
use spillway_pool::Compression;

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    kib * 1024
}

#[test]
fn a_million_encodes_with_failures_keep_memory_flat() {
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
