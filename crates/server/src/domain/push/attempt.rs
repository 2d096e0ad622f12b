//! One push attempt: the signed request, its answer classified (2xx ack and optional reply,
//! 410 disable, 429/502/503/504 `Retry-After`, else the retry schedule with full jitter, then
//! `dead`), recorded with `finish_push`, and the circuit told.

use std::time::Instant;

use serde::Deserialize;
use switchboard_core::api::{Part, TenantPushSettings};
use switchboard_core::time::now_ms;
use switchboard_core::{AgentId, Principal, PrincipalKind, Recipient, TenantId};
use switchboard_store::push::{AttemptRecord, PushJob, PushOutcome};

use super::a2a::Outgoing;
use super::circuit::{Ended, Policy};
use super::endpoint::{RefusedAddress, check_literal};
use super::signing::{sign, sign_ed25519};
use super::{Pusher, retry};
use crate::domain::a2a::Dialect;
use crate::domain::a2a::remote::{self, Remote};
use crate::domain::delivery::StoredJson;

/// Most of a response body read (for the reply and the attempt log).
const MAX_RESPONSE: usize = 256 * 1024;
/// Most of a response body kept in the attempt log.
const EXCERPT: usize = 512;

/// A reply in a 2xx response body: the agent answers without a second call.
#[derive(Debug, Deserialize)]
struct Reply {
    parts: Vec<Part>,
    #[serde(default)]
    metadata: Option<serde_json::Value>,
}

/// How an attempt ended, before it is turned into an outcome.
enum Answer {
    Ok { status: u16, body: Vec<u8> },
    Gone { status: u16, body: Vec<u8> },
    Throttled { status: u16, body: Vec<u8>, retry_after_ms: Option<i64> },
    Failed { kind: &'static str, status: Option<u16>, body: Vec<u8>, error: String },
}

async fn read_bounded(mut res: reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = res.chunk().await {
        let room = MAX_RESPONSE - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_RESPONSE {
            break;
        }
    }
    body
}

fn find_source<'a, E: std::error::Error + 'static>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a E> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(found) = err.downcast_ref::<E>() {
            return Some(found);
        }
        cur = err.source();
    }
    None
}

/// The signed webhook request for `job`: the message as stored, Standard Webhooks headers.
async fn webhook(p: &Pusher, job: &PushJob, tenant: &TenantPushSettings, body: Vec<u8>, attempt: u32) -> Outgoing {
    let now = now_ms();
    let ts = now / 1000;
    let id = &job.message.id;
    let mut signatures: Vec<String> = sign(&job.settings.secret, id, ts, &body).into_iter().collect();
    if let (Some(prev), Some(until)) = (&job.settings.previous, job.settings.previous_until)
        && until > now
    {
        signatures.extend(sign(prev, id, ts, &body));
    }
    if tenant.sign_ed25519 {
        match p.signing_key().await {
            Ok(key) => signatures.push(sign_ed25519(key, id, ts, &body)),
            Err(e) => tracing::warn!(error = %e, "could not load the hub signing key; sending without v1a"),
        }
    }
    let headers = [
        ("content-type", "application/json".to_owned()),
        ("webhook-id", id.clone()),
        ("webhook-timestamp", ts.to_string()),
        ("webhook-signature", signatures.join(" ")),
        ("switchboard-attempt", attempt.to_string()),
    ];
    Outgoing { url: job.endpoint.clone(), headers: headers.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(), body }
}

/// The client an attempt for `tenant` uses: the one that refuses private addresses, unless
/// the node or the tenant allows them.
fn client<'a>(p: &'a Pusher, tenant: &TenantPushSettings) -> (&'a reqwest::Client, bool) {
    let allow_private = p.config.allow_private_endpoints || tenant.allow_private_endpoints;
    (if allow_private { &p.http_private } else { &p.http }, allow_private)
}

async fn send(p: &Pusher, tenant: &TenantPushSettings, out: Outgoing) -> Answer {
    let (http, allow_private) = client(p, tenant);
    // Literal IP addresses bypass the resolver: check them here.
    if !allow_private && let Err(e) = check_literal(&out.url) {
        return Answer::Failed { kind: "refused_address", status: None, body: vec![], error: e };
    }
    // A bodiless request is an HTTP+JSON `GetTask`; everything else is POSTed.
    let mut req = if out.body.is_empty() { http.get(&out.url) } else { http.post(&out.url).body(out.body) };
    for (k, v) in &out.headers {
        req = req.header(k.as_str(), v.as_str());
    }
    match req.send().await {
        Ok(res) => {
            let status = res.status().as_u16();
            let retry_after_ms = res
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| retry::retry_after_ms(v, std::time::SystemTime::now()));
            let body = read_bounded(res).await;
            match status {
                200..=299 => Answer::Ok { status, body },
                410 => Answer::Gone { status, body },
                429 | 502 | 503 | 504 => Answer::Throttled { status, body, retry_after_ms },
                300..=399 => Answer::Failed {
                    kind: "redirect",
                    status: Some(status),
                    body,
                    error: format!("endpoint answered {status}; redirects are not followed"),
                },
                _ => Answer::Failed {
                    kind: "http_status",
                    status: Some(status),
                    body,
                    error: format!("endpoint answered {status}"),
                },
            }
        }
        Err(e) => {
            let (kind, error) = if let Some(refused) = find_source::<RefusedAddress>(&e) {
                ("refused_address", refused.to_string())
            } else if e.is_timeout() {
                ("timeout", format!("no answer within {} ms", p.config.push_timeout_ms))
            } else if e.is_connect() {
                ("connect", "could not connect to the endpoint".to_owned())
            } else {
                ("closed", "the connection closed before a complete answer".to_owned())
            };
            Answer::Failed { kind, status: None, body: vec![], error }
        }
    }
}

