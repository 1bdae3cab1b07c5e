#!/bin/sh
# Benchmark of issue 2: a whole container life, `capsa-runtime run` of
# /bin/true in a busybox bundle with pid, mount, ipc, uts and network
# namespaces and a cgroup, against `runc run` of the same bundle and the
# kernel floor (unshare of those namespaces + chroot + exec), side by side.
set -eu
cd "$(dirname "$0")/.."
. bench/lib.sh
CAPSA_BIN=$(./scripts/build-release.sh)
work=$(mktemp -d /tmp/capsa-bench-XXXXXX)
# State roots on tmpfs, as /run is on most hosts (on some test machines /run
# is on the root file system); both runtimes get the same.
croot=$(mktemp -d /dev/shm/capsa-bench-XXXXXX)
rroot=$(mktemp -d /dev/shm/runc-bench-XXXXXX)
trap 'rm -rf "$work" "$croot" "$rroot"' EXIT
make_busybox_bundle "$work"
edit_config "$work/config.json" '
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
c["linux"]["namespaces"] = [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")]
c["linux"]["cgroupsPath"] = "capsa-bench"
'
runs=${RUNS:-300}
echo "== capsa-runtime stage timings (--debug) =="
"$CAPSA_BIN/capsa-runtime" --debug --root "$croot" run --bundle "$work" stages 2>&1 | grep -E 'us=' || true
echo
echo "== whole container life: $runs runs each =="
hyperfine -N --warmup 20 --runs "$runs" --export-json "$work/result.json" \
    -n capsa-runtime "$CAPSA_BIN/capsa-runtime --root $croot run --bundle $work bench" \
    -n runc "runc --root $rroot run --bundle $work bench" \
    -n kernel-floor "unshare -pf -m -i -u -n --mount-proc chroot $work/rootfs /bin/true" >/dev/null
print_ratios "$work/result.json"
