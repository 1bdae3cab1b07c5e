//! `docker commit`: a container's writable layer (an overlay upper
//! directory) becomes one more layer on its image, and a new image is
//! recorded with the config the caller gives.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;

use serde_json::{Map, Value, json};

use crate::digest::{Digest, chain_id};
use crate::error::{Error, IoContext, Result};
use crate::layer::{self, Compression};
use crate::manifest::{self, Descriptor, MAX_DOCUMENT, Manifest};
use crate::reference::Reference;
use crate::store::{Committed, NewImage, NewLayer, Store};
use crate::unpack::Limits;

/// What the new image is.
#[derive(Clone, Debug, Default)]
pub struct CommitOptions {
    /// The reference to tag it with.
    pub reference: Option<Reference>,
    /// Its `config` object (the container's, with changes applied).
    pub config: Map<String, Value>,
    /// The commit message (`comment` of the config and its history entry).
    pub comment: String,
    /// The author.
    pub author: String,
    /// The history entry's `created_by` (the container's command).
    pub created_by: String,
}

/// Makes a new image of image `base` plus the layer in `upper` (entries
/// `exclude` names left out). The layer is stored uncompressed and unpacked
/// into its snapshot at once.
pub fn commit(
    store: &Store,
    base: &str,
    upper: &Path,
    exclude: &dyn Fn(&str) -> bool,
    opts: &CommitOptions,
) -> Result<Committed> {
    let _lock = store.lock_shared()?;
    let img = store.resolve(base)?;
    let base_cfg: Value =
        serde_json::from_slice(&store.read_blob(&Digest::parse(&img.id)?, MAX_DOCUMENT)?)
            .map_err(|e| Error::image(&img.id, format!("config: {e}")))?;
    let base_manifest = Manifest::parse(
        &store.read_blob(&Digest::parse(&img.manifest)?, MAX_DOCUMENT)?,
        &img.manifest,
    )?;
    let base_layers = store.db().layers_of(&img.id)?;
    if base_layers.len() != base_manifest.layers.len() {
        return Err(Error::image(
            &img.id,
            "its manifest and its layer records disagree",
        ));
    }
    let ws = store.workspace()?;
    let tar_path = ws.path().join("layer.tar");
    {
        let f = File::create(&tar_path).ctx("create", &tar_path)?;
        let mut w = BufWriter::with_capacity(1 << 20, f);
        crate::export::export_diff_excluding(upper, &mut w, exclude)?;
        w.flush().ctx("write", &tar_path)?;
    }
    let dir = ws.path().join("snapshot");
    let fsdir = dir.join("fs");
    fs::create_dir_all(&fsdir).ctx("mkdir", &fsdir)?;
    let limits = Limits::free_space_of(store.root())?;
    let src = File::open(&tar_path).ctx("open", &tar_path)?;
    let pass = layer::apply("container layer", src, None, &fsdir, limits)?;
    let diff = pass.diff?;
    let parent = base_layers
        .last()
        .map(|l| Digest::parse(&l.chain_id))
        .transpose()?;
    let chain = chain_id(parent.as_ref(), &diff.diff_id);
    if store.has_snapshot(&chain) {
        fs::remove_dir_all(&dir).ctx("remove", &dir)?;
    } else {
        store.adopt_snapshot(&dir, &chain)?;
    }
    store.adopt_blob(&tar_path, &pass.blob)?;

    let (secs, nanos) = crate::time::now();
    let created = crate::time::format_rfc3339(secs, nanos);
    let mut cfg = base_cfg;
    cfg["config"] = Value::Object(opts.config.clone());
    cfg["created"] = json!(created);
    cfg["author"] = json!(opts.author);
    if !opts.comment.is_empty() {
        cfg["comment"] = json!(opts.comment);
    }
    let mut entry = json!({"created": created, "created_by": opts.created_by});
    if !opts.author.is_empty() {
        entry["author"] = json!(opts.author);
    }
    if !opts.comment.is_empty() {
        entry["comment"] = json!(opts.comment);
    }
    match cfg.get_mut("history").and_then(Value::as_array_mut) {
        Some(h) => h.push(entry),
        None => cfg["history"] = json!([entry]),
    }
    let mut diff_ids: Vec<Value> = base_layers.iter().map(|l| json!(l.diff_id)).collect();
    diff_ids.push(json!(diff.diff_id.as_str()));
    cfg["rootfs"] = json!({"type": "layers", "diff_ids": diff_ids});
    let config_bytes = serde_json::to_vec(&cfg).expect("JSON values serialise");
    let config_digest = store.put_blob_bytes(&ws, &config_bytes)?;
    let mut layers: Vec<Descriptor> = base_manifest.layers.clone();
    layers.push(manifest::layer_descriptor(
        pass.blob.clone(),
        pass.blob_size,
        Compression::None,
    ));
    let m = Manifest::oci(
        Descriptor {
            media_type: manifest::OCI_CONFIG.to_string(),
            digest: config_digest.clone(),
            size: config_bytes.len() as u64,
        },
        layers,
    );
    let manifest_digest = store.put_blob_bytes(&ws, &m.to_bytes())?;
    let mut new_layers = Vec::new();
    for (row, d) in base_layers.iter().zip(&base_manifest.layers) {
        new_layers.push(NewLayer {
            blob: d.digest.clone(),
            diff_id: Digest::parse(&row.diff_id)?,
            chain_id: Digest::parse(&row.chain_id)?,
            size: row.size as u64,
        });
    }
    new_layers.push(NewLayer {
        blob: pass.blob,
        diff_id: diff.diff_id,
        chain_id: chain,
        size: diff.unpacked.size,
    });
    store.commit(
        &NewImage {
            id: config_digest.clone(),
            manifest: manifest_digest,
            created,
            layers: new_layers,
            tags: opts.reference.iter().cloned().collect(),
            repo_digests: Vec::new(),
        },
        &config_digest,
    )
}
