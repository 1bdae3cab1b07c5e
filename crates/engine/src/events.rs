//! The event log: one JSON object per line in `<root>/events.log`, in
//! the shape of Docker's events API, appended by every command that
//! changes a container, volume or image (one `write` with O_APPEND each,
//! so concurrent writers never interleave). `capsa events` reads and
//! follows it. When it passes [`MAX_SIZE`] it is moved to `events.log.1`.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::container::{Container, now_ns};
use crate::ctx::Ctx;

/// Size at which the log is rotated.
pub const MAX_SIZE: u64 = 4 << 20;

/// The event log of the store at `root`.
pub fn log_path(root: &Path) -> PathBuf {
    root.join("events.log")
}

/// Appends an event; failures to record it never fail the command.
pub fn emit(ctx: &Ctx, kind: &str, action: &str, id: &str, attrs: BTreeMap<String, String>) {
    write(&ctx.events_path(), kind, action, id, attrs);
}

/// Appends an event to the log at `path`.
fn write(path: &Path, kind: &str, action: &str, id: &str, attrs: BTreeMap<String, String>) {
    let ns = now_ns();
    let mut v = json!({
        "Type": kind,
        "Action": action,
        "Actor": {"ID": id, "Attributes": attrs},
        "scope": "local",
        "time": ns / 1_000_000_000,
        "timeNano": ns,
    });
    // Docker's deprecated fields of container and image events (omitted
    // when empty).
    if kind == "container" || kind == "image" {
        v["status"] = json!(action);
        if !id.is_empty() {
            v["id"] = json!(id);
        }
    }
    if kind == "container"
        && let Some(img) = v["Actor"]["Attributes"].get("image").cloned()
    {
        v["from"] = img;
    }
    let mut line = serde_json::to_vec(&v).unwrap_or_default();
    line.push(b'\n');
    if std::fs::metadata(path).is_ok_and(|m| m.len() > MAX_SIZE) {
        let _ = std::fs::rename(path, path.with_extension("log.1"));
    }
    let _ = append(path, &line);
}

fn append(path: &Path, line: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(line)
}

/// A container event with Docker's attributes: image, name, the labels,
/// and `extra` (exitCode, signal, ...).
pub fn container(ctx: &Ctx, c: &Container, action: &str, extra: &[(&str, String)]) {
    let mut attrs: BTreeMap<String, String> = c.settings.config.labels.clone();
    attrs.insert("image".into(), c.settings.config.image.clone());
    attrs.insert("name".into(), c.name.clone());
    for (k, v) in extra {
        attrs.insert(k.to_string(), v.clone());
    }
    emit(ctx, "container", action, &c.id, attrs);
}

/// A volume event.
pub fn volume(ctx: &Ctx, name: &str, action: &str, extra: &[(&str, String)]) {
    let mut attrs = BTreeMap::new();
    attrs.insert("driver".to_string(), "local".to_string());
    for (k, v) in extra {
        attrs.insert(k.to_string(), v.clone());
    }
    emit(ctx, "volume", action, name, attrs);
}

/// An image event of the store at `root`, as Docker logs it: the actor is
/// the image ID (the reference for pull and push), its attributes the
/// image's labels and `name`.
pub fn image(root: &Path, action: &str, id: &str, name: &str, labels: BTreeMap<String, String>) {
    let mut attrs = labels;
    if !name.is_empty() {
        attrs.insert("name".into(), name.to_string());
    }
    write(&log_path(root), "image", action, id, attrs);
}

/// The event of a prune of `kind` (container, volume, image) in the store
/// at `root`: no actor, the bytes reclaimed.
pub fn prune(root: &Path, kind: &str, reclaimed: u64) {
    let attrs = BTreeMap::from([("reclaimed".to_string(), reclaimed.to_string())]);
    write(&log_path(root), kind, "prune", "", attrs);
}

/// The events of the rotated log (`events.log.1`), oldest first; bad lines
/// are skipped. The current log is read by following it from its start.
pub fn read_rotated(ctx: &Ctx) -> Vec<Value> {
    std::fs::read_to_string(ctx.events_path().with_extension("log.1"))
        .map(|text| {
            text.lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect()
        })
        .unwrap_or_default()
}
