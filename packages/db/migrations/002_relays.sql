CREATE TABLE relays (
  id          text PRIMARY KEY,
  name        text NOT NULL UNIQUE,
  host        text NOT NULL,
  tunnel_port integer NOT NULL DEFAULT 1194 CHECK (tunnel_port BETWEEN 1 AND 65535),
  push_url    text NOT NULL,
  public_key  text,
  enabled     boolean NOT NULL DEFAULT true,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
