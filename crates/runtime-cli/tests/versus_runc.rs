//! capsa-runtime against runc, the runtime it replaces: every command
//! that containerd, Docker and Podman call, on containers that are missing,
//! created, running, paused and stopped, run by both runtimes (Debian's
//! runc, on this machine) on the same bundle, each with its own `--root`.
//! Exit codes must be equal; standard output equal once ids, pids, times
//! and paths are normalised (structurally where the host's tools or the
//! kernel decide its shape); standard error of the same shape: the same
//! kinds of log records, and the same phrases managers look for in
//! runc's errors (the list below names who matches each).
//!
//! No expectation is written by hand: runc's answer is the expectation.

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Bundle, unique};
use serde_json::Value;

/// Phrases in runc's error messages that managers act on, by what they
/// mean; each group lists alternatives that lead to the same outcome.
/// A message holds a group when it holds any of its phrases (compared
/// without case, as dockerd does).
const MANAGER_PHRASES: &[(&str, &[&str])] = &[
    // containerd's shim (pkg/process: Init.delete, checkKillError) and
    // Podman (UpdateContainerStatus) take it as "already gone".
    ("missing", &["does not exist"]),
    // containerd's checkKillError: the process already finished.
    ("not running", &["container not running", "no such process"]),
    // dockerd (translateContainerdStartErr) turns these into exit 127,
    // Podman into ErrOCIRuntimeNotFound.
    (
        "program not found",
        &["executable file not found", "no such file or directory"],
    ),
    // dockerd: exit 126; Podman: ErrOCIRuntimePermissionDenied.
    (
        "permission denied",
        &["permission denied", "operation not permitted"],
    ),
    // runc's own wording of refusals in a status, shown to users.
    ("exec failed", &["exec failed"]),
    ("not paused", &["container not paused"]),
    (
        "cannot start",
        &[
            "cannot start an already running container",
            "cannot start a container in the paused state",
            "cannot start a container that has stopped",
        ],
    ),
    ("not stopped", &["that is not stopped"]),
    ("exec in paused", &["cannot exec in a paused container"]),
    ("exec in stopped", &["cannot exec in a stopped container"]),
    ("already exists", &["already exists"]),
    ("unknown signal", &["unknown signal"]),
];

/// One runtime under comparison: its binary, its state root and the ids of
/// its containers (deleted with --force at the end, even on failure).
struct Peer {
    name: &'static str,
    bin: PathBuf,
    root: tempfile::TempDir,
    ids: std::cell::RefCell<Vec<String>>,
}

