/**
 * A small in-memory model of the engine contract, for the model-based test: which jobs exist, their state,
 * attempt and run lease, how many errors each recorded, and which unique keys are held. Each operation
 * says what the contract predicts (applied or stale, conflict or inserted) and moves the model on.
 */

import type { JobState } from "@awa/model/JobState"
import { defaultUniqueStates } from "@awa/model/JobState"
import type { AttemptRef } from "@awa/runtime/Engine"

/** A job as the model knows it. */
export interface ModelJob {
  readonly id: string
  readonly queue: string
  /** The args' `n` for unique jobs (the key is the kind and args), else null. */
  readonly uniqueN: number | null
  state: JobState
  attempt: number
  runLease: number
  errors: number
}

/** The queues the model uses. */
export const modelQueues = ["model-a", "model-b"] as const

/** Attempts allowed per job in the model. */
export const modelMaxAttempts = 3

const terminal: ReadonlyArray<JobState> = ["completed", "failed", "cancelled"]

/** The model: jobs by id, and every attempt ever started (current or stale), in claim order. */
export class JobModel {
  readonly jobs = new Map<string, ModelJob>()
  readonly attempts: Array<AttemptRef> = []

  /** The job holding the unique key of `n`, if any. */
  holder(n: number): ModelJob | undefined {
    for (const job of this.jobs.values()) {
      if (job.uniqueN === n && defaultUniqueStates.includes(job.state)) return job
    }
    return undefined
  }

  /** Records an inserted job. */
  inserted(id: string, queue: string, uniqueN: number | null, scheduled: boolean): void {
    this.jobs.set(id, {
      id,
      queue,
      uniqueN,
      state: scheduled ? "scheduled" : "available",
      attempt: 0,
      runLease: 0,
      errors: 0,
    })
  }

  /** The jobs of `queue` a claim may return. */
  claimable(queue: string): Array<ModelJob> {
    return [...this.jobs.values()].filter((j) => j.queue === queue && j.state === "available")
  }

  /** Records a claim of `id`; returns the attempt it started. */
  claimed(id: string): AttemptRef {
    const job = this.jobs.get(id)!
    job.state = "running"
    job.attempt++
    job.runLease++
    const ref = { id, runLease: job.runLease }
    this.attempts.push(ref)
    return ref
  }

  /** The job `ref` still owns (running under that lease), if any: an attempt write applies only then. */
  owned(ref: AttemptRef): ModelJob | undefined {
    const job = this.jobs.get(ref.id)
    return job !== undefined && job.state === "running" && job.runLease === ref.runLease ? job : undefined
  }

  /** The running jobs. */
  running(): Array<ModelJob> {
    return [...this.jobs.values()].filter((j) => j.state === "running")
  }

  /** Whether a job is terminal. */
  static isTerminal(job: ModelJob): boolean {
    return terminal.includes(job.state)
  }

  /** Counts per state for `queue`. */
  counts(queue: string): Record<string, number> {
    const counts: Record<string, number> = {}
    for (const job of this.jobs.values()) {
      if (job.queue === queue) counts[job.state] = (counts[job.state] ?? 0) + 1
    }
    return counts
  }
}
