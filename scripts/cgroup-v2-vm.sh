#!/bin/sh
# Runs capsa's cgroup tests on a pure cgroup v2 host: a qemu VM of Debian's
# kernel with only cgroup2 mounted and every controller enabled (this
# project's usual host is hybrid, whose cgroup2 hierarchy has no
# controllers at all).
#
#   scripts/cgroup-v2-vm.sh [--quick] [--accel kvm|tcg] [--timeout SECS]
#                           [--log FILE] [--test 'PACKAGE TEST [FILTER...]']...
#
# It builds the test programs (cargo test --no-run), makes a busybox
# initramfs with the kernel modules the VM needs, and boots the kernel with
# the host's /usr and this repository shared read-only over 9p at their own
# paths (so the test programs find their shared libraries, busybox and the
# binaries they test where cargo put them), two small disks (a block device
# for io.max/io.weight, and swap) and the console on a serial port. The
# guest side is scripts/cgroup-v2-vm-guest.sh. KVM is used when /dev/kvm
# works (a short probe boot; on some machines it exists but hangs), else
# TCG.
#
# --quick runs the short subset CI runs; --test (repeatable) runs only the
# test program TEST of PACKAGE with libtest's FILTERs; --log keeps the VM's
# console output; --timeout ends the VM after SECS (default 5400, --quick
# 1800; also CAPSA_VM_TIMEOUT, and CAPSA_VM_ACCEL for --accel). Exits non-zero when a test fails or the VM does not
# finish; removes its temporary directory and ends qemu whatever happens.
#
# Needs qemu-system-x86, linux-image-amd64, busybox-static, cpio, xz-utils
# (scripts/deps.sh installs them).
set -eu
cd "$(dirname "$0")/.."
repo=$(pwd)

accel=${CAPSA_VM_ACCEL:-auto}
timeout=${CAPSA_VM_TIMEOUT:-}
quick=0
log=""
only=""
while [ $# -gt 0 ]; do
    case $1 in
        --quick) quick=1 ;;
        --accel) accel=$2; shift ;;
        --timeout) timeout=$2; shift ;;
        --log) log=$2; shift ;;
        --test) only="$only$2
"; shift ;;
        -h|--help) awk 'NR > 1 && !/^#/ {exit} NR > 1 {sub(/^# ?/, ""); print}' "$0"; exit 0 ;;
        *) echo "cgroup-v2-vm: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

[ -n "$timeout" ] || { [ $quick = 1 ] && timeout=1800 || timeout=5400; }

say() { echo "cgroup-v2-vm: $*" >&2; }
die() { say "$*"; exit 1; }
now() { date +%s.%N; }
since() { awk "BEGIN {printf \"%.1f\", $(now) - $1}"; }

t0=$(now)
for tool in qemu-system-x86_64 cpio xz python3 timeout; do
    command -v $tool >/dev/null || die "$tool is missing (scripts/deps.sh installs it)"
done
[ -x /usr/bin/busybox ] || die "/usr/bin/busybox is missing (apt-get install busybox-static)"

