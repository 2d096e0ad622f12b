//! `switchboard agent import URL`: an external A2A agent registered from its Agent Card, run
//! as the real binary against a real hub. The card is served by a small axum server on
//! loopback (the hub allows private endpoints for it).

use serde_json::{Value, json};

mod common;

use common::cli::{Backend, Hub};

/// Serves `card` (made from the server's base URL) at `/.well-known/agent-card.json`.
async fn card_server(card: impl Fn(&str) -> Value) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let card = card(&base);
    let app = axum::Router::new().route(
        "/.well-known/agent-card.json",
        axum::routing::get(move || {
            let card = card.clone();
            async move { axum::Json(card) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

async fn import(backend: Backend) {
    let hub = Hub::start(backend, "agent import", &[("SWITCHBOARD_ALLOW_PRIVATE_ENDPOINTS", "true")]).await;
    let base = card_server(|base| {
        json!({
            "name": "Echo Agent", "version": "1.0.0", "description": "says it back",
            "supportedInterfaces": [{ "url": format!("{base}/rpc"), "protocolBinding": "JSONRPC", "protocolVersion": "1.0" }],
            "skills": [{ "id": "echo", "name": "Echo" }, { "id": "shout", "name": "Shout" }],
        })
    })
    .await;
    let card_url = format!("{base}/.well-known/agent-card.json");

    // For people: the agent, its address, the interface it is reached through, its skills.
    let out = hub.cli.run(&["agent", "import", &card_url, "--bearer", "tok"]).ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    let rest = lines[0].strip_prefix("imported agent Echo-Agent (").expect("first line names the agent");
    let (id, from) = rest.split_once(") from ").expect("and the card");
    assert_eq!(from, card_url);
    assert_eq!(lines[1], format!("address:  agent:{id}"));
    assert_eq!(lines[2], format!("a2a:      JSONRPC 1.0 at {base}/rpc"));
    assert_eq!(lines[3], "capabilities: echo, shout");
    assert!(!out.contains("tok\n") && !out.contains(" tok"), "the token is not printed: {out}");
    let a = hub.admin.get_agent(id).await.unwrap();
    assert_eq!(a.endpoint.as_deref(), Some(format!("{base}/rpc").as_str()));

    // For scripts: the agent record and the interface, under --name.
    let r = hub.cli.run(&["agent", "import", &card_url, "--name", "echo-2", "--json"]).json();
    assert_eq!(r["agent"]["name"], "echo-2");
    assert_eq!(r["agent"]["capabilities"][1]["name"], "shout");
    assert_eq!(r["a2a"]["binding"], "JSONRPC");
    assert_eq!(r["a2a"]["card_url"], json!(card_url));

    // A card that is not there: the error names the field and says what to give.
    let err = hub.cli.run(&["agent", "import", &format!("{base}/nothing")]).fails();
    assert!(err.contains("card_url") && err.contains("404"), "{err}");
    // The same name twice is refused like a registration.
    let err = hub.cli.run(&["agent", "import", &card_url, "--name", "echo-2"]).fails();
    assert!(err.contains("conflict") || err.contains("already"), "{err}");
}

// Multi-threaded: the CLI runs as a blocking child process while the card server answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_import_registers_an_a2a_agent_from_its_card_on_sqlite() {
    import(Backend::Sqlite).await;
}

// Multi-threaded: the CLI runs as a blocking child process while the card server answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set SWITCHBOARD_TEST_DATABASE_URL=postgres://… and run with --ignored (see README)"]
async fn agent_import_registers_an_a2a_agent_from_its_card_on_postgres() {
    import(Backend::Postgres).await;
}
