import { type InsertOptions, resolveInsertOptions } from "@awa/model/InsertOptions"
import type { AnyJobDefinition, JobArgsOf } from "@awa/model/JobDefinition"
import { type InsertValidationError, InvalidInsertOptions } from "@awa/model/JobErrors"
import { Context, Effect, Layer } from "effect"
import { type DatabaseError, toDatabaseError } from "./DatabaseError.js"
import type { Engine, InsertResult, InsertRow, Job } from "./Engine.js"
import { type EngineSelection, selectEngine } from "./EngineSelection.js"
import { type Db, PgExecutor, toExecutor } from "./PgExecutor.js"
import { uniqueKey } from "./UniqueKey.js"

/** One job to insert: a definition, its args and options. Build with `job(...)`. */
export interface JobToInsert<D extends AnyJobDefinition = AnyJobDefinition> {
  /** The job's definition. */
  readonly definition: D
  /** The args, validated against the definition's schema at insert. */
  readonly args: JobArgsOf<D>
  /** Insert options, over the definition's defaults. */
  readonly options?: InsertOptions
}

/** Builds a `JobToInsert` with its args typed by the definition. */
export const job = <D extends AnyJobDefinition>(
  definition: D,
  args: JobArgsOf<D>,
  options?: InsertOptions,
): JobToInsert<D> => (options === undefined ? { definition, args } : { definition, args, options })

/**
 * Validates a job (args against the schema, options against the limits) and returns the row to insert,
 * or the typed error; nothing touches the database.
 */
export const prepareInsert = (item: JobToInsert): InsertRow | InsertValidationError => {
  const { definition } = item
  const argsJson = definition.encodeArgs(item.args)
  if (typeof argsJson !== "string") return argsJson
  const options = resolveInsertOptions(definition.kind, definition.defaults, item.options)
  if (options instanceof Error) return options
  const key =
    options.unique === null
      ? null
      : uniqueKey(
          {
            kind: definition.kind,
            queue: options.queue,
            argsJson,
            runAtMs: options.runAt?.getTime() ?? Date.now() + (options.delayMs ?? 0),
          },
          options.unique,
        )
  return {
    kind: definition.kind,
    queue: options.queue,
    argsJson,
    priority: options.priority,
    maxAttempts: options.maxAttempts,
    runAt: options.runAt,
    delayMs: options.delayMs,
    timeoutMs: options.timeoutMs,
    tags: options.tags,
    metadataJson: options.metadataJson,
    uniqueKey: key,
    uniqueStates: options.unique?.states ?? null,
  }
}

const prepareAll = (items: ReadonlyArray<JobToInsert>): Array<InsertRow> => {
  const rows = new Array<InsertRow>(items.length)
  for (let i = 0; i < items.length; i++) {
    const row = prepareInsert(items[i]!)
    if (row instanceof Error) throw row
    rows[i] = row
  }
  return rows
}

/**
 * Enqueues jobs. Every call takes the database to use: a `pg` pool (autocommit), a `pg` client inside the
 * caller's open transaction (the jobs commit or roll back with it), or an `Executor`. A producer opens no
 * connections of its own. Invalid input rejects with a typed error before anything is sent.
 */
export interface Producer {
  /** The engine jobs are written to. */
  readonly engine: Engine
  /**
   * Inserts one job. Resolves to `Inserted`, or to `UniqueConflict` naming the job that holds its unique
   * key. Rejects with `InvalidJobArgs`, `InvalidInsertOptions`, `JobPayloadNotSerializable`,
   * `JobPayloadTooLarge` or `DatabaseError`.
   */
  readonly insert: <D extends AnyJobDefinition>(
    db: Db,
    definition: D,
    args: JobArgsOf<D>,
    options?: InsertOptions,
  ) => Promise<InsertResult>
  /**
   * Inserts many jobs in one statement (one round trip, one commit on a pool). Results are in input order;
   * if any job is invalid nothing is inserted.
   */
  readonly insertMany: (db: Db, jobs: ReadonlyArray<JobToInsert>) => Promise<ReadonlyArray<InsertResult>>
  /**
   * Inserts many jobs through `COPY FROM STDIN` (the fastest bulk path) and resolves to the count. Unique
   * jobs are refused (`InvalidInsertOptions`): use `insertMany` for them. On a pool the COPY runs on one
   * checked-out connection; on a client, inside its transaction. Unlike the other paths, `delay` is resolved
   * against this process's clock (COPY cannot call `now()` per row).
   */
  readonly insertCopy: (db: Db, jobs: ReadonlyArray<JobToInsert>) => Promise<number>
  /**
   * Cancels the non-terminal job holding the unique key these args and options produce (a running
   * handler's signal fires). Resolves to the cancelled job, or null when no such job holds the key.
   */
  readonly cancelByUniqueKey: <D extends AnyJobDefinition>(
    db: Db,
    definition: D,
    args: JobArgsOf<D>,
    options?: InsertOptions,
  ) => Promise<Job | null>
}