# The newest Debian kernel with its modules.
kernel=""
for k in $(ls -v /boot/vmlinuz-* 2>/dev/null); do
    v=${k#/boot/vmlinuz-}
    [ -f "/lib/modules/$v/modules.dep" ] && { kernel=$k; kver=$v; }
done
[ -n "$kernel" ] || die "no /boot/vmlinuz-* with modules in /lib/modules (apt-get install linux-image-amd64)"
[ -r "$kernel" ] || die "$kernel is not readable"

# Every temporary thing lives in $tmp; qemu is ended and $tmp removed on
# any exit.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/capsa-cgroup-v2-vm.XXXXXX")
qemu_pid=""
tail_pid=""
probe_pid=""
cleanup() {
    status=$?
    trap - EXIT INT TERM HUP
    # Every step runs, whatever fails (a kill of what already ended).
    set +e
    [ -n "$tail_pid" ] && kill "$tail_pid" 2>/dev/null
    [ -n "$probe_pid" ] && kill "$probe_pid" 2>/dev/null
    if [ -n "$qemu_pid" ] && kill -0 "$qemu_pid" 2>/dev/null; then
        kill "$qemu_pid" 2>/dev/null || true
        sleep 1
        kill -9 "$qemu_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# The kernel, decompressed: under TCG the boot stub's own xz takes ~15 s.
vmlinux=$tmp/vmlinux
for magic in "$(printf '\3757zXZ')" "$(printf '\037\213\010')" "$(printf '\050\265\057\375')"; do
    for off in $(LC_ALL=C grep -abo "$magic" "$kernel" | cut -d: -f1 | head -5); do
        case $magic in
            *7zXZ) dec="xz -dc --single-stream" ;;
            *) dec="gzip -dc" ;;
        esac
        [ "$magic" = "$(printf '\050\265\057\375')" ] && dec="zstd -qdc"
        tail -c +$((off + 1)) "$kernel" | $dec > "$vmlinux" 2>/dev/null || true
        if [ "$(head -c 4 "$vmlinux" 2>/dev/null)" = "$(printf '\177ELF')" ]; then
            break 2
        fi
    done
done
if [ "$(head -c 4 "$vmlinux" 2>/dev/null)" != "$(printf '\177ELF')" ]; then
    say "could not decompress $kernel: booting it as it is (slower under TCG)"
    vmlinux=$kernel
fi

# ---- KVM or TCG ----
# A kernel with no root panics at once; with working KVM that takes a
# second or two. Some machines have a /dev/kvm that hangs the guest. The
# probe runs while the test programs build.
probe_pid=""
case $accel in
    auto)
        if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
            timeout -k 2 15 qemu-system-x86_64 -accel kvm -cpu host -nodefaults -display none -no-reboot \
                -m 256 -kernel "$vmlinux" -append "console=ttyS0 panic=-1 loglevel=0" \
                -serial "file:$tmp/probe.log" > /dev/null 2>&1 &
            probe_pid=$!
        fi ;;
    kvm|tcg) ;;
    *) die "--accel takes kvm or tcg" ;;
esac

# ---- the test programs ----
# "PACKAGE TEST-TARGET [FILTER...]"; the full run, or CI's short subset.
if [ -n "$only" ]; then
    printf '%s' "$only" > "$tmp/wanted"
elif [ $quick = 1 ]; then
    cat > "$tmp/wanted" <<'EOF'
capsa-runtime-cli cgroups
capsa-runtime-cli rootless limits_apply_in_a_v2_cgroup
capsa-runtime-cli mounts cgroup_mount
capsa-engine run_flags memory_limit_oom_kill cpu_and_pids_limits
EOF
else
    cat > "$tmp/wanted" <<'EOF'
capsa-runtime-cli cgroups
capsa-runtime-cli rootless cgroup
capsa-runtime-cli mounts cgroup_mount
capsa-runtime-cli exec exec_joins_the_cgroups
capsa-runtime-cli systemd
capsa-engine run_limits_restart_propagation memory_swap oom_kill_disable blkio_throttles
capsa-engine run_flags memory_limit_oom_kill cpu_and_pids_limits pids_limit device_cgroup_rules
capsa-engine containers kill_restart_pause
capsa-engine inside top_stats_and_update
capsa-engine system info_counts stats_redraws
EOF
fi
say "building the test programs"
args=""
while read -r pkg target _; do
    args="$args -p $pkg --test $target"
done < "$tmp/wanted"
# shellcheck disable=SC2086 # the arguments are words
cargo test --no-run --message-format=json $args > "$tmp/build.json" \
    || die "cargo test --no-run failed"
python3 - "$tmp/build.json" "$tmp/wanted" > "$tmp/tests.list" <<'EOF'
import json, os, sys
built = {}
for line in open(sys.argv[1]):
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") \
            and m["target"]["kind"] == ["test"]:
        built[(m["package_id"], m["target"]["name"])] = (
            os.path.dirname(m["manifest_path"]), m["executable"])
