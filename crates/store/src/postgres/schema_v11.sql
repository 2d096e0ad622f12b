-- Switchboard PostgreSQL schema, migration 11: conversations. Participants with their read
-- markers, and the history: each message of a conversation with its place (`seq`, 1, 2, 3,
-- … without gaps) in the conversation's one order. An accept takes the next `seq` by
-- incrementing `last_seq` under the conversation row's lock, so concurrent senders on
-- several nodes are serialised by the conversation.
CREATE TABLE IF NOT EXISTS conversations (
    tenant_id  TEXT NOT NULL,
    id         TEXT NOT NULL,
    title      TEXT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seq   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, id)
);
CREATE TABLE IF NOT EXISTS conversation_participants (
    tenant_id       TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    address         TEXT NOT NULL,
    read_up_to      BIGINT NOT NULL DEFAULT 0,
    joined_at       BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, conversation_id, address)
);
CREATE INDEX IF NOT EXISTS conversation_participants_address
    ON conversation_participants (tenant_id, address, conversation_id);
CREATE TABLE IF NOT EXISTS conversation_messages (
    tenant_id       TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    seq             BIGINT NOT NULL,
    message_id      TEXT NOT NULL,
    sender          TEXT NOT NULL,
    in_reply_to     TEXT,
    PRIMARY KEY (tenant_id, conversation_id, seq)
);
CREATE INDEX IF NOT EXISTS conversation_messages_reply
    ON conversation_messages (tenant_id, conversation_id, in_reply_to) WHERE in_reply_to IS NOT NULL;
