import { type Db, type ExecutorOptions, toExecutor } from "@awa/runtime/PgExecutor"
import { type Duration, Result } from "effect"
import { toCount, toSeconds } from "./internal/Seconds.js"
import * as sql from "./internal/statements.js"
import { InvalidPgmqMessage, InvalidPgmqOptions, toPgmqError } from "./PgmqErrors.js"
import { type AnyPgmqQueue, type PgmqMessageOf, type PgmqQueue, validatePgmqQueueName } from "./PgmqQueue.js"

/**
 * The header that carries the id of the awa job that sent a message (the bridge's outbox job sets it), so a
 * consumer can recognise a redelivered send: two messages with the same value are one effect.
 */
export const awaJobIdHeader = "awa-job-id"

/** A message read from a pgmq queue, decoded by the queue's schema. */
export interface PgmqMessage<A> {
  /** The queue it was read from. */
  readonly queue: string
  /** The message id (a bigint, as text). */
  readonly msgId: string
  /** How many times it has been read, this read included. */
  readonly readCount: number
  /** When it was sent. */
  readonly enqueuedAt: Date
  /** When it becomes visible again unless archived or deleted (its visibility timeout). */
  readonly visibleAt: Date
  /** The decoded message. */
  readonly message: A
  /** The headers sent with it, or null. */
  readonly headers: Readonly<Record<string, unknown>> | null
  /** The `awa-job-id` header: the awa job that sent it through the bridge, or null. */
  readonly awaJobId: string | null
}

/** Options of `send` and `sendBatch`. */
export interface SendOptions {
  /** Keep the message invisible for this long after sending (default 0; whole seconds, rounded up). */
  readonly delay?: Duration.Input
  /** Headers stored with the message (a JSON object); `sendBatch` applies them to every message. */
  readonly headers?: Readonly<Record<string, unknown>>
  /**
   * Notify listeners when the sending transaction commits (default true): sends through
   * `awa_pgmq.send_notify`, on the channels `awa_pgmq` and `awa_pgmq:<namespace>`. False uses plain
   * `pgmq.send` (which notifies `pgmq.q_<queue>.INSERT` only where `pgmq.enable_notify_insert` was called).
   */
  readonly notify?: boolean
}

/** Options of `read`. */
export interface ReadOptions {
  /** How long read messages stay invisible to other readers (default 30 seconds; whole seconds, rounded up). */
  readonly visibilityTimeout?: Duration.Input
  /** Most messages to read (default 1, at most 1000). */
  readonly limit?: number
}

/** A queue's metrics, from `pgmq.metrics`. */
export interface PgmqQueueMetrics {
  /** The queue name. */
  readonly queue: string
  /** Messages in the queue (visible or not). */
  readonly length: number
  /** Messages visible now; null when the pgmq version does not report it. */
  readonly visibleLength: number | null
  /** Age in seconds of the newest message, or null when empty. */
  readonly newestAgeSeconds: number | null
  /** Age in seconds of the oldest message, or null when empty. */
  readonly oldestAgeSeconds: number | null
  /** Messages ever sent to the queue. */
  readonly totalMessages: number
  /** When the metrics were taken (database clock). */
  readonly scrapedAt: Date
}

/** A queue as listed by `listQueues`. */
export interface PgmqQueueInfo {
  /** The queue name. */
  readonly queue: string
  /** Whether it is partitioned (pg_partman). */
  readonly partitioned: boolean
  /** Whether its table is unlogged. */
  readonly unlogged: boolean
  /** When it was created. */
  readonly createdAt: Date
}

/**
 * The pgmq client. Every call takes the database to use: a `pg` pool on the pgmq database (autocommit), a
 * `pg` client inside the caller's open transaction on that database (a send commits or rolls back with it,
 * and so does its notification), or an `Executor`. It opens no connections of its own. Messages are checked
 * against the queue's schema before anything is sent, and again when read.
 */
