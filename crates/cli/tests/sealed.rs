//! End-to-end trust on the command line: `switchboard keys init` keeps the private halves in
//! the config dir (mode 0600) and publishes the public ones; `send --seal` seals for the
//! recipient's keys; `inbox` shows the opened text and that the signature verified.

use std::os::unix::fs::PermissionsExt;

mod common;

use common::cli::{Backend, Cli, Hub, Run};
use switchboard_core::api::RegisterAgent;

async fn sealed_message_from_the_command_line(backend: Backend) {
    let hub = Hub::start(backend, "keys cli", &[]).await;
    let register = |name: &str| RegisterAgent { name: name.into(), ..Default::default() };
    let alice = hub.admin.register_agent(&register("alice")).await.unwrap();
    let bob = hub.admin.register_agent(&register("bob")).await.unwrap();
    let (a_config, b_config) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let run = |token: &str, config: &tempfile::TempDir, args: &[&str]| {
        let mut cmd = Cli::new(hub.url(), Some(token.to_owned())).command(args);
        cmd.env("XDG_CONFIG_HOME", config.path());
        Run::of(cmd)
    };

    let out = run(&alice.api_key, &a_config, &["keys", "init"]).ok();
    assert!(out.contains("published keys of agent:"), "{out}");
    let file = a_config.path().join("switchboard/keys").join(format!("agent-{}.json", alice.agent.id));
    let mode = std::fs::metadata(&file).expect("the key file").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "key file mode {:o}", mode & 0o777);
    let again = run(&alice.api_key, &a_config, &["keys", "init"]).fails();
    assert!(again.contains("--rotate"), "{again}");
    run(&bob.api_key, &b_config, &["keys", "init"]).ok();
    let listed = run(&bob.api_key, &b_config, &["keys", "list"]).table();
    assert_eq!(listed.column("KIND"), ["ed25519", "x25519"]);

    let to = format!("agent:{}", bob.agent.id);
    run(&alice.api_key, &a_config, &["send", "--to", &to, "--seal", "the vault code is 4711"]).ok();
    let inbox = run(&bob.api_key, &b_config, &["inbox", "--ack", "--wait-ms", "5000"]).table();
    assert_eq!(inbox.column("TEXT"), ["the vault code is 4711"]);
    assert_eq!(inbox.column("SIGNATURE"), ["verified"]);

    // The hub's own view of the message is ciphertext.
    let m = hub.admin.deliveries(&Default::default()).await.unwrap();
    let id = &m.deliveries[0].message_id;
    let stored = hub.admin.get_message(id).await.unwrap().message;
    assert!(!serde_json::to_string(&stored.parts).unwrap().contains("4711"));
}

#[tokio::test]
async fn keys_init_send_seal_and_inbox_open_and_verify() {
    sealed_message_from_the_command_line(Backend::Sqlite).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set SWITCHBOARD_TEST_DATABASE_URL=postgres://… and run with --ignored (see README)"]
async fn keys_init_send_seal_and_inbox_open_and_verify_on_postgres() {
    sealed_message_from_the_command_line(Backend::Postgres).await;
}
