CREATE TABLE devices (
  id                  text PRIMARY KEY,
  name                text NOT NULL UNIQUE,
  description         text NOT NULL DEFAULT '',
  status              text NOT NULL DEFAULT 'offline' CHECK (status IN ('online', 'offline')),
  tunnel_connected    boolean NOT NULL DEFAULT false,
  relay_id            text REFERENCES relays(id) ON DELETE SET NULL,
  vpn_ip              text,
  base_port           integer NOT NULL UNIQUE,
  token_hash          text NOT NULL UNIQUE,
  public_key          text UNIQUE,
  psk_enc             text NOT NULL,
  current_ip          text,
  battery             integer,
  charging            boolean,
  signal              integer,
  carrier             text,
  network_type        text,
  agent_version       text,
  last_seen_at        timestamptz,
  rotation_interval_s integer,
  next_rotation_at    timestamptz,
  paired_at           timestamptz NOT NULL DEFAULT now(),
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 80);
-- Heartbeats rewrite a device row every 30 s. No index covers the columns they change (status,
-- last_seen_at, metrics), and fillfactor leaves room on the page, so those updates stay HOT (no index
-- writes). The stale-device scan reads the table instead; at 10,000 rows every few seconds that is cheap.
CREATE UNIQUE INDEX devices_vpn_ip ON devices (vpn_ip);
CREATE INDEX devices_next_rotation ON devices (next_rotation_at) WHERE next_rotation_at IS NOT NULL;
