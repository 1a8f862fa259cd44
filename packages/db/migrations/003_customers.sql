CREATE TABLE customers (
  id         text PRIMARY KEY,
  name       text NOT NULL UNIQUE,
  email      text,
  notes      text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
