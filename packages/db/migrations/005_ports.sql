-- The port pool. Every allocatable port is a row; allocation takes the lowest free row with
-- FOR UPDATE SKIP LOCKED, so concurrent allocations never collide, and freeing a port (owner NULL)
-- recycles it. kind 'device' rows are base ports of 4-port blocks (+0 http, +1 socks5, +2 udp, +3 openvpn).
CREATE TABLE ports (
  port       integer PRIMARY KEY CHECK (port BETWEEN 1 AND 65535),
  kind       text NOT NULL CHECK (kind IN ('device', 'connection')),
  owner_id   text,
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ports_free ON ports (kind, port) WHERE owner_id IS NULL;
CREATE UNIQUE INDEX ports_owner ON ports (owner_id) WHERE owner_id IS NOT NULL;
