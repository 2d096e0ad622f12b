-- Switchboard PostgreSQL schema, migration 4: topic subscriptions. The primary key serves
-- routing a publish (every subscriber of a topic) and the listing in agent id order; the
-- second index serves deleting an agent. Idempotent like the others.
CREATE TABLE IF NOT EXISTS topic_subscriptions (
    tenant_id  TEXT NOT NULL,
    topic      TEXT NOT NULL,
    agent_id   TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, topic, agent_id)
);
CREATE INDEX IF NOT EXISTS topic_subscriptions_agent ON topic_subscriptions (tenant_id, agent_id);
