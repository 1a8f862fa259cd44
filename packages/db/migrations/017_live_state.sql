-- When a connection's current state became effective (issue "Live control plane"): on its relay
-- (it answered the API's push, or the device reconnected and got its forwarding) and on its device
-- (the agent reported the credentials version it applied). A connection is live when both are at or
-- after its updated_at. And the transport the device's tunnel uses now, from its heartbeat.
ALTER TABLE connections ADD COLUMN relay_applied_at timestamptz, ADD COLUMN device_applied_at timestamptz;
ALTER TABLE devices ADD COLUMN tunnel_transport text CHECK (tunnel_transport IN ('udp', 'tcp'));
