//! `push`: an image's blobs (layers, then config) — each checked with
//! `HEAD` first, mounted from another repository of the same registry when
//! the store knows one that has it, else uploaded in one request or in
//! chunks — a few at once, then its manifest, exactly the bytes stored, so
//! that the digest is the same everywhere.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use capsa_images::manifest::{MAX_DOCUMENT, Manifest};
use capsa_images::{Digest, Reference, Store};

use crate::auth::repository_scope;
use crate::client::{MAX_MANIFEST, Session, Target, UploadStart};
use crate::config::Config;
use crate::credentials::DockerConfig;
use crate::error::{Error, Failure, Kind, Op, Result};
use crate::progress::{Event, LayerState, Progress};
use crate::transport::{self, TlsVerify};

/// How a push is made.
pub struct PushOptions<'a> {
    /// The registry configuration.
    pub config: &'a Config,
    /// The `--tls-verify` setting.
    pub tls: TlsVerify,
    /// Where progress goes.
    pub progress: &'a dyn Progress,
    /// Blobs uploaded at once (`None`: the configuration's).
    pub max_concurrent_uploads: Option<usize>,
}

/// What a push did.
#[derive(Clone, Debug)]
pub struct Pushed {
    /// The reference pushed.
    pub reference: Reference,
    /// The manifest's digest.
    pub digest: Digest,
    /// The manifest's size.
    pub size: u64,
}

/// A blob to send.
struct Blob {
    digest: Digest,
    size: u64,
    /// Where the store keeps it.
    path: std::path::PathBuf,
    /// Repositories of the same registry it may be mounted from.
    mount_from: Vec<String>,
    /// The id shown for a layer (short diff_id); `None` for the config.
    shown: Option<String>,
}

/// Pushes every tag of `reference`'s repository that the store has (`push -a`).
pub fn push_all_tags(
    store: &Store,
    reference: &Reference,
    opts: &PushOptions<'_>,
) -> Result<Vec<Pushed>> {
    if reference.tag().is_some() || reference.digest().is_some() {
        return Err(Error::Invalid(
            "tag can't be used with --all-tags/-a".into(),
        ));
    }
    let prefix = format!("{}:", reference.name());
    let tags: Vec<String> = store.db().rows(
        "SELECT name FROM tags WHERE substr(name, 1, length(?1)) = ?1 ORDER BY name",
        [&prefix],
        |r| r.get(0),
    )?;
    if tags.is_empty() {
        return Err(Error::Invalid(format!(
            "An image does not exist locally with the tag: {}",
            reference.familiar_name()
        )));
    }
    tags.iter()
        .map(|t| push(store, &Reference::parse(t)?, opts))
        .collect()
}

/// Pushes the image tagged `reference` (`latest` when it names no tag).
pub fn push(store: &Store, reference: &Reference, opts: &PushOptions<'_>) -> Result<Pushed> {
    if reference.digest().is_some() {
        return Err(Error::Invalid(format!(
            "cannot push a digest reference ({}): push a tag",
            reference.familiar()
        )));
    }
    let reference = reference.clone().with_default_tag();
    let tag = reference
        .tag()
        .expect("with_default_tag gives a tag")
        .to_string();
    let img = match store.db().tag(&reference.to_string())? {
        Some(id) => store
            .db()
            .image(&id)?
            .ok_or_else(|| capsa_images::Error::NoSuchImage(reference.familiar()))?,
        None => {
            return Err(Error::Invalid(format!(
                "An image does not exist locally with the tag: {}",
                reference.familiar()
            )));
        }
    };
    let manifest_digest = Digest::parse(&img.manifest)?;
    let manifest_bytes = store.read_blob(&manifest_digest, MAX_MANIFEST)?;
    let manifest = Manifest::parse(&manifest_bytes, &img.manifest)?;
    let diff_ids: Vec<String> = store
        .db()
        .layers_of(&img.id)?
        .into_iter()
        .map(|l| l.diff_id)
        .collect();
    let mut blobs: Vec<Blob> = manifest
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| Blob {
            digest: l.digest.clone(),
            size: l.size,
            path: store.blob_path(&l.digest),
            mount_from: Vec::new(),
            shown: Some(
                diff_ids
                    .get(i)
                    .and_then(|d| Digest::parse(d).ok())
                    .unwrap_or_else(|| l.digest.clone())
                    .short()
                    .to_string(),
            ),
        })
        .collect();
    blobs.push(Blob {
        digest: manifest.config.digest.clone(),
        size: manifest.config.size,
        path: store.blob_path(&manifest.config.digest),
        mount_from: Vec::new(),
        shown: None,
    });
    for b in &mut blobs {
        b.mount_from = mount_sources(store, &reference, &b.digest)?;
        let len = std::fs::metadata(&b.path)
            .map_err(|_| {
                Error::Invalid(format!(
                    "blob {} of image {} is missing from the store: it cannot be pushed",
                    b.digest,
                    reference.familiar()
                ))
            })?
            .len();
        if b.size != len
            && !(b.size == 0 && b.digest == manifest.config.digest && len <= MAX_DOCUMENT)
        {
            return Err(Error::Invalid(format!(
                "blob {} of image {} has {len} bytes in the store but {} in its manifest",
                b.digest,
                reference.familiar(),
                b.size
            )));
        }
    }

    let domain = reference.domain();
    let credentials = DockerConfig::load()?.get(domain)?;
    let image = reference.familiar();
    let endpoint = transport::endpoints(opts.config, domain, opts.tls, false)
        .pop()
        .expect("the registry itself is always an endpoint");
    let session = Session::open(
        Target {
            config: opts.config,
            domain,
            repo: reference.path(),
            image: &image,
            op: Op::Push,
            credentials,
            scopes: vec![repository_scope(reference.path(), "pull,push")],
        },
        &endpoint,
    )?;
    opts.progress.report(Event::Status(&format!(
        "The push refers to repository [{}]",
        reference.name()
    )));
    for b in &blobs {
        if let Some(id) = &b.shown {
            opts.progress.report(Event::Layer {
                id,
                state: LayerState::Preparing,
            });
        }
    }
    let parallel = opts
        .max_concurrent_uploads
        .unwrap_or(opts.config.max_concurrent_uploads)
        .max(1);
    for (n, b) in blobs.iter().enumerate() {
        if let (Some(id), true) = (&b.shown, n >= parallel) {
            opts.progress.report(Event::Layer {
                id,
                state: LayerState::Waiting,
            });
        }
    }
    let cancel = AtomicBool::new(false);
    crate::parallel::run(&blobs, parallel, &cancel, |b| {
        if cancel.load(Ordering::Relaxed) {
            return Err(crate::parallel::cancelled());
        }
        push_blob(&session, b, opts.progress)
    })?;
    let digest = session.put_manifest(&tag, &manifest.media_type, &manifest_bytes)?;
    opts.progress.report(Event::Status(&format!(
        "{tag}: digest: {digest} size: {}",
        manifest_bytes.len()
    )));
    let repo_digest = Reference::parse(&format!("{}@{digest}", reference.name()))?;
    store.add_repo_digests(&Digest::parse(&img.id)?, &[repo_digest])?;
    Ok(Pushed {
        reference,
        digest,
        size: manifest_bytes.len() as u64,
    })
}

