/**
 * The engine of the `mixed` storage state, while jobs move from the canonical engine to queue storage:
 * new jobs go to queue storage; claims take canonical work first (so the canonical backlog drains), then
 * queue storage; every attempt write goes to the engine that holds the attempt's job (job ids are shared
 * between the engines, so an id names one job in one of them); admin reads cover both.
 */
import type { JobState } from "@awa/model/JobState"
import type {
  AttemptRef,
  AttemptWriteResult,
  ClaimedJob,
  Engine,
  FailResult,
  InsertResult,
  Job,
  Page,
  PageOf,
  QueueSettings,
  QueueStats,
} from "./Engine.js"
import { canonicalIds, canonicalUniqueHolders } from "./internal/sql/storageState.js"
import type { Executor } from "./PgExecutor.js"

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

/** The engine of the mixed state over `canonical` and `queueStorage` (see the module comment). */
export const makeMixedEngine = (canonical: Engine, queueStorage: Engine): Engine => {
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
  return {
    name: "queue_storage",
    // Unique keys still held by canonical jobs are honoured: such a row is a UniqueConflict naming the
    // canonical holder, and the rest go to queue storage.
    insertMany: async (db, rows) => {
      const keys = [...new Set(rows.flatMap((r) => (r.uniqueKey === null ? [] : [r.uniqueKey])))]
      if (keys.length === 0) return queueStorage.insertMany(db, rows)
      const held = await db.query<{ unique_key: string; id: string; state: JobState }>(
        "check unique keys held by canonical jobs (mixed storage)",
        canonicalUniqueHolders,
        [keys],
      )
      if (held.length === 0) return queueStorage.insertMany(db, rows)
      const holders = new Map(held.map((h) => [h.unique_key, h]))
      const free = rows.filter((r) => r.uniqueKey === null || !holders.has(r.uniqueKey))
      const inserted = free.length === 0 ? [] : [...(await queueStorage.insertMany(db, free))]
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
    },
    copyInsert: (db, rows) => queueStorage.copyInsert(db, rows),
    claim: async (db, request) => {
      const first: ReadonlyArray<ClaimedJob> = await canonical.claim(db, request)
      if (first.length >= request.limit) return first
      const rest = await queueStorage.claim(db, { ...request, limit: request.limit - first.length })
      return [...first, ...rest]
    },
    complete: routed((e) => e.complete, self, mergeWrites),
    retry: routed((e) => e.retry, byRef, mergeWrites),
    snooze: routed((e) => e.snooze, byRef, mergeWrites),
    cancelAttempts: routed((e) => e.cancelAttempts, byRef, mergeWrites),
    fail: routed((e) => e.fail, byRef, mergeFails),
    heartbeat: routed((e) => e.heartbeat, self, mergeWrites),
    release: routed((e) => e.release, self, mergeWrites),
    promote: async (db, limit) =>
      (await canonical.promote(db, limit)) + (await queueStorage.promote(db, limit)),
    findRescuable: async (db, request) => [
      ...(await canonical.findRescuable(db, request)),
      ...(await queueStorage.findRescuable(db, request)),
    ],
    deleteRetained: async (db, request) =>
      (await canonical.deleteRetained(db, request)) + (await queueStorage.deleteRetained(db, request)),
    getJob: async (db, id): Promise<Job | null> =>
      (await canonical.getJob(db, id)) ?? (await queueStorage.getJob(db, id)),
    listJobs: (db, filter, page) => mergedPages(db, canonical.listJobs, queueStorage.listJobs, filter, page),
    queueStats: async (db) => mergeStats(await canonical.queueStats(db), await queueStorage.queueStats(db)),
    availableDepth: async (db) => {
      const depth = new Map(await canonical.availableDepth(db))
      for (const [queue, n] of await queueStorage.availableDepth(db))
        depth.set(queue, (depth.get(queue) ?? 0) + n)
      return depth
    },
    retryJob: async (db, id) => (await holder(db, id)).retryJob(db, id),
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
    retryDlq: async (db, target) =>
      "id" in target && typeof target.id === "string"
        ? (await canonical.getDlq(db, target.id)) !== null
          ? canonical.retryDlq(db, target)
          : queueStorage.retryDlq(db, target)
        : [...(await canonical.retryDlq(db, target)), ...(await queueStorage.retryDlq(db, target))],
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
