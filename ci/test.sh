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
# Miri over the pool logic, where a nightly toolchain with Miri is installed (slow: opt in).
if [ "${SPILLWAY_MIRI:-0}" = 1 ]; then
  cargo +nightly miri test -p spillway-pool --features heap-regions --test miri
fi
