import { Schema } from "effect"

/** Every state a job can be in, in lifecycle order. A dead-letter queue is a separate table, not a state. */
export const jobStates = [
  "scheduled",
  "available",
  "running",
  "completed",
  "retryable",
  "failed",
  "cancelled",
  "waiting_external",
] as const

/** A job's state: `scheduled` (waiting for `run_at`), `available`, `running`, the terminal states, and so on. */
export type JobState = (typeof jobStates)[number]

/** The schema of a `JobState` (for decoding CLI input or JSON). */
export const JobStateSchema = Schema.Literals(jobStates)

/** States a job never leaves on its own: it stays there until retention deletes it or an operator retries it. */
export const terminalJobStates: ReadonlyArray<JobState> = ["completed", "failed", "cancelled"]

/**
 * States a job moves between on its own (claims, retries, snoozes, promotion): a unique job must hold its
 * key in all of them, or such a move could run into another job that took the key meanwhile.
 */
export const nonTerminalJobStates: ReadonlyArray<JobState> = jobStates.filter(
  (state) => !terminalJobStates.includes(state),
)

/**
 * The states in which a unique job holds its key unless its unique options say otherwise: every state
 * except `failed` and `cancelled`, so a duplicate of a completed job is refused until retention deletes it
 * (use a time bucket, `unique.byPeriod`, to allow one job per period instead).
 */
export const defaultUniqueStates: ReadonlyArray<JobState> = [
  "scheduled",
  "available",
  "running",
  "completed",
  "retryable",
  "waiting_external",
]

/** True when `value` is one of the job states. */
export const isJobState = (value: unknown): value is JobState =>
  typeof value === "string" && (jobStates as ReadonlyArray<string>).includes(value)

/** True when the state is terminal (`completed`, `failed` or `cancelled`). */
export const isTerminalJobState = (state: JobState): boolean => terminalJobStates.includes(state)
