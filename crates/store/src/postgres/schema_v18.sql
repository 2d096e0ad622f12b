-- Switchboard PostgreSQL schema, migration 18: agents imported from an A2A Agent Card. Their
-- messages are forwarded by the push dispatcher with the A2A client binding; `a2a` holds the
-- interface (URL, binding, protocol version, credentials) as JSON. NULL: a webhook agent.
ALTER TABLE agent_push ADD COLUMN IF NOT EXISTS a2a TEXT;
