//! End-to-end trust (docs/e2e.md): principals publish public keys; a sealed message is opened
//! by each recipient and by nobody else, the hub's database holds only its ciphertext; a
//! signature is checked against the sender's registered key, so a forged one, a sealed part
//! moved to another conversation and a message sealed to a revoked key are refused.

mod common;

use common::{TestHub, agent_addr, assert_problem, raw};
use switchboard_client::e2e::{self, KeyPairs};
use switchboard_client::{AuditQuery, Client, InboxOptions};
use switchboard_core::api::{CreateConversation, InboxMessage, KeyKind, Part, PublishKey, SendMessage};
use switchboard_core::people::{CreateToken, CreateUser, Login};
use switchboard_core::principal::Role;

const SECRET: &str = "diagnosis: the patient's zebra-7731 result is positive";

/// An agent with published keys: its registration id, its client, its private keys.
async fn agent_with_keys(hub: &TestHub, name: &str) -> (String, Client, KeyPairs) {
    let (reg, c) = hub.agent(name, &[]).await;
    let keys = c.init_keys(&agent_addr(&reg.agent.id)).await.expect("publish keys");
    (reg.agent.id, c, keys)
}

/// A person with published keys.
async fn person_with_keys(hub: &TestHub, email: &str) -> (String, Client, KeyPairs) {
    let password = "correct horse battery";
    let req =
        CreateUser { email: email.into(), name: email.into(), role: Role::Member, password: Some(password.into()) };
    let id = hub.admin().create_user(&req).await.expect("create user").user.id;
    let login = Login { email: email.into(), password: password.into(), tenant: None };
    let session = hub.anonymous().login(&login).await.expect("sign in");
    let pat = CreateToken { name: "test".into(), expires_in_days: None };
    let token = hub.anonymous().create_token_in_session(&session, &pat).await.expect("a token").token;
    let c = hub.admin().with_token(token);
    let keys = c.init_keys(&format!("user:{id}")).await.expect("publish keys");
    (id, c, keys)
}

/// The next message in `c`'s inbox (waiting up to 10 s), acknowledged.
async fn next(c: &Client) -> InboxMessage {
    let opts = InboxOptions { wait_ms: Some(10_000), limit: Some(1), visibility_ms: None };
    let mut got = c.inbox(&opts).await.expect("inbox").messages;
    assert_eq!(got.len(), 1, "one message arrives");
    let m = got.remove(0);
    c.ack(vec![m.message.id.clone()]).await.expect("ack");
    m
}

fn text(parts: &[Part]) -> &str {
    match parts {
        [Part::Text { text }] => text,
        other => panic!("expected one text part, got {other:?}"),
    }
}

/// Fails if any row of any table of the hub's database contains `needle`.
async fn assert_not_stored(hub: &TestHub, needle: &str) {
    let snapshot = hub.snapshot().await;
    assert!(snapshot.rows("messages") > 0, "the snapshot reads the messages table");
    for (table, rows) in &snapshot.tables {
        for row in rows {
            assert!(!row.contains(needle), "table {table} holds the plaintext: {row}");
        }
    }
}

