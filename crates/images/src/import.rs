//! `docker import`: a root filesystem tar (plain, gzip or zstd) becomes a
//! one-layer image, its config shaped by `--change` instructions.

use std::fs::{self, File};
use std::io::Read;

use serde_json::{Map, Value, json};

use crate::changes;
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::layer;
use crate::manifest::{self, Descriptor, Manifest};
use crate::reference::Reference;
use crate::store::{Committed, NewImage, NewLayer, Store};
use crate::unpack::Limits;

/// What to import and how to name it.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// Where the tar came from, for the history comment (`-` for stdin).
    pub source: String,
    /// The reference to tag the image with.
    pub reference: Option<Reference>,
    /// Dockerfile instructions applied to the config.
    pub changes: Vec<String>,
    /// The history comment instead of "Imported from SOURCE".
    pub message: Option<String>,
}

/// The config object of an image made by `changes` (validated before any
/// data is read).
pub fn config_from_changes(changes: &[String]) -> Result<Map<String, Value>> {
    let mut config = Map::new();
    changes::apply(&mut config, changes)?;
    Ok(config)
}

/// Imports the root filesystem tar read from `src` as a new image.
pub fn import(store: &Store, src: impl Read, opts: &ImportOptions) -> Result<Committed> {
    let config_obj = config_from_changes(&opts.changes)?;
    let _lock = store.lock_shared()?;
    let ws = store.workspace()?;
    let blob_tmp = ws.path().join("blob");
    let mut file = File::create(&blob_tmp).ctx("create", &blob_tmp)?;
    let dir = ws.path().join("layer");
    let fsdir = dir.join("fs");
    fs::create_dir_all(&fsdir).ctx("mkdir", &fsdir)?;
    let limits = Limits::free_space_of(store.root())?;
    let pass = layer::apply(&opts.source, src, Some(&mut file), &fsdir, limits)?;
    drop(file);
    let diff = pass.diff?;
    if diff.diff_size == 0 {
        return Err(Error::Archive(format!(
            "{}: empty input (no tar)",
            opts.source
        )));
    }

    let (secs, nanos) = crate::time::now();
    let created = crate::time::format_rfc3339(secs, nanos);
    let comment = opts
        .message
        .clone()
        .unwrap_or_else(|| format!("Imported from {}", opts.source));
    let config = json!({
        "architecture": manifest::host_arch(),
        "comment": comment,
        "config": Value::Object(config_obj),
        "created": created,
        "history": [{"created": created, "comment": comment}],
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff.diff_id.as_str()]},
    });
    let config_bytes = serde_json::to_vec(&config).expect("JSON values serialise");
    let id = Digest::of(&config_bytes);
    let chain = diff.diff_id.clone();
    if store.has_snapshot(&chain) {
        fs::remove_dir_all(&dir).ctx("remove", &dir)?;
    } else {
        store.adopt_snapshot(&dir, &chain)?;
    }
    store.adopt_blob(&blob_tmp, &pass.blob)?;
    let config_digest = store.put_blob_bytes(&ws, &config_bytes)?;
    let m = Manifest::oci(
        Descriptor {
            media_type: manifest::OCI_CONFIG.to_string(),
            digest: config_digest.clone(),
            size: config_bytes.len() as u64,
        },
        vec![manifest::layer_descriptor(
            pass.blob.clone(),
            pass.blob_size,
            pass.compression,
        )],
    );
    let manifest_digest = store.put_blob_bytes(&ws, &m.to_bytes())?;
    store.commit(
        &NewImage {
            id,
            manifest: manifest_digest,
            created,
            layers: vec![NewLayer {
                blob: pass.blob,
                diff_id: diff.diff_id,
                chain_id: chain,
                size: diff.unpacked.size,
            }],
            tags: opts.reference.iter().cloned().collect(),
            repo_digests: Vec::new(),
        },
        &config_digest,
    )
}
