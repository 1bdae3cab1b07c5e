//! `pull`: a manifest (choosing the platform from an index), the image
//! config, then the layers — several at once, each streamed from the
//! registry through the image store's one-pass pipeline (blob digest,
//! decompression, diff_id, unpacking) so that no byte is read twice, with
//! broken connections resumed — and the image recorded with its tag and
//! repo digest. Layers the store has are not fetched; a digest mismatch is
//! an error and nothing of that layer is kept.

use std::fs::{self, File};
use std::io::BufReader;
use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use capsa_images::db::ImageRow;
use capsa_images::digest::chain_id;
use capsa_images::error::IoContext;
use capsa_images::layer;
use capsa_images::manifest::{
    self, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, Descriptor, MAX_DOCUMENT, Manifest, OCI_INDEX,
    OCI_MANIFEST,
};
use capsa_images::store::{NewImage, NewLayer, Workspace};
use capsa_images::unpack::Limits;
use capsa_images::{Digest, Reference, Store};
use oci_spec::image::ImageConfiguration;

use crate::auth::repository_scope;
use crate::client::{Fetched, Session, Target};
use crate::config::Config;
use crate::credentials::DockerConfig;
use crate::error::{Error, Failure, Kind, Op, Result};
use crate::fetch::{BlobReader, Observer};
use crate::platform::Platform;
use crate::progress::{Event, LayerState, Progress};
use crate::transport::{self, TlsVerify};

/// Docker's image config media type.
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Indexes nested deeper than this are refused.
const MAX_INDEX_DEPTH: usize = 4;
/// Bytes between two progress reports of a layer.
const REPORT_EVERY: u64 = 256 << 10;

/// How a pull is made.
pub struct PullOptions<'a> {
    /// The registry configuration.
    pub config: &'a Config,
    /// The `--tls-verify` setting.
    pub tls: TlsVerify,
    /// The platform asked for (`--platform`); `None` means the host's.
    pub platform: Option<Platform>,
    /// Where progress goes.
    pub progress: &'a dyn Progress,
    /// Layers downloaded at once (`None`: the configuration's).
    pub max_concurrent_downloads: Option<usize>,
}

/// What a pull did.
#[derive(Clone, Debug)]
pub struct Pulled {
    /// The reference pulled, normalised (`docker.io/library/alpine:latest`).
    pub reference: Reference,
    /// The image id.
    pub id: Digest,
    /// The digest of the manifest (or index) the reference names.
    pub digest: Digest,
    /// False when the store already had the image under this reference.
    pub downloaded: bool,
}

/// When `run` and `create` pull their image (`--pull`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PullPolicy {
    /// Pull when the store does not have the image (the default).
    Missing,
    /// Always pull (the store keeps what is up to date).
    Always,
    /// Never pull: a missing image is an error.
    Never,
}

impl FromStr for PullPolicy {
    type Err = Error;

    fn from_str(s: &str) -> Result<PullPolicy> {
        match s {
            "missing" => Ok(PullPolicy::Missing),
            "always" => Ok(PullPolicy::Always),
            "never" => Ok(PullPolicy::Never),
            other => Err(Error::Invalid(format!(
                "invalid pull option: '{other}': must be one of \"always\", \"missing\" or \"never\""
            ))),
        }
    }
}

