-- Switchboard PostgreSQL schema, migration 9: access control. One row per tenant that set a
-- policy or limits (JSON text each; NULL: none), with a version every change bumps, which
-- nodes poll to refresh what they keep in memory.
CREATE TABLE IF NOT EXISTS tenant_access (
    tenant_id TEXT PRIMARY KEY,
    policy    TEXT,
    limits    TEXT,
    version   BIGINT NOT NULL
);
