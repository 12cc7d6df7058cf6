import { validateIdentifier } from "@awa/model/Identifier"
import { JobNotFound, JobStateConflict, UniqueKeyHeld } from "@awa/model/JobErrors"
import type { JobState } from "@awa/model/JobState"
import { DatabaseError } from "./DatabaseError.js"
import type {
  AttemptRef,
  AttemptWriteResult,
  ClaimedJob,
  Engine,
  FailResult,
  InsertResult,
  InsertRow,
  PageOf,
  RescueCandidate,
} from "./Engine.js"
import {
  arrayLiteral,
  copyEscape,
  empty,
  errorRecordJson,
  isUniqueViolation,
  pageLimit,
  partition,
  type Row,
  splitRefs,
  storageSlots,
  toClaimed,
  toDeadLetter,
  toJob,
  toNumber,
  toQueueSettings,
  toQueueStats,
} from "./internal/engineRows.js"
import { counterStatements } from "./internal/sql/queueStorage/counters.js"
import { dlqStatements } from "./internal/sql/queueStorage/dlq.js"
import { jobStatements } from "./internal/sql/queueStorage/jobs.js"
import { queueStatements } from "./internal/sql/queueStorage/queues.js"
import { ringStatements } from "./internal/sql/queueStorage/rings.js"
import { schemaSql } from "./internal/sql/queueStorage/schemaStatement.js"
import { deadLetteredPart, statsStatements } from "./internal/sql/queueStorage/stats.js"
import type { Executor } from "./PgExecutor.js"

/** Options of {@link makeQueueStorageEngine}. */
export interface QueueStorageEngineOptions {
  /**
   * The queue-storage schema (default `awa`, created by `awa migrate`; others by
   * `awa storage prepare-queue-storage-schema --schema NAME`). A lower-case identifier.
   */
  readonly schema?: string
  /**
   * Milliseconds a queue-ring slot takes new rows before maintenance rotates to the next one (default
   * 60000). Completed-job history is bounded by the ring: about one rotation of this interval per queue-ring
   * slot (16 unless the schema was installed with `--queue-ring-slots`).
   */
  readonly queueRotateMs?: number
  /** Milliseconds a claim-ring slot takes receipts before maintenance rotates it (default 10000). */
  readonly claimRotateMs?: number
  /** Lock timeout of a prune's TRUNCATE, in milliseconds: on contention the slot is skipped (default 100). */
  readonly pruneLockTimeoutMs?: number
}

const copyChunks = function* (rows: ReadonlyArray<InsertRow>): Generator<string> {
  const batch: Array<string> = []
  const now = Date.now()
  for (const row of rows) {
    const runAt = row.runAt ?? new Date(now + (row.delayMs ?? 0))
    batch.push(
      [
        copyEscape(row.kind),
        copyEscape(row.queue),
        copyEscape(row.argsJson),
        String(row.priority),
        String(row.maxAttempts),
        runAt.toISOString(),
        row.timeoutMs === null ? "\\N" : String(row.timeoutMs),
        copyEscape(arrayLiteral(row.tags)),
        copyEscape(row.metadataJson),
      ].join("\t"),
    )
    if (batch.length === 1000) {
      yield `${batch.join("\n")}\n`
      batch.length = 0
    }
  }
  if (batch.length > 0) yield `${batch.join("\n")}\n`
}

const nonNegative = (name: string, value: number | undefined, fallback: number): number => {
  if (value === undefined) return fallback
  if (!Number.isFinite(value) || value < 0) {
    throw new RangeError(
      `makeQueueStorageEngine: ${name} must be a non-negative number of milliseconds, got ${value}`,
    )
  }
  return Math.round(value)
}

/** What one run of {@link QueueStorageRings.maintainRings} did. */
export interface RingMaintenanceReport {
  /** Whether the queue ring advanced to its next slot. */
  readonly queueRotated: boolean
  /** Whether the claim ring advanced to its next slot. */
  readonly claimRotated: boolean
  /** Queue-ring slots truncated. */
  readonly queueSlotsPruned: ReadonlyArray<number>
  /** Claim-ring slots truncated. */
  readonly claimSlotsPruned: ReadonlyArray<number>
  /** Terminal jobs whose history left with a pruned slot (folded into the rollups). */
  readonly terminalPruned: number
  /** Failed or cancelled jobs inside retention carried forward into the current slot. */
  readonly carried: number
  /** Slots left alone, each with the reason (pending job, open attempt, lock contention). */
  readonly skipped: ReadonlyArray<{
    readonly ring: "queue" | "claim"
    readonly slot: number
    readonly reason: string
  }>
}

