import type { ClaimedJob, ErrorInput } from "./Engine.js"

/** Which attempt write found the attempt no longer its own. */
export type StaleOperation = "complete" | "retry" | "snooze" | "cancel" | "fail" | "heartbeat"

/**
 * A lifecycle event of a worker (or its maintenance). Times are in milliseconds: `waitMs` from the job's
 * run time to its claim (database clock), `durationMs` from claim to the handler's outcome.
 */
export type WorkerEvent =
  | { readonly type: "claimed"; readonly job: ClaimedJob; readonly waitMs: number }
  | { readonly type: "completed"; readonly job: ClaimedJob; readonly durationMs: number }
  | {
      readonly type: "retried"
      readonly job: ClaimedJob
      readonly error: ErrorInput
      readonly delayMs: number
      readonly durationMs: number
    }
  | {
      readonly type: "snoozed"
      readonly job: ClaimedJob
      readonly delayMs: number
      readonly durationMs: number
    }
  | {
      readonly type: "cancelled"
      readonly job: ClaimedJob
      readonly reason: string
      readonly durationMs: number
    }
  | {
      readonly type: "failed"
      readonly job: ClaimedJob
      readonly error: ErrorInput
      readonly deadLettered: boolean
      readonly durationMs: number
    }
  | {
      /** A write for an attempt changed nothing: the attempt was rescued or cancelled meanwhile. */
      readonly type: "stale"
      readonly job: ClaimedJob
      readonly operation: StaleOperation
    }
  | { readonly type: "released"; readonly jobs: ReadonlyArray<ClaimedJob> }
  | {
      /**
       * At shutdown, handlers still running after their jobs were released and their signals fired: they
       * ignore the signal. Their jobs are back in their queues; whatever these handlers still do may overlap
       * the next attempt, and their outcomes are not written.
       */
      readonly type: "abandoned"
      readonly jobs: ReadonlyArray<ClaimedJob>
    }
  | { readonly type: "leadership"; readonly leader: boolean; readonly holder: string }
  | {
      readonly type: "maintenance"
      readonly promoted: number
      readonly rescued: number
      readonly deleted: number
    }
  | { readonly type: "error"; readonly context: string; readonly error: unknown }

/** A function receiving worker events. Exceptions it throws are ignored. */
export type WorkerEventListener = (event: WorkerEvent) => void

/** A set of listeners; `active` lets hot paths skip building events nobody reads. */
export class EventHub {
  readonly #listeners = new Set<WorkerEventListener>()

  /** True when at least one listener is subscribed. */
  get active(): boolean {
    return this.#listeners.size > 0
  }

  /** Adds a listener and returns the function that removes it. */
  subscribe(listener: WorkerEventListener): () => void {
    this.#listeners.add(listener)
    return () => {
      this.#listeners.delete(listener)
    }
  }

  /** Delivers an event to every listener. */
  emit(event: WorkerEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event)
      } catch {
        // A listener's failure must never stop the worker.
      }
    }
  }
}