for want in open(sys.argv[2]):
    pkg, target, *filters = want.split()
    found = [v for (p, t), v in built.items()
             if t == target and ("/" + pkg + "#" in p or p.startswith(pkg + " ")
                                 or "#" + pkg + "@" in p)]
    if len(found) != 1:
        sys.exit(f"no single test program {pkg}/{target} in cargo's output")
    print(found[0][0], found[0][1], *filters)
EOF
target_dir=$(cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
mkdir -p "$target_dir/tmp"

# ---- the initramfs ----
say "test programs ready after $(since "$t0") s"
say "making the initramfs (kernel $kver)"
vm=$tmp/root/capsa-vm
mkdir -p "$tmp/root/bin" "$vm/modules" "$vm/etc/default"
cp /usr/bin/busybox "$tmp/root/bin/busybox"
ln -s busybox "$tmp/root/bin/sh"
cp /usr/bin/busybox "$vm/busybox"
cp scripts/cgroup-v2-vm-guest.sh "$tmp/root/init"
cp scripts/cgroup-v2-vm-guest.sh "$vm/guest.sh"
chmod 755 "$tmp/root/init" "$vm/guest.sh"
cp "$tmp/tests.list" "$vm/tests.list"
# Modules (with what they depend on, in load order) from modules.dep.
python3 - "/lib/modules/$kver" virtio_pci 9pnet_virtio 9p overlay virtio_blk loop \
    > "$tmp/modules" <<'EOF'
import os, sys
moddir, wanted = sys.argv[1], sys.argv[2:]
deps = {}
for line in open(os.path.join(moddir, "modules.dep")):
    path, _, rest = line.partition(":")
    deps[path] = rest.split()
def name(p):
    return os.path.basename(p).split(".ko")[0].replace("-", "_")
by_name = {name(p): p for p in deps}
builtin = {name(l.strip()) for l in open(os.path.join(moddir, "modules.builtin"))}
order = []
def add(p):
    for d in reversed(deps[p]):
        add(d)
    if p not in order:
        order.append(p)
for w in wanted:
    if w in by_name:
        add(by_name[w])
    elif w not in builtin:
        sys.exit(f"kernel module {w} is neither built in nor in {moddir}")
for p in order:
    print(p)
EOF
: > "$vm/modules.order"
while read -r m; do
    base=$(basename "$m")
    case $base in
        *.ko.xz) xz -dc "/lib/modules/$kver/$m" > "$vm/modules/${base%.xz}"; base=${base%.xz} ;;
        *.ko.zst) zstd -qdc "/lib/modules/$kver/$m" > "$vm/modules/${base%.zst}"; base=${base%.zst} ;;
        *.ko.gz) gzip -dc "/lib/modules/$kver/$m" > "$vm/modules/${base%.gz}"; base=${base%.gz} ;;
        *) cp "/lib/modules/$kver/$m" "$vm/modules/$base" ;;
    esac
    echo "$base" >> "$vm/modules.order"
done < "$tmp/modules"
# A small /etc of its own: root, nobody, and what useradd needs.
cat > "$vm/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
EOF
cat > "$vm/etc/group" <<'EOF'
root:x:0:
tty:x:5:
users:x:100:
nogroup:x:65534:
EOF
printf 'root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n' > "$vm/etc/shadow"
printf 'root:*::\ntty:*::\nusers:*::\nnogroup:*::\n' > "$vm/etc/gshadow"
chmod 640 "$vm/etc/shadow" "$vm/etc/gshadow"
: > "$vm/etc/subuid"
: > "$vm/etc/subgid"
printf 'passwd: files\ngroup: files\nshadow: files\n' > "$vm/etc/nsswitch.conf"
printf '127.0.0.1 localhost capsa-cgroup-v2\n::1 localhost\n' > "$vm/etc/hosts"
for f in login.defs default/useradd; do
    [ -f "/etc/$f" ] && cp "/etc/$f" "$vm/etc/$f"
