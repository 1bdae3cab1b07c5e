#!/bin/bash
# OCI runtime conformance: builds the OCI runtime-tools validation suite from
# its source tarball (with its Go dependencies vendored) in a temporary
# directory, runs each of its validation programs against capsa-runtime and,
# for comparison, runc, and prints a table per program (file) with both
# runtimes' results, the totals, and the failures this host or the suite
# explains (each with its reason, checked here: a host reason by looking at
# the host, a suite bug by runc failing the same assertions), and those where
# capsa-runtime keeps runc 1.1's behaviour against the spec (runc failing
# them the same way). Programs with a race of their own run up to five times.
#
#   scripts/conformance.sh RUNTIME_TOOLS_TARBALL
#
# Run as root (the suite creates containers with cgroups and namespaces),
# with Debian's golang-go (1.19) installed. Environment:
#   CAPSA_RUNTIME   the capsa-runtime binary to test (default: built here,
#                   static and in release, with scripts/build-release.sh)
#   RUNC            the runc binary to compare with (default: runc on PATH)
#   TESTS           validation programs to run (default: all), by name
#   TEST_TIMEOUT    seconds each program may take (default 300)
#   KEEP_RESULTS    a directory to copy every program's TAP output into
#
# Exit status: 0 when every file capsa-runtime fails is an expected failure
# whose reason holds here; 1 otherwise. Nothing is left behind: each runtime
# gets its own state root per program, the programs' bundles live in the
# temporary directory, and after each program the containers it left are
# deleted, mounts under the temporary directory unmounted and the cgroups it
# made (`cgrouptest`, `testdir`) removed.
set -euo pipefail
cd "$(dirname "$0")/.."

tarball=${1:-}
if [ -z "$tarball" ] || [ ! -f "$tarball" ]; then
    echo "usage: $0 RUNTIME_TOOLS_TARBALL (the OCI runtime-tools source with vendored Go modules)" >&2
    exit 2
fi
tarball=$(realpath "$tarball")
if [ "$(id -u)" != 0 ]; then
    echo "$0: run as root: the suite creates containers with cgroups and namespaces" >&2
    exit 2
fi
for tool in go make python3 tar timeout; do
    command -v "$tool" >/dev/null || { echo "$0: $tool is missing (apt-get install golang-go make python3)" >&2; exit 2; }
done
runc=$(command -v "${RUNC:-runc}") || { echo "$0: runc is missing (apt-get install runc)" >&2; exit 2; }
timeout_s=${TEST_TIMEOUT:-300}
started=$(date +%s)

work=$(mktemp -d /tmp/capsa-conformance-XXXXXX)
# Containers with a user namespace reach their bundle as a mapped user.
chmod 755 "$work"
src=$work/src

# Every mount point under the work directory, deepest first.
mounts_under_work() {
    awk -v w="$work" '{ p = $5; gsub(/\\040/, " ", p) } p == w || index(p, w "/") == 1 { print p }' \
        /proc/self/mountinfo | sort -r
}

# The cgroup directories the suite makes: an absolute `/cgrouptest` and a
# relative `testdir/cgrouptest/...` (beneath our own cgroup), in every
# hierarchy. Printed one per line.
suite_cgroups() {
    python3 - <<'PY'
import os
own = {}
for line in open("/proc/self/cgroup"):
    _, ctrls, path = line.rstrip("\n").split(":", 2)
    own[ctrls] = path
for line in open("/proc/self/mountinfo"):
    left, right = line.split(" - ", 1)
    fstype, _, opts = right.split()[:3]
    if fstype not in ("cgroup", "cgroup2"):
        continue
    mnt = left.split()[4]
    if fstype == "cgroup2":
        path = own.get("", "/")
    else:
        names = [o for o in opts.split(",") if o not in ("rw", "ro") and not o.startswith(("clone_children", "noprefix", "release_agent", "cpuset_v2_mode", "xattr", "nsdelegate", "memory_recursiveprot"))]
        path = next((p for c, p in own.items() if c and set(c.split(",")) == set(names)), "/")
    for d in {os.path.join(mnt, "cgrouptest"), os.path.join(mnt, "testdir"),
              os.path.normpath(mnt + "/" + path + "/testdir"),
              os.path.normpath(mnt + "/" + path + "/cgrouptest")}:
        print(d)
PY
}

