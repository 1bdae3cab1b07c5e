//! Registry authentication and transport: a TLS registry with a CA made by
//! the test and htpasswd basic auth, a registry with token authentication
//! and a token server signing JWTs, `login`/`logout` with Docker's
//! config.json, credential helpers, identity tokens, and certificate errors.

mod common;
mod registry_harness;

use base64::Engine as _;
use common::*;
use registry_harness::*;
use serde_json::{Value, json};

fn docker_config(c: &Capsa) -> Value {
    serde_json::from_slice(&std::fs::read(c.docker_config.join("config.json")).unwrap()).unwrap()
}

#[test]
fn tls_registry_with_basic_auth() {
    require_registry!();
    let pki = Pki::new();
    let reg = Registry::start(Some(&pki), RegistryAuth::Htpasswd(&[("alice", "s3cret")]));
    let h = reg.host.clone();
    let c = Capsa::new();
    let img = app_image("tls:1", b"tls");
    c.load(&docker_archive(std::slice::from_ref(&img)));
    let name = format!("{h}/secure/app:1");
    c.ok(&["tag", "tls:1", &name]);

    // Without its CA the certificate is refused, naming the registry.
    let err = c.fails(&["pull", &name]);
    assert_one_line_error(&err, &["certificate", "UnknownIssuer", &h, "secure/app:1"]);
    let err = c.fails(&["login", "-u", "alice", "-p", "s3cret", &h]);
    assert!(err.contains("certificate"), "{err}");

    pki.install_ca(&c.certs_dir, &h);
    // Trusted now, but credentials are needed.
    let err = c.fails(&["pull", &name]);
    assert_one_line_error(
        &err,
        &["authentication required", "401", &h, "secure/app:1"],
    );
    let err = c.fails(&["push", &name]);
    assert!(
        err.contains("authentication required") && err.contains(&h),
        "{err}"
    );

    // A wrong password is refused and nothing is stored.
    let out = c.run_stdin(
        &["login", "-u", "alice", "--password-stdin", &h],
        b"wrong\n",
    );
    let err = fails(out, &["login"]);
    assert_one_line_error(&err, &["logging in to", &h, "401"]);
    assert!(!c.docker_config.join("config.json").exists());

    let out = c.login(&h, "alice", "s3cret", &[]);
    assert_eq!(out, "Login Succeeded\n");
    let v = docker_config(&c);
    let expected = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
    assert_eq!(v["auths"][&h]["auth"], json!(expected));

    let out = c.ok(&["push", &name]);
    assert_eq!(out.matches(": Pushed").count(), 2, "{out}");
    c.ok(&["rmi", &name, "tls:1"]);
    c.ok(&["pull", &name]);
    assert_eq!(
        c.ok(&["image", "inspect", "-f", "{{.Id}}", &name]).trim(),
        img.id()
    );
    // Logging in again reuses the stored credentials.
    let out = c.run_stdin(&["login", &h], b"");
    assert!(
        stdout(&out).contains("Authenticating with existing credentials...\nLogin Succeeded"),
        "{}",
        stdout(&out)
    );

    assert_eq!(
        c.ok(&["logout", &h]),
        format!("Removing login credentials for {h}\n")
    );
    assert_eq!(c.ok(&["logout", &h]), format!("Not logged in to {h}\n"));
    let err = c.fails(&["pull", &name]);
    assert!(err.contains("authentication required"), "{err}");

    // --tls-verify=false: no CA needed.
    let d = Capsa::new();
    let err = d.fails(&["pull", &name]);
    assert!(err.contains("certificate"), "{err}");
    d.login(&h, "alice", "s3cret", &["--tls-verify=false"]);
    d.ok(&["pull", "--tls-verify=false", &name]);
    // --tls-verify (true) still verifies.
    let err = d.fails(&["pull", "--tls-verify", &name]);
    assert!(err.contains("certificate"), "{err}");
    // A registry listed in insecure-registries needs no CA either.
    std::fs::write(
        &d.registries_config,
        serde_json::to_vec(&json!({"insecure-registries": [&h]})).unwrap(),
    )
    .unwrap();
    d.ok(&["rmi", &name]);
    d.ok(&["pull", &name]);
}

