/**
 * The vitest fixture for code that uses awa: each test file (or test) gets its own migrated database on
 * the run's Postgres server, a pool on it, and the helpers and admin bound to it and to the engine.
 *
 * ```ts
 * const awa = useAwaDatabase({ handlers: [sendWelcome] })
 * it("sends a welcome", async () => {
 *   await signUp(awa.pool, "ada@example.com")
 *   await expectInserted(awa.pool, SendWelcome, { args: { to: "ada@example.com" } })
 *   expect((await awa.workOne(SendWelcome)).outcome).toBe("completed")
 * })
 * ```
 */
import type { AnyJobDefinition } from "@awa/model/JobDefinition"
import { type Admin, makeAdmin } from "@awa/runtime/Admin"
import type { Backoff } from "@awa/runtime/Backoff"
import type { Engine, EngineName, PurgeQueueResult } from "@awa/runtime/Engine"
import { parseQueueStorageSchema } from "@awa/runtime/EngineSelection"
import type { JobHandler } from "@awa/runtime/JobHandler"
import { makeProducer, type Producer } from "@awa/runtime/Producer"
import pg from "pg"
import { afterAll, afterEach, beforeAll, beforeEach } from "vitest"
import { cleanQueue } from "../CleanQueue.js"
import { type DrainOptions, type DrainResult, drain } from "../Drain.js"
import { migratedTemplate } from "../MigratedTemplate.js"
import { parseTestDbMode, type TestDbMode, testDbModeFromEnv } from "../TestDatabases.js"
import { resolveTestEngine, testQueueStorageSchemaFromEnv } from "../TestEngine.js"
import { type DueJobs, makeJobsDue } from "../TimeControl.js"
import {
  type WorkOneInQueueOptions,
  type WorkOneOptions,
  type WorkResult,
  workOne,
  workOneInQueue,
} from "../WorkOne.js"
import { useTestDatabases } from "./TestPostgres.js"

/** Options of {@link useAwaDatabase}. */
export interface UseAwaDatabaseOptions {
  /**
   * The storage engine: a name, checked, or an engine (default `AWA_TEST_ENGINE`, else `canonical`;
   * unknown names throw, listing the valid ones).
   */
  readonly engine?: EngineName | Engine
  /**
   * The schema of the queue-storage engine (default `AWA_TEST_QUEUE_STORAGE_SCHEMA`, else `awa`): a schema
   * other than `awa` is prepared in the database as `awa storage prepare-queue-storage-schema` would.
   */
  readonly queueStorageSchema?: string
  /** `single` or `split` (default `AWA_TEST_DB_MODE`, else `single`). */
  readonly mode?: TestDbMode
  /** `file` (default): one database for the file's tests; `test`: a fresh database per test. */
  readonly scope?: "file" | "test"
  /** Also install the optional pgmq set, on the pgmq database in `split` mode (default true). */
  readonly withPgmq?: boolean
  /**
   * The storage state the database starts in: `"engine"` (default) makes producers and workers made without
   * an engine option follow the engine under test (a canonical database recorded as staying canonical, or
   * active queue storage); `"fresh"` leaves it as `awa migrate` does, so the first of them to start activates
   * queue storage (see `migratedTemplate`).
   */
  readonly storageState?: "engine" | "fresh"
  /** Handlers registered for the bound `workOne`, `workOneInQueue` and `drain` (one per kind). */
  readonly handlers?: ReadonlyArray<JobHandler>
  /** Retry delays after errors for the bound helpers (default: the worker's default backoff). */
  readonly backoff?: Backoff
  /** Size of the pool (default 10). */
  readonly poolSize?: number
}

/**
 * A test file's awa database, as registered by {@link useAwaDatabase}. Read it inside tests or hooks: it is
 * filled in `beforeAll` (`beforeEach` with `scope: "test"`). The helpers are the standalone ones of
 * `@awa/testing` bound to this pool, engine and the registered handlers.
 */