# Removes what a program left: containers in both state roots, mounts
# under the work directory, its temporary files, and the suite's cgroups
# that did not exist before this script started.
cleanup_after() {
    local rt root id
    for rt in capsa runc; do
        root=$work/state/$rt
        [ -d "$root" ] || continue
        for id in $("$work/bin/$rt" list -q 2>/dev/null); do
            "$work/bin/$rt" delete --force "$id" >/dev/null 2>&1 || true
        done
        rm -rf "$root"
    done
    local m
    for m in $(mounts_under_work); do
        umount -l "$m" 2>/dev/null || true
    done
    rm -rf "$work/tmp"
    local dir
    for dir in $(cat "$work/cgroups-candidates"); do
        [ -d "$dir" ] || continue
        grep -qxF "$dir" "$work/cgroups-before" && continue
        # Processes a failed program left in them (containers only: nothing
        # else runs in the suite's cgroups).
        find "$dir" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -9 2>/dev/null || true
        find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null || true
    done
}

final_cleanup() {
    set +e
    [ -d "$work/bin" ] && cleanup_after
    local m
    for m in $(mounts_under_work); do umount -l "$m" 2>/dev/null || true; done
    rm -rf "$work"
}
trap final_cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$work/bin" "$work/results" "$src"
suite_cgroups >"$work/cgroups-candidates"
while read -r d; do if [ -d "$d" ]; then echo "$d"; fi; done <"$work/cgroups-candidates" >"$work/cgroups-before"

echo "== building runtime-tools ($(basename "$tarball")) in $work" >&2
tar -xzf "$tarball" -C "$src"
[ -f "$src/Makefile" ] || { src=$(dirname "$(find "$src" -maxdepth 2 -name Makefile | head -1)"); }
(cd "$src" && GOFLAGS=-mod=vendor GOPROXY=off make runtimetest validation-executables >"$work/build.log" 2>&1) || {
    tail -20 "$work/build.log" >&2
    echo "$0: building the suite failed" >&2
    exit 1
}
built=$(date +%s)

if [ -n "${CAPSA_RUNTIME:-}" ]; then
    capsa=$(realpath "$CAPSA_RUNTIME")
else
    echo "== building capsa-runtime" >&2
    capsa=$(./scripts/build-release.sh --bin capsa-runtime)/capsa-runtime
fi
[ -x "$capsa" ] || { echo "$0: $capsa is not an executable" >&2; exit 2; }

# Each runtime with a state root of its own (the suite calls `$RUNTIME
# create ...` with no --root).
cat >"$work/bin/capsa" <<EOF
#!/bin/sh
exec "$capsa" --root "$work/state/capsa" "\$@"
EOF
cat >"$work/bin/runc" <<EOF
#!/bin/sh
exec "$runc" --root "$work/state/runc" "\$@"
EOF
chmod +x "$work/bin/capsa" "$work/bin/runc"

if [ -n "${TESTS:-}" ]; then
    tests=$TESTS
else
    tests=$(cd "$src/validation" && for d in */; do d=${d%/}; if [ -x "$d/$d.t" ]; then echo "$d"; fi; done)
fi

# Programs with a race of their own, run again (up to four times) when they
# fail (the output names them and their race): killsig signals the container
# as soon as `state` reads running, and a container's pid 1 ignores the
# signal until its shell has set its trap; poststart expects the container's
# program to have written its line before the poststart hook writes its own,
# while the spec orders only the hook after the program's exec.
racy=" killsig poststart "
max_tries=5

