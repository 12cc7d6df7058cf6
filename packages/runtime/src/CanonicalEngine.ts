import { JobNotFound, JobStateConflict, UniqueKeyHeld } from "@awa/model/JobErrors"
import type { JobState } from "@awa/model/JobState"
import { DatabaseError } from "./DatabaseError.js"
import type {
  AttemptRef,
  ClaimedJob,
  Engine,
  FailResult,
  InsertResult,
  InsertRow,
  Job,
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
  toClaimed,
  toDeadLetter,
  toJob,
  toNumber,
  toQueueSettings,
  toQueueStats,
} from "./internal/engineRows.js"
import * as dlqSql from "./internal/sql/dlq.js"
import * as jobsSql from "./internal/sql/jobs.js"
import * as queuesSql from "./internal/sql/queues.js"
import type { Executor } from "./PgExecutor.js"

/** Serializes an error record (the database adds `at`); every text in it is made storable first. */
export { errorRecordJson }

const copyChunks = function* (rows: ReadonlyArray<InsertRow>): Generator<string> {
  const batch: Array<string> = []
  const now = Date.now()
  for (const row of rows) {
    const runAt = row.runAt ?? new Date(now + (row.delayMs ?? 0))
    const state = runAt.getTime() > now ? "scheduled" : "available"
    batch.push(
      [
        copyEscape(row.kind),
        copyEscape(row.queue),
        copyEscape(row.argsJson),
        state,
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

// Compares decimal id strings numerically without BigInt (ids have no leading zeros).
const compareIds = (a: string, b: string): number => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0)

const sortedById = (rows: Array<Row>): Array<Row> => {
  for (let i = 1; i < rows.length; i++) {
    if (compareIds(String(rows[i - 1]!.id), String(rows[i]!.id)) > 0) {
      return rows.slice().sort((a, b) => compareIds(String(a.id), String(b.id)))
    }
  }
  return rows
}

const insertOnce = async (
  db: Executor,
  rows: ReadonlyArray<InsertRow>,
): Promise<Array<InsertResult | null>> => {
  const n = rows.length
  const kinds = new Array<string>(n)
  const queues = new Array<string>(n)
  const args = new Array<string>(n)
  const priorities = new Array<number>(n)
  const maxAttempts = new Array<number>(n)
  const runAts = new Array<Date | null>(n)
  const delays = new Array<number | null>(n)
  const timeouts = new Array<number | null>(n)
  const tags = new Array<string | null>(n)
  const metadata = new Array<string | null>(n)
  const keys = new Array<string | null>(n)
  const uniqueStates = new Array<string | null>(n)
  for (let i = 0; i < n; i++) {
    const row = rows[i]!
    kinds[i] = row.kind
    queues[i] = row.queue
    args[i] = row.argsJson
    priorities[i] = row.priority
    maxAttempts[i] = row.maxAttempts
    runAts[i] = row.runAt
    delays[i] = row.delayMs
    timeouts[i] = row.timeoutMs
    tags[i] = row.tags.length === 0 ? null : JSON.stringify(row.tags)
    metadata[i] = row.metadataJson === "{}" ? null : row.metadataJson
    keys[i] = row.uniqueKey
    uniqueStates[i] = row.uniqueStates === null ? null : `{${row.uniqueStates.join(",")}}`
  }
  const inserted = await db.query("insert jobs", jobsSql.insertJobs, [
    kinds,
    queues,
    args,
    priorities,
    maxAttempts,
    runAts,
    delays,
    timeouts,
    tags,
    metadata,
    keys,
    uniqueStates,
  ])
  // Ids are assigned in input order, and only unique rows can be skipped: walk inputs and the returned
  // rows (sorted by id) together; a unique input matches the next returned row only if the keys agree.
  const returned = sortedById(inserted)
  const results = new Array<InsertResult | null>(n)
  let next = 0
  for (let i = 0; i < n; i++) {
    const row = rows[i]!
    const candidate = returned[next]
    if (candidate !== undefined && (row.uniqueKey === null || candidate.unique_key === row.uniqueKey)) {
      results[i] = {
        _tag: "Inserted",
        id: String(candidate.id),
        state: candidate.state as JobState,
        runAt: candidate.run_at as Date,
      }
      next++
    } else {
      results[i] = null
    }
  }
  return results
}

/**
 * Explains why an operation on job `id` changed nothing: the job does not exist (JobNotFound), or its
 * state does not allow the operation (JobStateConflict naming the states that do).
 */
const refuseByState = async (
  db: Executor,
  id: string,
  operation: string,
  allowed: ReadonlyArray<JobState>,
): Promise<never> => {
  const current = await db.query("get job state", jobsSql.jobState, [id])
  if (current[0] === undefined) throw new JobNotFound({ id })
  throw new JobStateConflict({ id, state: current[0].state as string, operation, allowed })
}

/**
 * The canonical engine: one mutable row per job in `awa.jobs`, claimed with `FOR UPDATE SKIP LOCKED`,
 * every attempt write guarded by `(id, run_lease)`.
 */
export const canonicalEngine: Engine = {
  name: "canonical",

  insertMany: async (db, rows) => {
    if (rows.length === 0) return []
    let pending = rows.map((row, index) => ({ row, index }))
    const results = new Array<InsertResult>(rows.length)
    // A holder can finish between our insert and the lookup; re-insert those rows (bounded).
    for (let round = 0; round < 5 && pending.length > 0; round++) {
      const outcome = await insertOnce(
        db,
        pending.map((p) => p.row),
      )
      const conflicts: Array<{ row: InsertRow; index: number }> = []
      outcome.forEach((result, i) => {
        const p = pending[i]!
        if (result === null) conflicts.push(p)
        else results[p.index] = result
      })
      if (conflicts.length === 0) {
        pending = []
        break
      }
      const keys = [...new Set(conflicts.map((c) => c.row.uniqueKey as string))]
      const holders = await db.query("find unique key holders", jobsSql.findUniqueHolders, [keys])
      const byKey = new Map<string, Row>()
      for (const holder of holders) byKey.set(holder.unique_key as string, holder)
      pending = []
      for (const conflict of conflicts) {
        const holder = byKey.get(conflict.row.uniqueKey as string)
        if (holder === undefined) {
          pending.push(conflict)
          continue
        }
        results[conflict.index] = {
          _tag: "UniqueConflict",
          existingId: String(holder.id),
          existingState: holder.state as JobState,
          uniqueKey: conflict.row.uniqueKey as string,
        }
      }
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
    return db.copyFrom("copy jobs", jobsSql.copyJobsSql, copyChunks(rows))
  },

  claim: async (db, request) => {
    const rows = await db.query("claim jobs", jobsSql.claimJobs, [
      request.queue,
      request.limit,
      request.defaultTimeoutMs,
      request.kinds === undefined ? null : [...request.kinds],
    ])
    const claimed = new Array<ClaimedJob>(rows.length)
    for (let i = 0; i < rows.length; i++) claimed[i] = toClaimed(rows[i]!)
    return claimed
  },

  complete: async (db, refs) => {
    if (refs.length === 0) return empty
    const { ids, leases } = splitRefs(refs)
    // The statement returns one row: the count, and the ids only when some attempt was stale.
    const [row] = await db.query("complete jobs", jobsSql.completeJobs, [ids, leases])
    if (toNumber(row?.completed ?? 0) === refs.length) return { applied: refs, stale: [] }
    const result = partition(
      refs,
      ((row?.ids as Array<string> | null) ?? []).map((id) => ({ id })),
    )
    if (result.stale.length === 0) return result
    // A completion whose commit was acknowledged by the server but not to us (connection lost) is retried
    // by the worker: a job already completed under this lease counts as applied, not stale.
    const current = await db.query("read job leases", jobsSql.jobLeases, [result.stale.map((r) => r.id)])
    const done = new Set<string>()
    for (const row of current) {
      if (row.state === "completed") done.add(`${row.id}:${row.run_lease}`)
    }
    const applied = [...result.applied]
    const stale: Array<AttemptRef> = []
    for (const ref of result.stale) (done.has(`${ref.id}:${ref.runLease}`) ? applied : stale).push(ref)
    return { applied, stale }
  },

  retry: async (db, items) => {
    if (items.length === 0) return empty
    const refs = items.map((i) => i.ref)
    const { ids, leases } = splitRefs(refs)
    const rows = await db.query("retry jobs", jobsSql.retryJobs, [
      ids,
      leases,
      items.map((i) => Math.max(0, Math.round(i.delayMs))),
      items.map((i) => errorRecordJson(i.attempt, i.error)),
    ])
    return partition(refs, rows)
  },

  snooze: async (db, items) => {
    if (items.length === 0) return empty
    const refs = items.map((i) => i.ref)
    const { ids, leases } = splitRefs(refs)
    const rows = await db.query("snooze jobs", jobsSql.snoozeJobs, [
      ids,
      leases,
      items.map((i) => Math.max(0, Math.round(i.delayMs))),
    ])
    return partition(refs, rows)
  },

  cancelAttempts: async (db, items) => {
    if (items.length === 0) return empty
    const refs = items.map((i) => i.ref)
    const { ids, leases } = splitRefs(refs)
    const rows = await db.query("cancel jobs", jobsSql.cancelAttempts, [
      ids,
      leases,
      items.map((i) => errorRecordJson(i.attempt, i.error)),
    ])
    return partition(refs, rows)
  },

  fail: async (db, items): Promise<FailResult> => {
    if (items.length === 0) return { ...empty, deadLettered: [] }
    const refs = items.map((i) => i.ref)
    const { ids, leases } = splitRefs(refs)
    const rows = await db.query("fail jobs", jobsSql.failAttempts, [
      ids,
      leases,
      items.map((i) => errorRecordJson(i.attempt, i.error)),
    ])
    return {
      ...partition(refs, rows),
      deadLettered: rows.filter((r) => r.dlq === true).map((r) => String(r.id)),
    }
  },

  heartbeat: async (db, refs) => {
    if (refs.length === 0) return empty
    const { ids, leases } = splitRefs(refs)
    return partition(refs, await db.query("heartbeat jobs", jobsSql.heartbeatJobs, [ids, leases]))
  },

  release: async (db, refs) => {
    if (refs.length === 0) return empty
    const { ids, leases } = splitRefs(refs)
    return partition(refs, await db.query("release jobs", jobsSql.releaseJobs, [ids, leases]))
  },

  promote: async (db, limit) => {
    const rows = await db.query("promote due jobs", jobsSql.promoteDueJobs, [limit])
    return toNumber(rows[0]?.promoted ?? 0)
  },

  findRescuable: async (db, request) => {
    const rows = await db.query("find jobs to rescue", jobsSql.findRescuable, [
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

  deleteRetained: async (db, request) => {
    const rows = await db.query("delete retained jobs", jobsSql.deleteRetainedJobs, [
      Math.round(request.completedMs),
      Math.round(request.failedMs),
      request.limit,
    ])
    return toNumber(rows[0]?.deleted ?? 0)
  },

  getJob: async (db, id) => {
    const rows = await db.query("get job", jobsSql.getJob, [id])
    return rows[0] === undefined ? null : toJob(rows[0])
  },

  listJobs: async (db, filter, page): Promise<PageOf<Job>> => {
    const limit = pageLimit(page)
    const st = page.order === "desc" ? jobsSql.listJobsDesc : jobsSql.listJobsAsc
    const rows = await db.query("list jobs", st, [
      filter.queue ?? null,
      filter.kind ?? null,
      filter.states === undefined || filter.states.length === 0 ? null : `{${filter.states.join(",")}}`,
      filter.tag ?? null,
      page.cursor ?? null,
      limit + 1,
    ])
    const items = rows.slice(0, limit).map(toJob)
    return { items, nextCursor: rows.length > limit ? (items[items.length - 1]?.id ?? null) : null }
  },

  queueStats: async (db) => {
    const [counts, dlq, settings] = await Promise.all([
      db.query("count jobs", jobsSql.countJobsByQueueAndState, []),
      db.query("count dead letters", dlqSql.countDlqByQueue, []),
      db.query("list queues", queuesSql.listQueueSettings, []),
    ])
    return toQueueStats(counts, dlq, settings)
  },

  availableDepth: async (db) => {
    const rows = await db.query("read queue depth", jobsSql.availableDepth, [])
    return new Map(rows.map((row) => [row.queue as string, toNumber(row.count)]))
  },

  retryJob: async (db, id) => {
    let rows: Array<Row>
    try {
      rows = await db.query("retry job", jobsSql.retryJobNow, [id])
    } catch (error) {
      if (isUniqueViolation(error)) throw new UniqueKeyHeld({ id, existingJobId: null })
      throw error
    }
    if (rows[0] !== undefined) return toJob(rows[0])
    return refuseByState(db, id, "retry", ["scheduled", "retryable", "completed", "failed", "cancelled"])
  },

  cancelJob: async (db, id, reason) => {
    const rows = await db.query("cancel job", jobsSql.cancelJobById, [
      id,
      errorRecordJson(0, { kind: "cancelled", message: reason }),
    ])
    if (rows[0] !== undefined) return toJob(rows[0])
    return refuseByState(db, id, "cancel", [
      "scheduled",
      "available",
      "running",
      "retryable",
      "waiting_external",
    ])
  },

  cancelByUniqueKey: async (db, uniqueKey, reason) => {
    const rows = await db.query("cancel job by unique key", jobsSql.cancelByUniqueKey, [
      uniqueKey,
      errorRecordJson(0, { kind: "cancelled", message: reason }),
    ])
    return rows[0] === undefined ? null : toJob(rows[0])
  },

  setQueuePaused: async (db, queue, paused) => {
    const rows = await db.query(paused ? "pause queue" : "resume queue", queuesSql.setQueuePaused, [
      queue,
      paused,
    ])
    return toQueueSettings(rows[0]!)
  },

  setQueueDlq: async (db, queue, enabled) => {
    const rows = await db.query("set queue DLQ", queuesSql.setQueueDlq, [queue, enabled])
    return toQueueSettings(rows[0]!)
  },

  listQueues: async (db) =>
    (await db.query("list queues", queuesSql.listQueueSettings, [])).map(toQueueSettings),

  listDlq: async (db, filter, page) => {
    const limit = pageLimit(page)
    const rows = await db.query("list DLQ", dlqSql.listDlq, [
      filter.queue ?? null,
      filter.kind ?? null,
      page.cursor ?? null,
      limit + 1,
    ])
    const items = rows.slice(0, limit).map(toDeadLetter)
    return { items, nextCursor: rows.length > limit ? (items[items.length - 1]?.id ?? null) : null }
  },

  getDlq: async (db, id) => {
    const rows = await db.query("get DLQ entry", dlqSql.getDlq, [id])
    return rows[0] === undefined ? null : toDeadLetter(rows[0])
  },

  retryDlq: async (db, target) => {
    const id = "id" in target ? target.id : null
    const filter = "id" in target ? {} : target
    let rows: Array<Row>
    try {
      rows = await db.query("retry DLQ", dlqSql.retryDlq, [id, filter.queue ?? null, filter.kind ?? null])
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
    const rows = await db.query("purge DLQ", dlqSql.purgeDlq, [id, filter.queue ?? null, filter.kind ?? null])
    const purged = toNumber(rows[0]?.purged ?? 0)
    if (id !== null && purged === 0) throw new JobNotFound({ id })
    return purged
  },

  makeDue: async (db, filter) => {
    const rows = await db.query("make jobs due", jobsSql.makeJobsDue, [
      filter.ids === undefined ? null : [...filter.ids],
      filter.queue ?? null,
      filter.kind ?? null,
      filter.withinMs === undefined ? null : Math.max(0, Math.round(filter.withinMs)),
    ])
    return rows.map((row) => String(row.id))
  },

  purgeQueue: async (db, queue) => {
    const jobs = await db.query("purge queue jobs", jobsSql.deleteQueueJobs, [queue])
    const dead = await db.query("purge queue DLQ", dlqSql.deleteQueueDlq, [queue])
    return { jobs: toNumber(jobs[0]?.deleted ?? 0), deadLettered: toNumber(dead[0]?.deleted ?? 0) }
  },
}