/// What a command gave.
#[derive(Debug)]
struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Peer {
    fn new(name: &'static str, bin: PathBuf) -> Peer {
        Peer {
            name,
            bin,
            root: tempfile::Builder::new()
                .prefix(&format!("vs-runc-{name}-"))
                .tempdir()
                .unwrap(),
            ids: Default::default(),
        }
    }

    fn id(&self, tag: &str) -> String {
        let id = unique(&format!("vr{}-{tag}", &self.name[..1]));
        self.ids.borrow_mut().push(id.clone());
        id
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root").arg(self.root.path()).args(args);
        c
    }

    /// Runs a command whose container may outlive it: every stdio stream
    /// goes to a file (a pipe would stay open in the container).
    fn run(&self, args: &[&str]) -> Outcome {
        let dir = tempfile::tempdir().unwrap();
        let (o, e) = (dir.path().join("out"), dir.path().join("err"));
        let status = self
            .cmd(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&o).unwrap())
            .stderr(std::fs::File::create(&e).unwrap())
            .status()
            .unwrap();
        Outcome {
            code: status.code().unwrap_or(-1),
            stdout: std::fs::read_to_string(o).unwrap(),
            stderr: std::fs::read_to_string(e).unwrap(),
        }
    }

    fn must(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(out.code, 0, "{} {args:?}: {out:?}", self.name);
        out.stdout
    }

    fn state(&self, id: &str) -> Option<Value> {
        let out = self.run(&["state", id]);
        (out.code == 0).then(|| serde_json::from_str(&out.stdout).unwrap())
    }

    fn status(&self, id: &str) -> String {
        self.state(id)
            .map(|s| s["status"].as_str().unwrap_or("?").to_string())
            .unwrap_or_else(|| "missing".into())
    }

    /// Makes container `id` of `bundle` and brings it to `state`.
    fn bring(&self, bundle: &Bundle, id: &str, state: &str) {
        let b = bundle.path_str();
        match state {
            "missing" => {}
            "created" => {
                self.must(&["create", "--bundle", &b, id]);
            }
            "running" => {
                self.must(&["run", "--detach", "--bundle", &b, id]);
            }
            "paused" => {
                self.must(&["run", "--detach", "--bundle", &b, id]);
                self.must(&["pause", id]);
            }
            "stopped" => {
                self.must(&["run", "--detach", "--bundle", &b, id]);
                self.must(&["kill", id, "KILL"]);
                self.wait_status(id, "stopped");
            }
            other => panic!("no state {other}"),
        }
        assert_eq!(
            self.status(id),
            state,
            "{}: {id} did not reach {state}",
            self.name
        );
    }

    /// Waits up to 10 s until `id` reports `want`.
    fn wait_status(&self, id: &str, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.status(id) != want && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The status once it settles (a KILL takes a moment to land).
    fn settled_status(&self, id: &str) -> String {
        let mut last = self.status(id);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            std::thread::sleep(Duration::from_millis(50));
            let now = self.status(id);
            if now == last || Instant::now() > deadline {
                return now;
            }
            last = now;
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        for id in self.ids.borrow().iter() {
            let _ = self
                .cmd(&["delete", "--force", id])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// What of a peer's output is its own: its container's id and pid, its
/// creation time, its root; replaced by placeholders.
struct Subst {
    pairs: Vec<(String, String)>,
    pids: Vec<String>,
}

impl Subst {
    fn of(peer: &Peer, id: &str) -> Subst {
        let mut pairs = vec![
            (peer.root.path().display().to_string(), "<ROOT>".into()),
            (id.to_string(), "<ID>".into()),
        ];
        let mut pids = Vec::new();
        if let Some(s) = peer.state(id) {
            if let Some(t) = s["created"].as_str() {
                pairs.push((t.to_string(), "<TIME>".into()));
            }
            // Each prints the runtime-spec version it follows.
            if let Some(v) = s["ociVersion"].as_str() {
                pairs.push((format!("\"{v}\""), "\"<VERSION>\"".into()));
            }
            if let Some(p) = s["pid"].as_i64().filter(|p| *p != 0) {
                pids.push(p.to_string());
            }
            for p in peer
                .run(&["ps", "--format", "json", id])
                .stdout
                .trim()
                .trim_matches(['[', ']'])
                .split(',')
            {
                if !p.trim().is_empty() && p != "null" {
                    pids.push(p.trim().to_string());
                }
            }
        }
        pairs.sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
        Subst { pairs, pids }
    }

    fn apply(&self, text: &str) -> String {
        let mut t = text.to_string();
        for (from, to) in &self.pairs {
            t = t.replace(from.as_str(), to);
        }
        replace_words(&t, &self.pids, "<PID>")
    }
}

/// Replaces whole runs of digits equal to one of `words`.
fn replace_words(text: &str, words: &[String], with: &str) -> String {
    let mut out = String::new();
    let mut digits = String::new();
    let flush = |digits: &mut String, out: &mut String| {
        if words.iter().any(|w| w == digits) {
            out.push_str(with);
        } else {
            out.push_str(digits);
        }
        digits.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else {
            flush(&mut digits, &mut out);
            out.push(c);
        }
    }
    flush(&mut digits, &mut out);
    out
}

/// The shape of standard error: one entry per line, the level of a log
/// record (`time="…" level=L msg="…"`, runc's logrus text) or "text".
fn stderr_shape(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| match l.split_once(" level=") {
            Some((time, rest)) if time.starts_with("time=\"") => {
                format!("record:{}", rest.split(' ').next().unwrap_or(""))
            }
            _ => "text".to_string(),
        })
        .collect()
}

/// The manager phrase groups a message holds.
fn phrases(stderr: &str) -> Vec<&'static str> {
    let low = stderr.to_lowercase();
    MANAGER_PHRASES
        .iter()
        .filter(|(_, alts)| alts.iter().any(|a| low.contains(&a.to_lowercase())))
        .map(|(name, _)| *name)
        .collect()
}

/// How standard output is compared for a command on a container in `state`.
fn stdout_view(state: &str, args: &[&str], out: &str, subst: &Subst) -> String {
    let text = subst.apply(out);
    let cmd = args[0];
    let json = args.contains(&"json");
    match cmd {
        // The statistics' fields are the kernel's: the keys of the kinds
        // of statistics managers read (cpuset and network_interfaces,
        // which runc adds, are read by none).
        "events" => match serde_json::from_str::<Value>(&text) {
            Ok(v) => {
                let mut keys: Vec<String> = v["data"]
                    .as_object()
                    .map(|o| {
                        o.keys()
                            .filter(|k| !matches!(k.as_str(), "cpuset" | "network_interfaces"))
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default();
                keys.retain(|k| {
                    v["data"][k.as_str()]
                        .as_object()
                        .is_some_and(|o| !o.is_empty())
                });
                keys.sort();
                format!("type={} id={} data={keys:?}", v["type"], v["id"])
            }
            Err(_) => text,
        },
        // The host's ps prints the rows: the header, how many rows, and
        // their last column (the command; a created container's process
        // is still the runtime's: `runc init` or a copy of capsa-runtime).
        "ps" if !json => {
            let mut lines = text.lines();
            let header = lines.next().unwrap_or_default().to_string();
            let cmds: Vec<String> = lines
                .map(|l| match state {
                    "created" => "<RUNTIME>".to_string(),
                    _ => l.split_whitespace().last().unwrap_or("").to_string(),
                })
                .collect();
            format!("{header}\n{cmds:?}")
        }
        // Each runtime's root holds the containers of earlier cases too:
        // only the header and the container in question are compared.
        "list" if json => match serde_json::from_str::<Value>(out) {
            Ok(Value::Array(all)) => {
                let mine: Vec<Value> = all
                    .into_iter()
                    .filter(|c| subst.apply(c["id"].as_str().unwrap_or("")) == "<ID>")
                    .collect();
                subst.apply(&serde_json::to_string(&mine).unwrap())
            }
            _ => text,
        },
        "list" if args.contains(&"-q") => text
            .lines()
            .filter(|l| *l == "<ID>")
            .collect::<Vec<_>>()
            .join("\n"),
        "list" => {
            check_tabwriter_layout(out);
            text.lines()
                .enumerate()
                .filter(|(i, l)| *i == 0 || l.starts_with("<ID> "))
                .map(|(_, l)| l.split_whitespace().collect::<Vec<_>>().join(" "))
                .collect::<Vec<_>>()
                .join("\n")
        }
        _ => text,
    }
}

/// Checks that a table is laid out as Go's tabwriter lays out runc's
/// (minimum cell width 12, padding 3, the last column unpadded).
fn check_tabwriter_layout(out: &str) {
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let n = rows.first().map_or(0, Vec::len);
    let mut width = vec![0; n];
    for r in &rows {
        assert_eq!(r.len(), n, "ragged table:\n{out}");
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.len() + 3).max(12);
        }
    }
    let mut want = String::new();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            if i + 1 == n {
                want.push_str(c);
            } else {
                let _ = write!(want, "{c:<w$}", w = width[i]);
            }
        }
        want.push('\n');
    }
    assert_eq!(out, want, "not tabwriter's layout");
}

