//! The commands on a container's files: `cp`, `diff`, `commit`, `export`.
//!
//! Paths in a container are resolved inside its root (symlinks included,
//! openat2 RESOLVE_IN_ROOT), through `/proc/PID/root` while it runs (its
//! volumes and mounts are seen) and its root filesystem otherwise; a running
//! container is frozen while files are copied, so that nothing in it can
//! swap a directory for a symlink half-way (CVE-2018-15664). Files written
//! into a container are created relative to directories opened there,
//! never following a symlink.

use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, anyhow, bail};
use clap::Args;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};

use crate::container::lifecycle::{self, alive};
use crate::container::runtime::Runtime;
use crate::container::{Container, Status, spec};
use crate::ctx::Ctx;
use crate::events;

/// Flags of `cp`.
#[derive(Args)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short, long)]
    archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long)]
    follow_link: bool,
    /// Suppress progress output during copy
    #[arg(short, long)]
    quiet: bool,
    /// CONTAINER:SRC_PATH or SRC_PATH or - (a tar on stdin)
    src: String,
    /// CONTAINER:DEST_PATH or DEST_PATH or - (a tar on stdout)
    dest: String,
}

/// Flags of `diff`.
#[derive(Args)]
pub struct DiffArgs {
    /// The container
    container: String,
}

/// Flags of `commit`.
#[derive(Args)]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short, long, value_name = "string")]
    author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short, long, value_name = "list")]
    change: Vec<String>,
    /// Commit message
    #[arg(short, long, value_name = "string")]
    message: Option<String>,
    /// Pause container during commit
    #[arg(short, long, value_name = "bool", num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set, default_value = "true")]
    pause: bool,
    /// The container
    container: String,
    /// REPOSITORY[:TAG]
    reference: Option<String>,
}

/// Flags of `export`.
#[derive(Args)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short, long, value_name = "string")]
    output: Option<PathBuf>,
    /// The container
    container: String,
}

