#!/bin/sh
# Benchmark of issue 5: pulling an image of 6 layers (>= 500 MB compressed)
# from a loopback registry (Debian's docker-registry) into an empty store,
# `capsa pull` against `skopeo copy docker://... oci:DIR` followed by
# `umoci raw unpack` (Debian's skopeo and umoci, the nearest tools that also
# end with an unpacked root filesystem), side by side. capsa streams every
# layer through digest verification, decompression and unpacking at once,
# three layers at a time; skopeo downloads (and verifies) the blobs, then
# umoci reads them again to decompress, verify and unpack them.
set -eu
cd "$(dirname "$0")/.."
. bench/lib.sh
for tool in docker-registry skopeo umoci hyperfine; do
    command -v "$tool" >/dev/null || { echo "$tool is missing: run scripts/deps.sh" >&2; exit 1; }
done
CAPSA_BIN=$(./scripts/build-release.sh)
work=$(mktemp -d /var/tmp/capsa-bench-registry-XXXXXX)
registry_pid=
cleanup() {
    if [ -n "$registry_pid" ]; then
        kill "$registry_pid" 2>/dev/null || true
        wait "$registry_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$work/registry.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
  secret: capsa-bench
YML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 100); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $port))" 2>/dev/null && break
    sleep 0.1
done

echo "== generating the image (deterministic): 6 layers of random and text files =="
python3 - "$work" <<'PY'
import hashlib, json, os, random, shutil, subprocess, sys
work = sys.argv[1]
layout = os.path.join(work, "layout")
blobs = os.path.join(layout, "blobs/sha256")
os.makedirs(blobs)
rng = random.Random(20240705)
letters = "abcdefghijklmnopqrstuvwxyz"
words = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 9))).encode() for _ in range(5000)]
def text(n):
    out = bytearray()
    while len(out) < n:
        out += b" ".join(rng.choices(words, k=64)) + b"\n"
    return bytes(out[:n])
def put(data=None, path=None):
    h = hashlib.sha256()
    if path:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        size = os.path.getsize(path)
        shutil.move(path, os.path.join(blobs, h.hexdigest()))
    else:
        h.update(data)
        size = len(data)
        with open(os.path.join(blobs, h.hexdigest()), "wb") as fh:
            fh.write(data)
    return "sha256:" + h.hexdigest(), size
layers, diff_ids, content, compressed = [], [], 0, 0
for i in range(6):
    src = os.path.join(work, "src%d" % i)
    d = os.path.join(src, "layer%d" % i)
    os.makedirs(os.path.join(d, "text"))
    # 3 random files of 24 MB (incompressible) ...
    for j in range(3):
        data = rng.randbytes(24 << 20)
        open(os.path.join(d, "random%d.bin" % j), "wb").write(data)
        content += len(data)
    # ... and 400 text files, 36 MB.
    for j in range(400):
        data = text(rng.randint(45 << 10, 135 << 10))
        open(os.path.join(d, "text/f%03d.txt" % j), "wb").write(data)
        content += len(data)
    tar = os.path.join(work, "layer%d.tar" % i)
    subprocess.run(["tar", "-C", src, "--sort=name", "--mtime=@1700000000", "--owner=0", "--group=0",
                    "--numeric-owner", "-cf", tar, "."], check=True)
    shutil.rmtree(src)
    h = hashlib.sha256()
    with open(tar, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    diff_ids.append("sha256:" + h.hexdigest())
    subprocess.run(["gzip", "-6", "-n", tar], check=True)
    digest, size = put(path=tar + ".gz")
    compressed += size
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest, "size": size})
config = json.dumps({
    "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
    "config": {"Cmd": ["sh"]},
    "rootfs": {"type": "layers", "diff_ids": diff_ids},
    "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "bench layer %d" % i} for i in range(6)],
}).encode()
cdigest, csize = put(config)
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdigest, "size": csize},
    "layers": layers}).encode()
mdigest, msize = put(manifest)
json.dump({"imageLayoutVersion": "1.0.0"}, open(os.path.join(layout, "oci-layout"), "w"))
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": mdigest, "size": msize, "annotations": {"org.opencontainers.image.ref.name": "bench"}}]},
    open(os.path.join(layout, "index.json"), "w"))
open(os.path.join(work, "sizes"), "w").write("%d %d" % (compressed, content))
print("image: %d layers, %.1f MB compressed, %.1f MB of file contents" % (len(layers), compressed / 1e6, content / 1e6))
PY
image="127.0.0.1:$port/bench/image:latest"
skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$work/layout:bench" "docker://$image"
rm -rf "$work/layout"

runs=${RUNS:-3}
echo
echo "== pulling into an empty store / directory: $runs runs each =="
hyperfine -N --warmup 1 --runs "$runs" --export-json "$work/result.json" \
    --prepare "rm -rf $work/store $work/oci $work/rootfs" \
    -n "capsa pull" "$CAPSA_BIN/capsa --root $work/store pull -q $image" \
    -n "skopeo copy + umoci raw unpack" "sh -c 'skopeo --insecure-policy copy -q --src-tls-verify=false docker://$image oci:$work/oci:bench && exec umoci raw unpack --image $work/oci:bench $work/rootfs'" >/dev/null
print_ratios "$work/result.json"
python3 - "$work/result.json" $(cat "$work/sizes") <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))["results"]
compressed, content = int(sys.argv[2]) / 1e6, int(sys.argv[3]) / 1e6
for r in res:
    print(f"{r['command']:<32} {compressed / r['mean']:7.1f} MB/s compressed, {content / r['mean']:7.1f} MB/s unpacked")
PY