export interface PgmqClient {
  /** Sends one message; resolves to its id. Rejects with `InvalidPgmqMessage`, `PgmqQueueNotFound`, ... */
  readonly send: <Q extends AnyPgmqQueue>(
    db: Db,
    queue: Q,
    message: PgmqMessageOf<Q>,
    options?: SendOptions,
  ) => Promise<string>
  /**
   * Sends many messages in one statement; resolves to their ids in input order. If any message is invalid
   * nothing is sent. An empty batch sends nothing.
   */
  readonly sendBatch: <Q extends AnyPgmqQueue>(
    db: Db,
    queue: Q,
    messages: ReadonlyArray<PgmqMessageOf<Q>>,
    options?: SendOptions & {
      /** Headers per message (same length as `messages`), instead of `headers` for all. */
      readonly headersEach?: ReadonlyArray<Readonly<Record<string, unknown>> | null>
    },
  ) => Promise<ReadonlyArray<string>>
  /**
   * Reads up to `limit` visible messages, hiding them for the visibility timeout. Rejects with
   * `InvalidPgmqMessage` (holding the valid ones in `valid`) when a message does not decode.
   */
  readonly read: <Q extends AnyPgmqQueue>(
    db: Db,
    queue: Q,
    options?: ReadOptions,
  ) => Promise<ReadonlyArray<PgmqMessage<PgmqMessageOf<Q>>>>
  /**
   * Reads and deletes the oldest visible message; null when none. An invalid message is deleted all the
   * same: the `InvalidPgmqMessage` carries its raw payload.
   */
  readonly pop: <Q extends AnyPgmqQueue>(db: Db, queue: Q) => Promise<PgmqMessage<PgmqMessageOf<Q>> | null>
  /** Moves messages to the queue's archive table; resolves to the ids that were there. */
  readonly archive: (
    db: Db,
    queue: AnyPgmqQueue | string,
    msgIds: string | ReadonlyArray<string>,
  ) => Promise<ReadonlyArray<string>>
  /** Deletes messages; resolves to the ids that were there. */
  readonly delete: (
    db: Db,
    queue: AnyPgmqQueue | string,
    msgIds: string | ReadonlyArray<string>,
  ) => Promise<ReadonlyArray<string>>
  /**
   * Makes a message visible `after` from now (0 = at once, e.g. to retry without waiting); resolves to the
   * new visibility time, or null when the message does not exist.
   */
  readonly setVisibility: (
    db: Db,
    queue: AnyPgmqQueue | string,
    msgId: string,
    after: Duration.Input,
  ) => Promise<Date | null>
  /** A queue's metrics. */
  readonly metrics: (db: Db, queue: AnyPgmqQueue | string) => Promise<PgmqQueueMetrics>
  /** Every queue's metrics, by name. */
  readonly metricsAll: (db: Db) => Promise<ReadonlyArray<PgmqQueueMetrics>>
  /** Creates a queue (`pgmq.create`); nothing happens when it exists. */
  readonly createQueue: (db: Db, queue: AnyPgmqQueue | string) => Promise<void>
  /** Every queue, by name. */
  readonly listQueues: (db: Db) => Promise<ReadonlyArray<PgmqQueueInfo>>
  /** Whether a queue exists. */
  readonly queueExists: (db: Db, queue: AnyPgmqQueue | string) => Promise<boolean>
  /** Deletes every message of a queue (its archive is kept); resolves to how many. */
  readonly purgeQueue: (db: Db, queue: AnyPgmqQueue | string) => Promise<number>
  /** Drops a queue and its archive; resolves to false when it did not exist. */
  readonly dropQueue: (db: Db, queue: AnyPgmqQueue | string) => Promise<boolean>
}

const nameOf = (queue: AnyPgmqQueue | string): string => {
  if (typeof queue !== "string") return queue.name
  const name = validatePgmqQueueName(queue)
  if (typeof name !== "string") throw name
  return name
}

const idPattern = /^[1-9][0-9]{0,18}$/

const checkedIds = (msgIds: string | ReadonlyArray<string>): Array<string> => {
  const ids = typeof msgIds === "string" ? [msgIds] : [...msgIds]
  for (const id of ids) {
    if (typeof id !== "string" || !idPattern.test(id)) {
      throw new InvalidPgmqOptions({
        option: "msgId",
        value: JSON.stringify(id),
        expected: "a message id (a positive integer, as text)",
      })
    }
  }
  return ids
}

const headersJson = (headers: Readonly<Record<string, unknown>> | null | undefined): string | null => {
  if (headers === undefined || headers === null) return null
  if (typeof headers !== "object" || Array.isArray(headers)) {
    throw new InvalidPgmqOptions({ option: "headers", value: String(headers), expected: "a JSON object" })
  }
  return JSON.stringify(headers)
}

