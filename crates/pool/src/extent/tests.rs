//! Layer 1 through the stores' interface (unit tests: frames come from the crate's private
//! codec): every extent store round-trips codec frames, reuses freed
//! slots and accounts live bytes; the file store keeps its scratch files private, uses
//! `O_DIRECT` where it can, refuses bad directories, and survives injected faults without
//! losing or corrupting extents; the swap store runs when a swap device is active.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;

use crate::aligned::AlignedBuf;
use crate::codec::{decode_into, Compression, DecodeError, ExtentEncoder, FrameMeta};
use crate::error::ConfigError;
use crate::extent::alloc::extent_class_of;
use crate::extent::file::{FaultyIo, FileStore, FileStoreOptions, ReadFault, WriteFault};
use crate::extent::memory::MemoryStore;
use crate::extent::swap::{swap_available, SwapStore, SwapStoreOptions};
use crate::extent::{ExtentAddr, ExtentStore, StoreError, EXTENT_ALIGN};

const SKIP_NO_SWAP: &str = "skipping: no swap device is active (see README: swap backend)";

/// Whether the swap store can run here; prints why not when it cannot.
fn swap_store_usable() -> bool {
    if cfg!(feature = "heap-regions") {
        eprintln!("skipping: the swap store needs mmap; this build uses heap-regions");
        false
    } else if !swap_available() {
        eprintln!("{SKIP_NO_SWAP}");
        false
    } else {
        true
    }
}

/// Deterministic bodies: sorted u64 keys (compressible) or xorshift noise (stored raw).
fn body(len: usize, seed: u64, compressible: bool) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|i| {
            if compressible {
                ((i / 8) as u64 * 3 + seed).to_le_bytes()[i % 8]
            } else {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            }
        })
        .collect()
}

/// Body lengths spanning many extent classes, up to the codec maximum.
const BODY_LENS: &[usize] = &[
    1,
    100,
    4096,
    5000,
    12_288,
    65_536,
    100_003,
    300_000,
    1 << 20,
    (2 << 20) + 17,
    4 << 20,
    7 << 20,
];

/// A body stored in some store, with what is needed to read and check it.
struct Stored {
    body: Vec<u8>,
    meta: FrameMeta,
    addr: ExtentAddr,
}

fn store_body(
    store: &dyn ExtentStore,
    encoder: &mut ExtentEncoder,
    body: Vec<u8>,
) -> Result<Stored, StoreError> {
    store_encoded(store, encoder, body, Compression::Lz4)
}

fn store_raw_body(
    store: &dyn ExtentStore,
    encoder: &mut ExtentEncoder,
    body: Vec<u8>,
) -> Result<Stored, StoreError> {
    store_encoded(store, encoder, body, Compression::Raw)
}

fn store_encoded(
    store: &dyn ExtentStore,
    encoder: &mut ExtentEncoder,
    body: Vec<u8>,
    compression: Compression,
) -> Result<Stored, StoreError> {
    let (meta, frame) = encoder.encode(&body, compression).expect("encodable body");
    assert_eq!(frame.len(), meta.padded_len());
    let addr = store.write(frame)?;
    assert_eq!(addr.class, extent_class_of(frame.len()));
    Ok(Stored { body, meta, addr })
}

fn read_body(store: &dyn ExtentStore, stored: &Stored, buf: &mut AlignedBuf) -> Vec<u8> {
    store
        .read(stored.addr, stored.meta.padded_len(), buf)
        .unwrap_or_else(|e| panic!("{} store: {e}", store.name()));
    assert_eq!(buf.len(), stored.meta.padded_len());
    let mut out = vec![0; stored.meta.raw_len as usize];
    decode_into(&stored.meta, buf.as_slice(), &mut out).expect("intact extent");
    out
}

fn assert_reads_back(store: &dyn ExtentStore, stored: &[Stored]) {
    let mut buf = AlignedBuf::new();
    for s in stored {
        assert!(
            read_body(store, s, &mut buf) == s.body,
            "{} store: body at {}",
            store.name(),
            s.addr
        );
    }
}

