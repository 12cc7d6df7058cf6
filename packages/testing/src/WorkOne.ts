/**
 * Work exactly one job in a test, through the runtime's real worker path (`Worker.workOne`), and see what
 * happened to it: none, completed, retried, snoozed, cancelled or failed, with the job as stored after.
 */

import type { AnyJobDefinition } from "@awa/model/JobDefinition"
import { defaultQueue } from "@awa/model/Limits"
import { type Admin, makeAdmin } from "@awa/runtime/Admin"
import type { Backoff } from "@awa/runtime/Backoff"
import type { ClaimedJob, DeadLetter, Engine, EngineName, ErrorInput, Job } from "@awa/runtime/Engine"
import { isJobHandler, type JobHandler } from "@awa/runtime/JobHandler"
import type { Db } from "@awa/runtime/PgExecutor"
import { Worker } from "@awa/runtime/Worker"
import type { StaleOperation } from "@awa/runtime/WorkerEvent"
import type { Duration } from "effect"
import { resolveTestEngine } from "./TestEngine.js"

/** Settings shared by {@link workOne}, {@link workOneInQueue} and `drain`. */
export interface WorkOptions {
  /**
   * The registered handlers, one per kind, as given to `Worker.start`. A job whose kind has no handler is
   * treated as the worker treats it: an `unknown_kind` error, retried.
   */
  readonly handlers?: ReadonlyArray<JobHandler>
  /** The engine (default: `AWA_TEST_ENGINE`, else canonical). */
  readonly engine?: EngineName | Engine
  /** Retry delays after errors (default: the worker's default exponential backoff). */
  readonly backoff?: Backoff
  /** Attempt deadline for jobs without their own timeout (default: the worker's, 30 minutes). */
  readonly defaultTimeout?: Duration.Input
}

/** Options of {@link workOne}: {@link WorkOptions} plus the queue to claim from. */
export interface WorkOneOptions extends WorkOptions {
  /** The queue to claim from (default: the definition's default queue, else `"default"`). */
  readonly queue?: string
}

/** Options of {@link workOneInQueue}: {@link WorkOptions} plus a handler that takes precedence. */
export interface WorkOneInQueueOptions extends WorkOptions {
  /** A handler used for its kind instead of the registered one. */
  readonly handler?: JobHandler
  /** Claim only a job of these kinds (default: any kind); jobs of other kinds stay available. */
  readonly kinds?: ReadonlyArray<string>
}

/** What a worked job's outcome has in common: the attempt as claimed, and the job as stored afterwards. */
interface Worked {
  /** The attempt as the handler saw it (attempt number, run lease, args as stored, ...). */
  readonly claimed: ClaimedJob
}

/**
 * What {@link workOne} did. `none`: no job was available. Otherwise the outcome that was written, with
 * `job` read back after the write (for `failed`, `job` is null and `deadLetter` set when the job went to
 * the dead-letter queue). `stale`: the outcome changed nothing because the attempt lost the job meanwhile
 * (for example the job was cancelled while its handler ran).
 */
export type WorkResult =
  | { readonly outcome: "none" }
  | (Worked & { readonly outcome: "completed"; readonly job: Job })
  | (Worked & {
      readonly outcome: "retried"
      readonly job: Job
      /** The error recorded for the attempt. */
      readonly error: ErrorInput
      /** The delay before the next attempt, in milliseconds. */
      readonly delayMs: number
    })
  | (Worked & {
      readonly outcome: "snoozed"
      readonly job: Job
      /** The snooze delay, in milliseconds. */
      readonly delayMs: number
    })
  | (Worked & {
      readonly outcome: "cancelled"
      readonly job: Job
      /** The reason recorded. */
      readonly reason: string
    })
  | (Worked & {
      readonly outcome: "failed"
      /** The failed job, or null when it moved to the dead-letter queue. */
      readonly job: Job | null
      /** The dead-letter entry, when the job moved to the dead-letter queue. */
      readonly deadLetter: DeadLetter | null
      /** The error recorded. */
      readonly error: ErrorInput
    })
  | (Worked & {
      readonly outcome: "stale"
      /** The job as it is now (null when it no longer exists). */
      readonly job: Job | null
      /** The write that changed nothing. */
      readonly operation: StaleOperation
    })

/** Every outcome a {@link WorkResult} can report. */
export type WorkOutcome = WorkResult["outcome"]

const isJobNotFound = (error: unknown): boolean => (error as { _tag?: string } | null)?._tag === "JobNotFound"

const readJob = async (admin: Admin, db: Db, id: string): Promise<Job | null> => {
  try {
    return await admin.getJob(db, id)
  } catch (error) {
    if (isJobNotFound(error)) return null
    throw error
  }
}

