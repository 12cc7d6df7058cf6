// Named statements on awa_migrator.ledger. Values are always parameters; the ledger's DDL lives in
// migrations/ledger.sql.

/** One ledger row as the migrator reads it. */
export interface LedgerRow {
  readonly migration_set: string
  readonly instance: string
  readonly version: number
  readonly name: string
  readonly checksum: string
  readonly params: Record<string, string>
  readonly applied_at: Date
  readonly duration_ms: number
}

export const ledgerExists = "SELECT to_regclass('awa_migrator.ledger') IS NOT NULL AS present"

/** Serializes ledger bootstrap between concurrent migrators (CREATE ... IF NOT EXISTS races otherwise). */
export const lockBootstrap = "SELECT pg_advisory_xact_lock(hashtext('awa_migrator'), 0)"

/** Serializes migrations of one (set, instance): $1 = set, $2 = instance. */
export const lockSetInstance =
  "SELECT pg_advisory_xact_lock(hashtext('awa_migrator'), hashtext($1 || '/' || $2))"

/** Session-level variant of `lockSetInstance`, for migrations that run outside a transaction. */
export const lockSetInstanceSession =
  "SELECT pg_advisory_lock(hashtext('awa_migrator'), hashtext($1 || '/' || $2))"

export const unlockSetInstanceSession =
  "SELECT pg_advisory_unlock(hashtext('awa_migrator'), hashtext($1 || '/' || $2))"

export const selectAll = `SELECT migration_set, instance, version, name, checksum, params, applied_at, duration_ms
  FROM awa_migrator.ledger ORDER BY migration_set, instance, version`

export const selectOne = `SELECT checksum FROM awa_migrator.ledger
  WHERE migration_set = $1 AND instance = $2 AND version = $3`

export const insertRow = `INSERT INTO awa_migrator.ledger
  (migration_set, instance, version, name, checksum, params, duration_ms)
  VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)`

export const deleteInstance = "DELETE FROM awa_migrator.ledger WHERE migration_set = $1 AND instance = $2"

/** Whether a schema exists: $1 = schema name. */
export const schemaExists = "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1) AS present"

/** Tables of schema $1 whose names are in $2. */
export const tablesNamedIn = `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND c.relname = ANY($2::text[]) ORDER BY 1`

export const pgmqExtensionAvailable =
  "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pgmq') AS present"
