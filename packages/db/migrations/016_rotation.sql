-- Rotation through one path (services/rotation.ts): the public rotation link, the worker's schedule,
-- bulk and manual requests all queue rotate_ip through the command service.
--
-- 1. An operator's minimum interval between rotations asked for through a connection's link: the link
--    answers 429 with Retry-After while the device's last rotation started less than this long ago.
--    NULL (the default) = no minimum; the per-connection rate limit (POCKETPROXY_ROTATE_LINK_RATE)
--    still applies.
ALTER TABLE connections ADD COLUMN rotation_min_interval_s integer CHECK (rotation_min_interval_s BETWEEN 0 AND 86400);

-- 2. "The device's latest rotation" (the link's interval check, its status URL, the open rotation a
--    new request joins) by index, whatever the command's state; commands are never deleted.
CREATE INDEX commands_device_type_created ON commands (device_id, type, created_at);
