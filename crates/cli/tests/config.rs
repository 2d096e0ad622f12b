//! Where the binary takes its settings from: `serve` layers flags over environment over
//! `switchboard.toml` over defaults, one setting at a time; client commands given no token
//! use the admin token the hub saved in its data dir.

use std::path::Path;

mod common;

use common::cli::{Cli, Running, switchboard};
use common::free_port;

/// `switchboard serve` in `dir` with `args` and `env`, once it has said where it listens:
/// the process, the address and the data dir from `listening on http://… (data in …)`.
fn serve(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (Running, String, String) {
    let mut cmd = switchboard();
    cmd.arg("serve").args(args).envs(env.iter().copied()).current_dir(dir);
    let hub = Running::spawn(cmd);
    let line = hub.line(30, "the listening line");
    let rest = line.strip_prefix("switchboard listening on http://").unwrap_or_else(|| panic!("{line}"));
    let (addr, data) = rest.split_once(" (data in ").unwrap_or_else(|| panic!("{line}"));
    (hub, addr.to_owned(), data.trim_end_matches(')').to_owned())
}

/// Whether `token` is the hub's admin token: only the admin may list agents... and register.
fn is_admin(addr: &str, token: &str) -> bool {
    Cli::new(format!("http://{addr}"), Some(token.into()))
        .run(&["agent", "register", "--name", &unique()])
        .out
        .status
        .success()
}

fn unique() -> String {
    format!("a{}", switchboard_core::new_id().simple())
}

const FILE_TOKEN: &str = "sba_from-the-config-file-0001";
const ENV_TOKEN: &str = "sba_from-the-environment-0001";

#[test]
fn serve_takes_flags_over_environment_over_the_file_over_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let [file_port, env_port, flag_port] = [free_port(), free_port(), free_port()];
    let toml =
        format!("listen = \"127.0.0.1:{file_port}\"\ndata_dir = \"data-from-file\"\nadmin_token = \"{FILE_TOKEN}\"\n");
    std::fs::write(dir.path().join("switchboard.toml"), toml).unwrap();

    // ./switchboard.toml over the defaults.
    let (hub, addr, data) = serve(dir.path(), &[], &[]);
    assert_eq!((addr.as_str(), data.as_str()), (format!("127.0.0.1:{file_port}").as_str(), "data-from-file"));
    assert!(is_admin(&addr, FILE_TOKEN), "admin_token from the file");
    drop(hub);

    // The environment over the file, setting by setting: the data dir still comes from it.
    let env = [("SWITCHBOARD_LISTEN", format!("127.0.0.1:{env_port}")), ("SWITCHBOARD_ADMIN_TOKEN", ENV_TOKEN.into())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (hub, addr, data) = serve(dir.path(), &[], &env);
    assert_eq!((addr.as_str(), data.as_str()), (format!("127.0.0.1:{env_port}").as_str(), "data-from-file"));
    assert!(is_admin(&addr, ENV_TOKEN), "SWITCHBOARD_ADMIN_TOKEN");
    drop(hub);

    // Flags over the environment; SWITCHBOARD_DATA_DIR over the file. On this fresh store
    // only the winning admin token was ever recorded (an operator's token is added to a
    // store, never replaces one, so the store above accepts both).
    let mut env = env.clone();
    env.push(("SWITCHBOARD_DATA_DIR", "data-from-env"));
    let (hub, addr, data) = serve(dir.path(), &["--listen", &format!("127.0.0.1:{flag_port}")], &env);
    assert_eq!((addr.as_str(), data.as_str()), (format!("127.0.0.1:{flag_port}").as_str(), "data-from-env"));
    assert!(is_admin(&addr, ENV_TOKEN) && !is_admin(&addr, FILE_TOKEN), "SWITCHBOARD_ADMIN_TOKEN over the file");
    let (hub2, _, data) =
        serve(dir.path(), &["--data-dir", "data-from-flag"], &[("SWITCHBOARD_LISTEN", "127.0.0.1:0")]);
    assert_eq!(data, "data-from-flag");
    drop((hub, hub2));

    // --config (or SWITCHBOARD_CONFIG) names the file to read instead of ./switchboard.toml.
    let other = dir.path().join("other.toml");
    std::fs::write(&other, "data_dir = \"data-from-other\"\n").unwrap();
    let env = [("SWITCHBOARD_LISTEN", "127.0.0.1:0")];
    let (_hub, _, data) = serve(dir.path(), &["--config", other.to_str().unwrap()], &env);
    assert_eq!(data, "data-from-other");
    let env = [("SWITCHBOARD_LISTEN", "127.0.0.1:0"), ("SWITCHBOARD_CONFIG", other.to_str().unwrap())];
    let (_hub, _, data) = serve(dir.path(), &[], &env);
    assert_eq!(data, "data-from-other");

    // With no file, the defaults; the admin token is made and shown once.
    let bare = tempfile::tempdir().unwrap();
    let (hub, _, data) = serve(bare.path(), &[], &[("SWITCHBOARD_LISTEN", "127.0.0.1:0")]);
    assert_eq!(data, "./switchboard-data");
    assert_eq!(
        hub.line(10, "the token line"),
        "admin token (shown once; also saved to ./switchboard-data/admin.token):"
    );
}

#[test]
fn a_bad_setting_stops_serve_naming_the_setting_and_where_it_came_from() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("switchboard.toml"), "max_attempts = \"ten\"\n").unwrap();
    let mut cmd = switchboard();
    cmd.args(["serve", "--listen", "127.0.0.1:0"]).current_dir(dir.path());
    let err = common::cli::Run::of(cmd).fails();
    assert!(err.contains("switchboard.toml") && err.contains("max_attempts"), "{err}");

    let mut cmd = switchboard();
    cmd.args(["serve", "--config", "missing.toml"]).current_dir(dir.path());
    let err = common::cli::Run::of(cmd).fails();
    assert!(err.contains("cannot read config file missing.toml"), "{err}");
}

