// The runtime's one door to Postgres: every other module goes through the types and functions here.
import { Readable } from "node:stream"
import { pipeline } from "node:stream/promises"
import type { PoolerMode } from "@awa/model/Pooler"
import { Context, Effect, Exit, Layer } from "effect"
import pg from "pg"
import copyStreams from "pg-copy-streams"
import {
  type ConnectionLost,
  type DatabaseError,
  isConnectionLoss,
  toConnectionLost,
  toDatabaseError,
} from "./DatabaseError.js"

/** A `pg` connection pool. */
export type PgPool = pg.Pool

/** A `pg` client: a pool client or a standalone client, possibly inside the caller's open transaction. */
export type PgClient = pg.PoolClient | pg.Client

/** Anything the runtime can run statements on: a `pg` pool, a `pg` client, or an `Executor`. */
export type Db = PgPool | PgClient | Executor

/** A named, parameterized SQL statement. */
export interface SqlStatement {
  /** Statement name, unique across the runtime (prefixed `awa_`). */
  readonly name: string
  /** SQL text with `$n` placeholders; never built from values. */
  readonly text: string
  /**
   * Whether `pg` prepares it once per connection under its name (default true). Statements taking arrays
   * of rows opt out: a generic plan cannot see the array's size and may choose a sequential scan, while
   * planning each call (about 0.3 ms per batch) always sees it.
   */
  readonly prepared: boolean
}

/** Defines a named statement (a tiny helper so statement modules read as a list of declarations). */
export const statement = (
  name: string,
  text: string,
  options?: { readonly prepared?: boolean },
): SqlStatement => ({
  name: `awa_${name}`,
  text,
  prepared: options?.prepared ?? true,
})

/** Transaction control, for an executor bound to one connection (a session, or a client). */
export const transaction = {
  begin: statement("begin", "BEGIN", { prepared: false }),
  commit: statement("commit", "COMMIT", { prepared: false }),
  rollback: statement("rollback", "ROLLBACK", { prepared: false }),
} as const

const ExecutorTypeId: unique symbol = Symbol.for("@awa/runtime/Executor")

// The pg pool or client behind each executor made here (see `executorTarget`).
const executorTargets = new WeakMap<Executor, PgPool | PgClient>()
const targeting = (executor: Executor, target: PgPool | PgClient): Executor => {
  executorTargets.set(executor, target)
  return executor
}

/**
 * The `pg` pool or client an executor runs on (or `db` itself when it is one), for caching facts about a
 * database per connection object. An executor made elsewhere (not by `toExecutor`) is its own target.
 */
export const executorTarget = (db: Db): object => (isExecutor(db) ? (executorTargets.get(db) ?? db) : db)

/**
 * Runs the runtime's statements on a pool (each statement on any connection, autocommitted) or on one
 * client (inside whatever transaction the caller holds on it). Failures reject with `DatabaseError`.
 */
export interface Executor {
  /** Marks executors so `toExecutor` can tell them from `pg` objects. */
  readonly [ExecutorTypeId]: true
  /** True when every statement runs on the same client, so they share the caller's transaction. */
  readonly bound: boolean
  /** Runs a statement and returns its rows. `operation` names it in errors. */
  readonly query: <R extends object = Record<string, unknown>>(
    operation: string,
    statement: SqlStatement,
    values: ReadonlyArray<unknown>,
  ) => Promise<Array<R>>
  /** Streams `chunks` of COPY text into `COPY ... FROM STDIN` and returns the number of rows copied. */
  readonly copyFrom: (operation: string, copySql: string, chunks: Iterable<string>) => Promise<number>
}

/** Options for executors. */
export interface ExecutorOptions {
  /**
   * Use named (server-side prepared) statements (default true, false for a pool or client made by
   * `createPool` with `pooler: "transaction"`). Turn off behind a connection pooler that does not support
   * prepared statements.
   */
  readonly preparedStatements?: boolean
}

// Pools made by `createPool` with a pooler mode, and the clients they open, remember the mode, so anything
// handed such a pool (or a client checked out of it) runs without session state.
const poolerModes = new WeakMap<object, PoolerMode>()

/**
 * The pooler mode a pool or client was created for (by `createPool`), or undefined when unknown (a pool
 * the caller built, or one created without `pooler`).
 */
export const poolerOf = (db: Db): PoolerMode | undefined => poolerModes.get(db)

