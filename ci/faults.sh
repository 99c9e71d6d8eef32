#!/usr/bin/env bash
# The fault matrix: small join and reduce runs (2M and 1M updates, 4 MiB budget) with random faults
# injected into the file extent store (`--inject-faults`, feature `fault-injection`). Each run
# must either finish with the checksum of the fault-free run and JSON health counters showing
# that its faults were hit, or exit non-zero with a clear message; never a wrong checksum,
# never a hang (each run under `timeout 300`).
#
# A debug build: `cargo test --workspace` has just built every dependency in debug, so adding
# the feature recompiles only our crates (well under a minute), where a release build would
# compile everything again; a 2M-update join takes about 8 s in debug, a 1M-update reduce
# about as long (reduce reads far more chunks, and under a full store it runs degraded).
# The whole matrix takes about two and a half minutes on 2 cores.
# Usage: ci/faults.sh [JOIN_UPDATES] [REDUCE_UPDATES] [BUDGET]
set -uo pipefail
cd "$(dirname "$0")/.."
declare -A UPDATES=([join]=${1:-2M} [reduce]=${2:-1M})
BUDGET=${3:-4MiB}
cargo build --quiet --features fault-injection || exit 1
BIN=$PWD/target/debug/spillway
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT

field() { sed -n "s/.*\"$1\":\"\{0,1\}\([0-9a-f]*\)\"\{0,1\}[,}].*/\1/p"; }
health() { # the sum of the named counters of the health object
  local json=$1; shift
  local h=${json#*\"health\":\{}; h=${h%%\}*}
  local sum=0 f v
  for f in "$@"; do
    v=$(echo "{$h}" | sed -n "s/.*\"$f\":\([0-9]*\).*/\1/p")
    sum=$((sum + ${v:-0}))
  done
  echo $sum
}

declare -A reference
for workload in join reduce; do
  out=$(timeout 300 "$BIN" $workload --updates "${UPDATES[$workload]}" --budget "$BUDGET" \
    --json --quiet --extent-dir "$DIR") || { echo "faults: fault-free $workload failed" >&2; exit 1; }
  reference[$workload]=$(echo "$out" | field checksum)
  echo "faults: fault-free $workload: checksum ${reference[$workload]}"
done

failed=0
run() { # run WORKLOAD SPEC: one cell of the matrix
  local workload=$1 spec=$2 out rc sum hits
  local started=$(date +%s)
  out=$(timeout 300 "$BIN" $workload --updates "${UPDATES[$workload]}" --budget "$BUDGET" \
    --json --quiet --extent-dir "$DIR" --inject-faults "$spec" 2>"$DIR/stderr")
  rc=$?
  local took=$(( $(date +%s) - started ))
  if [ $rc -eq 124 ]; then
    echo "faults: $workload $spec: HUNG (killed after 300 s)" >&2; failed=1; return
  fi
  if [ $rc -ne 0 ]; then
    if grep -q -e "spillway: error" -e "cannot read a paged chunk back" "$DIR/stderr"; then
      echo "faults: $workload $spec: exit $rc with a clear message (${took} s):"
      grep -m1 -e "spillway: error" -e "cannot read a paged chunk back" "$DIR/stderr" | cut -c1-300
    else
      echo "faults: $workload $spec: exit $rc WITHOUT a clear message" >&2
      tail -5 "$DIR/stderr" >&2; failed=1
    fi
    return
  fi
  sum=$(echo "$out" | field checksum)
  hits=$(health "$out" io_errors checksum_failures write_nospace)
  if [ "$sum" != "${reference[$workload]}" ]; then
    echo "faults: $workload $spec: WRONG CHECKSUM $sum (expected ${reference[$workload]})" >&2
    failed=1
  elif [ "$hits" -eq 0 ]; then
    echo "faults: $workload $spec: no fault was hit (health counters all zero)" >&2
    failed=1
  else
    echo "faults: $workload $spec: checksum ok, ${hits} faults counted (${took} s);" \
      "health: ${out#*\"health\":}" | cut -c1-400
  fi
}

run join "eio=0.01,enospc-after=64MiB,flip=0.001,short=0.01"
run join "eio=0.02,flip=0.01"
run join "enospc-after=8MiB,short=0.05"
run reduce "eio=0.01,enospc-after=16MiB,flip=0.001,short=0.01"
run reduce "eio=0.02,flip=0.01"
# A device failing a third of all calls: reads fail all their retries now and then. The run
# either survives or stops with a message naming the chunk and the extent.
run join "eio=0.3"
if [ $failed -ne 0 ]; then
  echo "faults: FAILED" >&2
  exit 1
fi
echo "faults: OK"
