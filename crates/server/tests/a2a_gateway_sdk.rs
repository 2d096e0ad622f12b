//! The A2A gateway against an agent written with the official `a2a-sdk` Python server
//! library (`tests/py/a2a_echo_agent.py`), unmodified: imported by its card, it receives a
//! message sent through the hub, and its reply reaches the original sender. Needs a Python
//! with `.ci/requirements-standards.txt` installed, named by `SWITCHBOARD_TEST_PYTHON`
//! (`.ci/run` makes one).

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{TestHub, agent_addr, eventually};
use switchboard_client::InboxOptions;
use switchboard_core::api::{DeliveryState, ImportAgent, Part, SendMessage};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The a2a-sdk agent, listening on a port of its own choosing; killed when dropped.
struct SdkAgent {
    _child: Child,
    base: String,
}

impl SdkAgent {
    async fn start() -> SdkAgent {
        let python = std::env::var("SWITCHBOARD_TEST_PYTHON")
            .expect("SWITCHBOARD_TEST_PYTHON names a Python with .ci/requirements-standards.txt installed");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/a2a_echo_agent.py");
        let mut child = Command::new(python)
            .arg(script)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the a2a-sdk agent");
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        // The agent prints `PORT <n>` once it listens (importing the SDK takes a few seconds).
        let port = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.expect("read the agent's output") {
                if let Some(p) = line.strip_prefix("PORT ") {
                    return p.trim().to_owned();
                }
            }
            panic!("the a2a-sdk agent exited before it listened");
        })
        .await
        .expect("the a2a-sdk agent listens within 60 s");
        SdkAgent { _child: child, base: format!("http://127.0.0.1:{port}") }
    }
}

#[tokio::test]
#[ignore = "needs SWITCHBOARD_TEST_PYTHON (a venv with .ci/requirements-standards.txt)"]
async fn an_a2a_sdk_agent_is_imported_by_its_card_and_its_reply_reaches_the_sender() {
    let hub = TestHub::start().await; // private endpoints allowed: the agent is on loopback
    let sdk = SdkAgent::start().await;
    let req = ImportAgent { card_url: format!("{}/.well-known/agent-card.json", sdk.base), ..Default::default() };
    let imported = hub.admin().import_agent(&req).await.expect("import the a2a-sdk agent");
    assert_eq!(imported.agent.name, "sdk-echo");
    assert_eq!(imported.agent.capabilities.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["echo"]);
    assert_eq!((imported.a2a.binding.as_str(), imported.a2a.protocol_version.as_str()), ("JSONRPC", "1.0"));
    assert_eq!(imported.a2a.url, format!("{}/a2a", sdk.base));

    let (_, alice) = hub.agent("alice", &[]).await;
    let mut m = SendMessage::text(agent_addr(&imported.agent.id), "hello from the hub");
    m.conversation_id = Some("c-sdk".into());
    let sent = alice.send(&m).await.unwrap();
    let inbox = alice.inbox(&InboxOptions { wait_ms: Some(20_000), ..Default::default() }).await.unwrap();
    let reply = &inbox.messages.first().expect("the agent's reply").message;
    assert_eq!(reply.from, agent_addr(&imported.agent.id));
    assert_eq!(reply.in_reply_to.as_deref(), Some(sent.id.as_str()));
    assert_eq!(reply.conversation_id.as_deref(), Some("c-sdk"));
    assert_eq!(reply.parts, vec![Part::text("echo: hello from the hub")]);
    let a2a = &reply.metadata.as_ref().expect("metadata")["a2a"];
    assert_eq!(a2a["state"], "TASK_STATE_COMPLETED");
    assert!(a2a["task_id"].as_str().is_some_and(|t| !t.is_empty()), "{a2a}");
    // The reply is stored before the attempt is recorded: the delivery is acked just after.
    let status = eventually(10, "the delivery acked", || async {
        let s = hub.admin().get_message(&sent.id).await.unwrap();
        (s.deliveries[0].state == DeliveryState::Acked).then_some(s)
    })
    .await;
    assert_eq!(status.push_attempts.len(), 1, "answered on the first attempt");
    hub.stop().await;
}
