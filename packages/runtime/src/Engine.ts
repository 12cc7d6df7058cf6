import type { ResolvedInsertOptions } from "@awa/model/InsertOptions"
import type { JobState } from "@awa/model/JobState"
import type { Executor } from "./PgExecutor.js"

/** The name of a storage engine. Only `canonical` exists today; `queue_storage` arrives later. */
export type EngineName = "canonical" | "queue_storage"

/** Identifies one attempt of a job: every write for an attempt must match both fields. */
export interface AttemptRef {
  /** The job id (a bigint, as a decimal string). */
  readonly id: string
  /** The attempt's run lease, incremented by every claim. */
  readonly runLease: number
}

/** What kind of event an error record describes. */
export type JobErrorKind =
  | "error"
  | "deadline"
  | "rescued"
  | "unknown_kind"
  | "invalid_args"
  | "cancelled"
  | "failed"

/** One recorded error on a job: which attempt, when (database clock), what happened. */
export interface JobErrorRecord {
  /** The attempt number the error belongs to (0 for errors recorded outside an attempt). */
  readonly attempt: number
  /** ISO timestamp from the database clock. */
  readonly at: string
  /** What happened. */
  readonly kind: JobErrorKind
  /** The error message (truncated to 4000 characters). */
  readonly message: string
  /** The error's name or class, when it had one. */
  readonly name?: string
  /** The stack trace (truncated), when there was one. */
  readonly stack?: string
}

/** A job as stored, for admin reads. */
export interface Job {
  /** The job id (a bigint, as a decimal string). */
  readonly id: string
  /** The job kind. */
  readonly kind: string
  /** The queue. */
  readonly queue: string
  /** The stored (encoded) args, parsed from JSON. */
  readonly args: unknown
  /** The current state. */
  readonly state: JobState
  /** Priority, 1 (highest) .. 4. */
  readonly priority: number
  /** Attempts started so far (snoozes give theirs back). */
  readonly attempt: number
  /** Attempts allowed. */
  readonly maxAttempts: number
  /** The lease of the latest attempt. */
  readonly runLease: number
  /** When the job may run (next). */
  readonly runAt: Date
  /** When the latest attempt started. */
  readonly attemptedAt: Date | null
  /** The latest attempt's last heartbeat. */
  readonly heartbeatAt: Date | null
  /** The latest attempt's deadline. */
  readonly deadlineAt: Date | null
  /** When the job reached a terminal state. */
  readonly finalizedAt: Date | null
  /** Per-attempt timeout chosen at insert, in milliseconds. */
  readonly timeoutMs: number | null
  /** Every recorded error, oldest first. */
  readonly errors: ReadonlyArray<JobErrorRecord>
  /** Tags. */
  readonly tags: ReadonlyArray<string>
  /** Metadata. */
  readonly metadata: Readonly<Record<string, unknown>>
  /** The unique key as hex, when the job is unique. */
  readonly uniqueKey: string | null
  /** States in which the unique key is held, when the job is unique. */
  readonly uniqueStates: ReadonlyArray<JobState> | null
  /** When the job was inserted. */
  readonly createdAt: Date
}

/** A job claimed by a worker: the running attempt's view of it. */
export interface ClaimedJob extends AttemptRef {
  /** The job kind. */
  readonly kind: string
  /** The queue. */
  readonly queue: string
  /** The stored args (not yet decoded by the definition's schema). */
  readonly args: unknown
  /** Priority. */
  readonly priority: number
  /** This attempt's number (1 for the first). */
  readonly attempt: number
  /** Attempts allowed. */
  readonly maxAttempts: number
  /** When the job became due. */
  readonly runAt: Date
  /** When this attempt started (database clock). */
  readonly attemptedAt: Date
  /** Milliseconds from `runAt` to this claim (database clock, sub-millisecond precision): the pickup latency. */
  readonly waitMs: number
  /** This attempt's deadline. */
  readonly deadlineAt: Date
  /** The job's own per-attempt timeout, if it set one. */
  readonly timeoutMs: number | null
  /** Tags. */
  readonly tags: ReadonlyArray<string>
  /** Metadata. */
  readonly metadata: Readonly<Record<string, unknown>>
  /** When the job was inserted. */
  readonly createdAt: Date
}

/**
 * A validated row ready to insert (produced by the producer from a definition, args and options): the
 * resolved insert options, with the unique options reduced to the key and the states that hold it.
 */