/// A difference found, for the report.
struct Diff {
    state: &'static str,
    args: Vec<String>,
    what: String,
}

fn compare(
    diffs: &mut Vec<Diff>,
    state: &'static str,
    args: &[&str],
    (runc, runc_sub): (&Outcome, &Subst),
    (capsa, capsa_sub): (&Outcome, &Subst),
) {
    let mut what = Vec::new();
    if runc.code != capsa.code {
        what.push(format!(
            "exit code: runc {} capsa {}",
            runc.code, capsa.code
        ));
    }
    let (ro, co) = (
        stdout_view(state, args, &runc.stdout, runc_sub),
        stdout_view(state, args, &capsa.stdout, capsa_sub),
    );
    if ro != co {
        what.push(format!("stdout:\n  runc:  {ro:?}\n  capsa: {co:?}"));
    }
    let (rs, cs) = (stderr_shape(&runc.stderr), stderr_shape(&capsa.stderr));
    if rs != cs {
        what.push(format!("stderr shape: runc {rs:?} capsa {cs:?}"));
    }
    let (rp, cp) = (phrases(&runc.stderr), phrases(&capsa.stderr));
    if rp != cp {
        what.push(format!(
            "stderr phrases: runc {rp:?} capsa {cp:?}\n  runc:  {}\n  capsa: {}",
            runc.stderr.trim(),
            capsa.stderr.trim()
        ));
    }
    if !what.is_empty() {
        diffs.push(Diff {
            state,
            args: args.iter().map(|s| s.to_string()).collect(),
            what: what.join("\n"),
        });
    }
}

/// runc, when installed.
fn runc() -> Option<PathBuf> {
    let found = ["/usr/sbin/runc", "/usr/bin/runc"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file());
    if found.is_none() {
        eprintln!("SKIPPED: runc is missing (apt-get install runc)");
    }
    found
}

