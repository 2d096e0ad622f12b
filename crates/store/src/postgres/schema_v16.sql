-- Switchboard PostgreSQL schema, migration 16: what the web app shows people. A person's
-- inbox, newest first, read through a partial index over deliveries to people only (agents'
-- traffic maintains no extra index), and participants' working status in a conversation.
CREATE INDEX IF NOT EXISTS deliveries_person ON deliveries (tenant_id, recipient, seq)
    WHERE substr(recipient, 1, 5) = 'user:';
CREATE TABLE IF NOT EXISTS conversation_status (
    tenant_id       TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    participant     TEXT NOT NULL,
    text            TEXT NOT NULL,
    expires_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, conversation_id, participant)
);