export interface InsertRow extends Omit<ResolvedInsertOptions, "unique"> {
  /** Job kind. */
  readonly kind: string
  /** Encoded args as JSON text. */
  readonly argsJson: string
  /** Unique key as lowercase hex, or null. */
  readonly uniqueKey: string | null
  /** States in which the unique key is held (null when not unique). */
  readonly uniqueStates: ReadonlyArray<JobState> | null
}

/** The outcome of inserting one job: inserted, or refused because a unique key is held by another job. */
export type InsertResult =
  | {
      readonly _tag: "Inserted"
      /** The new job's id. */
      readonly id: string
      /** `available`, or `scheduled` when it runs later. */
      readonly state: JobState
      /** When it may run. */
      readonly runAt: Date
    }
  | {
      readonly _tag: "UniqueConflict"
      /** The job holding the unique key. */
      readonly existingId: string
      /** That job's state. */
      readonly existingState: JobState
      /** The unique key (hex). */
      readonly uniqueKey: string
    }

/** What a batched attempt write did: the attempts applied and the stale ones (lease or state moved on). */
export interface AttemptWriteResult {
  /** Attempts whose write took effect. */
  readonly applied: ReadonlyArray<AttemptRef>
  /** Attempts whose write changed nothing: rescued, cancelled or otherwise no longer theirs. */
  readonly stale: ReadonlyArray<AttemptRef>
}

/** An error to record with a retry, cancel or failure. */
export interface ErrorInput {
  /** What happened. */
  readonly kind: JobErrorKind
  /** The message. */
  readonly message: string
  /** The error's name, if any. */
  readonly name?: string
  /** Stack trace, if any. */
  readonly stack?: string
}

/** A retry of an attempt after a delay (0 = available at once), recording an error. */
export interface RetryInput {
  /** The attempt. */
  readonly ref: AttemptRef
  /** The attempt number (recorded with the error). */
  readonly attempt: number
  /** Delay before the next attempt, in ms. */
  readonly delayMs: number
  /** The error. */
  readonly error: ErrorInput
}

/** A snooze of an attempt: run again after the delay without consuming an attempt. */
export interface SnoozeInput {
  /** The attempt. */
  readonly ref: AttemptRef
  /** Delay in ms (0 = available at once). */
  readonly delayMs: number
}

/** A terminal write for an attempt (cancel or fail), recording an error or reason. */
export interface FinalizeInput {
  /** The attempt. */
  readonly ref: AttemptRef
  /** The attempt number (recorded with the error). */
  readonly attempt: number
  /** The error or reason. */
  readonly error: ErrorInput
}

/** The result of failing attempts: like `AttemptWriteResult`, plus which ids went to the DLQ. */
export interface FailResult extends AttemptWriteResult {
  /** Ids moved to the dead-letter queue (their queue has it enabled). */
  readonly deadLettered: ReadonlyArray<string>
}

/** What `Engine.claim` should claim. */
export interface ClaimRequest {
  /** The queue to claim from. */
  readonly queue: string
  /** The most jobs to claim. */
  readonly limit: number
  /** The attempt deadline, in milliseconds from the claim, for jobs without their own timeout. */
  readonly defaultTimeoutMs: number
  /** Only jobs of these kinds (absent: any kind; empty: none). */
  readonly kinds?: ReadonlyArray<string>
}

/** A running attempt that maintenance should rescue. */
export interface RescueCandidate {
  /** The attempt. */
  readonly ref: AttemptRef
  /** Its attempt number. */
  readonly attempt: number
  /** Attempts allowed. */
  readonly maxAttempts: number
  /** The job kind. */
  readonly kind: string
  /** The queue. */
  readonly queue: string
  /** Why: its heartbeat is stale, or its deadline passed. */
  readonly reason: "heartbeat" | "deadline"
}

/** Filters for listing jobs; every field narrows the result. */
export interface JobFilter {
  /** Only this queue. */
  readonly queue?: string
  /** Only this kind. */
  readonly kind?: string
  /** Only these states. */
  readonly states?: ReadonlyArray<JobState>
  /** Only jobs carrying this tag. */
  readonly tag?: string
}

/** Keyset pagination: at most `limit` rows after (or, descending, before) the `cursor` id. */
export interface Page {
  /** Rows per page (default 100, at most 10000). */
  readonly limit?: number
  /** The `nextCursor` of the previous page. */
  readonly cursor?: string
  /** Id order (default ascending). */
  readonly order?: "asc" | "desc"
}

