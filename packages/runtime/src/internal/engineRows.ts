// Row mapping and attempt-result helpers shared by the storage engines: how a stored row becomes a Job, a
// ClaimedJob, a DeadLetter or QueueSettings, how attempt refs are split into arrays and results partitioned,
// and how text is made storable. Both engines return the canonical column set, so one mapping serves both.
import { type JobState, jobStates } from "@awa/model/JobState"
import { maxErrorMessageLength } from "@awa/model/Limits"
import { DatabaseError } from "../DatabaseError.js"
import type {
  AttemptRef,
  AttemptWriteResult,
  ClaimedJob,
  DeadLetter,
  ErrorInput,
  Job,
  JobErrorRecord,
  Page,
  QueueSettings,
  QueueStats,
} from "../Engine.js"

export type Row = Record<string, unknown>

export const toNumber = (value: unknown): number => (typeof value === "number" ? value : Number(value))
export const toDateOrNull = (value: unknown): Date | null =>
  value === null || value === undefined ? null : (value as Date)

export const parseStates = (value: unknown): ReadonlyArray<JobState> | null => {
  if (value === null || value === undefined) return null
  if (Array.isArray(value)) return value as Array<JobState>
  // pg returns arrays of enum types as their text literal, e.g. "{available,running}".
  const text = String(value)
  if (text === "{}") return []
  return text.slice(1, -1).split(",") as Array<JobState>
}

export const toJob = (row: Row): Job => ({
  id: String(row.id),
  kind: row.kind as string,
  queue: row.queue as string,
  args: row.args,
  state: row.state as JobState,
  priority: toNumber(row.priority),
  attempt: toNumber(row.attempt),
  maxAttempts: toNumber(row.max_attempts),
  runLease: toNumber(row.run_lease),
  runAt: row.run_at as Date,
  attemptedAt: toDateOrNull(row.attempted_at),
  heartbeatAt: toDateOrNull(row.heartbeat_at),
  deadlineAt: toDateOrNull(row.deadline_at),
  finalizedAt: toDateOrNull(row.finalized_at),
  timeoutMs: row.attempt_timeout_ms === null ? null : toNumber(row.attempt_timeout_ms),
  errors: (row.errors as Array<JobErrorRecord> | null) ?? [],
  tags: row.tags as Array<string>,
  metadata: row.metadata as Record<string, unknown>,
  uniqueKey: (row.unique_key as string | null) ?? null,
  uniqueStates: parseStates(row.unique_states),
  createdAt: row.created_at as Date,
})

// A claimed job keeps its times as epoch milliseconds and builds Dates only when read: the hot path
// (claim, run, complete) never needs them.
export class ClaimedRow implements ClaimedJob {
  readonly id: string
  readonly runLease: number
  readonly kind: string
  readonly queue: string
  readonly args: unknown
  readonly priority: number
  readonly attempt: number
  readonly maxAttempts: number
  readonly timeoutMs: number | null
  readonly tags: ReadonlyArray<string>
  readonly metadata: Readonly<Record<string, unknown>>
  readonly waitMs: number
  readonly #runAt: number
  readonly #attemptedAt: number
  readonly #deadlineAt: number
  readonly #createdAt: number
  readonly #storageSlot: number | null

  constructor(row: Row) {
    this.id = String(row.id)
    this.runLease = toNumber(row.run_lease)
    this.kind = row.kind as string
    this.queue = row.queue as string
    this.args = row.args
    this.priority = row.priority as number
    this.attempt = row.attempt as number
    this.maxAttempts = row.max_attempts as number
    this.timeoutMs = (row.attempt_timeout_ms as number | null) ?? null
    this.tags = row.tags as Array<string>
    this.metadata = row.metadata as Record<string, unknown>
    this.#runAt = row.run_at as number
    this.#attemptedAt = row.attempted_at as number
    this.#deadlineAt = row.deadline_at as number
    this.#createdAt = row.created_at as number
    this.#storageSlot = typeof row.ready_slot === "number" ? row.ready_slot : null
    this.waitMs = this.#attemptedAt - this.#runAt
  }

  /** The queue-storage ring partition of the job's ready row, as claim returned it (null for canonical rows). */
  get storageSlot(): number | null {
    return this.#storageSlot
  }

