//! A2A push notifications (section 4.3): the four config operations, and the notifier that
//! posts a task's updates to its configs' URLs.
//!
//! Configs are stored durably (`a2a_push_configs`). A notifier task watches each task that
//! has configs, woken by the owner's inbox like a stream, and posts every `StreamResponse`
//! (status and artifact updates, the 1.0 HTTP+JSON shapes) to every config of the task, in
//! order, until the task is over. Each request goes through the push engine's guarded client
//! (no redirects; private addresses refused at connect time unless the node or the tenant
//! allows them) and is signed with the hub's Ed25519 key (Standard Webhooks `v1a`, the
//! `webhook-*` headers); it carries the config's `authentication` as `Authorization:
//! <scheme> <credentials>` and its `token` as `X-A2A-Notification-Token`. A failed post is
//! retried after 1, 4 and 16 seconds (with jitter), then given up (logged). A node that
//! starts resumes watching every stored config's task.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use serde_json::{Value, json};
use switchboard_core::Principal;
use switchboard_core::time::now_ms;
use switchboard_store::Store;
use switchboard_store::a2a::A2aPushConfigRecord;
use tokio::sync::watch;

use super::tasks::{RECHECK, invalid, task_id};
use super::view::Facts;
use super::{A2aError, Dialect};
use crate::domain::push::Pusher;

/// Delays before the retries of a failed post.
const RETRIES: [u64; 3] = [1_000, 4_000, 16_000];
/// The most configs one task takes.
const MAX_CONFIGS: usize = 10;

/// The node's A2A notifier.
pub struct A2aPush {
    store: Arc<dyn Store>,
    pusher: Arc<Pusher>,
    http: reqwest::Client,
    http_private: reqwest::Client,
    allow_private: bool,
    shutdown: watch::Receiver<bool>,
    /// (tenant, task) watched by a task of this node.
    watching: Mutex<HashSet<(String, String)>>,
}

impl A2aPush {
    pub fn new(
        store: Arc<dyn Store>,
        pusher: Arc<Pusher>,
        config: &crate::cfg::Config,
        shutdown: watch::Receiver<bool>,
    ) -> A2aPush {
        let timeout = Duration::from_millis(config.push_timeout_ms);
        let ua = concat!("Switchboard-A2A/", env!("CARGO_PKG_VERSION"));
        A2aPush {
            store,
            pusher,
            http: crate::domain::push::endpoint::guarded_client(timeout, config.allow_private_endpoints, ua),
            http_private: crate::domain::push::endpoint::guarded_client(timeout, true, ua),
            allow_private: config.allow_private_endpoints,
            shutdown,
            watching: Mutex::new(HashSet::new()),
        }
    }

    async fn private_allowed(&self, tenant: &str) -> bool {
        self.allow_private
            || self.pusher.tenant_settings(tenant).await.map(|s| s.allow_private_endpoints).unwrap_or(false)
    }

