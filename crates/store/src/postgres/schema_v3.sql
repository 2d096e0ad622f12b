-- Switchboard PostgreSQL schema, migration 3: tenant push settings and the hub's Ed25519
-- signing key (one for every node, so any node can sign). Idempotent like the others.
CREATE TABLE IF NOT EXISTS tenant_push_settings (
    tenant_id TEXT PRIMARY KEY,
    settings  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS hub_keys (
    id         TEXT PRIMARY KEY,
    secret     BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);
