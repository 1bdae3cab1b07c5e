# Shared helpers of the benchmark scripts (sourced, not run).

# A backtrace captured with every error value (RUST_BACKTRACE in a
# developer's shell) costs milliseconds in a static binary: measure what
# users get.
unset RUST_BACKTRACE RUST_LIB_BACKTRACE

# make_busybox_rootfs DIR: see scripts/busybox-rootfs.sh.
. scripts/busybox-rootfs.sh

# make_busybox_bundle DIR: a bundle with a busybox rootfs and capsa's default
# config running /bin/true without a terminal.
make_busybox_bundle() {
    dir=$1
    make_busybox_rootfs "$dir/rootfs"
    rm -f "$dir/config.json"
    "$CAPSA_BIN/capsa-runtime" spec --bundle "$dir"
}

# edit_config FILE PYTHON: applies a Python statement to the JSON config `c`.
edit_config() {
    python3 - "$1" "$2" <<'PY'
import json, sys
path, stmt = sys.argv[1], sys.argv[2]
c = json.load(open(path))
exec(stmt)
json.dump(c, open(path, "w"), indent=2)
PY
}

# print_ratios JSON: a table of a hyperfine JSON export, and the time of the
# first command relative to each of the others.
print_ratios() {
    python3 - "$1" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))["results"]
by = {r["command"]: r for r in res}
names = list(by)
base = by[names[0]]
print()
print(f"{'command':<40} {'mean ms':>9} {'stddev':>8} {'median':>8}")
for n in names:
    r = by[n]
    print(f"{n:<40} {r['mean']*1e3:>9.3f} {r['stddev']*1e3:>8.3f} {r['median']*1e3:>8.3f}")
print()
for n in names[1:]:
    r = by[n]
    print(f"{names[0]} takes {base['mean']/r['mean']:.3f} of {n}'s time ({n} / {names[0]} = {r['mean']/base['mean']:.2f}x)")
PY
}

# make_busybox_image ROOTFS ARCHIVE: a docker-archive (what `docker save`
# writes and both `docker load` and `capsa load` read) of one layer holding
# ROOTFS, tagged busybox:latest, with `sh` as command.
make_busybox_image() {
    python3 - "$1" "$2" <<'PY'
import hashlib, io, json, os, sys, tarfile
src, out = sys.argv[1], sys.argv[2]
def owned_by_root(ti):
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    ti.mtime = 1700000000
    return ti
layer = io.BytesIO()
with tarfile.open(fileobj=layer, mode="w", format=tarfile.GNU_FORMAT) as t:
    for top, dirs, files in os.walk(src):
        dirs.sort()
        for name in sorted(dirs + files):
            path = os.path.join(top, name)
            t.add(path, arcname=os.path.relpath(path, src), recursive=False, filter=owned_by_root)
layer = layer.getvalue()
diff_id = hashlib.sha256(layer).hexdigest()
config = json.dumps({
    "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
    "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"]},
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + diff_id]},
    "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "busybox-static"}],
}).encode()
config_name = hashlib.sha256(config).hexdigest() + ".json"
manifest = json.dumps([{"Config": config_name, "RepoTags": ["busybox:latest"],
                        "Layers": [diff_id + "/layer.tar"]}]).encode()
with tarfile.open(out, "w", format=tarfile.GNU_FORMAT) as t:
    for name, data in ((config_name, config), (diff_id + "/layer.tar", layer), ("manifest.json", manifest)):
        ti = tarfile.TarInfo(name)
        ti.size = len(data)
        ti.mtime = 1700000000
        t.addfile(ti, io.BytesIO(data))
PY
}

# private_run SCRIPT ARGS...: runs SCRIPT again (once) in a private mount
# namespace with a tmpfs on /run, where the engines keep their runtime
# state: /run is a tmpfs on most hosts but on the root file system of some
# test machines. Every mount the benchmark makes stays in that namespace.
private_run() {
    if [ -z "${CAPSA_BENCH_PRIVATE_RUN:-}" ]; then
        CAPSA_BENCH_PRIVATE_RUN=1 exec unshare --mount --propagation private "$@"
    fi
    mount -t tmpfs -o mode=755 capsa-bench-run /run
}

