-- Switchboard PostgreSQL schema, migration 20: retention and erasure. A tenant's retention
-- (NULL: kept for ever), read by the purge task on every node; and the time a message's
-- payload was erased (its parts emptied, its metadata and routing decision removed), which
-- marks the row as a tombstone.
CREATE TABLE IF NOT EXISTS tenant_retention (
    tenant_id               TEXT PRIMARY KEY,
    messages_max_age_ms     BIGINT,
    dead_letters_max_age_ms BIGINT,
    updated_at              BIGINT NOT NULL
);
ALTER TABLE messages ADD COLUMN IF NOT EXISTS erased_at BIGINT;
