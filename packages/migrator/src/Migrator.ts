import {
  DatabaseAheadOfCode,
  type DatabaseRole,
  type DatabaseUnreachable,
  InvalidMigratorOptions,
  MigrationDrift,
  MigrationFailed,
  type MigratorError,
  PgmqProviderUnavailable,
  quoteIdentifier,
  ResetRefused,
  type UnknownMigrationSet,
} from "@awa/model"
import { Context, Effect, Layer } from "effect"
import type { Connection, Database, QueryFailed } from "./Database.js"
import { ledgerBootstrapSql } from "./internal/bundledMigrations.generated.js"
import * as ledger from "./internal/ledgerStatements.js"
import {
  canonicalTableNames,
  getMigrationSet,
  type MigrationSet,
  type MigrationSetName,
  type PgmqProvider,
  type RenderedMigration,
  renderSet,
  type SetSelection,
  selectSets,
  tablesCreatedBy,
  validateSchemaName,
  viewsCreatedBy,
} from "./MigrationSet.js"
import { Topology } from "./Topology.js"

/** What to migrate: the set selection (see `SetSelection`). */
export type MigrateOptions = SetSelection

/** One (set, instance) on one database, with what has been applied and what is pending. */
export interface SetStatus {
  readonly role: DatabaseRole
  readonly target: string
  readonly set: MigrationSetName
  readonly instance: string
  /** Highest applied version (0 when none). */
  readonly applied: number
  /** Highest version the code knows. */
  readonly latest: number
  readonly pending: ReadonlyArray<{ readonly version: number; readonly name: string }>
  /** Applied migrations whose rendered SQL no longer matches the ledger's checksum. */
  readonly drift: ReadonlyArray<{ readonly version: number; readonly name: string }>
  /** True when the database holds versions newer than `latest`. */
  readonly ahead: boolean
  readonly params: Readonly<Record<string, string>>
}

/** A migration that `apply` ran, or that `plan` would run. */
export interface PlannedMigration {
  readonly role: DatabaseRole
  readonly target: string
  readonly set: MigrationSetName
  readonly instance: string
  readonly version: number
  readonly name: string
  readonly file: string
  readonly checksum: string
  readonly noTransaction: boolean
  readonly sql: string
  /**
   * True when the migration has no statements for these parameters (its `awa:when` directive names others,
   * e.g. the pgmq extension file under provider `sql`): only its ledger row is written.
   */
  readonly empty: boolean
  /** The parameters the migration's statements are for (its `awa:when` directive); empty when it always applies. */
  readonly appliesWhen: Readonly<Record<string, string>>
}

/** The result of `apply`: what ran now (possibly nothing) and the status afterwards. */
export interface ApplyReport {
  readonly applied: ReadonlyArray<PlannedMigration & { readonly durationMs: number }>
  readonly status: ReadonlyArray<SetStatus>
}

/** Options for preparing a custom queue-storage schema. */
export interface PrepareQueueStorageOptions {
  /** The schema to install the queue-storage substrate into. */
  readonly schema: string
  /** Drop and re-create the schema first. Refused for `awa` and any schema holding canonical tables. */
  readonly reset?: boolean | undefined
}

/** Any error `Migrator` operations fail with. */
export type MigratorFailure = MigratorError | QueryFailed

/** A (set, instance) bound to the database it lives in. */
interface Unit {
  readonly database: Database
  readonly set: MigrationSet
  readonly params: Readonly<Record<string, string>>
  readonly rendered: ReadonlyArray<RenderedMigration>
}

type LedgerIndex = Map<string, Map<number, ledger.LedgerRow>>
const unitKey = (set: string, instance: string) => `${set}/${instance}`

const readLedger = (db: Database): Effect.Effect<LedgerIndex, QueryFailed | DatabaseUnreachable> =>
  Effect.gen(function* () {
    const index: LedgerIndex = new Map()
    const [exists] = yield* db.query<{ present: boolean }>(ledger.ledgerExists)
    if (!exists?.present) return index
    for (const row of yield* db.query<ledger.LedgerRow>(ledger.selectAll)) {
      const key = unitKey(row.migration_set, row.instance)
      const byVersion = index.get(key) ?? new Map<number, ledger.LedgerRow>()
      byVersion.set(row.version, row)
      index.set(key, byVersion)
    }
    return index
  })