fn padded_total(stored: &[Stored]) -> u64 {
    stored.iter().map(|s| s.meta.padded_len() as u64).sum()
}

/// Writes bodies of every length (compressible and not), frees every other one, writes
/// again into the freed slots, and checks contents and `live_bytes` all along.
fn exercise_round_trips(store: &dyn ExtentStore) {
    let mut encoder = ExtentEncoder::new();
    let mut stored = Vec::new();
    for (i, &len) in BODY_LENS.iter().enumerate() {
        for compressible in [true, false] {
            let seed = i as u64 * 2 + u64::from(compressible);
            stored.push(store_body(store, &mut encoder, body(len, seed, compressible)).unwrap());
        }
    }
    // The largest body the codec accepts, stored raw: an 8 MiB frame.
    stored.push(store_raw_body(store, &mut encoder, body(8 << 20, 99, false)).unwrap());
    assert_eq!(store.live_bytes(), padded_total(&stored));
    assert_reads_back(store, &stored);

    let mut kept = Vec::new();
    let mut freed_addrs = Vec::new();
    for (i, s) in stored.into_iter().enumerate() {
        if i % 2 == 0 {
            store.free(s.addr, s.meta.padded_len());
            freed_addrs.push(s.addr);
        } else {
            kept.push(s);
        }
    }
    assert_eq!(store.live_bytes(), padded_total(&kept));
    assert_reads_back(store, &kept);

    // Same lengths again: the freed slots are reused, and their old contents do not leak.
    let mut reused = 0;
    for (i, &len) in BODY_LENS.iter().enumerate() {
        let s = store_body(store, &mut encoder, body(len, 1000 + i as u64, true)).unwrap();
        reused += usize::from(freed_addrs.contains(&s.addr));
        kept.push(s);
    }
    assert!(reused > 0, "{} store reused no freed slot", store.name());
    assert_eq!(store.live_bytes(), padded_total(&kept));
    assert_reads_back(store, &kept);

    for s in kept.drain(..) {
        store.free(s.addr, s.meta.padded_len());
    }
    assert_eq!(store.live_bytes(), 0);
}

