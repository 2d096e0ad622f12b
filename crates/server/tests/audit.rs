//! The audit log over HTTP (`GET /v1/audit`, `GET /v1/audit:export`): what the admin's and
//! agents' changes leave in it, read back in `seq` order with a chain that verifies, filtered,
//! paged, exported as JSON lines; and who may not read it, and which queries are refused.

mod common;

use common::{ADMIN, TestHub, agent_addr, assert_problem, eventually, raw};
use futures_util::StreamExt;
use switchboard_client::{AuditQuery, Client, DeliveryQuery, InboxOptions};
use switchboard_core::api::{
    AuditEvent, AuditSettings, DeadLetterSelection, RegisterAgent, SendMessage, TenantPushSettings, UpdateAgent,
};
use switchboard_core::time::{now_ms, rfc3339};

/// Every entry the admin client can list, page by page with `limit`, checking that each
/// page but the last is full and that `next_cursor` moves forward.
async fn all_pages(admin: &Client, mut query: AuditQuery, limit: usize) -> Vec<AuditEvent> {
    query.limit = Some(limit);
    let mut seen: Vec<AuditEvent> = Vec::new();
    loop {
        let page = admin.audit(&query).await.unwrap();
        assert!(page.events.len() <= limit, "a page holds at most `limit` entries");
        match page.next_cursor {
            Some(c) => {
                assert_eq!(page.events.len(), limit, "only a full page has a next page");
                assert_eq!(c, page.events.last().unwrap().seq.to_string());
                seen.extend(page.events);
                query.cursor = Some(c);
            }
            None => {
                seen.extend(page.events);
                return seen;
            }
        }
    }
}

/// `GET /v1/audit:export` read raw: its content type and its lines, each parsed.
async fn export_lines(hub: &TestHub, token: &str) -> (String, Vec<AuditEvent>) {
    let res = reqwest::Client::new()
        .get(format!("{}/v1/audit:export", hub.url()))
        .bearer_auth(token)
        .send()
        .await
        .expect("the hub answers");
    assert_eq!(res.status(), 200);
    let ctype = res.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let text = res.text().await.expect("the whole export");
    assert!(text.is_empty() || text.ends_with('\n'), "every line ends: {text:?}");
    let events = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not one JSON entry per line ({e}): {l}")))
        .collect();
    (ctype, events)
}

/// Every entry through the client's streaming reader.
async fn client_export(admin: &Client) -> Vec<AuditEvent> {
    let mut export = admin.audit_export().await.unwrap();
    let mut events = Vec::new();
    while let Some(e) = export.next_event().await.unwrap() {
        events.push(e);
    }
    events
}

async fn dead_count(admin: &Client) -> usize {
    admin.dead_letters(&DeliveryQuery::default()).await.unwrap().dead_letters.len()
}