const inTransaction = <A, E>(
  connection: Connection,
  body: Effect.Effect<A, E>,
): Effect.Effect<A, E | QueryFailed> =>
  Effect.gen(function* () {
    yield* connection.query("BEGIN")
    const exit = yield* Effect.exit(body)
    if (exit._tag === "Success") {
      yield* connection.query("COMMIT")
      return exit.value
    }
    yield* connection.query("ROLLBACK").pipe(Effect.ignore)
    return yield* exit
  })

const bootstrapLedger = (db: Database) =>
  db.withConnection((c) =>
    inTransaction(
      c,
      Effect.gen(function* () {
        yield* c.query(ledger.lockBootstrap, [])
        yield* c.query(ledgerBootstrapSql)
      }),
    ),
  )

const statusOf = (unit: Unit, index: LedgerIndex): SetStatus => {
  const instance = unit.rendered[0]?.instance ?? unit.set.fixedInstance
  const rows = index.get(unitKey(unit.set.name, instance)) ?? new Map<number, ledger.LedgerRow>()
  const appliedVersions = [...rows.keys()]
  const applied = appliedVersions.length === 0 ? 0 : Math.max(...appliedVersions)
  return {
    role: unit.database.role,
    target: unit.database.target,
    set: unit.set.name,
    instance,
    applied,
    latest: unit.set.latestVersion,
    pending: unit.rendered
      .filter((r) => !rows.has(r.migration.version))
      .map((r) => ({ version: r.migration.version, name: r.migration.name })),
    drift: unit.rendered
      .filter((r) => {
        const row = rows.get(r.migration.version)
        return row !== undefined && row.checksum !== r.checksum
      })
      .map((r) => ({ version: r.migration.version, name: r.migration.name })),
    ahead: applied > unit.set.latestVersion,
    params: unit.params,
  }
}

/** Fails with the first refusal a status shows: a database ahead of the code, or drift. */
const refuseProblems = (
  statuses: ReadonlyArray<SetStatus>,
  index: Map<Database, LedgerIndex>,
  units: ReadonlyArray<Unit>,
) =>
  Effect.gen(function* () {
    for (const [i, s] of statuses.entries()) {
      if (s.ahead) {
        return yield* new DatabaseAheadOfCode({
          role: s.role,
          set: s.set,
          instance: s.instance,
          databaseVersion: s.applied,
          codeVersion: s.latest,
        })
      }
      const first = s.drift[0]
      if (first) {
        const unit = units[i]
        const row = unit
          ? index.get(unit.database)?.get(unitKey(s.set, s.instance))?.get(first.version)
          : undefined
        const rendered = unit?.rendered.find((r) => r.migration.version === first.version)
        return yield* new MigrationDrift({
          role: s.role,
          set: s.set,
          instance: s.instance,
          version: first.version,
          name: first.name,
          appliedChecksum: row?.checksum ?? "",
          codeChecksum: rendered?.checksum ?? "",
        })
      }
    }
  })

const toPlanned = (unit: Unit, r: RenderedMigration): PlannedMigration => ({
  role: unit.database.role,
  target: unit.database.target,
  set: unit.set.name,
  instance: r.instance,
  version: r.migration.version,
  name: r.migration.name,
  file: r.migration.file,
  checksum: r.checksum,
  noTransaction: r.migration.directives.noTransaction,
  sql: r.sql,
  empty: r.sql.trim() === "",
  appliesWhen: r.migration.directives.when,
})

const migrationFailed = (unit: Unit, r: RenderedMigration, error: QueryFailed) =>
  new MigrationFailed({
    role: unit.database.role,
    set: unit.set.name,
    instance: r.instance,
    file: r.migration.file,
    reason: error.reason,
    sqlState: error.sqlState,
  })

/**
 * Applies one migration exactly once: takes the (set, instance) lock, re-checks the ledger (another
 * migrator may have won the race), runs the SQL and writes the ledger row in the same transaction.
 */