fn excerpt(body: &[u8]) -> Option<String> {
    if body.is_empty() {
        return None;
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(EXCERPT)]).into_owned();
    Some(text)
}

pub(super) async fn attempt(p: &Pusher, job: PushJob) {
    let key = (job.tenant.clone(), job.agent_id.clone());
    let n = job.attempts + 1;
    let m = &job.message;
    // An agent imported from an A2A card is called with the A2A client binding; any other
    // gets the message as stored, with this attempt's number, as a signed webhook.
    let remote = match job.settings.a2a.as_deref().map(serde_json::from_str::<Remote>) {
        Some(Ok(r)) => Some(r),
        Some(Err(e)) => return corrupt(p, &job, n, &format!("the stored A2A interface cannot be read: {e}")).await,
        None => None,
    };
    let started = Instant::now();
    let tenant = p.tenant_settings(&job.tenant).await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "could not read tenant push settings; using the node's");
        TenantPushSettings::default()
    });
    // A task the agent was still working on at the last attempt is read again, not resent.
    let task = match &remote {
        Some(_) => p.store.a2a_task(&job.tenant, &m.id).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, message = %m.id, "could not read the A2A task of a message; sending it again");
            None
        }),
        None => None,
    };
    let out = match (&remote, &task) {
        (Some(r), Some(t)) => super::a2a::get_task(r, t),
        (Some(r), None) => match super::a2a::outgoing(&job, r) {
            Ok(out) => out,
            Err(e) => return corrupt(p, &job, n, &e).await,
        },
        (None, _) => match StoredJson::new(m, n) {
            // Strings and already-valid JSON: encoding cannot fail.
            Ok(body) => webhook(p, &job, &tenant, serde_json::to_vec(&body).unwrap_or_default(), n).await,
            Err(e) => return corrupt(p, &job, n, &format!("stored message is corrupt: {e}")).await,
        },
    };
    let result = send(p, &tenant, out).await;
    let took = started.elapsed().as_millis() as i64;
    // The agent's schedule, else the tenant's, else the node's.
    let schedule = job
        .settings
        .retry_schedule_ms
        .as_ref()
        .or(tenant.retry_schedule_ms.as_ref())
        .unwrap_or(&p.config.push_retry_schedule_ms);
    let retry_or_dead = |error: String, wait: Option<i64>| -> PushOutcome {
        match retry::next_delay_ms(schedule, n, wait, &mut rand::rng()) {
            Some(delay) => PushOutcome::Retry { due_at: now_ms() + delay, error },
            None => PushOutcome::Dead { error: format!("{error}; gave up after {n} attempts") },
        }
    };
    let metrics = &p.metrics;
    let (outcome, status, kind, body) = match result {
        Answer::Ok { status, body } if remote.is_some() => {
            let r = remote.as_ref().expect("matched on is_some");
            match remote::read_answer(r.binding, &body) {
                Ok(answer) => {
                    // The answer is stored inside the claim: the attempt ends before it runs out.
                    let deadline = started + std::time::Duration::from_millis(p.config.push_timeout_ms);
                    let answer = super::a2a::settle(client(p, &tenant).0, r, answer, deadline).await;
                    match answer.task_id.clone().filter(|_| !answer.state.settled()) {
                        // Still running: followed with `GetTask` on the retry schedule (the
                        // endpoint is healthy, so the circuit counts it a success).
                        Some(t) => {
                            if task.as_deref() != Some(t.as_str())
                                && let Err(e) = p.store.set_a2a_task(&job.tenant, &m.id, Some(t.clone())).await
                            {
                                tracing::warn!(error = %e, message = %m.id, "could not record an A2A task; it will be sent again");
                            }
                            let error = format!("the agent's task {t} is still {}", answer.state.wire(Dialect::V10));
                            (retry_or_dead(error, None), Some(status), Some("a2a_working"), body)
                        }
                        None => {
                            if task.is_some() {
                                let _ = p.store.set_a2a_task(&job.tenant, &m.id, None).await;
                            }
                            let reply = Reply { metadata: Some(answer.metadata()), parts: answer.parts };
                            (PushOutcome::Acked, Some(status), Some(record_reply(p, &job, reply).await), body)
                        }
                    }
                }
                // An answer that is not A2A is a failure like a 5xx: tried again on the schedule.
                Err(error) => (retry_or_dead(error, None), Some(status), Some("a2a_answer"), body),
            }
        }
        Answer::Ok { status, body } => {
            let kind = match serde_json::from_slice::<Reply>(&body) {
                Ok(reply) if !reply.parts.is_empty() => record_reply(p, &job, reply).await,
                _ => "ok",
            };
            (PushOutcome::Acked, Some(status), Some(kind), body)
        }
        Answer::Gone { status, body } => {
            let error = "endpoint answered 410 Gone: push is disabled until the agent's endpoint is updated".to_owned();
            let _ = p.store.set_push_health(&job.tenant, &job.agent_id, Some(error.clone()), true).await;
            tracing::warn!(agent = %job.agent_id, endpoint = %job.endpoint, "endpoint disabled (410 Gone)");
            super::events::emit(
                p,
                &job.tenant,
                &job.agent_id,
                "endpoint.disabled",
                serde_json::json!({
                    "endpoint": job.endpoint, "message_id": m.id,
                }),
            )
            .await;
            (PushOutcome::Dead { error }, Some(status), Some("gone"), body)
        }
        Answer::Throttled { status, body, retry_after_ms } => {
            let error = format!("endpoint answered {status} (throttled)");
            (retry_or_dead(error, retry_after_ms), Some(status), Some("throttled"), body)
        }
        Answer::Failed { kind, status, body, error } => (retry_or_dead(error, None), status, Some(kind), body),
    };
    let success = outcome == PushOutcome::Acked;
    match &outcome {
        PushOutcome::Acked => {
            metrics.delivery("acked", 1);
            metrics.delivery_latency.observe((now_ms() - m.created_at).max(0) as f64 / 1000.0);
        }
        PushOutcome::Retry { .. } => metrics.delivery("push_retry", 1),
        PushOutcome::Dead { error } => {
            metrics.delivery("dead", 1);
            super::events::emit(
                p,
                &job.tenant,
                &job.agent_id,
                "delivery.exhausted",
                serde_json::json!({
                    "message_id": m.id, "attempts": n, "error": error,
                }),
            )
            .await;
        }
    }
    let ended = match kind {
        _ if success => Ended::Success,
        Some("gone") => Ended::Gone,
        Some("a2a_working") => Ended::Success,
        _ => Ended::Failure,
    };
    // The circuit learns of the failure before the store makes the retry due, so the
    // dispatcher cannot claim the retry past a circuit that is about to open.
    let (change, first_failure) = {
        let mut circuits = p.circuits.lock().expect("circuits lock poisoned");
        circuits.entry(key.clone()).or_default().end(ended, now_ms(), &Policy::of(&p.config))
    };
    finish(p, &job, n, took, status, kind, excerpt(&body), outcome).await;
    super::events::report_circuit(p, &key, change, first_failure, kind).await;
}

