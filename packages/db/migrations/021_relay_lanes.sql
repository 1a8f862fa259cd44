-- How many lanes (sessions at once, docs/protocol.md §3.1) the relay's tunnel holds per device, as it
-- said when it last registered. 1: a relay from before lanes (it drops a lane initiation), so its devices
-- use one; agents read it in GET /api/devices/:id/tunnel (relay.max_lanes).
ALTER TABLE relays ADD COLUMN max_lanes integer NOT NULL DEFAULT 1 CHECK (max_lanes BETWEEN 1 AND 16);