# run_program NAME RUNTIME: runs one validation program against one runtime;
# its TAP output, stderr, exit status and time go to the results directory
# (the time of every try is added up), the clean-up's time to cleanup.ms.
run_program() {
    local t=$1 rt=$2 rc=0 t0 t1 ms
    mkdir -p "$work/tmp"
    t0=$(date +%s%N)
    # From the source directory: the programs read rootfs-*.tar.gz and
    # runtimetest there. TMPDIR keeps their bundles in the work directory.
    (cd "$src" && TMPDIR="$work/tmp" RUNTIME="$work/bin/$rt" \
        timeout -k 10 "$timeout_s" "validation/$t/$t.t" \
        >"$work/results/$t.$rt.tap" 2>"$work/results/$t.$rt.err" </dev/null) || rc=$?
    t1=$(date +%s%N)
    ms=$(( (t1 - t0) / 1000000 ))
    if [ -f "$work/results/$t.$rt.rc" ]; then ms=$(( ms + $(cut -d' ' -f2 "$work/results/$t.$rt.rc") )); fi
    echo "$rc $ms" >"$work/results/$t.$rt.rc"
    cleanup_after
    echo $(( ($(date +%s%N) - t1) / 1000000 )) >>"$work/cleanup.ms"
    # As the table counts them: a failed assertion, or an error diagnostic
    # of the program's own (one not following an assertion), fails it.
    [ "$rc" = 0 ] && awk '/^TAP version/ { a = 0 } /^(not )?ok / { a = 1 } /^not ok/ { f = 1 }
        /^    "error": / && !a { f = 1 } END { exit f }' "$work/results/$t.$rt.tap"
}

for t in $tests; do
    [ -x "$src/validation/$t/$t.t" ] || { echo "$0: no validation program $t" >&2; exit 2; }
    for rt in capsa runc; do
        tries=1
        until run_program "$t" "$rt" || [ "$racy" = "${racy% $t *}" ] || [ $tries = $max_tries ]; do
            tries=$((tries + 1))
        done
        [ $tries = 1 ] || echo "$tries" >"$work/results/$t.$rt.tries"
    done
    printf '.' >&2
done
echo >&2
ran=$(date +%s)

# Confirms the reason of an expected failure where the host is the reason:
# prints "yes" when the host lacks what the program needs.
host_lacks() {
    case $1 in
    hugetlb-v1) ! awk '$3 == "cgroup" && $4 ~ /(^|,)hugetlb(,|$)/' /proc/mounts | grep -q . ;;
    net_cls-v1) ! awk '$3 == "cgroup" && $4 ~ /(^|,)net_cls(,|$)/' /proc/mounts | grep -q . ;;
    blkio-weight)
        dir=$(awk '$3 == "cgroup" && $4 ~ /(^|,)blkio(,|$)/ { print $2; exit }' /proc/mounts)
        [ -n "$dir" ] && [ ! -e "$dir/blkio.weight" ] && [ ! -e "$dir/blkio.bfq.weight" ] ;;
    kmem-limit)
        # A limit written to a cgroup of our own reads back as unlimited.
        mem=$(awk '$3 == "cgroup" && $4 ~ /(^|,)memory(,|$)/ { print $2; exit }' /proc/mounts)
        [ -n "$mem" ] || return 0
        own=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ { print $3 }' /proc/self/cgroup)
        probe="$mem$own/capsa-conformance-kmem-$$"
        mkdir "$probe" || return 1
        echo 52428800 >"$probe/memory.kmem.limit_in_bytes" 2>/dev/null || true
        kept=$(cat "$probe/memory.kmem.limit_in_bytes" 2>/dev/null || echo none)
        rmdir "$probe"
        [ "$kept" != 52428800 ] ;;
    all-caps)
        # Some capability the kernel knows is missing from our bounding set.
        last=$(cat /proc/sys/kernel/cap_last_cap)
        bnd=$((16#$(awk '/^CapBnd:/ { print $2 }' /proc/self/status)))
        [ "$bnd" != $(( (1 << (last + 1)) - 1 )) ] ;;
    selinux) [ ! -e /sys/fs/selinux/enforce ] ;;
    apparmor) ! grep -qs '^Y' /sys/module/apparmor/parameters/enabled ;;
    *) return 1 ;;
    esac
}
for reason in hugetlb-v1 net_cls-v1 blkio-weight kmem-limit all-caps selinux apparmor; do
    if host_lacks "$reason"; then echo "$reason"; fi
done >"$work/host-lacks"

# process_rlimits: what the runtime set, seen by a shell in the suite's
# rootfs (runtimetest, a Go program, raises its own soft limit).
mkdir -p "$work/rlimits/rootfs"
tar -xzf "$src/rootfs-amd64.tar.gz" -C "$work/rlimits/rootfs" 2>/dev/null || true
(cd "$work/rlimits" && "$work/bin/capsa" spec >/dev/null && python3 - <<'PY'
import json
c = json.load(open("config.json"))
c["process"]["terminal"] = False
c["process"]["args"] = ["sh", "-c", "ulimit -Sn; ulimit -Hn"]
c["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": 4000, "soft": 3000}]
json.dump(c, open("config.json", "w"))
PY
) && (cd "$work/rlimits" && "$work/bin/capsa" run "conformance-rlimits-$$" >"$work/rlimits.out" 2>&1) || true
cleanup_after

