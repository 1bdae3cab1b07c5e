#!/bin/sh
# Benchmark of issue 3: what loading a Docker-sized seccomp profile adds to
# a container's start. The container life of bench/runtime-run.sh (run of
# /bin/true with pid, mount, ipc, uts and network namespaces and a cgroup),
# with and without capsa's default (Docker-like) profile, for capsa-runtime
# (its own BPF compiler) and runc (libseccomp), interleaved (the machine is
# shared and noisy); then the added time of each. Run as root.
set -eu
cd "$(dirname "$0")/.."
. bench/lib.sh
CAPSA_BIN=$(./scripts/build-release.sh --bins --examples)
work=$(mktemp -d /tmp/capsa-bench-XXXXXX)
croot=$(mktemp -d /dev/shm/capsa-bench-XXXXXX)
rroot=$(mktemp -d /dev/shm/runc-bench-XXXXXX)
trap 'rm -rf "$work" "$croot" "$rroot"' EXIT
make_busybox_bundle "$work/plain"
edit_config "$work/plain/config.json" '
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
c["linux"]["namespaces"] = [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")]
c["linux"]["cgroupsPath"] = "capsa-bench"
'
# The same container with the profile (and the same root filesystem).
mkdir -p "$work/seccomp"
"$CAPSA_BIN/examples/default_seccomp_profile" > "$work/profile.json"
cp "$work/plain/config.json" "$work/seccomp/config.json"
edit_config "$work/seccomp/config.json" "
c['root']['path'] = '$work/plain/rootfs'
c['linux']['seccomp'] = json.load(open('$work/profile.json'))
"
rules=$(python3 -c "import json; p=json.load(open('$work/profile.json')); print(sum(len(s['names']) for s in p['syscalls']))")
echo "profile: $rules system call names in $(python3 -c "import json; print(len(json.load(open('$work/profile.json'))['syscalls']))" ) rules"
echo
echo "== capsa-runtime stage timings with the profile (--debug) =="
"$CAPSA_BIN/capsa-runtime" --debug --root "$croot" run --bundle "$work/seccomp" stages 2>&1 | grep -E 'us=' || true
echo
runs=${RUNS:-300}
echo "== whole container life: $runs runs each, interleaved =="
python3 bench/interleave.py "$runs" \
    "capsa-runtime=$CAPSA_BIN/capsa-runtime --root $croot run --bundle $work/plain bench" \
    "capsa-runtime+seccomp=$CAPSA_BIN/capsa-runtime --root $croot run --bundle $work/seccomp bench" \
    "runc=runc --root $rroot run --bundle $work/plain bench" \
    "runc+seccomp=runc --root $rroot run --bundle $work/seccomp bench" | tee "$work/result.txt"
python3 - "$work/result.txt" <<'PY'
import sys
rows = {l.split()[0]: [float(x) for x in l.split()[1:]] for l in open(sys.argv[1]).readlines()[1:]}
print()
for name in ("capsa-runtime", "runc"):
    base, with_ = rows[name], rows[name + "+seccomp"]
    print(f"{name}: the profile adds {with_[0] - base[0]:.3f} ms (median), "
          f"{with_[1] - base[1]:.3f} ms (mean of the fastest 80%)")
PY
