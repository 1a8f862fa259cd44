-- Usage per connection per hour; monthly figures are sums over hours. Sources: 'nft' (relay per-port
-- counters, authoritative) and 'agent' (device-reported, informational).
CREATE TABLE usage_hourly (
  connection_id text NOT NULL,
  device_id     text NOT NULL,
  hour          timestamptz NOT NULL,
  source        text NOT NULL CHECK (source IN ('nft', 'agent')),
  bytes_in      bigint NOT NULL DEFAULT 0,
  bytes_out     bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (connection_id, source, hour)
);
CREATE INDEX usage_device_hour ON usage_hourly (device_id, hour);
CREATE INDEX usage_hour ON usage_hourly (hour);