#[tokio::test]
async fn keys_are_published_rotated_revoked_and_audited() {
    let hub = TestHub::start().await;
    let (a_id, alice, keys) = agent_with_keys(&hub, "alice").await;
    let (_, bob, _) = agent_with_keys(&hub, "bob").await;
    let principal = agent_addr(&a_id);

    let listed = bob.keys_of(&principal, false).await.expect("anyone in the tenant reads keys").keys;
    let kinds: Vec<KeyKind> = listed.iter().map(|k| k.kind).collect();
    assert_eq!(kinds, vec![KeyKind::Ed25519, KeyKind::X25519]);

    // Rotation: the new key and the revocation of the old one in one step.
    let (_, x) = e2e::generate();
    let public_key = e2e::encryption_public(&x).unwrap();
    let rotated = alice
        .publish_key(&PublishKey { kind: KeyKind::X25519, public_key, replaces: Some(keys.encryption_key_id.clone()) })
        .await
        .expect("rotate");
    let current: Vec<String> =
        alice.keys_of(&principal, false).await.unwrap().keys.into_iter().map(|k| k.key_id).collect();
    assert_eq!(current, vec![keys.signing_key_id.clone(), rotated.key_id.clone()]);
    let all = alice.keys_of(&principal, true).await.unwrap().keys;
    let old = all.iter().find(|k| k.key_id == keys.encryption_key_id).expect("revoked key still listed");
    assert!(old.revoked_at.is_some());

    // Another agent cannot revoke alice's key; the admin can; the admin has no keys of its own.
    assert_eq!(bob.revoke_key(&rotated.key_id).await.unwrap_err().code(), Some("not_found"));
    assert!(hub.admin().revoke_key(&rotated.key_id).await.expect("admin revokes").revoked_at.is_some());
    let req = PublishKey { kind: KeyKind::Ed25519, public_key: e2e::signing_public(&[1; 32]), replaces: None };
    assert_eq!(hub.admin().publish_key(&req).await.unwrap_err().code(), Some("forbidden"));

    // A key that is not 32 bytes of base64 is refused, naming the field.
    let body = r#"{"kind":"ed25519","public_key":"bm90IGEga2V5"}"#.to_owned();
    let token = hub.agent("carol", &[]).await.0.api_key;
    let p = assert_problem(raw(&hub, "POST", "/v1/keys", Some(&token), Some(body)).await, 422, "invalid_body");
    assert_eq!(p["errors"][0]["path"], "public_key");

    let audit = hub.admin().audit(&AuditQuery::default()).await.expect("audit").events;
    let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions.iter().filter(|a| **a == "key.publish").count(), 5, "{actions:?}");
    assert_eq!(actions.iter().filter(|a| **a == "key.revoke").count(), 2, "{actions:?}");
    hub.stop().await;
}

#[tokio::test]
async fn a_signed_plain_message_is_verified_and_a_forged_one_refused() {
    let hub = TestHub::start().await;
    let (_, alice, a_keys) = agent_with_keys(&hub, "alice").await;
    let (b_id, bob, _) = agent_with_keys(&hub, "bob").await;
    let (_, mallory, m_keys) = agent_with_keys(&hub, "mallory").await;

    let mut m = SendMessage::text(agent_addr(&b_id), "pay 10 EUR to shop 7");
    e2e::sign(&mut m, &a_keys).unwrap();
    alice.send(&m).await.expect("a signed message is accepted");
    let got = next(&bob).await.message;
    assert!(got.verified, "the hub checked the signature");
    let opened = bob.open_message(&got, None).await.expect("verify");
    assert!(opened.verified && !opened.sealed);

    // Replayed as it was: the same nonce is the same message, delivered to nobody again.
    let again = alice.send(&m).await.expect("a replay answers the first send");
    assert!(again.duplicate);

    // Changed after signing: refused with problem+json naming the signature.
    let mut forged = m.clone();
    forged.parts = vec![Part::text("pay 10000 EUR to shop 7")];
    let body = serde_json::to_string(&forged).unwrap();
    let p = alice.send(&forged).await.unwrap_err();
    assert_eq!(p.code(), Some("bad_signature"), "{p}");

    // Mallory sends alice's signed message as her own: the key is not hers.
    assert_eq!(mallory.send(&m).await.unwrap_err().code(), Some("bad_signature"));
    // Mallory signs with her key but names alice's key id.
    let mut stolen = SendMessage::text(agent_addr(&b_id), "from alice, honest");
    let as_alice = KeyPairs { signing_key_id: a_keys.signing_key_id.clone(), ..m_keys.clone() };
    e2e::sign(&mut stolen, &as_alice).unwrap();
    assert_eq!(mallory.send(&stolen).await.unwrap_err().code(), Some("bad_signature"));

    // The refusal is a problem document naming the field.
    let alice_token = hub.admin().create_agent_key(&got.from["agent:".len()..]).await.expect("a second key").key;
    let p =
        assert_problem(raw(&hub, "POST", "/v1/messages", Some(&alice_token), Some(body)).await, 422, "bad_signature");
    assert_eq!(p["errors"][0]["path"], "signature");

    // Nothing but the first message reached bob; unsigned messages say `verified: false`.
    alice.send(&SendMessage::text(agent_addr(&b_id), "plain")).await.unwrap();
    let plain = next(&bob).await.message;
    assert_eq!(text(&plain.parts), "plain");
    assert!(!plain.verified);
    hub.stop().await;
}