# need_docker: installs Debian's docker.io (dockerd, containerd, runc and
# the docker client in /usr/bin) when missing.
need_docker() {
    if [ ! -x /usr/sbin/dockerd ] || [ ! -x /usr/bin/docker ]; then
        echo "installing docker.io (apt-get)" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io >/dev/null
    fi
}

# start_docker DIR: starts Debian's dockerd with everything of its own in
# DIR (data root, exec root, pid file, socket, an empty daemon.json), its
# containers' cgroups under a parent of its own, and no host networking (no
# bridge, no iptables). DOCKER is then the client command (a string, for
# benchmark command lines); docker_cli runs it. stop_docker undoes all.
start_docker() {
    docker_dir=$1
    docker_cgroup=capsa-bench-docker-$$
    mkdir -p "$docker_dir"
    echo '{}' > "$docker_dir/daemon.json"
    /usr/sbin/dockerd --config-file "$docker_dir/daemon.json" \
        --data-root "$docker_dir/data" --exec-root "$docker_dir/exec" \
        --pidfile "$docker_dir/docker.pid" -H "unix://$docker_dir/docker.sock" \
        --bridge=none --iptables=false --ip6tables=false \
        --cgroup-parent "/$docker_cgroup" --log-level warn \
        >"$docker_dir/dockerd.log" 2>&1 &
    docker_pid=$!
    DOCKER="/usr/bin/docker -H unix://$docker_dir/docker.sock"
    for _ in $(seq 300); do
        docker_cli version >/dev/null 2>&1 && return 0
        kill -0 "$docker_pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "dockerd did not start:" >&2
    tail -20 "$docker_dir/dockerd.log" >&2
    return 1
}

docker_cli() {
    /usr/bin/docker -H "unix://$docker_dir/docker.sock" "$@"
}

# stop_docker: removes the containers left, stops dockerd (and with it its
# containerd), then removes its cgroup parent and any mount left in its
# directory (the directory itself is the caller's).
stop_docker() {
    [ -n "${docker_pid:-}" ] || return 0
    left=$(docker_cli ps -aq 2>/dev/null || true)
    [ -z "$left" ] || docker_cli rm -f $left >/dev/null 2>&1 || true
    kill -TERM "$docker_pid" 2>/dev/null || true
    for _ in $(seq 300); do
        kill -0 "$docker_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$docker_pid" 2>/dev/null || true
    wait "$docker_pid" 2>/dev/null || true
    docker_pid=
    for d in /sys/fs/cgroup/*/"$docker_cgroup"; do
        [ -d "$d" ] && rmdir "$d" 2>/dev/null || true
    done
    unmount_under "$docker_dir"
}

# unmount_under DIR: lazily unmounts every mount at or below DIR, deepest first.
unmount_under() {
    awk -v d="$1" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo |
        sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
}


# remove_all_containers STORE: `capsa rm -f` of every container of the
# store at STORE (if there is a store), whatever its state.
remove_all_containers() {
    [ -e "$1/capsa.db" ] || return 0
    ids=$("$CAPSA_BIN/capsa" --root "$1" ps -aq 2>/dev/null || true)
    [ -z "$ids" ] || "$CAPSA_BIN/capsa" --root "$1" rm -f $ids >/dev/null 2>&1 || true
}

# engine_bench_setup NAME: the start of the engine's benchmarks. A work
# directory on tmpfs ($work) that goes at exit with all it holds — the
# containers of its store ($work/store), the dockerd of start_docker, any
# mount — then a busybox root filesystem ($work/rootfs) and its image
# ($work/busybox.tar) loaded into the store. `capsa` runs on that store.
engine_bench_setup() {
    work=$(mktemp -d "/dev/shm/capsa-bench-$1-XXXXXX")
    trap engine_bench_cleanup EXIT
    trap 'exit 130' INT TERM
    make_busybox_rootfs "$work/rootfs"
    make_busybox_image "$work/rootfs" "$work/busybox.tar"
    capsa load -q -i "$work/busybox.tar" >/dev/null
}

engine_bench_cleanup() {
    remove_all_containers "$work/store"
    stop_docker
    unmount_under "$work"
    rm -rf "$work"
}

capsa() {
    "$CAPSA_BIN/capsa" --root "$work/store" "$@"
}
