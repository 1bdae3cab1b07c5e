#!/bin/sh
# Benchmark of issue 6: many containers. Starts N containers (default 500)
# one after another with `capsa run -d busybox sleep 3600` (the total, per
# container, and whether starts slow down as containers pile up), times
# `capsa ps` and `capsa ps -a` with them all running (hyperfine), removes
# them all with one `capsa rm -f`, and checks that nothing is left: no
# container, process, mount, cgroup, runtime state or directory. Run as root.
set -eu
self=$(realpath "$0")
cd "$(dirname "$self")/.."
. bench/lib.sh
private_run "$self" "$@"
CAPSA_BIN=$(./scripts/build-release.sh)
n=${CONTAINERS:-500}
engine_bench_setup many

echo "== $n containers started one after another: capsa run -d busybox sleep 3600 =="
python3 - "$n" "$CAPSA_BIN/capsa" "$work/store" "$work/ids" <<'PY'
import statistics, subprocess, sys, time
n, capsa, store, ids_path = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
times, ids = [], []
start = time.perf_counter()
for i in range(n):
    t = time.perf_counter()
    out = subprocess.run([capsa, "--root", store, "run", "-d", "busybox", "sleep", "3600"],
                         check=True, capture_output=True, text=True).stdout
    times.append(time.perf_counter() - t)
    ids.append(out.strip())
total = time.perf_counter() - start
open(ids_path, "w").write("\n".join(ids) + "\n")
ms = [t * 1e3 for t in times]
k = max(1, n // 10)
print(f"total {total:.2f} s for {n} containers: {total / n * 1e3:.2f} ms per container "
      f"(median {statistics.median(ms):.2f} ms, max {max(ms):.1f} ms)")
print(f"first {k}: mean {statistics.mean(ms[:k]):.2f} ms; last {k}: mean {statistics.mean(ms[-k:]):.2f} ms")
PY
running=$(capsa ps -q | wc -l)
[ "$running" -eq "$n" ] || { echo "expected $n running containers, found $running" >&2; exit 1; }
# Their processes and monitors (the init's parent), to check they are gone later.
capsa inspect -f '{{.State.Pid}}' $(cat "$work/ids") > "$work/pids"
for p in $(cat "$work/pids"); do awk '{print $4}' "/proc/$p/stat"; done > "$work/monitors"

echo
runs=${RUNS:-30}
echo "== listing $n running containers: $runs runs each =="
hyperfine -N --warmup 3 --runs "$runs" --export-json "$work/ps.json" \
    -n "capsa ps" "$CAPSA_BIN/capsa --root $work/store ps" \
    -n "capsa ps -a" "$CAPSA_BIN/capsa --root $work/store ps -a" >/dev/null
print_ratios "$work/ps.json"

echo
echo "== removing them: capsa rm -f (all $n in one command) =="
python3 - "$CAPSA_BIN/capsa" "$work/store" "$work/ids" <<'PY'
import subprocess, sys, time
capsa, store, ids = sys.argv[1], sys.argv[2], open(sys.argv[3]).read().split()
t = time.perf_counter()
subprocess.run([capsa, "--root", store, "rm", "-f", *ids], check=True, stdout=subprocess.DEVNULL)
total = time.perf_counter() - t
print(f"total {total:.2f} s: {total / len(ids) * 1e3:.2f} ms per container")
PY

echo
echo "== leak check =="
python3 - "$work/store" "$work/ids" "$work/pids" "$work/monitors" "$(capsa ps -aq | wc -l)" <<'PY'
import glob, os, sys
store, ids = sys.argv[1], set(open(sys.argv[2]).read().split())
procs = [int(p) for f in sys.argv[3:5] for p in open(f).read().split()]
problems = []
if sys.argv[5] != "0":
    problems.append(f"{sys.argv[5]} containers still listed")
def ours(pid):
    # A zombie has ended (PID 1, which inherits the orphans, reaps it when
    # it gets to it): only living processes count.
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except FileNotFoundError:
        return False
    comm = stat[stat.index("(") + 1 : stat.rindex(")")]
    state = stat[stat.rindex(")") + 2]
    return state not in "ZX" and (comm == "sleep" or comm.startswith("capsa-monitor"))
alive = [p for p in procs if ours(p)]
if alive:
    problems.append(f"{len(alive)} container or monitor processes alive")
mounts = [l.split()[4] for l in open("/proc/self/mountinfo") if l.split()[4].startswith(store + "/")]
if mounts:
    problems.append(f"{len(mounts)} mounts left under the store, e.g. {mounts[0]}")
cgroups = []
for line in open("/proc/self/cgroup"):
    _, controllers, path = line.rstrip("\n").split(":", 2)
    name = controllers.replace("name=", "") or "unified"
    parent = f"/sys/fs/cgroup/{name}{path.rstrip('/')}"
    if os.path.isdir(parent):
        cgroups += [d for d in os.listdir(parent) if d.removeprefix("capsa-") in ids]
if cgroups:
    problems.append(f"{len(cgroups)} container cgroups left")
state = [d for d in glob.glob("/run/capsa*/runtime/*") if os.path.basename(d) in ids]
if state:
    problems.append(f"{len(state)} runtime state directories left")
for sub in ("containers", "rootfs"):
    left = [d for d in os.listdir(os.path.join(store, sub)) if d in ids]
    if left:
        problems.append(f"{len(left)} directories left in {sub}/")
if problems:
    print("LEAKS: " + "; ".join(problems))
    sys.exit(1)
print(f"nothing left of the {len(ids)} containers: no container, process, mount, cgroup, runtime state or directory")
PY
