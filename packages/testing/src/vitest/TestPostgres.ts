/**
 * vitest fixtures that give test files isolated databases on the run's Postgres server, cloned from
 * prepared (e.g. migrated) templates.
 *
 * ```ts
 * const db = useTestDatabases({ template: { key: "awa-v1", prepare: ({ primaryUrl, pgmqUrl }) => ... } })
 * it("enqueues", async () => { const pool = new pg.Pool({ connectionString: db.primaryUrl }) ... })
 * ```
 */
import { afterAll, afterEach, beforeAll, beforeEach, inject } from "vitest"
import { type PostgresServer, startPostgres } from "../PostgresServer.js"
import type { TestDatabases, TestDbMode } from "../TestDatabases.js"
import { createPreparedTestDatabases, type TemplatePreparation } from "../TestTemplates.js"
import { postgresAdminUrlKey } from "./ProvidedPostgres.js"

// Without the global setup, the first fixture in this module instance starts a server of its own.
let ownServer: Promise<PostgresServer> | undefined
let liveFixtures = 0

const hintKey = Symbol.for("@awa/testing/TestPostgres/ownServerHint")

const hintOnce = (): void => {
  const flags = globalThis as Record<symbol, unknown>
  if (flags[hintKey] === true) return
  flags[hintKey] = true
  process.stderr.write(
    "awa-testing: no global setup provided a Postgres server, so this test file starts its own; add " +
      '"@awa/testing/vitest/globalSetup" to test.globalSetup in the vitest config to share one per run\n',
  )
}

/**
 * The admin URL of the Postgres server tests should use: the one provided by
 * `@awa/testing/vitest/globalSetup`, or else a server this test file starts itself (stopped by the
 * fixtures of {@link useTestDatabases} after the file's tests, by {@link stopTestPostgres}, or at exit).
 */
export const testPostgresAdminUrl = async (): Promise<string> => {
  const provided = inject(postgresAdminUrlKey) as string | undefined
  if (provided !== undefined && provided !== "") return provided
  if (ownServer === undefined) {
    hintOnce()
    const starting = startPostgres()
    ownServer = starting
    starting.catch(() => {
      if (ownServer === starting) ownServer = undefined
    })
  }
  return (await ownServer).adminUrl
}

/**
 * Stops the server this test file started itself because no global setup provided one; does nothing
 * otherwise. Only needed with {@link acquireTestDatabases} alone; {@link useTestDatabases} calls it.
 */
export const stopTestPostgres = async (): Promise<void> => {
  const server = ownServer
  ownServer = undefined
  if (server !== undefined) await (await server).stop()
}

/** Options of {@link acquireTestDatabases}. */
export interface TestDatabasesOptions {
  /** `single` or `split`; default from `AWA_TEST_DB_MODE`, else `single`. */
  readonly mode?: TestDbMode
  /**
   * How to fill the templates the databases are cloned from, e.g. with the awa migrator; templates are
   * made once per server and key, whichever worker gets there first. Without it the databases are empty.
   */
  readonly template?: TemplatePreparation
}

/** Options of {@link useTestDatabases}. */
export interface UseTestDatabasesOptions extends TestDatabasesOptions {
  /** `file` (default): one set of databases for the file's tests; `test`: fresh databases per test. */
  readonly scope?: "file" | "test"
}

/**
 * Creates isolated databases for one test (or any span the caller chooses) on the run's server, cloned
 * from `options.template` when given. The caller drops them, e.g. with the test context's
 * `onTestFinished(() => dbs.drop())`.
 */
export const acquireTestDatabases = async (options: TestDatabasesOptions = {}): Promise<TestDatabases> =>
  createPreparedTestDatabases(await testPostgresAdminUrl(), {
    ...(options.mode === undefined ? {} : { mode: options.mode }),
    ...(options.template === undefined ? {} : { template: options.template }),
  })

/**
 * Creates empty (unmigrated) databases in the given mode (default from `AWA_TEST_DB_MODE`), for tests of
 * migrations themselves; the caller drops them.
 */
export const createEmptyDatabases = async (mode?: TestDbMode): Promise<TestDatabases> =>
  acquireTestDatabases(mode === undefined ? {} : { mode })

/**
 * The databases of a test file, as registered by {@link useTestDatabases}. Read its fields inside tests
 * or hooks: they are filled in `beforeAll` (or `beforeEach` with `scope: "test"`).
 */
export interface TestDatabasesFixture {
  /** The layout of the current databases. */
  readonly mode: TestDbMode
  /** The current primary database URL (what `DATABASE_URL` would be). */
  readonly primaryUrl: string
  /** The current pgmq database URL (what `PGMQ_DATABASE_URL` would be); the primary in `single` mode. */
  readonly pgmqUrl: string
  /** The current databases as a whole. */
  readonly databases: TestDatabases
}

/**
 * Registers vitest hooks that give this test file (or, with `scope: "test"`, each test) its own isolated
 * databases, cloned from `options.template` when given, and drop them afterwards. Call it at the top of a
 * test file or inside a `describe`; read the returned fixture inside tests.
 */
export const useTestDatabases = (options: UseTestDatabasesOptions = {}): TestDatabasesFixture => {
  const { scope = "file", ...acquireOptions } = options
  let current: TestDatabases | undefined
  const acquire = async (): Promise<void> => {
    current = await acquireTestDatabases(acquireOptions)
  }
  const release = async (): Promise<void> => {
    const databases = current
    current = undefined
    await databases?.drop()
  }
  // The file's own server (if any) stops after the last fixture of the file has dropped its databases.
  const retire = async (): Promise<void> => {
    liveFixtures -= 1
    if (liveFixtures === 0) await stopTestPostgres()
  }
  liveFixtures += 1
  if (scope === "test") {
    beforeEach(acquire)
    afterEach(release)
    afterAll(retire)
  } else {
    beforeAll(acquire)
    afterAll(async () => {
      try {
        await release()
      } finally {
        await retire()
      }
    })
  }
  const get = (): TestDatabases => {
    if (current === undefined) {
      throw new Error(
        "useTestDatabases(): the databases do not exist yet (or any more). Read the fixture inside a test " +
          `or hook, not while tests are being collected${scope === "test" ? "" : " or after afterAll"}.`,
      )
    }
    return current
  }
  return {
    get mode() {
      return get().mode
    },
    get primaryUrl() {
      return get().primaryUrl
    },
    get pgmqUrl() {
      return get().pgmqUrl
    },
    get databases() {
      return get()
    },
  }
}
