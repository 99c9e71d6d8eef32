#!/usr/bin/env bash
# Installs what the build and the checks need. The machine has rustup and a stable toolchain;
# make sure the lint components are there too.
set -euo pipefail
if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    echo "ci/setup.sh: no cargo on PATH and none in ~/.cargo/bin; install Rust with rustup" >&2
    exit 1
  fi
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true
cargo --version
cargo fmt --version
cargo clippy --version