python3 - "$work" "$tests" "$started" "$built" "$ran" "${KEEP_RESULTS:-}" "$max_tries" <<'PY'
import json, os, re, shutil, sys, time

work, tests, started, built, ran, keep = sys.argv[1], sys.argv[2].split(), *map(int, sys.argv[3:6]), sys.argv[6]
max_tries = int(sys.argv[7])
res = os.path.join(work, "results")
host_lacks = set(open(os.path.join(work, "host-lacks")).read().split())
rlimits = open(os.path.join(work, "rlimits.out")).read().split() if os.path.exists(os.path.join(work, "rlimits.out")) else []

# Files capsa-runtime is expected to fail, and why: (kind, check, pattern,
# reason). "host": what this host lacks (checked above), and a pattern each
# failed assertion (or the error that stopped the program) must match;
# "suite": a bug of the suite itself, confirmed by runc failing the same
# assertions; "runc": capsa-runtime does what runc 1.1 does where runc
# departs from the spec and the managers rely on runc's way, confirmed by
# runc failing the same assertions and the same way.
EXPECTED = {
    "linux_cgroups_hugetlb": ("host", "hugetlb-v1", r"hugetlb|hugepage",
        "no v1 hugetlb hierarchy: the controller is bound to the host's cgroup2 hierarchy, whose root "
        "does not enable it for its children (capsa changes no cgroup it did not create), and the "
        "suite reads v1 files on a hybrid host"),
    "linux_cgroups_relative_hugetlb": ("host", "hugetlb-v1", r"hugetlb|hugepage", "as linux_cgroups_hugetlb"),
    "linux_cgroups_network": ("host", "net_cls-v1", r"net_cls|net_prio|classID",
        "no v1 net_cls/net_prio hierarchy is mounted (cgroup2 has no such controller)"),
    "linux_cgroups_relative_network": ("host", "net_cls-v1", r"net_cls|net_prio|classID", "as linux_cgroups_network"),
    "linux_cgroups_blkio": ("host", "blkio-weight", r"blkio|blockIO|bfq",
        "the block I/O scheduler offers no weight (no blkio.weight or blkio.bfq.weight: BFQ is not in use)"),
    "linux_cgroups_relative_blkio": ("host", "blkio-weight", r"blkio|blockIO|bfq", "as linux_cgroups_blkio"),
    "linux_cgroups_memory": ("host", "kmem-limit", r"memory kernel is|memory\.kernel\b|kmem\.limit_in_bytes",
        "this kernel no longer enforces kernel memory limits (memory.kmem.limit_in_bytes stays "
        "unlimited whatever is written; Linux 5.16+), and the suite checks linux.resources.memory.kernel"),
    "linux_cgroups_relative_memory": ("host", "kmem-limit", r"memory kernel is|memory\.kernel\b|kmem\.limit_in_bytes", "as linux_cgroups_memory"),
    "process_capabilities": ("host", "all-caps", r"capabilit|capset|CAP_",
        "the suite asks for every capability the kernel knows, and this host's bounding set lacks "
        "some (CAP_SYS_RESOURCE): capset refuses to grant it"),
    "linux_mount_label": ("host", "selinux", r"SELinux|mountLabel|context=", "SELinux is not enabled (linux.mountLabel needs it)"),
    "linux_process_apparmor_profile": ("host", "apparmor", r"AppArmor|apparmor",
        "AppArmor is not enabled (process.apparmorProfile needs it)"),
    "hooks": ("suite", None, None,
        "the expected text lacks \" called\" after post-start/post-stop, and the output is read "
        "after the bundle holding it was removed: no runtime can pass"),
    "prestart": ("suite", None, None,
        "asserts prestart hooks run at `start`; runtime-spec 1.1 (which it cites) has them run as "
        "part of `create`, before pivot_root"),
    "hooks_stdin": ("suite", None, None,
        "expects status \"created\" in the prestart hook's state; prestart runs during `create`, "
        "whose state is \"creating\" until create returns"),
    "misc_props": ("suite", None, None,
        "its unknown-annotation case runs /runtimetest, which it never copies into the bundle"),
    "pidfile": ("suite", None, None,
        "kills the container after its `true` has exited and fails on the error; the spec "
        "requires `kill` of a stopped container to fail"),
    "delete": ("runc", None, None,
        "as runc 1.1, `delete` removes a created container that never started (containerd's shim "
        "deletes such a container without --force); the spec says deleting a container that is "
        "not stopped MUST fail"),
    "process_capabilities_fail": ("runc", None, None,
        "as runc 1.1, a capability name the runtime does not know is left out with a warning (a "
        "drop-in takes every config runc takes); the spec says it MUST be an error"),
    "start": ("suite", None, None,
        "its last check is inverted: it passes only if `start` succeeds for a config without "
        "`process`, which its own message says MUST fail"),
    "process_rlimits": ("suite", "rlimits", None,
        "runtimetest is a Go 1.19+ program, and Go raises its own soft RLIMIT_NOFILE to the hard "
        "limit at start-up, so it reads 4000 where the runtime set 3000 (a shell in the same "
        "rootfs reads the limits the runtime set)"),
}