/** Validates and serializes messages for `queue`; throws `InvalidPgmqMessage` listing every bad one. */
const encodeAll = (queue: AnyPgmqQueue, messages: ReadonlyArray<unknown>): Array<string> => {
  const out: Array<string> = []
  const invalid: Array<{ msgId: null; issue: string; raw: unknown }> = []
  for (const message of messages) {
    const encoded = queue.encode(message)
    if (Result.isFailure(encoded)) {
      invalid.push({ msgId: null, issue: encoded.failure, raw: message })
      continue
    }
    let text: string | undefined
    try {
      text = JSON.stringify(encoded.success)
    } catch (error) {
      invalid.push({ msgId: null, issue: `not JSON-serializable (${String(error)})`, raw: message })
      continue
    }
    if (text === undefined) invalid.push({ msgId: null, issue: "it encodes to no JSON value", raw: message })
    else out.push(text)
  }
  if (invalid.length > 0)
    throw new InvalidPgmqMessage({ queue: queue.name, phase: "send", invalid, valid: [] })
  return out
}

interface MessageRow {
  readonly msg_id: string
  readonly read_ct: number
  readonly enqueued_at: Date
  readonly vt: Date
  readonly message: unknown
  readonly headers: Record<string, unknown> | null
}

const awaJobIdOf = (headers: Record<string, unknown> | null): string | null => {
  const value = headers?.[awaJobIdHeader]
  return typeof value === "string" || typeof value === "number" ? String(value) : null
}

/** Decodes read rows; throws `InvalidPgmqMessage` with the valid ones when any fails. */
const decodeRows = <A>(
  queue: PgmqQueue<A, unknown>,
  rows: ReadonlyArray<MessageRow>,
): Array<PgmqMessage<A>> => {
  const valid: Array<PgmqMessage<A>> = []
  const invalid: Array<{ msgId: string; issue: string; raw: unknown }> = []
  for (const row of rows) {
    const decoded = queue.decode(row.message)
    if (Result.isFailure(decoded)) {
      invalid.push({ msgId: row.msg_id, issue: decoded.failure, raw: row.message })
      continue
    }
    valid.push({
      queue: queue.name,
      msgId: row.msg_id,
      readCount: row.read_ct,
      enqueuedAt: row.enqueued_at,
      visibleAt: row.vt,
      message: decoded.success,
      headers: row.headers,
      awaJobId: awaJobIdOf(row.headers),
    })
  }
  if (invalid.length > 0) throw new InvalidPgmqMessage({ queue: queue.name, phase: "read", invalid, valid })
  return valid
}

const numberOrNull = (value: unknown): number | null =>
  value === null || value === undefined ? null : Number(value)

const toMetrics = (row: Record<string, unknown>): PgmqQueueMetrics => ({
  queue: String(row.queue_name),
  length: Number(row.queue_length),
  visibleLength: numberOrNull(row.queue_visible_length),
  newestAgeSeconds: numberOrNull(row.newest_msg_age_sec),
  oldestAgeSeconds: numberOrNull(row.oldest_msg_age_sec),
  totalMessages: Number(row.total_messages),
  scrapedAt: row.scrape_time as Date,
})

/** Options of `makePgmqClient`. */
export interface PgmqClientOptions extends ExecutorOptions {}

