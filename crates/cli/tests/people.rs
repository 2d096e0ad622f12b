//! People on the command line: `switchboard login` saves a personal access token (mode 0600)
//! that later commands use when no token is given; `user add|list|rm` and `token
//! create|list|revoke` as tables and `--json`.

use std::os::unix::fs::PermissionsExt;

mod common;

use common::cli::{Backend, Cli, Hub};
use serde_json::Value;
use switchboard_core::api::RegisterAgent;

const PASSWORD: &str = "correct horse battery";

async fn login_and_use_the_saved_token(backend: Backend) {
    let hub = Hub::start(backend, "people cli", &[]).await;
    let admin = &hub.cli;
    hub.admin.register_agent(&RegisterAgent { name: "bot".into(), ..Default::default() }).await.unwrap();

    // The admin adds people; the table and the JSON name them.
    let mut add = admin.command(&["user", "add", "ann@example.com", "--name", "Ann", "--role", "member", "--password"]);
    add.env("SWITCHBOARD_PASSWORD", PASSWORD);
    common::cli::Run::of(add).ok();
    let viewer = admin.run(&["user", "add", "vi@example.com", "--role", "viewer", "--json"]).json();
    assert_eq!(viewer["role"], "viewer");
    assert_eq!(viewer["has_password"], false);
    let table = admin.run(&["user", "list"]).table();
    assert_eq!(table.cell("EMAIL", "ann@example.com", "ROLE"), "member");
    assert_eq!(table.cell("EMAIL", "ann@example.com", "PASSWORD"), "yes");
    assert_eq!(table.cell("EMAIL", "vi@example.com", "NAME"), "vi@example.com");

    // Ann signs in: no token given, the password from the environment.
    let config = tempfile::tempdir().unwrap();
    let ann = Cli::new(hub.url(), None);
    let as_ann = |args: &[&str]| {
        let mut cmd = ann.command(args);
        cmd.env("XDG_CONFIG_HOME", config.path()).env("SWITCHBOARD_DATA_DIR", "/nonexistent");
        cmd
    };
    let mut login = as_ann(&["login", "--email", "ann@example.com"]);
    login.env("SWITCHBOARD_PASSWORD", PASSWORD);
    let out = common::cli::Run::of(login).ok();
    assert!(out.starts_with("signed in as ann@example.com (member) in tenant default"), "{out}");
    let file = config.path().join("switchboard").join("credentials");
    let mode = std::fs::metadata(&file).expect("the credentials file").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "credentials mode {:o}", mode & 0o777);
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let token = saved["hubs"][hub.url()]["token"].as_str().expect("a token for this hub");
    assert!(token.starts_with("sbp_"), "{saved}");
    assert!(!out.contains(token), "the token is saved, not printed");

    // Later commands act as Ann with the saved token.
    let who = common::cli::Run::of(as_ann(&["whoami", "--json"])).json();
    assert_eq!(who["user"]["email"], "ann@example.com");
    assert_eq!(who["user"]["role"], "member");
    let agents = common::cli::Run::of(as_ann(&["agent", "list"])).table();
    assert_eq!(agents.column("NAME"), ["bot"]);
    // A member administers nothing.
    let refused = common::cli::Run::of(as_ann(&["user", "list"])).fails();
    assert!(refused.contains("member"), "{refused}");

    // Ann's tokens: the CLI's own, one more, revoked.
    let made = common::cli::Run::of(as_ann(&["token", "create", "ci", "--expires-in-days", "1", "--json"])).json();
    assert!(made["token"].as_str().unwrap().starts_with("sbp_"));
    let id = made["id"].as_str().unwrap();
    let tokens = common::cli::Run::of(as_ann(&["token", "list"])).table();
    assert_eq!(tokens.column("NAME").len(), 2);
    assert_eq!(tokens.cell("ID", id, "NAME"), "ci");
    let out = common::cli::Run::of(as_ann(&["token", "revoke", id])).ok();
    assert_eq!(out.trim(), format!("revoked token {id}"));
    let ci = admin.with_token(made["token"].as_str().unwrap());
    assert!(ci.run(&["whoami"]).fails().contains("unauthenticated"));

    // The token is saved for the URL it was made at: the same hub under another name
    // (localhost) is not sent it, so there the CLI has no token.
    let elsewhere = Cli::new(hub.url().replace("127.0.0.1", "localhost"), None);
    let mut cmd = elsewhere.command(&["whoami"]);
    cmd.env("XDG_CONFIG_HOME", config.path()).env("SWITCHBOARD_DATA_DIR", "/nonexistent");
    assert!(common::cli::Run::of(cmd).fails().contains("unauthenticated"));

    // The admin removes Ann: the saved token stops working.
    let ann_id = table.cell("EMAIL", "ann@example.com", "ID");
    admin.run(&["user", "rm", &ann_id]).ok();
    let gone = common::cli::Run::of(as_ann(&["whoami"])).fails();
    assert!(gone.contains("unauthenticated"), "{gone}");
}

#[tokio::test]
async fn login_saves_a_private_token_that_later_commands_use() {
    login_and_use_the_saved_token(Backend::Sqlite).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set SWITCHBOARD_TEST_DATABASE_URL=postgres://… and run with --ignored (see README)"]
async fn login_saves_a_private_token_that_later_commands_use_on_postgres() {
    login_and_use_the_saved_token(Backend::Postgres).await;
}
