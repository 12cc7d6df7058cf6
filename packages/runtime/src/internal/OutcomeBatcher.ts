// Batches attempt outcomes so many jobs share one statement and one commit: one flush at a time, started
// after a short delay (or at once when the buffer is full); outcomes arriving during a flush go into the
// next one, so batches grow with load. A failed group stays buffered and is retried: no outcome is lost
// while the database is away. A group the database refuses for its data (which no retry would fix) is split
// until the refused outcome stands alone; that one is replaced by a failure of its job that says why, so one
// bad row never holds back the others.
import { DatabaseError } from "../DatabaseError.js"
import type { AttemptRef, AttemptWriteResult, ClaimedJob, Engine, ErrorInput } from "../Engine.js"
import type { Executor } from "../PgExecutor.js"
import type { EventHub, StaleOperation } from "../WorkerEvent.js"

/** A finished attempt, with what the worker knows about it. */
export interface FinishedAttempt {
  readonly job: ClaimedJob
  /** performance.now() at claim. */
  readonly startedAt: number
  /** performance.now() when the handler settled. */
  readonly finishedAt: number
  /** True when the job was cancelled while running (a stale write is then expected, reported as cancelled). */
  readonly cancelled: boolean
}

/** An outcome to write. */
export type PendingOutcome =
  | { readonly type: "complete"; readonly attempt: FinishedAttempt }
  | {
      readonly type: "retry"
      readonly attempt: FinishedAttempt
      readonly delayMs: number
      readonly error: ErrorInput
    }
  | { readonly type: "snooze"; readonly attempt: FinishedAttempt; readonly delayMs: number }
  | { readonly type: "cancel"; readonly attempt: FinishedAttempt; readonly reason: string }
  | {
      readonly type: "fail"
      readonly attempt: FinishedAttempt
      readonly error: ErrorInput
      /** Set on the failure that replaces an outcome the database refused. */
      readonly replaces?: PendingOutcome["type"]
    }

/** Counters of outcomes written. */
export interface OutcomeTotals {
  completed: number
  retried: number
  snoozed: number
  cancelled: number
  failed: number
  stale: number
}

// A claimed job is itself an AttemptRef (id, runLease): no copy needed.
const refOf = (p: PendingOutcome): AttemptRef => p.attempt.job

// The database refused the rows themselves (a data exception or an integrity violation, SQLSTATE classes
// 22 and 23), or the write failed before reaching it: retrying the same rows would fail the same way.
const isRefusal = (error: unknown): boolean =>
  !(error instanceof DatabaseError) || /^2[23]/.test(error.sqlState ?? "")

// Waits for every task, then fails with the first failure (so no rejection goes unobserved).
const allOrFirstFailure = async (tasks: ReadonlyArray<Promise<void>>): Promise<void> => {
  const settled = await Promise.allSettled(tasks)
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === "rejected")
  if (failed !== undefined) throw failed.reason
}

/** The outcome batcher. */
export class OutcomeBatcher {
  readonly #engine: Engine
  readonly #db: Executor
  readonly #events: EventHub
  readonly #delayMs: number
  readonly #batchSize: number
  readonly #onCompleted: (count: number) => void
  #buffer: Array<PendingOutcome> = []
  #timer: NodeJS.Timeout | undefined
  #flushing: Promise<void> | undefined
  #failures = 0
  #closed = false
  #drainWaiters: Array<() => void> = []
  /** Totals of outcomes applied (and stale writes seen). */
  readonly totals: OutcomeTotals = { completed: 0, retried: 0, snoozed: 0, cancelled: 0, failed: 0, stale: 0 }

  constructor(options: {
    engine: Engine
    db: Executor
    events: EventHub
    delayMs: number
    batchSize: number
    onCompleted: (count: number) => void
  }) {
    this.#engine = options.engine
    this.#db = options.db
    this.#events = options.events
    this.#delayMs = options.delayMs
    this.#batchSize = options.batchSize
    this.#onCompleted = options.onCompleted
  }

  /** Outcomes not yet written. */
  get size(): number {
    return this.#buffer.length
  }

  /** Buffers an outcome and schedules a flush (after `abandon`, reports it as dropped instead). */
  add(outcome: PendingOutcome): void {
    if (this.#closed) {
      this.#dropped([outcome])
      return
    }
    this.#buffer.push(outcome)
    this.#schedule()
  }