# The programs run again when they fail, and their race.
RACES = {
    "killsig": "signals the container as soon as `state` reads running, before its shell has set "
        "the trap (a container's pid 1 ignores a signal it has no handler for)",
    "poststart": "expects the line the container's program writes before the poststart hook's, "
        "but the spec orders the hook only after the program's exec: both shells then race "
        "(runc fails it on every try for its own reason: it runs poststart hooks at `create`)",
}

def parse(name, rt):
    base = os.path.join(res, f"{name}.{rt}")
    try:
        tap = open(base + ".tap", errors="replace").read()
    except FileNotFoundError:
        return None
    rc, ms = (int(v) for v in open(base + ".rc").read().split())
    tries = int(open(base + ".tries").read()) if os.path.exists(base + ".tries") else 1
    err = open(base + ".err", errors="replace").read()
    ok = bad = skip = 0
    fails = []
    last = None
    yaml = None
    for line in tap.splitlines():
        if line.startswith("TAP version"):
            last = None
            continue
        if yaml is not None:
            if line == "  ...":
                if last is None:
                    try:
                        d = json.loads("\n".join(yaml))
                    except ValueError:
                        d = {}
                    if isinstance(d, dict) and d.get("error"):
                        fails.append("error: " + d["error"].splitlines()[0])
                yaml = None
            else:
                yaml.append(line)
            continue
        if line == "  ---":
            yaml = []
            continue
        m = re.match(r"^(not )?ok \d+(?: - (.*)| # (?:SKIP|skip)\b.*)?$", line)
        if m:
            last = line
            if m.group(1):
                bad += 1
                fails.append(m.group(2) or "")
            elif "# SKIP" in line.upper() and m.group(2) is None:
                skip += 1
            else:
                ok += 1
    if rc != 0:
        first = next((l for l in err.splitlines() if l.strip()), "")
        fails.append(f"exit status {rc}" + (f": {first}" if first else ""))
    # Random names (temporary paths, ids) left out when comparing.
    def norm(f):
        return re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}|\d+", "N", f)
    sig = {norm(f) for f in fails if not f.startswith("exit status")}
    sig_all = {norm(f) for f in fails}
    return {"ok": ok, "bad": bad, "skip": skip, "pass": rc == 0 and not fails, "fails": fails,
            "sig": sig, "sig_all": sig_all, "rc": rc, "s": ms / 1000, "tries": tries, "stderr": [l for l in err.splitlines() if l.strip()][:3],
            "stderr_all": err.splitlines()}

rows = []
for t in tests:
    rows.append((t, parse(t, "capsa"), parse(t, "runc")))

def cell(r):
    if r is None:
        return "-"
    total = r["ok"] + r["bad"]
    return f"{'pass' if r['pass'] else 'FAIL'} {r['ok']:>3}/{total:<3} {r['s']:>5.1f}s"

