-- Data-plane isolation. Every relay port belongs to exactly one connection and accepts only that
-- connection's credentials: the relay forwards a connection's port to the same port on its device,
-- where a listener of that connection alone checks the credentials and enforces its state and limits.
--
-- 1. Device-level ports are gone (base_port +0 HTTP, +1 SOCKS5, +2 UDP, +3 OpenVPN accepted ANY
--    connection's credentials of the device). The column stays for history, nullable and empty; the
--    pool's device blocks are deleted. The CHECK on ports.kind still admits 'device': no code inserts
--    such rows any more, and a constraint change would buy nothing but a dependency on its generated name.
ALTER TABLE devices ALTER COLUMN base_port DROP NOT NULL;
UPDATE devices SET base_port = NULL;
DELETE FROM ports WHERE kind = 'device';

-- 2. Limits an operator sells, enforced by the device agent per connection. NULL = no limit.
--    Rates in kilobits per second (1 kbps = 1000 bit/s); max_connections counts simultaneous
--    customer connections (TCP connections, SOCKS5 UDP associations).
ALTER TABLE connections ADD COLUMN max_connections integer CHECK (max_connections BETWEEN 1 AND 100000);
ALTER TABLE connections ADD COLUMN rate_limit_down_kbps integer CHECK (rate_limit_down_kbps BETWEEN 1 AND 10000000);
ALTER TABLE connections ADD COLUMN rate_limit_up_kbps integer CHECK (rate_limit_up_kbps BETWEEN 1 AND 10000000);
