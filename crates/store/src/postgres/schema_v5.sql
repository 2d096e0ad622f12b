-- Switchboard PostgreSQL schema, migration 5: the audit log, as in the embedded store. Per
-- tenant a hash chain of entries (see the store's `audit` module); `detail` is canonical JSON
-- text (not JSONB, which would respell it and change its hash). `audit_heads` holds each
-- chain's last seq and hash: an append locks it, so appends on several nodes form one chain,
-- and it witnesses the chain's end. Idempotent like the others.
CREATE TABLE IF NOT EXISTS audit_events (
    tenant_id TEXT NOT NULL,
    seq       BIGINT NOT NULL,             -- 1, 2, 3, … per tenant
    at        BIGINT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT NOT NULL,
    detail    TEXT NOT NULL,
    hash      TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX IF NOT EXISTS audit_events_actor ON audit_events (tenant_id, actor, seq);
CREATE INDEX IF NOT EXISTS audit_events_action ON audit_events (tenant_id, action, seq);
CREATE TABLE IF NOT EXISTS audit_heads (
    tenant_id TEXT PRIMARY KEY,
    seq       BIGINT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_settings (
    tenant_id TEXT PRIMARY KEY,
    sends     BOOLEAN NOT NULL DEFAULT false   -- true: sends and acks are audited
);
