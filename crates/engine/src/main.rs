//! `capsa`: a container engine with Docker's command line, daemonless:
//! the image commands over the `capsa_images` store, and the container and
//! volume commands (`run`, `ps`, `exec`, ...) with a small monitor process
//! per container.

mod commands;
mod container;
mod ctx;
mod events;
mod format;
mod monitor_bin;
mod names;
mod sys;
mod units;
mod volumes;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use commands::images::{
    HistoryArgs, ImagesArgs, ImportArgs, InspectArgs, LoadArgs, PruneArgs, RmiArgs, SaveArgs,
    TagArgs,
};
use commands::registry::{LoginArgs, LogoutArgs, PullArgs, PushArgs};
use commands::system::{DfArgs, EventsArgs, FormatArgs, SystemPruneArgs};

/// capsa: a container engine (Docker's command line).
#[derive(Parser)]
#[command(name = "capsa", version, about, disable_help_subcommand = true)]
struct Cli {
    /// Root directory of the image store (default /var/lib/capsa for root,
    /// $XDG_DATA_HOME/capsa otherwise)
    #[arg(long, global = true, value_name = "DIR")]
    root: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List images
    Images(ImagesArgs),
    /// Manage images
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(SaveArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Remove one or more images
    Rmi(RmiArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(PushArgs),
    /// Log in to a registry
    Login(LoginArgs),
    /// Log out from a registry
    Logout(LogoutArgs),
    /// Manage capsa
    System {
        #[command(subcommand)]
        command: SystemCommand,
    },
    #[command(flatten)]
    Containers(Box<commands::containers::Command>),
    /// Manage volumes
    Volume {
        #[command(subcommand)]
        command: commands::volumes::VolumeCommand,
    },
    /// Display system-wide information
    Info(FormatArgs),
    /// Show the capsa version information
    Version(FormatArgs),
    /// Get real time events from the server
    Events(EventsArgs),
}

#[derive(Subcommand)]
enum ImageCommand {
    /// List images
    #[command(visible_alias = "list")]
    Ls(ImagesArgs),
    /// Display detailed information on one or more images
    Inspect(InspectArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(SaveArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Remove one or more images
    #[command(visible_alias = "remove")]
    Rm(RmiArgs),
    /// Remove unused images
    Prune(PruneArgs),
}

#[derive(Subcommand)]
enum SystemCommand {
    /// Show capsa disk usage
    Df(DfArgs),
    /// Remove unused data
    Prune(SystemPruneArgs),
    /// Display system-wide information
    Info(FormatArgs),
    /// Get real time events from the server
    Events(EventsArgs),
}

fn main() -> ExitCode {
    if let Some(code) = exited_shortcut() {
        return code;
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            // Docker's CLI exits 125 when its own flags or arguments are wrong.
            let _ = e.print();
            return ExitCode::from(125);
        }
        Err(e) => e.exit(),
    };
    let root = cli.root.unwrap_or_else(capsa_images::store::default_root);
    let r = match cli.command {
        Command::Images(a)
        | Command::Image {
            command: ImageCommand::Ls(a),
        } => commands::images::images(&root, a),
        Command::Image { command } => match command {
            ImageCommand::Ls(_) => unreachable!("handled above"),
            ImageCommand::Inspect(a) => commands::images::inspect(&root, a),
            ImageCommand::History(a) => commands::images::history(&root, a),
            ImageCommand::Import(a) => commands::images::import(&root, a),
            ImageCommand::Load(a) => commands::images::load(&root, a),
            ImageCommand::Save(a) => commands::images::save(&root, a),
            ImageCommand::Tag(a) => commands::images::tag(&root, a),
            ImageCommand::Rm(a) => commands::images::rmi(&root, a),
            ImageCommand::Prune(a) => commands::images::prune(&root, a),
        },
        Command::Load(a) => commands::images::load(&root, a),
        Command::Save(a) => commands::images::save(&root, a),
        Command::Import(a) => commands::images::import(&root, a),
        Command::Tag(a) => commands::images::tag(&root, a),
        Command::Rmi(a) => commands::images::rmi(&root, a),
        Command::History(a) => commands::images::history(&root, a),
        Command::System { command } => match command {
            SystemCommand::Df(a) => commands::system::df(&root, a),
            SystemCommand::Prune(a) => commands::system::prune(&root, a),
            SystemCommand::Info(a) => commands::system::info(&root, a),
            SystemCommand::Events(a) => commands::system::events(&root, a),
        },
        Command::Containers(c) => commands::containers::dispatch(&root, *c),
        Command::Volume { command } => commands::volumes::dispatch(&root, command),
        Command::Info(a) => commands::system::info(&root, a),
        Command::Version(a) => commands::system::version(a),
        Command::Events(a) => commands::system::events(&root, a),
        Command::Pull(a) => commands::registry::pull(&root, a),
        Command::Push(a) => commands::registry::push(&root, a),
        Command::Login(a) => commands::registry::login(a),
        Command::Logout(a) => commands::registry::logout(a),
    };
    exit_code(r)
}

/// `capsa --root ROOT __exited ID`, exactly as every container's monitor
/// runs it when the container ends: dispatched without building Docker's
/// whole command line with clap, which is most of capsa's start-up.
fn exited_shortcut() -> Option<ExitCode> {
    let mut args = std::env::args_os().skip(1);
    let (Some(flag), Some(root), Some(cmd), Some(id), None) = (
        args.next(),
        args.next(),
        args.next(),
        args.next(),
        args.next(),
    ) else {
        return None;
    };
    if flag != "--root" || cmd != commands::containers::EXITED {
        return None;
    }
    let id = id.into_string().ok()?;
    Some(exit_code(commands::containers::exited(
        &PathBuf::from(root),
        &id,
    )))
}

/// The exit status of a command's result; errors are printed.
fn exit_code(r: anyhow::Result<ExitCode>) -> ExitCode {
    match r {
        Ok(code) => code,
        Err(e) => {
            commands::print_error(&e);
            ExitCode::from(1)
        }
    }
}
