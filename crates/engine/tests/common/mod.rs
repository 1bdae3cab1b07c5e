//! Test harness of the `capsa` image commands: a private store root per
//! test (unmounted and removed even when the test fails), and images the
//! tests build themselves from Debian's busybox-static: layers written with
//! the `tar` crate, packed as `docker save` archives (old and Docker 25+
//! layouts) or OCI image layouts.

#![allow(dead_code)]

pub mod engine;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// The capsa binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_capsa")
}

// Not every test binary uses both.
#[allow(unused_imports)]
pub use capsa_testkit::{BUSYBOX, skip_unless_root};

/// Skips (returning from the test) unless running as root with busybox.
#[macro_export]
macro_rules! require_root {
    () => {
        capsa_testkit::require_root!()
    };
}

/// `sha256:<hex>` of some bytes.
pub fn sha256(data: &[u8]) -> String {
    let h = Sha256::digest(data);
    format!(
        "sha256:{}",
        h.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// The hex part of a digest.
pub fn hex(d: &str) -> &str {
    d.strip_prefix("sha256:").unwrap_or(d)
}

/// A private store root, with the capsa command pointed at it. Dropping it
/// unmounts whatever is mounted beneath it and removes it.
pub struct Root {
    dir: tempfile::TempDir,
}

impl Default for Root {
    fn default() -> Self {
        Self::new()
    }
}

impl Root {
    /// A new empty root in a temporary directory.
    pub fn new() -> Root {
        Root {
            dir: tempfile::Builder::new()
                .prefix("capsa-images-test-")
                .tempdir()
                .unwrap(),
        }
    }

    /// The store root.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A scratch path beside the store (inside the temporary directory).
    pub fn scratch(&self, name: &str) -> PathBuf {
        let p = self.dir.path().join("scratch");
        std::fs::create_dir_all(&p).unwrap();
        p.join(name)
    }

    /// A `capsa --root <root> ARGS` command.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.arg("--root").arg(self.path().join("store")).args(args);
        c.stdin(Stdio::null());
        c
    }

    /// Runs capsa and returns its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Runs capsa with `input` on stdin.
    pub fn run_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        let mut c = self.cmd(args);
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let data = input.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&data);
        });
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        out
    }

    /// Runs capsa, asserts success and returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "capsa {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs capsa, asserts failure with exit code 1 and returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "capsa {args:?} should have failed:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    /// Writes an archive to a scratch file and loads it, returning stdout.
    pub fn load(&self, archive: &[u8]) -> String {
        let p = self.scratch(&format!("load-{}.tar", unique()));
        std::fs::write(&p, archive).unwrap();
        self.ok(&["load", "-i", p.to_str().unwrap()])
    }

    /// `image inspect` of one image as JSON.
    pub fn inspect(&self, image: &str) -> Value {
        let out = self.ok(&["image", "inspect", image]);
        let v: Value = serde_json::from_str(&out).unwrap();
        v[0].clone()
    }

    /// Mount points at or beneath the root, deepest first.
    pub fn mounts(&self) -> Vec<PathBuf> {
        let root = self.dir.path().to_path_buf();
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut v: Vec<PathBuf> = info
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .map(PathBuf::from)
            .filter(|p| p.starts_with(&root))
            .collect();
        v.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        v
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        for m in self.mounts() {
            let _ = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH);
        }
        // The store's runtime directory in /run goes with it.
        if let Some(run) = run_dir_of(&self.path().join("store")) {
            let _ = std::fs::remove_dir_all(run);
        }
    }
}

/// The runtime directory capsa uses for a store root (see `ctx.rs`).
pub fn run_dir_of(store: &Path) -> Option<PathBuf> {
    let canon = std::fs::canonicalize(store).ok()?;
    let digest = sha256(canon.as_os_str().as_encoded_bytes());
    Some(PathBuf::from(format!("/run/capsa-{}", &hex(&digest)[..12])))
}

