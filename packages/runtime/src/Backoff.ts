/** Computes the delay in milliseconds before retrying after failed attempt number `attempt` (1-based). */
export type Backoff = (attempt: number) => number

/** Options for `exponentialBackoff`. */
export interface ExponentialBackoffOptions {
  /** Delay after the first failed attempt, in ms (default 1000). */
  readonly baseMs?: number
  /** Growth per attempt (default 2). */
  readonly factor?: number
  /** Cap on the delay, in ms (default 3_600_000, one hour). */
  readonly maxMs?: number
  /**
   * Fraction of the delay removed at random (default 0.2): the delay lands in [d * (1 - jitter), d], so
   * retries of jobs that failed together spread out and never exceed the cap.
   */
  readonly jitter?: number
  /** Random source in [0, 1) (default Math.random); inject a fixed one for deterministic tests. */
  readonly random?: () => number
}

/**
 * Exponential backoff with jitter, capped: `min(maxMs, baseMs * factor^(attempt - 1))`, less up to
 * `jitter` of itself at random.
 */
export const exponentialBackoff = (options?: ExponentialBackoffOptions): Backoff => {
  const baseMs = options?.baseMs ?? 1000
  const factor = options?.factor ?? 2
  const maxMs = options?.maxMs ?? 3_600_000
  const jitter = Math.min(Math.max(options?.jitter ?? 0.2, 0), 1)
  const random = options?.random ?? Math.random
  return (attempt) => {
    const exponent = Math.max(0, attempt - 1)
    const raw = baseMs * factor ** exponent
    const capped = Number.isFinite(raw) ? Math.min(maxMs, raw) : maxMs
    return Math.round(capped * (1 - jitter * random()))
  }
}

/**
 * Guards a caller's backoff: a result that is not a finite, non-negative number of milliseconds (a table
 * looked up past its end, a NaN, a throw) is replaced by the default exponential backoff's and reported
 * through `onInvalid`, so a bad backoff never leaves a job without a run time.
 */
export const checkedBackoff = (backoff: Backoff, onInvalid: (error: RangeError) => void): Backoff => {
  const fallback = exponentialBackoff()
  return (attempt) => {
    let got: string
    try {
      const ms: unknown = backoff(attempt)
      if (typeof ms === "number" && Number.isFinite(ms) && ms >= 0) return Math.round(ms)
      got = typeof ms === "number" ? String(ms) : (JSON.stringify(ms) ?? String(ms))
    } catch (thrown) {
      got = `an error (${thrown instanceof Error ? thrown.message : String(thrown)})`
    }
    onInvalid(
      new RangeError(
        `The backoff gave ${got} for attempt ${attempt}; the default backoff was used instead. A backoff must return a finite, non-negative number of milliseconds.`,
      ),
    )
    return fallback(attempt)
  }
}
