import { type InsertOptions, resolveInsertOptions } from "@awa/model/InsertOptions"
import type { AnyJobDefinition, JobArgsOf } from "@awa/model/JobDefinition"
import { type InsertValidationError, InvalidInsertOptions } from "@awa/model/JobErrors"
import { checkPoolerOption, type PoolerMode } from "@awa/model/Pooler"
import type { AwaPrivilegesMissing, AwaSchemaNotReady } from "@awa/model/SchemaErrors"
import { Context, Effect, Layer } from "effect"
import {
  type ConnectionLost,
  type DatabaseError,
  isConnectionLoss,
  toConnectionLost,
  toDatabaseError,
} from "./DatabaseError.js"
import type { Engine, InsertResult, InsertRow, Job } from "./Engine.js"
import { checkEngineSelection, type EngineSelection, resolveEngine, routedEngine } from "./EngineSelection.js"
import { type Db, type Executor, executorsFor, executorTarget, PgExecutor } from "./PgExecutor.js"
import { checkSchema } from "./SchemaCheck.js"
import { activateOnFreshStart } from "./StorageState.js"
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
   * `JobPayloadTooLarge`, `AwaSchemaNotReady` / `AwaPrivilegesMissing` (from the first use's schema check),
   * `ConnectionLost` (on a pool: the connection was lost while the insert was in flight, so it may have
   * committed; check before inserting again) or `DatabaseError`.
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
 * Options for `makeProducer`: the storage engine (`engine`, default `AWA_ENGINE`, else the database's storage state), the
 * queue-storage schema (`queueStorageSchema`, default `AWA_QUEUE_STORAGE_SCHEMA`, else `awa`), the pooler
 * and the up-front schema check.
 */
export interface ProducerOptions extends EngineSelection {
  /**
   * The pooler in front of Postgres (default: none, or the mode of a pool made by `createPool`): with
   * "transaction" (PgBouncer in transaction mode) no named prepared statements are used, so concurrent
   * inserts through the pooler succeed. Invalid values throw `InvalidPoolerMode`.
   */
  readonly pooler?: PoolerMode
  /**
   * Check the awa schema on the first use of each database (pool, client or executor) before writing
   * (default true): an unmigrated, outdated or not-granted database then rejects with `AwaSchemaNotReady`
   * or `AwaPrivilegesMissing`, which say what to do, instead of a bare SQL error. The check reads only
   * catalogs and the ledger (so it is harmless inside the caller's transaction); a passed check is cached
   * per database object, a failed one is tried again on the next call.
   */
  readonly checkSchema?: boolean
}

// A write on a pool autocommits: a connection lost while it was in flight may have committed it. Said as
// such (`ConnectionLost`, outcome unknown) so the caller checks before inserting again. On a client the
// caller's transaction decides (`withTransaction` reports the loss).
const writeOnPool = async <A>(operation: string, executor: Executor, write: () => Promise<A>): Promise<A> => {
  try {
    return await write()
  } catch (error) {
    if (!executor.bound && isConnectionLoss(error)) throw toConnectionLost(operation, "unknown", error)
    throw error
  }
}

/**
 * Makes a producer. Cheap and connection-free: make one per process and share it. Throws
 * `InvalidEngineSelection` when the engine option or `AWA_ENGINE` names no engine.
 *
 * A producer that follows the database's state (no engine named) counts as a runtime starting: before its
 * first write on each database it asks for fresh activation (`activateFreshStorage`), so on a brand-new
 * database `awa migrate; enqueue; start a worker` lands the first job in queue storage, where the worker will
 * serve it, instead of pinning the database to canonical for good with that one job. It costs one cheap
 * query per database per producer (the row lock is taken only while the database still looks fresh). Inside
 * the caller's transaction the activation commits or rolls back with that transaction; a producer with a
 * named engine never activates anything.
 */
export const makeProducer = (options?: ProducerOptions): Producer => {
  const resolver = resolveEngine(options)
  const engine = routedEngine(resolver)
  const queueStorageSchema = checkEngineSelection(options).queueStorageSchema
  // Every operation below turns its database into an executor through this, so the pooler mode applies.
  const toExecutor = executorsFor(checkPoolerOption(options?.pooler, "makeProducer option pooler"))
  // Schema checks per pg pool or client (an executor counts as the pool or client it runs on, so an Effect
  // transaction's fresh executor over a pooled client reuses that client's check): `true` once passed, the
  // running check otherwise. A failed check is forgotten, so the next call checks again (after `awa migrate`).
  const checked = new WeakMap<object, true | Promise<void>>()
  const ready = (db: Db): Promise<void> | undefined => {
    if (options?.checkSchema === false) return undefined
    const key = executorTarget(db)
    const known = checked.get(key)
    if (known === true) return undefined
    if (known !== undefined) return known
    const check = checkSchema(db, queueStorageSchema).then(() => {
      checked.set(key, true)
    })
    checked.set(key, check)
    check.catch(() => checked.delete(key))
    return check
  }
  // Fresh activation, per pg pool or client: asked before the first write until the database answers that
  // it is not fresh (any answer but `activated`, which is asked once more: inside a caller's transaction
  // that rolls back, the activation is undone too).
  const started = new WeakMap<object, true>()
  const start = async (executor: Executor): Promise<void> => {
    if (resolver.fixed !== undefined) return
    const key = executorTarget(executor)
    if (started.has(key)) return
    const result = await activateOnFreshStart(executor, {
      schema: queueStorageSchema,
      actor: "awa producer (fresh install)",
    })
    if (result.outcome === "activated") resolver.invalidate?.()
    else started.set(key, true)
  }
  const writer = async (db: Db): Promise<Executor> => {
    const check = ready(db)
    if (check !== undefined) await check
    const executor = toExecutor(db)
    await start(executor)
    return executor
  }
  return {
    engine,
    insert: async (db, definition, args, insertOptions) => {
      const row = prepareInsert(job(definition, args, insertOptions))
      if (row instanceof Error) throw row
      const executor = await writer(db)
      const [result] = await writeOnPool("insert job", executor, () => engine.insertMany(executor, [row]))
      return result!
    },
    insertMany: async (db, jobs) => {
      const rows = prepareAll(jobs)
      const executor = await writer(db)
      return writeOnPool("insert jobs", executor, () => engine.insertMany(executor, rows))
    },
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
      const executor = await writer(db)
      return writeOnPool("copy jobs", executor, () => engine.copyInsert(executor, rows))
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
      const executor = await writer(db)
      return writeOnPool("cancel by unique key", executor, () =>
        engine.cancelByUniqueKey(executor, row.uniqueKey!, "cancelled by unique key"),
      )
    },
  }
}

/** Anything a producer operation can fail with. */
export type ProducerError =
  | InsertValidationError
  | AwaSchemaNotReady
  | AwaPrivilegesMissing
  | ConnectionLost
  | DatabaseError

/** The producer as an Effect service: each operation takes its database from `PgExecutor` in the context. */
export class ProducerService extends Context.Service<
  ProducerService,
  {
    /** Inserts one job (see `Producer.insert`). */
    readonly insert: <D extends AnyJobDefinition>(
      definition: D,
      args: JobArgsOf<D>,
      options?: InsertOptions,
    ) => Effect.Effect<InsertResult, ProducerError, PgExecutor>
    /** Inserts many jobs in one statement (see `Producer.insertMany`). */
    readonly insertMany: (
      jobs: ReadonlyArray<JobToInsert>,
    ) => Effect.Effect<ReadonlyArray<InsertResult>, ProducerError, PgExecutor>
    /** Inserts many jobs through COPY (see `Producer.insertCopy`). */
    readonly insertCopy: (
      jobs: ReadonlyArray<JobToInsert>,
    ) => Effect.Effect<number, ProducerError, PgExecutor>
    /** Cancels the job holding a unique key (see `Producer.cancelByUniqueKey`). */
    readonly cancelByUniqueKey: <D extends AnyJobDefinition>(
      definition: D,
      args: JobArgsOf<D>,
      options?: InsertOptions,
    ) => Effect.Effect<Job | null, ProducerError, PgExecutor>
  }
>()("@awa/runtime/Producer") {
  /** Builds the service over a producer made with `makeProducer(options)`. */
  static readonly make = (options?: ProducerOptions): ProducerService["Service"] => {
    const producer = makeProducer(options)
    const lift =
      <A>(operation: string, run: (db: Db) => Promise<A>) =>
      (): Effect.Effect<A, ProducerError, PgExecutor> =>
        Effect.flatMap(Effect.service(PgExecutor), (db) =>
          Effect.tryPromise({
            try: () => run(db),
            catch: (cause) => (isProducerError(cause) ? cause : toDatabaseError(operation, cause)),
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

const producerErrorTags = new Set([
  "InvalidJobArgs",
  "InvalidInsertOptions",
  "JobPayloadNotSerializable",
  "JobPayloadTooLarge",
  "AwaSchemaNotReady",
  "AwaPrivilegesMissing",
  "ConnectionLost",
  "DatabaseError",
])

const isProducerError = (cause: unknown): cause is ProducerError =>
  typeof cause === "object" &&
  cause !== null &&
  producerErrorTags.has((cause as { _tag?: string })._tag ?? "")
