import { Duration, Option } from "effect"

const OutcomeTypeId: unique symbol = Symbol.for("@awa/runtime/JobOutcome")

/**
 * What a handler asks for instead of completing: snooze, retry after a delay, cancel or fail now. Return
 * it from the handler, or throw it from anywhere below the handler; both mean the same.
 */
export type JobOutcome =
  | { readonly [OutcomeTypeId]: true; readonly _tag: "Snooze"; readonly delayMs: number }
  | {
      readonly [OutcomeTypeId]: true
      readonly _tag: "RetryAfter"
      readonly delayMs: number
      readonly reason: string
    }
  | { readonly [OutcomeTypeId]: true; readonly _tag: "Cancel"; readonly reason: string }
  | {
      readonly [OutcomeTypeId]: true
      readonly _tag: "Fail"
      readonly reason: string
      readonly error?: unknown
    }

const toMillis = (delay: Duration.Input, what: string): number => {
  const decoded = Duration.fromInput(delay)
  const ms = Option.isSome(decoded) ? Duration.toMillis(decoded.value) : Number.NaN
  if (!Number.isFinite(ms) || ms < 0) {
    throw new RangeError(`${what}: the delay must be a finite, non-negative duration, got ${String(delay)}.`)
  }
  return Math.round(ms)
}

/** Runs the job again after `delay` without consuming an attempt (for example: a resource is busy). */
export const snooze = (delay: Duration.Input): JobOutcome => ({
  [OutcomeTypeId]: true,
  _tag: "Snooze",
  delayMs: toMillis(delay, "snooze"),
})

/**
 * Ends this attempt as failed and retries after exactly `delay` (instead of the backoff), recording
 * `reason`; when no attempts are left the job fails as with any error.
 */
export const retryAfter = (delay: Duration.Input, reason = "retry requested by the handler"): JobOutcome => ({
  [OutcomeTypeId]: true,
  _tag: "RetryAfter",
  delayMs: toMillis(delay, "retryAfter"),
  reason,
})

/** Cancels the job for good, recording `reason`. */
export const cancel = (reason: string): JobOutcome => ({ [OutcomeTypeId]: true, _tag: "Cancel", reason })

/** Fails the job now, without further attempts (to the DLQ when its queue has one), recording `reason`. */
export const fail = (reason: string | Error): JobOutcome =>
  typeof reason === "string"
    ? { [OutcomeTypeId]: true, _tag: "Fail", reason }
    : { [OutcomeTypeId]: true, _tag: "Fail", reason: reason.message, error: reason }

/** True when `value` is a `JobOutcome` (returned or thrown by a handler); false for a Proxy whose traps throw. */
export const isJobOutcome = (value: unknown): value is JobOutcome => {
  try {
    return typeof value === "object" && value !== null && OutcomeTypeId in value
  } catch {
    return false
  }
}
