/**
 * Work a test's queues until they are idle, one job at a time through the real worker path.
 */
import { defaultQueue } from "@awa/model/Limits"
import type { Db } from "@awa/runtime/PgExecutor"
import { type WorkOptions, type WorkOutcome, type WorkResult, workOneInQueue } from "./WorkOne.js"

/** Options of {@link drain}. */
export interface DrainOptions extends WorkOptions {
  /**
   * The queues to work (default: the default queues of the registered handlers' definitions, else
   * `"default"`).
   */
  readonly queues?: ReadonlyArray<string>
  /**
   * The most jobs to work before giving up with an error (default 10000): a handler that keeps snoozing
   * with no delay, or keeps enqueuing, would otherwise never let the queues go idle.
   */
  readonly maxJobs?: number
}

/** What {@link drain} did: every job's result in the order worked, and the count per outcome. */
export interface DrainResult {
  /** One result per job worked (never `none`). */
  readonly results: ReadonlyArray<Exclude<WorkResult, { readonly outcome: "none" }>>
  /** How many jobs ended in each outcome. */
  readonly counts: Readonly<Record<Exclude<WorkOutcome, "none">, number>>
}

/**
 * Works the queues until none has an available or due job: each queue in turn until it is empty, then
 * again from the first, since handlers may enqueue into any queue. Scheduled and retrying jobs whose run
 * time has come are worked too (each claim first makes the queue's due jobs available, see
 * `workOneInQueue`); those not due yet are left alone: make them due first with `makeJobsDue` when a test
 * wants them worked. Throws when more than `maxJobs` jobs were worked.
 */
export const drain = async (db: Db, options: DrainOptions = {}): Promise<DrainResult> => {
  const { queues: given, maxJobs = 10_000, ...work } = options
  const fromHandlers = [
    ...new Set((work.handlers ?? []).map((h) => h.definition.defaults.queue ?? defaultQueue)),
  ]
  const queues = given ?? (fromHandlers.length === 0 ? [defaultQueue] : fromHandlers)
  const results: Array<Exclude<WorkResult, { readonly outcome: "none" }>> = []
  const counts = { completed: 0, retried: 0, snoozed: 0, cancelled: 0, failed: 0, stale: 0 }
  for (let busy = true; busy; ) {
    busy = false
    for (const queue of queues) {
      for (;;) {
        const result = await workOneInQueue(db, queue, work)
        if (result.outcome === "none") break
        busy = true
        results.push(result)
        counts[result.outcome]++
        if (results.length >= maxJobs) {
          throw new Error(
            `drain: worked ${results.length} jobs and the queues (${queues.join(", ")}) are still not idle ` +
              `(${JSON.stringify(counts)}). A handler may keep snoozing with no delay or keep enqueuing; ` +
              "raise maxJobs if this is expected.",
          )
        }
      }
    }
  }
  return { results, counts }
}