/// The bundle both runtimes run: a busybox `sleep` (ignoring SIGTERM as
/// the pid 1 of its namespace does), cgroups beneath the caller's own
/// (each runtime's container has its own id, so its own cgroup).
fn sleeper() -> Bundle {
    let mut b = Bundle::busybox();
    b.args(&["sleep", "1000"]);
    b
}

const STATES: [&str; 5] = ["missing", "created", "running", "paused", "stopped"];

/// Commands that leave the container as it is, run one after the other on
/// one container per state (`ID` is replaced by its id, `BUNDLE` by the
/// bundle).
const READ_ONLY: &[&[&str]] = &[
    &["state", "ID"],
    &["list"],
    &["list", "--format", "json"],
    &["list", "-q"],
    &["ps", "--format", "json", "ID"],
    &["ps", "ID"],
    &["events", "--stats", "ID"],
    &["exec", "ID", "echo", "hi"],
    &["exec", "ID", "sh", "-c", "exit 3"],
    &["exec", "ID", "no-such-program"],
    &["kill", "ID", "0"],
    &["kill", "--all", "ID", "0"],
    &["kill", "ID", "FOO"],
    &["kill", "ID", "TERM"],
    &["update", "--pids-limit", "100", "ID"],
    &["update", "--memory", "200m", "ID"],
    &["create", "--bundle", "BUNDLE", "ID"],
    &["run", "--detach", "--bundle", "BUNDLE", "ID"],
];

/// Commands that change the container: each on a fresh one, followed by a
/// comparison of the status it leaves.
const CHANGING: &[&[&str]] = &[
    &["start", "ID"],
    &["kill", "ID"],
    &["kill", "ID", "KILL"],
    &["kill", "ID", "9"],
    &["kill", "ID", "SIGKILL"],
    &["kill", "--all", "ID", "KILL"],
    &["kill", "-a", "ID", "TERM"],
    &["pause", "ID"],
    &["resume", "ID"],
    &["delete", "ID"],
    &["delete", "--force", "ID"],
    &["delete", "-f", "ID"],
];