/** Makes a pgmq client. Cheap and connection-free: make one per process and share it. */
export const makePgmqClient = (options?: PgmqClientOptions): PgmqClient => {
  const exec = (db: Db) => toExecutor(db, options)
  const run = async <R extends object>(
    db: Db,
    operation: string,
    queue: string | undefined,
    st: sql.Statement,
    values: ReadonlyArray<unknown>,
  ): Promise<Array<R>> => {
    try {
      return await exec(db).query<R>(`pgmq ${operation}`, st, values)
    } catch (error) {
      throw toPgmqError(operation, queue, error)
    }
  }
  const sendRows = async (
    db: Db,
    queue: AnyPgmqQueue,
    messages: ReadonlyArray<unknown>,
    options: SendOptions | undefined,
    headersEach: ReadonlyArray<Readonly<Record<string, unknown>> | null> | undefined,
  ): Promise<ReadonlyArray<string>> => {
    const texts = encodeAll(queue, messages)
    const delay = toSeconds("delay", options?.delay, 0)
    if (headersEach !== undefined && headersEach.length !== messages.length) {
      throw new InvalidPgmqOptions({
        option: "headersEach",
        value: `${headersEach.length} entries`,
        expected: `one entry per message (${messages.length})`,
      })
    }
    const headers =
      headersEach !== undefined
        ? headersEach.map(headersJson)
        : options?.headers === undefined
          ? null
          : texts.map(() => headersJson(options.headers))
    if (texts.length === 0) return []
    const notify = options?.notify ?? true
    const rows = await run<{ msg_id: string }>(
      db,
      texts.length === 1 ? "send" : "send batch",
      queue.name,
      texts.length === 1
        ? notify
          ? sql.sendNotify
          : sql.send
        : notify
          ? sql.sendBatchNotify
          : sql.sendBatch,
      texts.length === 1
        ? [queue.name, texts[0], headers?.[0] ?? null, delay]
        : [queue.name, texts, headers, delay],
    )
    return rows.map((row) => row.msg_id)
  }
  return {
    send: async (db, queue, message, sendOptions) => {
      const [id] = await sendRows(db, queue, [message], sendOptions, undefined)
      return id!
    },
    sendBatch: (db, queue, messages, sendOptions) =>
      sendRows(db, queue, messages, sendOptions, sendOptions?.headersEach),
    read: async (db, queue, readOptions) => {
      const vt = toSeconds("visibilityTimeout", readOptions?.visibilityTimeout, 30)
      const limit = toCount("limit", readOptions?.limit, 1, 1, 1000)
      const rows = await run<MessageRow>(db, "read", queue.name, sql.read, [queue.name, vt, limit])
      return decodeRows(queue, rows)
    },
    pop: async (db, queue) => {
      const rows = await run<MessageRow>(db, "pop", queue.name, sql.pop, [queue.name])
      return decodeRows(queue, rows)[0] ?? null
    },
    archive: async (db, queue, msgIds) => {
      const name = nameOf(queue)
      const rows = await run<{ msg_id: string }>(db, "archive", name, sql.archive, [name, checkedIds(msgIds)])
      return rows.map((row) => row.msg_id)
    },
    delete: async (db, queue, msgIds) => {
      const name = nameOf(queue)
      const rows = await run<{ msg_id: string }>(db, "delete", name, sql.deleteMessages, [
        name,
        checkedIds(msgIds),
      ])
      return rows.map((row) => row.msg_id)
    },
    setVisibility: async (db, queue, msgId, after) => {
      const name = nameOf(queue)
      const [id] = checkedIds(msgId)
      const rows = await run<MessageRow>(db, "set visibility", name, sql.setVt, [
        name,
        id,
        toSeconds("after", after, 0),
      ])
      return rows[0]?.vt ?? null
    },
    metrics: async (db, queue) => {
      const name = nameOf(queue)
      const rows = await run<Record<string, unknown>>(db, "metrics", name, sql.metrics, [name])
      return toMetrics(rows[0]!)
    },
    metricsAll: async (db) =>
      (await run<Record<string, unknown>>(db, "metrics", undefined, sql.metricsAll, [])).map(toMetrics),
    createQueue: async (db, queue) => {
      const name = nameOf(queue)
      await run(db, "create queue", name, sql.createQueue, [name])
    },
    listQueues: async (db) =>
      (
        await run<{ queue_name: string; is_partitioned: boolean; is_unlogged: boolean; created_at: Date }>(
          db,
          "list queues",
          undefined,
          sql.listQueues,
          [],
        )
      ).map((row) => ({
        queue: row.queue_name,
        partitioned: row.is_partitioned,
        unlogged: row.is_unlogged,
        createdAt: row.created_at,
      })),
    queueExists: async (db, queue) => {
      const name = nameOf(queue)
      const rows = await run<{ exists: boolean }>(db, "queue exists", undefined, sql.queueExists, [name])
      return rows[0]?.exists === true
    },
    purgeQueue: async (db, queue) => {
      const name = nameOf(queue)
      const rows = await run<{ purged: string }>(db, "purge", name, sql.purgeQueue, [name])
      return Number(rows[0]?.purged ?? 0)
    },
    dropQueue: async (db, queue) => {
      const name = nameOf(queue)
      const rows = await run<{ dropped: boolean }>(db, "drop", name, sql.dropQueue, [name])
      return rows[0]?.dropped === true
    },
  }
}
