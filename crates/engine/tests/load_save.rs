//! `capsa load` of docker-archive (old and Docker 25+ layouts) and OCI
//! layout archives, `save` → `load` round trips, and what the store holds
//! afterwards (blobs, snapshots, tags).

mod common;

use common::*;
use serde_json::Value;

fn two_layer_image(tags: &[&str]) -> Image {
    let base = busybox_layer().tar();
    let top = Layer::new()
        .dir("etc", 0o755)
        .file("etc/motd", 0o644, b"hello from layer 2\n")
        .tar();
    Image::new(vec![base, top], tags)
}

fn check_loaded(root: &Root, img: &Image, tag: &str) {
    let v = root.inspect(tag);
    assert_eq!(v["Id"], img.id());
    assert_eq!(v["RepoTags"][0], tag);
    let layers: Vec<String> = img.layers.iter().map(|l| sha256(l)).collect();
    assert_eq!(v["RootFS"]["Layers"], serde_json::json!(layers));
    assert_eq!(v["RootFS"]["Type"], "layers");
    assert_eq!(v["Config"]["Cmd"], serde_json::json!(["sh"]));
    assert_eq!(v["Architecture"], "amd64");
    assert_eq!(v["Os"], "linux");
    assert!(v["Size"].as_i64().unwrap() > 1_000_000);
    // Each layer is a snapshot keyed by chain ID.
    let store = root.path().join("store");
    let first = hex(&layers[0]).to_string();
    assert!(
        store
            .join("snapshots")
            .join(&first)
            .join("fs/bin/busybox")
            .is_file()
    );
    let chain2 = sha256(format!("{} {}", layers[0], layers[1]).as_bytes());
    let motd = store
        .join("snapshots")
        .join(hex(&chain2))
        .join("fs/etc/motd");
    assert_eq!(std::fs::read(motd).unwrap(), b"hello from layer 2\n");
    // Nothing left in tmp.
    assert_eq!(std::fs::read_dir(store.join("tmp")).unwrap().count(), 0);
}

#[test]
fn load_docker_archive_legacy_layout() {
    require_root!();
    let root = Root::new();
    let img = two_layer_image(&["busybox:latest"]);
    let out = root.load(&docker_archive_legacy(std::slice::from_ref(&img)));
    assert_eq!(out, "Loaded image: busybox:latest\n");
    check_loaded(&root, &img, "busybox:latest");
}

#[test]
fn load_docker_archive_docker25_layout_every_compression() {
    require_root!();
    for comp in [Comp::None, Comp::Gzip, Comp::Zstd] {
        let root = Root::new();
        let img = two_layer_image(&["busybox:latest"]).comp(comp);
        let out = root.load(&docker_archive(std::slice::from_ref(&img)));
        assert_eq!(out, "Loaded image: busybox:latest\n", "{comp:?}");
        check_loaded(&root, &img, "busybox:latest");
    }
}

#[test]
fn load_oci_layout_archive() {
    require_root!();
    let root = Root::new();
    let img = two_layer_image(&["oci:v1"]).comp(Comp::Zstd);
    let out = root.load(&oci_archive(std::slice::from_ref(&img)));
    assert_eq!(out, "Loaded image: oci:v1\n");
    check_loaded(&root, &img, "oci:v1");
}

#[test]
fn load_from_stdin_and_compressed_archive() {
    require_root!();
    let root = Root::new();
    let img = two_layer_image(&["busybox:latest"]);
    let archive = compress(&docker_archive(std::slice::from_ref(&img)), Comp::Gzip);
    let out = root.run_stdin(&["load"], &archive);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "Loaded image: busybox:latest\n");
    check_loaded(&root, &img, "busybox:latest");
}

#[test]
fn shared_layers_are_unpacked_once() {
    require_root!();
    let root = Root::new();
    let a = two_layer_image(&["a:1"]);
    let mut b = Image::new(
        vec![
            a.layers[0].clone(),
            Layer::new().file("b.txt", 0o644, b"b\n").tar(),
        ],
        &["b:1"],
    );
    b.comp = Comp::Gzip;
    let out = root.load(&docker_archive_legacy(&[a.clone(), b.clone()]));
    assert_eq!(out, "Loaded image: a:1\nLoaded image: b:1\n");
    let snaps = std::fs::read_dir(root.path().join("store/snapshots"))
        .unwrap()
        .count();
    assert_eq!(snaps, 3, "the shared base layer has one snapshot");
    // Removing one image keeps the shared layer for the other.
    let out = root.ok(&["rmi", "a:1"]);
    assert!(out.starts_with("Untagged: a:1\nDeleted: sha256:"), "{out}");
    let snaps = std::fs::read_dir(root.path().join("store/snapshots"))
        .unwrap()
        .count();
    assert_eq!(snaps, 2);
    let fs = root
        .path()
        .join("store/snapshots")
        .join(hex(&sha256(&a.layers[0])))
        .join("fs");
    assert!(fs.join("bin/busybox").is_file());
}

