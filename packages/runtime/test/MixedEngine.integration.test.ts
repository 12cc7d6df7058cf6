// The mixed engine's continuation: while the storage state is mixed, a canonical job that waits again
// (retry, snooze, admin retry, DLQ retry, or a scheduled/retryable job moved by maintenance) continues in
// queue storage under the same id, atomically, with its unique key; stale writes stay stale.
// Engine-specific mechanics: these tests read awa.jobs and queue storage's unique_claims directly.
import { defineJob } from "@awa/model/JobDefinition"
import { UniqueKeyHeld } from "@awa/model/JobErrors"
import { checkNoJobLost, checkUniqueHolders, readJobPlaces } from "@awa/testing-src/StorageInvariants.js"
import { Schema } from "effect"
import { describe, expect, it } from "vitest"
import { makeAdmin } from "../src/Admin.js"
import { canonicalEngine } from "../src/CanonicalEngine.js"
import type { AttemptRef, ClaimedJob, Engine, InsertRow } from "../src/Engine.js"
import { makeMixedEngine } from "../src/MixedEngine.js"
import { type Executor, toExecutor } from "../src/PgExecutor.js"
import { makeProducer } from "../src/Producer.js"
import { makeQueueStorageEngine } from "../src/QueueStorageEngine.js"
import { enterMixedStorage, finalizeStorage, prepareStorage, registerRuntime } from "../src/StorageState.js"
import { useAwaDatabase } from "./support/awaDatabase.js"
import { followStorageState } from "./support/followState.js"

const db = useAwaDatabase()

followStorageState()

const Task = defineJob({ kind: "mixed.task", args: Schema.Struct({ n: Schema.Number }) })
const canonicalProducer = makeProducer({ engine: "canonical" })
const qs = makeQueueStorageEngine({ schema: "awa" })
const mixed: Engine = makeMixedEngine(canonicalEngine, qs, "awa")

const insertCanonical = async (
  n: number,
  options: Parameters<typeof canonicalProducer.insert>[3] = {},
): Promise<string> => {
  const r = await canonicalProducer.insert(db.pool, Task, { n }, options)
  if (r._tag !== "Inserted") throw new Error(`expected an insert, got ${r._tag}`)
  return r.id
}

const claimCanonical = async (x: Executor, queue = "default"): Promise<ClaimedJob> => {
  const [job] = await canonicalEngine.claim(x, { queue, limit: 1, defaultTimeoutMs: 60_000 })
  if (job === undefined) throw new Error(`nothing to claim in ${queue}`)
  return job
}

const goMixed = async (x: Executor): Promise<void> => {
  await prepareStorage(x)
  await registerRuntime(x, {
    id: "rt",
    host: "h",
    pid: 1,
    version: "1",
    engines: ["canonical", "queue_storage"],
  })
  await enterMixedStorage(x)
}

const inCanonical = async (id: string): Promise<boolean> =>
  (await db.pool.query("SELECT 1 FROM awa.jobs WHERE id = $1", [id])).rowCount === 1

const claimHolder = async (id: string): Promise<string | null> => {
  const r = await db.pool.query<{ job_id: string }>(
    "SELECT job_id::text FROM awa.unique_claims WHERE job_id = $1",
    [id],
  )
  return r.rows[0]?.job_id ?? null
}

const ref = (job: ClaimedJob): AttemptRef => ({ id: job.id, runLease: job.runLease })
const boom = { kind: "error" as const, message: "boom", name: "Error" }