/// Other repositories of the same registry that the store knows to have
/// the blob (they are where the images holding it came from or went to).
fn mount_sources(store: &Store, reference: &Reference, digest: &Digest) -> Result<Vec<String>> {
    let names: Vec<String> = store.db().rows(
        "SELECT t.name FROM image_blobs b JOIN tags t ON t.image = b.image WHERE b.digest = ?1
         UNION SELECT r.name FROM image_blobs b JOIN repo_digests r ON r.image = b.image WHERE b.digest = ?1",
        [digest.as_str()],
        |r| r.get(0),
    )?;
    let repos: BTreeSet<String> = names
        .iter()
        .filter_map(|n| Reference::parse(n).ok())
        .filter(|r| r.domain() == reference.domain() && r.path() != reference.path())
        .map(|r| r.path().to_string())
        .collect();
    Ok(repos.into_iter().collect())
}

/// Sends one blob unless the registry has it or can mount it.
fn push_blob(session: &Session, b: &Blob, progress: &dyn Progress) -> Result<()> {
    let report = |state: LayerState| {
        if let Some(id) = &b.shown {
            progress.report(Event::Layer { id, state });
        }
    };
    if session.blob_exists(&b.digest)? {
        report(LayerState::LayerAlreadyExists);
        return Ok(());
    }
    let mut location: Option<String> = None;
    // Docker tries up to three other repositories.
    for from in b.mount_from.iter().take(3) {
        match session.start_upload(Some((&b.digest, from)))? {
            UploadStart::Mounted => {
                if let Some(l) = &location {
                    session.cancel_upload(l);
                }
                report(LayerState::MountedFrom(from.clone()));
                return Ok(());
            }
            // The registry could not mount it and opened an upload
            // instead: keep one, drop the others.
            UploadStart::Session(l) => match &location {
                Some(_) => session.cancel_upload(&l),
                None => location = Some(l),
            },
        }
    }
    let location = match location {
        Some(l) => l,
        None => match session.start_upload(None)? {
            UploadStart::Session(l) => l,
            UploadStart::Mounted => {
                return Err(session.error(Failure::new(
                    Kind::Protocol,
                    "the registry answered an upload request as a mount",
                )));
            }
        },
    };
    report(LayerState::Pushing);
    let sent = AtomicU64::new(0);
    let last = AtomicU64::new(0);
    let id = b.shown.as_deref();
    let on_bytes = |n: u64| {
        let total = sent.fetch_add(n, Ordering::Relaxed) + n;
        if let Some(id) = id
            && (total >= last.load(Ordering::Relaxed) + (256 << 10) || total == b.size)
        {
            last.store(total, Ordering::Relaxed);
            progress.report(Event::Bytes {
                id,
                current: total.min(b.size),
                total: b.size,
            });
        }
    };
    session.upload_blob(&location, &b.digest, &b.path, b.size, &on_bytes)?;
    report(LayerState::Pushed);
    Ok(())
}
