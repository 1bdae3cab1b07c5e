//! An image config turned into an OCI runtime config (image-spec
//! conversion.md): process arguments, environment, working directory and
//! user (names resolved in the image's /etc/passwd and /etc/group), with
//! exposed ports, stop signal and labels as annotations and volumes listed
//! for the engine to mount.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use oci_spec::image::ImageConfiguration;
use oci_spec::runtime::{Process, Root, Spec, User};

use crate::error::{Error, Result};

/// The PATH of containers whose image sets none (Docker's default).
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Annotation holding the image's stop signal.
pub const ANNOTATION_STOP_SIGNAL: &str = "org.opencontainers.image.stopSignal";
/// Annotation holding the image's exposed ports, comma-separated.
pub const ANNOTATION_EXPOSED_PORTS: &str = "org.opencontainers.image.exposedPorts";

/// The runtime config of a container made from an image, and what the
/// engine needs beyond it.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// The OCI runtime config (oci-spec defaults, with the image's process).
    pub spec: Spec,
    /// Volumes the image declares (paths inside the container), sorted.
    pub volumes: Vec<String>,
    /// Exposed ports, `80/tcp`, sorted.
    pub exposed_ports: Vec<String>,
    /// The signal that stops the container (`SIGTERM` by default).
    pub stop_signal: String,
    /// The image's labels.
    pub labels: BTreeMap<String, String>,
}

/// A user resolved against the image's files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedUser {
    /// The user id.
    pub uid: u32,
    /// The primary group id.
    pub gid: u32,
    /// Supplementary groups listing the user in /etc/group.
    pub additional_gids: Vec<u32>,
    /// The home directory from /etc/passwd (`/` when unknown).
    pub home: String,
}

/// Converts an image config for a container whose root filesystem is
/// mounted at `rootfs`.
pub fn runtime_config(config: &ImageConfiguration, rootfs: &Path) -> Result<RuntimeConfig> {
    let c = config.config().clone().unwrap_or_default();
    let mut args: Vec<String> = c.entrypoint().clone().unwrap_or_default();
    args.extend(c.cmd().clone().unwrap_or_default());
    if args.is_empty() {
        return Err(Error::image(
            "config",
            "no command specified (the image has neither Entrypoint nor Cmd)",
        ));
    }
    let cwd = c
        .working_dir()
        .clone()
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into());
    if !cwd.starts_with('/') {
        return Err(Error::image(
            "config",
            format!("WorkingDir {cwd:?} is not an absolute path"),
        ));
    }
    let user = resolve_user(rootfs, c.user().as_deref().unwrap_or(""))?;
    let mut env: Vec<String> = c.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.to_string());
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", user.home));
    }
    let mut exposed_ports = c.exposed_ports().clone().unwrap_or_default();
    exposed_ports.sort();
    let mut volumes = c.volumes().clone().unwrap_or_default();
    volumes.sort();
    let stop_signal = c
        .stop_signal()
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "SIGTERM".into());
    let labels: BTreeMap<String, String> =
        c.labels().clone().unwrap_or_default().into_iter().collect();

    let mut spec = Spec::default();
    let mut process = spec.process().clone().unwrap_or_else(Process::default);
    process.set_args(Some(args));
    process.set_env(Some(env));
    process.set_cwd(cwd.into());
    process.set_terminal(Some(false));
    let mut u = User::default();
    u.set_uid(user.uid);
    u.set_gid(user.gid);
    u.set_additional_gids((!user.additional_gids.is_empty()).then(|| user.additional_gids.clone()));
    process.set_user(u);
    spec.set_process(Some(process));
    let mut root = Root::default();
    root.set_path(rootfs.to_path_buf());
    root.set_readonly(Some(false));
    spec.set_root(Some(root));
    let mut annotations: std::collections::HashMap<String, String> =
        labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    annotations.insert(ANNOTATION_STOP_SIGNAL.into(), stop_signal.clone());
    if !exposed_ports.is_empty() {
        annotations.insert(ANNOTATION_EXPOSED_PORTS.into(), exposed_ports.join(","));
    }
    spec.set_annotations(Some(annotations));
    Ok(RuntimeConfig {
        spec,
        volumes,
        exposed_ports,
        stop_signal,
        labels,
    })
}