/** One page of results and the cursor for the next (null when this was the last). */
export interface PageOf<T> {
  /** The rows. */
  readonly items: ReadonlyArray<T>
  /** Pass as `cursor` to read the next page; null when there is none. */
  readonly nextCursor: string | null
}

/** A queue's exact job counts per state, DLQ size and settings. */
export interface QueueStats {
  /** The queue. */
  readonly queue: string
  /** Jobs per state (every state present, zero when none). */
  readonly counts: Readonly<Record<JobState, number>>
  /** Entries in the dead-letter queue. */
  readonly deadLettered: number
  /** Whether claiming is paused. */
  readonly paused: boolean
  /** Whether exhausted jobs go to the DLQ. */
  readonly dlqEnabled: boolean
}

/** A queue's settings. */
export interface QueueSettings {
  /** The queue. */
  readonly queue: string
  /** Whether claiming is paused. */
  readonly paused: boolean
  /** When it was paused. */
  readonly pausedAt: Date | null
  /** Whether exhausted jobs go to the DLQ. */
  readonly dlqEnabled: boolean
}

/** A dead-letter queue entry. */
export interface DeadLetter {
  /** The job id it had (and gets back on retry). */
  readonly id: string
  /** Kind. */
  readonly kind: string
  /** Queue. */
  readonly queue: string
  /** Stored args. */
  readonly args: unknown
  /** Priority. */
  readonly priority: number
  /** Attempts used. */
  readonly attempt: number
  /** Attempts allowed. */
  readonly maxAttempts: number
  /** Every recorded error. */
  readonly errors: ReadonlyArray<JobErrorRecord>
  /** Tags. */
  readonly tags: ReadonlyArray<string>
  /** Metadata. */
  readonly metadata: Readonly<Record<string, unknown>>
  /** The last error's message. */
  readonly reason: string
  /** When the job was first inserted. */
  readonly createdAt: Date
  /** When it was dead-lettered. */
  readonly failedAt: Date
}

/** Filters for DLQ operations. */
export interface DlqFilter {
  /** Only this queue. */
  readonly queue?: string
  /** Only this kind. */
  readonly kind?: string
}

/** Which scheduled or retryable jobs `Engine.makeDue` makes due; every field narrows, none means all. */
export interface DueFilter {
  /** Only these job ids. */
  readonly ids?: ReadonlyArray<string>
  /** Only this queue. */
  readonly queue?: string
  /** Only this kind. */
  readonly kind?: string
  /** Only jobs due within this many milliseconds from now (database clock); absent means any run time. */
  readonly withinMs?: number
}

/** What `Engine.purgeQueue` deleted. */
export interface PurgeQueueResult {
  /** Jobs deleted, in any state. */
  readonly jobs: number
  /** Dead-letter queue entries deleted. */
  readonly deadLettered: number
}

/**
 * The storage seam: everything the producer, the worker, maintenance and admin need from storage. Every
 * method takes the executor to run on, so it runs on a pool or inside the caller's transaction. Attempt
 * writes are batched and guarded by `(id, run_lease)`.
 */
export interface Engine {
  /** The engine's name. */
  readonly name: EngineName

  /** Inserts jobs in one statement; results are in input order. */
  readonly insertMany: (db: Executor, rows: ReadonlyArray<InsertRow>) => Promise<ReadonlyArray<InsertResult>>
  /** Inserts jobs through COPY (no unique keys); returns the number inserted. */
  readonly copyInsert: (db: Executor, rows: ReadonlyArray<InsertRow>) => Promise<number>

  /**
   * Claims up to `limit` available jobs of `queue` (highest priority first, then earliest run time, then
   * insertion order), starting an attempt on each; nothing from a paused queue. With `kinds`, only jobs of
   * those kinds are claimed (an empty list claims nothing); jobs of other kinds stay available and keep
   * their place. Workers claim without `kinds`; test helpers use it to work one kind only.
   */
  readonly claim: (db: Executor, request: ClaimRequest) => Promise<ReadonlyArray<ClaimedJob>>
  /** Completes attempts. */
  readonly complete: (db: Executor, refs: ReadonlyArray<AttemptRef>) => Promise<AttemptWriteResult>
  /** Schedules attempts for retry, recording their errors. */
  readonly retry: (db: Executor, items: ReadonlyArray<RetryInput>) => Promise<AttemptWriteResult>
  /** Snoozes attempts (no attempt consumed). */
  readonly snooze: (db: Executor, items: ReadonlyArray<SnoozeInput>) => Promise<AttemptWriteResult>
  /** Cancels attempts from their handlers. */
  readonly cancelAttempts: (db: Executor, items: ReadonlyArray<FinalizeInput>) => Promise<AttemptWriteResult>
  /** Fails attempts (to the DLQ when their queue has it enabled). */
  readonly fail: (db: Executor, items: ReadonlyArray<FinalizeInput>) => Promise<FailResult>
  /** Records heartbeats; stale refs were rescued or cancelled. */
  readonly heartbeat: (db: Executor, refs: ReadonlyArray<AttemptRef>) => Promise<AttemptWriteResult>
  /** Returns unfinished attempts to the queue without consuming them (worker shutdown). */
  readonly release: (db: Executor, refs: ReadonlyArray<AttemptRef>) => Promise<AttemptWriteResult>

