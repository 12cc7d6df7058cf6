import { type Db, PgExecutor } from "@awa/runtime/PgExecutor"
import { Context, type Duration, Effect, Layer } from "effect"
import {
  makePgmqClient,
  type PgmqClient,
  type PgmqClientOptions,
  type PgmqMessage,
  type PgmqQueueMetrics,
  type ReadOptions,
  type SendOptions,
} from "./PgmqClient.js"
import { type PgmqError, toPgmqError } from "./PgmqErrors.js"
import type { AnyPgmqQueue, PgmqMessageOf } from "./PgmqQueue.js"

/** An operation of the service: runs on the `PgExecutor` in the context (a pool, or the caller's transaction). */
type Op<A> = Effect.Effect<A, PgmqError, PgExecutor>

/**
 * The pgmq client as an Effect service: each operation takes its database from `PgExecutor` in the
 * context, so `PgExecutor.transaction(pgmqPool, ...)` runs sends inside one transaction on the pgmq
 * database. Failures are the client's typed errors (see `PgmqClient`).
 */
export class PgmqService extends Context.Service<
  PgmqService,
  {
    /** Sends one message (see `PgmqClient.send`). */
    readonly send: <Q extends AnyPgmqQueue>(
      queue: Q,
      message: PgmqMessageOf<Q>,
      options?: SendOptions,
    ) => Op<string>
    /** Sends many messages (see `PgmqClient.sendBatch`). */
    readonly sendBatch: <Q extends AnyPgmqQueue>(
      queue: Q,
      messages: ReadonlyArray<PgmqMessageOf<Q>>,
      options?: SendOptions,
    ) => Op<ReadonlyArray<string>>
    /** Reads messages (see `PgmqClient.read`). */
    readonly read: <Q extends AnyPgmqQueue>(
      queue: Q,
      options?: ReadOptions,
    ) => Op<ReadonlyArray<PgmqMessage<PgmqMessageOf<Q>>>>
    /** Reads and deletes the oldest visible message (see `PgmqClient.pop`). */
    readonly pop: <Q extends AnyPgmqQueue>(queue: Q) => Op<PgmqMessage<PgmqMessageOf<Q>> | null>
    /** Archives messages (see `PgmqClient.archive`). */
    readonly archive: (
      queue: AnyPgmqQueue | string,
      msgIds: string | ReadonlyArray<string>,
    ) => Op<ReadonlyArray<string>>
    /** Deletes messages (see `PgmqClient.delete`). */
    readonly delete: (
      queue: AnyPgmqQueue | string,
      msgIds: string | ReadonlyArray<string>,
    ) => Op<ReadonlyArray<string>>
    /** Sets a message's visibility (see `PgmqClient.setVisibility`). */
    readonly setVisibility: (
      queue: AnyPgmqQueue | string,
      msgId: string,
      after: Duration.Input,
    ) => Op<Date | null>
    /** A queue's metrics (see `PgmqClient.metrics`). */
    readonly metrics: (queue: AnyPgmqQueue | string) => Op<PgmqQueueMetrics>
  }
>()("@awa/pgmq/PgmqService") {
  /** Builds the service over a client made with `makePgmqClient(options)` (or the one given). */
  static readonly make = (
    options?: PgmqClientOptions & { readonly client?: PgmqClient },
  ): PgmqService["Service"] => {
    const client = options?.client ?? makePgmqClient(options)
    const lift = <A>(operation: string, run: (db: Db) => Promise<A>): Op<A> =>
      Effect.flatMap(Effect.service(PgExecutor), (db) =>
        Effect.tryPromise({ try: () => run(db), catch: (cause) => asPgmqError(operation, cause) }),
      )
    return {
      send: (queue, message, sendOptions) =>
        lift("send", (db) => client.send(db, queue, message, sendOptions)),
      sendBatch: (queue, messages, sendOptions) =>
        lift("send batch", (db) => client.sendBatch(db, queue, messages, sendOptions)),
      read: (queue, readOptions) => lift("read", (db) => client.read(db, queue, readOptions)),
      pop: (queue) => lift("pop", (db) => client.pop(db, queue)),
      archive: (queue, msgIds) => lift("archive", (db) => client.archive(db, queue, msgIds)),
      delete: (queue, msgIds) => lift("delete", (db) => client.delete(db, queue, msgIds)),
      setVisibility: (queue, msgId, after) =>
        lift("set visibility", (db) => client.setVisibility(db, queue, msgId, after)),
      metrics: (queue) => lift("metrics", (db) => client.metrics(db, queue)),
    }
  }

  /** A layer providing the service. */
  static readonly layer = (options?: PgmqClientOptions): Layer.Layer<PgmqService> =>
    Layer.succeed(PgmqService, PgmqService.make(options))
}

/** The client already rejects with typed errors; anything else (a broken executor) becomes one. */
const asPgmqError = (operation: string, cause: unknown): PgmqError =>
  toPgmqError(operation, undefined, cause) as PgmqError
