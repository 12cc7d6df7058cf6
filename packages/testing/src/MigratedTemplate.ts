/**
 * The template preparation that installs awa: test databases cloned from it are migrated exactly as
 * `awa migrate` would leave a fresh database.
 */
import { createHash } from "node:crypto"
import { migrate, prepareQueueStorageSchema } from "@awa/migrator/MigrateApi"
import { getMigrationSet, type MigrationSetName, migrationSetNames } from "@awa/migrator/MigrationSet"
import type { EngineName } from "@awa/runtime/Engine"
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
  return {
    key: `awa ${engine}${schema === "awa" ? "" : ` qs:${schema}`}${withPgmq ? " pgmq" : ""} ${migrationsFingerprint()}`,
    prepare: async ({ primaryUrl, pgmqUrl }) => {
      await migrate({ databaseUrl: primaryUrl, pgmqDatabaseUrl: pgmqUrl, withPgmq })
      if (schema !== "awa") await prepareQueueStorageSchema({ databaseUrl: primaryUrl, schema })
    },
  }
}