  /** Promotes due scheduled/retryable jobs; returns how many. */
  readonly promote: (db: Executor, limit: number) => Promise<number>
  /**
   * Finds attempts to rescue (stale heartbeat or passed deadline), locking them for the rest of the caller's
   * transaction so that none heartbeats between this decision and the rescue's write.
   */
  readonly findRescuable: (
    db: Executor,
    request: { readonly staleAfterMs: number; readonly deadlineGraceMs: number; readonly limit: number },
  ) => Promise<ReadonlyArray<RescueCandidate>>
  /** Deletes terminal jobs past retention; returns how many. */
  readonly deleteRetained: (
    db: Executor,
    request: { readonly completedMs: number; readonly failedMs: number; readonly limit: number },
  ) => Promise<number>

  /** Reads a job (null when absent). */
  readonly getJob: (db: Executor, id: string) => Promise<Job | null>
  /** Lists jobs with filters and keyset pagination. */
  readonly listJobs: (db: Executor, filter: JobFilter, page: Page) => Promise<PageOf<Job>>
  /** Exact counts per queue and state, with DLQ sizes and queue settings. */
  readonly queueStats: (db: Executor) => Promise<ReadonlyArray<QueueStats>>
  /** Available jobs per queue. */
  readonly availableDepth: (db: Executor) => Promise<ReadonlyMap<string, number>>
  /** Retries a job now with a fresh attempt count (JobNotFound, JobStateConflict, UniqueKeyHeld). */
  readonly retryJob: (db: Executor, id: string) => Promise<Job>
  /** Cancels a job unless terminal (JobNotFound, JobStateConflict); a running handler is told. */
  readonly cancelJob: (db: Executor, id: string, reason: string) => Promise<Job>
  /** Cancels the non-terminal job holding a unique key; null when none holds it. */
  readonly cancelByUniqueKey: (db: Executor, uniqueKey: string, reason: string) => Promise<Job | null>
  /** Pauses or resumes claiming on a queue. */
  readonly setQueuePaused: (db: Executor, queue: string, paused: boolean) => Promise<QueueSettings>
  /** Enables or disables a queue's dead-letter queue. */
  readonly setQueueDlq: (db: Executor, queue: string, enabled: boolean) => Promise<QueueSettings>
  /** Lists queue settings rows. */
  readonly listQueues: (db: Executor) => Promise<ReadonlyArray<QueueSettings>>
  /** Lists DLQ entries. */
  readonly listDlq: (db: Executor, filter: DlqFilter, page: Page) => Promise<PageOf<DeadLetter>>
  /** Reads one DLQ entry (null when absent). */
  readonly getDlq: (db: Executor, id: string) => Promise<DeadLetter | null>
  /** Moves DLQ entries back to the queue with fresh attempts: one id, or a filter. Returns the ids. */
  readonly retryDlq: (
    db: Executor,
    target: { readonly id: string } | DlqFilter,
  ) => Promise<ReadonlyArray<string>>
  /** Deletes DLQ entries: one id, or a filter. Returns how many. */
  readonly purgeDlq: (db: Executor, target: { readonly id: string } | DlqFilter) => Promise<number>

  /**
   * Makes scheduled and retryable jobs matching the filter available now (time control for tests and
   * operators), keeping their attempt counts; wakes workers of their queues. Returns the ids, ascending.
   */
  readonly makeDue: (db: Executor, filter: DueFilter) => Promise<ReadonlyArray<string>>
  /** Deletes every job of a queue in any state, and its DLQ entries, releasing their unique keys. */
  readonly purgeQueue: (db: Executor, queue: string) => Promise<PurgeQueueResult>
}
