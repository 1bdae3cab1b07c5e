//! Image manifests and indexes: OCI image spec v1.1 and Docker's image
//! manifest schema 2 (read), OCI (written).

use serde_json::{Value, json};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::layer::Compression;

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Most a manifest, index or config may weigh.
pub const MAX_DOCUMENT: u64 = 64 << 20;

/// A content descriptor: media type, digest and size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Descriptor {
    /// The media type.
    pub media_type: String,
    /// The content digest.
    pub digest: Digest,
    /// The content size.
    pub size: u64,
}

impl Descriptor {
    fn from_json(v: &Value, what: &str) -> Result<Descriptor> {
        let bad = |r: &str| Error::Archive(format!("{what}: {r}"));
        let digest = v
            .get("digest")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("descriptor without a digest"))?;
        Ok(Descriptor {
            media_type: v
                .get("mediaType")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            digest: Digest::parse(digest).map_err(|e| bad(&e.to_string()))?,
            size: v.get("size").and_then(Value::as_u64).unwrap_or(0),
        })
    }

    fn to_json(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": self.digest.as_str(), "size": self.size})
    }
}

/// The parts of an image manifest the store uses.
#[derive(Clone, Debug)]
pub struct Manifest {
    /// Its own media type.
    pub media_type: String,
    /// The config blob.
    pub config: Descriptor,
    /// The layer blobs, bottom first.
    pub layers: Vec<Descriptor>,
}

impl Manifest {
    /// Parses an OCI or Docker schema 2 image manifest.
    pub fn parse(data: &[u8], what: &str) -> Result<Manifest> {
        let v: Value = serde_json::from_slice(data)
            .map_err(|e| Error::Archive(format!("{what}: malformed manifest: {e}")))?;
        if v.get("schemaVersion").and_then(Value::as_u64) != Some(2) {
            return Err(Error::Archive(format!(
                "{what}: unsupported manifest schemaVersion (only 2 is supported)"
            )));
        }
        let media_type = v
            .get("mediaType")
            .and_then(Value::as_str)
            .unwrap_or(OCI_MANIFEST)
            .to_string();
        if media_type != OCI_MANIFEST && media_type != DOCKER_MANIFEST {
            return Err(Error::Archive(format!(
                "{what}: not an image manifest ({media_type})"
            )));
        }
        let config = Descriptor::from_json(
            v.get("config")
                .ok_or_else(|| Error::Archive(format!("{what}: manifest without config")))?,
            what,
        )?;
        let layers = v
            .get("layers")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|l| Descriptor::from_json(l, what)).collect())
            .transpose()?
            .unwrap_or_default();
        Ok(Manifest {
            media_type,
            config,
            layers,
        })
    }

    /// An OCI manifest for a config and layers, as `docker save` writes.
    pub fn oci(config: Descriptor, layers: Vec<Descriptor>) -> Manifest {
        Manifest {
            media_type: OCI_MANIFEST.to_string(),
            config,
            layers,
        }
    }

    /// The manifest as JSON bytes (OCI field order).
    pub fn to_bytes(&self) -> Vec<u8> {
        let v = json!({
            "schemaVersion": 2,
            "mediaType": self.media_type,
            "config": self.config.to_json(),
            "layers": self.layers.iter().map(Descriptor::to_json).collect::<Vec<_>>(),
        });
        serde_json::to_vec(&v).expect("JSON values serialise")
    }
}

/// A layer descriptor for a blob of the given compression.
pub fn layer_descriptor(digest: Digest, size: u64, compression: Compression) -> Descriptor {
    Descriptor {
        media_type: compression.oci_layer_media_type().to_string(),
        digest,
        size,
    }
}

/// The GOARCH name of the machine this runs on.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        other => other,
    }
}

/// One image manifest listed in an index, with the annotations it came with.
#[derive(Clone, Debug)]
pub struct IndexEntry {
    /// The manifest descriptor.
    pub descriptor: Descriptor,
    /// `io.containerd.image.name` or `org.opencontainers.image.ref.name`.
    pub names: Vec<String>,
    /// The platform's os/architecture, when given.
    pub platform: Option<(String, String)>,
    /// The platform's CPU variant (`v7`, `v8`), when given.
    pub variant: Option<String>,
    /// Whether it is an attestation (buildx provenance/SBOM), not an image.
    pub attestation: bool,
    /// Whether it is a nested index.
    pub is_index: bool,
}

/// Parses an OCI image index (or Docker manifest list).
pub fn parse_index(data: &[u8], what: &str) -> Result<Vec<IndexEntry>> {
    let v: Value = serde_json::from_slice(data)
        .map_err(|e| Error::Archive(format!("{what}: malformed index: {e}")))?;
    let Some(list) = v.get("manifests").and_then(Value::as_array) else {
        return Err(Error::Archive(format!("{what}: index without manifests")));
    };
    let mut out = Vec::new();
    for m in list {
        let d = Descriptor::from_json(m, what)?;
        let ann = |k: &str| {
            m.get("annotations")
                .and_then(|a| a.get(k))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let names = [
            "io.containerd.image.name",
            "org.opencontainers.image.ref.name",
        ]
        .iter()
        .filter_map(|k| ann(k))
        .collect();
        let platform = m.get("platform").map(|p| {
            let s = |k: &str| {
                p.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            (s("os"), s("architecture"))
        });
        let variant = m
            .get("platform")
            .and_then(|p| p.get("variant"))
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .map(str::to_string);
        let is_index = d.media_type == OCI_INDEX || d.media_type == DOCKER_MANIFEST_LIST;
        out.push(IndexEntry {
            attestation: ann("vnd.docker.reference.type").as_deref()
                == Some("attestation-manifest"),
            is_index,
            descriptor: d,
            names,
            platform,
            variant,
        });
    }
    Ok(out)
}

/// An OCI index listing manifests with their annotations.
pub fn index_bytes(entries: &[(Descriptor, Vec<(String, String)>)]) -> Vec<u8> {
    let manifests: Vec<Value> = entries
        .iter()
        .map(|(d, ann)| {
            let mut v = d.to_json();
            if !ann.is_empty() {
                v["annotations"] = ann
                    .iter()
                    .map(|(k, val)| (k.clone(), Value::String(val.clone())))
                    .collect::<serde_json::Map<_, _>>()
                    .into();
            }
            v
        })
        .collect();
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests,
    }))
    .expect("JSON values serialise")
}
