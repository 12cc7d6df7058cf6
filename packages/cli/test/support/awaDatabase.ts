// Migrated databases for the CLI's job, queue, DLQ and worker tests: each test gets its own database,
// cloned from a template migrated once per server, and a pool on it; both go away when the test ends.
import { createHash } from "node:crypto"
import { migrate, migrationSets } from "@awa/migrator"
import { createPool, type PgPool, toExecutor } from "@awa/runtime/PgExecutor"
import { keepCanonicalStorage } from "@awa/runtime/StorageState"
import { acquireTestDatabases } from "@awa/testing/vitest/TestPostgres"
import { onTestFinished } from "vitest"

const templateKey = (fresh: boolean): string => {
  const hash = createHash("sha256")
  for (const set of migrationSets().values()) {
    for (const m of set.migrations) hash.update(`${set.name}/${m.file}:${m.sourceChecksum}`)
  }
  return `awa-cli-${fresh ? "fresh" : "migrated"}-${hash.digest("hex").slice(0, 12)}`
}

/** A migrated database of this test: its URL and a pool on it (closed when the test finishes). */
export interface MigratedDatabase {
  readonly url: string
  readonly pool: PgPool
}

/**
 * Creates a migrated database for the current test; it is dropped when the test finishes. The CLI's suites
 * start `awa worker` processes without an engine and inspect the canonical tables, so the database is
 * recorded as staying canonical (`keepCanonicalStorage`), like an existing canonical deployment; with
 * `fresh: true` it is exactly as `awa migrate` leaves it (fresh activation applies).
 */
export const migratedDatabase = async (
  options: { readonly fresh?: boolean } = {},
): Promise<MigratedDatabase> => {
  const fresh = options.fresh ?? false
  const databases = await acquireTestDatabases({
    mode: "single",
    template: {
      key: templateKey(fresh),
      preparePrimary: async (url) => {
        await migrate({ databaseUrl: url })
        if (fresh) return
        const pool = createPool(url, { max: 1, applicationName: "awa-cli-test" })
        // The template's connections are terminated when it is cloned: a late notice of that is not an error.
        pool.on("error", () => undefined)
        try {
          await keepCanonicalStorage(toExecutor(pool), { actor: "awa CLI test harness" })
        } finally {
          await pool.end()
        }
      },
    },
  })
  const pool = createPool(databases.primaryUrl, { max: 5, applicationName: "awa-cli-test" })
  pool.on("error", () => undefined)
  onTestFinished(async () => {
    await pool.end()
    await databases.drop()
  })
  return { url: databases.primaryUrl, pool }
}
