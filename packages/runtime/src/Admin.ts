import { validateQueueName } from "@awa/model/InsertOptions"
import {
  FilterRequired,
  type FilterRequired as FilterRequiredError,
  InvalidAdminArgument,
  JobNotFound,
  type JobStateConflict,
  type UniqueKeyHeld,
} from "@awa/model/JobErrors"
import { type JobState, jobStates } from "@awa/model/JobState"
import { checkPoolerOption, type PoolerMode } from "@awa/model/Pooler"
import { Context, Duration, Effect, Layer, Option } from "effect"
import { type DatabaseError, toDatabaseError } from "./DatabaseError.js"
import type {
  DeadLetter,
  DlqFilter,
  DueFilter,
  EngineName,
  Job,
  JobFilter,
  Page,
  PageOf,
  PurgeQueueResult,
  QueueSettings,
  QueueStats,
} from "./Engine.js"
import { type EngineSelection, selectEngine } from "./EngineSelection.js"
import * as leadersSql from "./internal/sql/leaders.js"
import { maintenanceRole, readLease } from "./LeaderLease.js"
import { type Db, executorsFor, PgExecutor } from "./PgExecutor.js"

/** A bulk DLQ target: a filter, or `all: true` to act on every entry deliberately. */
export type DlqBulkTarget = DlqFilter & { readonly all?: boolean }

/** A DLQ target: one entry by id, or a bulk target. */
export type DlqTarget = { readonly id: string } | DlqBulkTarget

/**
 * Which scheduled or retryable jobs `Admin.makeDue` makes due: some ids, a queue and/or kind, or
 * `all: true` deliberately; `within` narrows any of them to jobs due within that duration from now.
 */
export interface DueTarget {
  /** Only these job ids. */
  readonly ids?: ReadonlyArray<string>
  /** Only this queue. */
  readonly queue?: string
  /** Only this kind. */
  readonly kind?: string
  /** Only jobs whose run time is at most this far in the future (default: any run time). */
  readonly within?: Duration.Input
  /** Act on every scheduled and retryable job when no other filter is given. */
  readonly all?: boolean
}

/** Recorded leadership of a role. */
export interface LeaderRecord {
  /** The role (e.g. "maintenance"). */
  readonly name: string
  /** The holder's id. */
  readonly holder: string
  /** When it became leader. */
  readonly electedAt: Date
  /** When it last renewed its lease. */
  readonly renewedAt: Date
  /** The fencing epoch of its term. */
  readonly epoch: number
  /** When its lease ends unless renewed (or ended). */
  readonly expiresAt: Date
  /** True while the lease has not expired: false after the leader stopped or died (and nobody took over yet). */
  readonly live: boolean
}

/**
 * Operator reads and repairs. Every call takes the database to use (pool, client in a transaction, or
 * executor). Missing jobs reject with `JobNotFound`, disallowed transitions with `JobStateConflict`, bulk
 * DLQ actions without a filter with `FilterRequired`.
 */