#[tokio::test]
async fn a_sealed_message_to_an_agent_is_opened_and_the_store_holds_no_plaintext() {
    let hub = TestHub::start().await;
    let (_, alice, a_keys) = agent_with_keys(&hub, "alice").await;
    let (b_id, bob, b_keys) = agent_with_keys(&hub, "bob").await;
    let (_, _, c_keys) = agent_with_keys(&hub, "carol").await;

    alice.send_sealed(SendMessage::text(agent_addr(&b_id), SECRET), &a_keys).await.expect("sealed send");
    let got = next(&bob).await.message;
    assert!(matches!(got.parts.as_slice(), [Part::Sealed { .. }]), "bob receives ciphertext: {:?}", got.parts);
    let opened = bob.open_message(&got, Some(&b_keys)).await.expect("bob opens it");
    assert_eq!(text(&opened.parts), SECRET);
    assert!(opened.sealed && opened.verified && got.verified);
    // Carol was not a recipient: her key opens nothing.
    assert!(matches!(e2e::open(&got.parts, &c_keys), Err(e2e::E2eError::NotForMe(_))));
    assert_not_stored(&hub, "zebra-7731").await;
    hub.stop().await;
}

#[tokio::test]
async fn a_sealed_message_to_a_conversation_of_two_agents_and_a_person_is_opened_by_each() {
    let hub = TestHub::start().await;
    let (_, alice, a_keys) = agent_with_keys(&hub, "alice").await;
    let (b_id, bob, b_keys) = agent_with_keys(&hub, "bob").await;
    let (p_id, carol, p_keys) = person_with_keys(&hub, "carol@example.com").await;
    let req = CreateConversation { title: None, participants: vec![agent_addr(&b_id), format!("user:{p_id}")] };
    let cv = alice.create_conversation(&req).await.expect("conversation").conversation.id;

    let keys = alice.recipient_keys(&format!("conversation:{cv}")).await.expect("members' keys").keys;
    assert_eq!(keys.iter().filter(|k| k.kind == KeyKind::X25519).count(), 2, "bob's and carol's: {keys:?}");
    alice.send_sealed(SendMessage::text(format!("conversation:{cv}"), SECRET), &a_keys).await.expect("sealed send");
    for (who, c, k) in [("bob", &bob, &b_keys), ("carol", &carol, &p_keys)] {
        let got = next(c).await.message;
        assert_eq!(got.conversation_id.as_deref(), Some(cv.as_str()));
        let opened = c.open_message(&got, Some(k)).await.unwrap_or_else(|e| panic!("{who} opens it: {e}"));
        assert_eq!(text(&opened.parts), SECRET, "{who}");
        assert!(opened.verified, "{who}");
    }
    assert_not_stored(&hub, "zebra-7731").await;
    hub.stop().await;
}

