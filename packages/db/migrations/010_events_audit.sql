-- events: what happened to the fleet (dashboard "recent events", webhooks).
-- audit_log: who changed what; written in the same transaction as the change.
CREATE TABLE events (
  id         bigserial PRIMARY KEY,
  type       text NOT NULL,
  device_id  text,
  data       jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_recent ON events (id DESC);
CREATE TABLE audit_log (
  id         bigserial PRIMARY KEY,
  actor      text NOT NULL,
  action     text NOT NULL,
  target_id  text,
  data       jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now()
);