/// Reads a small file of the rootfs, resolving symlinks as if `rootfs` were
/// `/` (openat2 RESOLVE_IN_ROOT); `None` when it does not exist.
fn read_in_root(rootfs: &Path, rel: &str) -> Result<Option<String>> {
    let root = nix::fcntl::open(
        rootfs,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| Error::sys("open", rootfs.display().to_string(), e))?;
    let fd = match openat2(
        &root,
        rel,
        OpenHow::new()
            .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS),
    ) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ENOENT) => return Ok(None),
        Err(e) => {
            return Err(Error::sys(
                "openat2",
                format!("{}/{rel}", rootfs.display()),
                e,
            ));
        }
    };
    let mut s = String::new();
    std::fs::File::from(fd)
        .take(16 << 20)
        .read_to_string(&mut s)
        .map_err(|e| Error::io("read", rootfs.join(rel), e))?;
    Ok(Some(s))
}

/// Resolves Docker's `USER` (`name`, `uid`, `name:group`, `uid:gid`) against
/// the rootfs's /etc/passwd and /etc/group, as runc's libcontainer does.
pub fn resolve_user(rootfs: &Path, spec: &str) -> Result<ResolvedUser> {
    let passwd = read_in_root(rootfs, "etc/passwd")?.unwrap_or_default();
    let group = read_in_root(rootfs, "etc/group")?.unwrap_or_default();
    resolve_user_in(&passwd, &group, spec)
}

fn resolve_user_in(passwd: &str, group: &str, spec: &str) -> Result<ResolvedUser> {
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let users: Vec<Vec<&str>> = passwd
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 4)
        .collect();
    let groups: Vec<Vec<&str>> = group
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 3)
        .collect();
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    let numeric = user_part.parse::<u32>().ok();
    let entry = users.iter().find(|f| match numeric {
        Some(n) => f[2].parse::<u32>().ok() == Some(n),
        None => f[0] == user_part,
    });
    let (uid, mut gid, home, name) = match (entry, numeric) {
        (Some(f), _) => (
            f[2].parse::<u32>().map_err(|_| {
                Error::image("config", format!("bad uid in /etc/passwd for {}", f[0]))
            })?,
            f[3].parse::<u32>().map_err(|_| {
                Error::image("config", format!("bad gid in /etc/passwd for {}", f[0]))
            })?,
            f.get(5)
                .copied()
                .filter(|h| !h.is_empty())
                .unwrap_or("/")
                .to_string(),
            Some(f[0]),
        ),
        (None, Some(n)) => (n, 0, "/".to_string(), None),
        (None, None) => {
            return Err(Error::image(
                "config",
                format!("unable to find user {user_part}: no matching entries in passwd file"),
            ));
        }
    };
    let mut additional_gids = Vec::new();
    match group_part {
        Some(g) if !g.is_empty() => {
            gid = match g.parse::<u32>() {
                Ok(n) => n,
                Err(_) => groups
                    .iter()
                    .find(|f| f[0] == g)
                    .and_then(|f| f[2].parse().ok())
                    .ok_or_else(|| {
                        Error::image(
                            "config",
                            format!("unable to find group {g}: no matching entries in group file"),
                        )
                    })?,
            };
        }
        _ => {
            if let Some(name) = name {
                for f in &groups {
                    let members = f.get(3).copied().unwrap_or("");
                    if members.split(',').any(|m| m.trim() == name)
                        && let Ok(g) = f[2].parse::<u32>()
                        && !additional_gids.contains(&g)
                    {
                        additional_gids.push(g);
                    }
                }
            }
        }
    }
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nwheel:x:10:user,other\nuser:x:1000:\naudio:x:29:user\n";

    #[test]
    fn resolves_users_like_runc() {
        let r = |s| resolve_user_in(PASSWD, GROUP, s);
        assert_eq!(r("").unwrap().uid, 0);
        assert_eq!(r("").unwrap().home, "/root");
        let u = r("user").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 1000));
        assert_eq!(u.additional_gids, vec![10, 29]);
        assert_eq!(u.home, "/home/user");
        let u = r("1000:wheel").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 10));
        assert!(u.additional_gids.is_empty());
        let u = r("4242").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (4242, 0, "/"));
        assert_eq!(r("4242:77").unwrap().gid, 77);
        assert!(r("nobody").is_err());
        assert!(r("user:nogroup").is_err());
    }
}
