//! The OCI runtime a container uses: capsa's own, in-process (the
//! default, `--runtime capsa`), or any runc-compatible binary
//! (`--runtime runc|crun|youki|runsc|kata|PATH`) driven by runc's command line.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, Result, bail};

use crate::ctx::Ctx;

/// The name of the in-process runtime.
pub const BUILTIN: &str = "capsa";

/// A container's runtime.
pub enum Runtime {
    /// capsa's runtime library, in this process.
    Builtin(capsa_runtime::Runtime),
    /// A runc-compatible binary and the state root given to it.
    External {
        /// The binary.
        bin: PathBuf,
        /// Its `--root`.
        root: PathBuf,
    },
}

/// What a runtime holds of a container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Held {
    /// Nothing.
    Nothing,
    /// A complete record: its delete removes everything.
    Recorded,
    /// Some state, maybe what a create killed before it recorded its
    /// cgroups left.
    Unknown,
}

/// The binary a `--runtime` name stands for: a path, or a name found in PATH
/// (`kata` is `kata-runtime`).
pub fn resolve_binary(name: &str) -> Result<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        if !is_executable(&p) {
            bail!("runtime {name}: not an executable file");
        }
        return Ok(p);
    }
    let bin = match name {
        "kata" => "kata-runtime",
        other => other,
    };
    let path = std::env::var_os("PATH")
        .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin".into());
    for dir in
        std::env::split_paths(&path).chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
    {
        let p = dir.join(bin);
        if is_executable(&p) {
            return Ok(p);
        }
    }
    bail!("unknown or invalid runtime name: {name} ({bin} is not in PATH)")
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

impl Runtime {
    /// The runtime named in a container's settings.
    pub fn of(ctx: &Ctx, name: &str) -> Result<Runtime> {
        if name.is_empty() || name == BUILTIN {
            return Ok(Runtime::Builtin(ctx.runtime()));
        }
        let bin = resolve_binary(name)?;
        let label = bin
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "runtime".into());
        Ok(Runtime::External {
            bin,
            root: ctx.runtime_root(&label),
        })
    }

    /// A runc-style command of the external runtime.
    pub fn command(bin: &Path, root: &Path) -> Command {
        let mut c = Command::new(bin);
        c.arg("--root").arg(root);
        c
    }

    fn run_external(bin: &Path, root: &Path, args: &[&str]) -> Result<String> {
        let out = Self::command(bin, root)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {}", bin.display()))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            bail!("{} {}: {}", bin.display(), args.join(" "), err.trim());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// What the runtime holds of container `id`.
    pub fn held(&self, id: &str) -> Held {
        match self {
            Runtime::Builtin(rt) => match rt.info(id) {
                Ok(_) => Held::Recorded,
                Err(capsa_runtime::Error::NotFound(_)) => Held::Nothing,
                Err(_) => Held::Unknown,
            },
            // Another runtime's files are not ours to read.
            Runtime::External { root, .. } if root.join(id).exists() => Held::Unknown,
            Runtime::External { .. } => Held::Nothing,
        }
    }

    /// Sends signal `sig` to the container's init (or, with `all`, every process).
    pub fn kill(&self, id: &str, sig: i32, all: bool) -> Result<()> {
        match self {
            Runtime::Builtin(rt) => Ok(rt.kill(id, sig, all)?),
            Runtime::External { bin, root } => {
                let s = sig.to_string();
                let mut args = vec!["kill"];
                if all {
                    args.push("--all");
                }
                args.extend([id, s.as_str()]);
                Self::run_external(bin, root, &args).map(drop)
            }
        }
    }

    /// Deletes the runtime's container (killing what is left first); a
    /// container the runtime does not know is not an error.
    pub fn delete(&self, id: &str) -> Result<()> {
        match self {
            Runtime::Builtin(rt) => match rt.delete(id, true) {
                Ok(()) | Err(capsa_runtime::Error::NotFound(_)) => Ok(()),
                Err(e) => Err(e.into()),
            },
            Runtime::External { bin, root } => {
                match Self::run_external(bin, root, &["delete", "--force", id]) {
                    Ok(_) => Ok(()),
                    Err(e)
                        if e.to_string().contains("does not exist")
                            || e.to_string().contains("not found") =>
                    {
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// Freezes the container.
    pub fn pause(&self, id: &str) -> Result<()> {
        match self {
            Runtime::Builtin(rt) => Ok(rt.pause(id)?),
            Runtime::External { bin, root } => {
                Self::run_external(bin, root, &["pause", id]).map(drop)
            }
        }
    }

    /// Thaws the container.
    pub fn resume(&self, id: &str) -> Result<()> {
        match self {
            Runtime::Builtin(rt) => Ok(rt.resume(id)?),
            Runtime::External { bin, root } => {
                Self::run_external(bin, root, &["resume", id]).map(drop)
            }
        }
    }

    /// Changes the container's resource limits.
    pub fn update(&self, id: &str, resources: &oci_spec::runtime::LinuxResources) -> Result<()> {
        match self {
            Runtime::Builtin(rt) => Ok(rt.update(id, resources)?),
            Runtime::External { bin, root } => {
                let json = serde_json::to_vec(resources)?;
                let mut child = Self::command(bin, root)
                    .args(["update", "--resources", "-", id])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .with_context(|| format!("running {}", bin.display()))?;
                std::io::Write::write_all(&mut child.stdin.take().expect("piped"), &json)?;
                let out = child.wait_with_output()?;
                if !out.status.success() {
                    bail!(
                        "{} update: {}",
                        bin.display(),
                        String::from_utf8_lossy(&out.stderr).trim()
                    );
                }
                Ok(())
            }
        }
    }
}