export interface Admin {
  /** Exact job counts per queue and state, DLQ sizes and queue settings. */
  readonly queueStats: (db: Db) => Promise<ReadonlyArray<QueueStats>>
  /** Reads a job. */
  readonly getJob: (db: Db, id: string) => Promise<Job>
  /** Lists jobs by filters with keyset pagination (100 per page unless `page.limit` says otherwise). */
  readonly listJobs: (db: Db, filter?: JobFilter, page?: Page) => Promise<PageOf<Job>>
  /** Runs a job again now with a fresh attempt count (scheduled, retryable, completed, failed or cancelled). */
  readonly retryJob: (db: Db, id: string) => Promise<Job>
  /** Cancels a job that is not terminal; a running handler's signal fires (through NOTIFY). */
  readonly cancelJob: (db: Db, id: string, reason?: string) => Promise<Job>
  /** Pauses claiming on a queue (running jobs finish; inserts still succeed). */
  readonly pauseQueue: (db: Db, queue: string) => Promise<QueueSettings>
  /** Resumes claiming on a queue. */
  readonly resumeQueue: (db: Db, queue: string) => Promise<QueueSettings>
  /** Enables or disables the dead-letter queue of a queue. */
  readonly setQueueDlq: (db: Db, queue: string, enabled: boolean) => Promise<QueueSettings>
  /** Lists DLQ entries. */
  readonly listDlq: (db: Db, filter?: DlqFilter, page?: Page) => Promise<PageOf<DeadLetter>>
  /** Reads a DLQ entry. */
  readonly getDlq: (db: Db, id: string) => Promise<DeadLetter>
  /** Moves DLQ entries back to their queue with fresh attempts; resolves to their ids. */
  readonly retryDlq: (db: Db, target: DlqTarget) => Promise<ReadonlyArray<string>>
  /** Deletes DLQ entries; resolves to how many. */
  readonly purgeDlq: (db: Db, target: DlqTarget) => Promise<number>
  /**
   * Makes scheduled and retryable jobs due now (available at once, `run_at` moved to now) without
   * changing their attempt counts: time control for tests, and "run it now" for operators. Resolves to the
   * ids made due. Without ids, queue or kind (and without `all: true`) it rejects with `FilterRequired`.
   */
  readonly makeDue: (db: Db, target: DueTarget) => Promise<ReadonlyArray<string>>
  /**
   * Deletes every job of a queue, in any state, and its DLQ entries, releasing their unique keys; queue
   * settings stay. Writes from handlers still running on its jobs become stale. For tests and disposal.
   */
  readonly purgeQueue: (db: Db, queue: string) => Promise<PurgeQueueResult>
  /** Reads which storage engine is active. */
  readonly activeEngine: (db: Db) => Promise<EngineName>
  /** Reads the maintenance leader's lease (the last holder, its epoch and whether it is live), if any. */
  readonly maintenanceLeader: (db: Db) => Promise<LeaderRecord | null>
}

/**
 * Options of `makeAdmin`: the storage engine (`engine`, default `AWA_ENGINE`, else the database's storage state), the
 * queue-storage schema (`queueStorageSchema`, default `AWA_QUEUE_STORAGE_SCHEMA`, else `awa`) and the pooler.
 */
export interface AdminOptions extends EngineSelection {
  /**
   * The pooler in front of Postgres (default: none, or the mode of a pool made by `createPool`): with
   * "transaction" no named prepared statements are used. Invalid values throw `InvalidPoolerMode`.
   */
  readonly pooler?: PoolerMode
}

const idPattern = /^[1-9][0-9]{0,18}$/
// A page cursor: a job id, or, while two engines hold jobs (mixed, and canonical history once active), a job
// id after the engine's prefix (c: canonical, q: queue storage), or q: alone for queue storage's first page.
const cursorPattern = /^(?:[cq]:)?[1-9][0-9]{0,18}$|^q:$/
const maxPageLimit = 10_000

const shown = (value: unknown): string => {
  if (typeof value === "string") return JSON.stringify(value)
  if (typeof value === "number" || typeof value === "boolean" || value == null) return String(value)
  return Object.prototype.toString.call(value)
}

const invalid = (operation: string, argument: string, value: unknown, expected: string) =>
  new InvalidAdminArgument({ operation, argument, value: shown(value), expected })

// A well-formed id that names no job is "not found"; an id that cannot be a job id is not found either,
// so callers see one error for both (and no string ever reaches a bigint parameter).
const checkId = (id: string): string => {
  if (!idPattern.test(String(id))) throw new JobNotFound({ id: String(id) })
  return id
}

const checkQueue = (operation: string, queue: string): string => {
  const valid = validateQueueName("-", queue)
  if (typeof valid !== "string") throw invalid(operation, "queue", queue, valid.expected)
  return valid
}

const checkStates = (operation: string, states: ReadonlyArray<JobState> | undefined): void => {
  for (const state of states ?? []) {
    if (!(jobStates as ReadonlyArray<unknown>).includes(state)) {
      throw invalid(operation, "states", state, `one of ${jobStates.join(", ")}`)
    }
  }
}

