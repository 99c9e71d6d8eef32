//! `Pool::pin_each`: every chunk visited once with its own bytes, adjacent extents read
//! together, the budget kept, and read failures reported per extent (never wrong bytes).

use crate::common::{assert_drained, body, faulty_pool, SLOT};

use spillway_pool::ReadFault;
use spillway_pool::{
    ChunkHandle, ChunkHints, ExtentBackend, Pool, PoolConfig, PoolError, COALESCE_CAP,
};

/// Bytes that do not compress: each extent is as long as its body.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Pins `handles` with `pin_each`, checking each is visited once with `expected(i)`.
fn pin_all(
    pool: &Pool,
    handles: &[&ChunkHandle],
    expected: impl Fn(usize) -> Vec<u8>,
) -> spillway_pool::VectoredReads {
    let mut seen = vec![0; handles.len()];
    let stats = pool.pin_each(handles, |i, pin| {
        seen[i] += 1;
        assert_eq!(&*pin.expect("readable"), &expected(i)[..], "chunk {i}");
    });
    assert!(seen.iter().all(|&n| n == 1), "visits: {seen:?}");
    stats
}

#[test]
fn adjacent_extents_share_reads_and_bytes_come_back() {
    let (pool, io, _dir) = faulty_pool(16);
    let len = 150_000;
    let chunks: Vec<_> = (0..24)
        .map(|i| pool.insert(&body(i, len), ChunkHints::depth(0)))
        .collect();
    pool.evict_to(0);
    // Ask in an order unrelated to the extents' slots.
    let order: Vec<usize> = (0..24).map(|i| (i * 7) % 24).collect();
    let handles: Vec<&ChunkHandle> = order.iter().map(|&i| &chunks[i]).collect();
    let before = (pool.stats(), io.read_calls());
    let stats = pin_all(&pool, &handles, |i| body(order[i] as u64, len));
    let after = (pool.stats(), io.read_calls());
    assert_eq!((stats.chunks, stats.faulted), (24, 24));
    assert_eq!(stats.reads + stats.coalesced, stats.faulted);
    assert!(
        stats.reads * 3 <= stats.faulted,
        "compressible 150 kB bodies make small extents, read several at a time: {stats:?}"
    );
    assert_eq!(
        after.1 - before.1,
        stats.reads,
        "one pread per planned read"
    );
    assert_eq!(after.0.fault_ins - before.0.fault_ins, 24);
    assert_eq!(
        after.0.extent_bytes_read - before.0.extent_bytes_read,
        stats.bytes
    );
    assert_eq!(after.0.vectored_reads, stats.reads);
    assert_eq!(after.0.vectored_extents_coalesced, stats.coalesced);
    assert!(
        after.0.peak_resident_bytes <= pool.budget() + 4 * SLOT,
        "faulted in under the budget: {:?}",
        after.0
    );
    // A second call reads only what the budget evicted meanwhile.
    let again = pin_all(&pool, &handles, |i| body(order[i] as u64, len));
    assert!(again.faulted < 24, "{again:?}");
    drop(chunks);
    pool.quiesce();
    assert_drained(&pool.stats());
}

#[test]
fn reads_respect_the_coalescing_cap() {
    let (pool, _io, _dir) = faulty_pool(64);
    let len = 300_000;
    let chunks: Vec<_> = (0..10)
        .map(|i| pool.insert(&noise(i, len), ChunkHints::depth(0)))
        .collect();
    pool.evict_to(0);
    let handles: Vec<&ChunkHandle> = chunks.iter().collect();
    let stats = pin_all(&pool, &handles, |i| noise(i as u64, len));
    assert_eq!(stats.faulted, 10);
    // 300 kB extents: at most three fit in one 1 MiB read.
    assert!(
        stats.reads >= 10usize.div_ceil(COALESCE_CAP / len) as u64,
        "{stats:?}"
    );
    assert!(stats.coalesced > 0, "{stats:?}");
    assert!(stats.bytes <= stats.reads * COALESCE_CAP as u64);
}

#[test]
fn resident_chunks_need_no_read_and_duplicates_are_visited_each() {
    let (pool, _io, _dir) = faulty_pool(64);
    let chunks: Vec<_> = (0..6)
        .map(|i| pool.insert(&body(i, 100_000), ChunkHints::depth(0)))
        .collect();
    pool.evict_to(0);
    chunks[1].pin().unwrap();
    chunks[4].pin().unwrap();
    let handles = [&chunks[1], &chunks[4], &chunks[0], &chunks[1]];
    let stats = pin_all(&pool, &handles, |i| body([1, 4, 0, 1][i], 100_000));
    assert_eq!((stats.chunks, stats.faulted, stats.reads), (4, 1, 1));
}

