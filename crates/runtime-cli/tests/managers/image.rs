//! Images the managers load, made locally (there is no registry): a
//! `docker save` archive of one busybox layer (Debian's busybox-static),
//! which `docker load`, `podman load` and `ctr images import` all read.

use std::path::{Path, PathBuf};

use oci_spec::image::{ConfigBuilder, ImageConfigurationBuilder, RootFsBuilder};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// One entry of a docker archive's `manifest.json`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ManifestEntry<'a> {
    config: &'a str,
    repo_tags: &'a [&'a str],
    layers: &'a [&'a str],
}

/// The tar of a busybox root filesystem (applet symlinks kept as links).
fn busybox_layer() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    capsa_testkit::make_busybox_rootfs(&rootfs);
    let mut tar = tar::Builder::new(Vec::new());
    tar.follow_symlinks(false);
    tar.append_dir_all(".", &rootfs).unwrap();
    tar.into_inner().unwrap()
}

/// Writes `<dir>/<name>.tar`: a docker archive of image `tag`, busybox
/// with command `cmd`; returns its path.
pub fn busybox_archive(dir: &Path, name: &str, tag: &str, cmd: &[&str]) -> PathBuf {
    let layer = busybox_layer();
    let diff_id = format!("sha256:{:x}", Sha256::digest(&layer));
    let config = ImageConfigurationBuilder::default()
        .config(
            ConfigBuilder::default()
                .cmd(cmd.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .env(vec!["PATH=/usr/sbin:/usr/bin:/sbin:/bin".to_string()])
                .build()
                .unwrap(),
        )
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(vec![diff_id])
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
        .to_string()
        .unwrap();
    let config_name = format!("{:x}.json", Sha256::digest(config.as_bytes()));
    let layer_name = "layer/layer.tar";
    let manifest = serde_json::to_vec(&[ManifestEntry {
        config: &config_name,
        repo_tags: &[tag],
        layers: &[layer_name],
    }])
    .unwrap();
    let path = dir.join(format!("{name}.tar"));
    let mut tar = tar::Builder::new(std::fs::File::create(&path).unwrap());
    for (name, data) in [
        (config_name.as_str(), config.as_bytes()),
        (layer_name, &layer),
        ("manifest.json", &manifest),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut h, name, data).unwrap();
    }
    tar.finish().unwrap();
    path
}
