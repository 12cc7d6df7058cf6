import type { InsertOptions } from "@awa/model/InsertOptions"
import { type AnyJobDefinition, defineJob, type JobDefinition } from "@awa/model/JobDefinition"
import { jobStates } from "@awa/model/JobState"
import type { InsertResult } from "@awa/runtime/Engine"
import type { PgPool } from "@awa/runtime/PgExecutor"
import { makeProducer, type Producer } from "@awa/runtime/Producer"
import { Schema } from "effect"
import type { PgmqMessage } from "./PgmqClient.js"
import { PgmqConsumer, type PgmqConsumerOptions } from "./PgmqConsumer.js"
import type { PgmqQueue } from "./PgmqQueue.js"

/**
 * The args of an ingested job: where the message came from, its dedup key, the message and its headers.
 * The message id itself is in the job's metadata (`pgmq.msgId`), so two sends of one outbox job (same
 * `awa-job-id` header, two ids) give identical args and therefore one job.
 */
export interface IngestArgs<A> {
  /** The pgmq queue and the message's dedup key: `awa-job:<id>` when it carries `awa-job-id`, else `msg:<msgId>`. */
  readonly source: { readonly queue: string; readonly key: string }
  /** The message, decoded by the queue's schema. */
  readonly message: A
  /** The message's headers, or null. */
  readonly headers: { readonly [key: string]: unknown } | null
}

/** A job definition for messages ingested from a pgmq queue (made by `defineIngestJob`). */
export type IngestJobDefinition<Kind extends string, A, I> = JobDefinition<
  Kind,
  IngestArgs<A>,
  {
    readonly source: { readonly queue: string; readonly key: string }
    readonly message: I
    readonly headers: { readonly [key: string]: unknown } | null
  }
>

/** Options of `defineIngestJob`: the job kind, the pgmq queue it ingests, and default insert options. */
export interface DefineIngestJobOptions<Kind extends string, A, I>
  extends Omit<InsertOptions, "unique" | "runAt" | "delay"> {
  /** The job kind (1..128 characters of letters, digits, `_ . : / -`). */
  readonly kind: Kind
  /** The pgmq queue whose messages become jobs of this kind. */
  readonly source: PgmqQueue<A, I>
}

/**
 * Defines the awa job kind that messages of a pgmq queue become. Work it with `handle(definition, ...)` like
 * any job: `args.message` is the decoded message.
 */
export const defineIngestJob = <const Kind extends string, A, I>(
  options: DefineIngestJobOptions<Kind, A, I>,
): IngestJobDefinition<Kind, A, I> => {
  const { kind, source, ...defaults } = options
  return defineJob({
    kind,
    args: Schema.Struct({
      source: Schema.Struct({ queue: Schema.String, key: Schema.String }),
      message: source.message,
      headers: Schema.NullOr(Schema.Record(Schema.String, Schema.Unknown)),
    }),
    ...defaults,
  }) as unknown as IngestJobDefinition<Kind, A, I>
}

/** The dedup key of a message: the outbox job that sent it when known, else its id in its queue. */
export const ingestKeyOf = (message: PgmqMessage<unknown>): string =>
  message.awaJobId === null ? `msg:${message.msgId}` : `awa-job:${message.awaJobId}`

/** Options of `PgmqIngest.start`. */
export interface PgmqIngestOptions<Kind extends string, A, I>
  extends Omit<PgmqConsumerOptions<PgmqQueue<A, I>>, "pool" | "queue" | "handler" | "onSuccess"> {
  /** A pool on the pgmq database (the messages). */
  readonly pgmqPool: PgPool
  /** A pool on the primary database (the jobs); the same pool in single-database mode works too. */
  readonly primaryPool: PgPool
  /** The job definition made by `defineIngestJob`; its `source` queue is consumed. */
  readonly job: IngestJobDefinition<Kind, A, I>
  /** The pgmq queue (the one given to `defineIngestJob`). */
  readonly queue: PgmqQueue<A, I>
  /** Insert options for the jobs (queue, priority, ...), over the definition's defaults. */
  readonly insertOptions?: Omit<InsertOptions, "unique">
  /** The producer (default `makeProducer()`: the canonical engine). */
  readonly producer?: Producer
  /**
   * Called after the job insert committed on the primary and before the message is archived on the pgmq
   * database: the window a crash can hit. For tracing and crash tests.
   */
  readonly afterInsert?: (message: PgmqMessage<A>, result: InsertResult) => unknown
}

/**
 * The ingest half of the bridge: consumes a pgmq queue (on the pgmq database) and turns each message into
 * an awa job (on the primary), exactly once in effect. The job holds a unique key made of the queue and the
 * message's dedup key in every state, so when the process dies between the insert and the archive, the
 * message reappears, its insert finds the key held, and it is archived without a second job. The key lasts
 * as long as the job row: jobs pruned by retention free it.
 */
export const PgmqIngest = {
  /** Starts ingesting; returns the consumer (stop it with `stop()`). */
  start: <Kind extends string, A, I>(
    options: PgmqIngestOptions<Kind, A, I>,
  ): PgmqConsumer<PgmqQueue<A, I>> => {
    const { pgmqPool, primaryPool, job, queue, insertOptions, producer, afterInsert, ...consumer } = options
    const jobs = producer ?? makeProducer()
    return PgmqConsumer.start({
      ...consumer,
      pool: pgmqPool,
      queue,
      onSuccess: "archive",
      handler: async (message) => {
        const args: IngestArgs<A> = {
          source: { queue: queue.name, key: ingestKeyOf(message) },
          message: message.message,
          headers: message.headers,
        }
        // A generic definition's args type cannot be resolved by JobArgsOf; `args` is built to match it.
        const result = await jobs.insert(primaryPool, job as AnyJobDefinition, args, {
          ...insertOptions,
          metadata: {
            ...insertOptions?.metadata,
            pgmq: { queue: queue.name, msgId: message.msgId, enqueuedAt: message.enqueuedAt.toISOString() },
          },
          unique: { byArgs: true, byQueue: false, states: jobStates },
        })
        await afterInsert?.(message, result)
      },
    })
  },
}
