-- Switchboard PostgreSQL schema, migration 13: groups of people (`group:<name>`), each
-- tenant's auto-routing settings (the model's key beside them, never shown by the API), and
-- the routing decision stored with an `auto` message.
ALTER TABLE messages ADD COLUMN IF NOT EXISTS routing TEXT;
CREATE TABLE IF NOT EXISTS groups (
    tenant_id   TEXT NOT NULL,
    name        TEXT NOT NULL,
    description TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);
CREATE TABLE IF NOT EXISTS group_members (
    tenant_id  TEXT NOT NULL,
    group_name TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    PRIMARY KEY (tenant_id, group_name, user_id)
);
CREATE INDEX IF NOT EXISTS group_members_user ON group_members (tenant_id, user_id);
CREATE TABLE IF NOT EXISTS routing_settings (
    tenant_id  TEXT PRIMARY KEY,
    settings   TEXT NOT NULL,
    api_key    TEXT,
    updated_at BIGINT NOT NULL
);