/// The paths the runtime makes in a container's writable layer as mount
/// points (Docker keeps them in its "init" layer): not the user's changes.
fn mount_points(c: &Container) -> Vec<String> {
    let mut v: Vec<String> = [
        "/proc",
        "/sys",
        "/dev",
        "/etc/hosts",
        "/etc/hostname",
        "/etc/resolv.conf",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if c.settings.host_config.init == Some(true) {
        v.push(spec::INIT_PATH.into());
    }
    v.extend(c.settings.mounts.iter().map(|m| m.destination.clone()));
    v
}

/// Freezes a running container while alive (thawed when dropped).
struct Frozen<'a> {
    rt: Option<(Runtime, &'a str)>,
}

impl<'a> Frozen<'a> {
    fn new(ctx: &Ctx, c: &'a Container) -> Result<Frozen<'a>> {
        if c.state.status == Status::Running && alive(c.state.pid, c.state.pid_start) {
            let rt = Runtime::of(ctx, &c.settings.host_config.runtime)?;
            rt.pause(&c.id)?;
            return Ok(Frozen {
                rt: Some((rt, &c.id)),
            });
        }
        Ok(Frozen { rt: None })
    }
}

impl Drop for Frozen<'_> {
    fn drop(&mut self) {
        if let Some((rt, id)) = &self.rt {
            let _ = rt.resume(id);
        }
    }
}

/// The directory that is a container's `/` now: its init's root while it
/// runs, else its root filesystem (mounted again if needed).
fn container_root(ctx: &Ctx, c: &Container) -> Result<PathBuf> {
    if matches!(c.state.status, Status::Running | Status::Paused)
        && alive(c.state.pid, c.state.pid_start)
    {
        return Ok(PathBuf::from(format!("/proc/{}/root", c.state.pid)));
    }
    let merged = ctx.store.rootfs_dir(&c.id).join("merged");
    if !lifecycle::is_mountpoint(&merged) {
        ctx.store.remount_rootfs(&c.id)?;
    }
    Ok(merged)
}

/// Opens `path` inside `root` (O_PATH), symlinks resolved as if `root`
/// were `/`; with `nofollow`, a final symlink is opened itself.
fn open_in(root: &Path, path: &str, nofollow: bool) -> nix::Result<OwnedFd> {
    let r = nix::fcntl::open(
        root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    let mut flags = OFlag::O_PATH | OFlag::O_CLOEXEC;
    if nofollow {
        flags |= OFlag::O_NOFOLLOW;
    }
    let how = OpenHow::new()
        .flags(flags)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let rel = path.trim_start_matches('/');
    openat2(&r, if rel.is_empty() { "." } else { rel }, how)
}

/// Finds `path` in the container root `root`: its directory is resolved
/// inside the root, and the last component taken as it is there (a
/// symlink stays a symlink) unless `follow`, when symlinks are followed
/// inside the root too. Returns a descriptor to keep open and a path that
/// names the entry through it.
fn resolve_source(root: &Path, path: &str, follow: bool) -> nix::Result<(OwnedFd, PathBuf)> {
    let mut p = path.trim_end_matches('/').to_string();
    for _ in 0..40 {
        let (parent, leaf) = match p.rsplit_once('/') {
            Some((parent, leaf)) if !leaf.is_empty() && leaf != "." && leaf != ".." => (
                if parent.is_empty() {
                    "/".to_string()
                } else {
                    parent.to_string()
                },
                leaf.to_string(),
            ),
            // The root, or a path ending in . or ..: a directory, opened whole.
            _ => {
                let fd = open_in(root, if p.is_empty() { "/" } else { &p }, false)?;
                let dir = fd_path(&fd).join(".");
                return Ok((fd, dir));
            }
        };
        let fd = open_in(root, &parent, false)?;
        let entry = fd_path(&fd).join(&leaf);
        let m = std::fs::symlink_metadata(&entry)
            .map_err(|e| nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
        if follow && m.file_type().is_symlink() {
            let target = std::fs::read_link(&entry)
                .map_err(|e| nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
            let t = target.to_string_lossy();
            p = if t.starts_with('/') {
                t.trim_end_matches('/').to_string()
            } else {
                format!("{parent}/{t}")
            };
            continue;
        }
        return Ok((fd, entry));
    }
    Err(nix::errno::Errno::ELOOP)
}

fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Splits `CONTAINER:PATH`; `None` for a local path (one with a `/` before any `:`).
fn split_spec(s: &str) -> Option<(&str, &str)> {
    if s.starts_with('/') || s.starts_with('.') || s == "-" {
        return None;
    }
    let (c, p) = s.split_once(':')?;
    (!c.is_empty() && !c.contains('/')).then_some((c, p))
}

fn base_name(p: &str) -> &str {
    let t = p.trim_end_matches('/');
    let t = t.strip_suffix("/.").unwrap_or(t);
    t.rsplit('/').next().unwrap_or(t)
}

/// `cp`.
pub fn cp(ctx: &Ctx, a: CpArgs) -> Result<ExitCode> {
    let _ = a.quiet;
    match (split_spec(&a.src), split_spec(&a.dest)) {
        (Some(_), Some(_)) => bail!("copying between containers is not supported"),
        (None, None) => bail!("must specify at least one container source"),
        (Some((name, path)), None) => {
            let c = ctx.find_container(name)?;
            copy_out(ctx, &c, path, &a.dest, a.archive, a.follow_link)?;
        }
        (None, Some((name, path))) => {
            let c = ctx.find_container(name)?;
            copy_in(ctx, &c, &a.src, path, a.archive, a.follow_link)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A path in the container as `cp` names it, made absolute (relative paths
/// are from the container's root); `what` names the argument in the error.
fn container_path(p: &str, what: &str) -> Result<String> {
    if p.is_empty() {
        bail!("{what} path must not be empty");
    }
    Ok(if p.starts_with('/') {
        p.to_string()
    } else {
        format!("/{p}")
    })
}

/// Container → host (or a tar on stdout for `-`).
fn copy_out(
    ctx: &Ctx,
    c: &Container,
    src: &str,
    dest: &str,
    archive: bool,
    follow: bool,
) -> Result<()> {
    let src_abs = container_path(src, "source")?;
    let _frozen = Frozen::new(ctx, c)?;
    let root = container_root(ctx, c)?;
    let not_found = |e: nix::errno::Errno| match e {
        nix::errno::Errno::ENOENT => {
            anyhow!("Could not find the file {src_abs} in container {}", c.name)
        }
        e => anyhow!("{src_abs} in container {}: {e}", c.name),
    };
    let (_fd, from) = resolve_source(
        &root,
        &src_abs,
        follow || src.ends_with('/') || src.ends_with("/."),
    )
    .map_err(not_found)?;
    let meta = std::fs::symlink_metadata(&from).context("stat")?;
    let is_dir = meta.is_dir();
    if src.ends_with('/') && !is_dir {
        bail!("{src}: not a directory");
    }
    let contents_only = src.ends_with("/.");
    events::container(ctx, c, "archive-path", &[("path", src_abs.clone())]);
    if dest == "-" {
        let out = io::stdout().lock();
        let mut b = tar::Builder::new(io::BufWriter::new(out));
        b.follow_symlinks(false);
        let opts = capsa_images::export::TreeOptions {
            exclude: &|_| false,
            owner: None,
        };
        if contents_only {
            for e in std::fs::read_dir(&from)? {
                let e = e?;
                capsa_images::export::append_path(
                    &mut b,
                    &e.path(),
                    &e.file_name().to_string_lossy(),
                    &opts,
                )?;
            }
        } else {
            capsa_images::export::append_path(&mut b, &from, base_name(&src_abs), &opts)?;
        }
        b.into_inner()?.flush()?;
        return Ok(());
    }
    let dest_path = Path::new(dest);
    let dest_meta = std::fs::metadata(dest_path).ok();
    let owner = (!archive).then(|| {
        (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        )
    });
    let target: PathBuf = match (&dest_meta, is_dir) {
        (Some(m), _) if m.is_dir() => {
            if contents_only {
                dest_path.to_path_buf()
            } else {
                dest_path.join(base_name(&src_abs))
            }
        }
        (Some(_), true) => bail!("cannot copy a directory to a file: {dest}"),
        (Some(_), false) => dest_path.to_path_buf(),
        (None, _) => {
            if dest.ends_with('/') {
                bail!("destination directory {dest} must exist");
            }
            let parent = dest_path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            if !parent.is_dir() {
                bail!("destination directory {} does not exist", parent.display());
            }
            dest_path.to_path_buf()
        }
    };
    copy_host(&from, &target, &meta, owner)
}

/// Copies what `from` is (symlinks as symlinks) to the host path `to`,
/// replacing a file there, merging into a directory there.
fn copy_host(
    from: &Path,
    to: &Path,
    meta: &std::fs::Metadata,
    owner: Option<(u32, u32)>,
) -> Result<()> {
    let ft = meta.file_type();
    if ft.is_dir() {
        if !to.is_dir() {
            std::fs::create_dir(to).with_context(|| format!("mkdir {}", to.display()))?;
        }
        for e in std::fs::read_dir(from)? {
            let e = e?;
            let m = std::fs::symlink_metadata(e.path())?;
            copy_host(&e.path(), &to.join(e.file_name()), &m, owner)?;
        }
    } else {
        if std::fs::symlink_metadata(to).is_ok_and(|m| !m.is_dir()) {
            std::fs::remove_file(to).with_context(|| format!("remove {}", to.display()))?;
        }
        if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(from)?, to)
                .with_context(|| format!("symlink {}", to.display()))?;
        } else if ft.is_file() {
            std::fs::copy(from, to).with_context(|| format!("copy to {}", to.display()))?;
        } else {
            crate::volumes::make_node(to, meta)?;
        }
    }
    let (uid, gid) = owner.unwrap_or((meta.uid(), meta.gid()));
    std::os::unix::fs::lchown(to, Some(uid), Some(gid))
        .with_context(|| format!("chown {}", to.display()))?;
    if !ft.is_symlink() {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    }
    Ok(())
}

/// Writes a tar stream (on its own thread).
type TarWriter = Box<dyn FnOnce(&mut dyn Write) -> Result<()> + Send>;

/// Host (or a tar on stdin for `-`) → container.
fn copy_in(
    ctx: &Ctx,
    c: &Container,
    src: &str,
    dest: &str,
    archive: bool,
    follow: bool,
) -> Result<()> {
    let dest_abs = container_path(dest, "destination")?;
    if c.settings.host_config.readonly_rootfs {
        // Docker refuses copying into a read-only root file system.
        let in_volume = c
            .settings
            .mounts
            .iter()
            .any(|m| m.rw && Path::new(&dest_abs).starts_with(&m.destination));
        if !in_volume {
            bail!("container rootfs is marked read-only");
        }
    }
    let _frozen = Frozen::new(ctx, c)?;
    let root = container_root(ctx, c)?;
    let owner = (!archive).then_some((0u64, 0u64));
    let opts = capsa_images::export::TreeOptions {
        exclude: &|_| false,
        owner,
    };
    // What to unpack, into which directory of the container.
    let (dir_fd, tar_data): (OwnedFd, TarWriter) = if src == "-" {
        let fd = open_in(&root, &dest_abs, false)
            .map_err(|e| anyhow!("{dest_abs} in container {}: {e}", c.name))?;
        if !std::fs::metadata(fd_path(&fd)).is_ok_and(|m| m.is_dir()) {
            bail!("destination {dest_abs} must be a directory to extract a tar into");
        }
        (
            fd,
            Box::new(|w: &mut dyn Write| {
                io::copy(&mut io::stdin().lock(), w)?;
                Ok(())
            }),
        )
    } else {
        let src_path = PathBuf::from(src);
        let src_meta = if follow {
            std::fs::metadata(&src_path)
        } else {
            std::fs::symlink_metadata(&src_path)
        }
        .with_context(|| format!("stat {src}"))?;
        let src_is_dir = src_meta.is_dir();
        let contents_only = src.ends_with("/.");
        let existing = open_in(&root, &dest_abs, false).ok();
        let existing_dir = existing
            .as_ref()
            .is_some_and(|fd| std::fs::metadata(fd_path(fd)).is_ok_and(|m| m.is_dir()));
        let (fd, name) = match (existing, existing_dir) {
            (Some(fd), true) => (
                fd,
                if contents_only {
                    String::new()
                } else {
                    base_name(src).to_string()
                },
            ),
            (Some(_), false) if src_is_dir => bail!("cannot copy a directory to a file: {dest}"),
            _ => {
                if dest.ends_with('/') {
                    bail!("destination directory {dest_abs} must exist");
                }
                let (parent, leaf) = dest_abs.rsplit_once('/').unwrap_or(("", &dest_abs));
                let fd = open_in(&root, if parent.is_empty() { "/" } else { parent }, false)
                    .map_err(|_| {
                        anyhow!(
                            "destination directory {parent} does not exist in container {}",
                            c.name
                        )
                    })?;
                (fd, leaf.to_string())
            }
        };
        let opts_owned = owner;
        (
            fd,
            Box::new(move |w: &mut dyn Write| {
                let mut b = tar::Builder::new(w);
                b.follow_symlinks(follow);
                let opts = capsa_images::export::TreeOptions {
                    exclude: &|_| false,
                    owner: opts_owned,
                };
                if name.is_empty() {
                    for e in std::fs::read_dir(&src_path)? {
                        let e = e?;
                        capsa_images::export::append_path(
                            &mut b,
                            &e.path(),
                            &e.file_name().to_string_lossy(),
                            &opts,
                        )?;
                    }
                } else {
                    capsa_images::export::append_path(&mut b, &src_path, &name, &opts)?;
                }
                b.finish()?;
                Ok(())
            }),
        )
    };
    let _ = opts;
    // The tar is made on a thread and unpacked here, relative to the directory opened above.
    let (reader, mut writer) = io::pipe()?;
    let producer = std::thread::spawn(move || -> Result<()> {
        let r = tar_data(&mut writer);
        drop(writer);
        r
    });
    let target = PathBuf::from(format!("/proc/self/fd/{}/.", dir_fd.as_raw_fd()));
    let limits = capsa_images::unpack::Limits::free_space_of(&target)?;
    let unpacked = capsa_images::unpack::unpack("copy", reader, &target, limits);
    let produced = producer
        .join()
        .map_err(|_| anyhow!("the tar writer panicked"))?;
    produced?;
    unpacked?;
    events::container(ctx, c, "extract-to-dir", &[("path", dest_abs)]);
    Ok(())
}

/// The changes of a container's writable layer: (kind, path), kind
/// A (added), C (changed) or D (deleted), sorted by path.
fn changes(ctx: &Ctx, c: &Container) -> Result<Vec<(char, String)>> {
    let upper = ctx.store.rootfs_dir(&c.id).join("upper");
    let lowers: Vec<PathBuf> = ctx
        .store
        .db()
        .layers_of(&c.image)
        .unwrap_or_default()
        .iter()
        .filter_map(|l| capsa_images::Digest::parse(&l.chain_id).ok())
        .map(|d| ctx.store.snapshot_dir(&d).join("fs"))
        .collect();
    let in_lower = |rel: &str| {
        lowers
            .iter()
            .any(|l| std::fs::symlink_metadata(l.join(rel.trim_start_matches('/'))).is_ok())
    };
    let skip = mount_points(c);
    let mut out = Vec::new();
    let mut stack = vec![(upper.clone(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        let rd = match std::fs::read_dir(&dir) {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("read {}", dir.display())),
        };
        for e in rd {
            let e = e?;
            let path = format!("{rel}/{}", e.file_name().to_string_lossy());
            if skip.contains(&path) {
                continue;
            }
            let m = e.metadata()?;
            let ft = m.file_type();
            use std::os::unix::fs::FileTypeExt;
            if ft.is_char_device() && m.rdev() == 0 {
                out.push(('D', path));
                continue;
            }
            out.push((if in_lower(&path) { 'C' } else { 'A' }, path.clone()));
            if ft.is_dir() {
                stack.push((e.path(), path));
            }
        }
    }
    // A directory the runtime only made mount points in is no change.
    out.sort_by(|a, b| a.1.cmp(&b.1));
    let keep: Vec<(char, String)> = out
        .iter()
        .filter(|(k, p)| {
            *k != 'C'
                || !std::fs::symlink_metadata(upper.join(p.trim_start_matches('/')))
                    .is_ok_and(|m| m.is_dir())
                || out.iter().any(|(_, q)| q.starts_with(&format!("{p}/")))
                || !skip.iter().any(|s| s.starts_with(&format!("{p}/")))
        })
        .cloned()
        .collect();
    Ok(keep)
}

/// `diff`.
pub fn diff(ctx: &Ctx, a: DiffArgs) -> Result<ExitCode> {
    let c = ctx.find_container(&a.container)?;
    let mut out = io::stdout().lock();
    for (k, p) in changes(ctx, &c)? {
        writeln!(out, "{k} {p}")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `commit`.
pub fn commit(ctx: &Ctx, a: CommitArgs) -> Result<ExitCode> {
    let (c, _lock) = ctx.lock_found(&a.container)?;
    let reference = a
        .reference
        .as_deref()
        .map(|r| capsa_images::Reference::parse(r).map(capsa_images::Reference::with_default_tag))
        .transpose()?;
    if reference.as_ref().is_some_and(|r| r.digest().is_some()) {
        bail!("refusing to create a tag with a digest reference");
    }
    // The container's config becomes the image's, then the changes apply.
    let cfg = &c.settings.config;
    let mut config: serde_json::Map<String, serde_json::Value> = serde_json::json!({
        "Hostname": "",
        "Domainname": "",
        "User": cfg.user,
        "AttachStdin": false,
        "AttachStdout": false,
        "AttachStderr": false,
        "ExposedPorts": cfg.exposed_ports,
        "Tty": false,
        "OpenStdin": false,
        "StdinOnce": false,
        "Env": cfg.env,
        "Cmd": cfg.cmd,
        "Image": c.image,
        "Volumes": cfg.volumes,
        "WorkingDir": cfg.working_dir,
        "Entrypoint": cfg.entrypoint,
        "OnBuild": serde_json::Value::Null,
        "Labels": cfg.labels,
    })
    .as_object()
    .cloned()
    .unwrap_or_default();
    if let Some(s) = &cfg.stop_signal {
        config.insert("StopSignal".into(), serde_json::json!(s));
    }
    capsa_images::changes::apply(&mut config, &a.change)?;
    let frozen = if a.pause {
        Some(Frozen::new(ctx, &c)?)
    } else {
        None
    };
    let skip = mount_points(&c);
    let exclude = |name: &str| skip.iter().any(|s| s.trim_start_matches('/') == name);
    let upper = ctx.store.rootfs_dir(&c.id).join("upper");
    let created_by = std::iter::once(c.settings.path.clone())
        .chain(c.settings.args.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    let done = capsa_images::commit::commit(
        &ctx.store,
        &c.image,
        &upper,
        &exclude,
        &capsa_images::commit::CommitOptions {
            reference,
            config,
            comment: a.message.clone().unwrap_or_default(),
            author: a.author.clone().unwrap_or_default(),
            created_by,
        },
    )?;
    drop(frozen);
    events::container(ctx, &c, "commit", &[]);
    println!("{}", done.id);
    Ok(ExitCode::SUCCESS)
}

/// `export`.
pub fn export(ctx: &Ctx, a: ExportArgs) -> Result<ExitCode> {
    let c = ctx.find_container(&a.container)?;
    if a.output.is_none() && std::io::IsTerminal::is_terminal(&io::stdout()) {
        bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
    }
    let root = ctx.store.rootfs_dir(&c.id).join("merged");
    if !lifecycle::is_mountpoint(&root) {
        ctx.store.remount_rootfs(&c.id)?;
    }
    let write = |w: &mut dyn Write| -> Result<()> {
        capsa_images::export::export_diff_excluding(&root, w, &|_| false)?;
        Ok(())
    };
    match &a.output {
        None => {
            let mut out = io::BufWriter::with_capacity(1 << 20, io::stdout().lock());
            write(&mut out)?;
            out.flush()?;
        }
        Some(p) => {
            let tmp = p.with_extension("capsa-export.tmp");
            let r = (|| -> Result<()> {
                let f = std::fs::File::create(&tmp)
                    .with_context(|| format!("create {}", tmp.display()))?;
                let mut w = io::BufWriter::with_capacity(1 << 20, f);
                write(&mut w)?;
                w.flush()?;
                std::fs::rename(&tmp, p).with_context(|| format!("rename to {}", p.display()))?;
                Ok(())
            })();
            if r.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            r?;
        }
    }
    events::container(ctx, &c, "export", &[]);
    Ok(ExitCode::SUCCESS)
}
