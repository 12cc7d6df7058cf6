// A normalized snapshot of a database's schema objects (and the migrator's ledger), for comparing
// databases built in different ways. Volatile values (OIDs, timestamps, durations) are left out.
import pg from "pg"

export interface CatalogSnapshot {
  readonly schemas: ReadonlyArray<string>
  readonly tables: ReadonlyArray<string>
  readonly columns: ReadonlyArray<string>
  readonly indexes: ReadonlyArray<string>
  readonly constraints: ReadonlyArray<string>
  readonly functions: ReadonlyArray<string>
  readonly types: ReadonlyArray<string>
  readonly triggers: ReadonlyArray<string>
  readonly ledger: ReadonlyArray<string>
}

const userSchemas =
  "n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast_temp%'"

export const withClient = async <A>(url: string, use: (client: pg.Client) => Promise<A>): Promise<A> => {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return await use(client)
  } finally {
    await client.end()
  }
}

const column = async (client: pg.Client, sql: string): Promise<ReadonlyArray<string>> =>
  (await client.query<{ v: string }>(sql)).rows.map((r) => r.v)

export const snapshotCatalog = (url: string): Promise<CatalogSnapshot> =>
  withClient(url, async (client) => {
    const ledgerPresent = (await client.query("SELECT to_regclass('awa_migrator.ledger') IS NOT NULL AS p"))
      .rows[0]?.p
    return {
      schemas: await column(
        client,
        `SELECT n.nspname AS v FROM pg_namespace n WHERE ${userSchemas} AND n.nspname <> 'public' ORDER BY 1`,
      ),
      tables: await column(
        client,
        `SELECT n.nspname || '.' || c.relname || ':' || c.relkind::text || ':' || c.relpersistence::text AS v FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE ${userSchemas} AND c.relkind IN ('r','p','v','m','S') ORDER BY 1`,
      ),
      columns: await column(
        client,
        `SELECT n.nspname || '.' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
           || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
           || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
           || CASE WHEN a.attidentity <> '' THEN ' identity ' || a.attidentity::text ELSE '' END AS v
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE ${userSchemas} AND c.relkind IN ('r','p','v','m') AND a.attnum > 0 AND NOT a.attisdropped ORDER BY 1`,
      ),
      indexes: await column(
        client,
        `SELECT pg_get_indexdef(i.indexrelid) AS v FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE ${userSchemas} ORDER BY 1`,
      ),
      constraints: await column(
        client,
        `SELECT n.nspname || '.' || cl.relname || '.' || co.conname || ' ' || pg_get_constraintdef(co.oid) AS v
         FROM pg_constraint co JOIN pg_class cl ON cl.oid = co.conrelid JOIN pg_namespace n ON n.oid = cl.relnamespace
         WHERE ${userSchemas} ORDER BY 1`,
      ),
      functions: await column(
        client,
        `SELECT n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ') ' || md5(p.prosrc) AS v
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE ${userSchemas} ORDER BY 1`,
      ),
      types: await column(
        client,
        `SELECT n.nspname || '.' || t.typname || ':' || t.typtype::text AS v FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
         WHERE ${userSchemas} AND t.typtype IN ('e','d','c') AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = t.typrelid AND c.relkind <> 'c') ORDER BY 1`,
      ),
      triggers: await column(
        client,
        `SELECT pg_get_triggerdef(t.oid) AS v FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE ${userSchemas} AND NOT t.tgisinternal ORDER BY 1`,
      ),
      ledger: ledgerPresent
        ? await column(
            client,
            `SELECT migration_set || '/' || instance || '/' || version || '/' || name || '/' || checksum || '/' || params::text AS v
             FROM awa_migrator.ledger ORDER BY migration_set, instance, version`,
          )
        : [],
    }
  })

/** True when the database has a table `schema.name`. */
export const hasTable = (url: string, qualified: string): Promise<boolean> =>
  withClient(
    url,
    async (c) => (await c.query("SELECT to_regclass($1) IS NOT NULL AS p", [qualified])).rows[0]?.p === true,
  )

/** The schemas of a database other than the system ones and public. */
export const schemasOf = async (url: string): Promise<ReadonlyArray<string>> =>
  (await snapshotCatalog(url)).schemas
