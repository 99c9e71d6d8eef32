#!/usr/bin/env bash
# Formatting, lints and docs, as the README states them; plus the builds a library user gets
# (no default features: no clap, no indicatif) and the pool's heap-region build.
set -euo pipefail
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy -p spillway-pool --all-targets --features heap-regions -- -D warnings
cargo clippy -p spillway --no-default-features --lib -- -D warnings
if cargo tree -p spillway --no-default-features -e normal | grep -E '\b(clap|indicatif) v'; then
  echo "a library build of spillway pulls in the CLI's dependencies" >&2
  exit 1
fi
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
# No circle of imports between files (the checker lives in the steering repo's shared/).
if [ -f ../shared/tools/circles.py ]; then
  python3 ../shared/tools/circles.py .
else
  echo "skipping the import-circle check: ../shared/tools/circles.py is not beside this clone"
fi
