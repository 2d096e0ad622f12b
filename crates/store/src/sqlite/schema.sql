-- Switchboard embedded schema, version 1. Every table carries tenant_id; every query filters on it.
CREATE TABLE IF NOT EXISTS tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS tenants_name ON tenants(name);
CREATE TABLE IF NOT EXISTS tokens (
    hash        TEXT PRIMARY KEY,          -- SHA-256 of the token, hex; the token itself is never stored
    tenant_id   TEXT NOT NULL,
    principal   TEXT NOT NULL,             -- 'operator' (bootstrap), 'admin' (a tenant's), 'agent:<id>' or 'user:<id>'
    created_at  INTEGER NOT NULL,
    key_id       TEXT,                     -- an agent key's ('key_<uuid>') or personal token's ('tok_<uuid>') public id; NULL for admin tokens
    expires_at   INTEGER,                  -- agent keys: NULL while live, set by a revocation; personal tokens: chosen at creation
    last_used_at INTEGER,                  -- written in batches, about once a second
    name         TEXT                      -- a personal access token's name (version 6)
);
CREATE INDEX IF NOT EXISTS tokens_principal ON tokens(tenant_id, principal);
CREATE UNIQUE INDEX IF NOT EXISTS tokens_key ON tokens(tenant_id, key_id);
CREATE TABLE IF NOT EXISTS agents (
    tenant_id    TEXT NOT NULL,
    id           TEXT NOT NULL,
    name         TEXT NOT NULL,
    description  TEXT,
    version      TEXT,
    endpoint     TEXT,
    capabilities TEXT NOT NULL,            -- JSON array of capabilities
    metadata     TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    last_seen_at INTEGER,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX IF NOT EXISTS agents_name ON agents(tenant_id, name);
CREATE TABLE IF NOT EXISTS agent_capabilities (
    tenant_id  TEXT NOT NULL,
    name       TEXT NOT NULL,
    agent_id   TEXT NOT NULL,
    PRIMARY KEY (tenant_id, name, agent_id)
);
CREATE TABLE IF NOT EXISTS messages (
    seq             INTEGER PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    id              TEXT NOT NULL,
    sender          TEXT NOT NULL,
    recipient       TEXT NOT NULL,         -- the address as sent
    parts           TEXT NOT NULL,
    metadata        TEXT,
    conversation_id TEXT,
    correlation_id  TEXT,
    in_reply_to     TEXT,
    idempotency_key TEXT,
    request_hash    TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER,
    routing         TEXT,                  -- an `auto` message's routing decision (JSON) (version 9)
    priority        TEXT,                  -- 'high' or 'low'; NULL: normal (version 8)
    erased_at       INTEGER,               -- the payload was erased: a tombstone (version 13)
    signature       TEXT                   -- the sender's signature (JSON), as sent (version 12)
);
CREATE UNIQUE INDEX IF NOT EXISTS messages_id ON messages(tenant_id, id);
-- Request/reply: the replies to a message (version 8).
CREATE INDEX IF NOT EXISTS messages_in_reply_to ON messages(tenant_id, in_reply_to) WHERE in_reply_to IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS messages_idempotency
    ON messages(tenant_id, sender, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS deliveries (
    seq              INTEGER PRIMARY KEY,  -- accept order, the delivery order per recipient
    tenant_id        TEXT NOT NULL,
    message_id       TEXT NOT NULL,
    recipient        TEXT NOT NULL,
    state            TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    due_at           INTEGER,              -- when it may be (re)delivered; NULL once final
    lease_expires_at INTEGER,
    delivered_at     INTEGER,
    acked_at         INTEGER,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    expires_at       INTEGER,
    push             INTEGER NOT NULL DEFAULT 0, -- 1: the recipient had a push endpoint at accept
    order_key        INTEGER               -- queue order: created_at + the priority's offset (version 8)
);
CREATE UNIQUE INDEX IF NOT EXISTS deliveries_message ON deliveries(tenant_id, message_id, recipient);
CREATE INDEX IF NOT EXISTS deliveries_open ON deliveries(tenant_id, recipient, order_key, seq)
    WHERE (state = 'pending' OR state = 'leased' OR state = 'delivered');
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(due_at)
    WHERE (state = 'pending' OR state = 'leased' OR state = 'delivered');
CREATE INDEX IF NOT EXISTS deliveries_expiry ON deliveries(expires_at)
    WHERE (state = 'pending' OR state = 'leased' OR state = 'delivered') AND expires_at IS NOT NULL;
-- A person's inbox, newest first (the web app): deliveries to people only, so agents' traffic
-- maintains no extra index.
CREATE INDEX IF NOT EXISTS deliveries_person ON deliveries(tenant_id, recipient, seq)
    WHERE substr(recipient, 1, 5) = 'user:';
-- Push delivery: per-agent webhook secret and endpoint health, and the attempt log.
CREATE TABLE IF NOT EXISTS agent_push (
    tenant_id      TEXT NOT NULL,
    agent_id       TEXT NOT NULL,
    secret         TEXT NOT NULL,
    previous       TEXT,
    previous_until INTEGER,
    health_error   TEXT,
    disabled       INTEGER NOT NULL DEFAULT 0,
    retry_schedule TEXT,                  -- JSON array of milliseconds
    a2a            TEXT,                  -- JSON: the A2A interface of an imported agent
    PRIMARY KEY (tenant_id, agent_id)
);
CREATE TABLE IF NOT EXISTS push_attempts (
    id          INTEGER PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    recipient   TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    status_code INTEGER,
    error_kind  TEXT,
    excerpt     TEXT
);
CREATE INDEX IF NOT EXISTS push_attempts_message ON push_attempts(tenant_id, message_id, id);
CREATE INDEX IF NOT EXISTS deliveries_push_due ON deliveries(due_at)
    WHERE push = 1 AND (state = 'pending' OR state = 'leased' OR state = 'delivered');
-- The task an imported agent is still working on for a message: the next attempt reads it
-- (`GetTask`) instead of sending the message again. Gone once the task has settled.
CREATE TABLE IF NOT EXISTS a2a_remote_tasks (
    tenant_id  TEXT NOT NULL,
    message_id TEXT NOT NULL,
    task_id    TEXT NOT NULL,
    PRIMARY KEY (tenant_id, message_id)
);
CREATE TABLE IF NOT EXISTS tenant_push_settings (
    tenant_id TEXT PRIMARY KEY,
    settings  TEXT NOT NULL              -- JSON
);
CREATE TABLE IF NOT EXISTS hub_keys (
    id         TEXT PRIMARY KEY,         -- 'ed25519'
    secret     BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_state ON deliveries(tenant_id, state, seq);
-- Topic subscriptions: the primary key serves routing a publish (every subscriber of a topic)
-- and the listing in agent id order; the second index serves deleting an agent.
CREATE TABLE IF NOT EXISTS topic_subscriptions (
    tenant_id  TEXT NOT NULL,
    topic      TEXT NOT NULL,
    agent_id   TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, topic, agent_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS topic_subscriptions_agent ON topic_subscriptions(tenant_id, agent_id);
-- The audit log (version 3): per tenant, a hash chain of entries (see the `audit` module).
-- `detail` is canonical JSON text, so reading it back hashes as it did when written.
-- `audit_heads` holds each chain's last seq and hash: the next append starts from it, and it
-- witnesses the chain's end. Append-only: the store has no statement that updates or deletes
-- an entry.
CREATE TABLE IF NOT EXISTS audit_events (
    tenant_id TEXT NOT NULL,
    seq       INTEGER NOT NULL,          -- 1, 2, 3, … per tenant
    at        INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT NOT NULL,
    detail    TEXT NOT NULL,
    hash      TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    PRIMARY KEY (tenant_id, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS audit_events_actor ON audit_events(tenant_id, actor, seq);
CREATE INDEX IF NOT EXISTS audit_events_action ON audit_events(tenant_id, action, seq);
CREATE TABLE IF NOT EXISTS audit_heads (
    tenant_id TEXT PRIMARY KEY,
    seq       INTEGER NOT NULL,
    hash      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_settings (
    tenant_id TEXT PRIMARY KEY,
    sends     INTEGER NOT NULL DEFAULT 0  -- 1: sends and acks are audited
);
-- People (version 6): users of a tenant and their browser sessions. Their personal access
-- tokens are rows of `tokens` (principal 'user:<id>'); a user's role is read from here at
-- every look-up of a token or session.
CREATE TABLE IF NOT EXISTS users (
    tenant_id     TEXT NOT NULL,
    id            TEXT NOT NULL,
    email         TEXT NOT NULL,           -- lower-cased
    name          TEXT NOT NULL,
    role          TEXT NOT NULL,           -- owner, admin, member, viewer
    password_hash TEXT,                    -- argon2id (PHC string); NULL: cannot sign in with a password
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX IF NOT EXISTS users_email ON users(tenant_id, email);
CREATE TABLE IF NOT EXISTS sessions (
    hash        TEXT PRIMARY KEY,          -- SHA-256 of the cookie's token, hex
    tenant_id   TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    csrf_token  TEXT NOT NULL,             -- useless without the cookie, so kept as it is
    created_at  INTEGER NOT NULL,
    idle_until  INTEGER NOT NULL,          -- moved on by use
    expires_at  INTEGER NOT NULL           -- absolute end
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions(tenant_id, user_id);
-- Access control: one row per tenant that set a policy or limits (JSON text each; NULL:
-- none), with a version every change bumps (nodes poll it to refresh their in-memory copy).
CREATE TABLE IF NOT EXISTS tenant_access (
    tenant_id TEXT PRIMARY KEY,
    policy    TEXT,
    limits    TEXT,
    version   INTEGER NOT NULL
);
-- OAuth2 (the hub as an authorization server; tables only, so no version of their own).
-- The hub's token signing keys: one current key (retired_at NULL, enforced by the partial
-- unique index), and retired ones published until their tokens have expired.
CREATE TABLE IF NOT EXISTS oauth_keys (
    kid             TEXT PRIMARY KEY,
    pkcs8           BLOB NOT NULL,
    public_key      BLOB NOT NULL,
    created_at      INTEGER NOT NULL,
    retired_at      INTEGER,
    published_until INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS oauth_keys_current ON oauth_keys ((retired_at IS NULL)) WHERE retired_at IS NULL;
-- The external identity providers each tenant trusts; (issuer, audience) picks one tenant.
CREATE TABLE IF NOT EXISTS identity_providers (
    tenant_id   TEXT NOT NULL,
    position    INTEGER NOT NULL,
    issuer      TEXT NOT NULL,
    audience    TEXT NOT NULL,
    jwks_url    TEXT NOT NULL,
    user_claim  TEXT,
    agent_claim TEXT,
    PRIMARY KEY (tenant_id, position)
);
CREATE UNIQUE INDEX IF NOT EXISTS identity_providers_pair ON identity_providers (issuer, audience);
-- Groups of people (`group:<name>`), and each tenant's auto-routing settings (the model's
-- key beside them, never shown by the API).
CREATE TABLE IF NOT EXISTS groups (
    tenant_id   TEXT NOT NULL,
    name        TEXT NOT NULL,
    description TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, name)
);
CREATE TABLE IF NOT EXISTS group_members (
    tenant_id  TEXT NOT NULL,
    group_name TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    PRIMARY KEY (tenant_id, group_name, user_id)
);
CREATE INDEX IF NOT EXISTS group_members_user ON group_members(tenant_id, user_id);
CREATE TABLE IF NOT EXISTS routing_settings (
    tenant_id  TEXT PRIMARY KEY,
    settings   TEXT NOT NULL,
    api_key    TEXT,
    updated_at INTEGER NOT NULL
);
-- Conversations (version 7): participants with their read markers, and the history: each
-- message of a conversation with its place (`seq`, 1, 2, 3, … without gaps) in the
-- conversation's one order, given by the accept that stores it (`last_seq` + 1).
CREATE TABLE IF NOT EXISTS conversations (
    tenant_id  TEXT NOT NULL,
    id         TEXT NOT NULL,
    title      TEXT,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_seq   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, id)
);
CREATE TABLE IF NOT EXISTS conversation_participants (
    tenant_id       TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    address         TEXT NOT NULL,             -- agent:<id> or user:<id>
    read_up_to      INTEGER NOT NULL DEFAULT 0,
    joined_at       INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, conversation_id, address)
);
CREATE INDEX IF NOT EXISTS conversation_participants_address
    ON conversation_participants(tenant_id, address, conversation_id);
CREATE TABLE IF NOT EXISTS conversation_messages (
    tenant_id       TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    message_id      TEXT NOT NULL,
    sender          TEXT NOT NULL,             -- for unread counts, which leave out one's own
    in_reply_to     TEXT,                      -- for threads
    PRIMARY KEY (tenant_id, conversation_id, seq)
);
CREATE INDEX IF NOT EXISTS conversation_messages_reply
    ON conversation_messages(tenant_id, conversation_id, in_reply_to) WHERE in_reply_to IS NOT NULL;
-- Approvals (see `approvals.rs`): one row each; JSON columns written by the domain, `version`
-- the condition of every update, `due_at` what the once-a-second ticker looks up.
CREATE TABLE IF NOT EXISTS approvals (
    tenant_id  TEXT NOT NULL,
    id         TEXT NOT NULL,
    message_id TEXT NOT NULL,
    requester  TEXT NOT NULL,
    request    TEXT NOT NULL,
    deadline   INTEGER NOT NULL,
    state      TEXT NOT NULL,
    deciders   TEXT NOT NULL,
    escalated  INTEGER NOT NULL DEFAULT 0,
    decisions  TEXT NOT NULL,
    outcome    TEXT,
    outbox     TEXT NOT NULL,
    due_at     INTEGER,
    version    INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS approvals_due ON approvals(due_at) WHERE due_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS approvals_message ON approvals(tenant_id, message_id);
CREATE INDEX IF NOT EXISTS approvals_state ON approvals(tenant_id, state, id);
-- E-mail notifications (issue 13): each person's preferences (JSON), each tenant's scan
-- position over deliveries (`seq`), and the outbox of e-mails to send, claimed by one node at
-- a time (`claimed_until`) and kept once sent (`sent_at`) so they are never sent twice.
CREATE TABLE IF NOT EXISTS notify_prefs (
    tenant_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    prefs      TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);
CREATE TABLE IF NOT EXISTS notify_cursors (
    tenant_id  TEXT PRIMARY KEY,
    seq        INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS notify_outbox (
    tenant_id     TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    message_id    TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    due_at        INTEGER NOT NULL,
    claimed_by    TEXT,
    sent_at       INTEGER,
    PRIMARY KEY (tenant_id, user_id, message_id)
);
CREATE INDEX IF NOT EXISTS notify_outbox_due ON notify_outbox(due_at) WHERE sent_at IS NULL;
-- What a participant is doing in a conversation ("summarizing…"), until it expires.
CREATE TABLE IF NOT EXISTS conversation_status (
    tenant_id       TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    participant     TEXT NOT NULL,
    text            TEXT NOT NULL,
    expires_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, conversation_id, participant)
);
-- A tenant's retention (version 13; NULL: kept for ever), read by the purge task.
CREATE TABLE IF NOT EXISTS tenant_retention (
    tenant_id               TEXT PRIMARY KEY,
    messages_max_age_ms     INTEGER,
    dead_letters_max_age_ms INTEGER,
    updated_at              INTEGER NOT NULL
);
-- Principals' public keys (end-to-end trust, version 12): public halves only; a revoked key
-- keeps its row so older signatures can still be checked.
CREATE TABLE IF NOT EXISTS principal_keys (
    tenant_id   TEXT NOT NULL,
    key_id      TEXT NOT NULL,
    principal   TEXT NOT NULL,             -- agent:<id> or user:<id>
    kind        TEXT NOT NULL,             -- x25519 or ed25519
    public_key  TEXT NOT NULL,             -- standard base64 of 32 bytes
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER,
    PRIMARY KEY (tenant_id, key_id)
);
CREATE INDEX IF NOT EXISTS principal_keys_principal ON principal_keys(tenant_id, principal);
-- A2A (user_version 10): which messages are tasks of which agent (ListTasks), and the push
-- notification configs clients set on their tasks.
CREATE TABLE IF NOT EXISTS a2a_tasks (
    tenant_id  TEXT NOT NULL,
    id         TEXT NOT NULL,
    agent_id   TEXT NOT NULL,
    owner      TEXT NOT NULL,
    context_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS a2a_tasks_agent ON a2a_tasks (tenant_id, agent_id, created_at);
CREATE TABLE IF NOT EXISTS a2a_push_configs (
    tenant_id        TEXT NOT NULL,
    task_id          TEXT NOT NULL,
    id               TEXT NOT NULL,
    owner            TEXT NOT NULL,
    url              TEXT NOT NULL,
    token            TEXT,
    auth_scheme      TEXT,
    auth_credentials TEXT,
    created_at       INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, task_id, id)
);
CREATE INDEX IF NOT EXISTS a2a_push_configs_created ON a2a_push_configs (created_at);
-- The schema version this file brings a database to (see `migrate` in mod.rs).
PRAGMA user_version = 13;
