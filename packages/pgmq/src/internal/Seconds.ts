// Durations given to the pgmq client, as the whole seconds pgmq's functions take.
import { Duration, Option } from "effect"
import { InvalidPgmqOptions } from "../PgmqErrors.js"

/** The largest number of seconds pgmq's integer arguments hold. */
const maxSeconds = 2_147_483_647

/**
 * Converts a duration to whole seconds, rounding a fraction up (pgmq counts in seconds; rounding down could
 * make a message visible early). Throws `InvalidPgmqOptions` naming `option` for a negative, infinite or
 * unparsable duration. `undefined` gives `fallback`.
 */
export const toSeconds = (option: string, input: Duration.Input | undefined, fallback: number): number => {
  if (input === undefined) return fallback
  const decoded = Duration.fromInput(input)
  const ms = Option.isSome(decoded) ? Duration.toMillis(decoded.value) : Number.NaN
  const seconds = Math.ceil(ms / 1000)
  if (!Number.isFinite(ms) || ms < 0 || seconds > maxSeconds) {
    throw new InvalidPgmqOptions({
      option,
      value: String(input),
      expected: "a finite, non-negative duration (pgmq counts whole seconds; a fraction is rounded up)",
    })
  }
  return seconds
}

/** Checks a count option: an integer from `min` to `max`, else throws `InvalidPgmqOptions`. */
export const toCount = (
  option: string,
  value: number | undefined,
  fallback: number,
  min: number,
  max: number,
) => {
  const n = value ?? fallback
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new InvalidPgmqOptions({
      option,
      value: String(value),
      expected: `an integer from ${min} to ${max}`,
    })
  }
  return n
}