#[test]
fn token_authentication_with_scoped_reused_tokens() {
    require_registry!();
    let tokens = TokenServer::start(&[("bob", "hunter2")]);
    let reg = Registry::start(None, RegistryAuth::Token(&tokens));
    let h = reg.host.clone();
    let c = Capsa::new();
    let img = app_image("tok:1", b"token");
    c.load(&docker_archive(std::slice::from_ref(&img)));
    let name = format!("{h}/team/app:1");
    c.ok(&["tag", "tok:1", &name]);

    // Anonymous users may only pull: pushing is refused.
    let err = c.fails(&["push", &name]);
    assert_one_line_error(&err, &["pushing", &h, "team/app:1"]);
    assert!(err.contains("401") || err.contains("denied"), "{err}");

    let err = fails(
        c.run_stdin(&["login", "-u", "bob", "--password-stdin", &h], b"nope\n"),
        &["login"],
    );
    assert_one_line_error(&err, &["logging in to", &h, "refused the credentials"]);
    c.login(&h, "bob", "hunter2", &[]);

    let before = tokens.requests().len();
    let out = c.ok(&["push", &name]);
    assert_eq!(out.matches(": Pushed").count(), 2, "{out}");
    let during: Vec<Request> = tokens.requests()[before..].to_vec();
    // One token for the whole push (HEADs, uploads of three blobs, the manifest).
    assert_eq!(during.len(), 1, "{during:?}");
    assert_eq!(during[0].query("scope"), ["repository:team/app:pull,push"]);
    assert_eq!(during[0].query("service"), [TokenServer::SERVICE]);
    assert_eq!(during[0].query("account"), ["bob"]);
    assert!(
        during[0]
            .header("authorization")
            .unwrap()
            .starts_with("Basic ")
    );

    // Anonymous pull in a fresh capsa: anonymous token, pull scope, reused.
    let d = Capsa::new();
    let before = tokens.requests().len();
    d.ok(&["pull", &name]);
    let during: Vec<Request> = tokens.requests()[before..].to_vec();
    assert_eq!(during.len(), 1, "{during:?}");
    assert_eq!(during[0].query("scope"), ["repository:team/app:pull"]);
    assert!(during[0].header("authorization").is_none());
    assert_eq!(
        d.ok(&["image", "inspect", "-f", "{{.Id}}", &name]).trim(),
        img.id()
    );

    // Pushing to another repository mounts the blobs, with a token that
    // also covers pulling from the source repository.
    let other = format!("{h}/other/app:1");
    c.ok(&["tag", "tok:1", &other]);
    let out = c.ok(&["push", &other]);
    assert_eq!(out.matches(": Mounted from team/app").count(), 2, "{out}");
    let scopes: Vec<Vec<String>> = tokens.requests().iter().map(|r| r.query("scope")).collect();
    assert!(
        scopes
            .iter()
            .any(|s| s.contains(&"repository:team/app:pull".to_string())
                && s.contains(&"repository:other/app:pull,push".to_string())),
        "{scopes:?}"
    );

    // An identity token (OAuth2 refresh token) in config.json works too.
    let e = Capsa::new();
    std::fs::create_dir_all(&e.docker_config).unwrap();
    std::fs::write(
        e.docker_config.join("config.json"),
        serde_json::to_vec(&json!({"auths": {&h: {"auth": base64::engine::general_purpose::STANDARD.encode("<token>:"), "identitytoken": "refresh-bob"}}})).unwrap(),
    )
    .unwrap();
    e.load(&docker_archive(&[app_image("idt:1", b"identity")]));
    let third = format!("{h}/identity/app:1");
    e.ok(&["tag", "idt:1", &third]);
    e.ok(&["push", &third]);
    let last = tokens.requests().last().unwrap().clone();
    assert_eq!(last.method, "POST");
}

