/**
 * The engine of the `mixed` storage state, while jobs move from the canonical engine to queue storage:
 * new jobs go to queue storage; claims take canonical work first (so the canonical backlog drains), then
 * queue storage; every attempt write goes to the engine that holds the attempt's job (job ids are shared
 * between the engines, so an id names one job in one of them); admin reads cover both.
 *
 * A canonical job that waits again continues in queue storage under the same id (the continuation): a
 * retried or snoozed canonical attempt (a worker's outcome or a maintenance rescue), an admin `retryJob` of a
 * canonical job and a `retryDlq` of a canonical DLQ entry move the job out of `awa.jobs` / `awa.dlq` into
 * queue storage's deferred or ready rows, unique key included, in one transaction; and maintenance moves
 * waiting (scheduled, retryable) canonical jobs over with each promotion. So the canonical backlog only
 * shrinks: what is left is available or running canonical work, which workers drain in place.
 */
import { UniqueKeyHeld } from "@awa/model/JobErrors"
import type { JobState } from "@awa/model/JobState"
import type {
  AttemptRef,
  AttemptWriteResult,
  ClaimedJob,
  DlqFilter,
  Engine,
  FailResult,
  InsertResult,
  Job,
  Page,
  PageOf,
  QueueSettings,
  QueueStats,
  RetryInput,
  SnoozeInput,
} from "./Engine.js"
import { errorRecordJson, isUniqueViolation, partition, type Row, splitRefs } from "./internal/engineRows.js"
import { adoptionStatements } from "./internal/sql/queueStorage/adoption.js"
import { schemaSql } from "./internal/sql/queueStorage/schemaStatement.js"
import { canonicalIds, canonicalUniqueHolders } from "./internal/sql/storageState.js"
import { type Executor, executorTarget, type PgPool, toExecutor, withTransaction } from "./PgExecutor.js"

const emptyWrite: AttemptWriteResult = { applied: [], stale: [] }

const mergeWrites = <R extends AttemptWriteResult>(a: R, b: R): R => ({
  ...a,
  ...b,
  applied: [...a.applied, ...b.applied],
  stale: [...a.stale, ...b.stale],
})

const mergeFails = (a: FailResult, b: FailResult): FailResult => ({
  ...mergeWrites(a, b),
  deadLettered: [...a.deadLettered, ...b.deadLettered],
})

// Lists both engines' pages one after the other: canonical first (its cursor prefixed c:), then queue
// storage (prefixed q:), so a listing while mixed shows every job once.
const mergedPages = async <T, F>(
  db: Executor,
  canonical: (db: Executor, filter: F, page: Page) => Promise<PageOf<T>>,
  queueStorage: (db: Executor, filter: F, page: Page) => Promise<PageOf<T>>,
  filter: F,
  page: Page,
): Promise<PageOf<T>> => {
  const limit = page.limit ?? 100
  const order = page.order === undefined ? {} : { order: page.order }
  const cursor = page.cursor ?? null
  if (cursor === null || cursor.startsWith("c:")) {
    const first = await canonical(db, filter, {
      limit,
      ...order,
      ...(cursor === null ? {} : { cursor: cursor.slice(2) }),
    })
    if (first.nextCursor !== null) return { items: first.items, nextCursor: `c:${first.nextCursor}` }
    const room = limit - first.items.length
    if (room <= 0) return { items: first.items, nextCursor: "q:" }
    const rest = await queueStorage(db, filter, { limit: room, ...order })
    return {
      items: [...first.items, ...rest.items],
      nextCursor: rest.nextCursor === null ? null : `q:${rest.nextCursor}`,
    }
  }
  const body = cursor.startsWith("q:") ? cursor.slice(2) : cursor
  const rest = await queueStorage(db, filter, { limit, ...order, ...(body === "" ? {} : { cursor: body }) })
  return { items: rest.items, nextCursor: rest.nextCursor === null ? null : `q:${rest.nextCursor}` }
}

const mergeStats = (
  a: ReadonlyArray<QueueStats>,
  b: ReadonlyArray<QueueStats>,
): ReadonlyArray<QueueStats> => {
  const byQueue = new Map<string, QueueStats>()
  for (const s of [...a, ...b]) {
    const seen = byQueue.get(s.queue)
    if (seen === undefined) {
      byQueue.set(s.queue, s)
      continue
    }
    const counts = { ...seen.counts }
    for (const [state, n] of Object.entries(s.counts)) {
      counts[state as keyof typeof counts] = (counts[state as keyof typeof counts] ?? 0) + n
    }
    byQueue.set(s.queue, { ...seen, counts, deadLettered: seen.deadLettered + s.deadLettered })
  }
  return [...byQueue.values()].sort((x, y) => (x.queue < y.queue ? -1 : x.queue > y.queue ? 1 : 0))
}

