//! Approvals: an agent asks people, the deciders answer once under the policy, the outcome
//! comes back to the agent as a reply (also through `?wait=reply`), and the deadline and
//! escalation run on the server, durably: a hub restarted after the deadline fires it.

mod common;

use common::{ADMIN, TestHub, assert_problem, eventually, raw, within};
use serde_json::{Value, json};
use switchboard_client::{Client, InboxOptions};
use switchboard_core::api::{CreateApproval, DecideApproval, Message, Part, PutGroup};
use switchboard_core::people::{CreateToken, CreateUser, Login};
use switchboard_core::principal::Role;
use switchboard_core::time::{now_ms, rfc3339};

async fn person(hub: &TestHub, email: &str) -> (String, Client, String) {
    let password = "correct horse battery";
    let req =
        CreateUser { email: email.into(), name: email.into(), role: Role::Member, password: Some(password.into()) };
    let id = hub.admin().create_user(&req).await.expect("create user").user.id;
    let s =
        hub.anonymous().login(&Login { email: email.into(), password: password.into(), tenant: None }).await.unwrap();
    let t = hub.anonymous().create_token_in_session(&s, &CreateToken { name: "t".into(), expires_in_days: None }).await;
    let token = t.expect("a token").token;
    (id, hub.admin().with_token(token.clone()), token)
}

/// A request to approve or reject, decided by `deciders`, due in `secs` seconds.
fn ask(deciders: &[String], secs: i64) -> CreateApproval {
    serde_json::from_value(json!({
        "question": "Deploy build 42 to production?",
        "parts": [{"kind": "text", "text": "42 passed every check"}],
        "options": [{"id": "approve", "label": "Approve"}, {"id": "reject", "label": "Reject"}],
        "deciders": deciders,
        "deadline": rfc3339(now_ms() + secs * 1000),
        "default_outcome": "reject",
    }))
    .unwrap()
}

/// The next message in `c`'s inbox, acknowledged.
async fn next_message(c: &Client) -> Message {
    let got = within(10, "a message in the inbox", async {
        loop {
            let got = c.inbox(&InboxOptions { wait_ms: Some(5000), ..Default::default() }).await.unwrap();
            if let Some(m) = got.messages.into_iter().next() {
                return m.message;
            }
        }
    })
    .await;
    c.ack(vec![got.id.clone()]).await.unwrap();
    got
}

fn data(m: &Message) -> Value {
    m.parts
        .iter()
        .find_map(|p| if let Part::Data { data } = p { Some(data.clone()) } else { None })
        .expect("a data part")
}

fn decide(option: &str, comment: Option<&str>) -> DecideApproval {
    DecideApproval { option: option.into(), comment: comment.map(str::to_owned), form: None }
}

#[tokio::test]
async fn a_decision_answers_the_agents_wait_for_a_reply() {
    let hub = TestHub::start().await;
    let (ann, ann_c, _) = person(&hub, "ann@example.com").await;
    let (agent, _) = hub.agent("deployer", &[]).await;
    let mut body = serde_json::to_value(ask(&[], 60)).unwrap();
    body.as_object_mut().unwrap().remove("deciders");
    let url = format!("{}/v1/messages?wait=reply&timeout_ms=20000", hub.url());
    let key = agent.api_key.clone();
    let send =
        json!({"to": format!("user:{ann}"), "kind": "approval_request", "parts": [{"kind": "data", "data": body}]});
    let waiting = tokio::spawn(async move {
        let res = reqwest::Client::new().post(url).bearer_auth(key).json(&send).send().await.unwrap();
        (res.status().as_u16(), res.json::<Value>().await.unwrap())
    });

    // The person finds the request in the inbox, from the agent, and answers it.
    let request = next_message(&ann_c).await;
    assert_eq!(request.from, format!("agent:{}", agent.agent.id));
    assert_eq!(request.metadata.as_ref().unwrap()["kind"], "approval_request");
    let id = data(&request)["approval"]["id"].as_str().unwrap().to_owned();
    let shown = ann_c.get_approval(&id).await.unwrap().approval;
    assert_eq!((shown.state.as_str(), shown.message_id.as_str()), ("pending", request.id.as_str()));
    assert_eq!(shown.deciders, [format!("user:{ann}")], "the deciders default to `to`");
    let after = ann_c.decide_approval(&id, &decide("approve", Some("go"))).await.unwrap().approval;
    assert_eq!(after.state, "approved");

    let (status, answer) = within(20, "the agent's wait for a reply", waiting).await.unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["message"]["id"], request.id.as_str());
    assert_eq!(answer["reply"]["in_reply_to"], request.id.as_str());
    let outcome =
        answer["reply"]["parts"].as_array().unwrap().iter().find(|p| p["kind"] == "data").unwrap()["data"].clone();
    assert_eq!(outcome["approval_id"], id.as_str());
    assert_eq!(outcome["outcome"], "approve");
    assert_eq!(outcome["decided_by"], format!("user:{ann}"));
    assert_eq!(outcome["comment"], "go");

    let audit = hub.admin().audit(&Default::default()).await.unwrap();
    let decided = audit.events.iter().find(|e| e.action == "approval.decide").expect("the decision is audited");
    assert_eq!(decided.actor, format!("user:{ann}"));
    assert_eq!(decided.detail["shown_sha256"].as_str().map(str::len), Some(64), "with what they were shown");
    assert!(audit.events.iter().any(|e| e.action == "approval.create"));
}

