-- Switchboard PostgreSQL schema, migration 14: approvals (see `approvals.rs`): one row each;
-- JSON columns written by the domain, `version` the condition of every update, `due_at` what
-- the once-a-second ticker looks up.
CREATE TABLE IF NOT EXISTS approvals (
    tenant_id  TEXT NOT NULL,
    id         TEXT NOT NULL,
    message_id TEXT NOT NULL,
    requester  TEXT NOT NULL,
    request    TEXT NOT NULL,
    deadline   BIGINT NOT NULL,
    state      TEXT NOT NULL,
    deciders   TEXT NOT NULL,
    escalated  BIGINT NOT NULL DEFAULT 0,
    decisions  TEXT NOT NULL,
    outcome    TEXT,
    outbox     TEXT NOT NULL,
    due_at     BIGINT,
    version    BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS approvals_due ON approvals(due_at) WHERE due_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS approvals_message ON approvals(tenant_id, message_id);
CREATE INDEX IF NOT EXISTS approvals_state ON approvals(tenant_id, state, id);