#[test]
fn a_failed_coalesced_read_is_retried_extent_by_extent() {
    let (pool, io, _dir) = faulty_pool(64);
    let chunks: Vec<_> = (0..12)
        .map(|i| pool.insert(&noise(i, 300_000), ChunkHints::depth(0)))
        .collect();
    pool.evict_to(0);
    let handles: Vec<&ChunkHandle> = chunks.iter().collect();
    io.fail_next_reads(1, ReadFault::Eio);
    let stats = pin_all(&pool, &handles, |i| noise(i as u64, 300_000));
    let s = pool.stats();
    assert!(stats.reads > 1, "{stats:?}");
    assert_eq!(s.io_errors, 1, "{s:?}");
    assert!(
        (1..=(COALESCE_CAP / 300_000) as u64).contains(&s.read_retries),
        "one read's worth re-read: {s:?}"
    );
}

#[test]
fn a_persistently_failing_read_fails_exactly_its_extents() {
    let (pool, io, _dir) = faulty_pool(64);
    let chunks: Vec<_> = (0..12)
        .map(|i| pool.insert(&noise(i, 300_000), ChunkHints::depth(0)))
        .collect();
    pool.evict_to(0);
    let handles: Vec<&ChunkHandle> = chunks.iter().collect();
    // Enough failures for every read and every retry of the call.
    io.fail_next_reads(1000, ReadFault::Eio);
    let (mut ok, mut failed) = (0, Vec::new());
    let stats = pool.pin_each(&handles, |i, pin| match pin {
        Ok(pin) => {
            assert_eq!(&*pin, &noise(i as u64, 300_000)[..]);
            ok += 1;
        }
        Err(PoolError::ReadIo { extent, source }) => {
            assert_eq!(source.raw_os_error(), Some(libc_eio()), "{source}");
            failed.push(extent);
        }
        Err(other) => panic!("unexpected {other}"),
    });
    assert!(stats.reads > 1 && ok == 0, "{stats:?} {failed:?}");
    failed.sort_by_key(|a| (a.class, a.slot));
    failed.dedup();
    assert_eq!(failed.len(), 12, "each chunk's error names its own extent");
    // Nothing was lost: the failed chunks read back once the device recovers.
    io.clear();
    pin_all(&pool, &handles, |i| noise(i as u64, 300_000));
}

#[test]
fn a_corrupted_extent_is_re_read() {
    let (pool, io, _dir) = faulty_pool(64);
    let chunks: Vec<_> = (0..4)
        .map(|i| pool.insert(&noise(i, 100_000), ChunkHints::depth(0)))
        .collect();
    pool.evict_to(0);
    let handles: Vec<&ChunkHandle> = chunks.iter().collect();
    io.flip_byte_on_next_read(10);
    let stats = pin_all(&pool, &handles, |i| noise(i as u64, 100_000));
    assert_eq!(stats.reads, 1, "{stats:?}");
    let s = pool.stats();
    assert_eq!((s.checksum_failures, s.read_retries), (1, 1), "{s:?}");
}

#[test]
fn a_persistently_corrupted_extent_is_caught_and_named() {
    let (pool, io, _dir) = faulty_pool(64);
    let chunks: Vec<_> = (0..4)
        .map(|i| pool.insert(&noise(i, 100_000), ChunkHints::depth(0)))
        .collect();
    pool.evict_to(0);
    let handles: Vec<&ChunkHandle> = chunks.iter().collect();
    // The first read covers every extent; flip a byte of the first, and of its re-reads.
    io.flip_bytes_on_next_reads(2 + spillway_pool::READ_RETRY_DELAYS.len(), 10);
    let mut errors = Vec::new();
    let stats = pool.pin_each(&handles, |i, pin| match pin {
        Ok(pin) => assert_eq!(&*pin, &noise(i as u64, 100_000)[..]),
        Err(e) => errors.push((i, e.to_string())),
    });
    assert_eq!(stats.reads, 1, "{stats:?}");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].1.contains("checksum"), "{errors:?}");
    assert_eq!(
        pool.stats().checksum_failures,
        2 + spillway_pool::READ_RETRY_DELAYS.len() as u64
    );
}

#[test]
fn stores_without_spans_read_each_extent() {
    let config = PoolConfig {
        budget: 64 * SLOT,
        spill_threads: 0,
        write_behind: Some(0),
        ..PoolConfig::default()
    }
    .extents(ExtentBackend::Memory { capacity: None });
    let pool = Pool::new(config).unwrap();
    let chunks: Vec<_> = (0..5)
        .map(|i| pool.insert(&body(i, 100_000), ChunkHints::depth(0)))
        .collect();
    pool.evict_to(0);
    let handles: Vec<&ChunkHandle> = chunks.iter().collect();
    let stats = pin_all(&pool, &handles, |i| body(i as u64, 100_000));
    assert_eq!((stats.faulted, stats.reads, stats.coalesced), (5, 5, 0));
}

/// `EIO`, as the fault injector reports it.
fn libc_eio() -> i32 {
    5
}