#[tokio::test]
async fn only_deciders_answer_and_only_once() {
    let hub = TestHub::start().await;
    let (ann, ann_c, _) = person(&hub, "ann@example.com").await;
    let (bea, bea_c, _) = person(&hub, "bea@example.com").await;
    let (_, cid_c, _) = person(&hub, "cid@example.com").await;
    hub.admin().put_group("ops", &PutGroup { description: None, members: vec![bea.clone()] }).await.unwrap();
    let (_, agent_c) = hub.agent("deployer", &[]).await;
    let created = agent_c.create_approval(&ask(&[format!("user:{ann}"), "group:ops".into()], 60)).await.unwrap();
    let id = created.approval.id.clone();
    assert_eq!(created.approval.state, "pending");

    let refused = cid_c.decide_approval(&id, &decide("approve", None)).await.unwrap_err().to_string();
    assert!(refused.contains("404") || refused.contains("not_found"), "a non-decider does not see it: {refused}");
    let agent_try = agent_c.decide_approval(&id, &decide("approve", None)).await.unwrap_err().to_string();
    assert!(agent_try.contains("forbidden"), "{agent_try}");
    let bad = ann_c.decide_approval(&id, &decide("maybe", None)).await.unwrap_err().to_string();
    assert!(bad.contains("option"), "an unknown option is named: {bad}");

    // The group's member answers for the group; the first answer settles `any`.
    assert_eq!(
        bea_c.decide_approval(&id, &decide("reject", Some("not today"))).await.unwrap().approval.state,
        "rejected"
    );
    for c in [&ann_c, &bea_c] {
        let again = c.decide_approval(&id, &decide("approve", None)).await.unwrap_err().to_string();
        assert!(again.contains("409") || again.contains("conflict"), "{again}");
    }
    let outcome = next_message(&agent_c).await;
    assert_eq!(outcome.in_reply_to.as_deref(), Some(created.approval.message_id.as_str()));
    assert_eq!(data(&outcome)["outcome"], "reject");
    assert_eq!(data(&outcome)["decided_by"], format!("user:{bea}"));
    let more = agent_c.inbox(&InboxOptions { wait_ms: Some(300), ..Default::default() }).await.unwrap();
    assert!(more.messages.is_empty(), "one outcome only");
}

#[tokio::test]
async fn two_deciders_at_once_give_one_outcome() {
    let hub = TestHub::start().await;
    let (ann, ann_c, _) = person(&hub, "ann@example.com").await;
    let (bea, bea_c, _) = person(&hub, "bea@example.com").await;
    let (_, agent_c) = hub.agent("deployer", &[]).await;
    let id =
        agent_c.create_approval(&ask(&[format!("user:{ann}"), format!("user:{bea}")], 60)).await.unwrap().approval.id;
    let (yes, no) = (decide("approve", None), decide("reject", None));
    let (a, b) = tokio::join!(ann_c.decide_approval(&id, &yes), bea_c.decide_approval(&id, &no));
    assert_eq!(a.is_ok() as u8 + b.is_ok() as u8, 1, "exactly one answer wins: {a:?} {b:?}");
    let shown = agent_c.get_approval(&id).await.unwrap().approval;
    assert_eq!(shown.decisions.len(), 1);
    let outcome = next_message(&agent_c).await;
    assert_eq!(data(&outcome)["outcome"], shown.decisions[0].option.as_str());
    let more = agent_c.inbox(&InboxOptions { wait_ms: Some(300), ..Default::default() }).await.unwrap();
    assert!(more.messages.is_empty(), "one outcome only");
}

