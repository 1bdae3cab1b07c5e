#!/bin/sh
# Runs capsa's whole test suite: formatting, lints, unit tests and the
# integration tests (as root, against the real kernel), then the short
# subset of the cgroup tests in a pure cgroup v2 VM (the whole set:
# scripts/cgroup-v2-vm.sh). Run as root on Debian 12.
set -eu
cd "$(dirname "$0")/.."
./scripts/deps.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
./scripts/cgroup-v2-vm.sh --quick
