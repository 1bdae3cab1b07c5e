//! `docker load`: reads a `docker save` archive (manifest.json with
//! `<id>/layer.tar` or, since Docker 25, `blobs/sha256/...` with an OCI
//! layout beside it) or an OCI image-layout archive, optionally gzip or zstd
//! compressed, in one streaming pass.
//!
//! Entries arrive in any order, so every blob is copied into the command's
//! workspace while it is hashed, and every blob that looks like a layer is
//! also unpacked on the way (into the workspace, keyed by blob). Once the
//! manifests are known, each layer's diff_id is checked against its image's
//! config, the unpacked layers are renamed into place as snapshots named by
//! chain ID, blobs are renamed into the blob store, and the images and tags
//! are recorded.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Cursor, Read};
use std::path::PathBuf;

use oci_spec::image::ImageConfiguration;
use serde::Deserialize;

use crate::digest::{Digest, chain_id};
use crate::error::{Error, IoContext, Result};
use crate::layer::{self, Compression};
use crate::manifest::{self, Descriptor, MAX_DOCUMENT, Manifest};
use crate::reference::Reference;
use crate::store::{Committed, NewImage, NewLayer, Store, Workspace};
use crate::unpack::Limits;

/// A blob received from the archive.
struct StagedBlob {
    /// Its temporary file, `None` when the store already had the blob.
    tmp: Option<PathBuf>,
    /// The layer unpacked from it on the way, if it looked like one.
    unpacked: Option<Result<Unpacked>>,
    compression: Option<Compression>,
    size: u64,
}

/// A layer unpacked while streaming, not yet named by chain ID.
struct Unpacked {
    dir: PathBuf,
    diff_id: Digest,
    size: u64,
    used: bool,
}

/// Everything read from the archive.
#[derive(Default)]
struct Staged {
    /// Small files that are not blobs (manifest.json, index.json, configs of
    /// the older format), by archive path.
    docs: HashMap<String, Vec<u8>>,
    /// Blobs, by digest.
    blobs: HashMap<Digest, StagedBlob>,
    /// Archive path of every blob-like file to its digest.
    paths: HashMap<String, Digest>,
    /// Symlinks of the archive (older `docker save` links shared layers).
    links: HashMap<String, String>,
    /// Bytes of `docs`, bounded by [`MAX_DOCS_IN_MEMORY`].
    doc_bytes: u64,
    counter: u64,
}

/// Most bytes of small files kept in memory; more go to the workspace.
const MAX_DOCS_IN_MEMORY: u64 = 256 << 20;

/// One `manifest.json` entry of `docker save`.
#[derive(Deserialize)]
struct DockerEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

/// An image found in the archive, before its layers are checked.
struct Plan {
    config: Vec<u8>,
    manifest: Option<(Digest, Vec<u8>)>,
    layers: Vec<Digest>,
    tags: Vec<Reference>,
}

