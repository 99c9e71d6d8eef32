#!/usr/bin/env bash
# Formatting and lints, as the README states them.
set -euo pipefail
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy -p spillway-pool --all-targets --features heap-regions -- -D warnings