const applyOne = (unit: Unit, r: RenderedMigration) =>
  unit.database.withConnection((c) => {
    const lockParams = [unit.set.name, r.instance]
    const body = Effect.gen(function* () {
      const existing = yield* c.query<{ checksum: string }>(ledger.selectOne, [
        unit.set.name,
        r.instance,
        r.migration.version,
      ])
      if (existing.length > 0) return undefined
      const started = performance.now()
      if (r.sql.trim() !== "") {
        yield* c.query(r.sql).pipe(Effect.mapError((e) => migrationFailed(unit, r, e)))
      }
      const durationMs = Math.round(performance.now() - started)
      yield* c.query(ledger.insertRow, [
        unit.set.name,
        r.instance,
        r.migration.version,
        r.migration.name,
        r.checksum,
        JSON.stringify(r.params),
        durationMs,
      ])
      return { ...toPlanned(unit, r), durationMs }
    })
    if (!r.migration.directives.noTransaction) {
      return inTransaction(c, Effect.andThen(c.query(ledger.lockSetInstance, lockParams), body))
    }
    return Effect.acquireUseRelease(
      c.query(ledger.lockSetInstanceSession, lockParams),
      () => body,
      () => c.query(ledger.unlockSetInstanceSession, lockParams).pipe(Effect.ignore),
    )
  })

/**
 * The migrator: plans, applies and reports the migration sets on the databases of a `Topology`.
 * Never changes which engine is active.
 */
export class Migrator extends Context.Service<
  Migrator,
  {
    /** Reports, per database and (set, instance), what is applied, pending, drifted or ahead. Changes nothing. */
    readonly status: (options?: MigrateOptions) => Effect.Effect<ReadonlyArray<SetStatus>, MigratorFailure>
    /** Lists the migrations `apply` would run, with their SQL, after the same checks. Changes nothing. */
    readonly plan: (
      options?: MigrateOptions,
    ) => Effect.Effect<ReadonlyArray<PlannedMigration>, MigratorFailure>
    /** Applies every pending migration, each in its own transaction with its ledger row. */
    readonly apply: (options?: MigrateOptions) => Effect.Effect<ApplyReport, MigratorFailure>
    /**
     * Installs (or upgrades) the queue-storage set in a custom schema, ledgered per schema so later
     * `apply` calls upgrade it too. With `reset`, drops the schema first (refused for canonical schemas).
     */
    readonly prepareQueueStorageSchema: (
      options: PrepareQueueStorageOptions,
    ) => Effect.Effect<ApplyReport, MigratorFailure>
  }
