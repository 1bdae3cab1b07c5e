//! `docker save`: writes images as a tar that `docker load` (and any OCI
//! tool) reads, in the layout Docker 25+ produces: the blobs under
//! `blobs/sha256/`, an OCI `index.json` and `oci-layout`, Docker's
//! `manifest.json`, and the legacy `repositories` file.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use serde_json::{Value, json};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::{self, Descriptor, MAX_DOCUMENT, Manifest};
use crate::reference::Reference;
use crate::store::Store;

/// An image to write and the tags it is saved with.
struct Selected {
    id: String,
    manifest: Digest,
    tags: Vec<Reference>,
}

/// Resolves the names as `docker save` does: a repository name without a
/// tag saves every tag of that repository, an id saves the image untagged.
fn select(store: &Store, names: &[String]) -> Result<Vec<Selected>> {
    let mut out: Vec<Selected> = Vec::new();
    let mut add = |id: String, manifest: String, tag: Option<Reference>| -> Result<()> {
        let pos = match out.iter().position(|s| s.id == id) {
            Some(p) => p,
            None => {
                out.push(Selected {
                    id,
                    manifest: Digest::parse(&manifest)?,
                    tags: Vec::new(),
                });
                out.len() - 1
            }
        };
        if let Some(t) = tag
            && t.digest().is_none()
            && !out[pos].tags.contains(&t)
        {
            out[pos].tags.push(t);
        }
        Ok(())
    };
    for name in names {
        // A bare repository name: every tag of it.
        if let Ok(r) = Reference::parse(name)
            && r.tag().is_none()
            && r.digest().is_none()
        {
            let repo = r.name();
            let tagged: Vec<(String, String)> = store.db().rows(
                "SELECT name, image FROM tags WHERE substr(name, 1, length(?1) + 1) = ?1 || ':' ORDER BY name",
                [&repo],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )?;
            let tagged: Vec<_> = tagged
                .into_iter()
                .filter(|(n, _)| !n[repo.len() + 1..].contains('/'))
                .collect();
            if !tagged.is_empty() {
                for (tag, id) in tagged {
                    let img = store
                        .db()
                        .image(&id)?
                        .ok_or_else(|| Error::NoSuchImage(tag.clone()))?;
                    add(img.id, img.manifest, Some(Reference::parse(&tag)?))?;
                }
                continue;
            }
        }
        let (img, via) = store.lookup(name)?;
        add(img.id, img.manifest, via)?;
    }
    Ok(out)
}

fn file_header(path: &str, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_path(path).expect("short ASCII path");
    h.set_size(size);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    h
}

fn dir_header(path: &str) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_path(path).expect("short ASCII path");
    h.set_size(0);
    h.set_mode(0o755);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Directory);
    h.set_cksum();
    h
}

/// Writes the named images to `out` as a `docker save` archive.
pub fn save(store: &Store, names: &[String], out: impl Write) -> Result<()> {
    let selected = select(store, names)?;
    let mut tar = tar::Builder::new(out);
    let werr = |e: std::io::Error| Error::io("write", "archive", e);
    tar.append(&dir_header("blobs/"), std::io::empty())
        .map_err(werr)?;
    tar.append(&dir_header("blobs/sha256/"), std::io::empty())
        .map_err(werr)?;
    let mut written: std::collections::HashSet<Digest> = Default::default();
    let mut index = Vec::new();
    let mut docker_manifest = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for s in &selected {
        let mbytes = store.read_blob(&s.manifest, MAX_DOCUMENT)?;
        let m = Manifest::parse(&mbytes, s.manifest.as_str())?;
        let mut blobs = vec![m.config.digest.clone()];
        blobs.extend(m.layers.iter().map(|l| l.digest.clone()));
        blobs.push(s.manifest.clone());
        for b in &blobs {
            if !written.insert(b.clone()) {
                continue;
            }
            let f = store.open_blob(b)?;
            let size = f
                .metadata()
                .map_err(|e| Error::io("stat", store.blob_path(b), e))?
                .len();
            let path = format!("blobs/sha256/{}", b.hex());
            tar.append(&file_header(&path, size), f.take(size))
                .map_err(werr)?;
        }
        let desc = Descriptor {
            media_type: m.media_type.clone(),
            digest: s.manifest.clone(),
            size: mbytes.len() as u64,
        };
        if s.tags.is_empty() {
            index.push((desc.clone(), Vec::new()));
        }
        for t in &s.tags {
            index.push((
                desc.clone(),
                vec![
                    ("io.containerd.image.name".to_string(), t.to_string()),
                    (
                        "org.opencontainers.image.ref.name".to_string(),
                        t.tag().unwrap_or_default().to_string(),
                    ),
                ],
            ));
            if let Some(top) = m.layers.last() {
                repositories.entry(t.familiar_name()).or_default().insert(
                    t.tag().unwrap_or_default().to_string(),
                    top.digest.hex().to_string(),
                );
            }
        }
        let tags: Vec<String> = s.tags.iter().map(Reference::familiar).collect();
        docker_manifest.push(json!({
            "Config": format!("blobs/sha256/{}", m.config.digest.hex()),
            "RepoTags": if tags.is_empty() { Value::Null } else { json!(tags) },
            "Layers": m.layers.iter().map(|l| format!("blobs/sha256/{}", l.digest.hex())).collect::<Vec<_>>(),
        }));
    }
    let docs: [(&str, Vec<u8>); 4] = [
        ("index.json", manifest::index_bytes(&index)),
        (
            "manifest.json",
            serde_json::to_vec(&docker_manifest).expect("JSON values serialise"),
        ),
        ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
        (
            "repositories",
            serde_json::to_vec(&repositories).expect("JSON values serialise"),
        ),
    ];
    for (name, data) in docs {
        if name == "repositories" && repositories.is_empty() {
            continue;
        }
        tar.append(&file_header(name, data.len() as u64), data.as_slice())
            .map_err(werr)?;
    }
    tar.into_inner().map_err(werr)?.flush().map_err(werr)
}