const checkPage = (operation: string, page: Page | undefined): Page => {
  if (page === undefined) return {}
  const { limit, cursor, order } = page
  if (limit !== undefined && !(Number.isInteger(limit) && limit >= 1 && limit <= maxPageLimit)) {
    throw invalid(operation, "limit", limit, `a whole number from 1 to ${maxPageLimit}`)
  }
  if (cursor !== undefined && !cursorPattern.test(String(cursor))) {
    throw invalid(operation, "cursor", cursor, "the nextCursor of a previous page")
  }
  if (order !== undefined && order !== "asc" && order !== "desc") {
    throw invalid(operation, "order", order, '"asc" or "desc"')
  }
  return page
}

const bulk = (operation: string, target: DlqTarget): { readonly id: string } | DlqFilter => {
  if ("id" in target) return { id: checkId(target.id) }
  const filter: DlqFilter = {
    ...(target.queue === undefined ? {} : { queue: checkQueue(operation, target.queue) }),
    ...(target.kind === undefined ? {} : { kind: target.kind }),
  }
  if (filter.queue === undefined && filter.kind === undefined && target.all !== true) {
    throw new FilterRequired({ operation, filters: ["id", "queue", "kind"] })
  }
  return filter
}

const dueFilter = (target: DueTarget): DueFilter => {
  const operation = "make jobs due"
  let withinMs: number | undefined
  if (target.within !== undefined) {
    const decoded = Duration.fromInput(target.within)
    withinMs = Option.isSome(decoded) ? Duration.toMillis(decoded.value) : Number.NaN
    if (!Number.isFinite(withinMs) || withinMs < 0) {
      throw invalid(operation, "within", target.within, "a finite, non-negative duration")
    }
  }
  const filter: DueFilter = {
    ...(target.ids === undefined ? {} : { ids: target.ids.map(checkId) }),
    ...(target.queue === undefined ? {} : { queue: checkQueue(operation, target.queue) }),
    ...(target.kind === undefined ? {} : { kind: target.kind }),
    ...(withinMs === undefined ? {} : { withinMs }),
  }
  if (
    filter.ids === undefined &&
    filter.queue === undefined &&
    filter.kind === undefined &&
    target.all !== true
  ) {
    throw new FilterRequired({ operation, filters: ["ids", "queue", "kind"] })
  }
  return filter
}

const jobFilter = (operation: string, filter: JobFilter | undefined): JobFilter => {
  if (filter === undefined) return {}
  if (filter.queue !== undefined) checkQueue(operation, filter.queue)
  checkStates(operation, filter.states)
  return filter
}

/**
 * Makes the admin API (connection-free, like the producer). Throws `InvalidEngineSelection` when the engine
 * option or `AWA_ENGINE` names no engine.
 */