    /// Starts watching a task, unless this node already does.
    pub fn watch(self: &Arc<Self>, tenant: &str, task: &str) {
        let key = (tenant.to_owned(), task.to_owned());
        if !self.watching.lock().expect("watch set poisoned").insert(key.clone()) {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            if let Err(e) = me.run(&key.0, &key.1).await {
                tracing::warn!(tenant = %key.0, task = %key.1, error = ?e, "A2A push notifier stopped");
            }
            me.watching.lock().expect("watch set poisoned").remove(&key);
        });
    }

    /// At start: watches the task of every stored config.
    pub async fn resume(self: Arc<Self>) {
        let mut after = i64::MIN;
        loop {
            let page = match self.store.all_a2a_push_configs(after, 500).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %e, "A2A push configs could not be read to resume their notifiers");
                    return;
                }
            };
            let Some(last) = page.last() else { return };
            after = last.created_at;
            for c in &page {
                self.watch(&c.tenant, &c.task_id);
            }
        }
    }

    async fn run(&self, tenant: &str, task: &str) -> Result<(), A2aError> {
        let load = || async {
            let (m, d) =
                self.store.get_message(tenant, task).await?.ok_or_else(|| A2aError::TaskNotFound(task.into()))?;
            Facts::read(self.store.as_ref(), m, d).await
        };
        let mut facts = load().await?;
        let mut woken = self.store.wakeups().subscribe((tenant.to_owned(), facts.original.sender.clone()));
        let mut shutdown = self.shutdown.clone();
        let (mut seen, mut was) = (facts.later.len(), facts.state());
        // A config set on a finished task hears the task once.
        if was.terminal() {
            let ev = json!({ "task": facts.task(None, true, Dialect::V10) });
            self.post_all(tenant, task, &ev).await?;
            return Ok(());
        }
        loop {
            woken.borrow_and_update();
            for ev in facts.events_since(seen, was, Dialect::V10) {
                if !self.post_all(tenant, task, &ev).await? {
                    return Ok(()); // no config left
                }
            }
            (seen, was) = (facts.later.len(), facts.state());
            if was.terminal() {
                return Ok(());
            }
            tokio::select! {
                changed = woken.changed() => if changed.is_err() { tokio::time::sleep(RECHECK).await },
                _ = tokio::time::sleep(RECHECK) => {}
                _ = crate::shutdown::stopped(&mut shutdown) => return Ok(()),
            }
            facts = load().await?;
        }
    }

    /// Posts one event to every config of the task; false when it has none.
    async fn post_all(&self, tenant: &str, task: &str, ev: &Value) -> Result<bool, A2aError> {
        let configs = self.store.a2a_push_configs(tenant, task).await?;
        let private = self.private_allowed(tenant).await;
        for c in &configs {
            self.post(c, ev, private).await;
        }
        Ok(!configs.is_empty())
    }

    async fn post(&self, c: &A2aPushConfigRecord, ev: &Value, private: bool) {
        let body = serde_json::to_vec(ev).unwrap_or_default();
        let id = format!("msg_{}", switchboard_core::new_id().simple());
        for attempt in 0..=RETRIES.len() {
            if attempt > 0 {
                let step = RETRIES[attempt - 1];
                let jitter = rand::rng().random_range(0..=step / 4);
                tokio::time::sleep(Duration::from_millis(step + jitter)).await;
            }
            if !private && let Err(e) = crate::domain::push::endpoint::check_literal(&c.url) {
                tracing::warn!(task = %c.task_id, config = %c.id, error = %e, "A2A push refused");
                return;
            }
            let ts = now_ms() / 1000;
            let mut req = if private { &self.http_private } else { &self.http }
                .post(&c.url)
                .header("content-type", "application/json")
                .header("webhook-id", id.as_str())
                .header("webhook-timestamp", ts.to_string());
            if let Ok(key) = self.pusher.signing_key().await {
                req = req.header("webhook-signature", crate::domain::push::sign_ed25519(key, &id, ts, &body));
            }
            if let Some(scheme) = &c.auth_scheme {
                let value = match &c.auth_credentials {
                    Some(cred) => format!("{scheme} {cred}"),
                    None => scheme.clone(),
                };
                req = req.header("authorization", value);
            }
            if let Some(t) = &c.token {
                req = req.header("x-a2a-notification-token", t.as_str());
            }
            match req.body(body.clone()).send().await {
                Ok(r) if r.status().is_success() => return,
                Ok(r) => {
                    tracing::info!(task = %c.task_id, config = %c.id, status = %r.status(), attempt, "A2A push refused by the receiver")
                }
                Err(e) => tracing::info!(task = %c.task_id, config = %c.id, error = %e, attempt, "A2A push failed"),
            }
        }
        tracing::warn!(task = %c.task_id, config = %c.id, "A2A push given up after its retries");
    }
}

