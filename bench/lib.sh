# Shared helpers of the benchmark scripts (sourced, not run).

# make_busybox_bundle DIR: a bundle with a busybox rootfs and capsa's default
# config running /bin/true without a terminal.
make_busybox_bundle() {
    dir=$1
    mkdir -p "$dir/rootfs/bin" "$dir/rootfs/etc" "$dir/rootfs/tmp"
    cp /usr/bin/busybox "$dir/rootfs/bin/busybox"
    for applet in $(/usr/bin/busybox --list); do
        [ "$applet" = busybox ] || ln -sf busybox "$dir/rootfs/bin/$applet"
    done
    echo "root:x:0:0:root:/root:/bin/sh" > "$dir/rootfs/etc/passwd"
    echo "root:x:0:" > "$dir/rootfs/etc/group"
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