/// The image `reference` names, pulled first as `policy` says: what `run`
/// and `create` call. `platform` is the one asked for (`--platform`); an
/// image in the store of another platform is pulled again under
/// [`PullPolicy::Missing`]. The registry configuration is read from its
/// usual place; progress goes to `progress`. Returns the image, and what
/// was pulled when the registry was asked.
pub fn ensure_image(
    store: &Store,
    reference: &str,
    policy: PullPolicy,
    platform: Option<&Platform>,
    progress: &dyn Progress,
) -> Result<(ImageRow, Option<Pulled>)> {
    let local = match store.resolve(reference) {
        Ok(img) => Some(img),
        Err(capsa_images::Error::NoSuchImage(_)) => None,
        Err(e) => return Err(e.into()),
    };
    if policy == PullPolicy::Never {
        return match local {
            Some(img) => Ok((img, None)),
            None => Err(capsa_images::Error::NoSuchImage(reference.to_string()).into()),
        };
    }
    if policy == PullPolicy::Missing
        && let Some(img) = &local
    {
        let fits = match platform {
            None => true,
            Some(p) => image_platform(store, img)?
                .is_some_and(|(os, arch, v)| p.matches(&os, &arch, v.as_deref())),
        };
        if fits {
            return Ok((local.expect("checked above"), None));
        }
    }
    let parsed = match Reference::parse(reference) {
        Ok(r) => r.with_default_tag(),
        // An id (prefix) that the store does not have cannot be pulled.
        Err(_) if local.is_none() => {
            return Err(capsa_images::Error::NoSuchImage(reference.to_string()).into());
        }
        Err(e) => return Err(e.into()),
    };
    if local.is_none() {
        progress.report(Event::Status(&format!(
            "Unable to find image '{}' locally",
            parsed.familiar()
        )));
    }
    let config = Config::load()?;
    let pulled = pull(
        store,
        &parsed,
        &PullOptions {
            config: &config,
            tls: TlsVerify::Default,
            platform: platform.cloned(),
            progress,
            max_concurrent_downloads: None,
        },
    )?;
    Ok((store.resolve(pulled.id.as_str())?, Some(pulled)))
}

/// The os, architecture and variant in a stored image's config.
fn image_platform(
    store: &Store,
    img: &ImageRow,
) -> Result<Option<(String, String, Option<String>)>> {
    let id = Digest::parse(&img.id)?;
    let bytes = store.read_blob(&id, MAX_DOCUMENT)?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        capsa_images::Error::image(img.id.as_str(), format!("malformed image config: {e}"))
    })?;
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    Ok(match (s("os"), s("architecture")) {
        (Some(os), Some(arch)) => Some((os, arch, s("variant"))),
        _ => None,
    })
}

