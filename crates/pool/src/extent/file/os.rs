//! The file store's boundary with the operating system: positional reads and writes, hole
//! punching, scratch-file creation and `O_DIRECT`.
//!
//! Invariants: every scratch file is unlinked (never visible in its directory) and mode
//! `0600`, whatever the umask; extent I/O goes through the [`ExtentIo`] seam, so tests can put
//! a fault injector between the store and the kernel. Zero fills write from one shared,
//! page-aligned buffer of [`ZERO_FILL_CHUNK`] zero bytes, allocated on first use and never
//! written. The only `unsafe` here are the three
//! `libc` calls std has no safe form of (`fallocate` with `FALLOC_FL_PUNCH_HOLE`, `fcntl`
//! to set `O_DIRECT` on an open file, and `fstatfs` to tell a memory filesystem).

use std::fs::{File, Permissions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::Path;
use std::sync::OnceLock;

use crate::aligned::AlignedBuf;

/// Most zero bytes one [`ExtentIo::write_zeros`] call writes (the shared zero buffer's size).
pub const ZERO_FILL_CHUNK: usize = 256 << 10;

/// [`ZERO_FILL_CHUNK`] zero bytes, page-aligned (so `O_DIRECT` accepts them), shared by every
/// store and never written after it is made.
pub(crate) fn zero_chunk() -> &'static [u8] {
    static ZEROS: OnceLock<AlignedBuf> = OnceLock::new();
    ZEROS
        .get_or_init(|| {
            let mut zeros = AlignedBuf::with_capacity(ZERO_FILL_CHUNK);
            zeros.resize(ZERO_FILL_CHUNK);
            zeros
        })
        .as_slice()
}

/// The system calls the file store makes for extent I/O, as a seam for fault injection.
///
/// Implementations transfer at most `buf.len()` bytes and report how many, like the system
/// calls; the store loops over short transfers and retries `EINTR` itself.
pub trait ExtentIo: Send + Sync + 'static {
    /// Writes from `buf` at `offset` of `file`; returns the bytes written.
    fn write_at(&self, file: &File, buf: &[u8], offset: u64) -> io::Result<usize>;
    /// Reads into `buf` from `offset` of `file`; returns the bytes read (0 at end of file).
    fn read_at(&self, file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// Deallocates `len` bytes at `offset` of `file`, keeping the file size.
    fn punch_hole(&self, file: &File, offset: u64, len: u64) -> io::Result<()>;
    /// Writes zeros at `offset` of `file`, at most `len` and at most [`ZERO_FILL_CHUNK`]
    /// bytes; returns the bytes written. The store fills the unwritten tail of a slot with
    /// them. The default is a [`ExtentIo::write_at`] of the shared zero buffer.
    fn write_zeros(&self, file: &File, offset: u64, len: usize) -> io::Result<usize> {
        self.write_at(file, &zero_chunk()[..len.min(ZERO_FILL_CHUNK)], offset)
    }
}

/// The real system calls: `pwrite(2)` and `pread(2)` (through std's [`FileExt`]) and
/// `fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SystemIo;

fn to_off_t(offset: u64) -> io::Result<libc::off_t> {
    libc::off_t::try_from(offset)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file offset out of range"))
}

impl ExtentIo for SystemIo {
    fn write_at(&self, file: &File, buf: &[u8], offset: u64) -> io::Result<usize> {
        FileExt::write_at(file, buf, offset)
    }

    fn read_at(&self, file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        FileExt::read_at(file, buf, offset)
    }

    fn punch_hole(&self, file: &File, offset: u64, len: u64) -> io::Result<()> {
        let (offset, len) = (to_off_t(offset)?, to_off_t(len)?);
        let mode = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
        // SAFETY: fallocate takes no pointers; the descriptor is open for the borrow of
        // `file`, and a bad range is reported as an error.
        if unsafe { libc::fallocate(file.as_raw_fd(), mode, offset, len) } < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}

/// Creates an unlinked read-write file in `dir` with mode `0600`.
///
/// `tempfile::tempfile_in` opens with `O_TMPFILE` where the filesystem supports it, else
/// creates a randomly named file and unlinks it right after opening; either way nothing
/// appears in the directory and the space goes back when the file is closed. Its `O_TMPFILE`
/// path opens with the umask-dependent default mode, so the mode is set to `0600` here. It
/// cannot open with `O_DIRECT`; [`enable_direct_io`] switches that on afterwards.
pub(crate) fn create_scratch_file(dir: &Path) -> io::Result<File> {
    let file = tempfile::tempfile_in(dir)?;
    file.set_permissions(Permissions::from_mode(0o600))?;
    Ok(file)
}

/// Switches `O_DIRECT` on for `file` (`fcntl(F_SETFL)`; std has no form of it).
pub(crate) fn enable_direct_io(file: &File) -> io::Result<()> {
    let fd = file.as_raw_fd();
    // SAFETY: fcntl(F_GETFL) takes no pointers; `fd` is open for the borrow of `file`.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above; F_SETFL takes an integer argument.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_DIRECT) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `statfs` `f_type` of tmpfs.
pub(crate) const TMPFS_MAGIC: u64 = 0x0102_1994;
/// `statfs` `f_type` of ramfs.
pub(crate) const RAMFS_MAGIC: u64 = 0x8584_58f6;

/// `"tmpfs"` or `"ramfs"` when `file` lives on a filesystem kept in memory (extents there
/// are not spilled at all), `None` otherwise or when the filesystem cannot be asked.
pub(crate) fn memory_filesystem(file: &File) -> Option<&'static str> {
    let mut stat = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: fstatfs writes one `struct statfs` through the pointer, which points to
    // enough properly aligned space; the descriptor is open for the borrow of `file`.
    if unsafe { libc::fstatfs(file.as_raw_fd(), stat.as_mut_ptr()) } < 0 {
        return None;
    }
    // SAFETY: fstatfs returned 0, so it initialized the struct.
    let stat = unsafe { stat.assume_init() };
    // `f_type` is signed on some targets; the magic numbers are 32-bit.
    match stat.f_type as u64 & 0xffff_ffff {
        TMPFS_MAGIC => Some("tmpfs"),
        RAMFS_MAGIC => Some("ramfs"),
        _ => None,
    }
}

/// Whether `error` says the device (or a quota) is full.
pub(crate) fn is_no_space(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
}

/// Whether `error` is `EINVAL` (what an unaligned `O_DIRECT` transfer fails with).
pub(crate) fn is_invalid_argument(error: &io::Error) -> bool {
    error.raw_os_error() == Some(libc::EINVAL)
}

/// Whether `error` is `ENOTDIR` (a component of a path is a file).
pub(crate) fn is_not_a_directory(error: &io::Error) -> bool {
    error.raw_os_error() == Some(libc::ENOTDIR)
}
