//! A fast path through the command line for the commands containerd, Docker
//! and Podman call for every container (`create`, `start`, `run`, `state`,
//! `kill`, `delete`).
//!
//! clap stays the definition of the command line, but building its model
//! and paging in its code costs 90-190 µs at each start: a tenth of a whole
//! container life (`bench/runtime-run.sh`). Plain command lines of these
//! commands are read here instead; anything else (help, a flag this path
//! does not know, a repeated flag, a value that starts with `-`, a value
//! that is not UTF-8, another command) is left to clap, so every error and
//! help text still comes from clap. The tests check that this path gives
//! exactly what clap gives for every flag it reads.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::commands::lifecycle::{CreateArgs, CreateFlags, DeleteArgs, IdArg, KillArgs, RunArgs};
use crate::{Cli, Command, logging};

/// A flag this path reads: long name, short letter, and whether it takes a
/// value.
struct Flag {
    long: &'static str,
    short: Option<char>,
    takes_value: bool,
}

const fn flag(long: &'static str, short: Option<char>, takes_value: bool) -> Flag {
    Flag {
        long,
        short,
        takes_value,
    }
}

/// The global flags (accepted before and after the command, as clap's
/// `global = true` does).
const GLOBAL_FLAGS: &[Flag] = &[
    flag("root", None, true),
    flag("log", None, true),
    flag("log-format", None, true),
    flag("debug", None, false),
    flag("systemd-cgroup", None, false),
];

/// The flags `create` and `run` share.
const CREATE_FLAGS: &[Flag] = &[
    flag("bundle", Some('b'), true),
    flag("pid-file", None, true),
    flag("console-socket", None, true),
    flag("no-pivot", None, false),
    flag("no-new-keyring", None, false),
    flag("preserve-fds", None, true),
];

/// The flags only `run` has.
const RUN_FLAGS: &[Flag] = &[
    flag("detach", Some('d'), false),
    flag("keep", None, false),
    flag("no-subreaper", None, false),
];

const KILL_FLAGS: &[Flag] = &[flag("all", Some('a'), false)];
const DELETE_FLAGS: &[Flag] = &[flag("force", Some('f'), false)];

/// What a command line gave: each flag seen at most once, with its value
/// (empty for a switch), and the positional arguments.
#[derive(Default)]
struct Given<'a> {
    flags: Vec<(&'static str, &'a str)>,
    positionals: Vec<&'a str>,
}

impl<'a> Given<'a> {
    fn value(&self, long: &str) -> Option<&'a str> {
        self.flags.iter().find(|(l, _)| *l == long).map(|(_, v)| *v)
    }

    fn switch(&self, long: &str) -> bool {
        self.value(long).is_some()
    }

    fn path(&self, long: &str) -> Option<PathBuf> {
        self.value(long).map(PathBuf::from)
    }
}

/// The command line `args` (with the program name first) parsed as clap
/// would, or `None` when it is not one this path reads (clap then does).
pub fn parse(args: &[OsString]) -> Option<Cli> {
    let args: Vec<&str> = args
        .iter()
        .skip(1)
        .map(|a| a.to_str())
        .collect::<Option<_>>()?;
    // The command is the first argument that is neither a global flag nor
    // its value.
    let mut i = 0;
    while i < args.len() && args[i].starts_with('-') {
        let (f, inline) = find(GLOBAL_FLAGS, args[i])?;
        i += 1 + usize::from(f.takes_value && inline.is_none());
    }
    let name = *args.get(i)?;
    let own: &[&[Flag]] = match name {
        "create" => &[CREATE_FLAGS],
        "run" => &[CREATE_FLAGS, RUN_FLAGS],
        "kill" => &[KILL_FLAGS],
        "delete" => &[DELETE_FLAGS],
        "start" | "state" => &[],
        _ => return None,
    };
    let mut given = Given::default();
    let mut rest = args[..i].iter().chain(&args[i + 1..]).copied();
    while let Some(arg) = rest.next() {
        if !arg.starts_with('-') {
            given.positionals.push(arg);
            continue;
        }
        let (f, inline) = std::iter::once(GLOBAL_FLAGS)
            .chain(own.iter().copied())
            .find_map(|flags| find(flags, arg))?;
        if given.switch(f.long) {
            return None;
        }
        let value = match (f.takes_value, inline) {
            (false, None) => "",
            (true, Some(v)) => v,
            (true, None) => rest.next()?,
            (false, Some(_)) => return None,
        };
        if f.takes_value && (value.is_empty() || value.starts_with('-')) {
            return None;
        }
        given.flags.push((f.long, value));
    }

    let log_format = match given.value("log-format") {
        None | Some("text") => logging::Format::Text,
        Some("json") => logging::Format::Json,
        Some(_) => return None,
    };
    let command = match name {
        "create" => Command::Create(CreateArgs {
            flags: create_flags(&given)?,
        }),
        "run" => Command::Run(RunArgs {
            flags: create_flags(&given)?,
            detach: given.switch("detach"),
            keep: given.switch("keep"),
            no_subreaper: given.switch("no-subreaper"),
        }),
        "start" => Command::Start(id_arg(&given)?),
        "state" => Command::State(id_arg(&given)?),
        "kill" => {
            let (id, signal) = match given.positionals[..] {
                [id] => (id, "SIGTERM"),
                [id, signal] => (id, signal),
                _ => return None,
            };
            Command::Kill(KillArgs {
                all: given.switch("all"),
                id: id.to_string(),
                signal: signal.to_string(),
            })
        }
        "delete" => Command::Delete(DeleteArgs {
            force: given.switch("force"),
            id: only_positional(&given)?.to_string(),
        }),
        _ => return None,
    };
    Some(Cli {
        root: given.path("root"),
        log: given.path("log"),
        log_format,
        debug: given.switch("debug"),
        systemd_cgroup: given.switch("systemd-cgroup"),
        version: false,
        command: Some(command),
    })
}