/// A number unique within this test process.
pub fn unique() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A layer tar under construction.
pub struct Layer {
    builder: tar::Builder<Vec<u8>>,
}

impl Default for Layer {
    fn default() -> Self {
        Self::new()
    }
}

fn header(kind: tar::EntryType, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_600_000_000);
    h.set_size(0);
    h
}

impl Layer {
    /// An empty layer.
    pub fn new() -> Layer {
        Layer {
            builder: tar::Builder::new(Vec::new()),
        }
    }

    /// A directory.
    pub fn dir(mut self, path: &str, mode: u32) -> Self {
        let mut h = header(tar::EntryType::Directory, mode);
        self.builder.append_data(&mut h, path, &[][..]).unwrap();
        self
    }

    /// A regular file.
    pub fn file(self, path: &str, mode: u32, data: &[u8]) -> Self {
        self.file_owned(path, mode, 0, 0, data)
    }

    /// A regular file with an owner.
    pub fn file_owned(mut self, path: &str, mode: u32, uid: u64, gid: u64, data: &[u8]) -> Self {
        let mut h = header(tar::EntryType::Regular, mode);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_size(data.len() as u64);
        self.builder.append_data(&mut h, path, data).unwrap();
        self
    }

    /// A regular file with extended attributes (PAX SCHILY.xattr records).
    pub fn file_xattrs(
        mut self,
        path: &str,
        mode: u32,
        data: &[u8],
        xattrs: &[(&str, &[u8])],
    ) -> Self {
        let records: Vec<(String, &[u8])> = xattrs
            .iter()
            .map(|(k, v)| (format!("SCHILY.xattr.{k}"), *v))
            .collect();
        self.builder
            .append_pax_extensions(records.iter().map(|(k, v)| (k.as_str(), *v)))
            .unwrap();
        let mut h = header(tar::EntryType::Regular, mode);
        h.set_size(data.len() as u64);
        self.builder.append_data(&mut h, path, data).unwrap();
        self
    }

    /// A symlink.
    pub fn symlink(mut self, path: &str, target: &str) -> Self {
        let mut h = header(tar::EntryType::Symlink, 0o777);
        self.builder.append_link(&mut h, path, target).unwrap();
        self
    }

    /// A hardlink to `target` (a path of the archive).
    pub fn hardlink(mut self, path: &str, target: &str) -> Self {
        let mut h = header(tar::EntryType::Link, 0o644);
        self.builder.append_link(&mut h, path, target).unwrap();
        self
    }

    /// A device node or fifo.
    pub fn node(
        mut self,
        path: &str,
        kind: tar::EntryType,
        mode: u32,
        major: u32,
        minor: u32,
    ) -> Self {
        let mut h = header(kind, mode);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        self.builder.append_data(&mut h, path, &[][..]).unwrap();
        self
    }

    /// A whiteout of `path` (`.wh.NAME` in its directory).
    pub fn whiteout(self, path: &str) -> Self {
        let (dir, name) = path.rsplit_once('/').map_or(("", path), |(d, n)| (d, n));
        let wh = if dir.is_empty() {
            format!(".wh.{name}")
        } else {
            format!("{dir}/.wh.{name}")
        };
        self.file(&wh, 0o644, b"")
    }

    /// Makes the directory opaque (`DIR/.wh..wh..opq`).
    pub fn opaque(self, dir: &str) -> Self {
        self.file(&format!("{dir}/.wh..wh..opq"), 0o644, b"")
    }

    /// An entry whose raw name is written as is (hostile names the tar
    /// crate's path helpers would refuse).
    pub fn raw(
        mut self,
        name: &[u8],
        kind: tar::EntryType,
        link: Option<&[u8]>,
        data: &[u8],
    ) -> Self {
        let mut h = header(kind, 0o644);
        h.set_size(data.len() as u64);
        {
            let gnu = h.as_gnu_mut().unwrap();
            gnu.name[..name.len()].copy_from_slice(name);
            if let Some(l) = link {
                gnu.linkname[..l.len()].copy_from_slice(l);
            }
        }
        h.set_cksum();
        self.builder.append(&h, data).unwrap();
        self
    }

