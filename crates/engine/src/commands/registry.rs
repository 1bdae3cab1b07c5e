//! The registry commands: `pull`, `push`, `login`, `logout`, with Docker's
//! flags, output and messages, over `capsa_distribution`.

pub mod progress;

use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Args;

use capsa_distribution::client::{Session, Target};
use capsa_distribution::credentials::{Credentials, DockerConfig, Secret, Stored, key_for};
use capsa_distribution::error::Op;
use capsa_distribution::{Config, Platform, PullOptions, PushOptions, TlsVerify, transport};
use capsa_images::Reference;

use super::open_store;
use progress::{Output, Renderer};

/// Flags of `capsa pull`.
#[derive(Args)]
pub struct PullArgs {
    /// Download all tagged images in the repository
    #[arg(short = 'a', long = "all-tags")]
    all_tags: bool,
    /// Set platform if server is multi-platform capable (OS/ARCH[/VARIANT])
    #[arg(long, value_name = "string")]
    platform: Option<String>,
    /// Suppress verbose output
    #[arg(short, long)]
    quiet: bool,
    /// Require HTTPS with a verified certificate (true), or allow unverified
    /// TLS and plain HTTP (false); default: Docker's rules
    #[arg(long, value_name = "bool", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    tls_verify: Option<bool>,
    /// Layers downloaded at once (default 3, or registries.json's max-concurrent-downloads)
    #[arg(long, value_name = "int", value_parser = clap::value_parser!(u16).range(1..=64))]
    max_concurrent_downloads: Option<u16>,
    /// The image
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    name: String,
}

/// Flags of `capsa push`.
#[derive(Args)]
pub struct PushArgs {
    /// Push all tags of the repository
    #[arg(short = 'a', long = "all-tags")]
    all_tags: bool,
    /// Suppress verbose output
    #[arg(short, long)]
    quiet: bool,
    /// Require HTTPS with a verified certificate (true), or allow unverified
    /// TLS and plain HTTP (false); default: Docker's rules
    #[arg(long, value_name = "bool", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    tls_verify: Option<bool>,
    /// Blobs uploaded at once (default 5, or registries.json's max-concurrent-uploads)
    #[arg(long, value_name = "int", value_parser = clap::value_parser!(u16).range(1..=64))]
    max_concurrent_uploads: Option<u16>,
    /// The image
    #[arg(value_name = "NAME[:TAG]")]
    name: String,
}

/// Flags of `capsa login`.
#[derive(Args)]
pub struct LoginArgs {
    /// Username
    #[arg(short, long, value_name = "string")]
    username: Option<String>,
    /// Password
    #[arg(short, long, value_name = "string")]
    password: Option<String>,
    /// Take the password from stdin
    #[arg(long)]
    password_stdin: bool,
    /// Require HTTPS with a verified certificate (true), or allow unverified
    /// TLS and plain HTTP (false); default: Docker's rules
    #[arg(long, value_name = "bool", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    tls_verify: Option<bool>,
    /// The registry (default: Docker Hub)
    #[arg(value_name = "SERVER")]
    server: Option<String>,
}

/// Flags of `capsa logout`.
#[derive(Args)]
pub struct LogoutArgs {
    /// The registry (default: Docker Hub)
    #[arg(value_name = "SERVER")]
    server: Option<String>,
}

fn tls(flag: Option<bool>) -> TlsVerify {
    match flag {
        None => TlsVerify::Default,
        Some(true) => TlsVerify::Yes,
        Some(false) => TlsVerify::No,
    }
}

/// `capsa pull`.
pub fn pull(root: &Path, a: PullArgs) -> Result<ExitCode> {
    let reference = Reference::parse(&a.name)?;
    let platform = a.platform.as_deref().map(Platform::parse).transpose()?;
    let config = Config::load()?;
    let store = open_store(root)?;
    let renderer = Renderer::new(Output::Stdout, a.quiet);
    let opts = PullOptions {
        config: &config,
        tls: tls(a.tls_verify),
        platform,
        progress: &renderer,
        max_concurrent_downloads: a.max_concurrent_downloads.map(usize::from),
    };
    if a.all_tags {
        capsa_distribution::pull::pull_all_tags(&store, &reference, &opts)?;
        let repo = reference.familiar_name();
        super::images::image_event(&store, "pull", &repo, &repo);
        writeln!(io::stdout(), "{}", reference.name())?;
        return Ok(ExitCode::SUCCESS);
    }
    if reference.tag().is_none() && reference.digest().is_none() && !a.quiet {
        writeln!(io::stdout(), "Using default tag: latest")?;
    }
    let pulled = capsa_distribution::pull(&store, &reference, &opts)?;
    let r = &pulled.reference;
    super::images::image_event(&store, "pull", &r.familiar(), &r.familiar_name());
    writeln!(io::stdout(), "{}", pulled.reference)?;
    Ok(ExitCode::SUCCESS)
}