const mergeQueues = (
  a: ReadonlyArray<QueueSettings>,
  b: ReadonlyArray<QueueSettings>,
): ReadonlyArray<QueueSettings> => {
  const byQueue = new Map<string, QueueSettings>()
  for (const s of [...b, ...a]) byQueue.set(s.queue, s)
  return [...byQueue.values()].sort((x, y) => (x.queue < y.queue ? -1 : x.queue > y.queue ? 1 : 0))
}

/**
 * Queue storage's `insertMany` that also honours unique keys held by canonical jobs (`awa.jobs` rows in one of
 * their unique states): such a row is a `UniqueConflict` naming the canonical holder, and the rest go to queue
 * storage. The mixed engine inserts this way, and so does queue storage once active after a move, because
 * canonical jobs kept as history (completed, by default a unique state) still hold their keys. Rows without a
 * unique key cost nothing extra.
 */
export const insertHonouringCanonicalKeys =
  (queueStorage: Engine, schema = "awa"): Engine["insertMany"] =>
  async (db, rows) => {
    const keys = [...new Set(rows.flatMap((r) => (r.uniqueKey === null ? [] : [r.uniqueKey])))].sort()
    if (keys.length === 0) return queueStorage.insertMany(db, rows)
    const adopt = adoptionStatements(schemaSql(schema))
    // Lock the keys, then look at awa.jobs in a fresh snapshot, then enqueue, all in one transaction: a
    // canonical insert of the same key (a producer that has not followed the move) waits for the lock and
    // then meets the claim, so the two engines never both hand the key out.
    const run = async (tx: Executor): Promise<ReadonlyArray<InsertResult>> => {
      await tx.query("lock unique keys", adopt.lockUniqueKeys, [keys])
      const held = await tx.query<{ unique_key: string; id: string; state: JobState }>(
        "check unique keys held by canonical jobs",
        canonicalUniqueHolders,
        [keys],
      )
      if (held.length === 0) return queueStorage.insertMany(tx, rows)
      const holders = new Map(held.map((h) => [h.unique_key, h]))
      const free = rows.filter((r) => r.uniqueKey === null || !holders.has(r.uniqueKey))
      const inserted = free.length === 0 ? [] : [...(await queueStorage.insertMany(tx, free))]
      return rows.map((r): InsertResult => {
        const holder = r.uniqueKey === null ? undefined : holders.get(r.uniqueKey)
        if (holder === undefined) return inserted.shift() as InsertResult
        return {
          _tag: "UniqueConflict",
          existingId: holder.id,
          existingState: holder.state,
          uniqueKey: holder.unique_key,
        }
      })
    }
    return inOneTransaction(db, run)
  }

/**
 * Runs `fn` inside one transaction: the caller's when `db` is bound to a client (its isolation decides),
 * otherwise one taken on a connection of `db`'s pool (an unbound executor would run each statement on any
 * pooled connection), started with `begin` (e.g. `SET TRANSACTION ...`) when given.
 */
const inOneTransaction = async <T>(
  db: Executor,
  fn: (tx: Executor) => Promise<T>,
  begin?: string,
): Promise<T> => {
  if (db.bound) return fn(db)
  const target = executorTarget(db)
  if (!("totalCount" in target && "idleCount" in target)) return fn(db)
  return withTransaction(target as PgPool, async (client) => {
    if (begin !== undefined) await client.query(begin)
    return fn(toExecutor(client))
  })
}

/**
 * The engine of the mixed state over `canonical` and `queueStorage`, whose schema is `schema` (default `awa`;
 * the continuation writes there): see the module comment.
 */