const isPool = (db: PgPool | PgClient): db is PgPool =>
  "totalCount" in db && "idleCount" in db && typeof (db as PgPool).connect === "function"

const isExecutor = (db: Db): db is Executor => ExecutorTypeId in db

const run = async <R extends object>(
  target: PgPool | PgClient,
  operation: string,
  st: SqlStatement,
  values: ReadonlyArray<unknown>,
  prepared: boolean,
): Promise<Array<R>> => {
  try {
    const config =
      prepared && st.prepared
        ? { name: st.name, text: st.text, values: values as Array<unknown> }
        : { text: st.text, values: values as Array<unknown> }
    const result = await (target as pg.Pool).query<R>(config)
    return result.rows
  } catch (cause) {
    throw toDatabaseError(operation, cause)
  }
}

const copyWith = async (client: PgClient, operation: string, copySql: string, chunks: Iterable<string>) => {
  try {
    const sink = client.query(copyStreams.from(copySql))
    await pipeline(Readable.from(chunks), sink)
    return sink.rowCount
  } catch (cause) {
    throw toDatabaseError(operation, cause)
  }
}

/** Turns a pool, a client or an existing executor into an `Executor` (no connection is opened here). */
export const toExecutor = (db: Db, options?: ExecutorOptions): Executor => {
  if (isExecutor(db)) return db
  const prepared = options?.preparedStatements ?? poolerModes.get(db) !== "transaction"
  if (isPool(db)) {
    return targeting(
      {
        [ExecutorTypeId]: true,
        bound: false,
        query: (operation, st, values) => run(db, operation, st, values, prepared),
        copyFrom: async (operation, copySql, chunks) => {
          let client: pg.PoolClient
          try {
            client = await db.connect()
          } catch (cause) {
            throw toDatabaseError(operation, cause)
          }
          const watch = watchConnection(client)
          try {
            return await copyWith(client, operation, copySql, chunks)
          } finally {
            watch.release()
          }
        },
      },
      db,
    )
  }
  return targeting(
    {
      [ExecutorTypeId]: true,
      bound: true,
      query: (operation, st, values) => run(db, operation, st, values, prepared),
      copyFrom: (operation, copySql, chunks) => copyWith(db, operation, copySql, chunks),
    },
    db,
  )
}

// A checked-out client with an 'error' listener for as long as it is out: without one, a connection that dies
// while checked out (server restart, pg_terminate_backend) emits an unhandled 'error' and ends the process.
// `lost` is the error that reported the loss; `release` hands the client back (destroyed when it was lost).
interface WatchedClient {
  readonly lost: () => unknown
  readonly release: (error?: unknown) => void
}

const watchConnection = (client: pg.PoolClient): WatchedClient => {
  let lost: unknown
  const onError = (error: Error) => {
    lost ??= error
  }
  client.on("error", onError)
  let released = false
  return {
    lost: () => lost,
    release: (error) => {
      if (released) return
      released = true
      const broken = lost ?? error
      client.release(
        broken === undefined ? undefined : broken instanceof Error ? broken : new Error(String(broken)),
      )
      // A healthy client goes back to the pool, which listens for its errors while it is idle. A broken one is
      // being closed, and the pool no longer listens: keep ours, so a late error from its socket (such as the
      // server's notice that it is shutting down) is recorded here instead of ending the process.
      if (broken === undefined) client.off("error", onError)
    },
  }
}

/** Where a transaction was when it failed: what its connection loss means for the commit. */
type TransactionPhase = "begin" | "body" | "commit"

// The rejection of a failed transaction, once the rollback was tried (`lost`: the error that reported this
// client's connection gone, from its 'error' event or the failed rollback). A lost connection becomes
// `ConnectionLost` saying whether the commit outcome is known; anything else is the caller's own error (or
// SQL error), passed through unchanged, even one that mentions a lost connection of another client.
const transactionFailure = (phase: TransactionPhase, error: unknown, lost: unknown): unknown => {
  if (phase === "commit" && isConnectionLoss(error)) return toConnectionLost("transaction", "unknown", error)
  if (lost !== undefined)
    return toConnectionLost("transaction", "rolled-back", isConnectionLoss(error) ? error : lost)
  if (phase === "begin") return toDatabaseError("begin transaction", error)
  return error
}

/**
 * Makes a `toExecutor` for a pooler mode: with "transaction" every executor it makes uses no named prepared
 * statements; otherwise it is `toExecutor` (which still follows a pool made by `createPool` with a mode).
 */