/// Runs `f` with a session on the first endpoint of the registry that
/// answers and where `f` succeeds; docker.io mirrors are tried first and
/// skipped when they fail.
fn on_first_endpoint<T>(
    reference: &Reference,
    opts: &PullOptions<'_>,
    f: impl Fn(&Session) -> Result<T>,
) -> Result<(Session, T)> {
    let domain = reference.domain();
    let credentials = DockerConfig::load()?.get(domain)?;
    let image = reference.familiar();
    let mut mirror_error = None;
    for ep in transport::endpoints(opts.config, domain, opts.tls, true) {
        let target = Target {
            config: opts.config,
            domain,
            repo: reference.path(),
            image: &image,
            op: Op::Pull,
            credentials: credentials.clone(),
            scopes: vec![repository_scope(reference.path(), "pull")],
        };
        match Session::open(target, &ep).and_then(|s| f(&s).map(|t| (s, t))) {
            Ok(found) => return Ok(found),
            Err(e) if ep.mirror => {
                tracing::debug!("mirror {} failed: {e}", ep.host);
                mirror_error = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(mirror_error.unwrap_or_else(|| Error::Invalid(format!("no endpoint for {domain}"))))
}

/// Pulls every tag of `reference`'s repository (`pull -a`).
pub fn pull_all_tags(
    store: &Store,
    reference: &Reference,
    opts: &PullOptions<'_>,
) -> Result<Vec<Pulled>> {
    if reference.tag().is_some() || reference.digest().is_some() {
        return Err(Error::Invalid(
            "tag can't be used with --all-tags/-a".into(),
        ));
    }
    let (_, mut tags) = on_first_endpoint(reference, opts, Session::tags)?;
    tags.sort();
    tags.dedup();
    let mut out = Vec::new();
    for t in tags {
        out.push(pull(store, &reference.with_tag(&t)?, opts)?);
    }
    Ok(out)
}

/// Pulls the image `reference` names (`latest` when it names neither tag
/// nor digest) into the store.
pub fn pull(store: &Store, reference: &Reference, opts: &PullOptions<'_>) -> Result<Pulled> {
    let reference = reference.clone().with_default_tag();
    let tag_or_digest = match (reference.digest(), reference.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_string(),
        (None, None) => unreachable!("with_default_tag gives a tag"),
    };
    let (session, top) = on_first_endpoint(&reference, opts, |s| s.get_manifest(&tag_or_digest))?;
    let want = opts.platform.clone().unwrap_or_else(Platform::host);
    let fetched = select_manifest(&session, top.clone(), &want)?;
    let fail = |kind, reason: String| session.error(Failure::new(kind, reason));
    let what = format!("manifest {}", fetched.digest);
    let manifest = Manifest::parse(&fetched.bytes, &what).map_err(|e| match e {
        capsa_images::Error::Archive(m) => fail(Kind::Protocol, m),
        other => fail(Kind::Protocol, other.to_string()),
    })?;
    let config_type = manifest.config.media_type.as_str();
    if !config_type.is_empty()
        && config_type != manifest::OCI_CONFIG
        && config_type != DOCKER_CONFIG
    {
        return Err(fail(
            Kind::Unsupported,
            format!("not a container image (its config is {config_type})"),
        ));
    }
    if let Some(l) = manifest
        .layers
        .iter()
        .find(|l| l.media_type.ends_with("+encrypted"))
    {
        return Err(fail(
            Kind::Unsupported,
            format!("layer {} is encrypted ({})", l.digest, l.media_type),
        ));
    }
    opts.progress.report(Event::Status(&format!(
        "{tag_or_digest}: Pulling from {}",
        reference.path()
    )));
    let config_bytes =
        session.get_blob_bytes(&manifest.config.digest, manifest.config.size, MAX_DOCUMENT)?;
    let id = manifest.config.digest.clone();
    let config: ImageConfiguration = serde_json::from_slice(&config_bytes).map_err(|e| {
        fail(
            Kind::Protocol,
            format!("image config {id}: invalid JSON: {e}"),
        )
    })?;
    let diff_ids: Vec<Digest> = config
        .rootfs()
        .diff_ids()
        .iter()
        .map(|d| Digest::parse(d))
        .collect::<capsa_images::Result<_>>()
        .map_err(|e| {
            fail(
                Kind::Protocol,
                format!("image config {id}: rootfs.diff_ids: {e}"),
            )
        })?;
    if diff_ids.len() != manifest.layers.len() {
        return Err(fail(
            Kind::Protocol,
            format!(
                "image config {id} lists {} layers (rootfs.diff_ids) but the manifest has {}",
                diff_ids.len(),
                manifest.layers.len()
            ),
        ));
    }
    check_platform(&config, opts, &want, &reference, &session)?;

    let _lock = store.lock_shared()?;
    let ws = store.workspace()?;
    let mut layers = Vec::new();
    let mut jobs = Vec::new();
    let mut parent: Option<Digest> = None;
    for (i, (desc, diff_id)) in manifest.layers.iter().zip(&diff_ids).enumerate() {
        let chain = chain_id(parent.as_ref(), diff_id);
        let have_snapshot = store.has_snapshot(&chain);
        let have_blob = store.has_blob(&desc.digest);
        let short = desc.digest.short().to_string();
        if have_snapshot && have_blob {
            opts.progress.report(Event::Layer {
                id: &short,
                state: LayerState::AlreadyExists,
            });
        } else {
            jobs.push(Job {
                index: i,
                desc: desc.clone(),
                diff_id: diff_id.clone(),
                chain: chain.clone(),
                have_snapshot,
                have_blob,
                short,
            });
        }
        layers.push(NewLayer {
            blob: desc.digest.clone(),
            diff_id: diff_id.clone(),
            chain_id: chain.clone(),
            size: 0,
        });
        parent = Some(chain);
    }
    let parallel = opts
        .max_concurrent_downloads
        .unwrap_or(opts.config.max_concurrent_downloads)
        .max(1);
    let sizes = run_jobs(store, &ws, &session, &jobs, parallel, opts.progress)?;
    for (i, l) in layers.iter_mut().enumerate() {
        l.size = match sizes.iter().find(|(j, _)| *j == i) {
            Some((_, s)) => *s,
            None => match store.db().layer(l.chain_id.as_str())? {
                Some(row) => row.size as u64,
                None => store.snapshot_size(&l.chain_id)?,
            },
        };
    }

    store.put_blob_bytes(&ws, &config_bytes)?;
    store.put_blob_bytes(&ws, &fetched.bytes)?;
    let repo_digest: Reference = Reference::parse(&format!("{}@{}", reference.name(), top.digest))?;
    let before = match reference.tag() {
        Some(_) if reference.digest().is_none() => store.db().tag(&reference.to_string())?,
        _ => store.db().repo_digest(&repo_digest.to_string())?,
    };
    let tags = if reference.digest().is_none() {
        vec![reference.clone()]
    } else {
        Vec::new()
    };
    store.commit(
        &NewImage {
            id: id.clone(),
            manifest: fetched.digest.clone(),
            created: config.created().clone().unwrap_or_default(),
            layers,
            tags,
            repo_digests: vec![repo_digest],
        },
        &id,
    )?;
    let downloaded = before.as_deref() != Some(id.as_str());
    opts.progress
        .report(Event::Status(&format!("Digest: {}", top.digest)));
    opts.progress.report(Event::Status(&format!(
        "Status: {} for {}",
        if downloaded {
            "Downloaded newer image"
        } else {
            "Image is up to date"
        },
        reference.familiar()
    )));
    Ok(Pulled {
        reference,
        id,
        digest: top.digest,
        downloaded,
    })
}

/// The image manifest for `want` from what the reference names: the
/// manifest itself, or the matching entry of an index (followed through
/// nested indexes).
fn select_manifest(session: &Session, top: Fetched, want: &Platform) -> Result<Fetched> {
    let mut current = top;
    for _ in 0..MAX_INDEX_DEPTH {
        let t = current.media_type.as_str();
        if t == OCI_MANIFEST || t == DOCKER_MANIFEST {
            return Ok(current);
        }
        if t != OCI_INDEX && t != DOCKER_MANIFEST_LIST {
            return Err(session.error(Failure::new(
                Kind::Unsupported,
                format!(
                    "manifest {} has the unsupported media type {t:?}",
                    current.digest
                ),
            )));
        }
        let entries =
            manifest::parse_index(&current.bytes, current.digest.as_str()).map_err(|e| {
                session.error(Failure::new(
                    Kind::Protocol,
                    match e {
                        capsa_images::Error::Archive(m) => m,
                        other => other.to_string(),
                    },
                ))
            })?;
        let Some(entry) = want.select(&entries) else {
            return Err(session.error(Failure::new(
                Kind::Unsupported,
                format!("no matching manifest for {want} in the manifest list entries"),
            )));
        };
        let next = session.get_manifest(entry.descriptor.digest.as_str())?;
        current = next;
    }
    Err(session.error(Failure::new(
        Kind::Protocol,
        "image indexes nested too deeply",
    )))
}

/// A single-platform image must be of the platform asked for; without
/// `--platform`, another platform only gets Docker's warning.
fn check_platform(
    config: &ImageConfiguration,
    opts: &PullOptions<'_>,
    want: &Platform,
    reference: &Reference,
    session: &Session,
) -> Result<()> {
    let os = config.os().to_string();
    let arch = config.architecture().to_string();
    let variant = config.variant().clone();
    if want.matches(&os, &arch, variant.as_deref()) {
        return Ok(());
    }
    let actual = match &variant {
        Some(v) => format!("{os}/{arch}/{v}"),
        None => format!("{os}/{arch}"),
    };
    if opts.platform.is_some() {
        return Err(session.error(Failure::new(
            Kind::Unsupported,
            format!(
                "image with reference {} was found but its platform ({actual}) does not match the specified platform ({want})",
                reference.familiar()
            ),
        )));
    }
    opts.progress.report(Event::Warning(&format!(
        "The requested image's platform ({actual}) does not match the detected host platform ({want}) and no specific platform was requested"
    )));
    Ok(())
}

/// A layer to fetch.
struct Job {
    index: usize,
    desc: Descriptor,
    diff_id: Digest,
    chain: Digest,
    have_snapshot: bool,
    have_blob: bool,
    short: String,
}

/// Reports a layer's bytes at most every [`REPORT_EVERY`] bytes, and its retries.
struct LayerObserver<'a> {
    id: &'a str,
    total: u64,
    reported: AtomicU64,
    progress: &'a dyn Progress,
}

impl Observer for LayerObserver<'_> {
    fn received(&self, total: u64) {
        let last = self.reported.load(Ordering::Relaxed);
        if total >= last + REPORT_EVERY || total == self.total {
            self.reported.store(total, Ordering::Relaxed);
            self.progress.report(Event::Bytes {
                id: self.id,
                current: total,
                total: self.total,
            });
        }
    }

    fn retrying(&self, attempt: u32, wait: Duration, _reason: &str) {
        self.progress.report(Event::Layer {
            id: self.id,
            state: LayerState::Retrying { attempt, wait },
        });
    }
}

/// Fetches the layers, `parallel` at once, in manifest order; returns the
/// unpacked size of each (by layer index). The first failure stops the others.
fn run_jobs(
    store: &Store,
    ws: &Workspace,
    session: &Session,
    jobs: &[Job],
    parallel: usize,
    progress: &dyn Progress,
) -> Result<Vec<(usize, u64)>> {
    for (n, j) in jobs.iter().enumerate() {
        progress.report(Event::Layer {
            id: &j.short,
            state: LayerState::PullingFsLayer,
        });
        if n >= parallel {
            progress.report(Event::Layer {
                id: &j.short,
                state: LayerState::Waiting,
            });
        }
    }
    let cancel = AtomicBool::new(false);
    // The store's database connection stays on this thread: each worker
    // opens the store for itself.
    let root = store.root();
    let done = crate::parallel::run(jobs, parallel, &cancel, |job| {
        let store = Store::open(root)?;
        fetch_layer(&store, ws, session, job, &cancel, progress)
    })?;
    Ok(done
        .into_iter()
        .map(|(n, size)| (jobs[n].index, size))
        .collect())
}

/// Fetches one layer into the store: blob and snapshot, or whichever of the
/// two is missing; returns the snapshot's size.
fn fetch_layer(
    store: &Store,
    ws: &Workspace,
    session: &Session,
    job: &Job,
    cancel: &AtomicBool,
    progress: &dyn Progress,
) -> Result<u64> {
    let d = &job.desc.digest;
    let fail = |kind, reason: String| session.error(Failure::new(kind, reason));
    let observer = LayerObserver {
        id: &job.short,
        total: job.desc.size,
        reported: AtomicU64::new(0),
        progress,
    };
    let failure = Mutex::new(None);
    // The failure that stopped the reader explains what the pipeline saw.
    let reader_failure = |fallback: Error| -> Error {
        if let Some(f) = failure.lock().expect("failure slot").take() {
            return session.error(f);
        }
        if cancel.load(Ordering::Relaxed) {
            return crate::parallel::cancelled();
        }
        fallback
    };
    let layer_dir = ws.path().join(format!("layer-{}", job.index));
    let fs_dir = layer_dir.join("fs");
    let size = if job.have_snapshot {
        // Only the blob is missing (the layer came compressed differently).
        progress.report(Event::Layer {
            id: &job.short,
            state: LayerState::Downloading,
        });
        let mut reader = BlobReader::new(session, d, job.desc.size, cancel, &observer, &failure);
        let (tmp, actual, n) = store
            .receive_blob(ws, &mut reader, None)
            .map_err(|e| reader_failure(e.into()))?;
        if &actual != d {
            let _ = fs::remove_file(&tmp);
            return Err(fail(
                Kind::Digest,
                format!(
                    "layer blob {d}: digest mismatch: the registry sent content with digest {actual}"
                ),
            ));
        }
        check_size(job, n, session)?;
        store.adopt_blob(&tmp, d)?;
        match store.db().layer(job.chain.as_str())? {
            Some(row) => row.size as u64,
            None => store.snapshot_size(&job.chain)?,
        }
    } else {
        fs::create_dir_all(&fs_dir).ctx("mkdir", &fs_dir)?;
        let limits = Limits::free_space_of(store.root())?;
        let blob_tmp = ws.path().join(format!("blob-{}", job.index));
        let pass = if job.have_blob {
            // The blob is here: unpack it from the store.
            let src = store.open_blob(d)?;
            layer::apply(
                d.as_str(),
                BufReader::with_capacity(1 << 20, src),
                None,
                &fs_dir,
                limits,
            )?
        } else {
            progress.report(Event::Layer {
                id: &job.short,
                state: LayerState::Downloading,
            });
            let mut tee = File::create(&blob_tmp).ctx("create", &blob_tmp)?;
            let reader = BlobReader::new(session, d, job.desc.size, cancel, &observer, &failure);
            let pass = layer::apply(d.as_str(), reader, Some(&mut tee), &fs_dir, limits)
                .map_err(|e| reader_failure(e.into()))?;
            if let Some(f) = failure.lock().expect("failure slot").take() {
                return Err(session.error(f));
            }
            pass
        };
        if &pass.blob != d {
            return Err(fail(
                Kind::Digest,
                format!(
                    "layer blob {d}: digest mismatch: the registry sent content with digest {}",
                    pass.blob
                ),
            ));
        }
        check_size(job, pass.blob_size, session)?;
        progress.report(Event::Layer {
            id: &job.short,
            state: LayerState::VerifyingChecksum,
        });
        progress.report(Event::Layer {
            id: &job.short,
            state: LayerState::DownloadComplete,
        });
        let diff = pass.diff?;
        if diff.diff_id != job.diff_id {
            return Err(fail(
                Kind::Digest,
                format!(
                    "layer {d}: diff_id mismatch: the image config says {}, the content has {}",
                    job.diff_id, diff.diff_id
                ),
            ));
        }
        if !job.have_blob {
            store.adopt_blob(&blob_tmp, d)?;
        }
        store.adopt_snapshot(&layer_dir, &job.chain)?;
        diff.unpacked.size
    };
    progress.report(Event::Layer {
        id: &job.short,
        state: LayerState::PullComplete,
    });
    Ok(size)
}

fn check_size(job: &Job, got: u64, session: &Session) -> Result<()> {
    if job.desc.size != 0 && got != job.desc.size {
        return Err(session.error(Failure::new(
            Kind::Protocol,
            format!(
                "layer blob {}: {got} bytes, but the manifest says {}",
                job.desc.digest, job.desc.size
            ),
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policies_parse_like_docker() {
        assert_eq!(
            "missing".parse::<PullPolicy>().unwrap(),
            PullPolicy::Missing
        );
        assert_eq!("always".parse::<PullPolicy>().unwrap(), PullPolicy::Always);
        assert_eq!("never".parse::<PullPolicy>().unwrap(), PullPolicy::Never);
        let e = "sometimes".parse::<PullPolicy>().unwrap_err().to_string();
        assert!(e.contains("invalid pull option: 'sometimes'"), "{e}");
    }
}