    /// A file entry that claims `size` bytes but whose data is `data`
    /// followed by the end of the stream.
    pub fn lying_file(path: &str, size: u64, data: &[u8]) -> Vec<u8> {
        let mut h = header(tar::EntryType::Regular, 0o644);
        h.set_path(path).unwrap();
        h.set_size(size);
        h.set_cksum();
        let mut out = h.as_bytes().to_vec();
        out.extend_from_slice(data);
        out
    }

    /// The finished tar.
    pub fn tar(self) -> Vec<u8> {
        self.builder.into_inner().unwrap()
    }
}

/// The busybox root filesystem as a layer: /bin/busybox, an applet symlink
/// per applet, /etc/passwd and /etc/group, /tmp.
pub fn busybox_layer() -> Layer {
    let bb = std::fs::read(BUSYBOX).unwrap();
    let mut l = Layer::new()
        .dir("bin", 0o755)
        .dir("etc", 0o755)
        .dir("tmp", 0o1777)
        .dir("root", 0o700)
        .dir("home", 0o755)
        .dir("home/user", 0o755)
        .file("bin/busybox", 0o755, &bb);
    let list = Command::new(BUSYBOX).arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            l = l.symlink(&format!("bin/{applet}"), "busybox");
        }
    }
    l.file(
        "etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n",
    )
    .file(
        "etc/group",
        0o644,
        b"root:x:0:\nwheel:x:10:user\nuser:x:1000:\n",
    )
}

/// Two layers: busybox with data/{a,b}, opq/x and gone.txt, then one that
/// whites out gone.txt and data/a, adds data/c, makes opq opaque with z,
/// and adds /etc/motd.
pub fn whiteout_layers() -> (Vec<u8>, Vec<u8>) {
    let base = busybox_layer()
        .dir("data", 0o755)
        .file("data/a", 0o644, b"a")
        .file("data/b", 0o644, b"b")
        .dir("opq", 0o755)
        .file("opq/x", 0o644, b"x")
        .file("gone.txt", 0o644, b"bye")
        .tar();
    let top = Layer::new()
        .whiteout("gone.txt")
        .dir("data", 0o755)
        .whiteout("data/a")
        .file("data/c", 0o644, b"c")
        .dir("opq", 0o755)
        .opaque("opq")
        .file("opq/z", 0o644, b"z")
        .dir("etc", 0o755)
        .file("etc/motd", 0o644, b"welcome\n")
        .tar();
    (base, top)
}

/// How a layer blob is compressed in an archive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Comp {
    /// Plain tar.
    None,
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
}

/// Compresses a tar.
pub fn compress(tar: &[u8], c: Comp) -> Vec<u8> {
    match c {
        Comp::None => tar.to_vec(),
        Comp::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(tar).unwrap();
            e.finish().unwrap()
        }
        Comp::Zstd => zstd::encode_all(tar, 1).unwrap(),
    }
}

fn media_type(c: Comp) -> &'static str {
    match c {
        Comp::None => "application/vnd.oci.image.layer.v1.tar",
        Comp::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
        Comp::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
    }
}

/// An image to pack: layer tars, their compression, the config's
/// `config` object and history, and its tags.
#[derive(Clone)]
pub struct Image {
    /// Uncompressed layer tars, bottom first.
    pub layers: Vec<Vec<u8>>,
    /// Compression of the layer blobs.
    pub comp: Comp,
    /// The config's `config` object.
    pub config: Value,
    /// Tags (`busybox:latest`).
    pub tags: Vec<String>,
    /// The creation time.
    pub created: String,
    /// diff_ids to write instead of the real ones (to test verification).
    pub diff_ids: Option<Vec<String>>,
    /// The `created_by` of the layers' history entries.
    pub created_by: Option<String>,
}

