//! Keeping stdout for the report alone.
//!
//! timely's cluster setup prints `awaiting connections ...` on stdout while processes connect,
//! which would break the promise that `--json` prints exactly one JSON object there. While a
//! [`StdoutToStderr`] guard lives, file descriptor 1 points at stderr; dropping it restores
//! stdout. This is the binary's only `unsafe` code.

use std::io::Write;

/// Sends stdout to stderr until dropped.
pub struct StdoutToStderr {
    saved: libc::c_int,
}

impl StdoutToStderr {
    /// Redirects; `None` if the descriptors cannot be duplicated (stdout is then unchanged).
    pub fn redirect() -> Option<StdoutToStderr> {
        let _ = std::io::stdout().flush();
        // SAFETY: `dup` on fd 1 has no memory-safety preconditions; a failure returns -1.
        let saved = unsafe { libc::dup(1) };
        if saved < 0 {
            return None;
        }
        // SAFETY: fds 1 and 2 are open for the life of the process (or dup2 fails with -1,
        // which leaves fd 1 unchanged); Rust's `Stdout` writes by fd number, so it follows.
        if unsafe { libc::dup2(2, 1) } < 0 {
            // SAFETY: `saved` is the descriptor `dup` just returned and nothing else owns it.
            unsafe { libc::close(saved) };
            return None;
        }
        Some(StdoutToStderr { saved })
    }
}

impl Drop for StdoutToStderr {
    fn drop(&mut self) {
        let _ = std::io::stdout().flush();
        // SAFETY: `saved` is a descriptor this guard owns (from `dup`); restoring it onto fd 1
        // and closing it touches no memory.
        unsafe {
            libc::dup2(self.saved, 1);
            libc::close(self.saved);
        }
    }
}