#[tokio::test]
async fn quorum_waits_for_n_and_all_ends_at_the_first_rejection() {
    let hub = TestHub::start().await;
    let (ann, ann_c, _) = person(&hub, "ann@example.com").await;
    let (bea, bea_c, _) = person(&hub, "bea@example.com").await;
    let (cid, _, _) = person(&hub, "cid@example.com").await;
    let members = vec![ann.clone(), bea.clone(), cid];
    hub.admin().put_group("ops", &PutGroup { description: None, members }).await.unwrap();
    let (_, agent_c) = hub.agent("deployer", &[]).await;

    let quorum = CreateApproval { policy: Some("quorum:2".into()), ..ask(&["group:ops".into()], 60) };
    let id = agent_c.create_approval(&quorum).await.unwrap().approval.id;
    assert_eq!(ann_c.decide_approval(&id, &decide("approve", None)).await.unwrap().approval.state, "pending");
    assert_eq!(bea_c.decide_approval(&id, &decide("approve", None)).await.unwrap().approval.state, "approved");

    let all = CreateApproval { policy: Some("all".into()), ..ask(&[format!("user:{ann}"), format!("user:{bea}")], 60) };
    let id = agent_c.create_approval(&all).await.unwrap().approval.id;
    assert_eq!(ann_c.decide_approval(&id, &decide("approve", None)).await.unwrap().approval.state, "pending");
    let done = bea_c.decide_approval(&id, &decide("reject", Some("no"))).await.unwrap().approval;
    assert_eq!(done.state, "rejected");
    assert_eq!(done.outcome.unwrap().decided_by, format!("user:{bea}"));
}

#[tokio::test]
async fn escalation_adds_a_decider_and_delivers_the_request_to_them() {
    let hub = TestHub::start().await;
    let (ann, _, _) = person(&hub, "ann@example.com").await;
    let (bea, bea_c, _) = person(&hub, "bea@example.com").await;
    let (_, agent_c) = hub.agent("deployer", &[]).await;
    let mut req = ask(&[format!("user:{ann}")], 60);
    req.escalation = serde_json::from_value(json!([{"after_seconds": 1, "add": [format!("user:{bea}")]}])).unwrap();
    let created = agent_c.create_approval(&req).await.unwrap().approval;
    let early = bea_c.decide_approval(&created.id, &decide("approve", None)).await.unwrap_err().to_string();
    assert!(early.contains("forbidden") || early.contains("not_found"), "not a decider yet: {early}");

    let request = next_message(&bea_c).await;
    assert_eq!(data(&request)["approval"]["id"], created.id.as_str());
    let shown = bea_c.get_approval(&created.id).await.unwrap().approval;
    assert_eq!((shown.escalated, shown.deciders.len()), (1, 2));
    assert_eq!(bea_c.decide_approval(&created.id, &decide("approve", None)).await.unwrap().approval.state, "approved");
    let audit = hub.admin().audit(&Default::default()).await.unwrap();
    let step = audit.events.iter().find(|e| e.action == "approval.escalate").expect("the step is audited");
    assert_eq!(step.detail["added"], json!([format!("user:{bea}")]));
}

#[tokio::test]
async fn the_deadline_ends_it_with_the_default_decided_by_deadline() {
    let hub = TestHub::start().await;
    let (ann, ann_c, _) = person(&hub, "ann@example.com").await;
    let (_, agent_c) = hub.agent("deployer", &[]).await;
    let created = agent_c.create_approval(&ask(&[format!("user:{ann}")], 2)).await.unwrap().approval;
    let outcome = next_message(&agent_c).await;
    assert_eq!(outcome.in_reply_to.as_deref(), Some(created.message_id.as_str()));
    assert_eq!(data(&outcome)["outcome"], "reject");
    assert_eq!(data(&outcome)["decided_by"], "deadline");
    assert_eq!(data(&outcome)["state"], "expired");
    let late = ann_c.decide_approval(&created.id, &decide("approve", None)).await.unwrap_err().to_string();
    assert!(late.contains("expired"), "an expired approval takes no answer: {late}");
    assert_eq!(ann_c.get_approval(&created.id).await.unwrap().approval.state, "expired");
}

