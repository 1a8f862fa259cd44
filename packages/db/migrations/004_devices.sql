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
);
CREATE UNIQUE INDEX devices_vpn_ip ON devices (vpn_ip);
CREATE INDEX devices_status_seen ON devices (status, last_seen_at);
CREATE INDEX devices_next_rotation ON devices (next_rotation_at) WHERE next_rotation_at IS NOT NULL;
