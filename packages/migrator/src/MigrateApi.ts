import { type InvalidMigratorOptions, InvalidTemplateParameter } from "@awa/model"
import { Cause, Effect, Exit, Layer } from "effect"
import { ringSizeParams, validateSchemaName } from "./MigrationSet.js"
import {
  type ApplyReport,
  type MigrateOptions,
  Migrator,
  type PlannedMigration,
  type PrepareQueueStorageOptions,
  type SetStatus,
  validateMigrateOptions,
} from "./Migrator.js"
import { extractScripts, type RenderSqlOptions, renderScripts, type TargetScript } from "./SqlScript.js"
import { Topology, type TopologyConfig } from "./Topology.js"

/** Where to connect, for the Promise API: explicit URLs, falling back to `DATABASE_URL` / `PGMQ_DATABASE_URL`. */
export interface ConnectionOptions {
  readonly databaseUrl?: string | undefined
  readonly pgmqDatabaseUrl?: string | undefined
}

/** Runs an Effect and settles the Promise with its value, or rejects with its typed error (not a wrapper). */
export const runToPromise = async <A, E>(effect: Effect.Effect<A, E>): Promise<A> => {
  const exit = await Effect.runPromiseExit(effect)
  if (Exit.isSuccess(exit)) return exit.value
  throw Cause.squash(exit.cause)
}

const topologyLayer = (options: ConnectionOptions) => {
  const databaseUrl = options.databaseUrl ?? process.env.DATABASE_URL
  const pgmqDatabaseUrl = options.pgmqDatabaseUrl ?? process.env.PGMQ_DATABASE_URL
  if (databaseUrl === undefined || databaseUrl.trim() === "") return Topology.layerConfig
  const config: TopologyConfig = { databaseUrl, pgmqDatabaseUrl }
  return Topology.layer(config)
}

const withMigrator = <A, E>(
  options: ConnectionOptions & MigrateOptions,
  use: (migrator: Migrator["Service"]) => Effect.Effect<A, E>,
): Promise<A> => {
  const invalid: InvalidMigratorOptions | InvalidTemplateParameter | undefined =
    validateMigrateOptions(options)
  if (invalid) return Promise.reject(invalid)
  return runToPromise(
    Effect.gen(function* () {
      const migrator = yield* Migrator
      return yield* use(migrator)
    }).pipe(Effect.provide(Migrator.layer.pipe(Layer.provide(topologyLayer(options))))),
  )
}

/**
 * Applies every pending migration (canonical and queue-storage, plus pgmq with `withPgmq`), each in
 * its own transaction with its ledger row. `queueRingSlots` / `claimRingSlots` size the rings of schema `awa`
 * when this call installs it (defaults 16 and 8). Rejects with a typed error (`DatabaseAheadOfCode`,
 * `MigrationDrift`, `MigrationFailed`, `DatabaseUnreachable`, `InvalidTemplateParameter`,
 * `InstalledParametersDiffer`, ...) and changes nothing it refused.
 */
export const migrate = (options: ConnectionOptions & MigrateOptions = {}): Promise<ApplyReport> =>
  withMigrator(options, (m) => m.apply(options))

/** Reports applied, pending, drifted and ahead migrations per database and set instance. Changes nothing. */
export const migrationStatus = (
  options: ConnectionOptions & MigrateOptions = {},
): Promise<ReadonlyArray<SetStatus>> => withMigrator(options, (m) => m.status(options))

/** Lists the migrations `migrate` would run, with their SQL (a dry run). Changes nothing. */
export const planMigrations = (
  options: ConnectionOptions & MigrateOptions = {},
): Promise<ReadonlyArray<PlannedMigration>> => withMigrator(options, (m) => m.plan(options))

/**
 * Installs or upgrades the queue-storage substrate in a custom schema (`reset` is refused for canonical
 * schemas), with ring sizes `queueRingSlots` / `claimRingSlots` when it installs it (defaults 16 and 8).
 */
export const prepareQueueStorageSchema = (
  options: ConnectionOptions & PrepareQueueStorageOptions,
): Promise<ApplyReport> => {
  // Bad names and sizes are refused before any connection is opened.
  const schema = validateSchemaName(options.schema)
  if (typeof schema !== "string") return Promise.reject(schema)
  const sizes = ringSizeParams(options)
  if (sizes instanceof InvalidTemplateParameter) return Promise.reject(sizes)
  return withMigrator({ databaseUrl: options.databaseUrl, pgmqDatabaseUrl: options.pgmqDatabaseUrl }, (m) =>
    m.prepareQueueStorageSchema(options),
  )
}

/** Renders the SQL an external tool needs to reproduce `migrate`, grouped by target database; needs no database. */
export const renderMigrationSql = (options: RenderSqlOptions = {}): ReadonlyArray<TargetScript> => {
  const scripts = renderScripts(options)
  if (!Array.isArray(scripts)) throw scripts
  return scripts as ReadonlyArray<TargetScript>
}

/** Writes the rendered SQL to `dir`, a folder per target database, files sorting in apply order. Returns the paths. */
export const extractMigrationSql = (dir: string, options: RenderSqlOptions = {}): ReadonlyArray<string> => {
  const written = extractScripts(dir, renderMigrationSql(options))
  if (!Array.isArray(written)) throw written
  return written as ReadonlyArray<string>
}