fn fill<'a>(args: &'a [&'a str], id: &'a str, bundle: &'a str) -> Vec<&'a str> {
    args.iter()
        .map(|a| match *a {
            "ID" => id,
            "BUNDLE" => bundle,
            other => other,
        })
        .collect()
}

fn report(diffs: &[Diff]) -> String {
    let mut out = String::new();
    for d in diffs {
        let _ = writeln!(out, "[{}] {}\n{}\n", d.state, d.args.join(" "), d.what);
    }
    out
}

#[test]
fn every_command_answers_as_runc_does_in_every_status() {
    require_root!();
    let Some(runc_bin) = runc() else { return };
    let bundle = sleeper();
    let b = bundle.path_str();
    let runc = Peer::new("runc", runc_bin);
    let capsa = Peer::new("capsa", PathBuf::from(common::bin()));
    let mut diffs = Vec::new();
    for state in STATES {
        // One container per runtime for the commands that change nothing.
        let (rid, cid) = (runc.id(state), capsa.id(state));
        runc.bring(&bundle, &rid, state);
        capsa.bring(&bundle, &cid, state);
        for args in READ_ONLY {
            let (ra, ca) = (fill(args, &rid, &b), fill(args, &cid, &b));
            let (rs, cs) = (Subst::of(&runc, &rid), Subst::of(&capsa, &cid));
            let (ro, co) = (runc.run(&ra), capsa.run(&ca));
            compare(&mut diffs, state, args, (&ro, &rs), (&co, &cs));
        }
        for args in CHANGING {
            let (rid, cid) = (runc.id(state), capsa.id(state));
            runc.bring(&bundle, &rid, state);
            capsa.bring(&bundle, &cid, state);
            let (rs, cs) = (Subst::of(&runc, &rid), Subst::of(&capsa, &cid));
            let (ra, ca) = (fill(args, &rid, &b), fill(args, &cid, &b));
            let (ro, co) = (runc.run(&ra), capsa.run(&ca));
            compare(&mut diffs, state, args, (&ro, &rs), (&co, &cs));
            let (after_r, after_c) = (runc.settled_status(&rid), capsa.settled_status(&cid));
            if after_r != after_c {
                diffs.push(Diff {
                    state,
                    args: args.iter().map(|s| s.to_string()).collect(),
                    what: format!("status after: runc {after_r} capsa {after_c}"),
                });
            }
        }
    }
    assert!(
        diffs.is_empty(),
        "{} differences from runc:\n\n{}",
        diffs.len(),
        report(&diffs)
    );
}

#[test]
fn log_records_in_a_log_file_match_runc() {
    require_root!();
    let Some(runc_bin) = runc() else { return };
    let runc = Peer::new("runc", runc_bin);
    let capsa = Peer::new("capsa", PathBuf::from(common::bin()));
    let mut diffs = Vec::new();
    for (format, args) in [
        ("json", &["state", "ID"][..]),
        ("json", &["kill", "ID", "KILL"][..]),
        ("json", &["exec", "ID", "true"][..]),
        ("text", &["delete", "ID"][..]),
        ("json", &["delete", "--force", "ID"][..]),
    ] {
        let mut outs = Vec::new();
        for peer in [&runc, &capsa] {
            let id = peer.id("log");
            let dir = tempfile::tempdir().unwrap();
            let log = dir.path().join("log");
            let log_s = log.display().to_string();
            let mut full = vec!["--log", &log_s, "--log-format", format];
            full.extend(fill(args, &id, ""));
            let out = peer.run(&full);
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            // The file holds the records; stderr the bare message.
            let records: Vec<String> = text
                .lines()
                .map(|l| match format {
                    "json" => {
                        let v: Value = serde_json::from_str(l).unwrap_or(Value::Null);
                        let mut keys: Vec<&String> = v
                            .as_object()
                            .map(|o| o.keys().collect())
                            .unwrap_or_default();
                        keys.sort();
                        format!("{keys:?} level={}", v["level"])
                    }
                    _ => stderr_shape(l).join(","),
                })
                .collect();
            let msg_is_stderr = text.lines().last().is_some_and(|l| {
                let msg = match format {
                    "json" => serde_json::from_str::<Value>(l).unwrap_or(Value::Null)["msg"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                    _ => l
                        .split("msg=")
                        .nth(1)
                        .unwrap_or("")
                        .trim_matches('"')
                        .to_string(),
                };
                out.stderr.trim().replace(&id, "<ID>") == msg.replace(&id, "<ID>")
            });
            outs.push((out.code, records, msg_is_stderr || out.stderr.is_empty()));
        }
        if outs[0] != outs[1] {
            diffs.push(format!(
                "{format} {args:?}: runc {:?} capsa {:?}",
                outs[0], outs[1]
            ));
        }
    }
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}

/// A missing path: no state directory of either runtime may remain.
fn assert_no_state(peer: &Peer, id: &str) {
    assert!(
        !Path::new(peer.root.path()).join(id).exists(),
        "{}: {id} left its state directory",
        peer.name
    );
}

#[test]
fn delete_of_a_missing_container_with_force_succeeds_silently() {
    require_root!();
    let Some(runc_bin) = runc() else { return };
    let runc = Peer::new("runc", runc_bin);
    let capsa = Peer::new("capsa", PathBuf::from(common::bin()));
    for peer in [&runc, &capsa] {
        let id = peer.id("gone");
        let out = peer.run(&["delete", "--force", &id]);
        assert_eq!(
            (out.code, out.stdout.as_str(), out.stderr.as_str()),
            (0, "", ""),
            "{}",
            peer.name
        );
        assert_no_state(peer, &id);
        // Without --force it is an error naming it as missing.
        let out = peer.run(&["delete", &id]);
        assert_eq!(out.code, 1, "{}", peer.name);
        assert!(
            out.stderr.contains("does not exist"),
            "{}: {out:?}",
            peer.name
        );
    }
}

/// Runs `bundle` to its end with each peer; returns (exit code, stdout,
/// stderr) of each.
fn run_both(runc: &Peer, capsa: &Peer, bundle: &Bundle, tag: &str) -> [Outcome; 2] {
    [runc, capsa].map(|peer| {
        let id = peer.id(tag);
        peer.run(&["run", "--bundle", &bundle.path_str(), &id])
    })
}

/// An edit of a config made at run time.
type BoxedEdit = Box<dyn Fn(&mut Value)>;

#[test]
fn sysctls_are_accepted_and_refused_as_runc_does() {
    require_root!();
    let Some(runc_bin) = runc() else { return };
    let runc = Peer::new("runc", runc_bin);
    let capsa = Peer::new("capsa", PathBuf::from(common::bin()));
    let host_printk = common::read("/proc/sys/kernel/printk_ratelimit");
    let host_domain = common::read("/proc/sys/kernel/domainname");
    let without = |t: &str| -> BoxedEdit {
        let t = t.to_string();
        Box::new(move |c: &mut Value| {
            let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
            ns.retain(|n| n["type"] != t.as_str());
            if t == "uts" {
                c.as_object_mut().unwrap().remove("hostname");
            }
        })
    };
    let keep = || -> BoxedEdit { Box::new(|_: &mut Value| {}) };
    // The host's own network namespace, joined by path.
    let host_net = || -> BoxedEdit {
        Box::new(|c: &mut Value| {
            for n in c["linux"]["namespaces"].as_array_mut().unwrap() {
                if n["type"] == "network" {
                    n["path"] = "/proc/self/ns/net".into();
                }
            }
        })
    };
    let cases: Vec<(&str, &str, BoxedEdit)> = vec![
        ("kernel.shmmax", "4096", keep()),
        ("kernel.shmmax", "4096", without("ipc")),
        ("kernel.msgmax", "4096", keep()),
        ("kernel.sem", "250 32000 32 128", keep()),
        ("fs.mqueue.msg_max", "20", keep()),
        ("fs.mqueue.msg_max", "20", without("ipc")),
        ("net.ipv4.ip_forward", "1", keep()),
        ("net/ipv4/ip_forward", "1", keep()),
        ("net.ipv4.ip_forward", "1", without("network")),
        ("net.ipv4.ip_forward", "1", host_net()),
        ("kernel.domainname", "capsa-test", keep()),
        ("kernel.domainname", "capsa-test", without("uts")),
        ("kernel.hostname", "capsa-test", keep()),
        ("kernel.printk_ratelimit", "17", keep()),
        ("vm.swappiness", "17", keep()),
        ("kernel.semaphore", "1", keep()),
    ];
    let mut diffs = Vec::new();
    for (key, value, edit) in &cases {
        let mut b = Bundle::busybox();
        let file = format!("/proc/sys/{}", key.replace('.', "/"));
        b.edit(|c| {
            c["linux"]["sysctl"] = serde_json::json!({ *key: *value });
            c["process"]["args"] = serde_json::json!(["cat", file]);
            edit(c);
        });
        let [r, c] = run_both(&runc, &capsa, &b, "sysctl");
        let same = r.code == c.code && r.stdout == c.stdout && (r.code == 0) == c.stderr.is_empty();
        if !same {
            diffs.push(format!(
                "{key}={value} {}: runc {r:?}\ncapsa {c:?}",
                serde_json::to_string(&b.config["linux"]["namespaces"]).unwrap()
            ));
        }
        if c.code != 0 {
            assert!(c.stderr.contains(&format!("linux.sysctl.{key}")), "{c:?}");
        }
    }
    assert_eq!(
        common::read("/proc/sys/kernel/printk_ratelimit"),
        host_printk
    );
    assert_eq!(common::read("/proc/sys/kernel/domainname"), host_domain);
    assert!(diffs.is_empty(), "{}", diffs.join("\n\n"));
}

#[test]
fn ipc_and_uts_sysctls_in_the_hosts_namespace_joined_by_path_are_refused() {
    // Stricter than runc, which checks only the network namespace's path:
    // it would set these in the host's namespaces.
    require_root!();
    let rt = common::Runtime::new();
    for (key, ns, path) in [
        ("kernel.shmmax", "ipc", "/proc/self/ns/ipc"),
        ("fs.mqueue.msg_max", "ipc", "/proc/self/ns/ipc"),
        ("kernel.domainname", "uts", "/proc/self/ns/uts"),
    ] {
        let before = common::read(format!("/proc/sys/{}", key.replace('.', "/")));
        let mut b = Bundle::busybox();
        b.edit(|c| {
            c["linux"]["sysctl"] = serde_json::json!({ key: "1234" });
            for n in c["linux"]["namespaces"].as_array_mut().unwrap() {
                if n["type"] == ns {
                    n["path"] = path.into();
                }
            }
        });
        let id = rt.id("hostns");
        let (code, _, err) = rt.run(&b, &id);
        assert_eq!(code, 1, "{key}: {err}");
        assert!(
            err.contains(&format!("linux.sysctl.{key}")) && err.contains("host"),
            "{err}"
        );
        assert_eq!(
            common::read(format!("/proc/sys/{}", key.replace('.', "/"))),
            before
        );
        assert!(!rt.root().join(&id).exists(), "{id} left state behind");
    }
}

/// A config edit, by name.
type Edit = (&'static str, fn(&mut Value));

/// Configs at the edge of what a runtime takes. Each is run by runc and by
/// capsa-runtime; they must both run it or both refuse it, but for the
/// cases in [`NOT_AS_RUNC`].
const CONFIGS: &[Edit] = &[
    ("memory.kernel", |c| {
        c["linux"]["resources"]["memory"] = serde_json::json!({"kernel": 104857600})
    }),
    ("memory.kernelTCP", |c| {
        c["linux"]["resources"]["memory"] = serde_json::json!({"kernelTCP": 104857600})
    }),
    ("blockIO.weight", |c| {
        c["linux"]["resources"]["blockIO"] = serde_json::json!({"weight": 500})
    }),
    ("blockIO.leafWeight", |c| {
        c["linux"]["resources"]["blockIO"] = serde_json::json!({"leafWeight": 500})
    }),
    ("bind mount with data options", |c| {
        c["mounts"].as_array_mut().unwrap().push(serde_json::json!(
            {"destination": "/mnt", "type": "bind", "source": "/tmp",
             "options": ["rbind", "ro", "mode=755", "size=1m", "sync"]}))
    }),
    ("no mount namespace, with mounts", |c| {
        no_mount_ns(c);
        c["linux"].as_object_mut().unwrap().remove("maskedPaths");
        c["linux"].as_object_mut().unwrap().remove("readonlyPaths");
    }),
    ("no mount namespace, with masked paths", no_mount_ns),
    ("relative mount destination", |c| {
        c["mounts"].as_array_mut().unwrap().push(serde_json::json!(
            {"destination": "mnt", "type": "tmpfs", "source": "tmpfs"}))
    }),
    ("unknown mount type", |c| {
        c["mounts"].as_array_mut().unwrap().push(serde_json::json!(
            {"destination": "/mnt", "type": "no-such-fs", "source": "x"}))
    }),
    ("unknown capability", |c| {
        c["process"]["capabilities"]["bounding"]
            .as_array_mut()
            .unwrap()
            .push("CAP_NO_SUCH_THING".into())
    }),
    ("apparmorProfile without AppArmor", |c| {
        c["process"]["apparmorProfile"] = "capsa-test".into()
    }),
    ("selinuxLabel without SELinux", |c| {
        c["process"]["selinuxLabel"] = "system_u:system_r:container_t:s0".into()
    }),
    ("mountLabel without SELinux", |c| {
        c["linux"]["mountLabel"] = "system_u:object_r:container_file_t:s0".into()
    }),
    ("seccomp with an unknown syscall", |c| {
        c["linux"]["seccomp"] = serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["no_such_syscall", "reboot"], "action": "SCMP_ACT_ERRNO"}]})
    }),
    ("unified resources on a v1 host", |c| {
        c["linux"]["resources"]["unified"] = serde_json::json!({"pids.max": "10"})
    }),
    ("rlimit above the hard limit", |c| {
        c["process"]["rlimits"] = serde_json::json!([
            {"type": "RLIMIT_NOFILE", "hard": 100_000_000u64, "soft": 100_000_000u64}])
    }),
    ("unknown rlimit", |c| {
        c["process"]["rlimits"] = serde_json::json!([
            {"type": "RLIMIT_NO_SUCH", "hard": 1, "soft": 1}])
    }),
    ("relative cwd", |c| c["process"]["cwd"] = "tmp".into()),
    ("env without =", |c| {
        c["process"]["env"]
            .as_array_mut()
            .unwrap()
            .push("JUSTANAME".into())
    }),
    ("hostname without uts", |c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "uts")
    }),
    ("uid mappings without a user namespace", |c| {
        c["linux"]["uidMappings"] =
            serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 1}]);
        c["linux"]["gidMappings"] =
            serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 1}]);
    }),
    ("ociVersion 2.0.0", |c| c["ociVersion"] = "2.0.0".into()),
    ("ociVersion 1.0.0-rc1", |c| {
        c["ociVersion"] = "1.0.0-rc1".into()
    }),
    ("oomScoreAdj", |c| {
        c["process"]["oomScoreAdj"] = (-500).into()
    }),
    ("umask", |c| c["process"]["user"]["umask"] = 63.into()),
    ("additional gids", |c| {
        c["process"]["user"]["additionalGids"] = serde_json::json!([5, 100])
    }),
    ("cpu quota and period", |c| {
        c["linux"]["resources"]["cpu"] = serde_json::json!({"quota": 50000, "period": 100000})
    }),
    (
        "cpu burst",
        |c| {
            c["linux"]["resources"]["cpu"] =
                serde_json::json!({"quota": 50000, "period": 100000, "burst": 10000})
        },
    ),
    ("cpuset of a cpu that is not there", |c| {
        c["linux"]["resources"]["cpu"] = serde_json::json!({"cpus": "4000"})
    }),
    ("memory swappiness", |c| {
        c["linux"]["resources"]["memory"] = serde_json::json!({"swappiness": 10})
    }),
    ("memory limit below usage", |c| {
        c["linux"]["resources"]["memory"] = serde_json::json!({"limit": 4096})
    }),
    ("pids limit", |c| {
        c["linux"]["resources"]["pids"] = serde_json::json!({"limit": 20})
    }),
    ("hugepages of a size the host lacks", |c| {
        c["linux"]["resources"]["hugepageLimits"] =
            serde_json::json!([{"pageSize": "3MB", "limit": 1048576}])
    }),
    ("network classid", |c| {
        c["linux"]["resources"]["network"] = serde_json::json!({"classID": 1048577})
    }),
    ("device rule with a bad type", |c| {
        c["linux"]["resources"]["devices"] =
            serde_json::json!([{"allow": true, "type": "x", "access": "rwm"}])
    }),
    ("netDevices", |c| {
        c["linux"]["netDevices"] = serde_json::json!({"capsa-none0": {"name": "eth9"}})
    }),
    (
        "memoryPolicy",
        |c| {
            c["linux"]["memoryPolicy"] = serde_json::json!({"mode": "MPOL_PREFERRED", "nodes": "0"})
        },
    ),
    ("execCPUAffinity", |c| {
        c["process"]["execCPUAffinity"] = serde_json::json!({"initial": "0", "final": "0"})
    }),
    ("intelRdt closID", |c| {
        c["linux"]["intelRdt"] = serde_json::json!({"closID": "capsa-test"})
    }),
    ("intelRdt l3CacheSchema", |c| {
        c["linux"]["intelRdt"] = serde_json::json!({"l3CacheSchema": "L3:0=f"})
    }),
    ("time namespace with offsets", |c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"type": "time"}));
        c["linux"]["timeOffsets"] = serde_json::json!({"monotonic": {"secs": 10, "nanosecs": 0}});
    }),
    ("personality", |c| {
        c["linux"]["personality"] = serde_json::json!({"domain": "LINUX32"})
    }),
    ("scheduler", |c| {
        c["process"]["scheduler"] = serde_json::json!({"policy": "SCHED_BATCH"})
    }),
    ("ioPriority", |c| {
        c["process"]["ioPriority"] = serde_json::json!({"class": "IOPRIO_CLASS_IDLE"})
    }),
    (
        "missing hook program",
        |c| c["hooks"] = serde_json::json!({"prestart": [{"path": "/no/such/hook"}]}),
    ),
];

