//! The monitor and init program (`crates/monitor`), built static by the
//! build script and embedded in `capsa`. It is written out once per store
//! as `<root>/bin/capsa-monitor-<hash>` (root's, read and execute only):
//! every monitor runs that one file, so their code pages are shared, and
//! `run --init` bind-mounts it read-only into the container.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

const PROGRAM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/capsa-monitor"));
const HASH: &str = env!("CAPSA_MONITOR_HASH");

/// The program's path under the store root `root`, written out if missing.
pub fn path(root: &Path) -> Result<PathBuf> {
    let dir = root.join("bin");
    let p = dir.join(format!("capsa-monitor-{HASH}"));
    if std::fs::metadata(&p).is_ok_and(|m| m.len() == PROGRAM.len() as u64) {
        return Ok(p);
    }
    crate::ctx::mkdir_mode(&dir, 0o711)?;
    let tmp = dir.join(format!(".capsa-monitor-{HASH}.{}", std::process::id()));
    let written = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o500)
            .open(&tmp)?;
        f.write_all(PROGRAM)?;
        f.sync_all()?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o555))?;
        std::fs::rename(&tmp, &p)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.with_context(|| format!("writing {}", p.display()))?;
    Ok(p)
}
