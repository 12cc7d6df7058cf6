// Named statements that check, before any work, that the awa schema is installed, current and usable by
// the connected role. They read only catalogs and the migrator's ledger, so they never fail on a missing
// table or a missing privilege themselves.
import { statement } from "../../PgExecutor.js"

/**
 * Reads the connected role, whether schema awa and the migrator's ledger exist, and every privilege the
 * runtime needs that the role lacks (as "PRIVILEGE on object" texts). No parameters.
 */
export const inspectSchema = statement(
  "schema_inspect",
  `WITH awa AS (SELECT n.oid FROM pg_namespace n WHERE n.nspname = 'awa'),
        ledger AS (
          SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'awa_migrator' AND c.relname = 'ledger')
   SELECT current_user::text AS role,
     EXISTS (SELECT 1 FROM awa) AS has_awa,
     EXISTS (SELECT 1 FROM ledger) AS has_ledger,
     ARRAY(
       SELECT 'USAGE on schema ' || n.nspname FROM pg_namespace n
        WHERE n.nspname IN ('awa', 'awa_migrator') AND NOT has_schema_privilege(n.oid, 'USAGE')
       UNION ALL
       SELECT p.priv || ' on awa.' || c.relname
         FROM pg_class c JOIN awa ON c.relnamespace = awa.oid
        CROSS JOIN unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) AS p(priv)
        WHERE c.relkind IN ('r', 'p') AND NOT has_table_privilege(c.oid, p.priv)
       UNION ALL
       SELECT 'USAGE on sequence awa.' || c.relname
         FROM pg_class c JOIN awa ON c.relnamespace = awa.oid
        WHERE CASE WHEN c.relkind = 'S' THEN NOT has_sequence_privilege(c.oid, 'USAGE') ELSE false END
       UNION ALL
       SELECT 'SELECT on awa_migrator.ledger' FROM ledger WHERE NOT has_table_privilege(ledger.oid, 'SELECT')
     )::text[] AS missing`,
  { prepared: false },
)

/** Reads the newest applied version of migration set $1, instance $2 (null when none is applied). */
export const ledgerVersion = statement(
  "schema_ledger_version",
  `SELECT max(l.version)::integer AS version FROM awa_migrator.ledger l
    WHERE l.migration_set = $1 AND l.instance = $2`,
  { prepared: false },
)