describe("mixed engine continuation", () => {
  it("a retried canonical attempt continues in queue storage with the same id, attempt, errors, tags, metadata and unique key", async () => {
    const x = toExecutor(db.pool)
    const id = await insertCanonical(1, { unique: true, tags: ["t1"], metadata: { m: 1 }, maxAttempts: 5 })
    const job = await claimCanonical(x)
    const before = await canonicalEngine.getJob(x, id)
    await goMixed(x)

    const written = await mixed.retry(x, [{ ref: ref(job), attempt: 1, delayMs: 60_000, error: boom }])
    expect(written).toEqual({ applied: [ref(job)], stale: [] })
    expect(await inCanonical(id)).toBe(false)
    const after = await mixed.getJob(x, id)
    expect(after).toMatchObject({
      id,
      state: "retryable",
      attempt: 1,
      maxAttempts: 5,
      runLease: job.runLease,
      tags: ["t1"],
      metadata: { m: 1 },
      uniqueKey: before?.uniqueKey,
      createdAt: before?.createdAt,
    })
    expect(after?.errors.map((e) => [e.attempt, e.message])).toEqual([[1, "boom"]])
    expect(await claimHolder(id)).toBe(id)

    // A second write for the attempt already moved is stale, in either form.
    expect(await mixed.complete(x, [ref(job)])).toEqual({ applied: [], stale: [ref(job)] })
    expect(await mixed.retry(x, [{ ref: ref(job), attempt: 1, delayMs: 0, error: boom }])).toEqual({
      applied: [],
      stale: [ref(job)],
    })
    // The key still holds against a new insert while mixed.
    const again = await makeProducer().insert(db.pool, Task, { n: 1 }, { unique: true })
    expect(again).toMatchObject({ _tag: "UniqueConflict", existingId: id })

    // It runs again from queue storage: next lease, next attempt, and completes there.
    expect(await mixed.makeDue(x, { ids: [id] })).toEqual([id])
    const [next] = await mixed.claim(x, { queue: "default", limit: 5, defaultTimeoutMs: 60_000 })
    expect(next).toMatchObject({ id, attempt: 2, runLease: job.runLease + 1 })
    expect((await mixed.complete(x, [ref(next!)])).applied).toEqual([ref(next!)])
    expect((await mixed.getJob(x, id))?.state).toBe("completed")
    expect(await checkUniqueHolders(db.pool)).toEqual([])
  })

  it("a snoozed canonical attempt due now is ready in queue storage at once, its attempt given back", async () => {
    const x = toExecutor(db.pool)
    const id = await insertCanonical(2)
    const job = await claimCanonical(x)
    await goMixed(x)
    expect((await mixed.snooze(x, [{ ref: ref(job), delayMs: 0 }])).applied).toEqual([ref(job)])
    expect(await inCanonical(id)).toBe(false)
    expect(await mixed.getJob(x, id)).toMatchObject({
      state: "available",
      attempt: 0,
      runLease: job.runLease,
    })
    const [next] = await mixed.claim(x, { queue: "default", limit: 5, defaultTimeoutMs: 60_000 })
    expect(next).toMatchObject({ id, attempt: 1, runLease: job.runLease + 1 })
  })

  it("a canonical write racing the continuation of the same attempt: exactly one of them applies", async () => {
    const x = toExecutor(db.pool)
    const jobs: Array<ClaimedJob> = []
    for (let n = 0; n < 12; n++) {
      await insertCanonical(100 + n, { unique: true })
      jobs.push(await claimCanonical(x))
    }
    await goMixed(x)
    const outcomes = await Promise.all(
      jobs.map(async (job, i) => {
        const [a, b] = await Promise.all([
          mixed.retry(x, [{ ref: ref(job), attempt: 1, delayMs: i % 2 === 0 ? 0 : 50_000, error: boom }]),
          i % 3 === 0
            ? mixed.fail(x, [{ ref: ref(job), attempt: 1, error: boom }])
            : mixed.complete(x, [ref(job)]),
        ])
        return a.applied.length + b.applied.length
      }),
    )
    expect(outcomes).toEqual(jobs.map(() => 1))
    const expected = new Map(
      jobs.map((j) => [j.id, ["completed", "failed", "available", "retryable"] as ReadonlyArray<string>]),
    )
    expect(checkNoJobLost(await readJobPlaces(db.pool), expected)).toEqual([])
    expect(await checkUniqueHolders(db.pool)).toEqual([])
  })

  it("an admin retry of a canonical failed job and of a canonical DLQ entry continues in queue storage", async () => {
    const x = toExecutor(db.pool)
    const failed = await insertCanonical(3, { unique: true, tags: ["f"] })
    const a = await claimCanonical(x)
    await canonicalEngine.fail(x, [{ ref: ref(a), attempt: 1, error: boom }])
    await canonicalEngine.setQueueDlq(x, "dead", true)
    const dead = await insertCanonical(4, { queue: "dead", metadata: { d: true } })
    const b = await claimCanonical(x, "dead")
    expect((await canonicalEngine.fail(x, [{ ref: ref(b), attempt: 1, error: boom }])).deadLettered).toEqual([
      dead,
    ])
    await goMixed(x)

    const retried = await mixed.retryJob(x, failed)
    expect(retried).toMatchObject({ id: failed, state: "available", attempt: 0, tags: ["f"], runLease: 1 })
    expect(retried.errors).toHaveLength(1)
    expect(await inCanonical(failed)).toBe(false)
    expect(await claimHolder(failed)).toBe(failed)

    expect(await mixed.retryDlq(x, { id: dead })).toEqual([dead])
    expect(await mixed.getDlq(x, dead)).toBeNull()
    expect(await mixed.getJob(x, dead)).toMatchObject({
      state: "available",
      attempt: 0,
      metadata: { d: true },
    })
    expect(
      (await db.pool.query("SELECT count(*)::int AS n FROM awa.dlq WHERE id = $1", [dead])).rows[0].n,
    ).toBe(0)

    // Running canonical work is refused as it is within the canonical engine.
    await insertCanonical(5)
    const running = await claimCanonical(x)
    await expect(mixed.retryJob(x, running.id)).rejects.toMatchObject({ _tag: "JobStateConflict" })
  })

  it("an admin retry whose unique key another job holds is refused and leaves the canonical job where it was", async () => {
    const x = toExecutor(db.pool)
    const failed = await insertCanonical(6, { unique: true })
    const a = await claimCanonical(x)
    await canonicalEngine.fail(x, [{ ref: ref(a), attempt: 1, error: boom }])
    await goMixed(x)
    // The failed job let go of its key; a new job takes it in queue storage.
    const taker = await makeProducer().insert(db.pool, Task, { n: 6 }, { unique: true })
    expect(taker._tag).toBe("Inserted")
    await expect(mixed.retryJob(x, failed)).rejects.toBeInstanceOf(UniqueKeyHeld)
    expect(await inCanonical(failed)).toBe(true)
    expect((await mixed.getJob(x, failed))?.state).toBe("failed")
    expect(await checkUniqueHolders(db.pool)).toEqual([])
  })

  it("maintenance moves waiting canonical jobs (even next month's) to queue storage, so finalize can pass", async () => {
    const x = toExecutor(db.pool)
    const nextMonth = new Date(Date.now() + 30 * 24 * 3600 * 1000)
    const later = await insertCanonical(7, { runAt: nextMonth, unique: true, tags: ["later"] })
    const due = await insertCanonical(8, { runAt: new Date(Date.now() + 200) })
    const retrying = await insertCanonical(9)
    const r = await claimCanonical(x)
    expect(r.id).toBe(retrying)
    await canonicalEngine.retry(x, [{ ref: ref(r), attempt: 1, delayMs: 3_600_000, error: boom }])
    await new Promise((resolve) => setTimeout(resolve, 250))
    await goMixed(x)

    await mixed.promote(x, 100)
    for (const id of [later, due, retrying]) expect(await inCanonical(id)).toBe(false)
    expect(await mixed.getJob(x, later)).toMatchObject({ state: "scheduled", tags: ["later"] })
    expect((await mixed.getJob(x, later))?.runAt.getTime()).toBe(nextMonth.getTime())
    expect(await claimHolder(later)).toBe(later)
    expect(await mixed.getJob(x, due)).toMatchObject({ state: "available" })
    expect(await mixed.getJob(x, retrying)).toMatchObject({ state: "retryable", attempt: 1, runLease: 1 })
    expect(await finalizeStorage(x)).toBe("active")
  })

  it("queueStats counts every job exactly once while maintenance moves canonical jobs to queue storage", async () => {
    const x = toExecutor(db.pool)
    const total = 300
    const later = new Date(Date.now() + 3_600_000)
    const inserted = await canonicalProducer.insertMany(
      db.pool,
      Array.from({ length: total }, (_, n) => ({ definition: Task, args: { n }, options: { runAt: later } })),
    )
    expect(inserted.every((r) => r._tag === "Inserted")).toBe(true)
    await goMixed(x)

    const sums: Array<number> = []
    let moving = true
    const mover = (async () => {
      try {
        // After each batch, a sample ends before the next batch: samples and moves interleave on any machine.
        while ((await mixed.promote(x, 5)) > 0) {
          const seen = sums.length
          while (sums.length === seen) await new Promise((resolve) => setTimeout(resolve, 1))
        }
      } finally {
        moving = false
      }
    })()
    while (moving) {
      const stats = (await mixed.queueStats(x)).find((q) => q.queue === "default")
      sums.push(Object.values(stats?.counts ?? {}).reduce((a, b) => a + b, 0))
    }
    await mover
    // The move finished: nothing is left in awa.jobs.
    expect((await db.pool.query("SELECT count(*)::int AS n FROM awa.jobs")).rows[0].n).toBe(0)
    expect(sums.filter((n) => n !== total)).toEqual([])
    expect((await mixed.queueStats(x)).find((q) => q.queue === "default")?.counts.scheduled).toBe(total)
  })

  it("a canonical insert from a producer that has not followed the move never takes a key queue storage holds", async () => {
    const x = toExecutor(db.pool)
    await goMixed(x)
    const row = (key: string): InsertRow => ({
      kind: "mixed.task",
      queue: "default",
      argsJson: "{}",
      priority: 2,
      maxAttempts: 3,
      runAt: null,
      delayMs: null,
      timeoutMs: null,
      tags: [],
      metadataJson: "{}",
      uniqueKey: key,
      uniqueStates: ["scheduled", "available", "running", "retryable", "completed"],
    })
    const key = (n: number) => n.toString(16).padStart(64, "0")
    // Held in queue storage: a stale canonical insert of the key is refused with a clear unique violation.
    expect((await mixed.insertMany(x, [row(key(1))]))[0]?._tag).toBe("Inserted")
    await expect(canonicalEngine.insertMany(x, [row(key(1))])).rejects.toMatchObject({
      message: expect.stringContaining("is held by queue-storage job"),
    })
    // Racing on fresh keys: whichever engine wins, the key has one holder.
    const outcomes = await Promise.all(
      Array.from({ length: 16 }, async (_, n) => {
        const [a, b] = await Promise.allSettled([
          canonicalEngine.insertMany(x, [row(key(100 + n))]),
          mixed.insertMany(x, [row(key(100 + n))]),
        ])
        const won = [a, b].filter((r) => r.status === "fulfilled" && r.value[0]?._tag === "Inserted")
        return won.length
      }),
    )
    expect(outcomes).toEqual(outcomes.map(() => 1))
    expect(await checkUniqueHolders(db.pool)).toEqual([])
  })

  it("after finalize, admin still reads, retries and purges the canonical jobs kept as history", async () => {
    const x = toExecutor(db.pool)
    const done = await insertCanonical(20)
    await canonicalEngine.complete(x, [ref(await claimCanonical(x))])
    const failed = await insertCanonical(21)
    await canonicalEngine.fail(x, [{ ref: ref(await claimCanonical(x)), attempt: 1, error: boom }])
    await canonicalEngine.setQueueDlq(x, "dead", true)
    const dead = await insertCanonical(22, { queue: "dead" })
    await canonicalEngine.fail(x, [{ ref: ref(await claimCanonical(x, "dead")), attempt: 1, error: boom }])
    await goMixed(x)
    expect(await finalizeStorage(x)).toBe("active")
    const fresh = await makeProducer().insert(db.pool, Task, { n: 23 })
    if (fresh._tag !== "Inserted") throw new Error("expected an insert")

    // Admin follows the state (no engine named): the active engine's reads cover the canonical history too.
    const admin = makeAdmin()
    expect((await admin.getJob(db.pool, done)).state).toBe("completed")
    const listed = await admin.listJobs(db.pool, {}, { limit: 2 })
    const rest = await admin.listJobs(db.pool, {}, { limit: 10, cursor: listed.nextCursor! })
    expect([...listed.items, ...rest.items].map((j) => j.id).sort()).toEqual([done, failed, fresh.id].sort())
    expect((await admin.listDlq(db.pool)).items.map((e) => e.id)).toEqual([dead])

    // An operator retry continues the canonical job in queue storage, as while mixed.
    expect(await admin.retryJob(db.pool, failed)).toMatchObject({ id: failed, state: "available" })
    expect(await inCanonical(failed)).toBe(false)
    expect(await admin.retryDlq(db.pool, { id: dead })).toEqual([dead])
    expect((await admin.getJob(db.pool, dead)).state).toBe("available")
    expect((await admin.getJob(db.pool, fresh.id)).state).toBe("available")
  })
})