  get runAt(): Date {
    return new Date(this.#runAt)
  }
  get attemptedAt(): Date {
    return new Date(this.#attemptedAt)
  }
  get deadlineAt(): Date {
    return new Date(this.#deadlineAt)
  }
  get createdAt(): Date {
    return new Date(this.#createdAt)
  }

  // Spread and JSON output (events, logs) show the times too, not only the own fields.
  toJSON(): object {
    return {
      ...this,
      runAt: this.runAt,
      attemptedAt: this.attemptedAt,
      deadlineAt: this.deadlineAt,
      createdAt: this.createdAt,
    }
  }
}

export const toClaimed = (row: Row): ClaimedJob => new ClaimedRow(row)

/**
 * The queue-storage ready slot of each attempt, where its ref is a job claimed by this process (null elsewhere):
 * attempt writes pass it back so the database looks each attempt up in one ring partition.
 */
export const storageSlots = (refs: ReadonlyArray<AttemptRef>): Array<number | null> =>
  refs.map((ref) => (ref instanceof ClaimedRow ? ref.storageSlot : null))

export const toDeadLetter = (row: Row): DeadLetter => ({
  id: String(row.id),
  kind: row.kind as string,
  queue: row.queue as string,
  args: row.args,
  priority: toNumber(row.priority),
  attempt: toNumber(row.attempt),
  maxAttempts: toNumber(row.max_attempts),
  errors: (row.errors as Array<JobErrorRecord> | null) ?? [],
  tags: row.tags as Array<string>,
  metadata: row.metadata as Record<string, unknown>,
  reason: row.reason as string,
  createdAt: row.created_at as Date,
  failedAt: row.failed_at as Date,
})

export const toQueueSettings = (row: Row): QueueSettings => ({
  queue: row.name as string,
  paused: row.paused as boolean,
  pausedAt: toDateOrNull(row.paused_at),
  dlqEnabled: row.dlq_enabled as boolean,
})

const unpairedSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g

/**
 * Text as jsonb can store it, whatever a handler put in its error: a string, at most `max` UTF-16 units
 * (never cutting a surrogate pair) plus an ellipsis, with NUL characters and unpaired surrogates replaced
 * by U+FFFD (Postgres refuses both).
 */
export const storableText = (value: unknown, max: number): string => {
  let text: string
  try {
    text = typeof value === "string" ? value : String(value)
  } catch {
    text = Object.prototype.toString.call(value)
  }
  if (text.length > max) {
    const code = text.charCodeAt(max - 1)
    text = `${text.slice(0, code >= 0xd800 && code <= 0xdbff ? max - 1 : max)}…`
  }
  return text.replaceAll("\u0000", "\uFFFD").replace(unpairedSurrogate, "\uFFFD")
}

/** Serializes an error record (the database adds `at`); every text in it is made storable first. */
export const errorRecordJson = (attempt: number, error: ErrorInput): string =>
  JSON.stringify({
    attempt,
    kind: error.kind,
    message: storableText(error.message, maxErrorMessageLength),
    ...(error.name === undefined ? {} : { name: storableText(error.name, 200) }),
    ...(error.stack === undefined ? {} : { stack: storableText(error.stack, maxErrorMessageLength) }),
  })

export const splitRefs = (refs: ReadonlyArray<AttemptRef>) => {
  const ids = new Array<string>(refs.length)
  const leases = new Array<number>(refs.length)
  for (let i = 0; i < refs.length; i++) {
    const ref = refs[i]!
    ids[i] = ref.id
    leases[i] = ref.runLease
  }
  return { ids, leases }
}

export const partition = (refs: ReadonlyArray<AttemptRef>, rows: ReadonlyArray<Row>): AttemptWriteResult => {
  if (rows.length === refs.length) return { applied: refs, stale: [] }
  const changed = new Set<string>()
  for (const row of rows) changed.add(String(row.id))
  const applied: Array<AttemptRef> = []
  const stale: Array<AttemptRef> = []
  for (const ref of refs) (changed.has(ref.id) ? applied : stale).push(ref)
  return { applied, stale }
}

export const empty: AttemptWriteResult = { applied: [], stale: [] }

export const pageLimit = (page: Page): number => Math.min(Math.max(Math.trunc(page.limit ?? 100), 1), 10_000)

export const isUniqueViolation = (error: unknown): boolean =>
  error instanceof DatabaseError && error.sqlStateClass === "unique-violation"

// COPY text format: backslash, newline, carriage return and tab are escaped; \N is NULL.
export const copyEscape = (text: string): string =>
  /[\\\n\r\t]/.test(text)
    ? text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/\r/g, "\\r").replace(/\t/g, "\\t")
    : text

export const arrayLiteral = (items: ReadonlyArray<string>): string =>
  `{${items.map((item) => `"${item.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`).join(",")}}`

/**
 * Queue stats from count rows: `counts` rows of (queue, state, count), summed when a state repeats; `dead`
 * rows of (queue, count) in the DLQ; `settings` rows of queue settings. Every queue named anywhere gets an
 * entry with every state; sorted by queue name.
 */
export const toQueueStats = (
  counts: ReadonlyArray<Row>,
  dead: ReadonlyArray<Row>,
  settings: ReadonlyArray<Row>,
): Array<QueueStats> => {
  type Entry = {
    counts: Record<JobState, number>
    deadLettered: number
    paused: boolean
    dlqEnabled: boolean
  }
  const stats = new Map<string, Entry>()
  const entry = (queue: string): Entry => {
    let s = stats.get(queue)
    if (s === undefined) {
      const zero = Object.fromEntries(jobStates.map((state) => [state, 0])) as Record<JobState, number>
      s = { counts: zero, deadLettered: 0, paused: false, dlqEnabled: false }
      stats.set(queue, s)
    }
    return s
  }
  // A zero count names no queue (a counter row can outlive its queue's jobs).
  for (const row of counts) {
    const count = toNumber(row.count)
    if (count !== 0) entry(row.queue as string).counts[row.state as JobState] += count
  }
  for (const row of dead) entry(row.queue as string).deadLettered = toNumber(row.count)
  for (const row of settings) {
    const s = entry(row.name as string)
    s.paused = row.paused as boolean
    s.dlqEnabled = row.dlq_enabled as boolean
  }
  return [...stats.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([queue, s]): QueueStats => ({ queue, ...s }))
}