/// `capsa push`.
pub fn push(root: &Path, a: PushArgs) -> Result<ExitCode> {
    let reference = Reference::parse(&a.name)?;
    let config = Config::load()?;
    let store = open_store(root)?;
    let renderer = Renderer::new(Output::Stdout, a.quiet);
    let opts = PushOptions {
        config: &config,
        tls: tls(a.tls_verify),
        progress: &renderer,
        max_concurrent_uploads: a.max_concurrent_uploads.map(usize::from),
    };
    if a.all_tags {
        capsa_distribution::push::push_all_tags(&store, &reference, &opts)?;
        let repo = reference.familiar_name();
        super::images::image_event(&store, "push", &repo, &repo);
        if a.quiet {
            writeln!(io::stdout(), "{}", reference.name())?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if reference.tag().is_none() && reference.digest().is_none() && !a.quiet {
        writeln!(io::stdout(), "Using default tag: latest")?;
    }
    let pushed = capsa_distribution::push(&store, &reference, &opts)?;
    let r = &pushed.reference;
    super::images::image_event(&store, "push", &r.familiar(), &r.familiar_name());
    if a.quiet {
        writeln!(io::stdout(), "{}", pushed.reference)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The registry a `login`/`logout` argument names, as a reference domain:
/// Docker Hub in any of its spellings is `docker.io`; a URL loses its scheme and path.
fn registry_domain(server: Option<&str>) -> Result<String> {
    let Some(s) = server.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(capsa_images::reference::DEFAULT_DOMAIN.to_string());
    };
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = s.split('/').next().unwrap_or(s);
    if matches!(
        host,
        "docker.io" | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com"
    ) {
        return Ok(capsa_images::reference::DEFAULT_DOMAIN.to_string());
    }
    // The host must be a valid registry domain.
    Reference::parse(&format!("{host}/x"))
        .map_err(|_| anyhow::anyhow!("invalid registry {host:?}"))?;
    Ok(host.to_string())
}

/// Reads one line from the terminal, without echo for passwords.
fn prompt(label: &str, hidden: bool) -> Result<String> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    let stdin = io::stdin();
    eprint!("{label}");
    io::stderr().flush()?;
    let saved = if hidden {
        let saved = tcgetattr(&stdin)?;
        let mut quiet = saved.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        quiet.local_flags.insert(LocalFlags::ECHONL);
        tcsetattr(&stdin, SetArg::TCSANOW, &quiet)?;
        Some(saved)
    } else {
        None
    };
    let mut line = String::new();
    let r = stdin.lock().read_line(&mut line);
    if let Some(saved) = saved {
        tcsetattr(&stdin, SetArg::TCSANOW, &saved)?;
    }
    r?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Checks credentials against the registry (as `docker login` does).
fn verify_login(
    config: &Config,
    domain: &str,
    tls_verify: TlsVerify,
    creds: &Credentials,
) -> capsa_distribution::Result<()> {
    let endpoint = transport::endpoints(config, domain, tls_verify, false)
        .pop()
        .expect("the registry itself is always an endpoint");
    let session = Session::open(
        Target {
            config,
            domain,
            repo: "",
            image: "",
            op: Op::Login,
            credentials: Some(creds.clone()),
            scopes: Vec::new(),
        },
        &endpoint,
    )?;
    session.check_login()
}

/// `capsa login`.
pub fn login(a: LoginArgs) -> Result<ExitCode> {
    let domain = registry_domain(a.server.as_deref())?;
    let config = Config::load()?;
    let tls_verify = tls(a.tls_verify);
    let mut docker = DockerConfig::load()?;
    if a.password.is_some() && a.password_stdin {
        bail!("--password and --password-stdin are mutually exclusive");
    }
    if a.password_stdin && a.username.is_none() {
        bail!("Must provide --username with --password-stdin");
    }
    if a.password.is_some() {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
    }
    // Without flags, stored credentials are tried first.
    if a.username.is_none()
        && a.password.is_none()
        && let Some(stored) = docker.get(&domain)?
    {
        println!("Authenticating with existing credentials...");
        match verify_login(&config, &domain, tls_verify, &stored) {
            Ok(()) => {
                println!("Login Succeeded");
                return Ok(ExitCode::SUCCESS);
            }
            Err(e) => eprintln!("Login did not succeed, error: {e}"),
        }
    }
    let interactive = io::stdin().is_terminal();
    let username = match a.username {
        Some(u) => u,
        None if interactive => prompt("Username: ", false)?,
        None => bail!("Cannot perform an interactive login from a non TTY device"),
    };
    let password = if a.password_stdin {
        let mut s = String::new();
        io::stdin().lock().read_to_string(&mut s)?;
        s.trim_end_matches(['\n', '\r']).to_string()
    } else if let Some(p) = a.password {
        p
    } else if interactive {
        prompt("Password: ", true)?
    } else {
        bail!("Cannot perform an interactive login from a non TTY device");
    };
    if username.is_empty() {
        bail!("Username is required");
    }
    if password.is_empty() {
        bail!("Password is required");
    }
    let creds = Credentials {
        username,
        secret: Secret::Password(password),
    };
    verify_login(&config, &domain, tls_verify, &creds)?;
    if let Stored::File(p) = docker.store(&domain, &creds)? {
        eprintln!(
            "WARNING! Your password will be stored unencrypted in {}.\nConfigure a credential helper (credsStore) to remove this warning.",
            p.display()
        );
    }
    println!("Login Succeeded");
    Ok(ExitCode::SUCCESS)
}

/// `capsa logout`.
pub fn logout(a: LogoutArgs) -> Result<ExitCode> {
    let domain = registry_domain(a.server.as_deref())?;
    let mut docker = DockerConfig::load()?;
    let key = key_for(&domain);
    if docker.erase(&domain)? {
        println!("Removing login credentials for {key}");
    } else {
        println!("Not logged in to {key}");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_servers_normalise_like_docker() {
        assert_eq!(registry_domain(None).unwrap(), "docker.io");
        assert_eq!(
            registry_domain(Some("https://index.docker.io/v1/")).unwrap(),
            "docker.io"
        );
        assert_eq!(
            registry_domain(Some("registry-1.docker.io")).unwrap(),
            "docker.io"
        );
        assert_eq!(
            registry_domain(Some("https://localhost:5000/")).unwrap(),
            "localhost:5000"
        );
        assert_eq!(registry_domain(Some("quay.io")).unwrap(), "quay.io");
        assert!(registry_domain(Some("bad host!")).is_err());
    }
}
