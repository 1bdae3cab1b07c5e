//! Terminals: the pty master sent over `--console-socket` (create, exec),
//! `run` relaying the pty to its own terminal, and the errors around them.

mod common;
#[path = "common/inspect.rs"]
mod inspect;

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;

use common::{Bundle, Runtime};
use serde_json::json;

/// A bundle whose process has a terminal of `rows` x `cols` and runs `script`.
fn tty_bundle(script: &str, rows: u32, cols: u32) -> Bundle {
    let mut b = Bundle::busybox();
    b.sh(script).edit(|c| {
        c["process"]["terminal"] = json!(true);
        c["process"]["consoleSize"] = json!({"height": rows, "width": cols});
    });
    b
}

/// Reads a pty master until the other side is closed (EIO).
fn read_until_closed(master: OwnedFd) -> String {
    let mut f = std::fs::File::from(master);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = f.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).replace("\r\n", "\n")
}

/// Accepts one connection on `listener` and receives the pty master from it.
fn receive_master(listener: &UnixListener) -> (OwnedFd, String) {
    let (conn, _) = listener.accept().unwrap();
    capsa_runtime::console::recv_fd(conn.as_raw_fd()).unwrap()
}

#[test]
fn create_sends_the_pty_master_over_the_console_socket() {
    require_root!();
    if inspect::skip_without_devpts() {
        return;
    }
    let rt = Runtime::new();
    let b = tty_bundle("tty; stty size; echo $TERM", 30, 100);
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let id = rt.id("console");
    let (ok, _, err) = rt.detached(&[
        "create",
        "--console-socket",
        &sock.display().to_string(),
        "--bundle",
        &b.path_str(),
        &id,
    ]);
    assert!(ok, "{err}");
    let (master, name) = receive_master(&listener);
    assert!(name.starts_with("/dev/pts/"), "{name}");
    rt.ok(&["start", &id]);
    let out = read_until_closed(master);
    assert_eq!(out, "/dev/pts/0\n30 100\nxterm\n");
}

#[test]
fn console_sockets_longer_than_a_socket_address_work_for_create_and_exec() {
    require_root!();
    if inspect::skip_without_devpts() {
        return;
    }
    let rt = Runtime::new();
    let b = tty_bundle("echo created; sleep 1000", 24, 80);
    let dir = tempfile::tempdir().unwrap();
    let sock = common::long_dir(dir.path(), 150).join("console.sock");
    let listener = common::listen_at(&sock);
    let id = rt.id("longconsole");
    let sock = sock.display().to_string();
    let (ok, _, err) = rt.detached(&[
        "create",
        "--console-socket",
        &sock,
        "--bundle",
        &b.path_str(),
        &id,
    ]);
    assert!(ok, "{err}");
    let (master, name) = receive_master(&listener);
    assert!(name.starts_with("/dev/pts/"), "{name}");
    rt.ok(&["start", &id]);
    let (ok, _, err) = rt.detached(&[
        "exec",
        "-d",
        "-t",
        "--console-socket",
        &sock,
        &id,
        "echo",
        "exec-done",
    ]);
    assert!(ok, "{err}");
    let (exec_master, _) = receive_master(&listener);
    assert_eq!(read_until_closed(exec_master), "exec-done\n");
    rt.ok(&["kill", &id, "KILL"]);
    assert!(read_until_closed(master).starts_with("created\n"));
}

#[test]
fn exec_sends_the_pty_master_over_the_console_socket() {
    require_root!();
    if inspect::skip_without_devpts() {
        return;
    }
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&["sleep", "1000"]);
    let id = rt.id("execconsole");
    inspect::start(&rt, &b, &id);
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let (ok, _, err) = rt.detached(&[
        "exec",
        "-d",
        "-t",
        "--console-socket",
        &sock.display().to_string(),
        &id,
        "sh",
        "-c",
        "tty; echo done",
    ]);
    assert!(ok, "{err}");
    let (master, _) = receive_master(&listener);
    let out = read_until_closed(master);
    assert!(out.starts_with("/dev/pts/"), "{out}");
    assert!(out.ends_with("done\n"), "{out}");
}

#[test]
fn run_relays_the_pty_to_its_own_terminal() {
    require_root!();
    if inspect::skip_without_devpts() {
        return;
    }
    let rt = Runtime::new();
    let b = tty_bundle("tty; read line; echo got $line; exit 5", 24, 80);
    let pty = nix::pty::openpty(None, None).unwrap();
    let slave = std::fs::File::from(pty.slave);
    let id = rt.id("runtty");
    let mut child = rt
        .cmd(&["run", "--bundle", &b.path_str(), &id])
        .stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave)
        .spawn()
        .unwrap();
    let mut master = std::fs::File::from(pty.master);
    use std::io::Write;
    master.write_all(b"hello\n").unwrap();
    let status = child.wait().unwrap();
    let out = read_until_closed(OwnedFd::from(master));
    assert_eq!(status.code(), Some(5), "{out}");
    assert!(out.contains("/dev/pts/0"), "{out}");
    assert!(out.contains("got hello"), "{out}");
}

#[test]
fn terminal_and_console_socket_must_agree() {
    require_root!();
    let rt = Runtime::new();
    let b = tty_bundle("true", 24, 80);
    let id = rt.id("nosock");
    let (ok, _, err) = rt.detached(&["create", "--bundle", &b.path_str(), &id]);
    assert!(!ok);
    assert!(err.contains("--console-socket is required"), "{err}");
    assert!(!rt.root().join(&id).exists());

    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("console.sock");
    let _listener = UnixListener::bind(&sock).unwrap();
    let plain = Bundle::busybox();
    let (ok, _, err) = rt.detached(&[
        "create",
        "--console-socket",
        &sock.display().to_string(),
        "--bundle",
        &plain.path_str(),
        &id,
    ]);
    assert!(!ok);
    assert!(err.contains("process.terminal is false"), "{err}");

    let missing = dir.path().join("missing.sock").display().to_string();
    let (ok, _, err) = rt.detached(&[
        "create",
        "--console-socket",
        &missing,
        "--bundle",
        &b.path_str(),
        &id,
    ]);
    assert!(!ok);
    assert!(err.contains(&missing), "{err}");
    assert!(!rt.root().join(&id).exists());

    let (ok, _, err) = rt.detached(&["run", "-d", "--bundle", &b.path_str(), &id]);
    assert!(!ok);
    assert!(err.contains("--console-socket"), "{err}");
}
