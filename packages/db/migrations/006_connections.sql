CREATE TABLE connections (
  id                    text PRIMARY KEY,
  device_id             text NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
  customer_id           text REFERENCES customers(id) ON DELETE SET NULL,
  protocol              text NOT NULL CHECK (protocol IN ('http', 'socks5')),
  port                  integer NOT NULL UNIQUE,
  username              text NOT NULL UNIQUE,
  password_enc          text NOT NULL,
  password_verifier     text NOT NULL,
  enabled               boolean NOT NULL DEFAULT true,
  bandwidth_limit_bytes bigint,
  expires_at            timestamptz,
  allow_from            text[] NOT NULL DEFAULT '{}',
  rotation_token_hash   text NOT NULL UNIQUE,
  rotation_token_enc    text NOT NULL,
  blocked_reason        text,
  created_at            timestamptz NOT NULL DEFAULT now(),
  updated_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX connections_device ON connections (device_id);
CREATE INDEX connections_customer ON connections (customer_id);
