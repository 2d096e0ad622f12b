//! The A2A delivery mode: a message to an agent imported from its Agent Card goes out as the
//! A2A client binding's `SendMessage` (or 0.3's `message/send`) instead of a signed webhook,
//! through the same attempt, retries, circuit and SSRF guard. The wire format is
//! `domain::a2a::remote`; this file adds the HTTP: the request's headers, and `GetTask` polls
//! while the agent's task is still running.

use std::time::Instant;

use serde_json::json;
use switchboard_core::api::Part;
use switchboard_store::push::PushJob;

use crate::domain::a2a::remote::{self, Answer, Call, Remote};

/// How often a task that is not finished yet is read again, within the attempt.
const POLL_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// The request of one forward: where it goes, its headers and body.
pub(super) struct Outgoing {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The request that hands `job`'s message to the imported agent `remote`; the error says why
/// the stored message cannot be forwarded (it goes dead: a retry would not help).
pub(super) fn outgoing(job: &PushJob, remote: &Remote) -> Result<Outgoing, String> {
    let m = &job.message;
    let parts: Vec<Part> =
        serde_json::from_str(&m.parts).map_err(|e| format!("the stored message's parts cannot be read: {e}"))?;
    // Who sent it, for an agent that wants to know: A2A has no sender of its own.
    let mut sb = serde_json::Map::new();
    sb.insert("from".into(), json!(m.sender));
    sb.insert("message_id".into(), json!(m.id));
    if let Some(c) = &m.conversation_id {
        sb.insert("conversation_id".into(), json!(c));
    }
    let call = remote::send_call(remote, &m.id, &parts, json!({ "switchboard": sb }));
    Ok(request(remote, call))
}

/// The request that reads the agent's task `task_id` again (`GetTask`).
pub(super) fn get_task(remote: &Remote, task_id: &str) -> Outgoing {
    request(remote, remote::get_task_call(remote, task_id))
}

fn request(remote: &Remote, call: Call) -> Outgoing {
    let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    if remote.dialect() == crate::domain::a2a::Dialect::V10 {
        headers.push(("A2A-Version".into(), "1.0".into()));
    }
    headers.extend(remote.auth_header());
    let body = if call.body.is_null() { vec![] } else { serde_json::to_vec(&call.body).unwrap_or_default() };
    Outgoing { url: call.url, headers, body }
}

/// Reads the task again (`GetTask`) every [`POLL_EVERY`] until it stops or pauses, or until
/// `deadline` (the attempt must end inside its claim). Returns the latest answer; a task still
/// running then is followed by the next attempts (see `attempt`).
pub(super) async fn settle(http: &reqwest::Client, remote: &Remote, mut answer: Answer, deadline: Instant) -> Answer {
    while !answer.state.settled() {
        let Some(task_id) = answer.task_id.clone() else { break };
        if Instant::now() + POLL_EVERY >= deadline {
            break;
        }
        tokio::time::sleep(POLL_EVERY).await;
        let out = request(remote, remote::get_task_call(remote, &task_id));
        let mut req = if out.body.is_empty() { http.get(&out.url) } else { http.post(&out.url).body(out.body) };
        for (k, v) in &out.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let read = async {
            let res = req.timeout(left).send().await.map_err(|e| e.to_string())?;
            if !res.status().is_success() {
                return Err(format!("GetTask answered {}", res.status()));
            }
            let body = res.bytes().await.map_err(|e| e.to_string())?;
            remote::read_answer(remote.binding, &body)
        };
        match read.await {
            Ok(next) => answer = next,
            Err(e) => {
                tracing::debug!(error = %e, task = %task_id, "could not read an A2A task again; keeping its last state");
                break;
            }
        }
    }
    answer
}