done
# Debian's alternatives (awk -> mawk, ...) are links through /etc.
[ -d /etc/alternatives ] && cp -a /etc/alternatives "$vm/etc/"
# The shares (9p tags and paths), the host's top-level links, and the
# writable scratch directories in the read-only repository.
qemu_shares=""
: > "$vm/shares"
: > "$vm/links"
share() { # TAG PATH
    case $2 in *,*) die "$2: qemu cannot share a path with a comma" ;; esac
    echo "$1 $2" >> "$vm/shares"
    qemu_shares="$qemu_shares -fsdev local,id=$1,path=$2,security_model=none,readonly=on"
    qemu_shares="$qemu_shares -device virtio-9p-pci,fsdev=$1,mount_tag=$1"
}
share usr /usr
for d in bin sbin lib lib32 lib64 libx32; do
    if [ -L "/$d" ]; then
        echo "$d $(readlink "/$d")" >> "$vm/links"
    elif [ -d "/$d" ]; then
        share "root$d" "/$d"
    fi
done
share repo "$repo"
case $target_dir in
    "$repo"/*) ;;
    *) share target "$target_dir" ;;
esac
echo "$target_dir/tmp" > "$vm/scratch"
(cd "$tmp/root" && find . | cpio -o -H newc -R 0:0 --quiet) > "$tmp/initramfs.cpio"

truncate -s 64M "$tmp/disk.img"
truncate -s 256M "$tmp/swap.img"

if [ $accel = auto ]; then
    accel=tcg
    if [ -n "$probe_pid" ]; then
        wait $probe_pid 2>/dev/null || true
        probe_pid=""
        grep -q "Kernel panic" "$tmp/probe.log" 2>/dev/null && accel=kvm
    fi
    say "KVM probe: $accel"
fi
cpu=""
if [ $accel = kvm ]; then cpu="-cpu host"; else cpu="-cpu max"; fi
say "booting the VM ($accel, $(wc -l < "$vm/tests.list") test programs) after $(since "$t0") s"

# ---- the run ----
: > "$tmp/console.log"
boot=$(now)
# shellcheck disable=SC2086 # the share and cpu options are words
qemu-system-x86_64 -accel $accel $cpu -smp 2 -m 2048 -nodefaults -display none -no-reboot \
    -kernel "$vmlinux" -initrd "$tmp/initramfs.cpio" \
    -append "console=ttyS0 panic=-1 loglevel=3 cgroup_no_v1=all rw" \
    -serial "file:$tmp/console.log" \
    -drive "file=$tmp/disk.img,format=raw,if=virtio" \
    -drive "file=$tmp/swap.img,format=raw,if=virtio" \
    $qemu_shares < /dev/null > "$tmp/qemu.out" 2>&1 &
qemu_pid=$!
# Follow the console until qemu exits or the time is up.
tail -n +1 -f --pid=$qemu_pid "$tmp/console.log" &
tail_pid=$!
waited=0
while kill -0 $qemu_pid 2>/dev/null; do
    if [ $waited -ge "$timeout" ]; then
        say "the VM did not finish within $timeout s: stopped"
        break
    fi
    sleep 1
    waited=$((waited + 1))
done
kill $qemu_pid 2>/dev/null || true
wait $qemu_pid 2>/dev/null || true
wait $tail_pid 2>/dev/null || true
if [ -s "$tmp/qemu.out" ]; then
    say "qemu said:"
    cat "$tmp/qemu.out" >&2
fi
[ -z "$log" ] || cp "$tmp/console.log" "$log"
booted=$(sed -n 's/^capsa-vm: booted in \([0-9.]*\) s.*/\1/p' "$tmp/console.log" | tr -d '\r')
say "accelerator $accel; booted in ${booted:-?} s (guest clock); VM ran $(since "$boot") s; total $(since "$t0") s"
result=$(grep -a '^CAPSA-VM-RESULT:' "$tmp/console.log" | tr -d '\r' | tail -1)
case $result in
    "CAPSA-VM-RESULT: ok") say "all tests passed"; exit 0 ;;
    "") die "the VM ended without a result" ;;
    *) die "${result#CAPSA-VM-RESULT: }" ;;
esac