/**
 * Options for `makeProducer`: the storage engine (`engine`, default `AWA_ENGINE`, else canonical) and the
 * queue-storage schema (`queueStorageSchema`, default `AWA_QUEUE_STORAGE_SCHEMA`, else `awa`).
 */
export interface ProducerOptions extends EngineSelection {}

/**
 * Makes a producer. Cheap and connection-free: make one per process and share it. Throws
 * `InvalidEngineSelection` when the engine option or `AWA_ENGINE` names no engine.
 */
export const makeProducer = (options?: ProducerOptions): Producer => {
  const engine = selectEngine(options)
  return {
    engine,
    insert: async (db, definition, args, insertOptions) => {
      const row = prepareInsert(job(definition, args, insertOptions))
      if (row instanceof Error) throw row
      const [result] = await engine.insertMany(toExecutor(db), [row])
      return result!
    },
    insertMany: async (db, jobs) => engine.insertMany(toExecutor(db), prepareAll(jobs)),
    insertCopy: async (db, jobs) => {
      const rows = prepareAll(jobs)
      const unique = rows.find((row) => row.uniqueKey !== null)
      if (unique !== undefined) {
        throw new InvalidInsertOptions({
          kind: unique.kind,
          option: "unique",
          value: "unique options",
          expected: "no unique options with insertCopy (COPY cannot skip conflicts); use insertMany",
        })
      }
      return engine.copyInsert(toExecutor(db), rows)
    },
    cancelByUniqueKey: async (db, definition, args, insertOptions) => {
      const row = prepareInsert(
        job(definition, args, insertOptions ?? { unique: definition.defaults.unique ?? true }),
      )
      if (row instanceof Error) throw row
      if (row.uniqueKey === null) {
        throw new InvalidInsertOptions({
          kind: definition.kind,
          option: "unique",
          value: "false",
          expected: "unique options (the same ones used at insert) to compute the key",
        })
      }
      return engine.cancelByUniqueKey(toExecutor(db), row.uniqueKey, "cancelled by unique key")
    },
  }
}

/** The producer as an Effect service: each operation takes its database from `PgExecutor` in the context. */
export class ProducerService extends Context.Service<
  ProducerService,
  {
    /** Inserts one job (see `Producer.insert`). */
    readonly insert: <D extends AnyJobDefinition>(
      definition: D,
      args: JobArgsOf<D>,
      options?: InsertOptions,
    ) => Effect.Effect<InsertResult, InsertValidationError | DatabaseError, PgExecutor>
    /** Inserts many jobs in one statement (see `Producer.insertMany`). */
    readonly insertMany: (
      jobs: ReadonlyArray<JobToInsert>,
    ) => Effect.Effect<ReadonlyArray<InsertResult>, InsertValidationError | DatabaseError, PgExecutor>
    /** Inserts many jobs through COPY (see `Producer.insertCopy`). */
    readonly insertCopy: (
      jobs: ReadonlyArray<JobToInsert>,
    ) => Effect.Effect<number, InsertValidationError | DatabaseError, PgExecutor>
    /** Cancels the job holding a unique key (see `Producer.cancelByUniqueKey`). */
    readonly cancelByUniqueKey: <D extends AnyJobDefinition>(
      definition: D,
      args: JobArgsOf<D>,
      options?: InsertOptions,
    ) => Effect.Effect<Job | null, InsertValidationError | DatabaseError, PgExecutor>
  }
>()("@awa/runtime/Producer") {
  /** Builds the service over a producer made with `makeProducer(options)`. */
  static readonly make = (options?: ProducerOptions): ProducerService["Service"] => {
    const producer = makeProducer(options)
    const lift =
      <A>(operation: string, run: (db: Db) => Promise<A>) =>
      (): Effect.Effect<A, InsertValidationError | DatabaseError, PgExecutor> =>
        Effect.flatMap(Effect.service(PgExecutor), (db) =>
          Effect.tryPromise({
            try: () => run(db),
            catch: (cause) => (isInsertValidationError(cause) ? cause : toDatabaseError(operation, cause)),
          }),
        )
    return {
      insert: (definition, args, options) =>
        lift("insert job", (db) => producer.insert(db, definition, args, options))(),
      insertMany: (jobs) => lift("insert jobs", (db) => producer.insertMany(db, jobs))(),
      insertCopy: (jobs) => lift("copy jobs", (db) => producer.insertCopy(db, jobs))(),
      cancelByUniqueKey: (definition, args, options) =>
        lift("cancel by unique key", (db) => producer.cancelByUniqueKey(db, definition, args, options))(),
    }
  }

  /** A layer providing the producer service. */
  static readonly layer = (options?: ProducerOptions): Layer.Layer<ProducerService> =>
    Layer.succeed(ProducerService, ProducerService.make(options))
}

const insertValidationTags = new Set([
  "InvalidJobArgs",
  "InvalidInsertOptions",
  "JobPayloadNotSerializable",
  "JobPayloadTooLarge",
])

const isInsertValidationError = (cause: unknown): cause is InsertValidationError =>
  typeof cause === "object" &&
  cause !== null &&
  insertValidationTags.has((cause as { _tag?: string })._tag ?? "")