#[test]
fn credential_helpers_keep_the_credentials() {
    require_registry!();
    let tokens = TokenServer::start(&[("carol", "pa55")]);
    let reg = Registry::start(None, RegistryAuth::Token(&tokens));
    let h = reg.host.clone();
    let c = {
        let mut c = Capsa::new();
        let bin_dir = c.root.scratch("helpers");
        std::fs::create_dir_all(&bin_dir).unwrap();
        let helper = bin_dir.join("docker-credential-capsatest");
        std::fs::write(
            &helper,
            "#!/bin/sh\nstore=\"$(dirname \"$0\")/store.json\"\ncase \"$1\" in\n  store) cat > \"$store\" ;;\n  get) read url; if [ -f \"$store\" ] && grep -q \"\\\"$url\\\"\" \"$store\"; then cat \"$store\"; else echo 'credentials not found in native keychain'; exit 1; fi ;;\n  erase) read url; if [ -f \"$store\" ]; then rm \"$store\"; else echo 'credentials not found in native keychain'; exit 1; fi ;;\nesac\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        c.extra_path = Some(bin_dir);
        std::fs::create_dir_all(&c.docker_config).unwrap();
        std::fs::write(
            c.docker_config.join("config.json"),
            br#"{"credsStore": "capsatest", "psFormat": "table"}"#,
        )
        .unwrap();
        c
    };
    let out = c.run_stdin(&["login", "-u", "carol", "--password-stdin", &h], b"pa55\n");
    assert_eq!(ok(out, &["login"]), "Login Succeeded\n");
    let stored: Value = serde_json::from_slice(
        &std::fs::read(c.extra_path.as_ref().unwrap().join("store.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        stored,
        json!({"ServerURL": h, "Username": "carol", "Secret": "pa55"})
    );
    let v = docker_config(&c);
    assert_eq!(v["auths"][&h], json!({}), "no secret in config.json");
    assert_eq!(v["psFormat"], "table", "other keys are kept");

    c.load(&docker_archive(&[app_image("helper:1", b"helper")]));
    let name = format!("{h}/helped/app:1");
    c.ok(&["tag", "helper:1", &name]);
    c.ok(&["push", &name]);
    assert_eq!(
        c.ok(&["logout", &h]),
        format!("Removing login credentials for {h}\n")
    );
    assert!(!c.extra_path.as_ref().unwrap().join("store.json").exists());
    let err = c.fails(&["push", &name]);
    assert!(err.contains(&h), "{err}");

    // A helper that is missing is a clear error.
    std::fs::write(
        c.docker_config.join("config.json"),
        br#"{"credHelpers": {"HOST": "absent"}}"#.replace_host(&h),
    )
    .unwrap();
    let err = c.fails(&["pull", &name]);
    assert!(err.contains("docker-credential-absent"), "{err}");
}

trait ReplaceHost {
    fn replace_host(&self, host: &str) -> Vec<u8>;
}

impl ReplaceHost for [u8] {
    fn replace_host(&self, host: &str) -> Vec<u8> {
        String::from_utf8_lossy(self)
            .replace("HOST", host)
            .into_bytes()
    }
}

#[test]
fn login_flags_are_checked() {
    require_registry!();
    let c = Capsa::new();
    let err = c.fails(&["login", "--password-stdin", "127.0.0.1:1"]);
    assert!(
        err.contains("Must provide --username with --password-stdin"),
        "{err}"
    );
    let err = c.fails(&[
        "login",
        "-u",
        "a",
        "-p",
        "b",
        "--password-stdin",
        "127.0.0.1:1",
    ]);
    assert!(err.contains("mutually exclusive"), "{err}");
    let err = c.fails(&["login", "127.0.0.1:1"]);
    assert!(err.contains("non TTY"), "{err}");
    let err = c.fails(&["login", "-u", "a", "-p", "b", "127.0.0.1:1"]);
    assert!(
        err.contains("WARNING! Using --password via the CLI is insecure"),
        "{err}"
    );
    assert!(
        err.contains("logging in to 127.0.0.1:1") && err.contains("unreachable"),
        "{err}"
    );
    assert_eq!(
        c.ok(&["logout"]),
        "Not logged in to https://index.docker.io/v1/\n"
    );
}
