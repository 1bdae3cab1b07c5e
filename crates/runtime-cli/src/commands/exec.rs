//! `exec`: runs a new process in a container, as runc's `exec` does.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use capsa_runtime::exec::{self, ExecOptions, Overrides};

use super::Context;
use super::lifecycle::{attach, block_forwarded_signals};

/// Arguments of `exec`.
#[derive(clap::Args, Debug)]
pub struct ExecArgs {
    /// Path to a runtime-spec Process JSON file describing the process (then
    /// no command and no process flags are given)
    #[arg(short, long, value_name = "FILE")]
    process: Option<PathBuf>,
    /// Return once the process has started instead of waiting for it
    #[arg(short, long)]
    detach: bool,
    /// File to write the process's pid to
    #[arg(long, value_name = "FILE")]
    pid_file: Option<PathBuf>,
    /// Give the process a terminal
    #[arg(short, long)]
    tty: bool,
    /// Unix socket that receives the pty master of the process's terminal
    #[arg(long, value_name = "SOCKET")]
    console_socket: Option<PathBuf>,
    /// Set an environment variable (NAME=VALUE; repeatable)
    #[arg(short, long, value_name = "NAME=VALUE")]
    env: Vec<String>,
    /// Working directory inside the container
    #[arg(long, value_name = "DIR")]
    cwd: Option<PathBuf>,
    /// The user to run as: UID[:GID]
    #[arg(short, long, value_name = "UID[:GID]")]
    user: Option<String>,
    /// An additional group id (repeatable)
    #[arg(short = 'g', long, value_name = "GID")]
    additional_gids: Vec<u32>,
    /// Add a capability (CAP_NAME; repeatable)
    #[arg(short, long, value_name = "CAP")]
    cap: Vec<String>,
    /// Set no_new_privileges for the process
    #[arg(long)]
    no_new_privs: bool,
    /// Pass N more descriptors (3, 4, ...) to the process
    #[arg(long, value_name = "N", default_value_t = 0)]
    preserve_fds: u32,
    /// Allow exec in a paused container
    #[arg(long)]
    ignore_paused: bool,
    /// The AppArmor profile to run the process under
    #[arg(long, value_name = "PROFILE")]
    apparmor: Option<String>,
    /// The SELinux label to run the process with
    #[arg(long, value_name = "LABEL")]
    process_label: Option<String>,
    /// The container's id
    id: String,
    /// The command to run and its arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

impl ExecArgs {
    /// The process flags that were given, by name (they cannot be combined
    /// with `--process`).
    fn process_flags(&self) -> Vec<&'static str> {
        let mut set = Vec::new();
        for (given, name) in [
            (self.tty, "--tty"),
            (!self.env.is_empty(), "--env"),
            (self.cwd.is_some(), "--cwd"),
            (self.user.is_some(), "--user"),
            (!self.additional_gids.is_empty(), "--additional-gids"),
            (!self.cap.is_empty(), "--cap"),
            (self.no_new_privs, "--no-new-privs"),
            (self.apparmor.is_some(), "--apparmor"),
            (self.process_label.is_some(), "--process-label"),
        ] {
            if given {
                set.push(name);
            }
        }
        set
    }

    fn overrides(&self) -> anyhow::Result<Overrides> {
        Ok(Overrides {
            args: self.command.clone(),
            env: self.env.clone(),
            cwd: self.cwd.clone(),
            user: self.user.as_deref().map(parse_user).transpose()?,
            additional_gids: self.additional_gids.clone(),
            caps: self.cap.clone(),
            no_new_privs: self.no_new_privs,
            tty: self.tty,
            apparmor: self.apparmor.clone(),
            process_label: self.process_label.clone(),
        })
    }
}

/// Parses `UID[:GID]`.
fn parse_user(text: &str) -> anyhow::Result<(u32, Option<u32>)> {
    let (u, g) = match text.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (text, None),
    };
    let num = |s: &str| {
        s.parse::<u32>()
            .with_context(|| format!("--user {text:?}: {s:?} is not a numeric id (UID[:GID])"))
    };
    Ok((num(u)?, g.map(num).transpose()?))
}

/// Runs `exec`: in the foreground, waits for the process (relaying its
/// terminal and forwarding signals) and returns its exit code.
pub fn exec(ctx: &Context, args: ExecArgs) -> anyhow::Result<u8> {
    let rt = ctx.runtime()?;
    let process = match &args.process {
        Some(path) => {
            if !args.command.is_empty() {
                bail!("exec: a command cannot be given with --process (set process.args)");
            }
            if let Some(flag) = args.process_flags().first() {
                bail!("exec: {flag} cannot be combined with --process (set it in the file)");
            }
            exec::load_process(path)?
        }
        None => {
            if args.command.is_empty() {
                bail!("exec: a command is required (or --process FILE)");
            }
            let config = rt.config(&args.id)?;
            exec::process_from_config(&config, &args.overrides()?)?
        }
    };
    let opts = ExecOptions {
        id: args.id.clone(),
        process,
        console_socket: args.console_socket.clone(),
        pid_file: args.pid_file.clone(),
        detach: args.detach,
        preserve_fds: args.preserve_fds,
        ignore_paused: args.ignore_paused,
    };
    let forwarded = if args.detach {
        None
    } else {
        Some(block_forwarded_signals()?)
    };
    let started = rt.exec(&opts)?;
    let Some(forwarded) = forwarded else {
        return Ok(0);
    };
    let code = attach(started.pid, started.pty_master, &forwarded)?;
    Ok(code as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_parse() {
        assert_eq!(parse_user("1000").unwrap(), (1000, None));
        assert_eq!(parse_user("1000:50").unwrap(), (1000, Some(50)));
        assert!(parse_user("root").is_err());
        assert!(parse_user("1:x").is_err());
        assert!(parse_user("-1").is_err());
    }
}
