//! Rust client for a Switchboard hub: the CLI, the tests and the benchmarks all use it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), switchboard_client::ClientError> {
//! use switchboard_client::Client;
//! use switchboard_core::api::SendMessage;
//! let hub = Client::new("http://127.0.0.1:7777", Some("sbk_…".into()));
//! let mut stream = hub.stream().await?;
//! while let Some(m) = stream.next_message().await? {
//!     println!("{:?}", m.message.parts);
//!     stream.ack(&m.message.id).await?;
//! }
//! # Ok(()) }
//! ```

pub mod a2a;
mod access;
mod approvals;
mod conversations;
pub mod e2e;
mod people;
mod queries;
mod routing;
mod streams;
pub mod webhook;

pub use conversations::HistoryOptions;
pub use people::Session;
pub use queries::{AuditQuery, DeliveryQuery};
pub use streams::{AuditExport, EventStream, Stream};

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::Serialize;
use serde::de::DeserializeOwned;
use switchboard_core::api::*;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// What can go wrong talking to the hub.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The hub refused the request; the problem says why and what to do.
    #[error("{} ({}): {}", .0.title, .0.code, .0.detail)]
    Api(Problem),
    /// The hub could not be reached.
    #[error("cannot reach the hub at {url}: {source}")]
    Transport { url: String, source: reqwest::Error },
    /// The hub answered something this client does not understand.
    #[error("unexpected answer from the hub: {0}")]
    Protocol(String),
    #[error("stream: {0}")]
    Stream(String),
}

/// A CA certificate given to [`Client::with_ca_cert`] that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CaCertError(String);

impl ClientError {
    /// The problem `code` when the hub refused the request.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api(p) => Some(&p.code),
            _ => None,
        }
    }
}

/// Result of client calls.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// A connection to one hub, as one principal (an agent key or the admin token).
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    /// TLS for `wss://` when the client trusts a CA of its own; else the public roots.
    ws_tls: Option<Arc<rustls::ClientConfig>>,
}

/// Options of `GET /v1/inbox`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InboxOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visibility_ms: Option<u64>,
}

/// The HTTP client every `Client` starts from.
fn http_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder().use_rustls_tls().pool_max_idle_per_host(256).tcp_nodelay(true)
}

impl Client {
    /// A client for the hub at `base` (e.g. `http://127.0.0.1:7777`).
    pub fn new(base: impl Into<String>, token: Option<String>) -> Client {
        let http = http_builder().build().unwrap_or_default();
        Client { http, base: base.into().trim_end_matches('/').to_owned(), token, ws_tls: None }
    }

