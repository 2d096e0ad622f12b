-- Migration 15: e-mail notifications (issue 13). Each person's preferences (JSON text), each
-- tenant's scan position over deliveries (`seq`), and the outbox of e-mails to send: a row is
-- claimed by one node at a time (`due_at` moved past the claim's hold), and kept once sent
-- (`sent_at`) so that it is never sent twice.
CREATE TABLE IF NOT EXISTS notify_prefs (
    tenant_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    prefs      TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);
CREATE TABLE IF NOT EXISTS notify_cursors (
    tenant_id  TEXT PRIMARY KEY,
    seq        BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS notify_outbox (
    tenant_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    message_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    due_at     BIGINT NOT NULL,
    claimed_by TEXT,
    sent_at    BIGINT,
    PRIMARY KEY (tenant_id, user_id, message_id)
);
CREATE INDEX IF NOT EXISTS notify_outbox_due ON notify_outbox (due_at) WHERE sent_at IS NULL;