#[tokio::test]
async fn a_sealed_message_to_a_topic_is_opened_by_each_subscriber() {
    let hub = TestHub::start().await;
    let (_, alice, a_keys) = agent_with_keys(&hub, "alice").await;
    let (b_id, bob, b_keys) = agent_with_keys(&hub, "bob").await;
    let (c_id, carol, c_keys) = agent_with_keys(&hub, "carol").await;
    for id in [&b_id, &c_id] {
        hub.admin().subscribe("ward.results", id).await.expect("subscribe");
    }
    alice.send_sealed(SendMessage::text("topic:ward.results", SECRET), &a_keys).await.expect("sealed send");
    for (c, k) in [(&bob, &b_keys), (&carol, &c_keys)] {
        let got = next(c).await.message;
        assert_eq!(text(&c.open_message(&got, Some(k)).await.expect("open").parts), SECRET);
    }
    assert_not_stored(&hub, "zebra-7731").await;
    hub.stop().await;
}

#[tokio::test]
async fn a_sealed_part_replayed_into_another_conversation_is_refused() {
    let hub = TestHub::start().await;
    let (_, alice, a_keys) = agent_with_keys(&hub, "alice").await;
    let (b_id, _, _) = agent_with_keys(&hub, "bob").await;
    let (c_id, carol, _) = agent_with_keys(&hub, "carol").await;
    let first = alice
        .create_conversation(&CreateConversation { title: None, participants: vec![agent_addr(&b_id)] })
        .await
        .unwrap()
        .conversation
        .id;
    let other = alice
        .create_conversation(&CreateConversation { title: None, participants: vec![agent_addr(&c_id)] })
        .await
        .unwrap()
        .conversation
        .id;
    let mut m = SendMessage::text(format!("conversation:{first}"), SECRET);
    m.parts = vec![e2e::seal(&m.parts, &alice.recipient_keys(&m.to).await.unwrap().keys).unwrap()];
    e2e::sign(&mut m, &a_keys).unwrap();
    alice.send(&m).await.expect("sent where it was sealed for");

    let moved = SendMessage {
        to: format!("conversation:{other}"),
        conversation_id: Some(other.clone()),
        idempotency_key: Some("another-nonce".into()),
        ..m.clone()
    };
    assert_eq!(alice.send(&moved).await.unwrap_err().code(), Some("bad_signature"));
    let to_carol = SendMessage { to: agent_addr(&c_id), conversation_id: None, ..m };
    assert_eq!(alice.send(&to_carol).await.unwrap_err().code(), Some("bad_signature"));
    let opts = InboxOptions { wait_ms: Some(0), limit: Some(10), visibility_ms: None };
    assert!(carol.inbox(&opts).await.unwrap().messages.is_empty(), "nothing reached the other conversation");
    hub.stop().await;
}

#[tokio::test]
async fn a_message_sealed_to_a_revoked_key_is_refused() {
    let hub = TestHub::start().await;
    let (_, alice, a_keys) = agent_with_keys(&hub, "alice").await;
    let (b_id, bob, b_keys) = agent_with_keys(&hub, "bob").await;
    let stale = alice.recipient_keys(&agent_addr(&b_id)).await.unwrap().keys;
    bob.revoke_key(&b_keys.encryption_key_id).await.expect("bob revokes his key");
    assert!(alice.recipient_keys(&agent_addr(&b_id)).await.unwrap().keys.iter().all(|k| k.kind != KeyKind::X25519));

    let mut m = SendMessage::text(agent_addr(&b_id), SECRET);
    m.parts = vec![e2e::seal(&m.parts, &stale).unwrap()];
    e2e::sign(&mut m, &a_keys).unwrap();
    let body = serde_json::to_string(&m).unwrap();
    let token = hub.admin().create_agent_key(&a_keys.principal["agent:".len()..]).await.unwrap().key;
    let p = assert_problem(raw(&hub, "POST", "/v1/messages", Some(&token), Some(body)).await, 422, "revoked_key");
    assert_eq!(p["errors"][0]["path"], "parts[0].sealed.recipients[0].key_id");
    // A signing key revoked: its signatures are refused from then on.
    alice.revoke_key(&a_keys.signing_key_id).await.unwrap();
    let mut signed = SendMessage::text(agent_addr(&b_id), "hello");
    e2e::sign(&mut signed, &a_keys).unwrap();
    assert_eq!(alice.send(&signed).await.unwrap_err().code(), Some("bad_signature"));
    hub.stop().await;
}

