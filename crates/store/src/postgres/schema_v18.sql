-- Switchboard PostgreSQL schema, migration 18: agents imported from an A2A Agent Card. Their
-- messages are forwarded by the push dispatcher with the A2A client binding; `a2a` holds the
-- interface (URL, binding, protocol version, credentials) as JSON. NULL: a webhook agent.
ALTER TABLE agent_push ADD COLUMN IF NOT EXISTS a2a TEXT;
-- The task an imported agent is still working on for a message: the next attempt reads it
-- (`GetTask`) instead of sending the message again. Gone once the task has settled.
CREATE TABLE IF NOT EXISTS a2a_remote_tasks (
    tenant_id  TEXT NOT NULL,
    message_id TEXT NOT NULL,
    task_id    TEXT NOT NULL,
    PRIMARY KEY (tenant_id, message_id)
);