impl Image {
    /// An image of the given layers with `sh` as command.
    pub fn new(layers: Vec<Vec<u8>>, tags: &[&str]) -> Image {
        Image {
            layers,
            comp: Comp::Gzip,
            config: json!({"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"]}),
            tags: tags.iter().map(|s| s.to_string()).collect(),
            created: "2024-01-02T03:04:05.123456789Z".into(),
            diff_ids: None,
            created_by: None,
        }
    }

    /// With another compression.
    pub fn comp(mut self, c: Comp) -> Image {
        self.comp = c;
        self
    }

    /// The config JSON bytes.
    pub fn config_bytes(&self) -> Vec<u8> {
        let diff_ids = self
            .diff_ids
            .clone()
            .unwrap_or_else(|| self.layers.iter().map(|l| sha256(l)).collect());
        let history: Vec<Value> = self
            .layers
            .iter()
            .enumerate()
            .map(|(i, _)| {
                let by = self
                    .created_by
                    .clone()
                    .unwrap_or_else(|| format!("/bin/sh -c #(nop) ADD layer {i} in / "));
                json!({"created": self.created, "created_by": by})
            })
            .chain([json!({"created": self.created, "created_by": "/bin/sh -c #(nop)  CMD [\"sh\"]", "empty_layer": true})])
            .collect();
        serde_json::to_vec(&json!({
            "architecture": "amd64",
            "os": "linux",
            "created": self.created,
            "config": self.config,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": history,
        }))
        .unwrap()
    }

    /// The image id.
    pub fn id(&self) -> String {
        sha256(&self.config_bytes())
    }

    fn blobs(&self) -> Vec<Vec<u8>> {
        self.layers.iter().map(|l| compress(l, self.comp)).collect()
    }

    fn oci_manifest(&self) -> Vec<u8> {
        let config = self.config_bytes();
        let layers: Vec<Value> = self
            .blobs()
            .iter()
            .map(|b| json!({"mediaType": media_type(self.comp), "digest": sha256(b), "size": b.len()}))
            .collect();
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(&config), "size": config.len()},
            "layers": layers,
        }))
        .unwrap()
    }
}

/// Archive writer.
pub struct Archive {
    b: tar::Builder<Vec<u8>>,
    written: std::collections::HashSet<String>,
}

impl Default for Archive {
    fn default() -> Self {
        Self::new()
    }
}

impl Archive {
    /// An empty archive.
    pub fn new() -> Archive {
        Archive {
            b: tar::Builder::new(Vec::new()),
            written: Default::default(),
        }
    }

    /// Adds a file (once per path).
    pub fn file(&mut self, path: &str, data: &[u8]) {
        if !self.written.insert(path.to_string()) {
            return;
        }
        let mut h = header(tar::EntryType::Regular, 0o644);
        h.set_size(data.len() as u64);
        self.b.append_data(&mut h, path, data).unwrap();
    }

    /// Adds a symlink.
    pub fn symlink(&mut self, path: &str, target: &str) {
        let mut h = header(tar::EntryType::Symlink, 0o777);
        self.b.append_link(&mut h, path, target).unwrap();
    }

    /// The archive bytes.
    pub fn finish(self) -> Vec<u8> {
        self.b.into_inner().unwrap()
    }
}

