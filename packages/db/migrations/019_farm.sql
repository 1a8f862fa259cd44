-- Farm hosts and enrollment (issue 14, docs/design.md §2.11): one Linux box runs many phones and USB
-- modems (`pocketproxy-agent farm`), each its own device, all enrolled with one enrollment token.
-- Ids are prefixed text like every other id here (enr_..., farm_...).
--
-- 1. Enrollment tokens: an admin's reusable credential for POST /api/public/enroll. Only the SHA-256 of
--    the token is kept (it is shown once). devices_enrolled counts the slots used, charged in the same
--    transaction that creates the device. max_devices NULL: no limit. expires_at NULL: never expires.
--    Revoking sets revoked_at, the row stays (devices already enrolled stay too).
CREATE TABLE enrollment_tokens (
  id               text PRIMARY KEY,
  name             text NOT NULL DEFAULT '',
  token_hash       text NOT NULL UNIQUE,
  token_prefix     text NOT NULL,
  relay_id         text REFERENCES relays(id) ON DELETE SET NULL,
  max_devices      integer CHECK (max_devices IS NULL OR max_devices BETWEEN 1 AND 100000),
  devices_enrolled integer NOT NULL DEFAULT 0 CHECK (devices_enrolled >= 0),
  expires_at       timestamptz,
  revoked_at       timestamptz,
  created_by       text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  -- the backstop of the slot check in services/enrollment.ts (its UPDATE already refuses the slot past the limit)
  CHECK (max_devices IS NULL OR devices_enrolled <= max_devices)
);

-- 2. Farm hosts: found by the SHA-256 of the farm process's own random host key (never stored in
--    clear), so the same box enrolling more devices later, even with another token, stays one host.
CREATE TABLE farm_hosts (
  id                  text PRIMARY KEY,
  host_key_hash       text NOT NULL UNIQUE,
  name                text NOT NULL,
  enrollment_token_id text REFERENCES enrollment_tokens(id) ON DELETE SET NULL,
  created_at          timestamptz NOT NULL DEFAULT now(),
  last_seen_at        timestamptz
);

-- 3. Devices know their farm host, their kind and the hardware they are (adb serial or modem IMEI).
--    A (farm host, hardware id) pair is one device: re-enrolling it answers 409. Plain devices keep
--    farm_host_id and hardware_id NULL (NULLs never collide in a unique index). The heartbeat changes
--    none of these columns, so its updates stay HOT (migration 004).
ALTER TABLE devices ADD COLUMN farm_host_id text REFERENCES farm_hosts(id) ON DELETE SET NULL;
ALTER TABLE devices ADD COLUMN kind text NOT NULL DEFAULT 'device' CHECK (kind IN ('device', 'phone', 'modem'));
ALTER TABLE devices ADD COLUMN hardware_id text;
ALTER TABLE devices ADD COLUMN model text;
CREATE UNIQUE INDEX devices_farm_hardware ON devices (farm_host_id, hardware_id);
