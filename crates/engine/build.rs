//! Compiles capsa's monitor and init (`crates/monitor`) into a static
//! program without a C library, which the `capsa` binary embeds and writes
//! out once per store (see `src/monitor_bin.rs`).
//!
//! Cargo cannot give one binary of a workspace its own codegen flags
//! (static linking, no start files, panic=abort), so the program is built
//! here with the same `rustc` cargo uses; it has no dependencies. The
//! library form of the crate is built, linted and tested by cargo as usual.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let src = manifest.join("../monitor/src");
    for entry in std::fs::read_dir(&src).expect("crates/monitor/src") {
        println!(
            "cargo:rerun-if-changed={}",
            entry.expect("readdir").path().display()
        );
    }
    println!("cargo:rerun-if-changed={}", src.display());
    let out =
        PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo")).join("capsa-monitor");
    let target = std::env::var("TARGET").expect("set by cargo");
    if !target.starts_with("x86_64-") || !target.contains("linux") {
        panic!("capsa-monitor is built for x86_64 Linux only, not {target}");
    }
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let result = Command::new(rustc)
        .args([
            "--edition",
            "2024",
            "--crate-type",
            "bin",
            "--crate-name",
            "capsa_monitor",
        ])
        .args(["--target", &target, "--cfg", "capsa_monitor_bin"])
        .args([
            "-C",
            "opt-level=s",
            "-C",
            "panic=abort",
            "-C",
            "codegen-units=1",
        ])
        .args([
            "-C",
            "lto=fat",
            "-C",
            "strip=symbols",
            "-C",
            "relocation-model=static",
        ])
        .args(["-C", "link-arg=-nostartfiles", "-C", "link-arg=-nostdlib"])
        .args(["-C", "link-arg=-static", "-C", "link-arg=-Wl,--gc-sections"])
        .args(["-D", "warnings"])
        .arg(src.join("lib.rs"))
        .arg("-o")
        .arg(&out)
        .output()
        .expect("running rustc for capsa-monitor");
    if !result.status.success() {
        panic!(
            "building capsa-monitor failed:\n{}",
            String::from_utf8_lossy(&result.stderr)
        );
    }
    // A content hash names the program written out at run time.
    let bytes = std::fs::read(&out).expect("reading the built capsa-monitor");
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= b as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    println!("cargo:rustc-env=CAPSA_MONITOR_HASH={hash:016x}");
}
