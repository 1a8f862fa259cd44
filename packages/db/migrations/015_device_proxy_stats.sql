-- The agent's proxy counters from its last heartbeat (slow clients, refusals, listeners): what the
-- operator sees of hostile traffic a device turned away. Written by the heartbeat batch; no index, so
-- heartbeat updates stay HOT.
ALTER TABLE devices ADD COLUMN proxy_stats jsonb;