  #schedule(): void {
    if (this.#flushing !== undefined || this.#closed) return
    if (this.#buffer.length >= this.#batchSize) {
      if (this.#timer !== undefined) clearTimeout(this.#timer)
      this.#timer = undefined
      this.#startFlush()
      return
    }
    if (this.#timer !== undefined) return
    const delay = this.#failures > 0 ? Math.min(5000, 50 * 2 ** Math.min(this.#failures, 7)) : this.#delayMs
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.#startFlush()
    }, delay)
  }

  #startFlush(): void {
    if (this.#flushing !== undefined || this.#buffer.length === 0) {
      this.#notifyDrained()
      return
    }
    this.#flushing = this.#flush().finally(() => {
      this.#flushing = undefined
      if (this.#buffer.length > 0) this.#schedule()
      else this.#notifyDrained()
    })
  }

  #notifyDrained(): void {
    if (this.#buffer.length > 0 || this.#flushing !== undefined) return
    const waiters = this.#drainWaiters
    this.#drainWaiters = []
    for (const w of waiters) w()
  }

  /** Flushes now (not waiting for the delay) and resolves when everything buffered so far is written. */
  async drain(): Promise<void> {
    if (this.#buffer.length === 0 && this.#flushing === undefined) return
    const drained = new Promise<void>((resolve) => this.#drainWaiters.push(resolve))
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer)
      this.#timer = undefined
    }
    if (this.#flushing === undefined) this.#startFlush()
    await drained
  }

  /**
   * Stops for good (used when a drain timed out at shutdown): drops the scheduled flush and the buffer; a
   * write still in flight is not retried, and later outcomes are dropped. Their jobs stay running under
   * this worker's leases until maintenance rescues them.
   */
  abandon(): ReadonlyArray<PendingOutcome> {
    this.#closed = true
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
    const dropped = this.#buffer
    this.#buffer = []
    this.#notifyDrained()
    return dropped
  }

  async #flush(): Promise<void> {
    const batch = this.#buffer
    this.#buffer = []
    const groups = {
      complete: [] as Array<PendingOutcome & { type: "complete" }>,
      retry: [] as Array<PendingOutcome & { type: "retry" }>,
      snooze: [] as Array<PendingOutcome & { type: "snooze" }>,
      cancel: [] as Array<PendingOutcome & { type: "cancel" }>,
      fail: [] as Array<PendingOutcome & { type: "fail" }>,
    }
    for (const p of batch) (groups[p.type] as Array<PendingOutcome>).push(p)
    const db = this.#db
    const engine = this.#engine
    const tasks: Array<Promise<void>> = []
    const run = <P extends PendingOutcome, R extends AttemptWriteResult>(
      items: Array<P>,
      operation: StaleOperation,
      write: (items: Array<P>) => Promise<R>,
      applied: (items: Array<P>, result: R) => void,
    ) => {
      const attempt = (group: Array<P>): Promise<void> =>
        write(group).then(
          (result) => {
            this.#reportStale(group, result, operation)
            applied(group, result)
          },
          (error: unknown) => {
            if (isRefusal(error)) {
              if (group.length === 1) return this.#refused(group[0]!, error)
              const half = group.length >> 1
              return allOrFirstFailure([attempt(group.slice(0, half)), attempt(group.slice(half))])
            }
            // Keep the outcomes for the next flush; the write is idempotent under (id, run_lease).
            if (!this.#closed) this.#buffer = (group as Array<PendingOutcome>).concat(this.#buffer)
            throw error
          },
        )
      if (items.length > 0) tasks.push(attempt(items))
    }
    run(
      groups.complete,
      "complete",
      (items) => engine.complete(db, items.map(refOf)),
      (items, result) => {
        const ok = this.#appliedSet(result)
        let n = result.stale.length === 0 ? items.length : 0
        if (n === 0 || this.#events.active) {
          n = 0
          for (const p of items) {
            if (!ok.has(p.attempt.job.id)) continue
            n++
            if (this.#events.active) {
              this.#events.emit({ type: "completed", job: p.attempt.job, durationMs: duration(p) })
            }
          }
        }
        this.totals.completed += n
        this.#onCompleted(n)
      },
    )
    run(
      groups.retry,
      "retry",
      (items) =>
        engine.retry(
          db,
          items.map((p) => ({
            ref: refOf(p),
            attempt: p.attempt.job.attempt,
            delayMs: p.delayMs,
            error: p.error,
          })),
        ),
      (items, result) => {
        const ok = this.#appliedSet(result)
        for (const p of items) {
          if (!ok.has(p.attempt.job.id)) continue
          this.totals.retried++
          this.#events.emit({
            type: "retried",
            job: p.attempt.job,
            error: p.error,
            delayMs: p.delayMs,
            durationMs: duration(p),
          })
        }
      },
    )
    run(
      groups.snooze,
      "snooze",
      (items) =>
        engine.snooze(
          db,
          items.map((p) => ({ ref: refOf(p), delayMs: p.delayMs })),
        ),
      (items, result) => {
        const ok = this.#appliedSet(result)
        for (const p of items) {
          if (!ok.has(p.attempt.job.id)) continue
          this.totals.snoozed++
          this.#events.emit({
            type: "snoozed",
            job: p.attempt.job,
            delayMs: p.delayMs,
            durationMs: duration(p),
          })
        }
      },
    )
    run(
      groups.cancel,
      "cancel",
      (items) =>
        engine.cancelAttempts(
          db,
          items.map((p) => ({
            ref: refOf(p),
            attempt: p.attempt.job.attempt,
            error: { kind: "cancelled" as const, message: p.reason },
          })),
        ),
      (items, result) => {
        const ok = this.#appliedSet(result)
        for (const p of items) {
          if (!ok.has(p.attempt.job.id)) continue
          this.totals.cancelled++
          this.#events.emit({
            type: "cancelled",
            job: p.attempt.job,
            reason: p.reason,
            durationMs: duration(p),
          })
        }
      },
    )
    run(
      groups.fail,
      "fail",
      (items) =>
        engine.fail(
          db,
          items.map((p) => ({ ref: refOf(p), attempt: p.attempt.job.attempt, error: p.error })),
        ),
      (items, result) => {
        const ok = this.#appliedSet(result)
        const dead = new Set(result.deadLettered)
        for (const p of items) {
          if (!ok.has(p.attempt.job.id)) continue
          this.totals.failed++
          this.#events.emit({
            type: "failed",
            job: p.attempt.job,
            error: p.error,
            deadLettered: dead.has(p.attempt.job.id),
            durationMs: duration(p),
          })
        }
      },
    )
    try {
      await allOrFirstFailure(tasks)
      this.#failures = 0
    } catch (error) {
      this.#failures++
      this.#events.emit({ type: "error", context: "write outcomes", error })
    }
  }

  // An outcome the database refused on its own: its job fails instead, with a record that says why (so the
  // job does not sit in running until rescued). When even that failure is refused, the outcome is dropped
  // and maintenance rescues the job.
  #refused(outcome: PendingOutcome, error: unknown): void {
    const detail =
      error instanceof DatabaseError
        ? `${error.detail} (SQLSTATE ${error.sqlState})`
        : error instanceof Error
          ? error.message
          : String(error)
    const job = outcome.attempt.job
    this.#events.emit({
      type: "error",
      context: `write the ${outcome.type} outcome of job ${job.id}`,
      error,
    })
    if (outcome.type === "fail" && outcome.replaces !== undefined) {
      this.#dropped([outcome])
      return
    }
    if (this.#closed) return
    this.#buffer.push({
      type: "fail",
      attempt: outcome.attempt,
      replaces: outcome.type,
      error: {
        kind: "failed",
        name: "OutcomeRefused",
        message: `The database refused to record this attempt's ${outcome.type} outcome, so the job failed instead: ${detail}`,
      },
    })
  }

  #dropped(outcomes: ReadonlyArray<PendingOutcome>): void {
    const ids = outcomes.map((o) => o.attempt.job.id).join(", ")
    this.#events.emit({
      type: "error",
      context: "write outcomes",
      error: new Error(
        `The outcomes of jobs ${ids} could not be written; their jobs stay running until maintenance rescues them.`,
      ),
    })
  }

  #appliedSet(result: AttemptWriteResult): { has: (id: string) => boolean } {
    if (result.stale.length === 0) return everything
    const ok = new Set<string>()
    for (const ref of result.applied) ok.add(ref.id)
    return ok
  }

  #reportStale(
    items: ReadonlyArray<PendingOutcome>,
    result: AttemptWriteResult,
    operation: StaleOperation,
  ): void {
    if (result.stale.length === 0) return
    const stale = new Set(result.stale.map((r) => r.id))
    for (const p of items) {
      if (!stale.has(p.attempt.job.id)) continue
      if (p.attempt.cancelled) {
        // Cancelled while running: the cancel already finalized the job; report it as such.
        this.totals.cancelled++
        this.#events.emit({
          type: "cancelled",
          job: p.attempt.job,
          reason: "cancelled while running",
          durationMs: duration(p),
        })
        continue
      }
      this.totals.stale++
      this.#events.emit({ type: "stale", job: p.attempt.job, operation })
    }
  }
}

const everything = { has: (_id: string): boolean => true }

const duration = (p: PendingOutcome): number => p.attempt.finishedAt - p.attempt.startedAt
