// Test databases for the runtime's integration tests: one migrated database per test, cloned from a
// template on the run's Postgres server (provisioning comes from @awa/testing's sources, see vitest.config.ts).
import { createHash } from "node:crypto"
import { migrate } from "@awa/migrator/MigrateApi"
import { getMigrationSet, migrationSetNames } from "@awa/migrator/MigrationSet"
import { testEngineFromEnv, testQueueStorageSchemaFromEnv } from "@awa/testing-src/TestEngine.js"
import { useTestDatabases } from "@awa/testing-src/vitest/TestPostgres.js"
import pg from "pg"
import { afterEach, beforeEach } from "vitest"
import type { Engine } from "../../src/Engine.js"
import { selectEngine } from "../../src/EngineSelection.js"
import { toExecutor } from "../../src/PgExecutor.js"
import { keepCanonicalStorage } from "../../src/StorageState.js"

/**
 * The engine under test (`AWA_TEST_ENGINE`, default canonical; queue storage in
 * `AWA_TEST_QUEUE_STORAGE_SCHEMA`, default awa), built from this package's sources, for tests that call
 * engine methods directly. Producers, workers and admin made without an `engine` option follow `AWA_ENGINE`,
 * which @awa/testing requires to agree with `AWA_TEST_ENGINE` when both are set.
 */
export const testEngine: Engine = selectEngine(
  { engine: testEngineFromEnv(), queueStorageSchema: testQueueStorageSchemaFromEnv() },
  {},
)

/**
 * Installs awa into the database at `url` exactly as `awa migrate` does (canonical and queue-storage sets),
 * which leaves a fresh database: the first worker or producer that follows the storage state would activate
 * queue storage there.
 */
export const applyFreshMigrations = async (url: string): Promise<void> => {
  await migrate({ databaseUrl: url })
}

/**
 * Installs awa as {@link applyFreshMigrations} does, then records that the database stays canonical
 * (`keepCanonicalStorage`), as an existing canonical deployment would be: the suites here start workers and
 * producers without naming an engine and inspect what the engine under test wrote (canonical by default; the
 * other engines' passes name theirs with AWA_ENGINE), so fresh activation must not move their databases.
 * Tests of fresh activation itself use `useAwaDatabase({ fresh: true })`.
 */
export const applyMigrations = async (url: string): Promise<void> => {
  await applyFreshMigrations(url)
  const pool = new pg.Pool({ connectionString: url, max: 1 })
  // The template's connections are terminated when it is cloned: a late notice of that is not an error here.
  pool.on("error", () => undefined)
  try {
    await keepCanonicalStorage(toExecutor(pool), { actor: "awa runtime test harness" })
  } finally {
    await pool.end()
  }
}

// The template is re-made whenever any bundled migration changes.
const templateKey = (fresh: boolean): string => {
  const hash = createHash("sha256")
  for (const name of migrationSetNames) {
    for (const m of getMigrationSet(name).migrations) hash.update(`${name}/${m.file}:${m.sourceChecksum}\n`)
  }
  return `awa-runtime-${fresh ? "fresh" : "migrated"}-${hash.digest("hex").slice(0, 12)}`
}

/** What each test gets: a pool on its own freshly migrated database, and the database's URL. */
export interface AwaTestDatabase {
  /** A pool on the test's database (closed after the test). */
  readonly pool: pg.Pool
  /** The test's database URL. */
  readonly url: string
}

/**
 * Registers hooks giving each test in the file its own migrated database and a pool on it: kept canonical
 * ({@link applyMigrations}), or with `fresh: true` exactly as `awa migrate` leaves it ({@link applyFreshMigrations}).
 */
export const useAwaDatabase = (options: { readonly fresh?: boolean } = {}): AwaTestDatabase => {
  const fresh = options.fresh ?? false
  const dbs = useTestDatabases({
    scope: "test",
    template: { key: templateKey(fresh), preparePrimary: fresh ? applyFreshMigrations : applyMigrations },
  })
  let pool: pg.Pool | undefined
  beforeEach(() => {
    pool = new pg.Pool({ connectionString: dbs.primaryUrl, max: 10 })
    // Tests that restart or kill connections must not crash the process through an idle client's error.
    pool.on("error", () => undefined)
  })
  afterEach(async () => {
    const p = pool
    pool = undefined
    await p?.end()
  })
  return {
    get pool() {
      if (pool === undefined) throw new Error("useAwaDatabase(): read the pool inside a test")
      return pool
    },
    get url() {
      return dbs.primaryUrl
    },
  }
}
