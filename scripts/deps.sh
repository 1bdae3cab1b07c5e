#!/bin/sh
# Installs the Debian 12 packages capsa needs to build, test and benchmark.
# Run as root. Safe to run again.
set -eu
missing=""
for pkg in build-essential pkg-config python3 busybox-static runc crun hyperfine uidmap iproute2 time util-linux skopeo umoci openssl docker-registry dbus \
    qemu-system-x86 linux-image-amd64 cpio xz-utils protobuf-compiler docker.io containerd podman; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq $missing >/dev/null
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo is missing: install a Rust toolchain (https://rustup.rs) first" >&2
    exit 1
fi
