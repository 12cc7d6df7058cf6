import { Duration, Option } from "effect"
import { InvalidInsertOptions, type JobPayloadNotSerializable, type JobPayloadTooLarge } from "./JobErrors.js"
import { serializeJobPayload } from "./JobPayload.js"
import {
  defaultUniqueStates,
  isJobState,
  type JobState,
  jobStates,
  nonTerminalJobStates,
} from "./JobState.js"
import {
  defaultMaxAttempts,
  defaultPriority,
  defaultQueue,
  maxAttemptTimeoutMs,
  maxMaxAttempts,
  maxMetadataBytes,
  maxPriority,
  maxQueueLength,
  maxTagCount,
  maxTagLength,
  minPriority,
} from "./Limits.js"

/**
 * Options that make a job unique: while a job with the same key is in one of `states`, inserting another
 * returns a conflict naming the existing job instead of inserting. The key always covers the kind.
 */
export interface UniqueOptions {
  /** Include the queue in the key (default false: one job per key across all queues). */
  readonly byQueue?: boolean
  /** Include the args, as canonical JSON, in the key (default true). */
  readonly byArgs?: boolean
  /** Include a time bucket of this length (from the job's run time), allowing one job per period. */
  readonly byPeriod?: Duration.Input
  /**
   * States in which the key is held (default `defaultUniqueStates`: all but `failed` and `cancelled`). It
   * must include every non-terminal state (`nonTerminalJobStates`); choose which terminal ones to add.
   */
  readonly states?: ReadonlyArray<JobState>
}

/** Options for one inserted job; every field is optional and overrides the job definition's defaults. */
export interface InsertOptions {
  /** Queue to put the job on (default `"default"`); letters, digits, `_ . : -`, at most 128 characters. */
  readonly queue?: string
  /** Priority from 1 (claimed first) to 4 (claimed last); default 2. */
  readonly priority?: number
  /** Attempts before the job fails (default 25, at most 1000). */
  readonly maxAttempts?: number
  /** Run no earlier than this instant. Mutually exclusive with `delay`. */
  readonly runAt?: Date
  /** Run no earlier than this long after insert (database clock). Must not be negative. */
  readonly delay?: Duration.Input
  /** Deadline for each attempt; the worker's default applies when absent. */
  readonly timeout?: Duration.Input
  /** Labels for filtering and observability (at most 20, each 1..255 characters). */
  readonly tags?: ReadonlyArray<string>
  /** Free-form JSON object stored with the job (at most 64 KiB), shallow-merged over the definition's. */
  readonly metadata?: Readonly<Record<string, unknown>>
  /** Makes the job unique; `true` uses the default unique options. */
  readonly unique?: UniqueOptions | boolean
}

/** Unique options after validation, ready to compute a key. */
export interface ResolvedUniqueOptions {
  /** Whether the queue is part of the key. */
  readonly byQueue: boolean
  /** Whether the args are part of the key. */
  readonly byArgs: boolean
  /** Length of the time bucket in milliseconds, or null for none. */
  readonly periodMs: number | null
  /** States in which the key is held (never empty). */
  readonly states: ReadonlyArray<JobState>
}

/** Insert options after validation and merging with the definition's defaults. */
export interface ResolvedInsertOptions {
  /** The queue name. */
  readonly queue: string
  /** Priority, 1..4. */
  readonly priority: number
  /** Max attempts, 1..1000. */
  readonly maxAttempts: number
  /** Absolute run time, or null. */
  readonly runAt: Date | null
  /** Delay in milliseconds from insert (database clock), or null. */
  readonly delayMs: number | null
  /** Per-attempt timeout in milliseconds, or null for the worker's default. */
  readonly timeoutMs: number | null
  /** Tags. */
  readonly tags: ReadonlyArray<string>
  /** Metadata serialized as JSON text. */
  readonly metadataJson: string
  /** Unique options, or null when the job is not unique. */
  readonly unique: ResolvedUniqueOptions | null
}

const namePattern = /^[A-Za-z0-9_.:-]+$/

/**
 * Checks a queue name (1..128 characters of letters, digits, `_ . : -`) and returns it, or the typed error.
 * `kind` names the job kind in the message (use `"-"` outside an insert).
 */
export const validateQueueName = (kind: string, queue: unknown): string | InvalidInsertOptions => {
  if (
    typeof queue !== "string" ||
    queue.length === 0 ||
    queue.length > maxQueueLength ||
    !namePattern.test(queue)
  ) {
    return new InvalidInsertOptions({
      kind,
      option: "queue",
      value: show(queue),
      expected: `1..${maxQueueLength} characters of letters, digits, "_", ".", ":" or "-"`,
    })
  }
  return queue
}

const show = (value: unknown): string => {
  if (typeof value === "string") return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value)
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? "an invalid Date" : value.toISOString()
  if (typeof value === "bigint") return `${value}n`
  if (typeof value === "object" && value !== null) return Array.isArray(value) ? "an array" : "an object"
  return String(value)
}

const durationMillis = (input: unknown): number | undefined => {
  if (input === undefined || input === null) return undefined
  const decoded = Duration.fromInput(input as Duration.Input)
  if (Option.isNone(decoded)) return Number.NaN
  const ms = Duration.toMillis(decoded.value)
  return ms
}

const bad = (kind: string, option: string, value: unknown, expected: string): InvalidInsertOptions =>
  new InvalidInsertOptions({ kind, option, value: show(value), expected })

