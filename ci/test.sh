#!/usr/bin/env bash
# The README's test command, then the heap-region build of the pool, then a short run of the
# README's main job (in debug, on small sizes) to prove the binary works end to end.
set -euo pipefail
cargo test --workspace
cargo test -p spillway-pool --features heap-regions
out=$(cargo run --quiet -- pool-throughput --total 64MiB --budget 8MiB --json)
echo "$out"
case "$out" in
  *'"checksum_ok":true'*) echo "pool-throughput smoke run: contents verified" ;;
  *) echo "pool-throughput smoke run failed" >&2; exit 1 ;;
esac
# Miri over the pool logic (heap-backed regions), where a nightly toolchain with Miri can be
# had; skipped with a message otherwise. SPILLWAY_MIRI=0 skips it on purpose.
if [ "${SPILLWAY_MIRI:-1}" = 1 ]; then
  if rustup toolchain list 2>/dev/null | grep -q '^nightly' \
     && rustup component add miri --toolchain nightly >/dev/null 2>&1 \
     && cargo +nightly miri setup >/dev/null 2>&1; then
    cargo +nightly miri test -p spillway-pool --features heap-regions --test miri
  else
    echo "skipping Miri: no nightly toolchain with the miri component on this machine"
  fi
fi
# The fault matrix: join and reduce with injected EIO, ENOSPC, flipped bytes and short writes
# finish with the fault-free checksums or stop with a clear message (a debug build with the
# `fault-injection` feature, then about two and a half minutes). SPILLWAY_FAULTS=0 skips it.
if [ "${SPILLWAY_FAULTS:-1}" = 1 ]; then
  bash ci/faults.sh
fi
# Larger than RAM: 40M updates in a 768 MiB memory cgroup (a release build and about three
# minutes; needs root and cgroup v1 or v2, and skips with a message otherwise).
# SPILLWAY_LTR=0 skips it on purpose.
if [ "${SPILLWAY_LTR:-1}" = 1 ]; then
  bash ci/larger-than-ram.sh
fi
