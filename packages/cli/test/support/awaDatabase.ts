// Migrated databases for the CLI's job, queue, DLQ and worker tests: each test gets its own database,
// cloned from a template migrated once per server, and a pool on it; both go away when the test ends.
import { createHash } from "node:crypto"
import { migrate, migrationSets } from "@awa/migrator"
import { createPool, type PgPool } from "@awa/runtime/PgExecutor"
import { acquireTestDatabases } from "@awa/testing/vitest/TestPostgres"
import { onTestFinished } from "vitest"

const templateKey = (): string => {
  const hash = createHash("sha256")
  for (const set of migrationSets().values()) {
    for (const m of set.migrations) hash.update(`${set.name}/${m.file}:${m.sourceChecksum}`)
  }
  return `awa-cli-migrated-${hash.digest("hex").slice(0, 12)}`
}

/** A migrated database of this test: its URL and a pool on it (closed when the test finishes). */
export interface MigratedDatabase {
  readonly url: string
  readonly pool: PgPool
}

/** Creates a migrated database for the current test; it is dropped when the test finishes. */
export const migratedDatabase = async (): Promise<MigratedDatabase> => {
  const databases = await acquireTestDatabases({
    mode: "single",
    template: {
      key: templateKey(),
      preparePrimary: async (url) => void (await migrate({ databaseUrl: url })),
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
