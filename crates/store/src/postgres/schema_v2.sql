-- Switchboard PostgreSQL schema, migration 2: push delivery, as in the embedded store.
-- Per-agent webhook secret and endpoint health, the attempt log, and which deliveries go out
-- by push. Idempotent (IF NOT EXISTS) like migration 1.
CREATE TABLE IF NOT EXISTS agent_push (
    tenant_id      TEXT NOT NULL,
    agent_id       TEXT NOT NULL,
    secret         TEXT NOT NULL,
    previous       TEXT,
    previous_until BIGINT,
    health_error   TEXT,
    disabled       BOOLEAN NOT NULL DEFAULT false,
    retry_schedule TEXT,                       -- JSON array of milliseconds
    PRIMARY KEY (tenant_id, agent_id)
);
CREATE TABLE IF NOT EXISTS push_attempts (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    recipient   TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    at          BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    status_code INTEGER,
    error_kind  TEXT,
    excerpt     TEXT
);
CREATE INDEX IF NOT EXISTS push_attempts_message ON push_attempts (tenant_id, message_id, id);
-- true: the recipient had a push endpoint when the message was accepted. Existing rows were
-- accepted before this node knew push, so they stay pull-only (false).
ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS push BOOLEAN NOT NULL DEFAULT false;
-- What the push dispatchers of every node scan for due work.
CREATE INDEX IF NOT EXISTS deliveries_push_due ON deliveries (due_at)
    WHERE push AND state IN ('pending', 'leased', 'delivered');
-- Delivery listings, replays and purges by state (dead letters).
CREATE INDEX IF NOT EXISTS deliveries_state ON deliveries (tenant_id, state, seq);
