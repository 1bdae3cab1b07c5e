#!/bin/sh
# Runs capsa's whole test suite: formatting, lints, unit tests and the
# integration tests (as root, against the real kernel). Run as root on Debian 12.
set -eu
cd "$(dirname "$0")/.."
./scripts/deps.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
