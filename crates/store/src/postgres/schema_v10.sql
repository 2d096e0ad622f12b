-- Switchboard PostgreSQL schema, migration 10: OAuth2. The hub's token signing keys (one
-- current key, retired_at NULL, enforced by the partial unique index; retired ones published
-- until their tokens have expired) and the external identity providers each tenant trusts
-- ((issuer, audience) picks one tenant).
CREATE TABLE IF NOT EXISTS oauth_keys (
    kid             TEXT PRIMARY KEY,
    pkcs8           BYTEA NOT NULL,
    public_key      BYTEA NOT NULL,
    created_at      BIGINT NOT NULL,
    retired_at      BIGINT,
    published_until BIGINT
);
CREATE UNIQUE INDEX IF NOT EXISTS oauth_keys_current ON oauth_keys ((retired_at IS NULL)) WHERE retired_at IS NULL;
CREATE TABLE IF NOT EXISTS identity_providers (
    tenant_id   TEXT NOT NULL,
    position    INTEGER NOT NULL,
    issuer      TEXT NOT NULL,
    audience    TEXT NOT NULL,
    jwks_url    TEXT NOT NULL,
    user_claim  TEXT,
    agent_claim TEXT,
    PRIMARY KEY (tenant_id, position)
);
CREATE UNIQUE INDEX IF NOT EXISTS identity_providers_pair ON identity_providers (issuer, audience);
