-- Switchboard PostgreSQL schema, migration 19: end-to-end trust. Principals' public keys
-- (public halves only; a revoked key keeps its row so older signatures can still be
-- checked) and each message's signature as its sender made it.
CREATE TABLE IF NOT EXISTS principal_keys (
    tenant_id   TEXT NOT NULL,
    key_id      TEXT NOT NULL,
    principal   TEXT NOT NULL,
    kind        TEXT NOT NULL,
    public_key  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT,
    PRIMARY KEY (tenant_id, key_id)
);
CREATE INDEX IF NOT EXISTS principal_keys_principal ON principal_keys (tenant_id, principal);
ALTER TABLE messages ADD COLUMN IF NOT EXISTS signature TEXT;
