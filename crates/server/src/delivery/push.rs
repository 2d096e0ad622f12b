//! Push delivery: signed webhooks (Standard Webhooks), retries with backoff and full jitter,
//! per-endpoint concurrency and circuit breaking, dead letters.
//!
//! One dispatcher task per node claims due push deliveries from the store (woken by sends to
//! push agents, and once a tick for retries coming due), and runs each attempt in a task of
//! its own. A claim holds the delivery for longer than the request timeout, so no other node
//! sends it inside the claim; if this node dies, the claim runs out and another node takes it
//! (at-least-once: the receiver sees the same `webhook-id` again).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use hmac::{Hmac, Mac};
use rand::Rng;
use serde::Deserialize;
use sha2::Sha256;
use switchboard_core::Recipient;
use switchboard_core::api::{Part, TenantPushSettings};
use switchboard_core::time::{Millis, now_ms, rfc3339};
use switchboard_store::NewMessage;
use switchboard_store::push::{AttemptRecord, PushClaim, PushJob, PushOutcome};
use tokio::sync::{Notify, Semaphore};

use crate::AppState;

mod circuit;
mod guard;
mod retry;

use circuit::{Change, Circuit, Ended, Policy};

/// Prefix of webhook signing secrets, as the Standard Webhooks spec suggests.
pub const SECRET_PREFIX: &str = "whsec_";
/// Most of a response body read (for the reply and the attempt log).
const MAX_RESPONSE: usize = 256 * 1024;
/// Most of a response body kept in the attempt log.
const EXCERPT: usize = 512;

/// A new signing secret: `whsec_` + base64 of 32 random bytes.
pub fn new_secret() -> String {
    let mut key = [0u8; 32];
    rand::rng().fill(&mut key);
    format!("{SECRET_PREFIX}{}", base64::engine::general_purpose::STANDARD.encode(key))
}

/// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` with a `whsec_` secret.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let key = base64::engine::general_purpose::STANDARD.decode(secret.strip_prefix(SECRET_PREFIX)?).ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())))
}

/// A host name none of whose addresses push may reach.
#[derive(Debug)]
struct RefusedAddress {
    host: String,
    first: guard::Refused,
}