/// Dead-letters a delivery whose stored form cannot be sent (a retry would not help).
async fn corrupt(p: &Pusher, job: &PushJob, n: u32, error: &str) {
    tracing::error!(message = %job.message.id, error = %error, "stored message cannot be pushed; dead-lettering");
    finish(p, job, n, 0, None, Some("internal"), None, PushOutcome::Dead { error: error.to_owned() }).await;
}

#[allow(clippy::too_many_arguments)]
async fn finish(
    p: &Pusher,
    job: &PushJob,
    n: u32,
    took: i64,
    status: Option<u16>,
    kind: Option<&str>,
    excerpt: Option<String>,
    outcome: PushOutcome,
) {
    let record = AttemptRecord {
        recipient: Recipient::agent_text(&AgentId::from(job.agent_id.as_str())),
        attempt: n,
        at: now_ms() - took,
        duration_ms: took,
        status_code: status,
        error_kind: kind.map(str::to_owned),
        excerpt,
    };
    if let Err(e) = p.store.finish_push(&job.tenant, &job.message.id, record, outcome).await {
        // The claim will run out and the delivery be tried again: at-least-once holds.
        tracing::warn!(error = %e, message = %job.message.id, "could not record a push attempt");
    }
}

/// Stores a reply found in a 2xx answer as a message from the agent to the original sender,
/// through the checks of a send. Returns the attempt's error kind: `ok`, or `reply_refused`
/// when the reply broke a rule a send is held to (it is not stored; the log says why).
async fn record_reply(p: &Pusher, job: &PushJob, reply: Reply) -> &'static str {
    let by = Principal {
        tenant: TenantId::from(job.tenant.as_str()),
        kind: PrincipalKind::Agent(AgentId::from(job.agent_id.as_str())),
    };
    match p.acceptor.reply(&by, &job.message, reply.parts, reply.metadata).await {
        Ok(_) => "ok",
        Err(e) => {
            p.metrics.push_event("reply.refused");
            tracing::warn!(agent = %job.agent_id, message = %job.message.id, error = %e,
                "webhook reply refused; not stored");
            "reply_refused"
        }
    }
}
