-- Switchboard PostgreSQL schema, migration 8: people. Users of a tenant (email unique per
-- tenant, lower-cased; an argon2id password hash or none), their browser sessions (the hash of
-- the cookie's token, an idle and an absolute end), and the name of a personal access token,
-- which is a row of `tokens` with principal 'user:<id>', key_id 'tok_…' and its expiry. A
-- token's or session's role is read from `users` at every look-up.
CREATE TABLE IF NOT EXISTS users (
    tenant_id     TEXT NOT NULL,
    id            TEXT NOT NULL,
    email         TEXT NOT NULL,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL,
    password_hash TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX IF NOT EXISTS users_email ON users (tenant_id, email);
CREATE TABLE IF NOT EXISTS sessions (
    hash        TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    csrf_token  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    idle_until  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions (tenant_id, user_id);
ALTER TABLE tokens ADD COLUMN IF NOT EXISTS name TEXT;
