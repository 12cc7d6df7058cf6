import type { InsertOptions } from "@awa/model/InsertOptions"
import { defineJob } from "@awa/model/JobDefinition"
import type { InsertResult } from "@awa/runtime/Engine"
import { handle, type JobHandler } from "@awa/runtime/JobHandler"
import type { Db, PgPool } from "@awa/runtime/PgExecutor"
import { makeProducer, type Producer } from "@awa/runtime/Producer"
import { type Duration, Result, Schema } from "effect"
import { toSeconds } from "./internal/Seconds.js"
import { awaJobIdHeader, makePgmqClient, type PgmqClient } from "./PgmqClient.js"
import { InvalidPgmqMessage } from "./PgmqErrors.js"
import { type AnyPgmqQueue, definePgmqQueue, type PgmqMessageOf } from "./PgmqQueue.js"

/**
 * The outbox job of the publish half of the bridge: inserted on the primary (inside the caller's
 * transaction), its handler sends the message to pgmq with the job's id in the `awa-job-id` header.
 */
export const PgmqPublishJob = defineJob({
  kind: "awa.pgmq.publish",
  args: Schema.Struct({
    queue: Schema.String,
    message: Schema.Unknown,
    headers: Schema.NullOr(Schema.Record(Schema.String, Schema.Unknown)),
    delaySeconds: Schema.Number,
    notify: Schema.Boolean,
  }),
  queue: "awa_pgmq_publish",
})

/** Options of `publishToPgmq`. */
export interface PublishOptions {
  /** Keep the message invisible this long after it is sent (whole seconds, rounded up). */
  readonly delay?: Duration.Input
  /** Headers to send with it (the handler adds `awa-job-id`). */
  readonly headers?: Readonly<Record<string, unknown>>
  /** Send with awa's notification (default true). */
  readonly notify?: boolean
  /** Insert options of the outbox job (queue, priority, maxAttempts, runAt, ...). */
  readonly job?: Omit<InsertOptions, "unique">
  /** The producer (default `makeProducer()`: the canonical engine). */
  readonly producer?: Producer
}

/**
 * Publishes a message to a pgmq queue from the primary database without two-phase commit: validates it
 * against the queue's schema and inserts an outbox job on `db` (a pool, or a client inside the caller's
 * transaction, so the message is sent only if that transaction commits). A worker with
 * `pgmqPublishHandler` sends it. Rejects with `InvalidPgmqMessage` before inserting anything when the
 * message does not match.
 */
export const publishToPgmq = async <Q extends AnyPgmqQueue>(
  db: Db,
  queue: Q,
  message: PgmqMessageOf<Q>,
  options?: PublishOptions,
): Promise<InsertResult> => {
  const encoded = queue.encode(message)
  if (Result.isFailure(encoded)) {
    throw new InvalidPgmqMessage({
      queue: queue.name,
      phase: "send",
      invalid: [{ msgId: null, issue: encoded.failure, raw: message }],
      valid: [],
    })
  }
  const producer = options?.producer ?? makeProducer()
  return producer.insert(
    db,
    PgmqPublishJob,
    {
      queue: queue.name,
      message: encoded.success,
      headers: options?.headers ?? null,
      delaySeconds: toSeconds("delay", options?.delay, 0),
      notify: options?.notify ?? true,
    },
    options?.job,
  )
}

/** Options of `pgmqPublishHandler`. */
export interface PublishHandlerOptions {
  /** A pool on the pgmq database. */
  readonly pgmqPool: PgPool
  /** The client (default `makePgmqClient()`). */
  readonly client?: PgmqClient
  /** Called after the message was sent and before the job completes: the window a crash can hit. For tests. */
  readonly afterSend?: (msgId: string, jobId: string) => unknown
}

/**
 * The worker handler of `PgmqPublishJob`: sends the message with `awa-job-id` set to the job's id. When
 * the worker dies after the send and before the job completes, the job runs again and sends a second
 * message with the same `awa-job-id`: consumers treat messages with equal ids as one (the ingest side of
 * the bridge does so by itself).
 */
export const pgmqPublishHandler = (options: PublishHandlerOptions): JobHandler<typeof PgmqPublishJob> => {
  const client = options.client ?? makePgmqClient()
  return handle(PgmqPublishJob, async (args, { job }) => {
    const queue = definePgmqQueue({ name: args.queue, message: Schema.Unknown })
    const msgId = await client.send(options.pgmqPool, queue, args.message, {
      headers: { ...args.headers, [awaJobIdHeader]: job.id },
      delay: `${args.delaySeconds} seconds`,
      notify: args.notify,
    })
    await options.afterSend?.(msgId, job.id)
  })
}