/** Ring maintenance and counter repair of a queue-storage engine, beyond the `Engine` seam. */
export interface QueueStorageRings {
  /** The schema this engine serves. */
  readonly schema: string
  /**
   * Rotates and prunes both rings (what `deleteRetained` does under the maintenance leader): `force` rotates
   * regardless of slot age. Failed and cancelled jobs younger than `failedMs` are carried forward.
   */
  readonly maintainRings: (
    db: Executor,
    request: { readonly failedMs: number; readonly force?: boolean },
  ) => Promise<RingMaintenanceReport>
  /** Recomputes the live terminal counters from the stored terminal rows; returns the counter rows written. */
  readonly rebuildTerminalCounters: (db: Executor) => Promise<number>
}

/** The queue-storage engine, with its ring maintenance. */
export type QueueStorageEngine = Engine & QueueStorageRings

/**
 * Makes the queue-storage engine (`queue_storage`) on a schema prepared by the `queue-storage` migration set:
 * append-only ring partitions reclaimed by TRUNCATE, claims recorded as receipts, attempt ends as closures,
 * and live terminal counters, behind the same contract as the canonical engine. Runs no DDL. Throws
 * `InvalidIdentifier` for a schema name that is not a lower-case identifier, and `RangeError` for negative
 * intervals.
 */
