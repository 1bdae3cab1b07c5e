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
# Let the write-back of the build and the bundle finish before timing.
sync
sleep 2
capsa="$CAPSA_BIN/capsa-runtime --root $croot run --bundle $work bench"
runc="runc --root $rroot run --bundle $work bench"
floor="unshare -pf -m -i -u -n --mount-proc chroot $work/rootfs /bin/true"
echo "== capsa-runtime stage timings (--debug; µs since the command started) =="
# Into a file: a pipe's reader would compete for the CPUs being timed.
"$CAPSA_BIN/capsa-runtime" --debug --root "$croot" run --bundle "$work" stages 2>"$work/stages.log"
grep -E 'us=' "$work/stages.log" || true
echo
# Back to back (hyperfine), each container's deferred kernel work (cgroup
# and network namespace teardown in kernel workers) falls on the next run
# of the same command, as when a tool starts containers in a row; three
# rounds with the commands in turn first keep the machine's drift out of
# the ratios.
echo "== whole container life: $runs runs each, one command after the other (hyperfine, 3 rounds) =="
python3 bench/rounds.py 3 $((runs / 3)) \
    "capsa-runtime=$capsa" "runc=$runc" "kernel-floor=$floor"
echo
# Alternating the commands instead spreads every command's deferred work
# over all three.
echo "== whole container life: $runs runs each, interleaved =="
python3 bench/interleave.py --json "$work/interleaved.json" "$runs" \
    "capsa-runtime=$capsa" "runc=$runc" "kernel-floor=$floor"
python3 - "$work/interleaved.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
c, runc, floor = r["capsa-runtime"], r["runc"], r["kernel-floor"]
print()
for key, label in (("median_ms", "median"), ("mean_ms", "mean")):
    print(f"{label}: capsa-runtime takes {c[key] / runc[key]:.3f} of runc's time "
          f"({runc[key] / c[key]:.2f}x faster) and {c[key] / floor[key]:.3f}x the kernel floor's")
PY