    /// The same client, also trusting the CA certificates in `pem` (PEM, one or more): for a
    /// hub serving HTTPS with a certificate from a private CA, or a self-signed one.
    pub fn with_ca_cert(self, pem: &[u8]) -> Result<Client, CaCertError> {
        let bad = |e: &dyn std::fmt::Display| CaCertError(format!("the CA certificate is not usable: {e}"));
        let certs = CertificateDer::pem_slice_iter(pem).collect::<Result<Vec<_>, _>>().map_err(|e| bad(&e))?;
        if certs.is_empty() {
            return Err(CaCertError(
                "the CA certificate file holds no PEM `-----BEGIN CERTIFICATE-----` section".into(),
            ));
        }
        let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        let mut http = http_builder();
        for cert in certs {
            http = http.add_root_certificate(reqwest::Certificate::from_der(&cert).map_err(|e| bad(&e))?);
            roots.add(cert).map_err(|e| bad(&e))?;
        }
        let ws = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(&e))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Client { http: http.build().map_err(|e| bad(&e))?, ws_tls: Some(Arc::new(ws)), ..self })
    }

    /// `SWITCHBOARD_URL` (default `http://127.0.0.1:7777`) and `SWITCHBOARD_TOKEN`.
    pub fn from_env() -> Client {
        let url = std::env::var("SWITCHBOARD_URL").unwrap_or_else(|_| "http://127.0.0.1:7777".into());
        Client::new(url, std::env::var("SWITCHBOARD_TOKEN").ok().filter(|t| !t.is_empty()))
    }

    /// The same hub as another principal.
    pub fn with_token(&self, token: impl Into<String>) -> Client {
        Client {
            http: self.http.clone(),
            base: self.base.clone(),
            token: Some(token.into()),
            ws_tls: self.ws_tls.clone(),
        }
    }

    /// The same hub with no token (for signing in).
    pub fn without_token(self) -> Client {
        Client { token: None, ..self }
    }

    /// The hub's base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub(crate) async fn call<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T> {
        let url = format!("{}{}", self.base, path);
        let mut req = self.http.request(method, &url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        self.answer(&url, req).await
    }

    /// Sends `req` (to `url`) and reads its answer: `T` from the JSON of a 2xx (`null` for
    /// none), or the problem document of any other status.
    async fn answer<T: DeserializeOwned>(&self, url: &str, req: reqwest::RequestBuilder) -> Result<T> {
        let res = req.send().await.map_err(|source| ClientError::Transport { url: url.to_owned(), source })?;
        self.read(url, res).await
    }

    /// Reads an answer: `T` from the JSON of a 2xx (`null` for none), or the problem
    /// document of any other status.
    async fn read<T: DeserializeOwned>(&self, url: &str, res: reqwest::Response) -> Result<T> {
        let url = url.to_owned();
        let status = res.status();
        let bytes = res.bytes().await.map_err(|source| ClientError::Transport { url: url.clone(), source })?;
        if !status.is_success() {
            return Err(match serde_json::from_slice::<Problem>(&bytes) {
                Ok(p) => ClientError::Api(p),
                Err(_) => ClientError::Protocol(format!("{status} from {url}: {}", String::from_utf8_lossy(&bytes))),
            });
        }
        let bytes = if status == StatusCode::NO_CONTENT || bytes.is_empty() { &b"null"[..] } else { &bytes[..] };
        serde_json::from_slice(bytes).map_err(|e| ClientError::Protocol(format!("{url}: {e}")))
    }

    /// `GET /health`.
    pub async fn health(&self) -> Result<Health> {
        self.call::<(), _>(Method::GET, "/health", None).await
    }

    /// Who this client's token acts as (an agent, or the admin).
    pub async fn whoami(&self) -> Result<Whoami, ClientError> {
        self.call::<(), _>(Method::GET, "/v1/whoami", None).await
    }

    /// Registers an agent (admin token). The answer holds its API key, shown only once.
    pub async fn register_agent(&self, req: &RegisterAgent) -> Result<AgentRegistered> {
        self.call(Method::POST, "/v1/agents", Some(req)).await
    }

    /// Imports an external A2A agent from its Agent Card (admin token): `POST /v1/agents:import`.
    pub async fn import_agent(&self, req: &ImportAgent) -> Result<AgentImported> {
        self.call(Method::POST, "/v1/agents:import", Some(req)).await
    }

    /// Lists agents, optionally by capability and status.
    pub async fn list_agents(&self, capability: Option<&str>, status: Option<AgentStatus>) -> Result<AgentList> {
        let mut q = Vec::new();
        if let Some(c) = capability {
            q.push(format!("capability={}", urlencode(c)));
        }
        if let Some(s) = status {
            q.push(format!("status={}", s.as_str()));
        }
        let path = if q.is_empty() { "/v1/agents".to_owned() } else { format!("/v1/agents?{}", q.join("&")) };
        self.call::<(), _>(Method::GET, &path, None).await
    }

    pub async fn get_agent(&self, id: &str) -> Result<Agent> {
        self.call::<(), _>(Method::GET, &format!("/v1/agents/{}", urlencode(id)), None).await
    }

    pub async fn update_agent(&self, id: &str, req: &UpdateAgent) -> Result<Agent> {
        self.call(Method::PUT, &format!("/v1/agents/{}", urlencode(id)), Some(req)).await
    }

    pub async fn delete_agent(&self, id: &str) -> Result<()> {
        self.call::<(), ()>(Method::DELETE, &format!("/v1/agents/{}", urlencode(id)), None).await
    }

    /// Deletes an agent and erases the payloads of its messages (admin; cannot be undone).
    pub async fn erase_agent(&self, id: &str) -> Result<()> {
        self.call::<(), ()>(Method::DELETE, &format!("/v1/agents/{}?erase=true", urlencode(id)), None).await
    }

    pub async fn heartbeat(&self, id: &str) -> Result<Agent> {
        self.call::<(), _>(Method::POST, &format!("/v1/agents/{}/heartbeat", urlencode(id)), None).await
    }

    /// The agent's webhook signing secret(s).
    pub async fn webhook_secret(&self, id: &str) -> Result<WebhookSecret> {
        self.call::<(), _>(Method::GET, &format!("/v1/agents/{}/webhook-secret", urlencode(id)), None).await
    }

    /// Rotates the agent's webhook secret; the previous one keeps signing for 24 hours.
    pub async fn rotate_webhook_secret(&self, id: &str) -> Result<WebhookSecret> {
        self.call::<(), _>(Method::POST, &format!("/v1/agents/{}/webhook-secret:rotate", urlencode(id)), None).await
    }

    /// Creates one more API key for the agent (admin, or the agent itself); the key is in
    /// this answer only.
    pub async fn create_agent_key(&self, id: &str) -> Result<AgentKeyCreated> {
        self.call::<(), _>(Method::POST, &format!("/v1/agents/{}/keys", urlencode(id)), None).await
    }

    /// The agent's keys that still work, with their last use (never the keys themselves).
    pub async fn list_agent_keys(&self, id: &str) -> Result<AgentKeyList> {
        self.call::<(), _>(Method::GET, &format!("/v1/agents/{}/keys", urlencode(id)), None).await
    }

    /// Revokes one of the agent's keys: at once, or after `grace_seconds` (at most 7 days).
    pub async fn revoke_agent_key(&self, id: &str, key_id: &str, grace_seconds: Option<u64>) -> Result<()> {
        let mut path = format!("/v1/agents/{}/keys/{}", urlencode(id), urlencode(key_id));
        if let Some(g) = grace_seconds {
            path.push_str(&format!("?grace_seconds={g}"));
        }
        self.call::<(), ()>(Method::DELETE, &path, None).await
    }

    /// The tenant's push settings (admin).
    pub async fn tenant_push_settings(&self) -> Result<TenantPushSettings> {
        self.call::<(), _>(Method::GET, "/v1/tenant/push-settings", None).await
    }

    /// Replaces the tenant's push settings (admin).
    pub async fn put_tenant_push_settings(&self, s: &TenantPushSettings) -> Result<TenantPushSettings> {
        self.call(Method::PUT, "/v1/tenant/push-settings", Some(s)).await
    }

    /// The tenant's retention (admin).
    pub async fn retention(&self) -> Result<TenantRetention> {
        self.call::<(), _>(Method::GET, "/v1/tenant/retention", None).await
    }

    /// Replaces the tenant's retention (admin).
    pub async fn put_retention(&self, r: &TenantRetention) -> Result<TenantRetention> {
        self.call(Method::PUT, "/v1/tenant/retention", Some(r)).await
    }

    /// Lists deliveries by state and recipient (`query` like `state=dead&recipient=agent:…`).
    pub async fn deliveries(&self, query: &DeliveryQuery) -> Result<DeliveryList> {
        self.call::<(), _>(Method::GET, &format!("/v1/deliveries{}", query.to_query()), None).await
    }

    /// Lists dead letters.
    pub async fn dead_letters(&self, query: &DeliveryQuery) -> Result<DeadLetterList> {
        self.call::<(), _>(Method::GET, &format!("/v1/dead-letters{}", query.to_query()), None).await
    }

    /// Replays dead letters matching the selection (all of the caller's scope when empty).
    pub async fn replay_dead_letters(&self, sel: &DeadLetterSelection) -> Result<DeadLetterResult> {
        self.call(Method::POST, "/v1/dead-letters:replay", Some(sel)).await
    }

    /// Deletes dead letters matching the selection.
    pub async fn purge_dead_letters(&self, sel: &DeadLetterSelection) -> Result<DeadLetterResult> {
        self.call(Method::POST, "/v1/dead-letters:purge", Some(sel)).await
    }

    /// A page of the tenant's audit log, in `seq` order (admin).
    pub async fn audit(&self, query: &AuditQuery) -> Result<AuditPage> {
        self.call::<(), _>(Method::GET, &format!("/v1/audit{}", query.to_query()), None).await
    }

    /// What the tenant's audit log records beyond changes (admin).
    pub async fn audit_settings(&self) -> Result<AuditSettings> {
        self.call::<(), _>(Method::GET, "/v1/audit/settings", None).await
    }

    /// Sets what the tenant's audit log records beyond changes (admin).
    pub async fn put_audit_settings(&self, settings: &AuditSettings) -> Result<AuditSettings> {
        self.call(Method::PUT, "/v1/audit/settings", Some(settings)).await
    }

    /// The tenant's whole audit log as JSON lines (admin), read as the hub streams it.
    pub async fn audit_export(&self) -> Result<AuditExport> {
        let res = self.get_stream("/v1/audit:export").await?;
        Ok(AuditExport { body: Box::pin(res.bytes_stream()), buf: Vec::new(), done: false })
    }

    /// Subscribes `agent_id` to `topic`: it then receives every message sent to
    /// `topic:<topic>` by others. Idempotent: subscribing again returns the existing
    /// subscription. An agent key may subscribe only its own agent; the admin token any.
    pub async fn subscribe(&self, topic: &str, agent_id: &str) -> Result<Subscription, ClientError> {
        let path = subscriber_path(topic, agent_id);
        let r: Subscribed = self.call::<(), _>(Method::PUT, &path, None).await?;
        Ok(r.subscription)
    }

    /// Ends `agent_id`'s subscription to `topic`; `not_found` if it was not subscribed.
    pub async fn unsubscribe(&self, topic: &str, agent_id: &str) -> Result<(), ClientError> {
        self.call::<(), ()>(Method::DELETE, &subscriber_path(topic, agent_id), None).await
    }

    /// One page of a topic's subscribers, in agent id order, from `cursor` (the previous
    /// page's `next_cursor`); `limit` 1 to 1000 (default 100).
    pub async fn topic_subscribers_page(
        &self,
        topic: &str,
        cursor: Option<&str>,
        limit: Option<usize>,
    ) -> Result<SubscriberList, ClientError> {
        let mut q = Vec::new();
        if let Some(c) = cursor {
            q.push(format!("after={}", urlencode(c)));
        }
        if let Some(l) = limit {
            q.push(format!("limit={l}"));
        }
        let query = if q.is_empty() { String::new() } else { format!("?{}", q.join("&")) };
        let path = format!("/v1/topics/{}/subscribers{query}", path_segment(topic));
        self.call::<(), _>(Method::GET, &path, None).await
    }

    /// Every subscriber of a topic (all pages), in agent id order.
    pub async fn topic_subscribers(&self, topic: &str) -> Result<Vec<Subscription>, ClientError> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = self.topic_subscribers_page(topic, cursor.as_deref(), Some(1000)).await?;
            all.extend(page.subscribers);
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(all),
            }
        }
    }

    /// The tenant's topics that have subscribers, with how many each.
    /// Creates a tenant (platform operator only); the answer holds its admin token, once.
    pub async fn create_tenant(&self, name: &str) -> Result<TenantCreated> {
        self.call(Method::POST, "/v1/tenants", Some(&CreateTenant { name: name.to_owned() })).await
    }

    /// A page of tenants by id (platform operator only), after `cursor` (a `next_cursor`).
    pub async fn list_tenants(&self, cursor: Option<&str>, limit: Option<usize>) -> Result<TenantList> {
        let mut q = Vec::new();
        if let Some(c) = cursor {
            q.push(format!("cursor={}", urlencode(c)));
        }
        if let Some(l) = limit {
            q.push(format!("limit={l}"));
        }
        let path = if q.is_empty() { "/v1/tenants".to_owned() } else { format!("/v1/tenants?{}", q.join("&")) };
        self.call::<(), _>(Method::GET, &path, None).await
    }

    /// `POST /oauth/token`: a JWT access token for agent `agent_id`, with one of its API keys
    /// as the client secret (HTTP Basic). Refusals are RFC 6749 errors, returned as
    /// [`ClientError::Protocol`] with their `error` and `error_description`.
    pub async fn oauth_token(&self, agent_id: &str, key: &str) -> Result<switchboard_core::oauth::TokenResponse> {
        let url = format!("{}/oauth/token", self.base);
        let res = self
            .http
            .post(&url)
            .basic_auth(agent_id, Some(key))
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
            .await
            .map_err(|source| ClientError::Transport { url: url.clone(), source })?;
        let status = res.status();
        let bytes = res.bytes().await.map_err(|source| ClientError::Transport { url: url.clone(), source })?;
        if !status.is_success() {
            let why = serde_json::from_slice::<switchboard_core::oauth::OAuthError>(&bytes)
                .map(|e| format!("{}: {}", e.error, e.error_description))
                .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned());
            return Err(ClientError::Protocol(format!("{status} from {url}: {why}")));
        }
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Protocol(format!("{url}: {e}")))
    }

    /// Rotates the hub's token signing key (platform operator only).
    pub async fn rotate_oauth_key(&self) -> Result<switchboard_core::oauth::KeyRotated> {
        self.call::<(), _>(Method::POST, "/v1/oauth/keys:rotate", None).await
    }

    /// The tenant's identity providers (admin).
    pub async fn identity_providers(&self) -> Result<switchboard_core::oauth::IdentityProviders> {
        self.call::<(), _>(Method::GET, "/v1/identity-providers", None).await
    }

    /// Replaces the tenant's identity providers (admin).
    pub async fn put_identity_providers(
        &self,
        list: &switchboard_core::oauth::IdentityProviders,
    ) -> Result<switchboard_core::oauth::IdentityProviders> {
        self.call(Method::PUT, "/v1/identity-providers", Some(list)).await
    }

    pub async fn topics(&self) -> Result<TopicList, ClientError> {
        self.call::<(), _>(Method::GET, "/v1/topics", None).await
    }

    /// Sends a message; `Ok` means the hub committed it.
    pub async fn send(&self, m: &SendMessage) -> Result<MessageAccepted> {
        self.call(Method::POST, "/v1/messages", Some(m)).await
    }

    /// Sends and waits (up to `wait_ms`) until every recipient has been handed the message.
    pub async fn send_and_wait(&self, m: &SendMessage, wait_ms: u64) -> Result<MessageAccepted> {
        self.call(Method::POST, &format!("/v1/messages?wait=delivered&wait_ms={wait_ms}"), Some(m)).await
    }

    /// Request/reply: sends `m` and waits up to `timeout_ms` (at most 300000) for the first
    /// reply to it, which the answer hands over (it is acknowledged in this caller's inbox).
    /// No reply in time is the problem `reply_timeout` (504); the message stays delivered,
    /// and a later reply arrives in the inbox like any message.
    pub async fn request(&self, m: &SendMessage, timeout_ms: u64) -> Result<MessageReply> {
        self.call(Method::POST, &format!("/v1/messages?wait=reply&timeout_ms={timeout_ms}"), Some(m)).await
    }

    /// Sends many messages in one request and one commit.
    pub async fn send_batch(&self, messages: Vec<SendMessage>) -> Result<BatchAccepted> {
        self.call(Method::POST, "/v1/messages:batch", Some(&SendBatch { messages })).await
    }

    pub async fn get_message(&self, id: &str) -> Result<MessageStatus> {
        self.call::<(), _>(Method::GET, &format!("/v1/messages/{}", urlencode(id)), None).await
    }

    /// Leases due messages (long-polls up to `wait_ms`).
    pub async fn inbox(&self, opts: &InboxOptions) -> Result<Inbox> {
        let mut q = Vec::new();
        if let Some(w) = opts.wait_ms {
            q.push(format!("wait_ms={w}"));
        }
        if let Some(l) = opts.limit {
            q.push(format!("limit={l}"));
        }
        if let Some(v) = opts.visibility_ms {
            q.push(format!("visibility_ms={v}"));
        }
        let path = if q.is_empty() { "/v1/inbox".to_owned() } else { format!("/v1/inbox?{}", q.join("&")) };
        self.call::<(), _>(Method::GET, &path, None).await
    }

    pub async fn ack(&self, ids: Vec<String>) -> Result<AckResult> {
        self.call(Method::POST, "/v1/inbox/ack", Some(&AckRequest { ids })).await
    }

    pub async fn nack(&self, ids: Vec<String>, retry_in_ms: Option<u64>) -> Result<AckResult> {
        self.call(Method::POST, "/v1/inbox/nack", Some(&NackRequest { ids, retry_in_ms })).await
    }

    /// Opens the WebSocket stream of this agent's messages.
    pub async fn stream(&self) -> Result<Stream> {
        let url = format!("{}/v1/stream", self.base.replacen("http", "ws", 1));
        let mut req = url.as_str().into_client_request().map_err(|e| ClientError::Stream(e.to_string()))?;
        if let Some(t) = &self.token {
            let value =
                format!("Bearer {t}").parse().map_err(|_| ClientError::Stream("token is not a valid header".into()))?;
            req.headers_mut().insert("authorization", value);
        }
        let tls = self.ws_tls.clone().map(tokio_tungstenite::Connector::Rustls);
        match tokio_tungstenite::connect_async_tls_with_config(req, None, false, tls).await {
            Ok((ws, _)) => Ok(Stream { ws }),
            Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
                let body = res.body().clone().unwrap_or_default();
                Err(match serde_json::from_slice::<Problem>(&body) {
                    Ok(p) => ClientError::Api(p),
                    Err(_) => ClientError::Stream(format!("{} from {url}", res.status())),
                })
            }
            Err(e) => Err(ClientError::Stream(format!("cannot connect to {url}: {e}"))),
        }
    }

    /// Opens the Server-Sent Events stream of this agent's messages.
    pub async fn events(&self) -> Result<EventStream> {
        let res = self.get_stream("/v1/events").await?;
        Ok(EventStream { body: Box::pin(res.bytes_stream()), buf: String::new() })
    }

    /// `GET path` whose body is read as it arrives; a refusal is its problem.
    async fn get_stream(&self, path: &str) -> Result<reqwest::Response> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.get(&url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.map_err(|source| ClientError::Transport { url: url.clone(), source })?;
        if !res.status().is_success() {
            let status = res.status();
            let bytes = res.bytes().await.unwrap_or_default();
            return Err(match serde_json::from_slice::<Problem>(&bytes) {
                Ok(p) => ClientError::Api(p),
                Err(_) => ClientError::Protocol(format!("{status} from {url}")),
            });
        }
        Ok(res)
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `s` as one URL path segment: every byte but the unreserved ones (RFC 3986) is
/// percent-encoded, so a topic like `alerts/eu` stays one segment (`alerts%2Feu`).
fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn subscriber_path(topic: &str, agent_id: &str) -> String {
    format!("/v1/topics/{}/subscribers/{}", path_segment(topic), path_segment(agent_id))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_topic_with_slashes_is_one_path_segment() {
        assert_eq!(super::path_segment("alerts/eu.west@v2"), "alerts%2Feu.west%40v2");
        assert_eq!(super::subscriber_path("a b", "x"), "/v1/topics/a%20b/subscribers/x");
    }
}
