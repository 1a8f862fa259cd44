CREATE TABLE commands (
  id          text PRIMARY KEY,
  device_id   text NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
  type        text NOT NULL,
  payload     jsonb NOT NULL DEFAULT '{}',
  status      text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'acked', 'succeeded', 'failed', 'expired')),
  result      jsonb,
  source      text NOT NULL DEFAULT 'api',
  created_at  timestamptz NOT NULL DEFAULT now(),
  sent_at     timestamptz,
  acked_at    timestamptz,
  finished_at timestamptz,
  expires_at  timestamptz NOT NULL
);
CREATE INDEX commands_device_open ON commands (device_id, created_at) WHERE status IN ('pending', 'sent', 'acked');
CREATE INDEX commands_expiry ON commands (expires_at) WHERE status IN ('pending', 'sent', 'acked');