#[test]
fn allow_private_endpoints_is_a_flag_and_the_flag_beats_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let loopback = |addr: &str| {
        let cli = Cli::new(format!("http://{addr}"), Some(ENV_TOKEN.into()));
        cli.run(&["agent", "register", "--name", &unique(), "--endpoint", "http://127.0.0.1:9/hook"])
    };
    let env = [("SWITCHBOARD_LISTEN", "127.0.0.1:0"), ("SWITCHBOARD_ADMIN_TOKEN", ENV_TOKEN)];

    let (_hub, addr, _) = serve(dir.path(), &[], &env);
    let err = loopback(&addr).fails();
    assert!(err.contains("endpoint"), "refused by default: {err}");

    let (_hub, addr, _) = serve(dir.path(), &["--allow-private-endpoints", "--data-dir", "two"], &env);
    loopback(&addr).ok();

    let env = [env[0], env[1], ("SWITCHBOARD_ALLOW_PRIVATE_ENDPOINTS", "true")];
    let (_hub, addr, _) = serve(dir.path(), &["--allow-private-endpoints=false", "--data-dir", "three"], &env);
    loopback(&addr).fails();
}

#[test]
fn client_commands_use_the_saved_admin_token_when_none_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (hub, addr, data) = serve(dir.path(), &[], &[("SWITCHBOARD_LISTEN", &format!("127.0.0.1:{port}"))]);
    assert_eq!(data, "./switchboard-data");
    assert_eq!(
        hub.line(10, "the token line"),
        "admin token (shown once; also saved to ./switchboard-data/admin.token):"
    );
    let shown = hub.line(10, "the token");
    let token = shown.strip_prefix("  ").unwrap();
    let file = dir.path().join("switchboard-data/admin.token");
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), token);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    }

    // An admin-only command, so that only the admin token can make it succeed.
    let hub_cli = Cli::new(format!("http://{addr}"), None);
    let register = |cli: &Cli, cwd: &Path, env: &[(&str, &str)]| {
        let mut cmd = cli.command(&["agent", "register", "--name", &unique()]);
        cmd.current_dir(cwd).envs(env.iter().copied());
        common::cli::Run::of(cmd)
    };
    let elsewhere = tempfile::tempdir().unwrap();
    register(&hub_cli, dir.path(), &[]).ok();
    register(&hub_cli, dir.path(), &[("SWITCHBOARD_TOKEN", "")]).ok();
    let err = register(&hub_cli, elsewhere.path(), &[]).fails();
    assert!(err.contains("(unauthenticated)") && err.contains("SWITCHBOARD_TOKEN"), "no token file there: {err}");
    let data_dir = dir.path().join("switchboard-data");
    register(&hub_cli, elsewhere.path(), &[("SWITCHBOARD_DATA_DIR", data_dir.to_str().unwrap())]).ok();

    // A token that is given wins over the file, wrong or not.
    let err = register(&hub_cli.with_token("sba_wrong-token-given-0001"), dir.path(), &[]).fails();
    assert!(err.contains("(unauthenticated)"), "{err}");
    let mut cmd = hub_cli.command(&["agent", "list", "--token", "sba_wrong-token-given-0001"]);
    cmd.current_dir(dir.path());
    assert!(common::cli::Run::of(cmd).fails().contains("(unauthenticated)"));
}

