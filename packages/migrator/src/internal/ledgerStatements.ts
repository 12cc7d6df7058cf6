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

/** Whether the ledger records migrations of set $1 for instance $2 (a schema awa prepared). */
export const instanceRecorded = `SELECT EXISTS (SELECT 1 FROM awa_migrator.ledger
  WHERE migration_set = $1 AND instance = $2) AS present`

/** Relations of schema $1 (tables, views, foreign tables) whose names are not in $2. */
export const relationsNotNamedIn = `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND NOT (c.relname = ANY($2::text[])) ORDER BY 1`

// Everything outside schema `schema` that DROP SCHEMA ... CASCADE could take with it: relations, columns
// (of a type defined in the schema), column defaults, constraints, triggers, functions and types. Taken
// before the drop, compared after it, inside one transaction. `schema` is a validated identifier.
const outsideObjects = (schema: string) => {
  const outside = (namespace: string) =>
    `${namespace} NOT IN (SELECT oid FROM pg_namespace WHERE nspname IN ('${schema}', 'pg_catalog', 'information_schema') OR nspname LIKE 'pg\\_toast%' OR nspname LIKE 'pg\\_temp%')`
  const relation = "format('%I.%I', (SELECT nspname FROM pg_namespace WHERE oid = c.relnamespace), c.relname)"
  return `SELECT 'class' AS cat, c.oid, 0 AS sub, 0::oid AS rel, format('%s %s', CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'i' THEN 'index' WHEN 'S' THEN 'sequence' ELSE 'table' END, ${relation}) AS what
    FROM pg_class c WHERE ${outside("c.relnamespace")} AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S', 'i')
  UNION ALL SELECT 'column', a.attrelid, a.attnum, a.attrelid, format('column %s.%I', ${relation}, a.attname)
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    WHERE ${outside("c.relnamespace")} AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL SELECT 'default', d.oid, 0, d.adrelid, format('default of column %s.%I', ${relation}, a.attname)
    FROM pg_attrdef d JOIN pg_class c ON c.oid = d.adrelid
    JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum WHERE ${outside("c.relnamespace")}
  UNION ALL SELECT 'constraint', k.oid, 0, k.conrelid, format('constraint %I', k.conname)
    FROM pg_constraint k WHERE ${outside("k.connamespace")}
  UNION ALL SELECT 'trigger', t.oid, 0, t.tgrelid, format('trigger %I on %s', t.tgname, ${relation})
    FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE ${outside("c.relnamespace")} AND NOT t.tgisinternal
  UNION ALL SELECT 'function', p.oid, 0, 0::oid, format('function %s', p.oid::regprocedure)
    FROM pg_proc p WHERE ${outside("p.pronamespace")}
  UNION ALL SELECT 'type', t.oid, 0, t.typrelid, format('type %s', t.oid::regtype)
    FROM pg_type t WHERE ${outside("t.typnamespace")} AND t.typcategory <> 'A'`
}

/** Snapshots what lies outside `schema` before a CASCADE drop (a temporary table, gone at transaction end). */
export const snapshotOutside = (schema: string) =>
  `CREATE TEMPORARY TABLE awa_reset_outside ON COMMIT DROP AS ${outsideObjects(schema)}`

/**
 * What the snapshot held that no longer exists: objects outside the schema the drop took with it (a part of
 * a relation, such as a column or a trigger, only when the relation itself survived).
 */
export const vanishedOutside = `SELECT o.what FROM awa_reset_outside o
  WHERE (o.rel = 0 OR EXISTS (SELECT 1 FROM pg_class WHERE oid = o.rel)) AND NOT CASE o.cat
    WHEN 'class' THEN EXISTS (SELECT 1 FROM pg_class WHERE oid = o.oid)
    WHEN 'column' THEN EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = o.oid AND attnum = o.sub AND NOT attisdropped)
    WHEN 'default' THEN EXISTS (SELECT 1 FROM pg_attrdef WHERE oid = o.oid)
    WHEN 'constraint' THEN EXISTS (SELECT 1 FROM pg_constraint WHERE oid = o.oid)
    WHEN 'trigger' THEN EXISTS (SELECT 1 FROM pg_trigger WHERE oid = o.oid)
    WHEN 'function' THEN EXISTS (SELECT 1 FROM pg_proc WHERE oid = o.oid)
    ELSE EXISTS (SELECT 1 FROM pg_type WHERE oid = o.oid) END
  ORDER BY o.what`