export const executorsFor =
  (pooler: PoolerMode | undefined) =>
  (db: Db): Executor =>
    toExecutor(db, pooler === "transaction" ? { preparedStatements: false } : undefined)

/**
 * Runs `fn` inside a transaction on a client checked out of `pool`: commits when it resolves, rolls back
 * when it rejects, and always returns the client. What `fn` throws (including its own SQL errors) rejects
 * unchanged. When the connection is lost the promise rejects with `ConnectionLost`: `commitOutcome` is
 * `"rolled-back"` when it was lost before COMMIT was sent (safe to retry), `"unknown"` when it was lost
 * during COMMIT (check whether the writes landed before retrying). Never crashes the process on a
 * connection error.
 */
export const withTransaction = async <T>(
  pool: PgPool,
  fn: (client: pg.PoolClient) => Promise<T>,
): Promise<T> => {
  let client: pg.PoolClient
  try {
    client = await pool.connect()
  } catch (cause) {
    throw toDatabaseError("transaction", cause)
  }
  const watch = watchConnection(client)
  let phase: TransactionPhase = "begin"
  let broken: unknown
  try {
    await client.query("BEGIN")
    phase = "body"
    const value = await fn(client)
    // A connection lost while `fn` ran (and `fn` swallowed the failures) cannot commit: say so as such.
    if (watch.lost() !== undefined) throw watch.lost()
    phase = "commit"
    await client.query("COMMIT")
    return value
  } catch (error) {
    // A failed COMMIT has ended the transaction (committed or not); otherwise roll back, which also tells
    // whether this client's connection still works.
    if (phase === "commit") {
      if (isConnectionLoss(error)) broken = error
    } else if (watch.lost() === undefined) {
      try {
        await client.query("ROLLBACK")
      } catch (rollbackError) {
        broken = rollbackError
      }
    }
    const lost = watch.lost() ?? (broken !== undefined && isConnectionLoss(broken) ? broken : undefined)
    throw transactionFailure(phase, error, phase === "commit" ? undefined : lost)
  } finally {
    watch.release(broken)
  }
}

/** Options for `createPool`. */
export interface CreatePoolOptions {
  /** Most connections the pool opens (default 10). */
  readonly max?: number
  /** Name shown in `pg_stat_activity.application_name` (default "awa"). */
  readonly applicationName?: string
  /**
   * The pooler between this process and Postgres (default "none"). With "transaction", executors over this
   * pool and its clients use no named prepared statements, and workers given it neither LISTEN nor keep
   * session state.
   */
  readonly pooler?: PoolerMode
}

/** Creates a `pg` pool for a connection string (for callers that do not bring their own pool). */
export const createPool = (connectionString: string, options?: CreatePoolOptions): PgPool => {
  const pool = new pg.Pool({
    connectionString,
    max: options?.max ?? 10,
    application_name: options?.applicationName ?? "awa",
  })
  const pooler = options?.pooler
  if (pooler !== undefined) {
    poolerModes.set(pool, pooler)
    pool.on("connect", (client) => poolerModes.set(client, pooler))
  }
  return pool
}

/** A notification received on a `Session` that listens. */
export interface Notification {
  /** The channel. */
  readonly channel: string
  /** The payload text ("" when none). */
  readonly payload: string
}

/**
 * A dedicated connection outside the pool's checkout cycle: used for LISTEN, which belongs to one backend
 * for as long as it lives (so it cannot work through a transaction pooler; leader election needs no session).
 */
export interface Session {
  /** Runs statements on this session's connection. */
  readonly executor: Executor
  /** Subscribes to notifications (after `LISTEN` on this session). */
  readonly onNotification: (listener: (n: Notification) => void) => void
  /** Calls `listener` once when the connection is lost (error or end not caused by `close`). */
  readonly onLost: (listener: (error: DatabaseError) => void) => void
  /** Closes the connection; session-level locks and LISTENs end with it. */
  readonly close: () => Promise<void>
}

/**
 * Opens a session: a new client with the pool's connection settings (it does not count against the pool's
 * `max`). Rejects with `DatabaseError` when the server cannot be reached.
 */