impl std::fmt::Display for RefusedAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` resolves only to addresses push may not reach: {}", self.host, self.first)
    }
}

impl std::error::Error for RefusedAddress {}

/// Resolves endpoint host names and drops the addresses [`guard::check`] refuses, at connect
/// time, so a name that changes its answer after registration (DNS rebinding) still cannot
/// reach the inside. Literal addresses never come here: [`check_literal`] covers them.
struct GuardedResolver {
    allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if allow {
                return Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs);
            }
            let mut first = None;
            let mut ok = Vec::with_capacity(addrs.len());
            for a in addrs {
                match guard::check(a.ip()) {
                    Ok(()) => ok.push(a),
                    Err(refused) => first = first.or(Some(refused)),
                }
            }
            match first {
                Some(first) if ok.is_empty() => {
                    Err(Box::new(RefusedAddress { host, first }) as Box<dyn std::error::Error + Send + Sync>)
                }
                _ => Ok(Box::new(ok.into_iter()) as reqwest::dns::Addrs),
            }
        })
    }
}

/// What to tell an admin whose endpoint the guard refused.
const ALLOW_HINT: &str = "push may reach it only when the node allows private endpoints \
     (SWITCHBOARD_ALLOW_PRIVATE_ENDPOINTS=true) or the tenant does (`allow_private_endpoints` in \
     PUT /v1/tenant/push-settings)";

/// Checks an endpoint URL when an agent is registered or updated: scheme, and (unless
/// allowed) that every address it names or resolves to passes [`guard::check`]. Returns what
/// is wrong.
pub async fn check_endpoint(url: &str, allow_private: bool) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("must be an http:// or https:// URL".into());
    }
    if allow_private {
        return Ok(());
    }
    let host = parsed.host_str().ok_or("has no host")?;
    if let Some(ip) = guard::literal(&parsed) {
        return guard::check(ip).map_err(|r| format!("{r}; {ALLOW_HINT}"));
    }
    let port = parsed.port_or_known_default().unwrap_or(443);
    let addrs: Vec<SocketAddr> = match tokio::net::lookup_host((host, port)).await {
        Ok(a) => a.collect(),
        Err(e) => return Err(format!("host `{host}` does not resolve: {e}")),
    };
    // Any refused address refuses the name: the resolver would drop it at connect time, but
    // an admin should hear now that part of the endpoint is out of bounds.
    match addrs.iter().find_map(|a| guard::check(a.ip()).err()) {
        Some(r) => Err(format!("`{host}` resolves to an address push may not reach: {r}; {ALLOW_HINT}")),
        None => Ok(()),
    }
}

/// A reply in a 2xx response body: the agent answers without a second call.
#[derive(Debug, Deserialize)]
struct Reply {
    parts: Vec<Part>,
    #[serde(default)]
    metadata: Option<serde_json::Value>,
}

/// The node's push engine: the HTTP client, per-endpoint circuits and concurrency.
pub struct Pusher {
    /// Refuses private addresses at connect time (unless the node allows them).
    http: reqwest::Client,
    /// For tenants that allow private endpoints.
    http_private: reqwest::Client,
    circuits: Mutex<HashMap<(String, String), Circuit>>,
    slots: Arc<Semaphore>,
    wake: Notify,
    /// Tenant push settings, cached briefly: read on every attempt.
    tenants: Mutex<HashMap<String, (TenantPushSettings, Instant)>>,
    /// The hub's Ed25519 key, loaded (or created) once from the store.
    signer: tokio::sync::OnceCell<ed25519_dalek::SigningKey>,
}

const TENANT_TTL: Duration = Duration::from_secs(5);

fn http_client(config: &crate::Config, allow_private: bool) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_millis(config.push_timeout_ms))
        .connect_timeout(Duration::from_millis(config.push_timeout_ms.min(10_000)))
        .dns_resolver(Arc::new(GuardedResolver { allow_private }))
        .user_agent(concat!("Switchboard-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

impl Pusher {
    pub fn new(config: &crate::Config) -> Pusher {
        Pusher {
            http: http_client(config, config.allow_private_endpoints),
            http_private: http_client(config, true),
            circuits: Mutex::new(HashMap::new()),
            slots: Arc::new(Semaphore::new(config.push_concurrency)),
            wake: Notify::new(),
            tenants: Mutex::new(HashMap::new()),
            signer: tokio::sync::OnceCell::new(),
        }
    }

    /// Forgets cached tenant settings (they were just changed on this node).
    pub fn forget_tenant(&self, tenant: &str) {
        self.tenants.lock().expect("tenant cache poisoned").remove(tenant);
    }

    /// Something became due for a push agent: look now rather than at the next tick.
    pub fn poke(&self) {
        self.wake.notify_one();
    }
}

/// A tenant's push settings (defaults when it set none).
pub async fn tenant_settings(state: &AppState, tenant: &str) -> switchboard_store::Result<TenantPushSettings> {
    if let Some((s, at)) = state.pusher.tenants.lock().expect("tenant cache poisoned").get(tenant)
        && at.elapsed() < TENANT_TTL
    {
        return Ok(s.clone());
    }
    let settings = match state.store.tenant_push_settings(tenant).await? {
        Some(text) => serde_json::from_str(&text).unwrap_or_default(),
        None => TenantPushSettings::default(),
    };
    state
        .pusher
        .tenants
        .lock()
        .expect("tenant cache poisoned")
        .insert(tenant.to_owned(), (settings.clone(), Instant::now()));
    Ok(settings)
}

/// The hub's Ed25519 signing key, the same on every node (kept in the store).
pub async fn signing_key(state: &AppState) -> switchboard_store::Result<&ed25519_dalek::SigningKey> {
    state
        .pusher
        .signer
        .get_or_try_init(|| async {
            let mut candidate = [0u8; 32];
            rand::rng().fill(&mut candidate);
            let stored = state.store.signing_key(candidate.to_vec()).await?;
            let bytes: [u8; 32] = stored
                .as_slice()
                .try_into()
                .map_err(|_| switchboard_store::StoreError::Internal("stored signing key is not 32 bytes".into()))?;
            Ok(ed25519_dalek::SigningKey::from_bytes(&bytes))
        })
        .await
}

/// `v1a,<base64 Ed25519 signature of "{id}.{timestamp}.{body}">`, the Standard Webhooks
/// asymmetric scheme.
pub fn sign_ed25519(key: &ed25519_dalek::SigningKey, id: &str, timestamp: i64, body: &[u8]) -> String {
    use ed25519_dalek::Signer;
    let mut signed = format!("{id}.{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    format!("v1a,{}", base64::engine::general_purpose::STANDARD.encode(key.sign(&signed).to_bytes()))
}

/// The dispatcher: claims due push deliveries and starts their attempts. Runs until shutdown.
pub async fn dispatcher(state: AppState) {
    let pusher = state.pusher.clone();
    let tick = Duration::from_millis(state.config.reaper_interval_ms.max(100));
    let mut shutdown = state.shutdown.clone();
    let mut attempts = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = pusher.wake.notified() => {}
            _ = tokio::time::sleep(tick) => {}
            _ = crate::stopped(&mut shutdown) => break,
        }
        while attempts.try_join_next().is_some() {}
        loop {
            let room = pusher.slots.available_permits();
            if room == 0 {
                break;
            }
            let jobs = match claim(&state, room.min(256)).await {
                Ok(j) => j,
                Err(e) => {
                    tracing::warn!(error = %e, "could not claim push deliveries");
                    break;
                }
            };
            if jobs.is_empty() {
                break;
            }
            for job in jobs {
                let Ok(permit) = pusher.slots.clone().try_acquire_owned() else {
                    // Claimed but no slot: give it back for the next round.
                    if let Some(c) = pusher
                        .circuits
                        .lock()
                        .expect("circuits lock poisoned")
                        .get_mut(&(job.tenant.clone(), job.agent_id.clone()))
                    {
                        c.in_flight = c.in_flight.saturating_sub(1);
                    }
                    release(&state, &job, now_ms()).await;
                    continue;
                };
                let state = state.clone();
                attempts.spawn(async move {
                    attempt(&state, job).await;
                    drop(permit);
                    state.pusher.poke();
                });
            }
        }
    }
    // Let attempts in flight finish (each is bounded by the request timeout), so their
    // outcome is recorded rather than left to claim expiry.
    while attempts.join_next().await.is_some() {}
}

async fn claim(state: &AppState, limit: usize) -> switchboard_store::Result<Vec<PushJob>> {
    let now = now_ms();
    let policy = Policy::of(&state.config);
    let per_endpoint = policy.per_endpoint;
    let agent_room: Vec<(String, String, usize)> = {
        let circuits = state.pusher.circuits.lock().expect("circuits lock poisoned");
        circuits
            .iter()
            .filter_map(|((t, a), c)| {
                let room = c.room(now, &policy);
                (room < per_endpoint).then(|| (t.clone(), a.clone(), room))
            })
            .collect()
    };
    let jobs = state
        .store
        .claim_push(PushClaim {
            now,
            limit,
            hold_ms: state.config.push_timeout_ms as i64 + 2_000,
            node: String::new(),
            per_agent: per_endpoint,
            agent_room,
        })
        .await?;
    // A claim may hold several deliveries of one endpoint: keep within its concurrency (one
    // for a half-open probe) and hand the rest back.
    let mut kept = Vec::with_capacity(jobs.len());
    let mut back = Vec::new();
    {
        let mut circuits = state.pusher.circuits.lock().expect("circuits lock poisoned");
        for job in jobs {
            let c = circuits.entry((job.tenant.clone(), job.agent_id.clone())).or_default();
            if c.start(now, &policy) {
                kept.push(job);
            } else {
                back.push(job);
            }
        }
    }
    for job in back {
        release(state, &job, now).await;
    }
    Ok(kept)
}

async fn release(state: &AppState, job: &PushJob, due_at: Millis) {
    let recipient = Recipient::agent_text(&job.agent_id.as_str().into());
    if let Err(e) = state.store.release_push(&job.tenant, &job.message.id, &recipient, due_at).await {
        tracing::warn!(error = %e, "could not release a push claim; it expires by itself");
    }
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

async fn send(state: &AppState, job: &PushJob, tenant: &TenantPushSettings, body: Vec<u8>, attempt: u32) -> Answer {
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
        match signing_key(state).await {
            Ok(key) => signatures.push(sign_ed25519(key, id, ts, &body)),
            Err(e) => tracing::warn!(error = %e, "could not load the hub signing key; sending without v1a"),
        }
    }
    let allow_private = state.config.allow_private_endpoints || tenant.allow_private_endpoints;
    // Literal IP addresses bypass the resolver: check them here.
    if !allow_private && let Err(e) = check_literal(&job.endpoint) {
        return Answer::Failed { kind: "refused_address", status: None, body: vec![], error: e };
    }
    let http = if allow_private { &state.pusher.http_private } else { &state.pusher.http };
    let req = http
        .post(&job.endpoint)
        .header("content-type", "application/json")
        .header("webhook-id", id.as_str())
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", signatures.join(" "))
        .header("switchboard-attempt", attempt.to_string())
        .body(body);
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
                ("timeout", format!("no answer within {} ms", state.config.push_timeout_ms))
            } else if e.is_connect() {
                ("connect", "could not connect to the endpoint".to_owned())
            } else {
                ("closed", "the connection closed before a complete answer".to_owned())
            };
            Answer::Failed { kind, status: None, body: vec![], error }
        }
    }
}

/// Refuses an endpoint that names an address [`guard::check`] refuses: the client connects
/// to a literal address without asking the resolver, so the resolver cannot catch it.
fn check_literal(endpoint: &str) -> std::result::Result<(), String> {
    let url = reqwest::Url::parse(endpoint).map_err(|e| e.to_string())?;
    match guard::literal(&url).map(guard::check) {
        Some(Err(refused)) => Err(format!("{refused}; push may not reach it")),
        _ => Ok(()),
    }
}

fn excerpt(body: &[u8]) -> Option<String> {
    if body.is_empty() {
        return None;
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(EXCERPT)]).into_owned();
    Some(text)
}

async fn attempt(state: &AppState, job: PushJob) {
    let key = (job.tenant.clone(), job.agent_id.clone());
    let n = job.attempts + 1;
    let m = &job.message;
    // The push body: the message as stored, with this attempt's number.
    let body = match super::StoredJson::new(m, n) {
        // Strings and already-valid JSON: encoding cannot fail.
        Ok(body) => serde_json::to_vec(&body).unwrap_or_default(),
        Err(e) => {
            tracing::error!(message = %m.id, error = %e, "stored message is not JSON; dead-lettering");
            finish(
                state,
                &job,
                n,
                0,
                None,
                Some("internal"),
                None,
                PushOutcome::Dead { error: "stored message is corrupt".into() },
            )
            .await;
            return;
        }
    };
    let started = Instant::now();
    let tenant = tenant_settings(state, &job.tenant).await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "could not read tenant push settings; using the node's");
        TenantPushSettings::default()
    });
    let result = send(state, &job, &tenant, body, n).await;
    let took = started.elapsed().as_millis() as i64;
    // The agent's schedule, else the tenant's, else the node's.
    let schedule = job
        .settings
        .retry_schedule_ms
        .as_ref()
        .or(tenant.retry_schedule_ms.as_ref())
        .unwrap_or(&state.config.push_retry_schedule_ms);
    let retry_or_dead = |error: String, wait: Option<i64>| -> PushOutcome {
        match retry::next_delay_ms(schedule, n, wait, &mut rand::rng()) {
            Some(delay) => PushOutcome::Retry { due_at: now_ms() + delay, error },
            None => PushOutcome::Dead { error: format!("{error}; gave up after {n} attempts") },
        }
    };
    let metrics = &state.metrics;
    let (outcome, status, kind, body) = match result {
        Answer::Ok { status, body } => {
            if let Ok(reply) = serde_json::from_slice::<Reply>(&body) {
                record_reply(state, &job, reply).await;
            }
            (PushOutcome::Acked, Some(status), Some("ok"), body)
        }
        Answer::Gone { status, body } => {
            let error = "endpoint answered 410 Gone: push is disabled until the agent's endpoint is updated".to_owned();
            let _ = state.store.set_push_health(&job.tenant, &job.agent_id, Some(error.clone()), true).await;
            tracing::warn!(agent = %job.agent_id, endpoint = %job.endpoint, "endpoint disabled (410 Gone)");
            emit(
                state,
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
            emit(
                state,
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
        _ => Ended::Failure,
    };
    // The circuit learns of the failure before the store makes the retry due, so the
    // dispatcher cannot claim the retry past a circuit that is about to open.
    let (change, first_failure) = {
        let mut circuits = state.pusher.circuits.lock().expect("circuits lock poisoned");
        circuits.entry(key.clone()).or_default().end(ended, now_ms(), &Policy::of(&state.config))
    };
    finish(state, &job, n, took, status, kind, excerpt(&body), outcome).await;
    report_circuit(state, &key, change, first_failure, kind).await;
}

#[allow(clippy::too_many_arguments)]
async fn finish(
    state: &AppState,
    job: &PushJob,
    n: u32,
    took: i64,
    status: Option<u16>,
    kind: Option<&str>,
    excerpt: Option<String>,
    outcome: PushOutcome,
) {
    let record = AttemptRecord {
        recipient: Recipient::agent_text(&job.agent_id.as_str().into()),
        attempt: n,
        at: now_ms() - took,
        duration_ms: took,
        status_code: status,
        error_kind: kind.map(str::to_owned),
        excerpt,
    };
    if let Err(e) = state.store.finish_push(&job.tenant, &job.message.id, record, outcome).await {
        // The claim will run out and the delivery be tried again: at-least-once holds.
        tracing::warn!(error = %e, message = %job.message.id, "could not record a push attempt");
    }
}

/// Tells the agent's health, the events agent and the log what an attempt changed.
async fn report_circuit(
    state: &AppState,
    key: &(String, String),
    change: Change,
    first_failure: bool,
    kind: Option<&str>,
) {
    if first_failure {
        emit(state, &key.0, &key.1, "delivery.failing", serde_json::json!({ "kind": kind })).await;
    }
    match change {
        Change::None => {}
        Change::Opened(n) => {
            tracing::warn!(agent = %key.1, failures = n, "endpoint failing: circuit open");
            let error = format!("{n} consecutive push failures; retrying after a cooldown");
            let _ = state.store.set_push_health(&key.0, &key.1, Some(error), false).await;
            let cooldown = state.config.circuit_cooldown_ms;
            emit(
                state,
                &key.0,
                &key.1,
                "circuit.opened",
                serde_json::json!({ "failures": n, "cooldown_ms": cooldown }),
            )
            .await;
        }
        Change::Recovered => {
            tracing::info!(agent = %key.1, "endpoint recovered");
            let _ = state.store.set_push_health(&key.0, &key.1, None, false).await;
            emit(state, &key.0, &key.1, "delivery.recovered", serde_json::json!({})).await;
        }
    }
}

/// Counts a push health event and, when the tenant names an `events_to` agent, sends it
/// there as a CloudEvent in a `data` part: a durable message like any other, so an ops agent
/// gets it by pull or push, on whichever node it is connected to. Events about the events
/// agent itself are not sent to it, so a failing ops endpoint cannot feed itself.
async fn emit(state: &AppState, tenant: &str, agent_id: &str, event: &'static str, data: serde_json::Value) {
    state.metrics.push_event(event);
    let Ok(settings) = tenant_settings(state, tenant).await else { return };
    let Some(to) = settings.events_to else { return };
    let subject = Recipient::agent_text(&agent_id.into());
    if to == subject {
        return;
    }
    let now = now_ms();
    let id = switchboard_core::new_id().to_string();
    let cloud_event = serde_json::json!({
        "specversion": "1.0",
        "id": id,
        "source": "switchboard",
        "type": format!("dev.switchboard.{event}"),
        "subject": subject,
        "time": rfc3339(now),
        "datacontenttype": "application/json",
        "data": data,
    });
    let push = match to.parse::<Recipient>() {
        Ok(Recipient::Agent(ops)) => match state.store.get_agent(tenant, ops.as_str()).await {
            Ok(Some(a)) => a.endpoint.is_some(),
            _ => return, // the events agent is gone: metrics and logs still have the event
        },
        _ => return,
    };
    let m = NewMessage {
        tenant: tenant.to_owned(),
        id,
        sender: "switchboard".into(),
        to: to.clone(),
        recipients: vec![to.clone()],
        push_recipients: if push { vec![to.clone()] } else { vec![] },
        parts: serde_json::json!([{ "kind": "data", "data": cloud_event }]).to_string(),
        metadata: Some(serde_json::json!({ "event": event }).to_string()),
        conversation_id: None,
        correlation_id: None,
        in_reply_to: None,
        idempotency_key: None,
        request_hash: String::new(),
        created_at: now,
        expires_at: None,
    };
    match state.store.accept(vec![m]).await {
        Ok(_) => state.pusher.poke(),
        Err(e) => tracing::warn!(error = %e, event, "could not send a push event to {to}"),
    }
}

/// Stores a reply found in a 2xx answer as a message from the agent to the original sender.
async fn record_reply(state: &AppState, job: &PushJob, reply: Reply) {
    if reply.parts.is_empty() {
        return;
    }
    let m = &job.message;
    let mut recipients = Vec::new();
    let mut push_recipients = Vec::new();
    if let Ok(Recipient::Agent(id)) = m.sender.parse::<Recipient>()
        && let Ok(Some(a)) = state.store.get_agent(&job.tenant, id.as_str()).await
    {
        recipients.push(m.sender.clone());
        if a.endpoint.is_some() {
            push_recipients.push(m.sender.clone());
        }
    }
    let now = now_ms();
    let Ok(parts) = serde_json::to_string(&reply.parts) else { return };
    let reply_msg = NewMessage {
        tenant: job.tenant.clone(),
        id: switchboard_core::new_id().to_string(),
        sender: Recipient::agent_text(&job.agent_id.as_str().into()),
        to: m.sender.clone(),
        recipients,
        push_recipients,
        parts,
        metadata: reply.metadata.map(|v| v.to_string()),
        conversation_id: m.conversation_id.clone(),
        correlation_id: m.correlation_id.clone(),
        in_reply_to: Some(m.id.clone()),
        idempotency_key: Some(format!("reply:{}", m.id)),
        request_hash: format!("reply:{}", m.id),
        created_at: now,
        expires_at: None,
    };
    match state.store.accept(vec![reply_msg]).await {
        Ok(_) => {
            state.metrics.accepted.inc();
            state.pusher.poke();
        }
        Err(e) => tracing::warn!(error = %e, message = %m.id, "could not record a webhook reply"),
    }
}
