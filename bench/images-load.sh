#!/bin/sh
# Benchmark of issue 4: unpacking a large gzip layer (>= 500 MB of mixed
# small and large files) with `capsa load` of a docker-archive holding it,
# against GNU `tar -xzf` of the same layer into an empty directory, side by
# side. capsa also verifies the blob digest and the diff_id while streaming
# and keeps a copy of the blob, in the same single pass.
set -eu
cd "$(dirname "$0")/.."
. bench/lib.sh
CAPSA_BIN=$(./scripts/build-release.sh)
work=$(mktemp -d /var/tmp/capsa-bench-images-XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "== generating the layer (deterministic) =="
python3 - "$work" <<'PY'
import hashlib, io, json, os, random, sys, tarfile, time, gzip, shutil, subprocess
work = sys.argv[1]
src = os.path.join(work, "src")
rng = random.Random(20240611)
letters = "abcdefghijklmnopqrstuvwxyz"
words = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 9))).encode() for _ in range(5000)]
def text(n):
    out = bytearray()
    while len(out) < n:
        out += b" ".join(rng.choices(words, k=64)) + b"\n"
    return bytes(out[:n])
total = 0
# 24000 small files (0.5-24 KB, text) in 240 directories.
for d in range(240):
    dd = os.path.join(src, "usr/share/pkg%03d" % d)
    os.makedirs(dd)
    for f in range(100):
        data = text(rng.randint(512, 24 * 1024))
        with open(os.path.join(dd, "file%03d.txt" % f), "wb") as fh:
            fh.write(data)
        total += len(data)
# 40 large files of 6-12 MB, half random (incompressible), half text.
os.makedirs(os.path.join(src, "opt/big"))
for i in range(40):
    n = rng.randint(6 << 20, 12 << 20)
    data = rng.randbytes(n) if i % 2 else text(n)
    with open(os.path.join(src, "opt/big/blob%02d.bin" % i), "wb") as fh:
        fh.write(data)
    total += n
print("content: %.1f MB in %d files" % (total / 1e6, 24000 + 40))
# The layer: a tar of the tree, gzip -6 (Docker's default level).
layer_tar = os.path.join(work, "layer.tar")
subprocess.run(["tar", "-C", src, "--sort=name", "--mtime=@1700000000", "--owner=0", "--group=0",
                "--numeric-owner", "-cf", layer_tar, "."], check=True)
shutil.rmtree(src)
tar_size = os.path.getsize(layer_tar)
diff_id = hashlib.sha256()
with open(layer_tar, "rb") as fh:
    for chunk in iter(lambda: fh.read(1 << 20), b""):
        diff_id.update(chunk)
subprocess.run(["gzip", "-6", "-n", layer_tar], check=True)
layer_gz = layer_tar + ".gz"
blob = hashlib.sha256()
with open(layer_gz, "rb") as fh:
    for chunk in iter(lambda: fh.read(1 << 20), b""):
        blob.update(chunk)
config = json.dumps({
    "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
    "config": {"Cmd": ["sh"]},
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + diff_id.hexdigest()]},
    "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "bench layer"}],
}).encode()
cfg_hex = hashlib.sha256(config).hexdigest()
manifest = json.dumps([{"Config": "blobs/sha256/" + cfg_hex, "RepoTags": ["bench:latest"],
                        "Layers": ["blobs/sha256/" + blob.hexdigest()]}]).encode()
with tarfile.open(os.path.join(work, "archive.tar"), "w", format=tarfile.GNU_FORMAT) as t:
    def add(name, data):
        ti = tarfile.TarInfo(name); ti.size = len(data); ti.mtime = 1700000000
        t.addfile(ti, io.BytesIO(data))
    add("blobs/sha256/" + cfg_hex, config)
    t.add(layer_gz, arcname="blobs/sha256/" + blob.hexdigest())
    add("manifest.json", manifest)
print("layer: %.1f MB tar, %.1f MB gzip" % (tar_size / 1e6, os.path.getsize(layer_gz) / 1e6))
with open(os.path.join(work, "content-bytes"), "w") as fh:
    fh.write(str(total))
PY
content=$(cat "$work/content-bytes")
runs=${RUNS:-5}
echo
echo "== unpacking the layer: $runs runs each (fresh store / empty directory every run) =="
hyperfine -N --warmup 1 --runs "$runs" --export-json "$work/result.json" \
    --prepare "rm -rf $work/store $work/tarx" \
    -n "capsa load" "$CAPSA_BIN/capsa --root $work/store load -i $work/archive.tar" \
    -n "tar -xzf" "sh -c 'mkdir -p $work/tarx && exec tar -xzf $work/layer.tar.gz -C $work/tarx'" >/dev/null
print_ratios "$work/result.json"
python3 - "$work/result.json" "$content" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))["results"]
mb = int(sys.argv[2]) / 1e6
for r in res:
    print(f"{r['command']:<12} {mb / r['mean']:8.1f} MB/s of file contents ({mb:.0f} MB)")
PY