/// Loads every image of the archive read from `input` into the store,
/// returning what was recorded in archive order. Nothing of an image is
/// recorded unless all of it is complete and verified.
pub fn load(store: &Store, input: impl Read) -> Result<Vec<Committed>> {
    let _lock = store.lock_shared()?;
    let ws = store.workspace()?;
    let mut input = BufReader::with_capacity(1 << 20, input);
    let head = input
        .fill_buf()
        .map_err(|e| Error::io("read", "archive", e))?;
    if head.is_empty() {
        return Err(Error::Archive("empty input (no archive was given)".into()));
    }
    let reader: Box<dyn Read> = match Compression::detect(head)? {
        Compression::None => Box::new(input),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(input)
                .map_err(|e| Error::Archive(format!("zstd: {e}")))?,
        ),
    };
    let mut staged = Staged::default();
    let mut archive = tar::Archive::new(reader);
    let entries = archive
        .entries()
        .map_err(|e| Error::Archive(format!("reading: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::Archive(format!("reading: {e}")))?;
        let path = normalise(&String::from_utf8_lossy(&entry.path_bytes()));
        let kind = entry.header().entry_type();
        if kind.is_symlink() {
            if let Some(target) = entry.link_name_bytes() {
                let target = String::from_utf8_lossy(&target).into_owned();
                let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
                let resolved = normalise(&format!("{dir}/{target}"));
                staged.links.insert(path, resolved);
            }
            continue;
        }
        if kind.is_file() || kind.is_contiguous() {
            stage_file(store, &ws, &mut staged, &path, &mut entry)?;
        }
    }
    drop(archive);

    let plans = plan(store, &staged)?;
    if plans.is_empty() {
        return Err(Error::Archive(
            "no image in the archive (manifest.json or index.json lists none)".into(),
        ));
    }
    let mut done = Vec::new();
    for p in plans {
        done.push(commit_plan(store, &ws, &mut staged, p)?);
    }
    Ok(done)
}

/// `a/./b/../c` → `a/c`, without a leading `/` or `./`.
fn normalise(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out.join("/")
}

fn stage_file<R: Read>(
    store: &Store,
    ws: &Workspace,
    staged: &mut Staged,
    path: &str,
    entry: &mut tar::Entry<'_, R>,
) -> Result<()> {
    let named = path
        .strip_prefix("blobs/sha256/")
        .and_then(|h| Digest::from_hex(h).ok());
    if let Some(d) = &named
        && (staged.blobs.contains_key(d) || store.has_blob(d))
    {
        // Already have it: skip the content.
        staged.paths.insert(path.to_string(), d.clone());
        staged.blobs.entry(d.clone()).or_insert(StagedBlob {
            tmp: None,
            unpacked: None,
            compression: None,
            size: entry.size(),
        });
        return Ok(());
    }
    let mut head = Vec::with_capacity(512);
    entry
        .by_ref()
        .take(512)
        .read_to_end(&mut head)
        .map_err(|e| Error::Archive(format!("{path}: reading: {e}")))?;
    let entry_size = entry.size();
    let mut src = Cursor::new(head.clone()).chain(&mut *entry);
    staged.counter += 1;
    let n = staged.counter;
    if layer::looks_like_layer(&head) {
        let blob_tmp = ws.path().join(format!("blob-{n}"));
        let mut file = File::create(&blob_tmp).ctx("create", &blob_tmp)?;
        let dir = ws.path().join(format!("layer-{n}"));
        let fsdir = dir.join("fs");
        fs::create_dir_all(&fsdir).ctx("mkdir", &fsdir)?;
        let limits = Limits::free_space_of(store.root())?;
        let pass = layer::apply(path, &mut src, Some(&mut file), &fsdir, limits)?;
        drop(file);
        check_named(path, named.as_ref(), &pass.blob)?;
        let unpacked = match pass.diff {
            Ok(d) => Ok(Unpacked {
                dir,
                diff_id: d.diff_id,
                size: d.unpacked.size,
                used: false,
            }),
            Err(e) => {
                let _ = fs::remove_dir_all(&dir);
                Err(e)
            }
        };
        staged.paths.insert(path.to_string(), pass.blob.clone());
        staged.blobs.insert(
            pass.blob,
            StagedBlob {
                tmp: Some(blob_tmp),
                unpacked: Some(unpacked),
                compression: Some(pass.compression),
                size: pass.blob_size,
            },
        );
    } else if named.is_some()
        || entry_size > MAX_DOCUMENT
        || staged.doc_bytes + entry_size > MAX_DOCS_IN_MEMORY
    {
        let (tmp, digest, size) = store.receive_blob(ws, &mut src, named.as_ref())?;
        staged.paths.insert(path.to_string(), digest.clone());
        staged.blobs.insert(
            digest,
            StagedBlob {
                tmp: Some(tmp),
                unpacked: None,
                compression: None,
                size,
            },
        );
    } else {
        let mut data = Vec::new();
        src.read_to_end(&mut data)
            .map_err(|e| Error::Archive(format!("{path}: reading: {e}")))?;
        staged.doc_bytes += data.len() as u64;
        staged.docs.insert(path.to_string(), data);
    }
    Ok(())
}

fn check_named(path: &str, named: Option<&Digest>, actual: &Digest) -> Result<()> {
    match named {
        Some(n) if n != actual => Err(Error::DigestMismatch {
            what: format!("archive entry {path}"),
            expected: n.to_string(),
            actual: actual.to_string(),
        }),
        _ => Ok(()),
    }
}

impl Staged {
    /// Follows archive symlinks.
    fn resolve<'a>(&'a self, mut path: &'a str) -> &'a str {
        for _ in 0..16 {
            match self.links.get(path) {
                Some(t) => path = t,
                None => break,
            }
        }
        path
    }

    /// The bytes of a small file or blob of the archive, or of a stored blob.
    fn read(&self, store: &Store, path: &str) -> Result<Vec<u8>> {
        let path = self.resolve(&normalise(path)).to_string();
        if let Some(d) = self.docs.get(&path) {
            return Ok(d.clone());
        }
        match self.paths.get(&path) {
            Some(d) => self.read_blob(store, d),
            None => Err(Error::Archive(format!(
                "{path} is missing from the archive"
            ))),
        }
    }

    fn read_blob(&self, store: &Store, d: &Digest) -> Result<Vec<u8>> {
        match self.blobs.get(d).and_then(|b| b.tmp.as_ref()) {
            Some(tmp) => {
                let mut data = Vec::new();
                File::open(tmp)
                    .ctx("open", tmp)?
                    .take(MAX_DOCUMENT + 1)
                    .read_to_end(&mut data)
                    .ctx("read", tmp)?;
                if data.len() as u64 > MAX_DOCUMENT {
                    return Err(Error::Archive(format!("document {d} is too large")));
                }
                Ok(data)
            }
            None if store.has_blob(d) => store.read_blob(d, MAX_DOCUMENT),
            None => Err(Error::Archive(format!(
                "blob {d} is missing from the archive"
            ))),
        }
    }

    /// The blob digest of a layer path of manifest.json.
    fn layer_blob(&self, path: &str) -> Result<Digest> {
        let p = self.resolve(&normalise(path)).to_string();
        if let Some(d) = self.paths.get(&p) {
            return Ok(d.clone());
        }
        if let Some(d) = p
            .strip_prefix("blobs/sha256/")
            .and_then(|h| Digest::from_hex(h).ok())
        {
            return Ok(d);
        }
        Err(Error::Archive(format!(
            "layer {path} is missing from the archive"
        )))
    }
}

fn parse_tags(tags: &[String]) -> Result<Vec<Reference>> {
    tags.iter()
        .map(|t| Reference::parse(t).map(Reference::with_default_tag))
        .collect()
}

/// Works out the images of the archive from manifest.json or index.json.
fn plan(store: &Store, staged: &Staged) -> Result<Vec<Plan>> {
    // Image manifests of the OCI layout, if any, by config digest.
    let mut oci: Vec<(Digest, Vec<u8>, Manifest, Vec<String>)> = Vec::new();
    if let Some(index) = staged.docs.get("index.json") {
        collect_oci(store, staged, index, "index.json", true, &[], &mut oci, 0)?;
    }
    if let Some(mj) = staged.docs.get("manifest.json") {
        let entries: Vec<DockerEntry> = serde_json::from_slice(mj)
            .map_err(|e| Error::Archive(format!("manifest.json: {e}")))?;
        let mut plans = Vec::new();
        for e in entries {
            let config = staged.read(store, &e.config)?;
            let config_digest = Digest::of(&config);
            let manifest = oci
                .iter()
                .find(|(_, _, m, _)| m.config.digest == config_digest)
                .map(|(d, b, _, _)| (d.clone(), b.clone()));
            plans.push(Plan {
                config,
                manifest,
                layers: e
                    .layers
                    .iter()
                    .map(|l| staged.layer_blob(l))
                    .collect::<Result<_>>()?,
                tags: parse_tags(&e.repo_tags.unwrap_or_default())?,
            });
        }
        return Ok(plans);
    }
    if staged.docs.contains_key("index.json") {
        let mut plans = Vec::new();
        for (digest, bytes, m, names) in oci {
            let names: Vec<String> = names
                .into_iter()
                // A bare tag ("latest") names no repository: only full references count.
                .filter(|n| n.contains(':') || n.contains('/'))
                .collect();
            let mut tags = Vec::new();
            for n in names {
                let r = Reference::parse(&n)?.with_default_tag();
                if !tags.contains(&r) {
                    tags.push(r);
                }
            }
            plans.push(Plan {
                config: staged.read_blob(store, &m.config.digest)?,
                layers: m.layers.iter().map(|l| l.digest.clone()).collect(),
                manifest: Some((digest, bytes)),
                tags,
            });
        }
        return Ok(plans);
    }
    if staged.docs.contains_key("repositories") {
        return Err(Error::Unsupported(
            "archives of Docker before 1.10 (no manifest.json): save them again with a newer Docker".into(),
        ));
    }
    Err(Error::Archive(
        "neither manifest.json nor index.json found: not a docker save or OCI layout archive"
            .into(),
    ))
}

/// Collects the image manifests of an OCI index, descending into nested
/// indexes and picking this machine's platform from multi-platform ones.
#[allow(clippy::too_many_arguments)]
fn collect_oci(
    store: &Store,
    staged: &Staged,
    data: &[u8],
    what: &str,
    top: bool,
    names: &[String],
    out: &mut Vec<(Digest, Vec<u8>, Manifest, Vec<String>)>,
    depth: usize,
) -> Result<()> {
    if depth > 4 {
        return Err(Error::Archive(format!("{what}: indexes nested too deeply")));
    }
    let entries = manifest::parse_index(data, what)?;
    let host = ("linux".to_string(), manifest::host_arch().to_string());
    let candidates: Vec<_> = entries.iter().filter(|e| !e.attestation).collect();
    let multi = !top || candidates.iter().filter(|e| e.platform.is_some()).count() > 1;
    let mut picked_platform = false;
    for e in candidates {
        let mut all_names = names.to_vec();
        all_names.extend(e.names.iter().cloned());
        let d = &e.descriptor;
        let bytes = staged.read_blob(store, &d.digest)?;
        if Digest::of(&bytes) != d.digest {
            return Err(Error::DigestMismatch {
                what: format!("manifest {}", d.digest),
                expected: d.digest.to_string(),
                actual: Digest::of(&bytes).to_string(),
            });
        }
        if e.is_index {
            collect_oci(
                store,
                staged,
                &bytes,
                d.digest.as_str(),
                false,
                &all_names,
                out,
                depth + 1,
            )?;
            continue;
        }
        if multi {
            match &e.platform {
                Some(p) if *p == host && !picked_platform => picked_platform = true,
                Some(_) => continue,
                None if !top => continue,
                None => {}
            }
        }
        let m = Manifest::parse(&bytes, d.digest.as_str())?;
        out.push((d.digest.clone(), bytes, m, all_names));
    }
    Ok(())
}

/// Checks and unpacks the layers of one planned image, moves its blobs and
/// snapshots into place, and records it.
fn commit_plan(store: &Store, ws: &Workspace, staged: &mut Staged, p: Plan) -> Result<Committed> {
    let id = Digest::of(&p.config);
    let config: ImageConfiguration = serde_json::from_slice(&p.config)
        .map_err(|e| Error::image(id.as_str(), format!("malformed image config: {e}")))?;
    let diff_ids: Vec<Digest> = config
        .rootfs()
        .diff_ids()
        .iter()
        .map(|d| Digest::parse(d))
        .collect::<Result<_>>()
        .map_err(|e| Error::image(id.as_str(), format!("rootfs.diff_ids: {e}")))?;
    if diff_ids.len() != p.layers.len() {
        return Err(Error::image(
            id.as_str(),
            format!(
                "the config lists {} layers (rootfs.diff_ids) but the manifest has {}",
                diff_ids.len(),
                p.layers.len()
            ),
        ));
    }
    let mut layers = Vec::new();
    let mut parent: Option<Digest> = None;
    for (blob, diff_id) in p.layers.iter().zip(&diff_ids) {
        let chain = chain_id(parent.as_ref(), diff_id);
        let size = place_layer(store, ws, staged, blob, diff_id, &chain)?;
        layers.push(NewLayer {
            blob: blob.clone(),
            diff_id: diff_id.clone(),
            chain_id: chain.clone(),
            size,
        });
        parent = Some(chain);
    }
    // Blobs: config, layers, manifest.
    let config_digest = store.put_blob_bytes(ws, &p.config)?;
    let mut layer_descs = Vec::new();
    for l in &layers {
        let b = staged.blobs.get_mut(&l.blob);
        let (size, compression) = match b {
            Some(b) => {
                if let Some(tmp) = b.tmp.take() {
                    store.adopt_blob(&tmp, &l.blob)?;
                }
                (b.size, b.compression)
            }
            None => (0, None),
        };
        if !store.has_blob(&l.blob) {
            return Err(Error::Archive(format!("layer blob {} is missing", l.blob)));
        }
        let size = if size == 0 {
            fs::metadata(store.blob_path(&l.blob))
                .map(|m| m.len())
                .unwrap_or(0)
        } else {
            size
        };
        let compression = match compression {
            Some(c) => c,
            None => {
                let mut head = [0u8; 8];
                let n = store.open_blob(&l.blob)?.read(&mut head).unwrap_or(0);
                Compression::detect(&head[..n])?
            }
        };
        layer_descs.push(manifest::layer_descriptor(
            l.blob.clone(),
            size,
            compression,
        ));
    }
    let (manifest_digest, manifest_bytes) = match p.manifest {
        Some(m) => m,
        None => {
            let m = Manifest::oci(
                Descriptor {
                    media_type: manifest::OCI_CONFIG.to_string(),
                    digest: config_digest.clone(),
                    size: p.config.len() as u64,
                },
                layer_descs,
            );
            let b = m.to_bytes();
            (Digest::of(&b), b)
        }
    };
    store.put_blob_bytes(ws, &manifest_bytes)?;
    store.commit(
        &NewImage {
            id: id.clone(),
            manifest: manifest_digest,
            created: config.created().clone().unwrap_or_default(),
            layers,
            tags: p.tags,
            repo_digests: Vec::new(),
        },
        &config_digest,
    )
}

/// Makes sure the snapshot of `chain` exists, from the layer unpacked while
/// streaming or by unpacking the blob again; returns its size.
fn place_layer(
    store: &Store,
    ws: &Workspace,
    staged: &mut Staged,
    blob: &Digest,
    diff_id: &Digest,
    chain: &Digest,
) -> Result<u64> {
    let mismatch = |actual: &Digest| Error::DigestMismatch {
        what: format!("layer {blob} (diff_id in the image config)"),
        expected: diff_id.to_string(),
        actual: actual.to_string(),
    };
    let entry = staged.blobs.get_mut(blob);
    if let Some(StagedBlob {
        unpacked: Some(u), ..
    }) = &entry
    {
        match u {
            Ok(u) if &u.diff_id != diff_id => return Err(mismatch(&u.diff_id)),
            Err(e) => return Err(Error::Other(e.to_string())),
            Ok(_) => {}
        }
    }
    if store.has_snapshot(chain) {
        return match store.db().layer(chain.as_str())? {
            Some(l) => Ok(l.size as u64),
            None => store.snapshot_size(chain),
        };
    }
    if let Some(StagedBlob {
        unpacked: Some(Ok(u)),
        ..
    }) = entry
        && !u.used
    {
        u.used = true;
        store.adopt_snapshot(&u.dir, chain)?;
        return Ok(u.size);
    }
    // Unpack (again) from the blob.
    let src: File = match staged.blobs.get(blob).and_then(|b| b.tmp.as_ref()) {
        Some(tmp) => File::open(tmp).ctx("open", tmp)?,
        None if store.has_blob(blob) => store.open_blob(blob)?,
        None => {
            return Err(Error::Archive(format!(
                "layer blob {blob} is missing from the archive"
            )));
        }
    };
    let dir = ws.path().join(format!("chain-{}", chain.hex()));
    let fsdir = dir.join("fs");
    fs::create_dir_all(&fsdir).ctx("mkdir", &fsdir)?;
    let limits = Limits::free_space_of(store.root())?;
    let pass = layer::apply(blob.as_str(), io::BufReader::new(src), None, &fsdir, limits)?;
    if &pass.blob != blob {
        return Err(Error::DigestMismatch {
            what: format!("blob {blob}"),
            expected: blob.to_string(),
            actual: pass.blob.to_string(),
        });
    }
    let d = pass.diff?;
    if &d.diff_id != diff_id {
        return Err(mismatch(&d.diff_id));
    }
    store.adopt_snapshot(&dir, chain)?;
    Ok(d.unpacked.size)
}
