CREATE TABLE pairing_codes (
  code_hash   text PRIMARY KEY,
  code_prefix text NOT NULL,
  device_name text,
  relay_id    text REFERENCES relays(id) ON DELETE SET NULL,
  created_by  text,
  expires_at  timestamptz NOT NULL,
  used_at     timestamptz,
  device_id   text,
  created_at  timestamptz NOT NULL DEFAULT now()
);
