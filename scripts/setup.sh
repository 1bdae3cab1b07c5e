#!/bin/sh
# Installs what capsa needs, builds everything (release, into /usr/local/bin),
# and runs a busybox container with `capsa run` as the main job. Run as root
# on Debian 12.
set -eu
cd "$(dirname "$0")/.."
./scripts/deps.sh
bin="$(./scripts/build-release.sh)"
install -m 0755 "$bin/capsa" "$bin/capsa-runtime" /usr/local/bin/

# A busybox image made from Debian's busybox-static, imported into capsa's
# store (default /var/lib/capsa), then the main job: a container of it.
rootfs=$(mktemp -d /tmp/capsa-demo-XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
. scripts/busybox-rootfs.sh
make_busybox_rootfs "$rootfs"
tar -C "$rootfs" -cf "$rootfs.tar" .
trap 'rm -rf "$rootfs" "$rootfs.tar"' EXIT
capsa import --change 'CMD ["sh"]' "$rootfs.tar" busybox:latest >/dev/null
capsa run --rm busybox sh -c 'echo hello from a capsa container: hostname $(hostname), pid $$, uid $(id -u); ls /'
