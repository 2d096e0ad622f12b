//! Every client command of `switchboard`, run as the real binary against a real hub: the
//! table a person reads (headers and cells) and the `--json` a script parses (field names
//! and values), and the errors both get when something is wrong.
//!
//! The hub is set up through `switchboard-client` where the setup is not what is tested;
//! what each command prints is read only from the binary's output.

use serde_json::{Value, json};

mod common;

use common::cli::{Backend, Cli, Hub, Running, Table};
use common::{agent_addr, eventually, free_port};
use switchboard_client::InboxOptions;
use switchboard_core::api::{DeliveryState, RegisterAgent};

/// Registers an agent through the library and returns its id and key.
async fn agent(hub: &Hub, name: &str, capabilities: &[&str]) -> (String, String) {
    let caps = capabilities.iter().map(|c| serde_json::from_value(json!({"name": c})).unwrap()).collect();
    let req = RegisterAgent { name: name.into(), capabilities: caps, ..Default::default() };
    let r = hub.admin.register_agent(&req).await.unwrap();
    (r.agent.id, r.api_key)
}

/// `accepted <id> → <recipients>` (the send line people read): the message id.
fn accepted_id(line: &str) -> String {
    let rest = line.strip_prefix("accepted ").unwrap_or_else(|| panic!("not a send line: {line}"));
    rest.split(' ').next().unwrap().to_owned()
}

fn is_time(s: &str) -> bool {
    s.len() >= 20 && s.as_bytes()[4] == b'-' && s.as_bytes()[10] == b'T' && s.ends_with('Z')
}

#[tokio::test]
async fn agent_commands_register_list_show_and_remove() {
    let hub = Hub::start(Backend::Sqlite, "agent commands", &[("SWITCHBOARD_ALLOW_PRIVATE_ENDPOINTS", "true")]).await;
    let cli = &hub.cli;

    // register, for people: the id, the address, and the key shown once.
    let out = cli
        .run(&["agent", "register", "--name", "planner", "-c", "plan", "-c", "review", "--description", "Plans work"])
        .ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "no webhook secret line for a pull agent: {out}");
    let planner = lines[0].strip_prefix("registered agent planner (").and_then(|r| r.strip_suffix(')')).unwrap();
    assert_eq!(lines[1], format!("address:  agent:{planner}"));
    let key = lines[2].strip_prefix("api key:  ").and_then(|r| r.strip_suffix("   (shown once; store it now)"));
    let planner_key = key.unwrap_or_else(|| panic!("api key line: {}", lines[2]));
    assert!(planner_key.starts_with("sbk_"), "{planner_key}");
    assert_eq!(hub.admin.with_token(planner_key).whoami().await.unwrap().agent_id.as_deref(), Some(planner));

    // An agent with a push endpoint also gets its webhook secret.
    let out = cli.run(&["agent", "register", "--name", "hook", "--endpoint", "http://127.0.0.1:9/hook"]).ok();
    let secret = out.lines().find_map(|l| l.strip_prefix("webhook secret: ")).expect("webhook secret line");
    assert!(secret.starts_with("whsec_") && secret.ends_with("   (verify push signatures with it)"), "{out}");

    // register from a card file, for scripts: --name overrides the card's.
    let card = hub.dir().join("card.json");
    let card_json = json!({"name": "ignored", "version": "2.1", "capabilities": [
        {"name": "translate", "description": "any language to English", "tags": ["text"]}]});
    std::fs::write(&card, card_json.to_string()).unwrap();
    let r = cli.run(&["agent", "register", "--name", "translator", "--card", card.to_str().unwrap(), "--json"]).json();
    let translator = r["agent"]["id"].as_str().unwrap().to_owned();
    assert_eq!(r["agent"]["name"], "translator");
    assert_eq!(r["agent"]["version"], "2.1");
    assert_eq!(r["agent"]["capabilities"][0]["description"], "any language to English");
    assert!(r["api_key"].as_str().unwrap().starts_with("sbk_"));
    assert!(r["webhook_secret"].as_str().unwrap().starts_with("whsec_"));

    let t = cli.run(&["agent", "list"]).table();
    assert_eq!(t.headers, ["ID", "NAME", "STATUS", "CAPABILITIES", "LAST SEEN"]);
    assert_eq!(t.column("NAME"), ["planner", "hook", "translator"], "in registration order");
    assert_eq!(t.row("ID", planner), [planner, "planner", "inactive", "plan,review", "never"]);
    assert_eq!(t.cell("NAME", "translator", "CAPABILITIES"), "translate");

    let list = cli.run(&["agent", "list", "--capability", "review", "--json"]).json();
    let names: Vec<&Value> = list["agents"].as_array().unwrap().iter().map(|a| &a["name"]).collect();
    assert_eq!(names, ["planner"]);

    // Once the planner makes a request it is active and has been seen.
    cli.with_token(planner_key).run(&["inbox"]).ok();
    eventually(10, "planner to be listed as active", || async {
        let list = cli.run(&["agent", "list", "--status", "active", "--json"]).json();
        list["agents"].as_array().unwrap().iter().map(|a| &a["id"]).eq([&json!(planner)])
    })
    .await;
    let t = cli.run(&["agent", "list", "--status", "active"]).table();
    assert_eq!(t.rows.len(), 1);
    assert!(is_time(&t.cell("ID", planner, "LAST SEEN")), "{t:?}");

    let t = cli.run(&["agent", "show", planner]).table();
    assert_eq!(t.headers, ["FIELD", "VALUE"]);
    assert_eq!(
        t.column("FIELD"),
        ["id", "name", "status", "description", "version", "endpoint", "capabilities", "last seen", "created"]
    );
    assert_eq!(t.column("VALUE")[..7], [planner, "planner", "active", "Plans work", "", "(pull)", "plan, review"]);
    let a = cli.run(&["agent", "show", &translator, "--json"]).json();
    assert_eq!((a["id"].as_str(), a["status"].as_str()), (Some(translator.as_str()), Some("inactive")));
    assert!(a.get("last_seen_at").is_none(), "never seen: {a}");

    assert_eq!(cli.run(&["agent", "rm", planner]).ok(), format!("deleted agent {planner}\n"));
    assert_eq!(cli.run(&["agent", "rm", &translator, "--json"]).json(), json!({"deleted": translator}));
    let err = cli.run(&["agent", "show", planner]).fails();
    assert!(err.contains("(not_found)") && err.contains("switchboard agent list"), "{err}");
    assert_eq!(cli.run(&["agent", "list"]).table().column("NAME"), ["hook"]);
}