#[tokio::test]
async fn the_admin_reads_each_change_in_order_filtered_paged_and_exported() {
    // One attempt: a nacked delivery is out of attempts.
    let hub = TestHub::start_with(|c| c.max_attempts = 1).await;
    let admin = hub.admin();
    assert!(admin.audit(&AuditQuery::default()).await.unwrap().events.is_empty());
    assert_eq!(export_lines(&hub, ADMIN).await.1, vec![], "an empty log exports no lines");

    // The admin's changes, and a replay by an agent of its own dead letter.
    let a = admin.register_agent(&RegisterAgent { name: "audited".into(), ..Default::default() }).await.unwrap();
    let id = a.agent.id.clone();
    admin.update_agent(&id, &UpdateAgent { name: "audited-2".into(), ..Default::default() }).await.unwrap();
    admin.rotate_webhook_secret(&id).await.unwrap();
    admin.put_tenant_push_settings(&TenantPushSettings { sign_ed25519: true, ..Default::default() }).await.unwrap();
    let (worker, as_worker) = hub.agent("worker", &[]).await;
    let mut sent = Vec::new();
    for text in ["one", "two"] {
        sent.push(admin.send(&SendMessage::text(agent_addr(&worker.agent.id), text)).await.unwrap().id);
    }
    assert_eq!(
        as_worker.inbox(&InboxOptions { limit: Some(10), ..Default::default() }).await.unwrap().messages.len(),
        2
    );
    assert_eq!(as_worker.nack(sent.clone(), None).await.unwrap().ids.len(), 2);
    // Out of attempts, they go dead when next looked for.
    eventually(10, "both deliveries to be dead", || async {
        let _ = as_worker.inbox(&InboxOptions { wait_ms: Some(0), ..Default::default() }).await.unwrap();
        (dead_count(&admin).await == 2).then_some(())
    })
    .await;
    // So that a `since` can tell the entries before from those after.
    let before = admin.audit(&AuditQuery::default()).await.unwrap().events.last().unwrap().at.clone();
    eventually(5, "the clock to pass the last entry", || async { (rfc3339(now_ms()) > before).then_some(()) }).await;
    let one = DeadLetterSelection { message_ids: vec![sent[0].clone()], ..Default::default() };
    assert_eq!(as_worker.replay_dead_letters(&one).await.unwrap().count, 1);
    let two = DeadLetterSelection { message_ids: vec![sent[1].clone()], ..Default::default() };
    assert_eq!(admin.purge_dead_letters(&two).await.unwrap().count, 1);
    admin.delete_agent(&id).await.unwrap();

    let listed = admin.audit(&AuditQuery::default()).await.unwrap();
    assert_eq!(listed.next_cursor, None, "one page holds them all");
    let events = listed.events;
    let got: Vec<(i64, &str, &str, &str)> =
        events.iter().map(|e| (e.seq, e.actor.as_str(), e.action.as_str(), e.target.as_str())).collect();
    let (agent, worker_addr) = (agent_addr(&id), agent_addr(&worker.agent.id));
    assert_eq!(
        got,
        [
            (1, "operator", "agent.register", agent.as_str()),
            (2, "operator", "agent.update", &agent),
            (3, "operator", "webhook_secret.rotate", &agent),
            (4, "operator", "push_settings.update", "tenant:default"),
            (5, "operator", "agent.register", &worker_addr),
            (6, worker_addr.as_str(), "dead_letters.replay", "dead_letters"),
            (7, "operator", "dead_letters.purge", "dead_letters"),
            (8, "operator", "agent.delete", &agent),
        ],
        "{events:#?}"
    );
    assert_eq!(events[5].detail["count"], 1, "a replay says how many it changed");
    switchboard_core::audit::verify(&events).expect("the chain as listed verifies");
    let text = serde_json::to_string(&events).unwrap();
    assert!(!text.contains(&a.api_key) && !text.contains(&a.webhook_secret), "no secret in the log");

    // Filters, alone and together.
    let by = |actor: Option<&str>, action: Option<&str>, since: Option<&str>| AuditQuery {
        actor: actor.map(str::to_owned),
        action: action.map(str::to_owned),
        since: since.map(str::to_owned),
        ..Default::default()
    };
    let seqs = |events: Vec<AuditEvent>| events.iter().map(|e| e.seq).collect::<Vec<_>>();
    let audit = |q: AuditQuery| {
        let admin = admin.clone();
        async move { seqs(admin.audit(&q).await.unwrap().events) }
    };
    assert_eq!(audit(by(None, Some("agent.register"), None)).await, [1, 5]);
    assert_eq!(audit(by(Some(&worker_addr), None, None)).await, [6]);
    assert_eq!(audit(by(Some("operator"), None, None)).await, [1, 2, 3, 4, 5, 7, 8]);
    assert_eq!(audit(by(Some("operator"), Some("dead_letters.replay"), None)).await, Vec::<i64>::new());
    assert_eq!(audit(by(None, Some("user.create"), None)).await, Vec::<i64>::new(), "a known action never taken");
    // Entries at or after the replay's time: the test waited for the clock to pass the
    // entries before it (times have one width: text order is time order).
    let since = events[5].at.clone();
    let want: Vec<i64> = events.iter().filter(|e| e.at >= since).map(|e| e.seq).collect();
    assert_eq!(want, [6, 7, 8], "{events:#?}");
    assert_eq!(audit(by(None, None, Some(&since))).await, want);
    assert_eq!(
        audit(by(Some("operator"), None, Some(&since))).await,
        want.iter().copied().filter(|s| *s != 6).collect::<Vec<_>>()
    );

    // Paging visits every entry exactly once, in order, whatever the page size.
    for limit in [1, 3, 7, 8, 1000] {
        assert_eq!(all_pages(&admin, AuditQuery::default(), limit).await, events, "limit {limit}");
    }
    let registers = all_pages(&admin, by(None, Some("agent.register"), None), 1).await;
    assert_eq!(seqs(registers), [1, 5], "paging keeps the filter");

    // The export: the same entries as JSON lines, raw and through the client.
    let (ctype, exported) = export_lines(&hub, ADMIN).await;
    assert_eq!(ctype, "application/x-ndjson");
    assert_eq!(exported, events);
    assert_eq!(client_export(&admin).await, events);
    hub.stop().await;
}

