#!/bin/sh
# Benchmark of issue 12: container starts through the managers that call a
# runtime, each with capsa-runtime and with runc on the same private
# daemons, in one run, interleaved: `docker run --rm --runtime R busybox
# true` on a dockerd of our own, `ctr run --rm --runc-binary R` on a
# containerd of our own, and a Kubernetes pod start through containerd's
# CRI plugin (RunPodSandbox + CreateContainer + StartContainer) with the
# `capsa` and `runc` runtime handlers. The daemons and images are the
# tests' (crates/runtime-cli/tests/managers), driven by the
# `managers_bench` example. Prints capsa's time as a share of runc's and
# keeps the output in bench/results/managers-DATE.txt. Run as root.
# RUNS (default 30) starts of each kind per runtime.
set -eu
self=$(realpath "$0")
cd "$(dirname "$self")/.."
. bench/lib.sh
private_run "$self" "$@"
need_docker
CAPSA_BIN=$(./scripts/build-release.sh --bin capsa-runtime --example managers_bench)
mkdir -p bench/results
out=bench/results/managers-$(date +%Y-%m-%d).txt
{
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "machine: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(nproc) CPUs, $(free -g | awk '/^Mem:/ {print $2}') GiB, Linux $(uname -r)"
    echo "peers: $(dockerd --version), containerd $(containerd --version | awk '{print $3}'), $(runc --version | head -1)"
    echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    "$CAPSA_BIN/examples/managers_bench" "$CAPSA_BIN/capsa-runtime" "${RUNS:-30}"
} | tee "$out"
