# Sourced, not run (by scripts/setup.sh and bench/lib.sh, from the
# repository's root).

# make_busybox_rootfs DIR: a busybox root filesystem (Debian's
# busybox-static) in DIR: /bin/busybox, a symlink per applet, /etc/passwd
# and /etc/group with root, /tmp.
make_busybox_rootfs() {
    rootfs=$1
    mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/tmp" "$rootfs/root"
    chmod 1777 "$rootfs/tmp"
    cp /usr/bin/busybox "$rootfs/bin/busybox"
    for applet in $(/usr/bin/busybox --list); do
        [ "$applet" = busybox ] || ln -sf busybox "$rootfs/bin/$applet"
    done
    echo "root:x:0:0:root:/root:/bin/sh" > "$rootfs/etc/passwd"
    echo "root:x:0:" > "$rootfs/etc/group"
}