export const makeMixedEngine = (canonical: Engine, queueStorage: Engine, schema = "awa"): Engine => {
  const adopt = adoptionStatements(schemaSql(schema))
  // Continues canonical attempts in queue storage (retry: consume, snooze: give the attempt back).
  const continueAttempts = async (
    db: Executor,
    items: ReadonlyArray<{ readonly ref: AttemptRef; readonly delayMs: number }>,
    errors: ReadonlyArray<string | null>,
    consume: boolean,
  ): Promise<AttemptWriteResult> => {
    if (items.length === 0) return emptyWrite
    const refs = items.map((i) => i.ref)
    const { ids, leases } = splitRefs(refs)
    const rows = await db.query(
      consume
        ? "continue retried canonical jobs in queue storage"
        : "continue snoozed canonical jobs in queue storage",
      adopt.attempts,
      [ids, leases, items.map((i) => Math.max(0, Math.round(i.delayMs))), [...errors], consume],
    )
    return partition(refs, rows)
  }
  // Splits items by the engine holding their job: one lookup of the ids in awa.jobs.
  const split = async <I>(
    db: Executor,
    items: ReadonlyArray<I>,
    refOf: (item: I) => AttemptRef,
  ): Promise<{ readonly canonical: Array<I>; readonly queueStorage: Array<I> }> => {
    const c: Array<I> = []
    const q: Array<I> = []
    if (items.length === 0) return { canonical: c, queueStorage: q }
    const ids = [...new Set(items.map((i) => refOf(i).id))]
    const rows = await db.query<{ id: string }>("route attempts (mixed storage)", canonicalIds, [ids])
    const inCanonical = new Set(rows.map((r) => r.id))
    for (const item of items) (inCanonical.has(refOf(item).id) ? c : q).push(item)
    return { canonical: c, queueStorage: q }
  }
  const routed =
    <I, R extends AttemptWriteResult>(
      method: (engine: Engine) => (db: Executor, items: ReadonlyArray<I>) => Promise<R>,
      refOf: (item: I) => AttemptRef,
      merge: (a: R, b: R) => R,
    ) =>
    async (db: Executor, items: ReadonlyArray<I>): Promise<R> => {
      const parts = await split(db, items, refOf)
      const a = parts.canonical.length === 0 ? undefined : await method(canonical)(db, parts.canonical)
      const b =
        parts.queueStorage.length === 0 ? undefined : await method(queueStorage)(db, parts.queueStorage)
      if (a !== undefined && b !== undefined) return merge(a, b)
      return a ?? b ?? (merge(emptyWrite as R, emptyWrite as R) as R)
    }
  const self = (r: AttemptRef) => r
  const byRef = (i: { readonly ref: AttemptRef }) => i.ref
  // The engine holding job `id`: canonical when awa.jobs has it.
  const holder = async (db: Executor, id: string): Promise<Engine> => {
    const rows = await db.query<{ id: string }>("route job (mixed storage)", canonicalIds, [[id]])
    return rows.length > 0 ? canonical : queueStorage
  }
  const failRouted = routed((e) => e.fail, byRef, mergeFails)
  return {
    name: "queue_storage",
    // Unique keys still held by canonical jobs are honoured: such a row is a UniqueConflict naming the
    // canonical holder, and the rest go to queue storage.
    insertMany: insertHonouringCanonicalKeys(queueStorage, schema),
    copyInsert: (db, rows) => queueStorage.copyInsert(db, rows),
    claim: async (db, request) => {
      const first: ReadonlyArray<ClaimedJob> = await canonical.claim(db, request)
      if (first.length >= request.limit) return first
      const rest = await queueStorage.claim(db, { ...request, limit: request.limit - first.length })
      return [...first, ...rest]
    },
    complete: routed((e) => e.complete, self, mergeWrites),
    retry: routed<RetryInput, AttemptWriteResult>(
      (e) =>
        e === canonical
          ? (db, items) =>
              continueAttempts(
                db,
                items,
                items.map((i) => errorRecordJson(i.attempt, i.error)),
                true,
              )
          : e.retry,
      byRef,
      mergeWrites,
    ),
    snooze: routed<SnoozeInput, AttemptWriteResult>(
      (e) =>
        e === canonical
          ? (db, items) =>
              continueAttempts(
                db,
                items,
                items.map(() => null),
                false,
              )
          : e.snooze,
      byRef,
      mergeWrites,
    ),
    cancelAttempts: routed((e) => e.cancelAttempts, byRef, mergeWrites),
    // A queue-storage failure reads queue storage's DLQ setting: canonical settings made before the move are
    // copied first (maintenance copies them too, every promotion).
    fail: async (db, items) => {
      if (items.length > 0)
        await db.query("copy canonical queue settings to queue storage", adopt.queueSettings, [])
      return failRouted(db, items)
    },
    heartbeat: routed((e) => e.heartbeat, self, mergeWrites),
    release: routed((e) => e.release, self, mergeWrites),
    // Waiting canonical jobs move to queue storage first (those already due are readied there at once), so
    // nothing far in the future keeps the canonical backlog from draining; rows another transaction holds
    // stay behind and are promoted in place.
    promote: async (db, limit) => {
      await db.query("copy canonical queue settings to queue storage", adopt.queueSettings, [])
      const [moved] = await db.query<{ moved: number }>(
        "move waiting canonical jobs to queue storage",
        adopt.waiting,
        [limit],
      )
      return (
        Number(moved?.moved ?? 0) +
        (await canonical.promote(db, limit)) +
        (await queueStorage.promote(db, limit))
      )
    },
    findRescuable: async (db, request) => [
      ...(await canonical.findRescuable(db, request)),
      ...(await queueStorage.findRescuable(db, request)),
    ],
    deleteRetained: async (db, request) =>
      (await canonical.deleteRetained(db, request)) + (await queueStorage.deleteRetained(db, request)),
    getJob: async (db, id): Promise<Job | null> =>
      (await canonical.getJob(db, id)) ?? (await queueStorage.getJob(db, id)),
    listJobs: (db, filter, page) => mergedPages(db, canonical.listJobs, queueStorage.listJobs, filter, page),
    // Both engines' counts from one snapshot: a job that maintenance moves from canonical to queue storage
    // between two separate reads would be counted in both, or in neither.
    queueStats: (db) =>
      inOneTransaction(
        db,
        async (tx) => mergeStats(await canonical.queueStats(tx), await queueStorage.queueStats(tx)),
        "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY",
      ),
    availableDepth: async (db) => {
      const depth = new Map(await canonical.availableDepth(db))
      for (const [queue, n] of await queueStorage.availableDepth(db))
        depth.set(queue, (depth.get(queue) ?? 0) + n)
      return depth
    },
    // A canonical job retried by an operator continues in queue storage; one that cannot be retried (running,
    // available) gets the canonical engine's refusal.
    retryJob: async (db, id) => {
      if ((await holder(db, id)) !== canonical) return queueStorage.retryJob(db, id)
      let rows: Array<Row>
      try {
        rows = await db.query("retry canonical job in queue storage", adopt.retryJob, [id])
      } catch (error) {
        if (isUniqueViolation(error)) throw new UniqueKeyHeld({ id, existingJobId: null })
        throw error
      }
      if (rows[0]?.done !== true) return canonical.retryJob(db, id)
      const job = await queueStorage.getJob(db, id)
      if (job === null) throw new Error(`job ${id} moved to queue storage but cannot be read back`)
      return job
    },
    cancelJob: async (db, id, reason) => (await holder(db, id)).cancelJob(db, id, reason),
    cancelByUniqueKey: async (db, key, reason) =>
      (await canonical.cancelByUniqueKey(db, key, reason)) ??
      (await queueStorage.cancelByUniqueKey(db, key, reason)),
    setQueuePaused: async (db, queue, paused) => {
      await canonical.setQueuePaused(db, queue, paused)
      return queueStorage.setQueuePaused(db, queue, paused)
    },
    setQueueDlq: async (db, queue, enabled) => {
      await canonical.setQueueDlq(db, queue, enabled)
      return queueStorage.setQueueDlq(db, queue, enabled)
    },
    listQueues: async (db) => mergeQueues(await canonical.listQueues(db), await queueStorage.listQueues(db)),
    listDlq: (db, filter, page) => mergedPages(db, canonical.listDlq, queueStorage.listDlq, filter, page),
    getDlq: async (db, id) => (await canonical.getDlq(db, id)) ?? (await queueStorage.getDlq(db, id)),
    // Canonical DLQ entries retried while mixed continue in queue storage.
    retryDlq: async (db, target) => {
      const id = "id" in target && typeof target.id === "string" ? target.id : null
      const filter: DlqFilter = "id" in target ? {} : target
      if (id !== null && (await canonical.getDlq(db, id)) === null) return queueStorage.retryDlq(db, target)
      let rows: Array<Row>
      try {
        rows = await db.query("retry canonical DLQ entries in queue storage", adopt.retryDlq, [
          id,
          filter.queue ?? null,
          filter.kind ?? null,
        ])
      } catch (error) {
        if (isUniqueViolation(error)) throw new UniqueKeyHeld({ id: id ?? "(bulk)", existingJobId: null })
        throw error
      }
      const moved = rows.map((row) => String(row.id))
      return id !== null ? moved : [...moved, ...(await queueStorage.retryDlq(db, target))]
    },
    purgeDlq: async (db, target) =>
      "id" in target && typeof target.id === "string"
        ? (await canonical.getDlq(db, target.id)) !== null
          ? canonical.purgeDlq(db, target)
          : queueStorage.purgeDlq(db, target)
        : (await canonical.purgeDlq(db, target)) + (await queueStorage.purgeDlq(db, target)),
    makeDue: async (db, filter) => [
      ...(await canonical.makeDue(db, filter)),
      ...(await queueStorage.makeDue(db, filter)),
    ],
    purgeQueue: async (db, queue) => {
      const a = await canonical.purgeQueue(db, queue)
      const b = await queueStorage.purgeQueue(db, queue)
      return { jobs: a.jobs + b.jobs, deadLettered: a.deadLettered + b.deadLettered }
    },
  }
}
