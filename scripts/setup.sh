#!/bin/sh
# Installs what capsa needs, builds everything (release), and runs a busybox
# container with capsa-runtime as the main job. Run as root on Debian 12.
set -eu
cd "$(dirname "$0")/.."
./scripts/deps.sh
bin="$(./scripts/build-release.sh)/capsa-runtime"

bundle=$(mktemp -d /tmp/capsa-demo-XXXXXX)
trap 'rm -rf "$bundle"' EXIT
mkdir -p "$bundle/rootfs/bin"
cp /usr/bin/busybox "$bundle/rootfs/bin/busybox"
for applet in $(/usr/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -s busybox "$bundle/rootfs/bin/$applet"
done
"$bin" spec --bundle "$bundle"
python3 - "$bundle/config.json" <<'PY'
import json, sys
path = sys.argv[1]
c = json.load(open(path))
c["process"]["terminal"] = False
c["process"]["args"] = ["sh", "-c", "echo hello from a capsa container: hostname $(hostname), pid $$, uid $(id -u); ls /"]
json.dump(c, open(path, "w"), indent=2)
PY
"$bin" --root /run/capsa-runtime run --bundle "$bundle" "demo-$$"