/**
 * Validates insert options for `kind`, merged over the definition's `defaults`, and returns them
 * normalized, or the first typed error found. Nothing here touches the database.
 */
export const resolveInsertOptions = (
  kind: string,
  defaults: InsertOptions | undefined,
  options: InsertOptions | undefined,
): ResolvedInsertOptions | InvalidInsertOptions | JobPayloadNotSerializable | JobPayloadTooLarge => {
  const pick = <K extends keyof InsertOptions>(key: K): InsertOptions[K] | undefined =>
    options?.[key] !== undefined ? options[key] : defaults?.[key]

  const queue = validateQueueName(kind, pick("queue") ?? defaultQueue)
  if (typeof queue !== "string") return queue

  const priority = pick("priority") ?? defaultPriority
  if (!Number.isInteger(priority) || priority < minPriority || priority > maxPriority) {
    return bad(
      kind,
      "priority",
      priority,
      `an integer from ${minPriority} (highest) to ${maxPriority} (lowest)`,
    )
  }

  const maxAttempts = pick("maxAttempts") ?? defaultMaxAttempts
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > maxMaxAttempts) {
    return bad(kind, "maxAttempts", maxAttempts, `an integer from 1 to ${maxMaxAttempts}`)
  }

  // runAt and delay come from the insert options only when either is given there, so an insert-time runAt
  // is not combined with a definition's default delay.
  const timing = options?.runAt !== undefined || options?.delay !== undefined ? options : defaults
  const runAt = timing?.runAt
  if (runAt !== undefined && (!(runAt instanceof Date) || Number.isNaN(runAt.getTime()))) {
    return bad(kind, "runAt", runAt, "a valid Date")
  }
  const delayMs = durationMillis(timing?.delay)
  if (delayMs !== undefined && (!Number.isFinite(delayMs) || delayMs < 0)) {
    return bad(
      kind,
      "delay",
      timing?.delay,
      "a finite, non-negative duration (for example 5000 or '5 seconds')",
    )
  }
  if (runAt !== undefined && delayMs !== undefined) {
    return bad(kind, "delay", timing?.delay, "either runAt or delay, not both")
  }

  const timeoutMs = durationMillis(pick("timeout"))
  if (
    timeoutMs !== undefined &&
    (!Number.isFinite(timeoutMs) || timeoutMs < 1 || timeoutMs > maxAttemptTimeoutMs)
  ) {
    return bad(kind, "timeout", pick("timeout"), `a duration from 1 ms to ${maxAttemptTimeoutMs} ms`)
  }

  const tags = pick("tags") ?? []
  if (!Array.isArray(tags) || tags.length > maxTagCount) {
    return bad(kind, "tags", tags, `an array of at most ${maxTagCount} tags`)
  }
  for (const tag of tags) {
    if (typeof tag !== "string" || tag.length === 0 || tag.length > maxTagLength || tag.includes("\u0000")) {
      return bad(kind, "tags", tag, `each tag a string of 1..${maxTagLength} characters`)
    }
  }

  const metadataValue =
    defaults?.metadata !== undefined && options?.metadata !== undefined
      ? { ...defaults.metadata, ...options.metadata }
      : (pick("metadata") ?? {})
  if (typeof metadataValue !== "object" || metadataValue === null || Array.isArray(metadataValue)) {
    return bad(kind, "metadata", metadataValue, "a JSON object")
  }
  const metadataJson = serializeJobPayload(kind, "metadata", metadataValue, maxMetadataBytes)
  if (typeof metadataJson !== "string") return metadataJson

  const unique = resolveUnique(kind, pick("unique"))
  if (unique instanceof InvalidInsertOptions) return unique

  return {
    queue,
    priority,
    maxAttempts,
    runAt: runAt ?? null,
    delayMs: delayMs === undefined ? null : Math.round(delayMs),
    timeoutMs: timeoutMs === undefined ? null : Math.ceil(timeoutMs),
    tags,
    metadataJson,
    unique,
  }
}

const resolveUnique = (
  kind: string,
  unique: UniqueOptions | boolean | undefined,
): ResolvedUniqueOptions | null | InvalidInsertOptions => {
  if (unique === undefined || unique === false) return null
  const opts: UniqueOptions = unique === true ? {} : unique
  if (typeof opts !== "object" || opts === null)
    return bad(kind, "unique", unique, "true, false or an object")
  const periodMs = durationMillis(opts.byPeriod)
  if (periodMs !== undefined && (!Number.isFinite(periodMs) || periodMs < 1)) {
    return bad(kind, "unique.byPeriod", opts.byPeriod, "a finite duration of at least 1 ms")
  }
  const states = opts.states ?? defaultUniqueStates
  if (!Array.isArray(states) || !states.every(isJobState)) {
    return bad(kind, "unique.states", states, `an array of job states (${jobStates.join(", ")})`)
  }
  const missing = nonTerminalJobStates.filter((state) => !states.includes(state))
  if (missing.length > 0) {
    return bad(
      kind,
      "unique.states",
      states,
      `every state a job moves through on its own (${nonTerminalJobStates.join(", ")}); missing ${missing.join(", ")}. Add completed, failed or cancelled to also refuse duplicates of finished jobs`,
    )
  }
  return {
    byQueue: opts.byQueue ?? false,
    byArgs: opts.byArgs ?? true,
    periodMs: periodMs === undefined ? null : Math.round(periodMs),
    states: [...new Set(states)],
  }
}
