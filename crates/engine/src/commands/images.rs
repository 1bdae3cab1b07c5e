//! The image commands: `images`/`image ls`, `image inspect`, `history`,
//! `load`, `save`, `import`, `tag`, `rmi`, `image prune`, with Docker's
//! flags, output columns and messages.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use serde::Serialize;
use serde_json::{Map, Value, json};

use capsa_images::db::ImageRow;
use capsa_images::import::ImportOptions;
use capsa_images::manifest::MAX_DOCUMENT;
use capsa_images::store::Removed;
use capsa_images::{Digest, Reference, Store};

use super::{open_store, parse_filters};
use crate::format::{Format, go_escape};
use crate::units;

const NONE: &str = "<none>";

/// Flags of `capsa images` / `capsa image ls`.
#[derive(Args)]
pub struct ImagesArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short, long)]
    all: bool,
    /// Show digests
    #[arg(long)]
    digests: bool,
    /// Filter output based on conditions provided
    #[arg(short, long = "filter", value_name = "filter")]
    filter: Vec<String>,
    /// Format output using a custom template: 'table', 'table TEMPLATE',
    /// 'json', or a Go template
    #[arg(long, value_name = "string")]
    format: Option<String>,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Only show image IDs
    #[arg(short, long)]
    quiet: bool,
    /// Only images of this repository (and tag)
    #[arg(value_name = "REPOSITORY[:TAG]")]
    reference: Option<String>,
}

/// Flags of `capsa image inspect`.
#[derive(Args)]
pub struct InspectArgs {
    /// Format output using a custom template ('json' or a Go template)
    #[arg(short, long, value_name = "string")]
    format: Option<String>,
    /// Images to inspect
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<String>,
}

/// Flags of `capsa history`.
#[derive(Args)]
pub struct HistoryArgs {
    /// Format output using a custom template
    #[arg(long, value_name = "string")]
    format: Option<String>,
    /// Print sizes and dates in human readable format
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    human: bool,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Only show image IDs
    #[arg(short, long)]
    quiet: bool,
    /// The image
    #[arg(value_name = "IMAGE")]
    image: String,
}

/// Flags of `capsa load`.
#[derive(Args)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short, long, value_name = "string")]
    input: Option<PathBuf>,
    /// Suppress the load output
    #[arg(short, long)]
    quiet: bool,
}

/// Flags of `capsa save`.
#[derive(Args)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short, long, value_name = "string")]
    output: Option<PathBuf>,
    /// Images to save
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<String>,
}

/// Flags of `capsa import`.
#[derive(Args)]
pub struct ImportArgs {
    /// Apply Dockerfile instruction to the created image
    #[arg(short, long, value_name = "list")]
    change: Vec<String>,
    /// Set commit message for imported image
    #[arg(short, long, value_name = "string")]
    message: Option<String>,
    /// The root filesystem tar (plain, gzip or zstd), or - for STDIN
    #[arg(value_name = "file|-")]
    source: String,
    /// The name to give the image
    #[arg(value_name = "REPOSITORY[:TAG]")]
    reference: Option<String>,
}

/// Flags of `capsa tag`.
#[derive(Args)]
pub struct TagArgs {
    /// The existing image
    #[arg(value_name = "SOURCE_IMAGE[:TAG]")]
    source: String,
    /// The new reference
    #[arg(value_name = "TARGET_IMAGE[:TAG]")]
    target: String,
}

/// Flags of `capsa rmi`.
#[derive(Args)]
pub struct RmiArgs {
    /// Force removal of the image
    #[arg(short, long)]
    force: bool,
    /// Images to remove
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<String>,
}

/// Flags of `capsa image prune`.
#[derive(Args)]
pub struct PruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short, long)]
    all: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter", value_name = "filter")]
    filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
}

/// The config blob of an image as JSON.
pub(crate) fn config_json(store: &Store, id: &str) -> Result<Value> {
    let d = Digest::parse(id)?;
    let bytes = store.read_blob(&d, MAX_DOCUMENT)?;
    serde_json::from_slice(&bytes).with_context(|| format!("image config {id}"))
}

pub(crate) fn short_id(id: &str, trunc: bool) -> String {
    if trunc {
        id.strip_prefix("sha256:")
            .unwrap_or(id)
            .chars()
            .take(12)
            .collect()
    } else {
        id.to_string()
    }
}

