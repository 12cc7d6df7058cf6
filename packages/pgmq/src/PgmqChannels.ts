/**
 * The notification channels of a pgmq queue on the pgmq database. NOTIFY reaches only listeners connected
 * to the same database, so listen on the `pgmq` role's database (PGMQ_DATABASE_URL, else DATABASE_URL).
 */

/** awa's global channel: every awa pgmq event (sent, queue_created, queue_dropped). */
export const awaGlobalChannel = "awa_pgmq"

/**
 * A queue's namespace, as awa's helpers compute it: the name up to the first `__` (`orders__email` ->
 * `orders`), or the whole name when it has none or starts with it.
 */
export const namespaceOf = (queue: string): string => {
  const at = queue.indexOf("__")
  return at > 0 ? queue.slice(0, at) : queue
}

/** The channel `awa_pgmq.send_notify` announces a queue's sends on: `awa_pgmq:<namespace>`. */
export const awaChannelFor = (queue: string): string => `${awaGlobalChannel}:${namespaceOf(queue)}`

/**
 * pgmq's insert channel for a queue, as pgmq 1.7 names it (`'pgmq.' || TG_TABLE_NAME || '.' || TG_OP`, the
 * queue's lower-cased table): once `pgmq.enable_notify_insert(queue)` was called, plain `pgmq.send` notifies
 * `pgmq.q_<queue>.INSERT` with an empty payload. For a mixed-case name other providers spell it with the
 * name as created; `sendChannelsFor` covers both.
 */
export const pgmqInsertChannelFor = (queue: string): string => `pgmq.q_${queue.toLowerCase()}.INSERT`

/**
 * Every channel a send to `queue` can be announced on: awa's namespace channel, pgmq's insert channel, and,
 * for a mixed-case name, the insert channel spelled with the name as created (what a provider that names the
 * channel after the queue rather than its table uses), so a consumer wakes with either.
 */
export const sendChannelsFor = (queue: string): ReadonlyArray<string> => [
  ...new Set([awaChannelFor(queue), pgmqInsertChannelFor(queue), `pgmq.q_${queue}.INSERT`]),
]

/** A "sent" event of awa's helpers, as parsed from a notification payload (other fields left out). */
export interface AwaSentEvent {
  /** Always 1 for this format. */
  readonly v: number
  /** "sent". */
  readonly event: "sent"
  /** The queue the messages went to. */
  readonly queue: string
  /** How many messages. */
  readonly count: number
  /** Seconds before they become visible. */
  readonly delay: number
  /** Their ids, when they fit the payload. */
  readonly msg_ids?: ReadonlyArray<number | string>
}

/** Parses an awa "sent" notification payload; undefined for anything else (other events, foreign payloads). */
export const parseAwaSentEvent = (payload: string): AwaSentEvent | undefined => {
  try {
    const value = JSON.parse(payload) as Partial<AwaSentEvent> | null
    if (
      value === null ||
      typeof value !== "object" ||
      value.event !== "sent" ||
      typeof value.queue !== "string"
    ) {
      return undefined
    }
    return value as AwaSentEvent
  } catch {
    return undefined
  }
}
