// Checks the values of CLI flags and arguments before anything reaches the database: each function returns
// the value or throws a UsageError whose message says what to type instead.
import { validateQueueName } from "@awa/model/InsertOptions"
import { validateJobKind } from "@awa/model/JobDefinition"
import { type JobState, jobStates } from "@awa/model/JobState"
import { UsageError, unknownWord } from "../UsageError.js"

const idPattern = /^[1-9][0-9]{0,18}$/

/** The largest job id: ids are Postgres bigints. */
export const maxJobId = "9223372036854775807"

/** True when `text` is a job id: a whole number from 1 to `maxJobId` (beyond it Postgres would reject it). */
const isJobId = (text: string): boolean => idPattern.test(text) && BigInt(text) <= BigInt(maxJobId)

/** A job id argument: a positive integer no larger than a bigint. */
export const jobIdArgument = (command: string, value: string | undefined): string => {
  if (value === undefined) {
    throw new UsageError({ reason: `awa ${command} needs a job id (for example: awa ${command} 42).` })
  }
  if (!isJobId(value)) {
    throw new UsageError({
      reason: `"${value}" is not a job id: job ids are whole numbers from 1 to ${maxJobId}, e.g. 42.`,
    })
  }
  return value
}

/** An optional positive integer flag within `[1, max]`. */
export const positiveIntFlag = (
  name: string,
  value: unknown,
  max = Number.MAX_SAFE_INTEGER,
): number | undefined => {
  if (value === undefined) return undefined
  const text = String(value)
  const n = Number(text)
  if (!/^[0-9]+$/.test(text) || !Number.isSafeInteger(n) || n < 1 || n > max) {
    throw new UsageError({ reason: `--${name} must be a whole number from 1 to ${max}, got "${text}".` })
  }
  return n
}

/**
 * `--cursor`: the `next cursor` a previous page printed: a job id, or, while two engines hold jobs, a job id
 * after the engine's prefix (`c:` or `q:`), or `q:` alone.
 */
export const cursorFlag = (value: unknown): string | undefined => {
  if (value === undefined) return undefined
  const text = String(value)
  const body = text.replace(/^[cq]:/, "")
  if (!(text === "q:" || isJobId(body))) {
    throw new UsageError({
      reason: `--cursor must be the "next cursor" a previous page printed (a job id from 1 to ${maxJobId}, possibly after c: or q:), got "${text}".`,
    })
  }
  return text
}

/** `--state` (repeatable, comma-separated): job states, with "did you mean" for typos. */
export const statesFlag = (value: unknown): ReadonlyArray<JobState> | undefined => {
  if (value === undefined) return undefined
  const words = (Array.isArray(value) ? value : [value])
    .flatMap((v: unknown) => String(v).split(","))
    .map((w) => w.trim())
    .filter((w) => w !== "")
  const states: Array<JobState> = []
  for (const word of words) {
    const state = jobStates.find((s) => s === word.toLowerCase())
    if (state === undefined) throw unknownWord("job state", word, jobStates)
    if (!states.includes(state)) states.push(state)
  }
  return states.length === 0 ? undefined : states
}

/** `--queue` (or a queue argument): a valid queue name. */
export const queueValue = (value: unknown, what = "--queue"): string | undefined => {
  if (value === undefined) return undefined
  const valid = validateQueueName("-", value)
  if (typeof valid !== "string") {
    throw new UsageError({
      reason: `${what} ${JSON.stringify(value)} is not a queue name: use 1..128 letters, digits, "_", ".", ":" or "-".`,
    })
  }
  return valid
}

/** `--kind`: a valid job kind. */
export const kindFlag = (value: unknown): string | undefined => {
  if (value === undefined) return undefined
  const valid = validateJobKind(value)
  if (typeof valid !== "string") {
    throw new UsageError({ reason: `--kind ${JSON.stringify(value)} is not a job kind: ${valid.reason}.` })
  }
  return valid
}

/** `--order`: asc or desc. */
export const orderFlag = (value: unknown): "asc" | "desc" | undefined => {
  if (value === undefined) return undefined
  if (value === "asc" || value === "desc") return value
  throw unknownWord("--order", String(value), ["asc", "desc"])
}

const durationUnits: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/**
 * A duration flag: `500ms`, `10s`, `2m`, `1h`, or a plain number of seconds, at least `minMs`. Returns
 * milliseconds.
 */
export const durationFlag = (name: string, value: unknown, minMs = 0): number | undefined => {
  if (value === undefined) return undefined
  const text = String(value).trim()
  const match = /^([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h)?$/.exec(text)
  if (match === null) {
    throw new UsageError({
      reason: `--${name} must be a duration such as 500ms, 10s, 2m or a number of seconds, got "${text}".`,
    })
  }
  const ms = Math.round(Number(match[1]) * (durationUnits[match[2] ?? "s"] ?? 1000))
  if (ms < minMs) throw new UsageError({ reason: `--${name} must be at least ${minMs}ms, got "${text}".` })
  return ms
}

/** Fails when positional arguments beyond the expected ones were given. */
export const noExtraArguments = (command: string, extra: ReadonlyArray<string>): void => {
  if (extra.length > 0) {
    throw new UsageError({
      reason: `awa ${command} got unexpected arguments: ${extra.map((a) => JSON.stringify(a)).join(" ")}.`,
    })
  }
}