/// The configs capsa-runtime takes otherwise than runc 1.1, whether it
/// runs them, and why: refused where ignoring would weaken isolation or
/// change the host, run where capsa does what runc 1.1 cannot yet.
const NOT_AS_RUNC: &[(&str, bool, &str)] = &[(
    "time namespace with offsets",
    true,
    "runtime-spec 1.2's time namespace, which runc 1.2 has and runc 1.1 does not know",
)];

fn no_mount_ns(c: &mut Value) {
    c["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "mount");
}

/// runc leaves a container's mounts on the host when it has no mount
/// namespace of its own: they are taken away after each of its runs.
fn detach_all_under(dir: &Path) {
    for _ in 0..64 {
        let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let d = dir.display().to_string();
        let Some(point) = text
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .rfind(|p| p.starts_with(&d))
        else {
            return;
        };
        let _ = nix::mount::umount2(point, nix::mount::MntFlags::MNT_DETACH);
    }
}

#[test]
fn configs_are_taken_or_refused_as_runc_does() {
    require_root!();
    let Some(runc_bin) = runc() else { return };
    let runc = Peer::new("runc", runc_bin);
    let capsa = Peer::new("capsa", PathBuf::from(common::bin()));
    let mut diffs = Vec::new();
    for (name, edit) in CONFIGS {
        let mut b = Bundle::busybox();
        // Absolute, as runc wants it when the bundle path has a symlink.
        let rootfs = b.rootfs().display().to_string();
        b.edit(|c| {
            c["root"]["path"] = rootfs.into();
            edit(c);
        });
        let [r, c] = run_both(&runc, &capsa, &b, "cfg");
        detach_all_under(b.path());
        let want_capsa = match NOT_AS_RUNC.iter().find(|(n, _, _)| n == name) {
            Some((_, runs, _)) => {
                assert_ne!(r.code == 0, *runs, "{name}: runc now does the same");
                *runs
            }
            None => r.code == 0,
        };
        if (c.code == 0) != want_capsa {
            diffs.push(format!(
                "{name}: runc {} capsa {}\n  runc:  {}\n  capsa: {}",
                r.code,
                c.code,
                r.stderr.trim(),
                c.stderr.trim()
            ));
        }
    }
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}
