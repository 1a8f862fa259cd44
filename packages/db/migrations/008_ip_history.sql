CREATE TABLE ip_history (
  id         bigserial PRIMARY KEY,
  device_id  text NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
  old_ip     text,
  new_ip     text NOT NULL,
  reason     text NOT NULL DEFAULT 'observed',
  changed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ip_history_device ON ip_history (device_id, id DESC);