const readDeadLetter = async (admin: Admin, db: Db, id: string): Promise<DeadLetter | null> => {
  try {
    return await admin.getDlq(db, id)
  } catch (error) {
    if (isJobNotFound(error)) return null
    throw error
  }
}

const mustRead = (job: Job | null, id: string, outcome: string): Job => {
  if (job === null) throw new Error(`workOne: job ${id} was ${outcome} but can no longer be read.`)
  return job
}

/**
 * Claims the next available job of `queue` (highest priority, then oldest; of `options.kinds` when given)
 * and works it with the given handler when its kind matches, else with the registered handler for its
 * kind, exactly as a running worker would: args decoded by the definition, the handler's return or throw
 * turned into the outcome (complete, retry with backoff, snooze, cancel, fail, DLQ), the write guarded by
 * the attempt's run lease. Scheduled and retrying jobs of the queue whose run time has come are made
 * available first (through the engine's `makeDue`, as maintenance would promote them), so a due job is
 * worked even though no maintenance runs; jobs not due yet are left alone (make them due with
 * `makeJobsDue`). Resolves once the outcome is written. `db` may be a pool, or a client inside an open
 * transaction.
 */
export const workOneInQueue = async (
  db: Db,
  queue: string,
  options: WorkOneInQueueOptions = {},
): Promise<WorkResult> => {
  const engine = resolveTestEngine(options.engine)
  const admin = makeAdmin({ engine })
  // No maintenance runs here to promote jobs whose time has come: make this queue's due jobs available.
  await admin.makeDue(db, { queue, within: 0 })
  const given = options.handler
  const handlers = [
    ...(given === undefined ? [] : [given]),
    ...(options.handlers ?? []).filter((h) => h.definition.kind !== given?.definition.kind),
  ]
  const event = await Worker.workOne({
    db,
    queue,
    handlers,
    engine,
    ...(options.kinds === undefined ? {} : { kinds: options.kinds }),
    ...(options.backoff === undefined ? {} : { backoff: options.backoff }),
    ...(options.defaultTimeout === undefined ? {} : { defaultTimeout: options.defaultTimeout }),
  })
  if (event === null) return { outcome: "none" }
  const claimed = event.job
  const job = await readJob(admin, db, claimed.id)
  switch (event.type) {
    case "completed":
      return { outcome: "completed", claimed, job: mustRead(job, claimed.id, "completed") }
    case "retried":
      return {
        outcome: "retried",
        claimed,
        job: mustRead(job, claimed.id, "retried"),
        error: event.error,
        delayMs: event.delayMs,
      }
    case "snoozed":
      return {
        outcome: "snoozed",
        claimed,
        job: mustRead(job, claimed.id, "snoozed"),
        delayMs: event.delayMs,
      }
    case "cancelled":
      return {
        outcome: "cancelled",
        claimed,
        job: mustRead(job, claimed.id, "cancelled"),
        reason: event.reason,
      }
    case "failed":
      return {
        outcome: "failed",
        claimed,
        job,
        deadLetter: event.deadLettered ? await readDeadLetter(admin, db, claimed.id) : null,
        error: event.error,
      }
    case "stale":
      return { outcome: "stale", claimed, job, operation: event.operation }
  }
}

/**
 * Works exactly one job of the definition's kind: given a handler (`handle(Definition, fn)`), claims the
 * next available job of that kind in the definition's queue (or `options.queue`) and runs that handler;
 * given a definition, uses the handler registered for its kind in `options.handlers` (throwing before
 * anything is claimed when there is none). It never claims a job of another kind: those stay available
 * in their place (use {@link workOneInQueue} to work whatever comes next). See {@link workOneInQueue} for
 * the semantics and the result.
 */
export const workOne = async (
  db: Db,
  job: JobHandler | AnyJobDefinition,
  options: WorkOneOptions = {},
): Promise<WorkResult> => {
  const definition = isJobHandler(job) ? job.definition : job
  const handler = isJobHandler(job)
    ? job
    : options.handlers?.find((h) => h.definition.kind === definition.kind)
  if (handler === undefined) {
    const known = (options.handlers ?? []).map((h) => h.definition.kind)
    throw new Error(
      `workOne: no handler is registered for kind "${definition.kind}" (registered: ${known.length === 0 ? "none" : known.join(", ")}). ` +
        "Pass a handler instead of the definition (workOne(db, handle(Definition, fn))), or register one in options.handlers.",
    )
  }
  const { queue, ...rest } = options
  return workOneInQueue(db, queue ?? definition.defaults.queue ?? defaultQueue, {
    ...rest,
    handler,
    kinds: [definition.kind],
  })
}