/// A `docker save` archive of Docker before 25: `<id>/layer.tar`,
/// `<config hex>.json`, manifest.json and repositories. A layer shared by
/// two images is written once and linked, as Docker did.
pub fn docker_archive_legacy(images: &[Image]) -> Vec<u8> {
    let mut a = Archive::new();
    let mut manifest = Vec::new();
    let mut repos = serde_json::Map::new();
    let mut seen: std::collections::HashMap<String, String> = Default::default();
    for img in images {
        let config = img.config_bytes();
        let config_name = format!("{}.json", hex(&sha256(&config)));
        a.file(&config_name, &config);
        let mut layers = Vec::new();
        let mut parent = String::new();
        for blob in img.blobs() {
            let id = hex(&sha256(format!("{parent}{}", sha256(&blob)).as_bytes())).to_string();
            let path = format!("{id}/layer.tar");
            match seen.get(&sha256(&blob)) {
                Some(first) if first != &path => a.symlink(&path, &format!("../{first}")),
                _ => {
                    a.file(&format!("{id}/VERSION"), b"1.0");
                    a.file(&path, &blob);
                    seen.insert(sha256(&blob), path.clone());
                }
            }
            layers.push(path);
            parent = id;
        }
        for t in &img.tags {
            let (repo, tag) = t.rsplit_once(':').unwrap();
            repos
                .entry(repo.to_string())
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .unwrap()
                .insert(tag.to_string(), json!(parent));
        }
        manifest.push(json!({"Config": config_name, "RepoTags": img.tags, "Layers": layers}));
    }
    a.file("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    a.file("repositories", &serde_json::to_vec(&repos).unwrap());
    a.finish()
}

/// A `docker save` archive of Docker 25+: blobs/sha256 with an OCI layout,
/// index.json, manifest.json, oci-layout, repositories — manifest.json
/// last, as Docker writes it.
pub fn docker_archive(images: &[Image]) -> Vec<u8> {
    let mut a = Archive::new();
    let mut manifest = Vec::new();
    let mut index = Vec::new();
    for img in images {
        let config = img.config_bytes();
        a.file(&format!("blobs/sha256/{}", hex(&sha256(&config))), &config);
        let mut layers = Vec::new();
        for blob in img.blobs() {
            let p = format!("blobs/sha256/{}", hex(&sha256(&blob)));
            a.file(&p, &blob);
            layers.push(p);
        }
        let m = img.oci_manifest();
        a.file(&format!("blobs/sha256/{}", hex(&sha256(&m))), &m);
        for t in &img.tags {
            index.push(json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": sha256(&m), "size": m.len(),
                "annotations": {
                    "io.containerd.image.name": format!("docker.io/library/{t}"),
                    "org.opencontainers.image.ref.name": t.rsplit_once(':').unwrap().1,
                }
            }));
        }
        manifest.push(json!({
            "Config": format!("blobs/sha256/{}", hex(&sha256(&config))),
            "RepoTags": img.tags,
            "Layers": layers,
        }));
    }
    a.file(
        "index.json",
        &serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": index})).unwrap(),
    );
    a.file("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    a.file("oci-layout", br#"{"imageLayoutVersion": "1.0.0"}"#);
    a.finish()
}

/// An OCI image layout archive (index.json names each image with
/// `org.opencontainers.image.ref.name` set to its full reference).
pub fn oci_archive(images: &[Image]) -> Vec<u8> {
    let mut a = Archive::new();
    a.file("oci-layout", br#"{"imageLayoutVersion": "1.0.0"}"#);
    let mut index = Vec::new();
    for img in images {
        let m = img.oci_manifest();
        let mut d = json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha256(&m), "size": m.len(),
            "platform": {"os": "linux", "architecture": "amd64"}});
        if let Some(t) = img.tags.first() {
            d["annotations"] =
                json!({"org.opencontainers.image.ref.name": format!("docker.io/library/{t}")});
        }
        index.push(d);
    }
    a.file(
        "index.json",
        &serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": index})).unwrap(),
    );
    for img in images {
        let config = img.config_bytes();
        a.file(&format!("blobs/sha256/{}", hex(&sha256(&config))), &config);
        for blob in img.blobs() {
            a.file(&format!("blobs/sha256/{}", hex(&sha256(&blob))), &blob);
        }
        let m = img.oci_manifest();
        a.file(&format!("blobs/sha256/{}", hex(&sha256(&m))), &m);
    }
    a.finish()
}

/// The stdout of a successful command.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The stderr of a command.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