/// The flag of `flags` that `arg` names (`--long`, `--long=value`, `-s`),
/// with the value given after `=`.
fn find<'a>(flags: &'static [Flag], arg: &'a str) -> Option<(&'static Flag, Option<&'a str>)> {
    if let Some(long) = arg.strip_prefix("--") {
        let (name, inline) = match long.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (long, None),
        };
        return flags.iter().find(|f| f.long == name).map(|f| (f, inline));
    }
    let mut chars = arg.strip_prefix('-')?.chars();
    let (short, None) = (chars.next()?, chars.next()) else {
        return None;
    };
    flags
        .iter()
        .find(|f| f.short == Some(short))
        .map(|f| (f, None))
}

fn create_flags(given: &Given<'_>) -> Option<CreateFlags> {
    let id = only_positional(given)?;
    let preserve_fds = match given.value("preserve-fds") {
        None => 0,
        Some(n) if n.bytes().all(|b| b.is_ascii_digit()) => n.parse().ok()?,
        Some(_) => return None,
    };
    Some(CreateFlags {
        bundle: given.path("bundle").unwrap_or_else(|| PathBuf::from(".")),
        pid_file: given.path("pid-file"),
        console_socket: given.path("console-socket"),
        no_pivot: given.switch("no-pivot"),
        no_new_keyring: given.switch("no-new-keyring"),
        preserve_fds,
        id: id.to_string(),
    })
}

fn id_arg(given: &Given<'_>) -> Option<IdArg> {
    Some(IdArg {
        id: only_positional(given)?.to_string(),
    })
}

fn only_positional<'a>(given: &Given<'a>) -> Option<&'a str> {
    match given.positionals[..] {
        [id] => Some(id),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn args(line: &str) -> Vec<OsString> {
        std::iter::once("capsa-runtime")
            .chain(line.split_whitespace())
            .map(OsString::from)
            .collect()
    }

    /// What clap makes of `line`, as text (its value or its error kind).
    fn by_clap(line: &str) -> String {
        match Cli::try_parse_from(args(line)) {
            Ok(cli) => format!("{cli:?}"),
            Err(e) => format!("error: {:?}", e.kind()),
        }
    }

    /// Command lines this path must read, each exactly as clap does.
    const READ_HERE: &[&str] = &[
        "run x",
        "run --bundle /b x",
        "run --bundle=/b x",
        "run -b /b x",
        "--root /r run -b /b x",
        "--root=/r --debug run --bundle /b --keep x",
        "run x --root /r --log /l --log-format json --systemd-cgroup",
        "--log-format text run -d --no-subreaper x",
        "run --pid-file /p --console-socket /s --no-pivot --no-new-keyring x",
        "run --preserve-fds 2 x",
        "run --preserve-fds=0 --detach x",
        "create --bundle /b --pid-file /p x",
        "--root /r --log /l --log-format json create --bundle /b --pid-file /p --console-socket /s x",
        "create x --preserve-fds 3 --no-pivot",
        "start x",
        "--root /r start x",
        "state x",
        "state --root /r x",
        "kill x",
        "kill x KILL",
        "kill x 9",
        "kill --all x SIGKILL",
        "kill -a x",
        "delete x",
        "delete --force x",
        "--root /r delete -f x",
    ];

    /// Command lines this path leaves to clap (errors, help, flags it does
    /// not read, other commands).
    const LEFT_TO_CLAP: &[&str] = &[
        "",
        "--version",
        "-v",
        "--help",
        "run --help",
        "run -h",
        "run",
        "run x y",
        "run --bundle x",
        "run --bundle= x",
        "run --bundle -x y",
        "run -b -- x",
        "run --keep --keep x",
        "run --bundle /a --bundle /b x",
        "run --detach=true x",
        "run --preserve-fds +2 x",
        "run --preserve-fds -1 x",
        "run --preserve-fds 99999999999 x",
        "run --log-format xml x",
        "run --unknown x",
        "run -bdir x",
        "run -- x",
        "create --detach x",
        "start",
        "start x y",
        "state --force x",
        "kill",
        "kill x KILL extra",
        "delete x y",
        "--root run x",
        "--root",
        "list",
        "exec x true",
        "ps x",
        "spec",
        "features",
        "--bogus run x",
    ];

    #[test]
    fn reads_what_clap_reads_the_same_way() {
        for line in READ_HERE {
            let fast = parse(&args(line)).unwrap_or_else(|| panic!("not read here: {line}"));
            assert_eq!(format!("{fast:?}"), by_clap(line), "{line}");
        }
    }

    #[test]
    fn leaves_the_rest_to_clap() {
        for line in LEFT_TO_CLAP {
            assert!(parse(&args(line)).is_none(), "read here: {line}");
        }
    }

    #[test]
    fn leaves_values_that_are_not_utf8_to_clap() {
        use std::os::unix::ffi::OsStringExt;
        let mut a = args("run --bundle");
        a.push(OsString::from_vec(vec![0xff]));
        a.push("x".into());
        assert!(parse(&a).is_none());
    }
}