export interface AwaTestDatabase {
  /** The engine name in use. */
  readonly engineName: EngineName
  /** The engine in use, for `makeProducer({ engine })`, `Worker.start({ engine })` and the like. */
  readonly engine: Engine
  /** The queue-storage schema prepared for it (`awa` unless one was asked for). */
  readonly queueStorageSchema: string
  /** The database layout. */
  readonly mode: TestDbMode
  /** The migrated primary database (what `DATABASE_URL` should be for the code under test). */
  readonly primaryUrl: string
  /** The pgmq database (what `PGMQ_DATABASE_URL` should be); the primary in `single` mode. */
  readonly pgmqUrl: string
  /** A pool on the primary database, closed after the file (or test). */
  readonly pool: pg.Pool
  /** A producer on the engine. */
  readonly producer: Producer
  /** The admin API on the engine. */
  readonly admin: Admin
  /** {@link workOne} on the pool with the registered handlers (a handler given here takes precedence). */
  readonly workOne: (job: JobHandler | AnyJobDefinition, options?: WorkOneOptions) => Promise<WorkResult>
  /** {@link workOneInQueue} on the pool with the registered handlers. */
  readonly workOneInQueue: (queue: string, options?: WorkOneInQueueOptions) => Promise<WorkResult>
  /** {@link drain} on the pool with the registered handlers. */
  readonly drain: (options?: DrainOptions) => Promise<DrainResult>
  /** {@link cleanQueue} on the pool. */
  readonly cleanQueue: (queue: string) => Promise<PurgeQueueResult>
  /** {@link makeJobsDue} on the pool. */
  readonly makeJobsDue: (jobs?: DueJobs) => Promise<ReadonlyArray<string>>
}

/**
 * Registers vitest hooks that give this test file (or, with `scope: "test"`, each test) its own database
 * migrated by `@awa/migrator` (cloned from a template made once per run and migration set, see
 * `migratedTemplate`), in `single` or `split` mode, for the engine `AWA_TEST_ENGINE` names; an unknown
 * engine or mode throws at once with the valid values. Call it at the top of a test file or inside a
 * `describe`, and read the returned fixture inside tests.
 */
export const useAwaDatabase = (options: UseAwaDatabaseOptions = {}): AwaTestDatabase => {
  const queueStorageSchema =
    options.queueStorageSchema === undefined
      ? testQueueStorageSchemaFromEnv()
      : (parseQueueStorageSchema(options.queueStorageSchema, "queueStorageSchema") ?? "awa")
  const engine = resolveTestEngine(options.engine, process.env, queueStorageSchema)
  const mode = parseTestDbMode(options.mode, "mode") ?? testDbModeFromEnv()
  const scope = options.scope ?? "file"
  const databases = useTestDatabases({
    mode,
    scope,
    template: migratedTemplate({
      engine: engine.name,
      ...(engine.name === "queue_storage" ? { queueStorageSchema } : {}),
      ...(options.withPgmq === undefined ? {} : { withPgmq: options.withPgmq }),
      ...(options.storageState === undefined ? {} : { storageState: options.storageState }),
    }),
  })
  let pool: pg.Pool | undefined
  const open = (): void => {
    pool = new pg.Pool({ connectionString: databases.primaryUrl, max: options.poolSize ?? 10 })
    // A test that stops or restarts Postgres must not crash the run through an idle client's error.
    pool.on("error", () => {})
  }
  const close = async (): Promise<void> => {
    const current = pool
    pool = undefined
    await current?.end()
  }
  if (scope === "test") {
    beforeEach(open)
    afterEach(close)
  } else {
    beforeAll(open)
    afterAll(close)
  }
  const currentPool = (): pg.Pool => {
    if (pool === undefined) {
      throw new Error(
        "useAwaDatabase(): the database is not ready (or is gone). Read the fixture inside a test or hook, " +
          "not while tests are being collected.",
      )
    }
    return pool
  }
  const registered = {
    engine,
    ...(options.handlers === undefined ? {} : { handlers: options.handlers }),
    ...(options.backoff === undefined ? {} : { backoff: options.backoff }),
  }
  const producer = makeProducer({ engine })
  const admin = makeAdmin({ engine })
  return {
    engineName: engine.name,
    engine,
    queueStorageSchema,
    mode,
    get primaryUrl() {
      return databases.primaryUrl
    },
    get pgmqUrl() {
      return databases.pgmqUrl
    },
    get pool() {
      return currentPool()
    },
    producer,
    admin,
    workOne: (job, workOptions) => workOne(currentPool(), job, { ...registered, ...workOptions }),
    workOneInQueue: (queue, workOptions) =>
      workOneInQueue(currentPool(), queue, { ...registered, ...workOptions }),
    drain: (drainOptions) => drain(currentPool(), { ...registered, ...drainOptions }),
    cleanQueue: (queue) => cleanQueue(currentPool(), queue, { engine }),
    makeJobsDue: (jobs) => makeJobsDue(currentPool(), { engine, ...jobs }),
  }
}
