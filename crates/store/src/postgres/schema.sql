-- Switchboard PostgreSQL schema, migration 1: the same tables as the embedded store.
-- Every row carries tenant_id and the keys of agents, messages and deliveries start with it.
-- Timestamps are BIGINT Unix milliseconds, as in SQLite, so both backends share one clock.
-- Idempotent (IF NOT EXISTS) so that re-running it after a crash mid-migration is harmless.
CREATE TABLE IF NOT EXISTS tenants (
    id          TEXT PRIMARY KEY,              -- the tenant itself: its id is its tenant_id
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    hash        TEXT PRIMARY KEY,              -- SHA-256 of the token, hex; the token itself is never stored
    tenant_id   TEXT NOT NULL,
    principal   TEXT NOT NULL,                 -- 'admin' or 'agent:<id>'
    created_at  BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS tokens_principal ON tokens (tenant_id, principal);
CREATE TABLE IF NOT EXISTS agents (
    tenant_id    TEXT NOT NULL,
    id           TEXT NOT NULL,
    name         TEXT NOT NULL,
    description  TEXT,
    version      TEXT,
    endpoint     TEXT,
    capabilities TEXT NOT NULL,                -- JSON array of capabilities, as written
    metadata     TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    last_seen_at BIGINT,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX IF NOT EXISTS agents_name ON agents (tenant_id, name);
CREATE TABLE IF NOT EXISTS agent_capabilities (
    tenant_id  TEXT NOT NULL,
    name       TEXT NOT NULL,
    agent_id   TEXT NOT NULL,
    PRIMARY KEY (tenant_id, name, agent_id)
);
CREATE TABLE IF NOT EXISTS messages (
    tenant_id       TEXT NOT NULL,
    id              TEXT NOT NULL,
    sender          TEXT NOT NULL,
    recipient       TEXT NOT NULL,             -- the address as sent
    parts           TEXT NOT NULL,
    metadata        TEXT,
    conversation_id TEXT,
    correlation_id  TEXT,
    in_reply_to     TEXT,
    idempotency_key TEXT,
    request_hash    TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT,
    PRIMARY KEY (tenant_id, id)
);
-- The arbiter of idempotent sends: `INSERT … ON CONFLICT` on it makes two nodes accepting the
-- same key at once agree on one message.
CREATE UNIQUE INDEX IF NOT EXISTS messages_idempotency
    ON messages (tenant_id, sender, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS deliveries (
    tenant_id        TEXT NOT NULL,
    -- Accept order, the delivery order per recipient. Drawn from one sequence shared by every
    -- node, so it is global; the primary key still starts with the tenant.
    seq              BIGINT GENERATED ALWAYS AS IDENTITY,
    message_id       TEXT NOT NULL,
    recipient        TEXT NOT NULL,
    state            TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    due_at           BIGINT,                   -- when it may be (re)delivered; NULL once final
    lease_expires_at BIGINT,
    leased_by        TEXT,                     -- node id that took the last lease (for operators)
    delivered_at     BIGINT,
    acked_at         BIGINT,
    last_error       TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    expires_at       BIGINT,
    PRIMARY KEY (tenant_id, seq)
);
CREATE UNIQUE INDEX IF NOT EXISTS deliveries_message ON deliveries (tenant_id, message_id, recipient);
CREATE INDEX IF NOT EXISTS deliveries_open ON deliveries (tenant_id, recipient, seq)
    WHERE state IN ('pending', 'leased', 'delivered');
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (due_at)
    WHERE state IN ('pending', 'leased', 'delivered');
CREATE INDEX IF NOT EXISTS deliveries_expiry ON deliveries (expires_at)
    WHERE state IN ('pending', 'leased', 'delivered') AND expires_at IS NOT NULL;