export const makeQueueStorageEngine = (options: QueueStorageEngineOptions = {}): QueueStorageEngine => {
  const schema = validateIdentifier("queue-storage schema name", options.schema ?? "awa")
  if (typeof schema !== "string") throw schema
  const queueRotateMs = nonNegative("queueRotateMs", options.queueRotateMs, 60_000)
  const claimRotateMs = nonNegative("claimRotateMs", options.claimRotateMs, 10_000)
  const lockTimeoutMs = nonNegative("pruneLockTimeoutMs", options.pruneLockTimeoutMs, 100)
  const sql = schemaSql(schema)
  const jobs = jobStatements(sql)
  const dlq = dlqStatements(sql)
  const queues = queueStatements(sql)
  const counters = counterStatements(sql)
  const rings = ringStatements(sql)
  const stats = statsStatements(sql, {
    available: jobs.availableDepth,
    running: jobs.runningByQueue,
    deferred: jobs.deferredByQueue,
    terminal: counters.liveByQueue,
    dead: dlq.countByQueue,
  })

  const refuseByState = async (
    db: Executor,
    id: string,
    operation: string,
    allowed: ReadonlyArray<JobState>,
  ): Promise<never> => {
    const [current] = await db.query("get job state", jobs.getJob, [id])
    if (current === undefined) throw new JobNotFound({ id })
    throw new JobStateConflict({ id, state: current.state as string, operation, allowed })
  }

  const getJobOrThrow = async (db: Executor, id: string) => {
    const [row] = await db.query("get job", jobs.getJob, [id])
    if (row === undefined) throw new JobNotFound({ id })
    return toJob(row)
  }

  const insertOnce = async (db: Executor, rows: ReadonlyArray<InsertRow>): Promise<Array<Row>> => {
    const n = rows.length
    const cols = Array.from({ length: 12 }, () => new Array<unknown>(n))
    for (let i = 0; i < n; i++) {
      const row = rows[i]!
      cols[0]![i] = row.kind
      cols[1]![i] = row.queue
      cols[2]![i] = row.argsJson
      cols[3]![i] = row.priority
      cols[4]![i] = row.maxAttempts
      cols[5]![i] = row.runAt
      cols[6]![i] = row.delayMs
      cols[7]![i] = row.timeoutMs
      cols[8]![i] = row.tags.length === 0 ? null : JSON.stringify(row.tags)
      cols[9]![i] = row.metadataJson === "{}" ? null : row.metadataJson
      cols[10]![i] = row.uniqueKey
      cols[11]![i] = row.uniqueStates === null ? null : `{${row.uniqueStates.join(",")}}`
    }
    return db.query("insert jobs", jobs.enqueue, cols)
  }

  const attemptWrite = async (
    refs: ReadonlyArray<AttemptRef>,
    run: (ids: Array<string>, leases: Array<number>) => Promise<Array<Row>>,
  ): Promise<AttemptWriteResult> => {
    if (refs.length === 0) return empty
    const { ids, leases } = splitRefs(refs)
    return partition(refs, await run(ids, leases))
  }

  const maintainRings: QueueStorageRings["maintainRings"] = async (db, request) => {
    const [row] = await db.query("maintain rings", rings.maintain, [
      request.force === true ? 0 : queueRotateMs,
      request.force === true ? 0 : claimRotateMs,
      Math.max(0, Math.round(request.failedMs)),
      lockTimeoutMs,
    ])
    // Slots left empty by the prune (or never written since their last lap) stop costing claims anything.
    await db.query("retire queue-ring slots", rings.retireSlots, [lockTimeoutMs])
    // The COPY inbox keeps the rows of past COPYs (already enqueued) until here.
    await db.query("prune COPY inbox", rings.pruneCopyInbox, [lockTimeoutMs])
    const report = (row?.report ?? {}) as Record<string, unknown>
    return {
      queueRotated: report.queue_rotated === true,
      claimRotated: report.claim_rotated === true,
      queueSlotsPruned: (report.queue_pruned as Array<number> | undefined) ?? [],
      claimSlotsPruned: (report.claim_pruned as Array<number> | undefined) ?? [],
      terminalPruned: toNumber(report.terminal_pruned ?? 0),
      carried: toNumber(report.carried ?? 0),
      skipped: (report.skipped as RingMaintenanceReport["skipped"] | undefined) ?? [],
    }
  }

  return {
    name: "queue_storage",
    schema,
    maintainRings,

    rebuildTerminalCounters: async (db) => {
      const [row] = await db.query("rebuild terminal counters", counters.rebuild, [])
      return toNumber(row?.rows ?? 0)
    },

    insertMany: async (db, rows) => {
      if (rows.length === 0) return []
      const results = new Array<InsertResult>(rows.length)
      let pending = rows.map((row, index) => ({ row, index }))
      // A holder can let go of its key between our insert and the lookup of its id: insert those again.
      for (let round = 0; round < 5 && pending.length > 0; round++) {
        const out = await insertOnce(
          db,
          pending.map((p) => p.row),
        )
        const again: typeof pending = []
        for (const r of out) {
          const p = pending[toNumber(r.ord) - 1]!
          if (r.id !== null) {
            results[p.index] = {
              _tag: "Inserted",
              id: String(r.id),
              state: r.state as JobState,
              runAt: r.run_at as Date,
            }
          } else if (r.existing_id !== null && r.existing_state !== null) {
            results[p.index] = {
              _tag: "UniqueConflict",
              existingId: String(r.existing_id),
              existingState: r.existing_state as JobState,
              uniqueKey: p.row.uniqueKey as string,
            }
          } else {
            again.push(p)
          }
        }
        pending = again
      }
      if (pending.length > 0) {
        throw new DatabaseError({
          operation: "insert jobs",
          sqlState: null,
          sqlStateClass: "serialization",
          detail: "unique keys kept changing holders while inserting",
          transient: true,
        })
      }
      return results
    },

    copyInsert: async (db, rows) => {
      if (rows.length === 0) return 0
      // The inbox's statement trigger enqueues every row the COPY wrote, or the COPY fails: every row sent was
      // enqueued once it succeeded (the bulk path takes no unique keys, so none is skipped).
      await db.copyFrom("copy jobs", jobs.copySql, copyChunks(rows))
      return rows.length
    },

    claim: async (db, request) => {
      const kinds = (request as { readonly kinds?: ReadonlyArray<string> }).kinds
      const rows = await db.query("claim jobs", jobs.claim, [
        request.queue,
        request.limit,
        request.defaultTimeoutMs,
        kinds === undefined ? null : [...kinds],
      ])
      const claimed = new Array<ClaimedJob>(rows.length)
      for (let i = 0; i < rows.length; i++) claimed[i] = toClaimed(rows[i]!)
      return claimed
    },

    complete: async (db, refs) => {
      const result = await attemptWrite(refs, (ids, leases) =>
        db.query("complete jobs", jobs.complete, [ids, leases, storageSlots(refs)]),
      )
      if (result.stale.length === 0) return result
      // A completion whose commit reached the server but not us is retried by the worker: an attempt already
      // closed as completed under this lease counts as applied, not stale.
      const stale = splitRefs(result.stale)
      const closed = await db.query("read closures", jobs.closures, [stale.ids, stale.leases])
      const done = new Set<string>()
      for (const row of closed) if (row.outcome === "completed") done.add(`${row.id}:${row.run_lease}`)
      const applied = [...result.applied]
      const still: Array<AttemptRef> = []
      for (const ref of result.stale) (done.has(`${ref.id}:${ref.runLease}`) ? applied : still).push(ref)
      return { applied, stale: still }
    },

    retry: async (db, items) =>
      attemptWrite(
        items.map((i) => i.ref),
        (ids, leases) =>
          db.query("retry jobs", jobs.requeue, [
            ids,
            leases,
            items.map((i) => Math.max(0, Math.round(i.delayMs))),
            items.map((i) => errorRecordJson(i.attempt, i.error)),
            "retried",
            true,
          ]),
      ),

    snooze: async (db, items) =>
      attemptWrite(
        items.map((i) => i.ref),
        (ids, leases) =>
          db.query("snooze jobs", jobs.requeue, [
            ids,
            leases,
            items.map((i) => Math.max(0, Math.round(i.delayMs))),
            items.map(() => null),
            "snoozed",
            false,
          ]),
      ),

    cancelAttempts: async (db, items) =>
      attemptWrite(
        items.map((i) => i.ref),
        (ids, leases) =>
          db.query("cancel jobs", jobs.finalize, [
            ids,
            leases,
            items.map((i) => errorRecordJson(i.attempt, i.error)),
            "cancelled",
          ]),
      ),

    fail: async (db, items): Promise<FailResult> => {
      if (items.length === 0) return { ...empty, deadLettered: [] }
      const refs = items.map((i) => i.ref)
      const { ids, leases } = splitRefs(refs)
      const rows = await db.query("fail jobs", jobs.finalize, [
        ids,
        leases,
        items.map((i) => errorRecordJson(i.attempt, i.error)),
        "failed",
      ])
      return {
        ...partition(refs, rows),
        deadLettered: rows.filter((r) => r.dlq === true).map((r) => String(r.id)),
      }
    },

    heartbeat: async (db, refs) =>
      attemptWrite(refs, (ids, leases) => db.query("heartbeat jobs", jobs.heartbeat, [ids, leases])),

    release: async (db, refs) =>
      attemptWrite(refs, (ids, leases) =>
        db.query("release jobs", jobs.requeue, [
          ids,
          leases,
          ids.map(() => 0),
          ids.map(() => null),
          "released",
          false,
        ]),
      ),

    promote: async (db, limit) => {
      const [row] = await db.query("promote due jobs", jobs.promote, [limit])
      return toNumber(row?.promoted ?? 0)
    },

    findRescuable: async (db, request) => {
      const rows = await db.query("find jobs to rescue", jobs.findRescuable, [
        Math.round(request.staleAfterMs),
        Math.round(request.deadlineGraceMs),
        request.limit,
      ])
      return rows.map(
        (row): RescueCandidate => ({
          ref: { id: String(row.id), runLease: toNumber(row.run_lease) },
          attempt: toNumber(row.attempt),
          maxAttempts: toNumber(row.max_attempts),
          kind: row.kind as string,
          queue: row.queue as string,
          reason: row.reason as "heartbeat" | "deadline",
        }),
      )
    },

    // Failed and cancelled jobs past `failedMs` are purged one by one; completed history leaves with the queue
    // ring (its slots x queueRotateMs), not by `completedMs`. Returns the terminal jobs removed.
    deleteRetained: async (db, request) => {
      const [row] = await db.query("purge finished jobs", rings.purgeFinished, [
        Math.max(0, Math.round(request.failedMs)),
        request.limit,
      ])
      const report = await maintainRings(db, { failedMs: request.failedMs })
      return toNumber(row?.purged ?? 0) + report.terminalPruned
    },

    getJob: async (db, id) => {
      const [row] = await db.query("get job", jobs.getJob, [id])
      return row === undefined ? null : toJob(row)
    },

    listJobs: async (db, filter, page): Promise<PageOf<ReturnType<typeof toJob>>> => {
      const limit = pageLimit(page)
      const st = page.order === "desc" ? jobs.listJobsDesc : jobs.listJobsAsc
      const rows = await db.query("list jobs", st, [
        filter.queue ?? null,
        filter.kind ?? null,
        filter.states === undefined || filter.states.length === 0 ? null : [...filter.states],
        filter.tag ?? null,
        page.cursor ?? null,
        limit + 1,
      ])
      const items = rows.slice(0, limit).map(toJob)
      return { items, nextCursor: rows.length > limit ? (items[items.length - 1]?.id ?? null) : null }
    },

    queueStats: async (db) => {
      const [counts, settings] = await Promise.all([
        db.query("count jobs per queue and state", stats.counts, []),
        db.query("list queues", queues.list, []),
      ])
      return toQueueStats(
        counts.filter((row) => row.state !== deadLetteredPart),
        counts.filter((row) => row.state === deadLetteredPart),
        settings,
      )
    },

    availableDepth: async (db) => {
      const rows = await db.query("read queue depth", jobs.availableDepth, [])
      return new Map(rows.map((row) => [row.queue as string, toNumber(row.count)]))
    },

    retryJob: async (db, id) => {
      let rows: Array<Row>
      try {
        rows = await db.query("retry job", jobs.retryJob, [id])
      } catch (error) {
        if (isUniqueViolation(error)) throw new UniqueKeyHeld({ id, existingJobId: null })
        throw error
      }
      if (rows[0]?.done === true) return getJobOrThrow(db, id)
      return refuseByState(db, id, "retry", ["scheduled", "retryable", "completed", "failed", "cancelled"])
    },

    cancelJob: async (db, id, reason) => {
      const rows = await db.query("cancel job", jobs.cancelJob, [
        id,
        errorRecordJson(0, { kind: "cancelled", message: reason }),
      ])
      if (rows[0]?.done === true) return getJobOrThrow(db, id)
      return refuseByState(db, id, "cancel", [
        "scheduled",
        "available",
        "running",
        "retryable",
        "waiting_external",
      ])
    },

    cancelByUniqueKey: async (db, uniqueKey, reason) => {
      const [holder] = await db.query("find unique key holder", jobs.uniqueHolder, [uniqueKey])
      if (holder === undefined) return null
      const id = String(holder.id)
      const [done] = await db.query("cancel job by unique key", jobs.cancelJob, [
        id,
        errorRecordJson(0, { kind: "cancelled", message: reason }),
      ])
      return done?.done === true ? getJobOrThrow(db, id) : null
    },

    setQueuePaused: async (db, queue, paused) => {
      const rows = await db.query(paused ? "pause queue" : "resume queue", queues.setPaused, [queue, paused])
      return toQueueSettings(rows[0]!)
    },

    setQueueDlq: async (db, queue, enabled) => {
      const rows = await db.query("set queue DLQ", queues.setDlq, [queue, enabled])
      return toQueueSettings(rows[0]!)
    },

    listQueues: async (db) => (await db.query("list queues", queues.list, [])).map(toQueueSettings),

    listDlq: async (db, filter, page) => {
      const limit = pageLimit(page)
      const rows = await db.query("list DLQ", dlq.list, [
        filter.queue ?? null,
        filter.kind ?? null,
        page.cursor ?? null,
        limit + 1,
      ])
      const items = rows.slice(0, limit).map(toDeadLetter)
      return { items, nextCursor: rows.length > limit ? (items[items.length - 1]?.id ?? null) : null }
    },

    getDlq: async (db, id) => {
      const [row] = await db.query("get DLQ entry", dlq.get, [id])
      return row === undefined ? null : toDeadLetter(row)
    },

    retryDlq: async (db, target) => {
      const id = "id" in target ? target.id : null
      const filter = "id" in target ? {} : target
      let rows: Array<Row>
      try {
        rows = await db.query("retry DLQ", dlq.retry, [id, filter.queue ?? null, filter.kind ?? null])
      } catch (error) {
        if (isUniqueViolation(error)) throw new UniqueKeyHeld({ id: id ?? "(bulk)", existingJobId: null })
        throw error
      }
      if (id !== null && rows.length === 0) throw new JobNotFound({ id })
      return rows.map((row) => String(row.id))
    },

    purgeDlq: async (db, target) => {
      const id = "id" in target ? target.id : null
      const filter = "id" in target ? {} : target
      const [row] = await db.query("purge DLQ", dlq.purge, [id, filter.queue ?? null, filter.kind ?? null])
      const purged = toNumber(row?.purged ?? 0)
      if (id !== null && purged === 0) throw new JobNotFound({ id })
      return purged
    },

    makeDue: async (db, filter) => {
      const rows = await db.query("make jobs due", jobs.makeDue, [
        filter.ids === undefined ? null : [...filter.ids],
        filter.queue ?? null,
        filter.kind ?? null,
        filter.withinMs === undefined ? null : Math.max(0, Math.round(filter.withinMs)),
      ])
      return rows.map((row) => String(row.id))
    },

    purgeQueue: async (db, queue) => {
      const [row] = await db.query("purge queue", jobs.purgeQueue, [queue])
      return { jobs: toNumber(row?.jobs ?? 0), deadLettered: toNumber(row?.dead_lettered ?? 0) }
    },
  }
}