/// More entries than one page of the export (500): the stream joins its pages without a gap
/// or a repeat, and the whole chain verifies.
#[tokio::test]
async fn an_export_longer_than_a_page_is_whole() {
    let hub = TestHub::start().await;
    let admin = hub.admin();
    let n = 520;
    let registered: Vec<_> = futures_util::stream::iter(0..n)
        .map(|i| {
            let admin = admin.clone();
            async move { admin.register_agent(&RegisterAgent { name: format!("a{i}"), ..Default::default() }).await }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    assert!(registered.iter().all(Result::is_ok), "every registration succeeded");

    let (_, exported) = export_lines(&hub, ADMIN).await;
    assert_eq!(exported.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=n as i64).collect::<Vec<_>>());
    switchboard_core::audit::verify(&exported).expect("the exported chain verifies");
    assert_eq!(client_export(&admin).await, exported);
    assert_eq!(all_pages(&admin, AuditQuery::default(), 1000).await, exported);
    hub.stop().await;
}

#[tokio::test]
async fn only_the_admin_reads_the_audit_log() {
    let hub = TestHub::start().await;
    let (_, agent) = hub.agent("nosy", &[]).await;
    let refused = agent.audit(&AuditQuery::default()).await.unwrap_err();
    assert_eq!(refused.code(), Some("forbidden"), "{refused}");
    let refused = agent.audit_export().await.err().expect("an agent's export is refused");
    assert_eq!(refused.code(), Some("forbidden"), "{refused}");
    let key = agent_key(&hub).await;
    for path in ["/v1/audit", "/v1/audit:export", "/v1/audit?action=agent.register"] {
        assert_problem(raw(&hub, "GET", path, Some(&key), None).await, 403, "forbidden");
        assert_problem(raw(&hub, "GET", path, None, None).await, 401, "unauthenticated");
    }
    // The admin sees the registrations the refused agents could not.
    let seen = hub.admin().audit(&AuditQuery::default()).await.unwrap().events;
    assert_eq!(seen.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), ["agent.register"; 2]);
    hub.stop().await;
}

/// A fresh agent's key.
async fn agent_key(hub: &TestHub) -> String {
    hub.agent("another", &[]).await.0.api_key
}