/// Two threads writing, reading back and freeing their own extents at the same time.
fn exercise_concurrency(store: Arc<dyn ExtentStore>) {
    let threads: Vec<_> = (0..2u64)
        .map(|t| {
            let store = store.clone();
            thread::spawn(move || {
                let mut encoder = ExtentEncoder::new();
                let mut buf = AlignedBuf::new();
                let mut live = Vec::new();
                for round in 0..60u64 {
                    let len = [3000, 9000, 70_000, 200_000][(round % 4) as usize];
                    let s = store_body(
                        &*store,
                        &mut encoder,
                        body(len, t * 1000 + round, round % 3 != 0),
                    )
                    .unwrap();
                    live.push(s);
                    if round % 3 == 2 {
                        let s = live.remove(0);
                        assert!(read_body(&*store, &s, &mut buf) == s.body);
                        store.free(s.addr, s.meta.padded_len());
                    }
                }
                for s in live {
                    assert!(read_body(&*store, &s, &mut buf) == s.body);
                    store.free(s.addr, s.meta.padded_len());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("store thread");
    }
    assert_eq!(store.live_bytes(), 0);
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// Descriptors of this process open on files under `dir`, with their link targets.
fn open_fds_under(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut fds = Vec::new();
    for entry in fs::read_dir("/proc/self/fd").expect("/proc/self/fd") {
        let fd_path = entry.expect("fd entry").path();
        if let Ok(target) = fs::read_link(&fd_path) {
            let target = target.to_string_lossy().into_owned();
            if target.starts_with(&*dir.to_string_lossy()) {
                fds.push((fd_path, target));
            }
        }
    }
    fds
}

/// Whether the open file description behind `/proc/self/fd/N` has `O_DIRECT` set.
fn fd_has_o_direct(fd_path: &Path) -> bool {
    let fd = fd_path.file_name().unwrap().to_string_lossy().into_owned();
    let info = fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).expect("fdinfo");
    let flags = info
        .lines()
        .find_map(|line| line.strip_prefix("flags:"))
        .map(|octal| i64::from_str_radix(octal.trim(), 8).expect("octal flags"))
        .expect("flags line");
    flags & i64::from(libc::O_DIRECT) != 0
}

fn filesystem_magic(path: &Path) -> i64 {
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: an all-zero statfs is a valid value for this plain C struct.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: c_path is NUL-terminated and stat is a valid, exclusive out-pointer.
    let status = unsafe { libc::statfs(c_path.as_ptr(), &mut stat) };
    assert_eq!(status, 0, "statfs {}", path.display());
    stat.f_type as i64
}

const EXT4_MAGIC: i64 = 0xEF53;
const XFS_MAGIC: i64 = 0x5846_5342;
const BTRFS_MAGIC: i64 = 0x9123_683E;

// ---------------------------------------------------------------------------------------
// Round trips in every backend

#[test]
fn file_store_round_trips_direct_and_buffered() {
    for direct_io in [true, false] {
        let dir = temp_dir();
        let store = FileStore::open(
            dir.path(),
            FileStoreOptions {
                direct_io,
                capacity: None,
            },
        )
        .expect("open file store");
        if !direct_io {
            assert!(
                !store.direct_io(),
                "direct_io: false must force buffered I/O"
            );
        }
        exercise_round_trips(&store);
    }
}

#[test]
fn memory_store_round_trips() {
    exercise_round_trips(&MemoryStore::new(None));
}

#[test]
fn swap_store_round_trips() {
    if !swap_store_usable() {
        return;
    }
    let options = SwapStoreOptions {
        arena_bytes: 4 << 30,
        ..Default::default()
    };
    let store = SwapStore::new(options).expect("swap store");
    exercise_round_trips(&store);
    let counters = store.counters();
    eprintln!(
        "swap store: pageout retries {}, declined {}, residency observed: {}",
        counters.pageout_retries,
        counters.pageout_declined,
        store.observes_residency()
    );
}

#[test]
fn stores_serve_concurrent_writers() {
    let dir = temp_dir();
    exercise_concurrency(Arc::new(
        FileStore::open(dir.path(), FileStoreOptions::default()).unwrap(),
    ));
    exercise_concurrency(Arc::new(MemoryStore::new(None)));
    if swap_store_usable() {
        let options = SwapStoreOptions {
            arena_bytes: 1 << 30,
            ..Default::default()
        };
        exercise_concurrency(Arc::new(SwapStore::new(options).unwrap()));
    }
}

// ---------------------------------------------------------------------------------------
// File store: private scratch files, O_DIRECT

#[test]
fn scratch_files_are_0600_and_invisible() {
    let dir = temp_dir();
    let store = FileStore::open(dir.path(), FileStoreOptions::default()).unwrap();
    let mut encoder = ExtentEncoder::new();
    let stored: Vec<Stored> = [5000, 70_000, 1 << 20]
        .iter()
        .map(|&len| store_body(&store, &mut encoder, body(len, len as u64, false)).unwrap())
        .collect();
    assert_eq!(store.open_class_files(), 3);
    let listing: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
    assert!(
        listing.is_empty(),
        "scratch files visible in the directory: {listing:?}"
    );

    let fds = open_fds_under(dir.path());
    assert_eq!(fds.len(), 3, "one open file per class written: {fds:?}");
    for (fd_path, target) in &fds {
        assert!(
            target.ends_with("(deleted)"),
            "scratch file {target} is linked"
        );
        let mode = fs::metadata(fd_path)
            .expect("stat scratch file")
            .permissions();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(mode.mode() & 0o777, 0o600, "mode of {target}");
    }
    assert_reads_back(&store, &stored);
    drop(store);
    assert!(
        open_fds_under(dir.path()).is_empty(),
        "scratch files outlive the store"
    );
}

#[test]
fn o_direct_engages_on_disk_filesystems_and_can_be_turned_off() {
    let dir = temp_dir();
    let magic = filesystem_magic(dir.path());
    let store = FileStore::open(dir.path(), FileStoreOptions::default()).unwrap();
    let mut encoder = ExtentEncoder::new();
    let s = store_body(&store, &mut encoder, body(50_000, 1, true)).unwrap();
    eprintln!(
        "{} (filesystem magic {magic:#x}): O_DIRECT {}",
        dir.path().display(),
        if store.direct_io() {
            "engaged"
        } else {
            "refused"
        }
    );
    if [EXT4_MAGIC, XFS_MAGIC, BTRFS_MAGIC].contains(&magic) {
        assert!(
            store.direct_io(),
            "O_DIRECT should engage on ext4/xfs/btrfs"
        );
    }
    for (fd_path, _) in open_fds_under(dir.path()) {
        assert_eq!(fd_has_o_direct(&fd_path), store.direct_io());
    }
    assert_reads_back(&store, &[s]);

    let buffered_dir = temp_dir();
    let buffered = FileStore::open(
        buffered_dir.path(),
        FileStoreOptions {
            direct_io: false,
            capacity: None,
        },
    )
    .unwrap();
    assert!(!buffered.direct_io());
    let s = store_body(&buffered, &mut encoder, body(50_000, 2, true)).unwrap();
    let fds = open_fds_under(buffered_dir.path());
    assert_eq!(fds.len(), 1);
    assert!(!fd_has_o_direct(&fds[0].0));
    assert_reads_back(&buffered, &[s]);
}

#[test]
fn tmpfs_directory_works_in_whatever_mode_it_accepts() {
    let shm = Path::new("/dev/shm");
    if !shm.is_dir() {
        eprintln!("skipping: /dev/shm does not exist");
        return;
    }
    let dir = tempfile::tempdir_in(shm).expect("temp dir in /dev/shm");
    let store = FileStore::open(dir.path(), FileStoreOptions::default()).unwrap();
    // tmpfs refuses O_DIRECT before Linux 6.6 and accepts it since; either way the store's
    // report must match the descriptors it opened, and extents must round-trip.
    eprintln!(
        "/dev/shm (filesystem magic {:#x}): O_DIRECT {}",
        filesystem_magic(dir.path()),
        if store.direct_io() {
            "engaged"
        } else {
            "refused, buffered"
        }
    );
    let mut encoder = ExtentEncoder::new();
    let stored: Vec<Stored> = [4096, 100_000]
        .iter()
        .map(|&len| store_body(&store, &mut encoder, body(len, 5, true)).unwrap())
        .collect();
    for (fd_path, _) in open_fds_under(dir.path()) {
        assert_eq!(fd_has_o_direct(&fd_path), store.direct_io());
    }
    assert_reads_back(&store, &stored);
}

// ---------------------------------------------------------------------------------------
// File store: configuration errors

fn extent_dir_error(dir: &Path) -> (String, bool) {
    match FileStore::open(dir, FileStoreOptions::default()) {
        Err(ConfigError::ExtentDir {
            path,
            reason,
            source,
        }) => {
            assert_eq!(path, dir);
            (reason, source.is_some())
        }
        Err(other) => panic!("{}: unexpected error {other}", dir.display()),
        Ok(_) => panic!("{}: store opened", dir.display()),
    }
}

#[test]
fn bad_extent_directories_are_refused_with_a_reason() {
    let dir = temp_dir();
    let missing = dir.path().join("missing");
    let (reason, has_source) = extent_dir_error(&missing);
    assert!(reason.contains("does not exist") && has_source, "{reason}");

    let file = dir.path().join("a-file");
    fs::write(&file, b"not a directory").unwrap();
    let (reason, _) = extent_dir_error(&file);
    assert!(reason.contains("is not a directory"), "{reason}");

    let (reason, has_source) = extent_dir_error(&file.join("below-a-file"));
    assert!(
        reason.contains("is not a directory") && has_source,
        "{reason}"
    );

    // Root may write almost anywhere; /proc accepts no new files from anyone.
    let (reason, has_source) = extent_dir_error(Path::new("/proc"));
    assert!(reason.contains("is not writable") && has_source, "{reason}");

    let message = FileStore::open(&missing, FileStoreOptions::default())
        .unwrap_err()
        .to_string();
    assert!(message.contains(&*missing.to_string_lossy()) && message.contains("does not exist"));
    // Refusing leaves nothing behind.
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
}

// ---------------------------------------------------------------------------------------
// Capacity

#[test]
fn capacity_returns_no_space_and_loses_nothing() {
    let dir = temp_dir();
    // Capacity counts class sizes: 64 KiB holds sixteen one-page extents.
    let file = FileStore::open(
        dir.path(),
        FileStoreOptions {
            direct_io: true,
            capacity: Some(64 << 10),
        },
    )
    .unwrap();
    let memory = MemoryStore::new(Some(64 << 10));
    for store in [&file as &dyn ExtentStore, &memory] {
        let mut encoder = ExtentEncoder::new();
        let mut stored = Vec::new();
        let full = loop {
            match store_body(store, &mut encoder, body(3000, stored.len() as u64, false)) {
                Ok(s) => stored.push(s),
                Err(error) => break error,
            }
            assert!(
                stored.len() <= 16,
                "{} store ignores its capacity",
                store.name()
            );
        };
        assert!(
            matches!(full, StoreError::NoSpace),
            "{}: {full}",
            store.name()
        );
        assert_eq!(stored.len(), 16);
        assert_eq!(store.live_bytes(), 64 << 10);
        assert!(matches!(
            store_body(store, &mut encoder, body(20_000, 7, false)),
            Err(StoreError::NoSpace)
        ));
        assert_reads_back(store, &stored);
        // Freeing makes room again.
        let s = stored.pop().unwrap();
        store.free(s.addr, s.meta.padded_len());
        stored.push(store_body(store, &mut encoder, body(3000, 500, true)).unwrap());
        assert_reads_back(store, &stored);
    }
    assert_eq!(file.reserved_bytes(), 64 << 10);
}

// ---------------------------------------------------------------------------------------
// File store: injected faults

fn faulty_store(direct_io: bool) -> (tempfile::TempDir, Arc<FaultyIo>, FileStore) {
    let dir = temp_dir();
    let faults = Arc::new(FaultyIo::new());
    let store = FileStore::open_with_io(
        dir.path(),
        FileStoreOptions {
            direct_io,
            capacity: None,
        },
        faults.clone(),
    )
    .unwrap();
    (dir, faults, store)
}

#[test]
fn short_writes_are_completed() {
    for direct_io in [true, false] {
        let (_dir, faults, store) = faulty_store(direct_io);
        let mut encoder = ExtentEncoder::new();
        let mut stored = Vec::new();
        for (i, len) in [4096usize, 5000, 40_000, 1 << 20, 3 << 20]
            .into_iter()
            .enumerate()
        {
            faults.fail_next_writes(1, WriteFault::ShortWrite);
            let calls = faults.write_calls();
            stored.push(store_body(&store, &mut encoder, body(len, i as u64, false)).unwrap());
            assert!(
                faults.write_calls() >= calls + 2,
                "the short write was not continued"
            );
        }
        assert_eq!(faults.faults_injected(), 5);
        assert_eq!(store.live_bytes(), padded_total(&stored));
        assert_reads_back(&store, &stored);
    }
}

#[test]
fn device_full_punches_free_holes_retries_then_reports_no_space() {
    let (_dir, faults, store) = faulty_store(true);
    let mut encoder = ExtentEncoder::new();
    let mut stored: Vec<Stored> = (0..6)
        .map(|i| store_body(&store, &mut encoder, body(3000, i, false)).unwrap())
        .collect();
    // Three free one-page slots whose blocks are still allocated.
    for s in stored.drain(..3) {
        store.free(s.addr, s.meta.padded_len());
    }
    assert_eq!(store.counters().holes_punched, 0);

    // One ENOSPC: the store punches the three free slots and the retry succeeds.
    faults.fail_next_writes(1, WriteFault::NoSpace);
    stored.push(store_body(&store, &mut encoder, body(9000, 10, false)).unwrap());
    assert_eq!(store.counters().holes_punched, 3);
    assert_eq!(faults.punch_calls(), 3);
    assert_reads_back(&store, &stored);

    // ENOSPC twice: the retry fails too. Only the newly freed slot is punched; the write
    // reports NoSpace and changes nothing.
    let s = stored.remove(0);
    store.free(s.addr, s.meta.padded_len());
    let live = store.live_bytes();
    let reserved = store.reserved_bytes();
    faults.fail_next_writes(2, WriteFault::NoSpace);
    let full = store_body(&store, &mut encoder, body(9000, 11, false));
    assert!(matches!(full, Err(StoreError::NoSpace)), "{:?}", full.err());
    assert_eq!(store.counters().holes_punched, 4);
    assert_eq!(store.live_bytes(), live);
    assert_eq!(store.reserved_bytes(), reserved);
    assert_reads_back(&store, &stored);

    // Space is back: writes work again, into punched slots too.
    for i in 0..4 {
        stored.push(store_body(&store, &mut encoder, body(3000, 20 + i, true)).unwrap());
    }
    assert_reads_back(&store, &stored);
}

#[test]
fn write_eio_names_the_extent_and_frees_its_slot() {
    let (_dir, faults, store) = faulty_store(true);
    let mut encoder = ExtentEncoder::new();
    let first = store_body(&store, &mut encoder, body(20_000, 1, false)).unwrap();
    let live = store.live_bytes();
    let reserved = store.reserved_bytes();

    faults.fail_next_writes(1, WriteFault::Eio);
    let error = store_body(&store, &mut encoder, body(20_000, 2, false))
        .err()
        .expect("EIO");
    let StoreError::Io { op, addr, source } = &error else {
        panic!("expected Io, got {error}")
    };
    assert_eq!(*op, "write");
    assert_eq!(addr.class, first.addr.class);
    assert_eq!(source.raw_os_error(), Some(libc::EIO));
    assert!(error.to_string().contains(&addr.to_string()), "{error}");
    let failed_addr = *addr;
    assert_eq!(store.live_bytes(), live);
    assert_eq!(store.reserved_bytes(), reserved);

    // The slot went back to the free list: the next write of the class gets it.
    let second = store_body(&store, &mut encoder, body(20_000, 3, false)).unwrap();
    assert_eq!(second.addr, failed_addr);
    assert_reads_back(&store, &[first, second]);
}

#[test]
fn read_eio_names_the_extent() {
    let (_dir, faults, store) = faulty_store(true);
    let mut encoder = ExtentEncoder::new();
    let s = store_body(&store, &mut encoder, body(70_000, 1, true)).unwrap();
    faults.fail_next_reads(1, ReadFault::Eio);
    let mut buf = AlignedBuf::new();
    let error = store
        .read(s.addr, s.meta.padded_len(), &mut buf)
        .unwrap_err();
    match &error {
        StoreError::Io {
            op: "read",
            addr,
            source,
        } => {
            assert_eq!(*addr, s.addr);
            assert_eq!(source.raw_os_error(), Some(libc::EIO));
        }
        other => panic!("expected a read error, got {other}"),
    }
    let message = error.to_string();
    assert!(message.starts_with("read of extent class") && message.contains(&s.addr.to_string()));
    // The fault was transient: the extent is intact.
    assert_reads_back(&store, &[s]);
}

#[test]
fn flipped_byte_on_read_fails_the_checksum() {
    let (_dir, faults, store) = faulty_store(true);
    let mut encoder = ExtentEncoder::new();
    for compressible in [true, false] {
        let s = store_body(&store, &mut encoder, body(30_000, 4, compressible)).unwrap();
        faults.flip_byte_on_next_read(17);
        let mut buf = AlignedBuf::new();
        store
            .read(s.addr, s.meta.padded_len(), &mut buf)
            .expect("the read itself succeeds");
        let mut out = vec![0; s.body.len()];
        assert!(matches!(
            decode_into(&s.meta, buf.as_slice(), &mut out),
            Err(DecodeError::Checksum { .. })
        ));
        assert_reads_back(&store, &[s]);
    }
}

// ---------------------------------------------------------------------------------------
// Swap store

#[test]
fn swap_store_needs_swap() {
    let result = SwapStore::new(SwapStoreOptions {
        arena_bytes: 1 << 30,
        ..Default::default()
    });
    if cfg!(feature = "heap-regions") {
        let error = result.expect_err("heap-regions builds have no swap store");
        assert!(matches!(error, ConfigError::Invalid(_)), "{error}");
    } else if swap_available() {
        assert!(result.is_ok(), "{:?}", result.err());
    } else {
        eprintln!("{SKIP_NO_SWAP}");
        let error = result.expect_err("no swap");
        assert!(matches!(error, ConfigError::NoSwap), "{error}");
        assert!(error.to_string().contains("swap"));
    }
}

#[test]
fn swap_store_pages_extents_out_and_back_in() {
    if !swap_store_usable() {
        return;
    }
    let options = SwapStoreOptions {
        arena_bytes: 1 << 30,
        ..Default::default()
    };
    let store = SwapStore::new(options).unwrap();
    let mut encoder = ExtentEncoder::new();
    let stored: Vec<Stored> = (0..32u64)
        .map(|i| store_body(&store, &mut encoder, body(1 << 20, i, i % 2 == 0)).unwrap())
        .collect();
    let counters = store.counters();
    let mut resident = 0;
    let mut pages = 0;
    for s in &stored {
        pages += s.meta.padded_len() / EXTENT_ALIGN;
        resident += store
            .resident_pages(s.addr, s.meta.padded_len())
            .unwrap_or(0);
    }
    eprintln!(
        "swap store: {resident} of {pages} extent pages resident after pageout; \
         retries {}, declined {} of {} extents; residency observed: {}",
        counters.pageout_retries,
        counters.pageout_declined,
        stored.len(),
        store.observes_residency()
    );
    if store.observes_residency() && counters.pageout_declined == 0 {
        assert_eq!(resident, 0, "extents not declined must have left RAM");
    }
    assert_eq!(store.pending_pageout_bytes(), 0);
    // Reading swaps them back in, intact.
    assert_reads_back(&store, &stored);
    for s in &stored {
        store.free(s.addr, s.meta.padded_len());
    }
    assert_eq!(store.live_bytes(), 0);
}

#[test]
fn swap_store_arena_fills_up_with_no_space() {
    if !swap_store_usable() {
        return;
    }
    // One 32 MiB segment: the first class written claims it; other classes find no room.
    let options = SwapStoreOptions {
        arena_bytes: crate::extent::swap::SWAP_SEGMENT_BYTES,
        ..Default::default()
    };
    let store = SwapStore::new(options).unwrap();
    let mut encoder = ExtentEncoder::new();
    let first = store_body(&store, &mut encoder, body(3000, 1, false)).unwrap();
    assert!(matches!(
        store_body(&store, &mut encoder, body(100_000, 2, false)),
        Err(StoreError::NoSpace)
    ));
    assert_reads_back(&store, &[first]);
}
