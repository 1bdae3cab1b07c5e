#!/bin/sh
# Benchmark of issue 6: the memory of capsa's per-container monitor.
# Starts N containers (default 100) with `capsa run -d busybox sleep 3600`
# and reads the RSS and PSS of each container's monitor (the parent of the
# container's init) from /proc/PID/smaps_rollup; the same for Docker's
# per-container process, containerd-shim-runc-v2 (Debian's docker.io, a
# dockerd of our own; DOCKER=0 skips it). Issue 6's target: at most 1 MiB
# RSS per monitor. Every container is removed at the end. Run as root.
set -eu
self=$(realpath "$0")
cd "$(dirname "$self")/.."
. bench/lib.sh
private_run "$self" "$@"
with_docker=${DOCKER:-1}
[ "$with_docker" = 0 ] || need_docker
CAPSA_BIN=$(./scripts/build-release.sh)
n=${CONTAINERS:-100}
engine_bench_setup monitor

# memory_of NAME PIDS_FILE: reads smaps_rollup of the parent of each
# container pid in PIDS_FILE (checking its name) and prints the figures.
memory_of() {
    python3 - "$1" "$2" <<'PY'
import statistics, sys
name, pids = sys.argv[1], [int(l) for l in open(sys.argv[2]) if l.strip()]
rows = []
for pid in pids:
    ppid = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
    comm = open(f"/proc/{ppid}/comm").read().strip()
    roll = {}
    for line in open(f"/proc/{ppid}/smaps_rollup").read().splitlines()[1:]:
        key, value = line.split(":", 1)
        roll[key] = int(value.split()[0])
    rows.append((comm, roll["Rss"], roll["Pss"], roll["Private_Clean"] + roll["Private_Dirty"]))
comms = sorted({r[0] for r in rows})
print(f"{name}: {len(rows)} processes ({', '.join(comms)})")
for i, label in ((1, "RSS"), (2, "PSS"), (3, "USS (private)")):
    vals = [r[i] for r in rows]
    print(f"  {label:<14} mean {statistics.mean(vals):8.1f} kB   max {max(vals):6d} kB   min {min(vals):6d} kB")
with open(sys.argv[2] + ".rss", "w") as fh:
    fh.write(f"{statistics.mean(r[1] for r in rows)} {max(r[1] for r in rows)} {statistics.mean(r[2] for r in rows)}\n")
PY
}

echo "== $n containers: capsa run -d busybox sleep 3600 =="
for i in $(seq "$n"); do
    capsa run -d --name "mem-$i" busybox sleep 3600 >/dev/null
done
capsa inspect -f '{{.State.Pid}}' $(capsa ps -q) > "$work/capsa.pids"
memory_of "capsa monitors" "$work/capsa.pids"

if [ "$with_docker" != 0 ]; then
    start_docker "$work/docker"
    docker_cli load -q -i "$work/busybox.tar" >/dev/null
    echo
    echo "== $n containers: docker run -d --network none busybox sleep 3600 =="
    for i in $(seq "$n"); do
        docker_cli run -d --network none --name "mem-$i" busybox sleep 3600 >/dev/null
    done
    docker_cli inspect -f '{{.State.Pid}}' $(docker_cli ps -q) > "$work/docker.pids"
    memory_of "docker's containerd-shim-runc-v2" "$work/docker.pids"
fi

echo
python3 - "$work/capsa.pids.rss" "$work/docker.pids.rss" <<'PY'
import os, sys
mean, peak, pss = (float(x) for x in open(sys.argv[1]).read().split())
print(f"issue 6: monitor RSS <= 1 MiB (1024 kB): {'met' if peak <= 1024 else 'NOT met'} "
      f"(mean {mean:.0f} kB, max {peak:.0f} kB; PSS mean {pss:.0f} kB)")
if os.path.exists(sys.argv[2]):
    dmean, dpeak, dpss = (float(x) for x in open(sys.argv[2]).read().split())
    print(f"capsa's monitor / containerd-shim-runc-v2: RSS {mean / dmean:.3f}, PSS {pss / dpss:.3f}")
PY