#[tokio::test]
async fn each_bad_query_parameter_is_refused_by_name() {
    let hub = TestHub::start().await;
    hub.agent("someone", &[]).await;
    let cases = [
        ("action=agent.explode", "action"),
        ("action=", "action"),
        ("since=yesterday", "since"),
        ("since=2026-11-25", "since"),
        ("cursor=abc", "cursor"),
        ("cursor=-1", "cursor"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
    ];
    for (query, param) in cases {
        let got = raw(&hub, "GET", &format!("/v1/audit?{query}"), Some(ADMIN), None).await;
        let body = assert_problem(got, 400, "invalid_query");
        assert_eq!(body["errors"][0]["path"], param, "{query}: {body}");
        assert!(body["detail"].as_str().unwrap().contains(&format!("`{param}`")), "{query}: {body}");
    }
    for query in ["limit=many", "colour=blue"] {
        let body = assert_problem(
            raw(&hub, "GET", &format!("/v1/audit?{query}"), Some(ADMIN), None).await,
            400,
            "invalid_query",
        );
        let name = query.split('=').next().unwrap();
        assert!(body["detail"].as_str().unwrap().contains(name), "{query}: {body}");
    }
    // `limit` is one rule for every list, named the same way.
    for list in
        ["/v1/audit", "/v1/agents", "/v1/deliveries", "/v1/dead-letters", "/v1/topics/t/subscribers", "/v1/tenants"]
    {
        for limit in ["0", "1001"] {
            let got = raw(&hub, "GET", &format!("{list}?limit={limit}"), Some(ADMIN), None).await;
            let body = assert_problem(got, 400, "invalid_query");
            assert_eq!(body["errors"][0]["path"], "limit", "{list}: {body}");
        }
    }
    // A good query beside them still answers.
    let ok = raw(&hub, "GET", "/v1/audit?action=agent.register&limit=1000&cursor=0", Some(ADMIN), None).await;
    assert_eq!((ok.0, ok.2["events"].as_array().map(Vec::len)), (200, Some(1)), "{}", ok.2);
    hub.stop().await;
}

/// With the tenant's switch on, each send and ack leaves an entry (ids and metadata, never
/// the text); off, none. Only the admin turns it, and the turn is itself recorded. (The test
/// hub's admin token is the platform operator's, hence the actor.)
#[tokio::test]
async fn sends_and_acks_are_audited_only_while_the_tenant_asks() {
    let hub = TestHub::start().await;
    let admin = hub.admin();
    let (bob_reg, bob) = hub.agent("bob", &[]).await;
    let secret_text = "the payload the log must never hold";
    let send = |text: &str| SendMessage {
        to: agent_addr(&bob_reg.agent.id),
        parts: vec![switchboard_core::api::Part::Text { text: text.into() }],
        correlation_id: Some("corr-1".into()),
        ..Default::default()
    };
    let off = admin.send(&send(secret_text)).await.unwrap();
    assert!(!admin.audit_settings().await.unwrap().sends, "off by default");

    let refused = bob.put_audit_settings(&AuditSettings { sends: true }).await.unwrap_err();
    assert_eq!(refused.code(), Some("forbidden"), "{refused}");
    assert_problem(
        raw(&hub, "PUT", "/v1/audit/settings", Some(ADMIN), Some(r#"{"sends":"yes"}"#.into())).await,
        422,
        "invalid_body",
    );
    assert_eq!(admin.put_audit_settings(&AuditSettings { sends: true }).await.unwrap(), AuditSettings { sends: true });
    let on = admin.send(&send(secret_text)).await.unwrap();
    let inbox = bob.inbox(&InboxOptions { limit: Some(10), ..Default::default() }).await.unwrap();
    let ids: Vec<String> = inbox.messages.iter().map(|m| m.message.id.clone()).collect();
    assert_eq!(ids.len(), 2);
    bob.ack(ids.clone()).await.unwrap();
    admin.put_audit_settings(&AuditSettings { sends: false }).await.unwrap();
    admin.send(&send(secret_text)).await.unwrap();

    let log = all_pages(&admin, AuditQuery::default(), 100).await;
    let got: Vec<(&str, &str, &str)> =
        log.iter().map(|e| (e.actor.as_str(), e.action.as_str(), e.target.as_str())).collect();
    let bob_addr = agent_addr(&bob_reg.agent.id);
    let on_target = format!("message:{}", on.id);
    assert_eq!(
        got,
        [
            ("operator", "agent.register", bob_addr.as_str()),
            ("operator", "audit_settings.update", "audit_settings"),
            ("operator", "message.send", on_target.as_str()),
            (bob_addr.as_str(), "delivery.ack", bob_addr.as_str()),
            ("operator", "audit_settings.update", "audit_settings"),
        ],
        "only the send and the ack made while on (not {} before, nor the one after)",
        off.id
    );
    assert_eq!(log[2].detail["to"], bob_addr.as_str());
    assert_eq!(log[2].detail["correlation_id"], "corr-1");
    let mut acked: Vec<String> = serde_json::from_value(log[3].detail["ids"].clone()).unwrap();
    acked.sort();
    let mut want = ids;
    want.sort();
    assert_eq!(acked, want, "the ack names what it acked");
    let export = client_export(&admin).await;
    assert!(!serde_json::to_string(&export).unwrap().contains(secret_text), "no payload in the audit log");
    hub.stop().await;
}