#[tokio::test]
async fn a_hub_restarted_past_the_deadline_fires_it() {
    let mut hub = TestHub::start().await;
    let (ann, _, _) = person(&hub, "ann@example.com").await;
    let (agent, agent_c) = hub.agent("deployer", &[]).await;
    let token = agent.api_key.clone();
    let created = agent_c.create_approval(&ask(&[format!("user:{ann}")], 2)).await.unwrap().approval;
    let deadline = switchboard_core::time::parse_rfc3339(&created.deadline).unwrap();
    hub.hub.take().unwrap().shutdown().await;
    // Down until after the deadline: nobody runs the clock meanwhile.
    eventually(10, "the deadline to pass", || async { (now_ms() > deadline + 200).then_some(()) }).await;
    let mut config = hub.config.clone();
    config.listen = "127.0.0.1:0".into();
    hub.hub = Some(switchboard_server::Hub::start(config).await.unwrap());
    let agent_c = hub.admin().with_token(token);
    let shown = eventually(5, "the restarted hub to fire the deadline", || async {
        let a = agent_c.get_approval(&created.id).await.unwrap().approval;
        (a.state == "expired").then_some(a)
    })
    .await;
    assert_eq!(shown.outcome.unwrap().decided_by, "deadline");
    assert_eq!(data(&next_message(&agent_c).await)["outcome"], "reject");
}

#[tokio::test]
async fn bad_forms_and_bodies_name_their_paths_and_change_nothing() {
    let hub = TestHub::start().await;
    let (ann, _, ann_token) = person(&hub, "ann@example.com").await;
    let (agent, agent_c) = hub.agent("deployer", &[]).await;
    let mut req = ask(&[format!("user:{ann}")], 60);
    req.form_schema = Some(json!({"type": "object", "required": ["amount"],
        "properties": {"amount": {"type": "number", "maximum": 100}}}));
    let id = agent_c.create_approval(&req).await.unwrap().approval.id;
    let path = format!("/v1/approvals/{id}/decide");
    let got = raw(
        &hub,
        "POST",
        &path,
        Some(&ann_token),
        Some(json!({"option": "approve", "form": {"amount": "x"}}).to_string()),
    );
    let p = assert_problem(got.await, 422, "invalid_body");
    assert_eq!(p["errors"][0]["path"], "form.amount", "{p}");
    let got = raw(&hub, "POST", &path, Some(&ann_token), Some(json!({"option": "approve", "form": {}}).to_string()));
    assert_eq!(assert_problem(got.await, 422, "invalid_body")["errors"][0]["path"], "form");
    let unknown =
        raw(&hub, "POST", &path, Some(&ann_token), Some(json!({"option": "approve", "extra": 1}).to_string()));
    assert_problem(unknown.await, 422, "invalid_body");
    assert!(agent_c.get_approval(&id).await.unwrap().approval.decisions.is_empty(), "nothing was recorded");
    let ok = DecideApproval { option: "approve".into(), comment: None, form: Some(json!({"amount": 5})) };
    hub.admin().with_token(ann_token).decide_approval(&id, &ok).await.unwrap();

    let mut bad = serde_json::to_value(ask(&["agent:x".into(), "user:nobody".into()], 60)).unwrap();
    bad["default_outcome"] = json!("maybe");
    let got = raw(&hub, "POST", "/v1/approvals", Some(&agent.api_key), Some(bad.to_string())).await;
    let p = assert_problem(got, 422, "invalid_body");
    let paths: Vec<&str> = p["errors"].as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["default_outcome", "deciders[0]"], "{p}");
    let unknown_user =
        raw(&hub, "POST", "/v1/approvals", Some(ADMIN), Some(json!(ask(&["user:nobody".into()], 60)).to_string()));
    assert_eq!(assert_problem(unknown_user.await, 422, "invalid_body")["errors"][0]["path"], "deciders[0]");
    let listed = hub.admin().list_approvals(None, None, None).await.unwrap();
    assert_eq!(listed.approvals.len(), 1, "the refused ones were not stored");
}
