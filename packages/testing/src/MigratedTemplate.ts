/**
 * The template preparation that installs awa: test databases cloned from it are migrated exactly as
 * `awa migrate` would leave a fresh database.
 */
import { createHash } from "node:crypto"
import { migrate, prepareQueueStorageSchema } from "@awa/migrator/MigrateApi"
import { getMigrationSet, type MigrationSetName, migrationSetNames } from "@awa/migrator/MigrationSet"
import type { EngineName } from "@awa/runtime/Engine"
import { toExecutor } from "@awa/runtime/PgExecutor"
import { activateFreshStorage, keepCanonicalStorage } from "@awa/runtime/StorageState"
import pg from "pg"
import type { TemplatePreparation } from "./TestTemplates.js"

/** Options of {@link migratedTemplate}. */
export interface MigratedTemplateOptions {
  /** The engine the databases are for; part of the template key (default `canonical`). */
  readonly engine?: EngineName
  /** Also apply the optional pgmq set, to the pgmq database in `split` mode (default true). */
  readonly withPgmq?: boolean
  /**
   * Also prepare this queue-storage schema (as `awa storage prepare-queue-storage-schema --schema NAME`
   * does); part of the template key. `awa` (the default) is installed by `migrate` itself.
   */
  readonly queueStorageSchema?: string
  /**
   * The storage state the databases start in (part of the template key). `"engine"` (the default): the one
   * that makes code following the database's state use `engine` — recorded as staying canonical for
   * `canonical` (as an existing canonical deployment is), active queue storage in `queueStorageSchema` for
   * `queue_storage` — so producers and workers made without an engine option write where the test helpers
   * look. `"fresh"`: exactly as `awa migrate` leaves a new database, so the first worker or producer that
   * follows the state activates queue storage (for tests of that activation).
   */
  readonly storageState?: "engine" | "fresh"
}

/**
 * A fingerprint of the bundled migrations: a hash over every set's file names and source checksums, so
 * any change to any migration gives a new value.
 */
export const migrationsFingerprint = (sets: ReadonlyArray<MigrationSetName> = migrationSetNames): string => {
  const hash = createHash("sha256")
  for (const name of sets) {
    for (const migration of getMigrationSet(name).migrations) {
      hash.update(`${name}/${migration.file}:${migration.sourceChecksum}\n`)
    }
  }
  return hash.digest("hex").slice(0, 16)
}

/**
 * A {@link TemplatePreparation} that runs `@awa/migrator`'s `migrate` on the new template databases (the
 * canonical and queue-storage sets on the primary, and with `withPgmq` the pgmq set on the pgmq database,
 * which is the primary in `single` mode), and a custom `queueStorageSchema`. Its key names the engine and includes
 * {@link migrationsFingerprint}, so templates are re-made whenever a migration changes.
 */
export const migratedTemplate = (options: MigratedTemplateOptions = {}): TemplatePreparation => {
  const engine = options.engine ?? "canonical"
  const withPgmq = options.withPgmq ?? true
  const schema = options.queueStorageSchema ?? "awa"
  const fresh = options.storageState === "fresh"
  return {
    key: `awa ${engine}${schema === "awa" ? "" : ` qs:${schema}`}${withPgmq ? " pgmq" : ""}${fresh ? " fresh" : ""} ${migrationsFingerprint()}`,
    prepare: async ({ primaryUrl, pgmqUrl }) => {
      await migrate({ databaseUrl: primaryUrl, pgmqDatabaseUrl: pgmqUrl, withPgmq })
      if (schema !== "awa") await prepareQueueStorageSchema({ databaseUrl: primaryUrl, schema })
      if (!fresh) await settleStorageState(primaryUrl, engine, schema)
    },
  }
}

// Moves a freshly migrated database into the storage state of `engine` (see `storageState`).
const settleStorageState = async (url: string, engine: EngineName, schema: string): Promise<void> => {
  const pool = new pg.Pool({ connectionString: url, max: 1 })
  // The template's connections are terminated when it is cloned: a late notice of that is not an error here.
  pool.on("error", () => undefined)
  try {
    const db = toExecutor(pool)
    if (engine === "canonical") {
      await keepCanonicalStorage(db, { actor: "awa test template (canonical)" })
      return
    }
    const activation = await activateFreshStorage(db, { schema, actor: "awa test template (queue_storage)" })
    if (activation.outcome !== "activated")
      throw new Error(
        `the test template could not activate queue storage in schema ${schema}: ${activation.reason}`,
      )
  } finally {
    await pool.end()
  }
}
