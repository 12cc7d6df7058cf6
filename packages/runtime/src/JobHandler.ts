import type { AnyJobDefinition, JobArgsOf } from "@awa/model/JobDefinition"
import type { ClaimedJob } from "./Engine.js"
import type { JobOutcome } from "./JobOutcome.js"

/** Why a running handler's signal fired. */
export type AbortReason = "cancelled" | "deadline" | "shutdown" | "lost"

const abortMessages: Record<AbortReason, string> = {
  cancelled: "the job was cancelled",
  deadline: "the attempt passed its deadline",
  shutdown: "the worker is shutting down and released the job",
  lost: "the attempt no longer owns the job (it was rescued or cancelled elsewhere)",
}

/** The `reason` of an aborted handler signal: says why, so handlers can tell shutdown from cancel. */
export class JobAbortedError extends Error {
  /** Why the signal fired. */
  readonly reason: AbortReason
  /** The job id. */
  readonly jobId: string

  constructor(reason: AbortReason, jobId: string) {
    super(`Job ${jobId}: ${abortMessages[reason]}. Stop work and return.`)
    this.name = "JobAbortedError"
    this.reason = reason
    this.jobId = jobId
  }
}

/** What a handler receives besides its args. */
export interface JobContext {
  /** The running attempt's job (id, run lease, attempt number, queue, tags, metadata...). */
  readonly job: ClaimedJob
  /**
   * Fires when the job is cancelled (also from another process), when the attempt passes its deadline,
   * when the worker shuts down and releases the job, or when the attempt was rescued; its `reason` is a
   * `JobAbortedError`.
   */
  readonly signal: AbortSignal
}

/** What a handler may return: nothing (completed) or a `JobOutcome`, possibly as a promise. */
// biome-ignore lint/suspicious/noConfusingVoidType: handlers written as `async () => {}` return Promise<void>.
export type HandlerResult = void | JobOutcome | Promise<void | JobOutcome>

/** A job definition paired with the function that works its jobs. */
export interface JobHandler<D extends AnyJobDefinition = AnyJobDefinition> {
  /** The definition whose kind this handler works. */
  readonly definition: D
  /** Works one job: return to complete, throw to retry with backoff, or return/throw a `JobOutcome`. */
  readonly run: (args: JobArgsOf<D>, context: JobContext) => HandlerResult
}

/**
 * Pairs a definition with its handler. Args arrive decoded by the definition's schema (a stored job whose
 * args no longer decode fails without retrying).
 *
 * @example
 * const sendEmail = handle(SendEmail, async ({ to }, { signal }) => { await mailer.send(to, { signal }) })
 */
export const handle = <D extends AnyJobDefinition>(
  definition: D,
  run: (args: JobArgsOf<D>, context: JobContext) => HandlerResult,
): JobHandler<D> => ({ definition, run })

/** True when `value` looks like a `JobHandler` (used to find handlers among a tasks module's exports). */
export const isJobHandler = (value: unknown): value is JobHandler =>
  typeof value === "object" &&
  value !== null &&
  "definition" in value &&
  "run" in value &&
  typeof (value as JobHandler).run === "function" &&
  typeof (value as JobHandler).definition?.kind === "string"
