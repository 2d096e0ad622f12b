-- Switchboard PostgreSQL schema, migration 12: message priorities and request/reply.
-- `messages.priority` is 'high' or 'low' (NULL: normal); each delivery's `order_key` is its
-- message's accept time moved by the priority's offset, and a recipient's queue is leased in
-- (order_key, seq) order. Existing deliveries keep accept order: their key is their accept
-- time. The replies to a message are found by `in_reply_to` (`?wait=reply`).
ALTER TABLE messages ADD COLUMN IF NOT EXISTS priority TEXT;
ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS order_key BIGINT;
UPDATE deliveries SET order_key = created_at WHERE order_key IS NULL;
DROP INDEX IF EXISTS deliveries_open;
CREATE INDEX IF NOT EXISTS deliveries_open ON deliveries (tenant_id, recipient, order_key, seq)
    WHERE state IN ('pending', 'leased', 'delivered');
CREATE INDEX IF NOT EXISTS messages_in_reply_to ON messages (tenant_id, in_reply_to)
    WHERE in_reply_to IS NOT NULL;
