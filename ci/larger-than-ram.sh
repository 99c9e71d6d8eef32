#!/usr/bin/env bash
# Larger than RAM: `spillway join --updates 40M` inside a 768 MiB memory cgroup, on upstream
# OrdValSpine (expected to be OOM-killed) and on the pool at a 192 MiB budget (expected to
# finish with the checksum of an uncapped dd-ord run of the same input).
# Needs root for the cgroup (v1 or v2); skips with a message when none can be created.
# Usage: ci/larger-than-ram.sh [UPDATES]   (about 3 minutes on 2 cores, after the build)
set -uo pipefail
cd "$(dirname "$0")/.."
UPDATES=${1:-40M}
CAP=$((768 << 20))
cargo build --release --quiet || exit 1
BIN=$PWD/target/release/spillway
NAME=spillway-ltr-$$

if [ -d /sys/fs/cgroup/memory ] && mkdir /sys/fs/cgroup/memory/$NAME 2>/dev/null; then
  CG=/sys/fs/cgroup/memory/$NAME
  echo $CAP > $CG/memory.limit_in_bytes
  [ -f $CG/memory.memsw.limit_in_bytes ] && echo $CAP > $CG/memory.memsw.limit_in_bytes 2>/dev/null
elif [ -f /sys/fs/cgroup/cgroup.controllers ] && mkdir /sys/fs/cgroup/$NAME 2>/dev/null; then
  CG=/sys/fs/cgroup/$NAME
  echo $CAP > $CG/memory.max
  echo 0 > $CG/memory.swap.max 2>/dev/null
else
  echo "larger-than-ram: SKIPPED: cannot create a memory cgroup (needs root and cgroup v1 or v2)"
  exit 0
fi
trap 'rmdir $CG 2>/dev/null' EXIT

capped() { # runs spillway in the cgroup; prints its JSON (or nothing) and returns its status
  bash -c "echo \$\$ > $CG/cgroup.procs && exec $BIN $*"
}
checksum() { sed -n 's/.*"checksum":"\([0-9a-f]*\)".*/\1/p'; }

echo "uncapped dd-ord, $UPDATES updates..."
reference=$($BIN join --updates $UPDATES --backend dd-ord --json --quiet | checksum)
echo "capped (768 MiB) dd-ord..."
ord_out=$(capped join --updates $UPDATES --backend dd-ord --json --quiet); ord_rc=$?
echo "capped (768 MiB) pool at 192 MiB..."
pool_out=$(capped join --updates $UPDATES --backend pool --budget 192MiB --json --quiet); pool_rc=$?
pool_sum=$(echo "$pool_out" | checksum)

echo "uncapped dd-ord: checksum $reference"
if [ $ord_rc -eq 137 ]; then echo "capped dd-ord:   OOM-killed (exit 137), as expected"
else echo "capped dd-ord:   exit $ord_rc (expected an OOM kill)"; fi
echo "capped pool:     exit $pool_rc, checksum $pool_sum"
echo "$pool_out"
if [ $pool_rc -eq 0 ] && [ -n "$reference" ] && [ "$pool_sum" = "$reference" ]; then
  echo "larger-than-ram: OK"
else
  echo "larger-than-ram: FAILED" >&2
  exit 1
fi