export const openSession = async (pool: PgPool, applicationName: string): Promise<Session> => {
  const client = new pg.Client({ ...(pool.options as pg.ClientConfig), application_name: applicationName })
  const lostListeners: Array<(error: DatabaseError) => void> = []
  let closed = false
  let lost = false
  const markLost = (cause: unknown) => {
    if (closed || lost) return
    lost = true
    const error = toDatabaseError("session", cause ?? new Error("Connection terminated"))
    for (const listener of lostListeners) listener(error)
  }
  client.on("error", markLost)
  client.on("end", () => markLost(new Error("Connection terminated")))
  try {
    await client.connect()
  } catch (cause) {
    closed = true
    client.end().catch(() => undefined)
    throw toDatabaseError("connect", cause)
  }
  return {
    executor: targeting(
      {
        [ExecutorTypeId]: true,
        bound: true,
        query: (operation, st, values) => run(client, operation, st, values, false),
        copyFrom: (operation, copySql, chunks) => copyWith(client, operation, copySql, chunks),
      },
      client,
    ),
    onNotification: (listener) => {
      client.on("notification", (msg) => listener({ channel: msg.channel, payload: msg.payload ?? "" }))
    },
    onLost: (listener) => {
      lostListeners.push(listener)
    },
    close: async () => {
      if (closed) return
      closed = true
      try {
        await client.end()
      } catch {
        // Already broken: nothing left to close.
      }
    },
  }
}

/** Quotes a LISTEN channel name as an identifier (channels are constants, but stay safe). */
export const listenStatement = (channel: string): SqlStatement => ({
  name: `awa_listen_${channel}`,
  text: `LISTEN "${channel.replaceAll('"', '""')}"`,
  prepared: false,
})

/**
 * The executor in an Effect program's context. Runtime operations written as Effects take their database
 * from here, so they run on a pool or inside the transaction the caller provided.
 */
export class PgExecutor extends Context.Service<PgExecutor, Executor>()("@awa/runtime/PgExecutor") {
  /** Provides an executor for a pool or a client (the caller's open transaction). */
  static readonly layer = (db: Db, options?: ExecutorOptions): Layer.Layer<PgExecutor> =>
    Layer.succeed(PgExecutor, toExecutor(db, options))

  /**
   * Runs `effect` inside a transaction on a client from `pool`, with `PgExecutor` bound to that client:
   * commits on success, rolls back on failure or interruption. A lost connection fails with
   * `ConnectionLost` (`"rolled-back"` before COMMIT, `"unknown"` during it); the effect's own failures
   * pass through unchanged.
   */
  static readonly transaction = <A, E, R>(
    pool: PgPool,
    effect: Effect.Effect<A, E, R>,
  ): Effect.Effect<A, E | DatabaseError | ConnectionLost, Exclude<R, PgExecutor>> =>
    Effect.acquireUseRelease(
      Effect.tryPromise({
        try: async () => {
          const client = await pool.connect()
          const watch = watchConnection(client)
          try {
            await client.query("BEGIN")
          } catch (cause) {
            watch.release(cause)
            throw cause
          }
          return { client, watch }
        },
        catch: (cause) =>
          isConnectionLoss(cause)
            ? toConnectionLost("transaction", "rolled-back", cause)
            : toDatabaseError("transaction", cause),
      }),
      ({ client, watch }) =>
        Effect.provideService(effect, PgExecutor, toExecutor(client)).pipe(
          // A failure caused by a lost connection says so, and that nothing was committed.
          Effect.mapError((error) =>
            watch.lost() !== undefined || isConnectionLoss(error)
              ? toConnectionLost("transaction", "rolled-back", watch.lost() ?? error)
              : error,
          ),
          Effect.flatMap((value) =>
            Effect.tryPromise({
              try: async () => {
                if (watch.lost() !== undefined) throw watch.lost()
                return value
              },
              catch: (cause) => toConnectionLost("transaction", "rolled-back", cause),
            }),
          ),
          Effect.flatMap((value) =>
            Effect.tryPromise({
              try: () => client.query("COMMIT").then(() => value),
              catch: (cause) =>
                isConnectionLoss(cause)
                  ? toConnectionLost("transaction", "unknown", cause)
                  : toDatabaseError("commit", cause),
            }),
          ),
        ),
      ({ client, watch }, exit) =>
        Effect.promise(async () => {
          if (Exit.isSuccess(exit)) {
            watch.release()
            return
          }
          if (watch.lost() !== undefined) {
            watch.release()
            return
          }
          try {
            await client.query("ROLLBACK")
            watch.release()
          } catch (cause) {
            watch.release(cause)
          }
        }),
    ) as Effect.Effect<A, E | DatabaseError | ConnectionLost, Exclude<R, PgExecutor>>
}