#[test]
fn loading_again_reuses_everything_and_moves_tags() {
    require_root!();
    let root = Root::new();
    let img = two_layer_image(&["busybox:latest"]);
    root.load(&docker_archive(std::slice::from_ref(&img)));
    // Same image again: nothing to do but say so.
    let out = root.load(&docker_archive(std::slice::from_ref(&img)));
    assert_eq!(out, "Loaded image: busybox:latest\n");
    // Another image with the same tag takes it; the old one is left untagged.
    let mut other = img.clone();
    other.created = "2024-02-02T00:00:00Z".into();
    let out = root.load(&docker_archive(std::slice::from_ref(&other)));
    assert_eq!(
        out,
        format!(
            "The image busybox:latest already exists, renaming the old one with ID {} to empty string\nLoaded image: busybox:latest\n",
            img.id()
        )
    );
    let ls = root.ok(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    assert_eq!(
        ls,
        format!(
            "busybox:latest {}\n<none>:<none> {}\n",
            &hex(&other.id())[..12],
            &hex(&img.id())[..12]
        )
    );
}

#[test]
fn untagged_archive_images_load_by_id() {
    require_root!();
    let root = Root::new();
    let img = two_layer_image(&[]);
    let out = root.load(&docker_archive_legacy(std::slice::from_ref(&img)));
    assert_eq!(out, format!("Loaded image ID: {}\n", img.id()));
}

fn tar_entries(archive: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut a = tar::Archive::new(archive);
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let p = e.path().unwrap().to_string_lossy().into_owned();
            let mut d = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut d).unwrap();
            (p, d)
        })
        .collect()
}

