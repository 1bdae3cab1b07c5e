//! Lifecycle tests: create, start, state, run, kill, delete and their errors.

mod common;

use common::{Bundle, Runtime};

#[test]
fn run_returns_the_exit_status() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.sh("echo hello; exit 7");
    let id = rt.id("exit");
    let (code, out, err) = rt.run(&b, &id);
    assert_eq!(code, 7, "stderr: {err}");
    assert_eq!(out, "hello\n");
    // run deletes the container afterwards
    assert!(rt.fails(&["state", &id]).contains("does not exist"));
}

#[test]
fn create_start_state_delete() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&["sleep", "100"]);
    let id = rt.id("life");
    rt.create(&b, &id);
    let st = rt.state(&id);
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], id.as_str());
    assert_eq!(st["bundle"], b.path_str().as_str());
    let pid = st["pid"].as_i64().unwrap();
    assert!(pid > 0);
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    // delete of a created (not stopped) container is refused without --force
    assert!(rt.fails(&["delete", &id]).contains("must be stopped"));
    rt.ok(&["start", &id]);
    assert_eq!(rt.status(&id), "running");
    // start of a running container is refused and changes nothing
    assert!(
        rt.fails(&["start", &id])
            .contains("only a created container")
    );
    assert_eq!(rt.status(&id), "running");
    rt.ok(&["kill", &id, "KILL"]);
    rt.wait_status(&id, "stopped");
    rt.ok(&["delete", &id]);
    assert!(rt.fails(&["state", &id]).contains("does not exist"));
}

#[test]
fn missing_executable_fails_create_and_leaves_nothing() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&["/no/such/program"]);
    let id = rt.id("noexe");
    let (ok, _, err) = rt.detached(&["create", "--bundle", &b.path_str(), &id]);
    assert!(!ok);
    assert!(err.contains("/no/such/program"), "{err}");
    assert!(!rt.root().join(&id).exists());
}

#[test]
fn duplicate_id_is_refused() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&["sleep", "100"]);
    let id = rt.id("dup");
    rt.create(&b, &id);
    let (ok, _, err) = rt.detached(&["create", "--bundle", &b.path_str(), &id]);
    assert!(!ok && err.contains("already exists"), "{err}");
    assert_eq!(rt.status(&id), "created");
}