/// A self-signed certificate for 127.0.0.1 and its key, made with the `openssl` command.
fn self_signed(dir: &Path) -> (String, String) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
        .args(["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE", "-addext", "extendedKeyUsage=serverAuth"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap_or_else(|e| {
            panic!("this test makes a certificate with the `openssl` command, which cannot be run ({e}); install it (Debian: apt-get install openssl)")
        });
    assert!(out.status.success(), "openssl failed: {}", String::from_utf8_lossy(&out.stderr));
    (cert.to_str().unwrap().to_owned(), key.to_str().unwrap().to_owned())
}

#[test]
fn serve_with_a_certificate_listens_on_https_and_the_cli_trusts_it_with_ca_cert() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path());
    let env = [("SWITCHBOARD_LISTEN", "127.0.0.1:0"), ("SWITCHBOARD_ADMIN_TOKEN", ENV_TOKEN)];

    let mut cmd = switchboard();
    cmd.args(["serve", "--tls-cert", &cert, "--tls-key", &key]).envs(env).current_dir(dir.path());
    let hub = Running::spawn(cmd);
    let line = hub.line(30, "the listening line");
    let rest = line.strip_prefix("switchboard listening on https://").unwrap_or_else(|| panic!("{line}"));
    let addr = rest.split_once(' ').unwrap().0.to_owned();
    let cli = Cli::new(format!("https://{addr}"), Some(ENV_TOKEN.into()));

    // Trusted by --ca-cert or SWITCHBOARD_CA_CERT; without it the certificate is refused.
    cli.run(&["agent", "register", "--name", &unique(), "--ca-cert", &cert]).ok();
    let mut cmd = cli.command(&["agent", "list"]);
    cmd.env("SWITCHBOARD_CA_CERT", &cert);
    common::cli::Run::of(cmd).ok();
    let err = cli.run(&["agent", "list"]).fails();
    assert!(err.contains(&format!("cannot reach the hub at https://{addr}")) && err.contains("certificate"), "{err}");
    assert!(err.contains("hint: if the hub's certificate is self-signed") && err.contains("--ca-cert"), "{err}");
    let err = cli.run(&["agent", "list", "--ca-cert", "missing.pem"]).fails();
    assert!(err.contains("--ca-cert (SWITCHBOARD_CA_CERT): cannot read missing.pem"), "{err}");
    let not_pem = dir.path().join("not-a-cert.pem");
    std::fs::write(&not_pem, "hello\n").unwrap();
    let err = cli.run(&["agent", "list", "--ca-cert", not_pem.to_str().unwrap()]).fails();
    assert!(err.contains("holds no PEM `-----BEGIN CERTIFICATE-----` section"), "{err}");
    // Plain HTTP to the HTTPS port is not served.
    let err = Cli::new(format!("http://{addr}"), Some(ENV_TOKEN.into())).run(&["agent", "list"]).fails();
    assert!(err.contains("cannot reach the hub") && err.contains("use an https:// URL"), "{err}");
    drop(hub);

    // Half a TLS configuration, or a key file with no key, stops serve naming what is wrong.
    let mut cmd = switchboard();
    cmd.args(["serve"]).envs(env).env("SWITCHBOARD_TLS_CERT", &cert).current_dir(dir.path());
    let err = common::cli::Run::of(cmd).fails();
    assert!(err.contains("tls_key (--tls-key, SWITCHBOARD_TLS_KEY): missing"), "{err}");
    let mut cmd = switchboard();
    cmd.args(["serve", "--tls-cert", &cert, "--tls-key", &cert]).envs(env).current_dir(dir.path());
    let err = common::cli::Run::of(cmd).fails();
    assert!(err.contains(&format!("tls_key: {cert} holds no private key")), "{err}");
}