#[tokio::test]
async fn a_sealed_message_must_be_signed() {
    let hub = TestHub::start().await;
    let (_, alice, _) = agent_with_keys(&hub, "alice").await;
    let (b_id, _, _) = agent_with_keys(&hub, "bob").await;
    let mut m = SendMessage::text(agent_addr(&b_id), SECRET);
    m.parts = vec![e2e::seal(&m.parts, &alice.recipient_keys(&m.to).await.unwrap().keys).unwrap()];
    assert_eq!(alice.send(&m).await.unwrap_err().code(), Some("bad_signature"));
    hub.stop().await;
}

/// The Python example (docs/examples/open_sealed.py, PyNaCl-free: `pyhpke` and
/// `cryptography`) opens a message the Rust client sealed, and verifies its signature; a
/// message moved to another address does not verify there either.
#[tokio::test]
#[ignore = "needs SWITCHBOARD_TEST_PYTHON (a venv with .ci/requirements-standards.txt)"]
async fn the_python_example_opens_a_message_sealed_by_the_rust_client() {
    let python = std::env::var("SWITCHBOARD_TEST_PYTHON").expect("SWITCHBOARD_TEST_PYTHON names a Python interpreter");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/examples/open_sealed.py");
    let hub = TestHub::start().await;
    let (a_id, alice, a_keys) = agent_with_keys(&hub, "alice").await;
    let (b_id, bob, b_keys) = agent_with_keys(&hub, "bob").await;
    let parts = vec![
        Part::text("naïve café ☕ \"quoted\"\n"),
        Part::Data { data: serde_json::json!({"z": [1, -2, {"b": true, "a": null}], "a": "ü"}) },
    ];
    let m = SendMessage { parts: parts.clone(), ..SendMessage::text(agent_addr(&b_id), "") };
    alice.send_sealed(m, &a_keys).await.expect("sealed send");
    let got = next(&bob).await.message;
    let sender_keys = bob.keys_of(&agent_addr(&a_id), true).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, v: &dyn erased::Json| {
        let path = dir.path().join(name);
        std::fs::write(&path, v.json()).unwrap();
        path
    };
    let run = |message: &switchboard_core::api::Message| {
        let out = std::process::Command::new(&python)
            .arg(script)
            .arg(write("message.json", message))
            .arg(write("keys.json", &b_keys))
            .arg(write("sender_keys.json", &sender_keys))
            .output()
            .expect("run the Python example");
        assert!(out.status.success(), "python failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("the example prints JSON")
    };
    let opened = run(&got);
    assert_eq!(opened["parts"], serde_json::to_value(&parts).unwrap());
    assert_eq!(opened["verified"], true);
    let moved = switchboard_core::api::Message { to: "agent:someone-else".into(), ..got };
    assert_eq!(run(&moved)["verified"], false, "a moved message does not verify in Python either");

    // A signed plain message: Python's canonical JSON of these parts (non-ASCII, escapes,
    // nested objects) is the bytes the Rust client signed.
    let m = SendMessage { parts: parts.clone(), ..SendMessage::text(agent_addr(&b_id), "") };
    alice.send_signed(m, &a_keys).await.expect("signed send");
    let plain = run(&next(&bob).await.message);
    assert_eq!(plain["parts"], serde_json::to_value(&parts).unwrap());
    assert_eq!(plain["verified"], true);
    hub.stop().await;
}

/// Serializes the example's inputs without naming each type.
mod erased {
    pub trait Json {
        fn json(&self) -> String;
    }
    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> String {
            serde_json::to_string(self).expect("serializable")
        }
    }
}
