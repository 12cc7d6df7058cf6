-- Queue-storage substrate placeholder for schema {{schema}}: the schema and a metadata table; the engine's tables arrive with the queue-storage issue.
CREATE SCHEMA IF NOT EXISTS {{schema}};

-- Names here are prefixed queue_storage_ so they never collide with canonical tables when {{schema}} is awa.
CREATE TABLE {{schema}}.queue_storage_meta (
  key text PRIMARY KEY,
  value jsonb NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);

INSERT INTO {{schema}}.queue_storage_meta (key, value) VALUES ('substrate_version', '1'::jsonb);

COMMENT ON TABLE {{schema}}.queue_storage_meta IS 'awa queue-storage substrate metadata (version and settings).';
