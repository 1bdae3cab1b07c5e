//! `capsa-runtime`: a runc-compatible command line over the capsa runtime
//! library, so that containerd, Docker, Podman and Kubernetes can use it in
//! place of runc.
//!
//! The program's entry is [`main`] below, called by the C library, rather
//! than Rust's usual one (see there why).

#![cfg_attr(not(test), no_main)]

mod commands;
mod fast_args;
mod logging;

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// The runtime-spec version implemented, as `--version` prints it.
const SPEC_VERSION: &str = capsa_runtime::spec::OCI_VERSION;

/// Global flags, as runc takes them before the subcommand.
#[derive(Parser, Debug)]
#[command(
    name = "capsa-runtime",
    about = "capsa's OCI runtime: runs containers from OCI bundles, as runc does",
    disable_version_flag = true
)]
pub struct Cli {
    /// Root directory for container state
    #[arg(long, global = true, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Write log records to FILE (default: stderr)
    #[arg(long, global = true, value_name = "FILE")]
    log: Option<PathBuf>,
    /// Format of the log records: text or json
    #[arg(long, global = true, value_name = "FORMAT", default_value = "text")]
    log_format: logging::Format,
    /// Log debug records, including the time each set-up stage takes
    #[arg(long, global = true)]
    debug: bool,
    /// Manage cgroups through systemd
    #[arg(long, global = true)]
    systemd_cgroup: bool,
    /// Print the version
    #[arg(short = 'v', long)]
    version: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a container (its process waits for `start`)
    Create(commands::lifecycle::CreateArgs),
    /// Start a created container
    Start(commands::lifecycle::IdArg),
    /// Create and start a container, and wait for it unless detached
    Run(commands::lifecycle::RunArgs),
    /// Print the state of a container as JSON
    State(commands::lifecycle::IdArg),
    /// List containers
    #[command(alias = "ls")]
    List(commands::lifecycle::ListArgs),
    /// Send a signal to a container's init process (or all its processes)
    Kill(commands::lifecycle::KillArgs),
    /// Delete a container and everything it holds
    Delete(commands::lifecycle::DeleteArgs),
    /// Suspend every process of a container
    Pause(commands::lifecycle::IdArg),
    /// Resume a paused container
    Resume(commands::lifecycle::IdArg),
    /// Run a new process in a running container
    Exec(commands::exec::ExecArgs),
    /// List the processes of a container
    Ps(commands::ps::PsArgs),
    /// Change the resource limits of a container
    Update(commands::update::UpdateArgs),
    /// Print container events and resource statistics
    Events(commands::events::EventsArgs),
    /// Print the runtime's features as JSON
    Features,
    /// Write a default config.json
    Spec(commands::spec::SpecArgs),
}

/// The program's entry point, called by the C library's start-up.
///
/// Rust's usual entry (`fn main`) first runs std's start-up, which costs
/// every container start ~30 µs (it reads /proc/self/maps to place a stack
/// guard and sets up an alternate signal stack for reporting stack
/// overflows, which then end in a plain SIGSEGV). What of it matters is
/// done here: standard streams that are closed are opened on /dev/null,
/// SIGPIPE is ignored (a write to a closed pipe is an error, not death), a
/// panic exits with status 101, and stdout is flushed at exit.
// SAFETY: with `no_main`, this is the program's only `main` symbol, with
// the signature the C library calls it with. (Unit tests have the test
// harness's entry instead.)
#[cfg_attr(not(test), unsafe(no_mangle))]
pub extern "C" fn main(
    _argc: std::ffi::c_int,
    _argv: *const *const std::ffi::c_char,
) -> std::ffi::c_int {
    capsa_runtime::timing::start();
    capsa_runtime::sys::open_missing_stdio();
    capsa_runtime::sys::ignore_signal(nix::sys::signal::Signal::SIGPIPE);
    let code = std::panic::catch_unwind(run).unwrap_or(101);
    // Flushes stdout, as returning from Rust's main would.
    std::process::exit(code)
}

/// Runs the command line; returns the exit status.
fn run() -> i32 {
    // Started as the exec trampoline of a container (architectures without
    // a machine-code trampoline): exec the container's program, never return.
    capsa_runtime::trampoline::main_if_invoked();
    let args: Vec<OsString> = std::env::args_os().collect();
    let cli = fast_args::parse(&args).unwrap_or_else(|| Cli::parse_from(args));
    if cli.version {
        println!("capsa-runtime version {}", env!("CARGO_PKG_VERSION"));
        if let Some(commit) = option_env!("CAPSA_COMMIT") {
            println!("commit: {commit}");
        }
        println!("spec: {SPEC_VERSION}");
        return 0;
    }
    let log = match logging::init(cli.log.as_deref(), cli.log_format, cli.debug) {
        Ok(log) => log,
        Err(e) => {
            eprintln!("capsa-runtime: {e:#}");
            return 1;
        }
    };
    let Some(command) = cli.command else {
        eprintln!("capsa-runtime: no command given; see capsa-runtime --help");
        return 1;
    };
    let ctx = commands::Context {
        root: cli.root.unwrap_or_else(capsa_runtime::state::default_root),
        systemd_cgroup: cli.systemd_cgroup,
    };
    // runc's `exec` fails with 255 (the program's own codes are 0-255
    // too, and 255 is the least likely), and says so.
    let exec = matches!(command, Command::Exec(_));
    let result = match command {
        Command::Create(a) => commands::lifecycle::create(&ctx, a),
        Command::Start(a) => commands::lifecycle::start(&ctx, a),
        Command::Run(a) => commands::lifecycle::run(&ctx, a),
        Command::State(a) => commands::lifecycle::state(&ctx, a),
        Command::List(a) => commands::lifecycle::list(&ctx, a),
        Command::Kill(a) => commands::lifecycle::kill(&ctx, a),
        Command::Delete(a) => commands::lifecycle::delete(&ctx, a),
        Command::Pause(a) => commands::lifecycle::pause(&ctx, a),
        Command::Resume(a) => commands::lifecycle::resume(&ctx, a),
        Command::Exec(a) => commands::exec::exec(&ctx, a),
        Command::Ps(a) => commands::ps::ps(&ctx, a),
        Command::Update(a) => commands::update::update(&ctx, a),
        Command::Events(a) => commands::events::events(&ctx, a),
        Command::Features => commands::features::features(&ctx),
        Command::Spec(a) => commands::spec::spec(&ctx, a),
    };
    match result {
        Ok(code) => code.into(),
        Err(e) if exec => {
            let msg = format!("{e:#}");
            match msg.starts_with("exec failed:") {
                true => log.error(&msg),
                false => log.error(&format!("exec failed: {msg}")),
            }
            255
        }
        Err(e) => {
            log.error(&format!("{e:#}"));
            1
        }
    }
}
