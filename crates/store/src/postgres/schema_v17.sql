-- Switchboard PostgreSQL schema, migration 17: A2A. Which messages are tasks of which agent
-- (for ListTasks) and the push notification configs clients set on their tasks.
CREATE TABLE IF NOT EXISTS a2a_tasks (
    tenant_id  TEXT NOT NULL,
    id         TEXT NOT NULL,
    agent_id   TEXT NOT NULL,
    owner      TEXT NOT NULL,
    context_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS a2a_tasks_agent ON a2a_tasks (tenant_id, agent_id, created_at);
CREATE TABLE IF NOT EXISTS a2a_push_configs (
    tenant_id        TEXT NOT NULL,
    task_id          TEXT NOT NULL,
    id               TEXT NOT NULL,
    owner            TEXT NOT NULL,
    url              TEXT NOT NULL,
    token            TEXT,
    auth_scheme      TEXT,
    auth_credentials TEXT,
    created_at       BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, task_id, id)
);
CREATE INDEX IF NOT EXISTS a2a_push_configs_created ON a2a_push_configs (created_at);