/// A config's URL: http or https, and (unless private endpoints are allowed) no literal
/// address push may not reach. A name is not resolved here: the guarded client drops the
/// addresses it may not reach when it connects, each time.
fn check_url(url: &str, private: bool) -> Result<(), A2aError> {
    let parsed = reqwest::Url::parse(url).map_err(|e| invalid(format!("`url` is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(invalid("`url` must be an http:// or https:// URL with a host"));
    }
    if !private {
        crate::domain::push::endpoint::check_literal(url).map_err(|e| {
            invalid(format!(
                "`url` {e}; the node allows private endpoints with SWITCHBOARD_ALLOW_PRIVATE_ENDPOINTS=true, a tenant \
                 with `allow_private_endpoints` in PUT /v1/tenant/push-settings"
            ))
        })?;
    }
    Ok(())
}

/// The config in `dialect`'s shape.
pub fn view(c: &A2aPushConfigRecord, dialect: Dialect) -> Value {
    let mut inner = json!({ "id": c.id, "url": c.url });
    if let Some(t) = &c.token {
        inner["token"] = json!(t);
    }
    if let Some(s) = &c.auth_scheme {
        inner["authentication"] = match dialect {
            Dialect::V10 => json!({ "scheme": s }),
            Dialect::V03 => json!({ "schemes": [s] }),
        };
        if let Some(cred) = &c.auth_credentials {
            inner["authentication"]["credentials"] = json!(cred);
        }
    }
    match dialect {
        Dialect::V10 => {
            inner["taskId"] = json!(c.task_id);
            inner
        }
        Dialect::V03 => json!({ "taskId": c.task_id, "pushNotificationConfig": inner }),
    }
}

/// Reads a config given either way: 1.0's flat `TaskPushNotificationConfig`, or nested in
/// `pushNotificationConfig` (0.3, and 1.0 drafts).
fn read(by: &Principal, task: &str, p: &Value) -> Result<A2aPushConfigRecord, A2aError> {
    let inner = p.get("pushNotificationConfig").filter(|v| v.is_object()).unwrap_or(p);
    let url =
        inner.get("url").and_then(Value::as_str).filter(|u| !u.is_empty()).ok_or_else(|| {
            invalid("`url` is required: the http:// or https:// URL the task's updates are posted to")
        })?;
    let text = |k: &str| inner.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
    let auth = inner.get("authentication").filter(|a| a.is_object());
    let scheme = auth.and_then(|a| {
        a.get("scheme")
            .and_then(Value::as_str)
            .or_else(|| a.get("schemes").and_then(Value::as_array).and_then(|s| s.first()).and_then(Value::as_str))
            .map(str::to_owned)
    });
    let credentials = auth.and_then(|a| a.get("credentials")).and_then(Value::as_str).map(str::to_owned);
    if scheme.as_deref().is_some_and(|s| s.is_empty() || s.contains(char::is_whitespace)) {
        return Err(invalid("`authentication.scheme` must be one word, e.g. Bearer"));
    }
    if credentials.as_deref().is_some_and(|c| c.contains(['\r', '\n']))
        || text("token").is_some_and(|t| t.contains(['\r', '\n']))
    {
        return Err(invalid("`authentication.credentials` and `token` must be one line"));
    }
    Ok(A2aPushConfigRecord {
        tenant: by.tenant.as_str().to_owned(),
        task_id: task.to_owned(),
        id: text("id").unwrap_or_else(|| switchboard_core::new_id().to_string()),
        owner: by.sender(),
        url: url.to_owned(),
        token: text("token"),
        auth_scheme: scheme,
        auth_credentials: credentials,
        created_at: now_ms(),
    })
}

impl A2aPush {
    /// Stores a config for a task the caller may see, after checking its URL, and watches it.
    pub async fn create_for(
        self: &Arc<Self>,
        by: &Principal,
        facts: &Facts,
        p: &Value,
    ) -> Result<A2aPushConfigRecord, A2aError> {
        let private = self.private_allowed(by.tenant.as_str()).await;
        let record = read(by, &facts.original.id, p)?;
        check_url(&record.url, private)?;
        let existing = self.store.a2a_push_configs(&record.tenant, &record.task_id).await?;
        if existing.len() >= MAX_CONFIGS && !existing.iter().any(|c| c.id == record.id) {
            return Err(invalid(format!("a task takes at most {MAX_CONFIGS} push configs; delete one first")));
        }
        self.store.put_a2a_push_config(record.clone()).await?;
        self.watch(&record.tenant, &record.task_id);
        Ok(record)
    }

    /// `CreateTaskPushNotificationConfig`.
    pub async fn create(
        self: &Arc<Self>,
        by: &Principal,
        agent_id: &str,
        p: &Value,
        dialect: Dialect,
    ) -> Result<Value, A2aError> {
        let facts = Facts::load(self.store.as_ref(), by, agent_id, task_id(p, "taskId")?).await?;
        Ok(view(&self.create_for(by, &facts, p).await?, dialect))
    }

    /// `GetTaskPushNotificationConfig`: `TaskNotFoundError` when the task or the config is not
    /// there.
    pub async fn get(&self, by: &Principal, agent_id: &str, p: &Value, dialect: Dialect) -> Result<Value, A2aError> {
        let task = task_id(p, "taskId")?;
        let id = p
            .get("id")
            .or_else(|| p.get("pushNotificationConfigId"))
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("`id` (the config's id) is required"))?;
        Facts::load(self.store.as_ref(), by, agent_id, task).await?;
        let all = self.store.a2a_push_configs(by.tenant.as_str(), task).await?;
        let found = all.iter().find(|c| c.id == id);
        found
            .map(|c| view(c, dialect))
            .ok_or_else(|| A2aError::TaskNotFound(format!("task {task} has no push config {id}")))
    }

    /// `ListTaskPushNotificationConfigs`.
    pub async fn list(&self, by: &Principal, agent_id: &str, p: &Value, dialect: Dialect) -> Result<Value, A2aError> {
        let task = task_id(p, "taskId").or_else(|_| task_id(p, "id"))?;
        Facts::load(self.store.as_ref(), by, agent_id, task).await?;
        let all = self.store.a2a_push_configs(by.tenant.as_str(), task).await?;
        let configs: Vec<Value> = all.iter().map(|c| view(c, dialect)).collect();
        Ok(match dialect {
            Dialect::V10 => json!({ "configs": configs, "nextPageToken": "" }),
            Dialect::V03 => Value::Array(configs),
        })
    }

    /// `DeleteTaskPushNotificationConfig`: idempotent (deleting what is gone is done).
    pub async fn delete(&self, by: &Principal, agent_id: &str, p: &Value) -> Result<Value, A2aError> {
        let task = task_id(p, "taskId")?;
        let id = p
            .get("id")
            .or_else(|| p.get("pushNotificationConfigId"))
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("`id` (the config's id) is required"))?;
        Facts::load(self.store.as_ref(), by, agent_id, task).await?;
        self.store.delete_a2a_push_config(by.tenant.as_str(), task, id).await?;
        Ok(Value::Null)
    }
}