width = max(len(t) for t in tests + ["total"])
print()
print("Per file: pass/FAIL, assertions passed/run (skipped ones left out), seconds.")
print(f"{'file':<{width}}  {'capsa-runtime':<22} {'runc':<22} note")
unexpected, confirmed, stale = [], [], []
for t, c, r in rows:
    note = ""
    if c is not None and not c["pass"]:
        kind, check, pattern, reason = EXPECTED.get(t, (None, None, None, None))
        ok_reason = False
        if kind == "host":
            # The host lacks the feature, and every failed assertion is
            # about it (or the program stopped, with an error naming it).
            stderr = "\n".join(c["stderr_all"])
            ok_reason = check in host_lacks and all(
                re.search(pattern, f) or (re.search(r"exit status \d+|^error: ", f) and re.search(pattern, stderr))
                for f in c["fails"])
        elif kind == "suite":
            # runc fails it too, with every assertion capsa fails.
            ok_reason = r is not None and not r["pass"] and c["sig"] <= r["sig"]
            if check == "rlimits":
                ok_reason = ok_reason and rlimits[:2] == ["3000", "4000"]
        elif kind == "runc":
            # runc fails it the same way: the same assertions and the same
            # exit status and first diagnostic.
            ok_reason = r is not None and not r["pass"] and c["sig_all"] <= r["sig_all"]
        if ok_reason:
            note = f"expected ({kind})"
            confirmed.append((t, kind, reason))
        else:
            note = "UNEXPECTED" if kind is None else f"UNEXPECTED ({kind} reason not confirmed here)"
            unexpected.append((t, c))
    elif c is not None and t in EXPECTED:
        stale.append(t)
        note = "passes (listed as expected to fail)"
    retried = [f"{name} passed on try {x['tries']}" if x["pass"] else f"{name} failed {x['tries']} tries"
               for name, x in (("capsa-runtime", c), ("runc", r)) if x is not None and x["tries"] > 1]
    if retried:
        note = ", ".join(filter(None, [note] + retried)) + " (a race of the suite)"
    print(f"{t:<{width}}  {cell(c):<22} {cell(r):<22} {note}")

def totals(i):
    done = [row[i] for row in rows if row[i] is not None]
    files = sum(1 for r in done if r["pass"])
    oks = sum(r["ok"] for r in done)
    alls = sum(r["ok"] + r["bad"] for r in done)
    skips = sum(r["skip"] for r in done)
    secs = sum(r["s"] for r in done)
    return f"{files}/{len(done)} files", f"{oks}/{alls}", f"{skips} skipped", f"{secs:.0f} s"
cf, ca, cs, ct = totals(1)
rf, ra, rs, rt = totals(2)
print(f"{'total':<{width}}  {cf:<22} {rf:<22}")
print(f"{'assertions':<{width}}  {ca:<22} {ra:<22}")
print(f"{'':<{width}}  {cs:<22} {rs:<22}")
print(f"{'time':<{width}}  {ct:<22} {rt:<22}")
print()
print("A file passes when its program exits 0 with no failed assertion and no error diagnostic.")
if confirmed:
    print()
    print("Expected failures of capsa-runtime (reason checked on this host):")
    for t, kind, reason in confirmed:
        print(f"  {t} [{kind}]: {reason}")
retried = [t for t, *rs in rows if any(x is not None and x["tries"] > 1 for x in rs)]
if retried:
    print()
    print(f"Run again when they failed (up to {max_tries} tries; their times add up every try), "
          "for a race of the suite:")
    for t in retried:
        print(f"  {t}: {RACES[t]}")
if stale:
    print()
    print("Listed as expected failures but passing here: " + ", ".join(stale))
if unexpected:
    print()
    print("UNEXPECTED failures of capsa-runtime:")
    for t, c in unexpected:
        print(f"  {t}:")
        for f in c["fails"][:5] + [f"stderr: {l}" for l in c["stderr"]]:
            print(f"    {f[:300]}")
print()
cleanup_s = sum(int(v) for v in open(os.path.join(work, "cleanup.ms")).read().split()) / 1000 if os.path.exists(os.path.join(work, "cleanup.ms")) else 0
print(f"time: {built - started} s building the suite, {ran - built} s running it ({cleanup_s:.0f} s of "
      f"it cleaning up after the programs), {int(time.time()) - started} s in all")
if keep:
    os.makedirs(keep, exist_ok=True)
    for f in os.listdir(res):
        shutil.copy(os.path.join(res, f), keep)
sys.exit(1 if unexpected else 0)
PY
