//! Records the git commit for `capsa-runtime --version`.

use std::process::Command;

fn main() {
    if let Ok(out) = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        && out.status.success()
    {
        let commit = String::from_utf8_lossy(&out.stdout).trim().to_string();
        println!("cargo:rustc-env=CAPSA_COMMIT={commit}");
    }
    // Where HEAD and its log are (in a worktree, .git is a file naming the
    // real directory): a path that does not exist would rebuild every time.
    let paths = Command::new("git")
        .args(["rev-parse", "--git-path", "HEAD", "--git-path", "logs/HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_else(|| vec!["../../.git/HEAD".into(), "../../.git/logs/HEAD".into()]);
    for p in paths {
        println!("cargo:rerun-if-changed={p}");
    }
}