export const makeAdmin = (options?: AdminOptions): Admin => {
  const engine = selectEngine(options)
  // Every operation below turns its database into an executor through this, so the pooler mode applies.
  const toExecutor = executorsFor(checkPoolerOption(options?.pooler, "makeAdmin option pooler"))
  return {
    queueStats: async (db) => engine.queueStats(toExecutor(db)),
    getJob: async (db, id) => {
      const job = await engine.getJob(toExecutor(db), checkId(id))
      if (job === null) throw new JobNotFound({ id })
      return job
    },
    listJobs: async (db, filter, page) =>
      engine.listJobs(toExecutor(db), jobFilter("list jobs", filter), checkPage("list jobs", page)),
    retryJob: async (db, id) => engine.retryJob(toExecutor(db), checkId(id)),
    cancelJob: async (db, id, reason) =>
      engine.cancelJob(toExecutor(db), checkId(id), reason ?? "cancelled by an operator"),
    pauseQueue: async (db, queue) =>
      engine.setQueuePaused(toExecutor(db), checkQueue("pause a queue", queue), true),
    resumeQueue: async (db, queue) =>
      engine.setQueuePaused(toExecutor(db), checkQueue("resume a queue", queue), false),
    setQueueDlq: async (db, queue, enabled) =>
      engine.setQueueDlq(toExecutor(db), checkQueue("set a queue's DLQ", queue), enabled),
    listDlq: async (db, filter, page) =>
      engine.listDlq(
        toExecutor(db),
        filter?.queue === undefined
          ? (filter ?? {})
          : { ...filter, queue: checkQueue("list the DLQ", filter.queue) },
        checkPage("list the DLQ", page),
      ),
    getDlq: async (db, id) => {
      const entry = await engine.getDlq(toExecutor(db), checkId(id))
      if (entry === null) throw new JobNotFound({ id })
      return entry
    },
    retryDlq: async (db, target) => engine.retryDlq(toExecutor(db), bulk("retry dead-lettered jobs", target)),
    purgeDlq: async (db, target) => engine.purgeDlq(toExecutor(db), bulk("purge dead-lettered jobs", target)),
    makeDue: async (db, target) => engine.makeDue(toExecutor(db), dueFilter(target)),
    purgeQueue: async (db, queue) => engine.purgeQueue(toExecutor(db), checkQueue("purge a queue", queue)),
    activeEngine: async (db) => {
      const rows = await toExecutor(db).query("read active engine", leadersSql.activeEngine, [])
      return (rows[0]?.active_engine as EngineName | undefined) ?? "canonical"
    },
    maintenanceLeader: async (db) => {
      const lease = await readLease(toExecutor(db), maintenanceRole)
      if (lease === null) return null
      return {
        name: lease.role,
        holder: lease.holder,
        electedAt: lease.electedAt,
        renewedAt: lease.renewedAt,
        epoch: lease.epoch,
        expiresAt: lease.expiresAt,
        live: lease.live,
      }
    },
  }
}

/** The typed errors of admin operations, besides `DatabaseError`. */
export type AdminError =
  | JobNotFound
  | JobStateConflict
  | UniqueKeyHeld
  | FilterRequiredError
  | InvalidAdminArgument

const adminErrorTags: ReadonlySet<string> = new Set([
  "JobNotFound",
  "JobStateConflict",
  "UniqueKeyHeld",
  "FilterRequired",
  "InvalidAdminArgument",
])

const isAdminError = (cause: unknown): cause is AdminError =>
  typeof cause === "object" && cause !== null && adminErrorTags.has((cause as { _tag?: string })._tag ?? "")

/** The admin operations as Effects: the same operations as `Admin`, taking the database from `PgExecutor`. */
export type AdminEffects = {
  readonly [K in keyof Admin]: Admin[K] extends (db: Db, ...args: infer Args) => Promise<infer A>
    ? (...args: Args) => Effect.Effect<A, AdminError | DatabaseError, PgExecutor>
    : never
}

/** The admin API as an Effect service: each operation runs on the `PgExecutor` in the context. */
export class AdminService extends Context.Service<AdminService, AdminEffects>()("@awa/runtime/Admin") {
  /** Builds the service over an admin made with `makeAdmin(options)`. */
  static readonly make = (options?: AdminOptions): AdminService["Service"] => {
    const admin = makeAdmin(options)
    const lift =
      (name: string, run: (db: Db, ...args: ReadonlyArray<unknown>) => Promise<unknown>) =>
      (...args: ReadonlyArray<unknown>) =>
        Effect.flatMap(Effect.service(PgExecutor), (db) =>
          Effect.tryPromise({
            try: () => run(db, ...args),
            catch: (cause) => (isAdminError(cause) ? cause : toDatabaseError(`admin ${name}`, cause)),
          }),
        )
    return Object.fromEntries(
      Object.entries(admin).map(([name, run]) => [name, lift(name, run)]),
    ) as unknown as AdminEffects
  }

  /** A layer providing the admin service. */
  static readonly layer = (options?: AdminOptions): Layer.Layer<AdminService> =>
    Layer.succeed(AdminService, AdminService.make(options))
}
