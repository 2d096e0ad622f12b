-- Switchboard PostgreSQL schema, migration 7: agent keys. An agent may hold several keys, each
-- with a public id, an expiry (NULL while live; set by a revocation, to now or the end of its
-- grace period) and its last use (written in batches). Every existing agent key gets an id.
ALTER TABLE tokens ADD COLUMN IF NOT EXISTS key_id TEXT;
ALTER TABLE tokens ADD COLUMN IF NOT EXISTS expires_at BIGINT;
ALTER TABLE tokens ADD COLUMN IF NOT EXISTS last_used_at BIGINT;
UPDATE tokens SET key_id = 'key_' || md5(random()::text || clock_timestamp()::text || hash)
    WHERE key_id IS NULL AND principal LIKE 'agent:%';
CREATE UNIQUE INDEX IF NOT EXISTS tokens_key ON tokens (tenant_id, key_id);