#[test]
fn save_writes_docker_and_oci_layouts_and_round_trips() {
    require_root!();
    let root = Root::new();
    let img = two_layer_image(&["busybox:latest"]);
    root.load(&docker_archive_legacy(std::slice::from_ref(&img)));
    root.ok(&["tag", "busybox", "example.com/team/app:v2"]);
    let out_path = root.scratch("saved.tar");
    root.ok(&[
        "save",
        "-o",
        out_path.to_str().unwrap(),
        "busybox:latest",
        "example.com/team/app:v2",
    ]);
    let saved = std::fs::read(&out_path).unwrap();
    let entries = tar_entries(&saved);
    let get = |n: &str| {
        entries
            .iter()
            .find(|(p, _)| p == n)
            .map(|(_, d)| d.clone())
            .unwrap_or_else(|| panic!("{n} missing from the saved archive"))
    };
    // Docker's manifest.json.
    let manifest: Value = serde_json::from_slice(&get("manifest.json")).unwrap();
    assert_eq!(manifest.as_array().unwrap().len(), 1);
    let m = &manifest[0];
    assert_eq!(m["Config"], format!("blobs/sha256/{}", hex(&img.id())));
    assert_eq!(
        m["RepoTags"],
        serde_json::json!(["busybox:latest", "example.com/team/app:v2"])
    );
    assert_eq!(m["Layers"].as_array().unwrap().len(), 2);
    // Every blob is where its digest says, and matches it.
    for (p, d) in &entries {
        if let Some(h) = p.strip_prefix("blobs/sha256/").filter(|h| !h.is_empty()) {
            assert_eq!(hex(&sha256(d)), h, "{p}");
        }
    }
    let config = get(&format!("blobs/sha256/{}", hex(&img.id())));
    assert_eq!(config, img.config_bytes());
    // The OCI layout beside it.
    assert_eq!(get("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#);
    let index: Value = serde_json::from_slice(&get("index.json")).unwrap();
    let names: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            d["annotations"]["io.containerd.image.name"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(
        names,
        [
            "docker.io/library/busybox:latest",
            "example.com/team/app:v2"
        ]
    );
    let repos: Value = serde_json::from_slice(&get("repositories")).unwrap();
    assert!(repos["busybox"]["latest"].is_string());

    // Round trip into a fresh store, from stdout this time.
    let out = root.cmd(&["save", "busybox:latest"]).output().unwrap();
    assert!(out.status.success());
    let fresh = Root::new();
    let loaded = fresh.load(&out.stdout);
    assert_eq!(loaded, "Loaded image: busybox:latest\n");
    let v = fresh.inspect("busybox");
    assert_eq!(v["Id"], img.id());
    // And from the file with both tags.
    let fresh2 = Root::new();
    assert_eq!(
        fresh2.load(&saved),
        "Loaded image: busybox:latest\nLoaded image: example.com/team/app:v2\n"
    );
}

#[test]
fn save_to_a_terminal_or_of_a_missing_image_fails() {
    require_root!();
    let root = Root::new();
    let err = root.fails(&[
        "save",
        "-o",
        root.scratch("x.tar").to_str().unwrap(),
        "nope",
    ]);
    assert_eq!(err, "Error: No such image: nope:latest\n");
    assert!(!root.scratch("x.tar").exists());
}

#[test]
fn saved_archive_is_readable_by_skopeo() {
    require_root!();
    if std::process::Command::new("skopeo")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: skopeo is not installed (apt-get install skopeo)");
        return;
    }
    let root = Root::new();
    let img = two_layer_image(&["busybox:latest"]);
    root.load(&docker_archive(std::slice::from_ref(&img)));
    let saved = root.scratch("saved.tar");
    root.ok(&["save", "-o", saved.to_str().unwrap(), "busybox"]);
    // skopeo reads it as a docker-archive (manifest.json) ...
    let out = std::process::Command::new("skopeo")
        .args([
            "inspect",
            "--config",
            &format!("docker-archive:{}", saved.display()),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let cfg: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cfg["rootfs"]["diff_ids"][0], sha256(&img.layers[0]));
    // ... and as an OCI archive (index.json, the tag as ref.name), and converts it.
    let layout = root.scratch("layout");
    let out = std::process::Command::new("skopeo")
        .args([
            "copy",
            &format!("oci-archive:{}:latest", saved.display()),
            &format!("oci:{}:latest", layout.display()),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(layout.join("index.json").is_file());
    // An OCI layout written by another tool loads too.
    let mut b = tar::Builder::new(Vec::new());
    b.append_dir_all(".", &layout).unwrap();
    let fresh = Root::new();
    let out = fresh.load(&b.into_inner().unwrap());
    assert_eq!(out, format!("Loaded image ID: {}\n", img.id()));
}

#[test]
fn multi_platform_oci_index_loads_this_machines_image() {
    require_root!();
    let root = Root::new();
    let amd = two_layer_image(&[]);
    let mut arm = two_layer_image(&[]);
    arm.created = "2024-05-05T00:00:00Z".into();
    let mut a = Archive::new();
    a.file("oci-layout", br#"{"imageLayoutVersion": "1.0.0"}"#);
    let mut blobs = Vec::new();
    let mut descs = Vec::new();
    for (img, arch) in [(&arm, "arm64"), (&amd, "amd64")] {
        let config = img.config_bytes();
        blobs.push(config.clone());
        let mut layers = Vec::new();
        for l in &img.layers {
            let b = compress(l, Comp::Gzip);
            layers.push(serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha256(&b), "size": b.len()}));
            blobs.push(b);
        }
        let m = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(&config), "size": config.len()},
            "layers": layers,
        }))
        .unwrap();
        descs.push(serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha256(&m), "size": m.len(),
            "platform": {"os": "linux", "architecture": arch}}));
        blobs.push(m);
    }
    // A buildx attestation manifest, which is not an image.
    let att = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#.to_vec();
    descs.push(serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha256(&att), "size": att.len(),
        "platform": {"os": "unknown", "architecture": "unknown"},
        "annotations": {"vnd.docker.reference.type": "attestation-manifest"}}));
    blobs.push(att);
    let nested = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": descs,
    }))
    .unwrap();
    a.file(
        "index.json",
        &serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [
            {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": sha256(&nested), "size": nested.len(),
             "annotations": {"io.containerd.image.name": "docker.io/library/multi:1"}}
        ]}))
        .unwrap(),
    );
    blobs.push(nested);
    for b in &blobs {
        a.file(&format!("blobs/sha256/{}", hex(&sha256(b))), b);
    }
    let out = root.load(&a.finish());
    assert_eq!(out, "Loaded image: multi:1\n");
    assert_eq!(root.inspect("multi:1")["Id"], amd.id());
    assert_eq!(root.ok(&["images", "-q"]).lines().count(), 1);
}
