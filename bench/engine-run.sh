#!/bin/sh
# Benchmark of issue 6: a whole container life through the engine,
# `capsa run --rm busybox true`, against `docker run --rm --network none`
# of the same image (Debian's docker.io: a dockerd of our own, see
# start_docker in lib.sh) and `capsa-runtime run` of a bundle holding the
# config.json capsa itself makes for that container (same namespaces,
# mounts, seccomp profile, capabilities) over the same root filesystem, so
# that capsa - capsa-runtime is what the engine adds: the store, the
# container's row, overlay root filesystem and config, the launcher and
# monitor, and the removal. Interleaved (the machine is shared and noisy).
# capsa's network is `none` by default (as `--network none`). Run as root.
# Issue 6's targets: capsa at most 15 ms, and under 10 ms over capsa-runtime.
set -eu
self=$(realpath "$0")
cd "$(dirname "$self")/.."
. bench/lib.sh
private_run "$self" "$@"
need_docker
CAPSA_BIN=$(./scripts/build-release.sh)
# Stores and state on tmpfs, for capsa and docker alike.
engine_bench_setup engine
start_docker "$work/docker"
docker_cli load -q -i "$work/busybox.tar" >/dev/null

# The runtime's bundle: capsa's own config of `run busybox true`, rooted in
# the plain directory instead of an overlay, with copies of the files capsa
# bind-mounts (hostname, hosts, resolv.conf) in the bundle.
id=$(capsa create --name bench-template busybox true)
mkdir -p "$work/bundle"
cp "$work/store/containers/$id/config.json" "$work/store/containers/$id/hostname" \
    "$work/store/containers/$id/hosts" "$work/store/containers/$id/resolv.conf" "$work/bundle/"
capsa rm bench-template >/dev/null
edit_config "$work/bundle/config.json" "
c['root']['path'] = '$work/rootfs'
for m in c['mounts']:
    if m['type'] == 'bind' and m['source'].startswith('$work/store/containers/'):
        m['source'] = '$work/bundle/' + m['source'].rsplit('/', 1)[1]
c['linux']['cgroupsPath'] = 'capsa-bench/runtime'
"
mkdir -p "$work/runtime"

runs=${RUNS:-100}
echo "== a whole container life of /bin/true: $runs runs each, interleaved =="
python3 bench/interleave.py --json "$work/result.json" "$runs" \
    "capsa=$CAPSA_BIN/capsa --root $work/store run --rm busybox true" \
    "docker=$DOCKER run --rm --network none busybox true" \
    "capsa-runtime=$CAPSA_BIN/capsa-runtime --root $work/runtime run --bundle $work/bundle bench"
python3 - "$work/result.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
capsa, docker, rt = r["capsa"], r["docker"], r["capsa-runtime"]
print()
for key, label in (("median_ms", "median"), ("fast80_mean_ms", "mean of the fastest 80%")):
    c, d, t = capsa[key], docker[key], rt[key]
    print(f"{label}: capsa / docker = {c / d:.3f} (docker takes {d / c:.1f}x capsa's time); "
          f"capsa - capsa-runtime = {c - t:.3f} ms")
c, t = capsa["median_ms"], rt["median_ms"]
print()
print(f"issue 6: capsa run --rm <= 15 ms: {'met' if c <= 15 else 'NOT met'} ({c:.2f} ms median); "
      f"the engine adds < 10 ms: {'met' if c - t < 10 else 'NOT met'} ({c - t:.2f} ms)")
PY
left=$(capsa ps -aq)
[ -z "$left" ] || { echo "containers left behind: $left" >&2; exit 1; }
