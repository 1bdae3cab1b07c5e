#!/bin/sh
# The inside of scripts/cgroup-v2-vm.sh's virtual machine, in two stages.
#
# `init` (the initramfs's /init, under busybox): loads the kernel modules
# the VM needs, builds the real root on a tmpfs (pivot_root cannot leave
# the initramfs) with the host's /usr and the repository shared read-only
# over 9p at their own paths, then switch_root's into it and runs `run`.
#
# `run` (PID 1 of the real root): mounts only cgroup2, enables every
# controller down to a systemd-like leaf (/system.slice/capsa-tests.scope,
# holding the test processes, as a login session's scope holds a shell),
# sets up swap, huge pages and a spare disk, runs the test programs listed
# in /capsa-vm/tests.list, prints a summary and a last line
# "CAPSA-VM-RESULT: ok" or "CAPSA-VM-RESULT: FAILED ...", and powers off.
set -u

VM=/capsa-vm

stage_init() {
    /bin/busybox mkdir -p /proc /sys /dev /newroot
    /bin/busybox --install -s /bin
    mount -t proc proc /proc
    echo "capsa-vm: initramfs at $(cut -d' ' -f1 /proc/uptime) s"
    mount -t sysfs sysfs /sys
    mount -t devtmpfs devtmpfs /dev
    while read -r m; do
        insmod "$VM/modules/$m" || echo "capsa-vm: insmod $m failed"
    done < "$VM/modules.order"
    echo "capsa-vm: modules loaded at $(cut -d' ' -f1 /proc/uptime) s"
    mount -t tmpfs -o mode=0755 root /newroot
    # "TAG PATH": a read-only 9p share mounted at PATH.
    while read -r tag path; do
        mkdir -p "/newroot$path"
        mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 \
            "$tag" "/newroot$path" || { echo "capsa-vm: mounting $tag at $path failed"; poweroff -f; }
    done < "$VM/shares"
    # "LINK TARGET": the host's top-level symlinks (/bin -> usr/bin, ...).
    while read -r link target; do
        ln -s "$target" "/newroot/$link"
    done < "$VM/links"
    cp -a "$VM" /newroot/capsa-vm
    cp -a "$VM/etc" /newroot/etc
    mkdir -p /newroot/proc /newroot/sys /newroot/dev /newroot/tmp /newroot/run /newroot/root
    mount --move /dev /newroot/dev
    umount /sys /proc
    exec switch_root /newroot /capsa-vm/guest.sh run
}

# Enables every controller DIR offers for its children.
enable_all() {
    for c in $(cat "$1/cgroup.controllers"); do
        echo "+$c" > "$1/cgroup.subtree_control" || echo "capsa-vm: cannot enable $c in $1"
    done
}

stage_run() {
    bb=$VM/busybox
    # busybox's applets for the set-up: each program of the shared /usr
    # costs its dynamic linking, slow under TCG.
    mkdir -p $VM/bin
    $bb --install -s $VM/bin
    export PATH=$VM/bin
    export HOME=/root TMPDIR=/tmp RUST_BACKTRACE=1 LANG=C.UTF-8
    mount -t proc proc /proc
    mount -t sysfs sysfs /sys
    mount -t tmpfs -o mode=1777 tmp /tmp
    mount -t tmpfs -o mode=0755 run /run
    mkdir -p /dev/pts /dev/shm
    mount -t devpts -o ptmxmode=0666,mode=0620,gid=5 devpts /dev/pts
    mount -t tmpfs -o mode=1777 shm /dev/shm
    echo "capsa-vm: root file system ready at $(cut -d' ' -f1 /proc/uptime) s"
    # As systemd mounts it (the options need Linux 5.7).
    mount -t cgroup2 -o nsdelegate,memory_recursiveprot cgroup2 /sys/fs/cgroup \
        || mount -t cgroup2 cgroup2 /sys/fs/cgroup
    mount -t bpf bpf /sys/fs/bpf 2>/dev/null
    $bb hostname capsa-cgroup-v2
    $bb ip link set lo up
    # Writable places beneath the read-only repository share.
    while read -r path; do
        mount -t tmpfs -o mode=0755 scratch "$path"
    done < "$VM/scratch"
    # The second disk is swap, so that swap limits are real; the first one
    # stays a plain block device for io.max and io.weight.
    $bb mkswap /dev/vdb > /dev/null && $bb swapon /dev/vdb
    echo 32 > /proc/sys/vm/nr_hugepages
    enable_all /sys/fs/cgroup
    mkdir /sys/fs/cgroup/system.slice
    enable_all /sys/fs/cgroup/system.slice
    mkdir /sys/fs/cgroup/system.slice/capsa-tests.scope
    echo $$ > /sys/fs/cgroup/system.slice/capsa-tests.scope/cgroup.procs
    echo "capsa-vm: kernel $(uname -r), $(nproc) CPUs, $($bb free -m | $bb awk '/Mem:/ {print $2}') MiB"
    echo "capsa-vm: cgroup2 controllers: $(cat /sys/fs/cgroup/cgroup.subtree_control)"
    echo "capsa-vm: cgroup file systems: $($bb awk '$9 ~ /^cgroup/ {print $5, $9}' /proc/self/mountinfo)"
    echo "capsa-vm: booted in $(cut -d' ' -f1 /proc/uptime) s"
    export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
    failed=""
    n=0
    # "DIR EXE [FILTER...]": run test program EXE in DIR (its crate).
    while read -r dir exe filters; do
        n=$((n + 1))
        name=$(basename "$exe" | sed 's/-[0-9a-f]*$//')
        echo "capsa-vm: ==== $name $filters"
        start=$(cut -d' ' -f1 /proc/uptime)
        # shellcheck disable=SC2086 # the filters are words
        (cd "$dir" && "$exe" --show-output $filters; echo $? > "/tmp/rc.$n") 2>&1 \
            | $bb tee "/tmp/log.$n"
        rc=$(cat "/tmp/rc.$n" 2>/dev/null || echo 1)
        end=$(cut -d' ' -f1 /proc/uptime)
        echo "capsa-vm: ==== $name: exit $rc after $($bb awk "BEGIN {print $end - $start}") s"
        [ "$rc" = 0 ] || failed="$failed $name"
    done < "$VM/tests.list"
    echo "capsa-vm: ---- summary"
    i=0
    while [ $i -lt $n ]; do
        i=$((i + 1))
        # Each test that failed or printed SKIPPED, and libtest's summary.
        $bb awk '/^---- .* stdout ----$/ {t = $2} /SKIPPED/ {print "capsa-vm: skipped " t ": " $0}
                 /^test .* FAILED$/ {print "capsa-vm: failed " $2}
                 /^test result:/ {print "capsa-vm: " $0}' "/tmp/log.$i"
    done
    if [ -z "$failed" ]; then
        echo "CAPSA-VM-RESULT: ok"
    else
        echo "CAPSA-VM-RESULT: FAILED$failed"
    fi
    sync
    $bb poweroff -f
}

case "${1:-init}" in
    run) stage_run ;;
    *) stage_init ;;
esac