#[tokio::test]
async fn agent_key_commands_create_list_and_revoke() {
    let hub = Hub::start(Backend::Sqlite, "agent key commands", &[]).await;
    let cli = &hub.cli;
    let (id, first_key) = agent(&hub, "rotator", &[]).await;

    // list, for people: the registration key, live and never used.
    let t = cli.run(&["agent", "key", "list", &id]).table();
    assert_eq!(t.column("EXPIRES"), ["live"]);
    assert_eq!(t.column("LAST USED"), ["never"]);
    let first = t.column("ID")[0].to_owned();
    assert!(first.starts_with("key_") && is_time(t.column("CREATED")[0]), "{first}");

    // create, for people: the id and the key shown once; the agent may create its own.
    let out = cli.with_token(&first_key).run(&["agent", "key", "create", &id]).ok();
    let lines: Vec<&str> = out.lines().collect();
    let second =
        lines[0].strip_prefix("created key ").and_then(|r| r.strip_suffix(&format!(" for agent {id}"))).unwrap();
    let second_key = lines[1].strip_prefix("api key:  ").and_then(|r| r.split(' ').next()).unwrap();
    assert!(second_key.starts_with("sbk_"), "{out}");
    assert_eq!(hub.admin.with_token(second_key).whoami().await.unwrap().agent_id.as_deref(), Some(id.as_str()));
    let made = cli.run(&["agent", "key", "create", &id, "--json"]).json();
    let third = made["id"].as_str().unwrap().to_owned();
    assert!(made["key"].as_str().unwrap().starts_with("sbk_") && made["created_at"].is_string(), "{made}");

    // revoke with a grace, then at once.
    let out = cli.run(&["agent", "key", "revoke", &id, &first, "--grace-seconds", "3600"]).ok();
    assert_eq!(out, format!("revoked key {first} of agent {id}; it keeps working for 3600 s\n"));
    assert!(hub.admin.with_token(&first_key).whoami().await.is_ok(), "in grace");
    let list = cli.run(&["agent", "key", "list", &id, "--json"]).json();
    let keys = list["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 3, "{list}");
    assert!(keys[0]["expires_at"].is_string() && keys[1]["expires_at"].is_null(), "{list}");
    assert!(!list.to_string().contains(second_key), "the list never shows a key");
    assert_eq!(
        cli.run(&["agent", "key", "revoke", &id, &third, "--json"]).json(),
        json!({"revoked": third, "grace_seconds": 0})
    );
    assert_eq!(
        cli.run(&["agent", "key", "revoke", &id, second]).ok(),
        format!("revoked key {second} of agent {id}; it no longer works\n")
    );
    assert!(hub.admin.with_token(second_key).whoami().await.is_err(), "revoked at once");
    let err = cli.run(&["agent", "key", "revoke", &id, second]).fails();
    assert!(err.contains("(not_found)") && err.contains("switchboard agent key list"), "{err}");
    let err = cli.run(&["agent", "key", "revoke", &id, &first, "--grace-seconds", "604801"]).fails();
    assert!(err.contains("grace_seconds"), "{err}");
}

/// One message from send to ack, seen through `send`, `inbox`, `message` and `deliveries`.
async fn message_life(backend: Backend) {
    let test = "message commands";
    let hub = Hub::start(backend, test, &[("SWITCHBOARD_VISIBILITY_TIMEOUT_MS", "500")]).await;
    let (planner, planner_key) = agent(&hub, "planner", &["plan"]).await;
    let (translator, translator_key) = agent(&hub, "translator", &["translate"]).await;
    let (_, other_key) = agent(&hub, "other", &[]).await;
    let (as_planner, as_translator) = (hub.cli.with_token(&planner_key), hub.cli.with_token(&translator_key));
    let to = agent_addr(&translator);

    assert_eq!(as_translator.run(&["inbox"]).ok(), "inbox is empty\n");
    assert_eq!(as_translator.run(&["inbox", "--json"]).json(), json!({"messages": []}));

    let out = as_planner.run(&["send", "--to", &to, "translate 'bonjour'"]).ok();
    assert_eq!(out, format!("accepted {} → {to}\n", accepted_id(&out)));
    let hello = accepted_id(&out);

    let args = [
        &["send", "--to", &to, "--data", r#"{"n":1}"#, "--conversation", "c-1", "--idempotency-key", "k-1"][..],
        &["--correlation-id", "corr-1", "--in-reply-to", &hello, "--ttl", "3600"],
    ]
    .concat();
    let first = as_planner.run(&[&args[..], &["--json"]].concat()).json();
    assert_eq!((&first["status"], &first["recipients"]), (&json!("accepted"), &json!([to])));
    assert!(first.get("duplicate").is_none(), "{first}");
    let data = first["id"].as_str().unwrap().to_owned();
    let again = as_planner.run(&[&args[..], &["--json"]].concat()).json();
    assert_eq!((&again["id"], &again["duplicate"]), (&first["id"], &json!(true)));
    assert_eq!(as_planner.run(&args).ok(), format!("accepted {data} → {to} (duplicate)\n"));

    let out = as_planner.run(&["send", "--to", "topic:nobody-listens", "to no one"]).ok();
    assert!(out.ends_with(" → (no recipients)\n"), "{out}");

    // inbox without --ack: shown, leased, and a reminder that it comes back.
    let out = as_translator.run(&["inbox"]).ok();
    let (table, reminder) = out.trim_end().rsplit_once('\n').unwrap();
    assert_eq!(reminder, "(not acknowledged: run with --ack, or they come back after their lease)");
    let t = Table::parse(table);
    assert_eq!(t.headers, ["ID", "FROM", "ATTEMPT", "TEXT"]);
    assert_eq!(t.row("ID", &hello), [hello.as_str(), &agent_addr(&planner), "1", "translate 'bonjour'"]);
    assert_eq!(t.row("ID", &data)[2..], ["1", r#"{"n":1}"#]);
    assert_eq!(t.column("ID"), [hello.as_str(), &data], "in the order they were accepted");

    let list = hub.cli.run(&["deliveries", "--recipient", &to, "--state", "delivered", "--json"]).json();
    let leased: Vec<&Value> = list["deliveries"].as_array().unwrap().iter().map(|d| &d["message_id"]).collect();
    assert_eq!(leased.len(), 2, "{list}");

    // After the lease (500 ms here) they come back with attempt 2; --ack settles them.
    let inbox = as_translator.run(&["inbox", "--wait-ms", "10000", "--limit", "5", "--ack", "--json"]).json();
    let messages = inbox["messages"].as_array().unwrap();
    let attempts: Vec<(&Value, &Value)> = messages.iter().map(|m| (&m["id"], &m["attempt"])).collect();
    assert_eq!(attempts, [(&json!(hello), &json!(2)), (&json!(data), &json!(2))]);
    assert_eq!(messages[1]["parts"], json!([{"kind": "data", "data": {"n": 1}}]));
    assert_eq!(messages[1]["conversation_id"], "c-1");
    assert_eq!((&messages[1]["correlation_id"], &messages[1]["in_reply_to"]), (&json!("corr-1"), &json!(hello)));
    assert!(is_time(messages[1]["expires_at"].as_str().unwrap_or_default()), "--ttl sets expires_at: {inbox}");
    assert_eq!(as_translator.run(&["inbox", "--wait-ms", "700"]).ok(), "inbox is empty\n", "acked: not redelivered");

    // message: a header line, the text, then the deliveries.
    let out = hub.cli.run(&["message", &hello]).ok();
    let mut lines = out.lines();
    let head = lines.next().unwrap();
    let at =
        head.strip_prefix(&format!("{hello}  from agent:{planner} to {to}  at ")).unwrap_or_else(|| panic!("{head}"));
    assert!(is_time(at), "{head}");
    assert_eq!(lines.next(), Some("  translate 'bonjour'"));
    let t = Table::parse(&lines.collect::<Vec<_>>().join("\n"));
    assert_eq!(t.headers, ["RECIPIENT", "STATE", "ATTEMPTS", "UPDATED", "ERROR"]);
    assert_eq!(t.row("RECIPIENT", &to)[..3], [to.as_str(), "acked", "2"]);
    assert_eq!(t.rows.len(), 1);
    let m = hub.cli.run(&["message", &hello, "--json"]).json();
    assert_eq!(m["message"]["parts"], json!([{"kind": "text", "text": "translate 'bonjour'"}]));
    assert_eq!(m["message"]["from"], agent_addr(&planner));
    assert_eq!((&m["deliveries"][0]["state"], &m["deliveries"][0]["attempts"]), (&json!("acked"), &json!(2)));
    assert!(m.get("push_attempts").is_none(), "a pulled message has no push attempts: {m}");
    // The sender and the recipient may look too; nobody else may.
    as_planner.run(&["message", &hello]).ok();
    as_translator.run(&["message", &hello]).ok();
    let err = hub.cli.with_token(&other_key).run(&["message", &hello]).fails();
    assert!(err.contains("(not_found)"), "{err}");

    let t = hub.cli.run(&["deliveries"]).table();
    assert_eq!(t.headers, ["MESSAGE", "FROM", "RECIPIENT", "STATE", "ATTEMPTS", "UPDATED", "LAST ERROR"]);
    assert_eq!(t.row("MESSAGE", &data)[1..5], [agent_addr(&planner).as_str(), &to, "acked", "2"]);
    assert!(is_time(&t.cell("MESSAGE", &data, "UPDATED")));
    assert_eq!(t.rows.len(), 2, "the topic message with no subscribers has no delivery: {t:?}");
    let acked = hub.cli.run(&["deliveries", "--state", "acked", "--limit", "1", "--json"]).json();
    let d = &acked["deliveries"][0];
    assert_eq!(acked["deliveries"].as_array().unwrap().len(), 1, "--limit 1");
    assert!(d["message_id"] == json!(hello) || d["message_id"] == json!(data), "{d}");
    assert_eq!((&d["state"], &d["recipient"], &d["from"]), (&json!("acked"), &json!(to), &json!(agent_addr(&planner))));
    let none = hub.cli.run(&["deliveries", "--state", "pending", "--json"]).json();
    assert_eq!(none["deliveries"], json!([]));
}

#[tokio::test]
async fn send_inbox_message_and_deliveries_follow_a_message_on_sqlite() {
    message_life(Backend::Sqlite).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set SWITCHBOARD_TEST_DATABASE_URL=postgres://… and run with --ignored (see README)"]
async fn send_inbox_message_and_deliveries_follow_a_message_on_postgres() {
    message_life(Backend::Postgres).await;
}

/// Deliveries that ran out of attempts, listed, replayed and purged.
async fn dead_letters(backend: Backend) {
    let env = [("SWITCHBOARD_MAX_ATTEMPTS", "1"), ("SWITCHBOARD_VISIBILITY_TIMEOUT_MS", "200")];
    let hub = Hub::start(backend, "dead-letter commands", &env).await;
    let (planner, planner_key) = agent(&hub, "planner", &[]).await;
    let (translator, translator_key) = agent(&hub, "translator", &[]).await;
    let to = agent_addr(&translator);
    let as_planner = hub.cli.with_token(&planner_key);
    let first = accepted_id(&as_planner.run(&["send", "--to", &to, "one"]).ok());
    let second = accepted_id(&as_planner.run(&["send", "--to", &to, "two"]).ok());

    // Handed out once and never acked: with max_attempts 1 both go dead when their lease ends.
    let consumer = hub.admin.with_token(translator_key);
    let leased = consumer.inbox(&InboxOptions { wait_ms: Some(0), ..Default::default() }).await.unwrap();
    assert_eq!(leased.messages.len(), 2);
    eventually(10, "both deliveries to be dead", || async {
        let _ = consumer.inbox(&InboxOptions { wait_ms: Some(0), ..Default::default() }).await;
        let dead = hub.admin.dead_letters(&Default::default()).await.unwrap();
        dead.dead_letters.len() == 2
    })
    .await;

    let t = hub.cli.run(&["dead-letters", "list"]).table();
    assert_eq!(t.headers, ["MESSAGE", "FROM", "RECIPIENT", "STATE", "ATTEMPTS", "UPDATED", "LAST ERROR"]);
    assert_eq!(t.column("MESSAGE"), [first.as_str(), &second]);
    assert_eq!(t.row("MESSAGE", &first)[1..5], [agent_addr(&planner).as_str(), &to, "dead", "1"]);
    assert!(!t.cell("MESSAGE", &first, "LAST ERROR").is_empty(), "a dead letter says why: {t:?}");
    let listed = hub.cli.run(&["dead-letters", "list", "--recipient", &to, "--json"]).json();
    let dead = listed["dead_letters"].as_array().unwrap();
    assert_eq!(dead.len(), 2);
    assert!(dead.iter().all(|d| d["state"] == "dead" && d["last_error"].is_string()), "{listed}");
    let elsewhere = hub.cli.run(&["dead-letters", "list", "--recipient", &agent_addr(&planner), "--json"]);
    assert_eq!(elsewhere.json(), json!({"dead_letters": []}));
    assert_eq!(hub.cli.run(&["deliveries", "--state", "dead"]).table().column("MESSAGE"), [first.as_str(), &second]);

    let err = hub.cli.run(&["dead-letters", "replay"]).fails();
    assert!(err.contains("message ids, --recipient, --since, or --all"), "{err}");
    assert_eq!(hub.cli.run(&["dead-letters", "replay", &first]).ok(), "replayed 1 dead letters\n");
    let pending = hub.cli.run(&["deliveries", "--state", "pending", "--json"]).json();
    assert_eq!(pending["deliveries"][0]["message_id"], json!(first), "{pending}");
    assert_eq!(pending["deliveries"].as_array().unwrap().len(), 1);
    let redelivered = consumer.inbox(&InboxOptions { wait_ms: Some(0), ..Default::default() }).await.unwrap();
    assert_eq!(redelivered.messages.iter().map(|m| m.message.id.as_str()).collect::<Vec<_>>(), [first.as_str()]);

    assert_eq!(hub.cli.run(&["dead-letters", "purge", "--all", "--json"]).json(), json!({"count": 1}));
    assert_eq!(hub.cli.run(&["dead-letters", "list"]).table().rows.len(), 0);
    assert_eq!(hub.cli.run(&["dead-letters", "replay", "--all"]).ok(), "replayed 0 dead letters\n");
    assert_eq!(hub.cli.run(&["dead-letters", "purge", &second]).ok(), "purged 0 dead letters\n");
    let status = hub.admin.get_message(&second).await.unwrap();
    assert!(status.deliveries.is_empty(), "the purged delivery is gone: {status:?}");
}

#[tokio::test]
async fn dead_letters_list_replay_and_purge_on_sqlite() {
    dead_letters(Backend::Sqlite).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set SWITCHBOARD_TEST_DATABASE_URL=postgres://… and run with --ignored (see README)"]
async fn dead_letters_list_replay_and_purge_on_postgres() {
    dead_letters(Backend::Postgres).await;
}

#[tokio::test]
async fn tail_prints_each_message_as_it_arrives_and_acknowledges_it() {
    let hub = Hub::start(Backend::Sqlite, "tail", &[]).await;
    let (planner, planner_key) = agent(&hub, "planner", &[]).await;
    let (translator, translator_key) = agent(&hub, "translator", &[]).await;
    let (as_planner, as_translator) = (hub.cli.with_token(&planner_key), hub.cli.with_token(&translator_key));
    let to = agent_addr(&translator);

    let mut tail = Running::spawn(as_translator.command(&["tail", "--count", "2"]));
    // send --wait-ms returns once the tail has the message, with the delivery's state.
    let out = as_planner.run(&["send", "--to", &to, "--wait-ms", "20000", "first"]).ok();
    let (line, delivery) = out.trim_end().split_once('\n').unwrap_or_else(|| panic!("{out}"));
    let first = accepted_id(line);
    let state = delivery.strip_prefix(&format!("  {to}  ")).unwrap_or_else(|| panic!("{out}"));
    assert!(["delivered", "acked"].contains(&state), "{out}");
    let second = accepted_id(&as_planner.run(&["send", "--to", &to, "second"]).ok());
    for text in ["first", "second"] {
        let line = tail.line(20, "a tail line");
        let cells: Vec<&str> = line.split("  ").collect();
        assert!(is_time(cells[0]), "{line}");
        assert_eq!(cells[1..], [agent_addr(&planner).as_str(), "#1", text], "{line}");
    }
    assert!(tail.exit(20, "tail --count 2").success(), "{}", tail.stderr());
    eventually(10, "the tail's acks", || async {
        let (a, b) = (hub.admin.get_message(&first).await.unwrap(), hub.admin.get_message(&second).await.unwrap());
        a.deliveries[0].state == DeliveryState::Acked && b.deliveries[0].state == DeliveryState::Acked
    })
    .await;

    // --json prints one message object per line; --no-ack leaves it leased.
    let mut tail = Running::spawn(as_translator.command(&["tail", "--count", "1", "--json", "--no-ack"]));
    let third = accepted_id(&as_planner.run(&["send", "--to", &to, "third"]).ok());
    let m: Value = serde_json::from_str(&tail.line(20, "a JSON tail line")).unwrap();
    assert_eq!((&m["id"], &m["attempt"], &m["from"]), (&json!(third), &json!(1), &json!(agent_addr(&planner))));
    assert_eq!(m["parts"], json!([{"kind": "text", "text": "third"}]));
    assert!(m["lease_expires_at"].is_string(), "{m}");
    assert!(tail.exit(20, "tail --count 1").success());
    let state = &hub.cli.run(&["message", &third, "--json"]).json()["deliveries"][0]["state"];
    assert_eq!(state, "delivered", "not acknowledged with --no-ack");
}

/// A push receiver that fails its first request and takes the next.
async fn flaky_receiver() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let calls = std::sync::Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "boom")
                } else {
                    (axum::http::StatusCode::OK, "ok")
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/hook")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_shows_each_push_attempt() {
    let env = [("SWITCHBOARD_ALLOW_PRIVATE_ENDPOINTS", "true"), ("SWITCHBOARD_PUSH_RETRY_SCHEDULE_MS", "50,50")];
    let hub = Hub::start(Backend::Sqlite, "push attempts", &env).await;
    let endpoint = flaky_receiver().await;
    let r = hub.cli.run(&["agent", "register", "--name", "hook", "--endpoint", &endpoint, "--json"]).json();
    let to = agent_addr(r["agent"]["id"].as_str().unwrap());
    let id = accepted_id(&hub.cli.run(&["send", "--to", &to, "ping"]).ok());
    eventually(20, "the push to succeed on its second attempt", || async {
        hub.admin.get_message(&id).await.unwrap().deliveries[0].state == DeliveryState::Acked
    })
    .await;

    let out = hub.cli.run(&["message", &id]).ok();
    let (deliveries, pushes) =
        out.split_once("\n\n").unwrap_or_else(|| panic!("a push table after a blank line: {out}"));
    let t = Table::parse(deliveries.split_once("\n  ping\n").unwrap().1);
    assert_eq!(t.row("RECIPIENT", &to)[1..3], ["acked", "2"]);
    let t = Table::parse(pushes);
    assert_eq!(t.headers, ["PUSH", "AT", "TOOK", "STATUS", "KIND", "RESPONSE"]);
    assert_eq!(t.column("PUSH"), ["1", "2"]);
    assert_eq!(t.column("STATUS"), ["500", "200"]);
    assert_eq!(t.column("RESPONSE"), ["boom", "ok"]);
    assert_eq!(t.cell("PUSH", "1", "KIND"), "http_status");
    assert!(t.cell("PUSH", "2", "TOOK").ends_with(" ms") && is_time(&t.cell("PUSH", "2", "AT")), "{t:?}");
    let m = hub.cli.run(&["message", &id, "--json"]).json();
    let attempts = m["push_attempts"].as_array().unwrap();
    assert_eq!(
        attempts.iter().map(|a| (&a["attempt"], &a["status_code"])).collect::<Vec<_>>(),
        [(&json!(1), &json!(500)), (&json!(2), &json!(200))]
    );
    assert_eq!(attempts[0]["response_excerpt"], "boom");
}

#[tokio::test]
async fn topic_commands_print_what_people_and_scripts_need() {
    let hub = Hub::start(Backend::Sqlite, "topic commands", &[]).await;
    let (ann, _) = agent(&hub, "ann", &[]).await;
    let (_, bob_key) = agent(&hub, "bob", &[]).await;

    let out = hub.cli.run(&["topic", "subscribe", "alerts/eu", "--agent", &ann]).ok();
    let since = out
        .strip_prefix(&format!("agent {ann} is subscribed to topic alerts/eu (since "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(is_time(since.trim_end().trim_end_matches(')')), "{out}");
    let t = hub.cli.run(&["topic", "subscribers", "alerts/eu"]).table();
    assert_eq!(t.headers, ["AGENT", "SINCE"]);
    assert_eq!(t.column("AGENT"), [ann.as_str()]);
    let list = hub.cli.run(&["topic", "list", "--json"]).json();
    assert_eq!(list, json!({"topics": [{"name": "alerts/eu", "subscribers": 1}]}));

    let sent = hub.cli.with_token(&bob_key).run(&["send", "--to", "topic:alerts/eu", "--json", "storm"]).json();
    assert_eq!(sent["recipients"], json!([agent_addr(&ann)]));

    let gone = hub.cli.run(&["topic", "unsubscribe", "alerts/eu", "--agent", &ann, "--json"]).json();
    assert_eq!(gone, json!({"topic": "alerts/eu", "agent_id": ann, "unsubscribed": true}));
    assert_eq!(hub.cli.run(&["topic", "list"]).table().rows.len(), 0);
    let err = hub.cli.run(&["topic", "unsubscribe", "alerts/eu", "--agent", &ann]).fails();
    assert!(err.contains("(not_found)"), "{err}");
}

/// `audit list` (table and `--json`, filtered and limited) and `audit export` (JSON lines),
/// through the hub, as its admin only.
async fn audit_list_and_export(backend: Backend) {
    let hub = Hub::start(backend, "audit commands", &[]).await;
    let (ann, ann_key) = agent(&hub, "ann", &[]).await;
    let (bob, _) = agent(&hub, "bob", &[]).await;
    let update = switchboard_core::api::UpdateAgent { name: "ann-2".into(), ..Default::default() };
    hub.admin.update_agent(&ann, &update).await.unwrap();
    hub.admin.delete_agent(&bob).await.unwrap();

    let t = hub.cli.run(&["audit", "list"]).table();
    assert_eq!(t.headers, ["SEQ", "AT", "ACTOR", "ACTION", "TARGET", "DETAIL"]);
    assert_eq!(t.column("SEQ"), ["1", "2", "3", "4"]);
    assert_eq!(t.column("ACTION"), ["agent.register", "agent.register", "agent.update", "agent.delete"]);
    assert_eq!(t.column("ACTOR"), ["operator"; 4]);
    let (ann_addr, bob_addr) = (agent_addr(&ann), agent_addr(&bob));
    assert_eq!(t.column("TARGET"), [ann_addr.as_str(), &bob_addr, &ann_addr, &bob_addr]);
    assert!(t.column("AT").iter().all(|at| is_time(at)), "{t:?}");
    assert_eq!(t.cell("SEQ", "1", "DETAIL"), r#"{"name":"ann"}"#);

    let registered = hub.cli.run(&["audit", "list", "--action", "agent.register", "--json"]).json();
    let events = registered["events"].as_array().unwrap();
    assert_eq!(events.iter().map(|e| e["target"].as_str().unwrap()).collect::<Vec<_>>(), [&ann_addr, &bob_addr]);
    assert!(registered.get("next_cursor").is_none(), "{registered}");
    assert!(events.iter().all(|e| e["hash"].as_str().is_some_and(|h| h.len() == 64)), "{registered}");
    let by_ann = hub.cli.run(&["audit", "list", "--actor", &ann_addr, "--json"]).json();
    assert_eq!(by_ann, json!({"events": []}), "ann changed nothing");
    let since = t.cell("SEQ", "4", "AT");
    let want: Vec<&str> = t.rows.iter().filter(|r| r[1] >= since).map(|r| r[0].as_str()).collect();
    assert_eq!(hub.cli.run(&["audit", "list", "--since", &since]).table().column("SEQ"), want);
    assert_eq!(hub.cli.run(&["audit", "list", "--since", "2099-01-01T00:00:00Z"]).table().rows.len(), 0);

    let first = hub.cli.run(&["audit", "list", "--limit", "3"]);
    assert_eq!(first.table().column("SEQ"), ["1", "2", "3"]);
    assert!(first.stderr().contains("showing the first 3 matching entries"), "{}", first.stderr());
    let first = hub.cli.run(&["audit", "list", "--limit", "3", "--json"]).json();
    assert_eq!((first["events"].as_array().unwrap().len(), &first["next_cursor"]), (3, &json!("3")));

    // The export: one JSON entry per line, the whole chain, the same entries as the list.
    let out = hub.cli.run(&["audit", "export"]).ok();
    let lines: Vec<switchboard_core::api::AuditEvent> =
        out.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    assert_eq!(lines.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
    switchboard_core::audit::verify(&lines).expect("the exported chain verifies");
    let listed: Value = hub.cli.run(&["audit", "list", "--json"]).json();
    assert_eq!(serde_json::to_value(&lines).unwrap(), listed["events"]);

    let err = hub.cli.run(&["audit", "list", "--action", "agent.explode"]).fails();
    assert!(err.contains("(invalid_query)") && err.contains("`action`"), "{err}");
    let as_ann = hub.cli.with_token(&ann_key);
    for args in [&["audit", "list"][..], &["audit", "export"]] {
        let err = as_ann.run(args).fails();
        assert!(err.contains("(forbidden)"), "{args:?}: {err}");
    }
}

#[tokio::test]
async fn audit_list_and_export_read_the_log_through_the_hub_on_sqlite() {
    audit_list_and_export(Backend::Sqlite).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set SWITCHBOARD_TEST_DATABASE_URL=postgres://… and run with --ignored (see README)"]
async fn audit_list_and_export_read_the_log_through_the_hub_on_postgres() {
    audit_list_and_export(Backend::Postgres).await;
}

#[tokio::test]
async fn tenant_commands_create_and_list_for_the_operator_only() {
    let hub = Hub::start(Backend::Sqlite, "tenant commands", &[]).await;

    // create, for people: the id and the admin token shown once; the token works in its tenant.
    let out = hub.cli.run(&["tenant", "create", "acme"]).ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let id = lines[0].strip_prefix("created tenant acme (").and_then(|r| r.strip_suffix(')')).unwrap();
    let token = lines[1].strip_prefix("admin token:  ").and_then(|r| r.strip_suffix("   (shown once; store it now)"));
    let token = token.unwrap_or_else(|| panic!("admin token line: {}", lines[1]));
    assert!(token.starts_with("sba_"), "{token}");
    let acme = hub.cli.with_token(token);
    acme.run(&["agent", "register", "--name", "worker"]).ok();
    assert_eq!(acme.run(&["agent", "list"]).table().column("NAME"), ["worker"]);
    assert!(hub.cli.run(&["agent", "list"]).table().rows.is_empty(), "the default tenant has no agents");

    // create --json, list as a table and --json.
    let made = hub.cli.run(&["tenant", "create", "beta", "--json"]).json();
    assert_eq!(made["tenant"]["name"], "beta");
    assert!(made["admin_token"].as_str().unwrap().starts_with("sba_"));
    let t = hub.cli.run(&["tenant", "list"]).table();
    assert_eq!(t.headers, ["ID", "NAME", "CREATED"]);
    let mut names = t.column("NAME");
    names.sort();
    assert_eq!(names, ["acme", "beta", "default"]);
    assert!(t.column("ID").contains(&id) && t.column("CREATED").iter().all(|c| is_time(c)));
    let list = hub.cli.run(&["tenant", "list", "--json"]).json();
    assert_eq!(list["tenants"].as_array().unwrap().len(), 3);

    // Refusals: a taken name, a bad one, and a tenant's admin token.
    let err = hub.cli.run(&["tenant", "create", "acme"]).fails();
    assert!(err.contains("(conflict)") && err.contains("`acme`"), "{err}");
    let err = hub.cli.run(&["tenant", "create", "no spaces"]).fails();
    assert!(err.contains("(invalid_body)") && err.contains("name"), "{err}");
    let err = acme.run(&["tenant", "list"]).fails();
    assert!(err.contains("(forbidden)") && err.contains("platform operator"), "{err}");
}

/// `migrate` brings a store to the current schema and says which; it is safe to run again,
/// and a hub starts on what it made.
async fn migrate(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(common::cli::Database::create("migrate")),
    };
    let mut args = vec!["migrate".to_owned()];
    let shown = match &db {
        None => {
            let data = dir.path().join("store");
            args.extend(["--data-dir".into(), data.display().to_string()]);
            data.display().to_string()
        }
        Some(db) => {
            args.extend(["--database-url".into(), db.url.clone()]);
            db.url.rsplit_once('@').map_or(db.url.as_str(), |(_, host)| host).to_owned()
        }
    };
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    for _ in 0..2 {
        let out = Cli::new("http://unused", None).run(&args).ok();
        assert_eq!(out, format!("store at {shown} is migrated to the current schema\n"));
    }
    if db.is_none() {
        assert!(dir.path().join("store").read_dir().unwrap().next().is_some(), "the store was created");
    }
    // The migrated store serves.
    let port = free_port();
    let mut serve = common::cli::switchboard();
    serve.args(["serve", "--listen", &format!("127.0.0.1:{port}")]).args(&args[1..]).current_dir(dir.path());
    let hub = Running::spawn(serve);
    let line = hub.line(30, "the listening line");
    assert!(line.starts_with(&format!("switchboard listening on http://127.0.0.1:{port}")), "{line}");
}

#[tokio::test]
async fn migrate_prepares_a_store_on_sqlite() {
    migrate(Backend::Sqlite).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set SWITCHBOARD_TEST_DATABASE_URL=postgres://… and run with --ignored (see README)"]
async fn migrate_prepares_a_store_on_postgres() {
    migrate(Backend::Postgres).await;
}

#[tokio::test]
async fn errors_exit_non_zero_and_say_what_to_do() {
    let hub = Hub::start(Backend::Sqlite, "errors", &[]).await;
    let (_, key) = agent(&hub, "ann", &[]).await;
    let unknown = switchboard_core::new_id().to_string();

    // A bad token: what happened, and where a token comes from.
    let err = hub.cli.with_token("sbk_not-a-real-key").run(&["agent", "list"]).fails();
    assert!(err.contains("(unauthenticated)"), "{err}");
    assert!(err.contains("hint: set SWITCHBOARD_TOKEN to an agent API key or the admin token"), "{err}");
    let err = hub.cli.with_token("sbk_not-a-real-key").run(&["tail"]).fails();
    assert!(err.contains("unauthenticated"), "{err}");

    // An agent key on an admin command.
    let err = hub.cli.with_token(&key).run(&["agent", "register", "--name", "x"]).fails();
    assert!(err.contains("(forbidden)"), "{err}");

    // An unknown agent, looked up or written to.
    let err = hub.cli.run(&["agent", "show", &unknown]).fails();
    assert!(err.contains("(not_found)") && err.contains(&unknown) && err.contains("switchboard agent list"), "{err}");
    let err = hub.cli.run(&["agent", "rm", &unknown]).fails();
    assert!(err.contains("(not_found)"), "{err}");
    let err = hub.cli.with_token(&key).run(&["send", "--to", &agent_addr(&unknown), "hi"]).fails();
    assert!(err.contains("(unknown_recipient)") && err.contains("switchboard agent list"), "{err}");

    // The hub's field errors are listed one per line.
    let err = hub.cli.with_token(&key).run(&["send", "--to", "agnt:x", "hi"]).fails();
    assert!(err.contains("(invalid_body)") && err.contains("  - to: unknown address kind `agnt`"), "{err}");

    // Input the CLI itself refuses, before asking the hub.
    let err = hub.cli.run(&["send", "--to", "agent:x"]).fails();
    assert!(err.contains("nothing to send: give the text as an argument, or --data"), "{err}");
    let err = hub.cli.run(&["send", "--to", "agent:x", "--data", "{not json"]).fails();
    assert!(err.contains("--data must be JSON"), "{err}");
    let err = hub.cli.run(&["deliveries", "--state", "lost"]).fails();
    assert!(err.contains("--state lost: use pending, leased, delivered, acked, dead or expired"), "{err}");
    let err = hub.cli.run(&["agent", "list", "--status", "asleep"]).fails();
    assert!(err.contains("--status asleep: use active, inactive or error"), "{err}");

    // A hub that is down: where the CLI looked, why it failed, and what to check.
    let down = Cli::new(format!("http://127.0.0.1:{}", free_port()), Some(key.clone()));
    let err = down.run(&["agent", "list"]).fails();
    assert!(err.contains(&format!("cannot reach the hub at {}", down.url)), "{err}");
    assert!(err.contains("Connection refused"), "{err}");
    assert!(err.contains("SWITCHBOARD_URL"), "says how to point at the right hub: {err}");
    assert_eq!(err.matches("error sending request").count(), 0, "the cause once, not the whole chain: {err}");
    let err = down.run(&["tail"]).fails();
    assert!(err.contains("cannot connect") && err.contains("Connection refused"), "{err}");
    assert!(err.contains("SWITCHBOARD_URL"), "{err}");
}

/// Appends `n` entries to `tenant`'s audit log through the store, as the hub would.
async fn audit_entries(store: &dyn switchboard_store::Store, tenant: &str, n: i64) {
    use switchboard_core::audit::{AuditAction, NewAuditEvent};
    for i in 1..=n {
        let e = NewAuditEvent {
            tenant: tenant.into(),
            at: 1_795_000_000_000 + i,
            actor: "admin".into(),
            action: AuditAction::AgentRegister,
            target: switchboard_core::Recipient::agent_text(&format!("a{i}").into()),
            detail: json!({"name": format!("a{i}")}),
        };
        store.append_audit(e).await.unwrap();
    }
}

/// `audit verify` reads the store directly: whole chains pass; an entry edited, one removed
/// and two swapped with SQL on the database are each named, and the command fails.
async fn audit_verify(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(common::cli::Database::create("audit_verify")),
    };
    let store_flags = match &db {
        None => vec!["--data-dir".to_owned(), dir.path().display().to_string()],
        Some(db) => vec!["--database-url".to_owned(), db.url.clone()],
    };
    let store = switchboard_store::open(db.as_ref().map(|d| d.url.as_str()), dir.path(), "test".into()).await.unwrap();
    for tenant in ["edited", "good", "removed", "reordered"] {
        audit_entries(store.as_ref(), tenant, 4).await;
    }
    store.close().await;
    let verify = |extra: &[&str]| {
        let mut args = vec!["audit", "verify"];
        args.extend(store_flags.iter().map(String::as_str));
        args.extend(extra);
        Cli::new("http://unused", None).run(&args)
    };

    let t = verify(&[]).table();
    assert_eq!(t.headers, ["TENANT", "ENTRIES", "RESULT"]);
    assert_eq!(t.column("TENANT"), ["edited", "good", "removed", "reordered"]);
    assert_eq!(t.column("ENTRIES"), ["4"; 4]);
    assert_eq!(t.column("RESULT"), ["ok"; 4]);

    let tamper = [
        "UPDATE audit_events SET detail = '{\"name\":\"mallory\"}' WHERE tenant_id = 'edited' AND seq = 2",
        "DELETE FROM audit_events WHERE tenant_id = 'removed' AND seq = 2",
        "UPDATE audit_events SET seq = -2 WHERE tenant_id = 'reordered' AND seq = 2",
        "UPDATE audit_events SET seq = 2 WHERE tenant_id = 'reordered' AND seq = 3",
        "UPDATE audit_events SET seq = 3 WHERE tenant_id = 'reordered' AND seq = -2",
    ];
    match &db {
        None => {
            let c = rusqlite::Connection::open(dir.path().join("switchboard.db")).unwrap();
            for sql in tamper {
                c.execute(sql, []).unwrap();
            }
        }
        Some(db) => {
            for sql in tamper {
                let ok = std::process::Command::new("psql").args([&db.url, "-qc", sql]).status().unwrap();
                assert!(ok.success(), "{sql}");
            }
        }
    }

    let run = verify(&[]);
    assert_eq!(run.out.status.code(), Some(1), "a broken chain fails the command: {}", run.stdout());
    let t = common::cli::Table::parse(&run.stdout());
    let edited = "BROKEN: entry 2 was edited: its content does not match its hash";
    let removed = "BROKEN: entry 2 was removed (found at entry 3)";
    let reordered = "BROKEN: entry 2 was reordered or replaced: its prev_hash is not the hash of entry 1";
    assert_eq!(t.column("RESULT"), [edited, "ok", removed, reordered]);
    assert_eq!(t.column("ENTRIES"), ["4", "4", "3", "4"]);
    let err = run.stderr();
    assert!(err.starts_with("error: the audit log was tampered with: tenant edited: entry 2 was edited"), "{err}");
    assert!(err.contains("tenant removed: entry 2 was removed") && err.contains("tenant reordered: entry 2"), "{err}");

    let run = verify(&["--json"]);
    assert_eq!(run.out.status.code(), Some(1));
    let v: Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(v[0], json!({"tenant": "edited", "entries": 4, "ok": false, "broken": {"seq": 2, "kind": "edited"}}));
    assert_eq!(v[1], json!({"tenant": "good", "entries": 4, "ok": true, "broken": null}));
    assert_eq!(v[2]["broken"], json!({"seq": 3, "kind": "removed", "from": 2, "to": 2}));
    assert_eq!(v[3]["broken"], json!({"seq": 2, "kind": "reordered"}));

    // One tenant: only its chain is checked.
    let t = verify(&["--tenant", "good"]).table();
    assert_eq!((t.column("TENANT"), t.column("RESULT")), (vec!["good"], vec!["ok"]));
}

#[tokio::test]
async fn audit_verify_names_tampered_entries_on_sqlite() {
    audit_verify(Backend::Sqlite).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set SWITCHBOARD_TEST_DATABASE_URL=postgres://… and run with --ignored (see README)"]
async fn audit_verify_names_tampered_entries_on_postgres() {
    audit_verify(Backend::Postgres).await;
}

/// Pointed at a directory without a store, `audit verify` says so instead of making one.
#[test]
fn audit_verify_needs_an_existing_store() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here");
    let err =
        Cli::new("http://unused", None).run(&["audit", "verify", "--data-dir", &missing.display().to_string()]).fails();
    assert!(err.contains("no store in") && err.contains("--data-dir"), "{err}");
    assert!(!missing.exists(), "nothing was created");
    let err = Cli::new("http://unused", None).run(&["audit", "verify"]).out;
    assert_eq!(err.status.code(), Some(2), "clap refuses a missing store flag");
    assert!(String::from_utf8_lossy(&err.stderr).contains("--data-dir"));
}

#[tokio::test]
async fn oauth_commands_get_a_token_rotate_the_key_and_set_providers() {
    let hub = Hub::start(Backend::Sqlite, "oauth commands", &[]).await;
    let cli = &hub.cli;
    let (id, key) = agent(&hub, "machine", &[]).await;

    // token: the JWT alone on its line, which acts as the agent.
    let jwt = cli.with_token(&key).run(&["oauth", "token", "--agent", &id]).ok().trim().to_owned();
    assert_eq!(jwt.split('.').count(), 3, "{jwt}");
    assert_eq!(hub.admin.with_token(&jwt).whoami().await.unwrap().agent_id.as_deref(), Some(id.as_str()));
    let err = cli.with_token("sbk_wrong").run(&["oauth", "token", "--agent", &id]).fails();
    assert!(err.contains("invalid_client"), "{err}");

    // rotate-key: the new key, and the one retired with the time it leaves the key set.
    let out = cli.run(&["oauth", "rotate-key"]).ok();
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("signing key: sb-"), "{out}");
    assert!(lines[1].starts_with("retired:     sb-") && lines[1].contains("(published until 20"), "{out}");
    let r = cli.run(&["oauth", "rotate-key", "--json"]).json();
    assert_eq!(r["retired_kid"].as_str(), lines[0].strip_prefix("signing key: "), "{r}");

    // set-providers from a file, then providers as a table and as JSON.
    let file = hub.dir().join("idp.json");
    let list = json!({"providers": [{"issuer": "https://idp.example", "audience": "hub",
        "jwks_url": "https://idp.example/jwks", "claims": {"agent": "agent_id"}}]});
    std::fs::write(&file, list.to_string()).unwrap();
    assert_eq!(cli.run(&["oauth", "set-providers", file.to_str().unwrap()]).ok(), "1 identity provider(s) set\n");
    let t = cli.run(&["oauth", "providers"]).table();
    assert_eq!(t.column("ISSUER"), ["https://idp.example"]);
    assert_eq!(t.column("CLAIMS"), ["agent=agent_id"]);
    assert_eq!(cli.run(&["oauth", "providers", "--json"]).json(), list);
}
