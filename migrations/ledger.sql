-- The migrator's ledger: one row per applied migration, kept in every database the migrator touches.
CREATE SCHEMA IF NOT EXISTS awa_migrator;

CREATE TABLE IF NOT EXISTS awa_migrator.ledger (
  migration_set text NOT NULL,
  instance text NOT NULL,
  version integer NOT NULL CHECK (version > 0),
  name text NOT NULL,
  checksum text NOT NULL,
  params jsonb NOT NULL DEFAULT '{}'::jsonb,
  applied_at timestamptz NOT NULL DEFAULT now(),
  duration_ms integer NOT NULL DEFAULT 0 CHECK (duration_ms >= 0),
  PRIMARY KEY (migration_set, instance, version)
);

COMMENT ON TABLE awa_migrator.ledger IS
  'Applied awa migrations: set, instance (template value such as a queue-storage schema), version, rendered-SQL checksum.';