>()("@awa/migrator/Migrator") {
  /** Builds the migrator on the current topology. */
  static readonly make: Effect.Effect<Migrator["Service"], never, Topology> = Effect.gen(function* () {
    const topology = yield* Topology

    const selectedSets = (options: MigrateOptions) => {
      const names = selectSets(options)
      return Array.isArray(names)
        ? Effect.succeed(names as ReadonlyArray<MigrationSetName>)
        : Effect.fail(names as UnknownMigrationSet)
    }

    const resolvePgmqProvider = (
      db: Database,
      index: LedgerIndex,
      override: PgmqProvider | undefined,
    ): Effect.Effect<PgmqProvider, PgmqProviderUnavailable | QueryFailed | DatabaseUnreachable> =>
      Effect.gen(function* () {
        const recorded = index.get(unitKey("pgmq", "pgmq"))?.get(1)?.params.provider as
          | PgmqProvider
          | undefined
        if (recorded !== undefined) {
          if (override !== undefined && override !== recorded) {
            return yield* new PgmqProviderUnavailable({
              provider: override,
              reason: `pgmq is already installed on the ${db.role} database with provider "${recorded}"; drop the --pgmq-provider override or use "${recorded}"`,
            })
          }
          return recorded
        }
        const [schema] = yield* db.query<{ present: boolean }>(ledger.schemaExists, ["pgmq"])
        const [extension] = yield* db.query<{ present: boolean }>(ledger.pgmqExtensionAvailable)
        const hasSchema = schema?.present === true
        const hasExtension = extension?.present === true
        if (override === "existing" && !hasSchema) {
          return yield* new PgmqProviderUnavailable({
            provider: "existing",
            reason: `the ${db.role} database (${db.target}) has no pgmq schema; install pgmq first or use --pgmq-provider sql`,
          })
        }
        if (override === "extension" && !hasExtension) {
          return yield* new PgmqProviderUnavailable({
            provider: "extension",
            reason: `the server at ${db.target} does not offer the pgmq extension (pg_available_extensions); install it or use --pgmq-provider sql`,
          })
        }
        if (override !== undefined && override !== "existing" && hasSchema) {
          return yield* new PgmqProviderUnavailable({
            provider: override,
            reason: `a pgmq schema already exists on the ${db.role} database (${db.target}); use --pgmq-provider existing`,
          })
        }
        if (override !== undefined) return override
        return hasSchema ? "existing" : hasExtension ? "extension" : "sql"
      })

    /**
     * The chosen sets, plus pgmq when the default selection is asked for and pgmq is already installed
     * (ledgered on the pgmq database): once installed with --with-pgmq, later runs keep it up to date and
     * report it, as they do for queue-storage schemas.
     */
    const setsFor = (options: MigrateOptions, indexes: Map<Database, LedgerIndex>) =>
      Effect.map(selectedSets(options), (names) => {
        const defaultSelection = options.sets === undefined || options.sets.length === 0
        const installed = indexes.get(topology.pgmq)?.has(unitKey("pgmq", "pgmq")) === true
        return defaultSelection && installed && !names.includes("pgmq") ? [...names, "pgmq" as const] : names
      })

    /** Resolves the units (set instances on their databases) for the chosen sets. */
    const unitsFor = (options: MigrateOptions, indexes: Map<Database, LedgerIndex>) =>
      Effect.gen(function* () {
        const units: Array<Unit> = []
        for (const name of yield* setsFor(options, indexes)) {
          const set = getMigrationSet(name)
          const database = set.role === "primary" ? topology.primary : topology.pgmq
          const index = indexes.get(database) ?? new Map()
          const paramSets: Array<Record<string, string>> = []
          if (name === "queue-storage") {
            // The default instance plus every custom schema already ledgered, so upgrades reach them.
            const instances = new Set(["awa"])
            for (const key of index.keys()) if (key.startsWith("queue-storage/")) instances.add(key.slice(14))
            for (const schema of [...instances].sort((a, b) =>
              a === "awa" ? -1 : b === "awa" ? 1 : a.localeCompare(b),
            )) {
              paramSets.push({ schema })
            }
          } else if (name === "pgmq") {
            paramSets.push({ provider: yield* resolvePgmqProvider(database, index, options.pgmqProvider) })
          } else {
            paramSets.push({})
          }
          for (const params of paramSets)
            units.push({ database, set, params, rendered: renderSet(set, params) })
        }
        return units
      })

    const databases = () => (topology.split ? [topology.primary, topology.pgmq] : [topology.primary])

    const readAll = Effect.gen(function* () {
      const indexes = new Map<Database, LedgerIndex>()
      for (const db of databases()) indexes.set(db, yield* readLedger(db))
      return indexes
    })

    const inspect = (
      options: MigrateOptions,
      units?: (indexes: Map<Database, LedgerIndex>) => Effect.Effect<ReadonlyArray<Unit>, MigratorFailure>,
    ) =>
      Effect.gen(function* () {
        const indexes = yield* readAll
        const resolved = yield* units ? units(indexes) : unitsFor(options, indexes)
        const statuses = resolved.map((u) => statusOf(u, indexes.get(u.database) ?? new Map()))
        return { indexes, units: resolved, statuses }
      })

    const applyUnits = (
      units: ReadonlyArray<Unit>,
      options: MigrateOptions,
      unitsAgain: (
        indexes: Map<Database, LedgerIndex>,
      ) => Effect.Effect<ReadonlyArray<Unit>, MigratorFailure>,
    ) =>
      Effect.gen(function* () {
        const applied: Array<PlannedMigration & { durationMs: number }> = []
        const touched = new Set(units.map((u) => u.database))
        for (const db of touched) yield* bootstrapLedger(db)
        for (const unit of units) {
          for (const r of unit.rendered) {
            const done = yield* applyOne(unit, r)
            if (done) applied.push(done)
          }
        }
        const after = yield* inspect(options, unitsAgain)
        return { applied, status: after.statuses }
      })

    const status = (options: MigrateOptions = {}) => inspect(options).pipe(Effect.map((r) => r.statuses))

    const plan = (options: MigrateOptions = {}) =>
      Effect.gen(function* () {
        const { indexes, units, statuses } = yield* inspect(options)
        yield* refuseProblems(statuses, indexes, units)
        const steps: Array<PlannedMigration> = []
        for (const unit of units) {
          const rows =
            indexes.get(unit.database)?.get(unitKey(unit.set.name, unit.rendered[0]?.instance ?? "")) ??
            new Map()
          for (const r of unit.rendered) if (!rows.has(r.migration.version)) steps.push(toPlanned(unit, r))
        }
        return steps
      })

    const apply = (options: MigrateOptions = {}) =>
      Effect.gen(function* () {
        const { indexes, units, statuses } = yield* inspect(options)
        yield* refuseProblems(statuses, indexes, units)
        return yield* applyUnits(units, options, (ix) => unitsFor(options, ix))
      })

    // A reset drops only what awa created: a schema it prepared (recorded in the ledger), holding nothing but
    // the queue-storage set's tables, whose CASCADE reaches nothing outside it. Anything else is refused with
    // the reason, and nothing changes.
    const resetQueueStorageSchema = (schema: string) =>
      Effect.gen(function* () {
        const refuse = (reason: string) => Effect.fail(new ResetRefused({ schema, reason }))
        if (schema === "awa")
          return yield* refuse("schema awa holds the canonical tables and the default substrate")
        const db = topology.primary
        const canonical = yield* db.query<{ name: string }>(ledger.tablesNamedIn, [
          schema,
          canonicalTableNames(),
        ])
        if (canonical.length > 0) {
          return yield* refuse(`it holds canonical tables (${canonical.map((t) => t.name).join(", ")})`)
        }
        yield* bootstrapLedger(db)
        const [exists] = yield* db.query<{ present: boolean }>(ledger.schemaExists, [schema])
        const [recorded] = yield* db.query<{ present: boolean }>(ledger.instanceRecorded, [
          "queue-storage",
          schema,
        ])
        if (exists?.present === true && recorded?.present !== true) {
          return yield* refuse(
            "awa did not prepare it (the ledger records no queue-storage migrations for it), so it may hold your own data; drop it yourself if you mean to",
          )
        }
        const foreign = yield* db.query<{ name: string }>(ledger.relationsNotNamedIn, [
          schema,
          [...tablesCreatedBy("queue-storage"), ...viewsCreatedBy("queue-storage")],
        ])
        if (foreign.length > 0) {
          return yield* refuse(
            `it also holds relations awa did not create (${foreign.map((t) => t.name).join(", ")}); move or drop them first`,
          )
        }
        yield* db.withConnection((c) =>
          inTransaction(
            c,
            Effect.gen(function* () {
              yield* c.query(ledger.lockSetInstance, ["queue-storage", schema])
              yield* c.query(ledger.snapshotOutside(schema))
              yield* c.query(`DROP SCHEMA IF EXISTS ${quoteIdentifier(schema)} CASCADE`)
              const lost = yield* c.query<{ what: string }>(ledger.vanishedOutside)
              if (lost.length > 0) {
                const shown = lost.slice(0, 10).map((o) => o.what)
                const more = lost.length > shown.length ? ` and ${lost.length - shown.length} more` : ""
                return yield* refuse(
                  `dropping it would also drop objects outside it that depend on it (${shown.join(", ")}${more}); remove those dependencies first`,
                )
              }
              yield* c.query(ledger.deleteInstance, ["queue-storage", schema])
            }),
          ),
        )
      })

    const prepareQueueStorageSchema = (options: PrepareQueueStorageOptions) =>
      Effect.gen(function* () {
        const schema = validateSchemaName(options.schema)
        if (typeof schema !== "string") return yield* Effect.fail(schema)
        const set = getMigrationSet("queue-storage")
        const unitFor = (): ReadonlyArray<Unit> => [
          { database: topology.primary, set, params: { schema }, rendered: renderSet(set, { schema }) },
        ]
        const single = () => Effect.succeed(unitFor())
        if (options.reset === true) yield* resetQueueStorageSchema(schema)
        const { indexes, units, statuses } = yield* inspect({}, single)
        yield* refuseProblems(statuses, indexes, units)
        return yield* applyUnits(units, {}, single)
      })

    return { status, plan, apply, prepareQueueStorageSchema }
  })

  /** The migrator on top of a provided `Topology`. */
  static readonly layer: Layer.Layer<Migrator, never, Topology> = Layer.effect(Migrator, Migrator.make)
}

/** Validates option combinations that do not need a database. */
export const validateMigrateOptions = (options: MigrateOptions): InvalidMigratorOptions | undefined => {
  if (
    options.pgmqProvider !== undefined &&
    options.withPgmq !== true &&
    !(options.sets ?? []).includes("pgmq")
  ) {
    return new InvalidMigratorOptions({
      reason: "--pgmq-provider only applies to the pgmq set: add --with-pgmq (or --set pgmq).",
    })
  }
  return undefined
}