/// Go's path.Match: `*` and `?` do not match '/', `[...]` classes.
pub(crate) fn glob(pattern: &str, name: &str) -> bool {
    fn m(p: &[char], s: &[char]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some('*') => (0..=s.len())
                .take_while(|i| *i == 0 || s[i - 1] != '/')
                .any(|i| m(&p[1..], &s[i..])),
            Some('?') => !s.is_empty() && s[0] != '/' && m(&p[1..], &s[1..]),
            Some('[') => {
                let Some(end) = p.iter().position(|c| *c == ']') else {
                    return false;
                };
                let Some(&c) = s.first() else { return false };
                let class = &p[1..end];
                let (neg, class) = match class.first() {
                    Some('^') => (true, &class[1..]),
                    _ => (false, class),
                };
                let mut hit = false;
                let mut i = 0;
                while i < class.len() {
                    if i + 2 < class.len() && class[i + 1] == '-' {
                        hit |= class[i] <= c && c <= class[i + 2];
                        i += 3;
                    } else {
                        hit |= class[i] == c;
                        i += 1;
                    }
                }
                hit != neg && m(&p[end + 1..], &s[1..])
            }
            Some('\\') if p.len() > 1 => s.first() == Some(&p[1]) && m(&p[2..], &s[1..]),
            Some(c) => s.first() == Some(c) && m(&p[1..], &s[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = name.chars().collect();
    m(&p, &s)
}

/// `label=KEY` / `label=KEY=VALUE` against an image's labels.
pub(crate) fn label_matches(labels: &Map<String, Value>, filter: &str) -> bool {
    match filter.split_once('=') {
        Some((k, v)) => labels.get(k).and_then(Value::as_str) == Some(v),
        None => labels.contains_key(filter),
    }
}

fn labels_of(config: &Value) -> Map<String, Value> {
    config
        .get("config")
        .and_then(|c| c.get("Labels"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// Logs an image event as Docker does: `actor` is the image id (the
/// reference for pull and push), with the image's labels while it exists
/// and `name`.
pub(crate) fn image_event(store: &Store, action: &str, actor: &str, name: &str) {
    let labels = store
        .resolve(actor)
        .ok()
        .and_then(|img| config_json(store, &img.id).ok())
        .map(|cfg| {
            labels_of(&cfg)
                .into_iter()
                .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    crate::events::image(store.root(), action, actor, name, labels);
}

/// The events of removing image `id`: an untag per reference removed and
/// the delete of the image (deleted layers are no events).
fn removal_events(store: &Store, id: &str, removed: &[Removed]) {
    for r in removed {
        match r {
            Removed::Untagged(_) => image_event(store, "untag", id, id),
            Removed::Deleted(d) if d == id => image_event(store, "delete", id, id),
            Removed::Deleted(_) => {}
        }
    }
}

/// One image with its references, for listings.
struct Listed {
    row: ImageRow,
    tags: Vec<Reference>,
    digests: Vec<Reference>,
}

fn list_images(store: &Store) -> Result<Vec<Listed>> {
    let mut out = Vec::new();
    for row in store.db().images()? {
        let parse = |v: Vec<String>| v.iter().filter_map(|t| Reference::parse(t).ok()).collect();
        out.push(Listed {
            tags: parse(store.db().tags_of(&row.id)?),
            digests: parse(store.db().repo_digests_of(&row.id)?),
            row,
        });
    }
    // Newest first, as the Docker API returns them.
    out.sort_by(|a, b| (b.row.created_unix, &b.row.id).cmp(&(a.row.created_unix, &a.row.id)));
    Ok(out)
}

/// `capsa images`.
pub fn images(root: &Path, a: ImagesArgs) -> Result<ExitCode> {
    let store = open_store(root)?;
    let mut filters = parse_filters(
        &a.filter,
        &["dangling", "label", "before", "since", "reference", "until"],
    )?;
    if let Some(r) = &a.reference {
        filters.push(("reference".into(), r.clone()));
    }
    let mut listed = list_images(&store)?;
    // Both flags are accepted as Docker does: with no build cache there are
    // no intermediate images to hide, so -a changes nothing.
    let _ = a.all;
    let mut before = None;
    let mut since = None;
    for (k, v) in &filters {
        match k.as_str() {
            "dangling" if v != "true" && v != "false" => {
                bail!("invalid filter 'dangling={v}': use true or false")
            }
            "before" => before = Some(store.resolve(v)?.created_unix),
            "since" => since = Some(store.resolve(v)?.created_unix),
            "until" if units::parse_timestamp(v).is_none() => {
                bail!("invalid filter 'until={v}': not a timestamp or duration")
            }
            _ => {}
        }
    }
    let refs: Vec<&String> = filters
        .iter()
        .filter(|(k, _)| k == "reference")
        .map(|(_, v)| v)
        .collect();
    let labels: Vec<&String> = filters
        .iter()
        .filter(|(k, _)| k == "label")
        .map(|(_, v)| v)
        .collect();
    let mut keep = Vec::new();
    for mut l in listed.drain(..) {
        let mut ok = true;
        for (k, v) in &filters {
            ok &= match k.as_str() {
                "dangling" => (v == "true") == l.tags.is_empty(),
                "until" => units::parse_timestamp(v).is_some_and(|t| l.row.created_unix < t),
                _ => true,
            };
        }
        if let Some(b) = before {
            ok &= l.row.created_unix < b;
        }
        if let Some(s) = since {
            ok &= l.row.created_unix > s;
        }
        if ok && !labels.is_empty() {
            let cl = labels_of(&config_json(&store, &l.row.id)?);
            ok &= labels.iter().all(|f| label_matches(&cl, f));
        }
        if ok && !refs.is_empty() {
            l.tags.retain(|t| {
                refs.iter()
                    .any(|p| glob(p, &t.familiar()) || glob(p, &t.familiar_name()))
            });
            l.digests.retain(|t| {
                refs.iter()
                    .any(|p| glob(p, &t.familiar()) || glob(p, &t.familiar_name()))
            });
            ok &= !l.tags.is_empty() || !l.digests.is_empty();
        }
        if ok {
            keep.push(l);
        }
    }
    let trunc = !a.no_trunc;
    let mut rows = Vec::new();
    for l in &keep {
        let base = |repo: &str, tag: &str, digest: &str| {
            let size = units::human_size_with_precision(l.row.size as f64, 3);
            json!({
                "Containers": "N/A",
                "CreatedAt": units::go_time_string(l.row.created_unix),
                "CreatedSince": units::since(l.row.created_unix),
                "Digest": digest,
                "ID": short_id(&l.row.id, trunc),
                "Repository": repo,
                "SharedSize": "N/A",
                "Size": size,
                "Tag": tag,
                "UniqueSize": "N/A",
                "VirtualSize": size,
            })
        };
        if l.tags.is_empty() && l.digests.is_empty() {
            rows.push(base(NONE, NONE, NONE));
            continue;
        }
        let mut by_repo: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
        for t in &l.tags {
            by_repo
                .entry(t.familiar_name())
                .or_default()
                .0
                .push(t.tag().unwrap_or(NONE).to_string());
        }
        for d in &l.digests {
            if let Some(dg) = d.digest() {
                by_repo
                    .entry(d.familiar_name())
                    .or_default()
                    .1
                    .push(dg.to_string());
            }
        }
        for (repo, (tags, digests)) in by_repo {
            if tags.is_empty() {
                if a.digests {
                    for d in &digests {
                        rows.push(base(&repo, NONE, d));
                    }
                } else {
                    rows.push(base(&repo, NONE, NONE));
                }
                continue;
            }
            for t in &tags {
                if a.digests && !digests.is_empty() {
                    for d in &digests {
                        rows.push(base(&repo, t, d));
                    }
                } else {
                    rows.push(base(&repo, t, digests.first().map_or(NONE, |d| d.as_str())));
                }
            }
        }
    }
    let fmt = match a.format.as_deref() {
        None | Some("") | Some("table") if a.quiet => "{{.ID}}".to_string(),
        None | Some("") | Some("table") if a.digests => {
            "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
                .into()
        }
        None | Some("") | Some("table") => {
            "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}".into()
        }
        Some(f) => f.to_string(),
    };
    let out = Format::parse(&fmt)?.render(
        &rows,
        &[
            ("ID", "IMAGE ID"),
            ("Repository", "REPOSITORY"),
            ("Tag", "TAG"),
            ("Digest", "DIGEST"),
            ("CreatedSince", "CREATED"),
            ("CreatedAt", "CREATED AT"),
            ("Size", "SIZE"),
            ("Containers", "CONTAINERS"),
            ("VirtualSize", "SIZE"),
            ("SharedSize", "SHARED SIZE"),
            ("UniqueSize", "UNIQUE SIZE"),
        ],
    )?;
    io::stdout().write_all(out.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// Docker's `container.Config` as `image inspect` shows it.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct InspectConfig {
    hostname: String,
    domainname: String,
    user: String,
    attach_stdin: bool,
    attach_stdout: bool,
    attach_stderr: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    exposed_ports: Option<Value>,
    tty: bool,
    open_stdin: bool,
    stdin_once: bool,
    env: Value,
    cmd: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    healthcheck: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    args_escaped: Option<Value>,
    image: String,
    volumes: Value,
    working_dir: String,
    entrypoint: Value,
    on_build: Value,
    labels: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_signal: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shell: Option<Value>,
}

/// Docker's image inspect document.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct InspectImage {
    id: String,
    repo_tags: Vec<String>,
    repo_digests: Vec<String>,
    parent: String,
    comment: String,
    created: String,
    docker_version: String,
    author: String,
    config: InspectConfig,
    architecture: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<String>,
    os: String,
    #[serde(skip_serializing_if = "Option::is_none", rename = "OsVersion")]
    os_version: Option<String>,
    size: i64,
    graph_driver: Value,
    #[serde(rename = "RootFS")]
    root_fs: Value,
    metadata: Value,
}

pub(crate) fn inspect_doc(store: &Store, row: &ImageRow) -> Result<InspectImage> {
    let cfg = config_json(store, &row.id)?;
    let c = cfg.get("config").cloned().unwrap_or(Value::Null);
    let s = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let b = |k: &str| c.get(k).and_then(Value::as_bool).unwrap_or(false);
    let raw = |k: &str| c.get(k).cloned().unwrap_or(Value::Null);
    let opt = |k: &str| c.get(k).filter(|v| !v.is_null()).cloned();
    let (tags, digests) = store.references_of(&row.id)?;
    let layers = store.db().layers_of(&row.id)?;
    let lower: Vec<String> = layers
        .iter()
        .rev()
        .filter_map(|l| Digest::parse(&l.chain_id).ok())
        .map(|d| store.snapshot_dir(&d).join("fs").display().to_string())
        .collect();
    let last_tag: Option<i64> = store
        .db()
        .rows(
            "SELECT max(tagged_unix) FROM tags WHERE image = ?1",
            [&row.id],
            |r| r.get::<_, Option<i64>>(0),
        )?
        .into_iter()
        .flatten()
        .next();
    Ok(InspectImage {
        id: row.id.clone(),
        repo_tags: tags,
        repo_digests: digests,
        parent: String::new(),
        comment: s(&cfg, "comment"),
        created: row.created.clone(),
        docker_version: s(&cfg, "docker_version"),
        author: s(&cfg, "author"),
        config: InspectConfig {
            hostname: s(&c, "Hostname"),
            domainname: s(&c, "Domainname"),
            user: s(&c, "User"),
            attach_stdin: b("AttachStdin"),
            attach_stdout: b("AttachStdout"),
            attach_stderr: b("AttachStderr"),
            exposed_ports: opt("ExposedPorts"),
            tty: b("Tty"),
            open_stdin: b("OpenStdin"),
            stdin_once: b("StdinOnce"),
            env: raw("Env"),
            cmd: raw("Cmd"),
            healthcheck: opt("Healthcheck"),
            args_escaped: opt("ArgsEscaped"),
            image: s(&c, "Image"),
            volumes: raw("Volumes"),
            working_dir: s(&c, "WorkingDir"),
            entrypoint: raw("Entrypoint"),
            on_build: raw("OnBuild"),
            labels: raw("Labels"),
            stop_signal: opt("StopSignal"),
            shell: opt("Shell"),
        },
        architecture: s(&cfg, "architecture"),
        variant: cfg
            .get("variant")
            .and_then(Value::as_str)
            .map(str::to_string),
        os: s(&cfg, "os"),
        os_version: cfg
            .get("os.version")
            .and_then(Value::as_str)
            .map(str::to_string),
        size: row.size,
        graph_driver: json!({
            "Data": {"LowerDir": lower.join(":")},
            "Name": "overlay",
        }),
        root_fs: json!({
            "Type": "layers",
            "Layers": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>(),
        }),
        metadata: json!({
            "LastTagTime": match last_tag {
                Some(t) => capsa_images::time::format_rfc3339(t, 0),
                None => "0001-01-01T00:00:00Z".into(),
            }
        }),
    })
}

/// JSON indented with four spaces and Go's escaping, as `docker inspect`.
pub(crate) fn indented_json(v: &impl Serialize) -> Result<String> {
    let mut buf = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(
        &mut buf,
        serde_json::ser::PrettyFormatter::with_indent(b"    "),
    );
    v.serialize(&mut ser)?;
    Ok(go_escape(&String::from_utf8(buf)?))
}

/// `capsa image inspect`.
pub fn inspect(root: &Path, a: InspectArgs) -> Result<ExitCode> {
    let store = open_store(root)?;
    let format = a.format.as_deref().map(Format::parse).transpose()?;
    let mut docs = Vec::new();
    let mut errors = Vec::new();
    for name in &a.images {
        match store
            .resolve(name)
            .map_err(anyhow::Error::from)
            .and_then(|r| inspect_doc(&store, &r))
        {
            Ok(d) => docs.push(d),
            Err(e) => errors.push(e),
        }
    }
    let mut out = io::stdout().lock();
    match &format {
        None => writeln!(out, "{}", indented_json(&docs)?)?,
        Some(f) => {
            let values = docs
                .iter()
                .map(serde_json::to_value)
                .collect::<Result<Vec<_>, _>>()?;
            out.write_all(f.render_loose(&values)?.as_bytes())?;
        }
    }
    for e in &errors {
        super::print_error(e);
    }
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `capsa history`.
pub fn history(root: &Path, a: HistoryArgs) -> Result<ExitCode> {
    let store = open_store(root)?;
    let row = store.resolve(&a.image)?;
    let cfg = config_json(&store, &row.id)?;
    let layers = store.db().layers_of(&row.id)?;
    let entries = cfg
        .get("history")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut sizes = layers.iter().map(|l| l.size);
    let mut rows = Vec::new();
    for h in &entries {
        let empty = h
            .get("empty_layer")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let size = if empty { 0 } else { sizes.next().unwrap_or(0) };
        let created = h
            .get("created")
            .and_then(Value::as_str)
            .and_then(capsa_images::time::parse_rfc3339)
            .unwrap_or(0);
        rows.push((created, h.clone(), size));
    }
    rows.reverse();
    let trunc = !a.no_trunc;
    let values: Vec<Value> = rows
        .iter()
        .enumerate()
        .map(|(i, (created, h, size))| {
            let created_by = h
                .get("created_by")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .replace('\t', " ");
            let created_by = if trunc && created_by.chars().count() > 45 {
                format!("{}…", created_by.chars().take(44).collect::<String>())
            } else {
                created_by
            };
            let at = units::go_rfc3339(*created);
            json!({
                "ID": if i == 0 { short_id(&row.id, trunc) } else { "<missing>".into() },
                "CreatedAt": at,
                "CreatedSince": if a.human { units::since(*created) } else { at.clone() },
                "CreatedBy": created_by,
                "Size": if a.human { units::human_size_with_precision(*size as f64, 3) } else { size.to_string() },
                "Comment": h.get("comment").and_then(Value::as_str).unwrap_or_default(),
            })
        })
        .collect();
    let fmt = match a.format.as_deref() {
        None | Some("") | Some("table") if a.quiet => "{{.ID}}".to_string(),
        None | Some("") | Some("table") => {
            "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}".into()
        }
        Some(f) => f.to_string(),
    };
    let out = Format::parse(&fmt)?.render(
        &values,
        &[
            ("ID", "IMAGE"),
            ("CreatedSince", "CREATED"),
            ("CreatedAt", "CREATED AT"),
            ("CreatedBy", "CREATED BY"),
            ("Size", "SIZE"),
            ("Comment", "COMMENT"),
        ],
    )?;
    io::stdout().write_all(out.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// `capsa load`.
pub fn load(root: &Path, a: LoadArgs) -> Result<ExitCode> {
    let store = open_store(root)?;
    let input: Box<dyn Read> = match &a.input {
        Some(p) => Box::new(File::open(p).with_context(|| format!("open {}", p.display()))?),
        None => {
            if io::stdin().is_terminal() {
                bail!("requested load from stdin, but stdin is empty");
            }
            Box::new(io::stdin().lock())
        }
    };
    let done = capsa_images::load::load(&store, input)?;
    let mut out = io::stdout().lock();
    for c in done {
        let id = c.id.to_string();
        image_event(&store, "load", &id, &id);
        if c.tags.is_empty() {
            writeln!(out, "Loaded image ID: {}", c.id)?;
        }
        for (t, old) in &c.tags {
            if let Some(old) = old {
                writeln!(
                    out,
                    "The image {} already exists, renaming the old one with ID {old} to empty string",
                    t.familiar()
                )?;
            }
            writeln!(out, "Loaded image: {}", t.familiar())?;
        }
    }
    // -q only drops progress output, which capsa does not print.
    let _ = a.quiet;
    Ok(ExitCode::SUCCESS)
}

/// `capsa save`.
pub fn save(root: &Path, a: SaveArgs) -> Result<ExitCode> {
    let store = open_store(root)?;
    let mut saved: Vec<String> = a
        .images
        .iter()
        .filter_map(|n| store.resolve(n).ok().map(|img| img.id))
        .collect();
    saved.dedup();
    match &a.output {
        None => {
            if io::stdout().is_terminal() {
                bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
            }
            let out = io::BufWriter::with_capacity(1 << 20, io::stdout().lock());
            capsa_images::save::save(&store, &a.images, out)?;
        }
        Some(path) => {
            // Written beside the target, then renamed: never a half archive.
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let name = path
                .file_name()
                .ok_or_else(|| anyhow!("invalid output path {}", path.display()))?;
            let tmp = dir.join(format!(
                ".{}.capsa-{}",
                name.to_string_lossy(),
                std::process::id()
            ));
            let r = (|| -> Result<()> {
                let f = File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
                capsa_images::save::save(
                    &store,
                    &a.images,
                    io::BufWriter::with_capacity(1 << 20, &f),
                )?;
                f.sync_all()?;
                std::fs::rename(&tmp, path)
                    .with_context(|| format!("rename to {}", path.display()))?;
                Ok(())
            })();
            if r.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            r?;
        }
    }
    for id in &saved {
        image_event(&store, "save", id, id);
    }
    Ok(ExitCode::SUCCESS)
}

/// `capsa import`.
pub fn import(root: &Path, a: ImportArgs) -> Result<ExitCode> {
    if a.source.contains("://") {
        bail!("importing from a URL is not supported; download the file and import it");
    }
    let reference = a
        .reference
        .as_deref()
        .map(|r| Reference::parse(r).map(Reference::with_default_tag))
        .transpose()?;
    if reference.as_ref().is_some_and(|r| r.digest().is_some()) {
        bail!("refusing to create a tag with a digest reference");
    }
    let opts = ImportOptions {
        source: a.source.clone(),
        reference,
        changes: a.change.clone(),
        message: a.message.clone(),
    };
    // Refuse bad --change before reading anything.
    capsa_images::import::config_from_changes(&opts.changes)?;
    let store = open_store(root)?;
    let input: Box<dyn Read> = if a.source == "-" {
        Box::new(io::stdin().lock())
    } else {
        Box::new(File::open(&a.source).with_context(|| format!("open {}", a.source))?)
    };
    let c = capsa_images::import::import(&store, input, &opts)?;
    let id = c.id.to_string();
    image_event(&store, "import", &id, &id);
    println!("{}", c.id);
    Ok(ExitCode::SUCCESS)
}

/// `capsa tag`.
pub fn tag(root: &Path, a: TagArgs) -> Result<ExitCode> {
    let store = open_store(root)?;
    let target = store.tag(&a.source, &a.target)?;
    if let Ok(img) = store.resolve(&target.to_string()) {
        image_event(&store, "tag", &img.id, &target.familiar());
    }
    Ok(ExitCode::SUCCESS)
}

fn print_removed(out: &mut impl Write, removed: &[Removed], prefix_case: bool) -> Result<()> {
    for r in removed {
        match (r, prefix_case) {
            (Removed::Untagged(t), true) => writeln!(out, "Untagged: {t}")?,
            (Removed::Deleted(d), true) => writeln!(out, "Deleted: {d}")?,
            (Removed::Untagged(t), false) => writeln!(out, "untagged: {t}")?,
            (Removed::Deleted(d), false) => writeln!(out, "deleted: {d}")?,
        }
    }
    Ok(())
}

/// `capsa rmi`.
pub fn rmi(root: &Path, a: RmiArgs) -> Result<ExitCode> {
    let store = open_store(root)?;
    let _lock = store.lock_exclusive()?;
    let mut failed = false;
    let mut out = io::stdout().lock();
    for name in &a.images {
        let id = store.resolve(name).map(|img| img.id).unwrap_or_default();
        match store.remove(name, a.force) {
            Ok(removed) => {
                removal_events(&store, &id, &removed);
                print_removed(&mut out, &removed, true)?
            }
            Err(e) => {
                failed = true;
                out.flush()?;
                super::print_error(&e.into());
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `capsa image prune`.
pub fn prune(root: &Path, a: PruneArgs) -> Result<ExitCode> {
    let filters = parse_filters(&a.filter, &["until", "label", "label!", "dangling"])?;
    super::check_until(&filters)?;
    for (k, v) in &filters {
        if k == "dangling" && v != "true" && v != "false" {
            bail!("invalid filter 'dangling={v}': use true or false");
        }
    }
    let all = a.all || filters.iter().any(|(k, v)| k == "dangling" && v == "false");
    if !a.force {
        let warning = if all {
            "WARNING! This will remove all images without at least one container associated to them."
        } else {
            "WARNING! This will remove all dangling images."
        };
        if !super::confirm(warning)? {
            return Ok(ExitCode::SUCCESS);
        }
    }
    let store = open_store(root)?;
    let (removed, bytes) = prune_images(&store, all, &filters)?;
    let mut out = io::stdout().lock();
    if !removed.is_empty() {
        writeln!(out, "Deleted Images:")?;
        print_removed(&mut out, &removed, false)?;
        writeln!(out)?;
    }
    super::print_reclaimed(&mut out, bytes)?;
    Ok(ExitCode::SUCCESS)
}

/// Deletes the images no container uses (untagged ones only unless `all`)
/// matching `filters` (until, label, label!), then unreferenced layers;
/// returns what was removed and the bytes reclaimed.
pub(crate) fn prune_images(
    store: &Store,
    all: bool,
    filters: &[(String, String)],
) -> Result<(Vec<Removed>, u64)> {
    let _lock = store.lock_exclusive()?;
    let users: HashMap<String, i64> = store.db().rootfs_counts()?.into_iter().collect();
    let mut removed = Vec::new();
    for l in list_images(store)? {
        if users.contains_key(&l.row.id) || (!all && !l.tags.is_empty()) {
            continue;
        }
        let cfg = config_json(store, &l.row.id)?;
        let labels = labels_of(&cfg);
        let ok = filters.iter().all(|(k, v)| match k.as_str() {
            "until" => units::parse_timestamp(v).is_some_and(|t| l.row.created_unix < t),
            "label" => label_matches(&labels, v),
            "label!" => !label_matches(&labels, v),
            _ => true,
        });
        if ok {
            let gone = store.delete_image(&l.row.id)?;
            removal_events(store, &l.row.id, &gone);
            removed.extend(gone);
        }
    }
    let collected = store.collect_garbage()?;
    removed.extend(collected.layers.iter().cloned().map(Removed::Deleted));
    crate::events::prune(store.root(), "image", collected.bytes);
    Ok((removed, collected.bytes))
}

/// Prints removal steps as `rmi` and `image prune` do.
pub(crate) fn print_removals(out: &mut impl Write, removed: &[Removed]) -> Result<()> {
    print_removed(out, removed, false)
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn glob_like_go_path_match() {
        assert!(glob("busy*", "busybox"));
        assert!(glob("busybox:*", "busybox:latest"));
        assert!(!glob("*", "user/app"));
        assert!(glob("*/*", "user/app"));
        assert!(glob("b?sybox", "busybox"));
        assert!(glob("[a-c]usybox", "busybox"));
        assert!(!glob("[^a-c]usybox", "busybox"));
    }
}
