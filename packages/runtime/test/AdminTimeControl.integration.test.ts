// Admin.makeDue and Admin.purgeQueue: time control and queue disposal for tests (used by @awa/testing).
import { defineJob } from "@awa/model/JobDefinition"
import { FilterRequired, JobNotFound } from "@awa/model/JobErrors"
import { Schema } from "effect"
import { describe, expect, it } from "vitest"
import { makeAdmin } from "../src/Admin.js"
import { toExecutor, withTransaction } from "../src/PgExecutor.js"
import { job, makeProducer } from "../src/Producer.js"
import { testEngine, useAwaDatabase } from "./support/awaDatabase.js"

const db = useAwaDatabase()
const producer = makeProducer()
const admin = makeAdmin()
const A = defineJob({ kind: "a", args: Schema.Struct({ n: Schema.Number }) })
const B = defineJob({ kind: "b", args: Schema.Struct({ n: Schema.Number }), queue: "other" })

const insertedIds = (results: ReadonlyArray<{ _tag: string; id?: string }>): Array<string> =>
  results.map((r) => {
    if (r._tag !== "Inserted" || r.id === undefined) throw new Error(`expected an insert, got ${r._tag}`)
    return r.id
  })

describe("Admin.makeDue", () => {
  it("makes scheduled and retryable jobs available now, keeping their attempt counts", async () => {
    const [scheduled, retrying, far, other] = insertedIds(
      await producer.insertMany(db.pool, [
        job(A, { n: 1 }, { delay: "1 hour" }),
        job(A, { n: 2 }),
        job(A, { n: 3 }, { delay: "30 days" }),
        job(B, { n: 4 }, { delay: "1 hour" }),
      ]),
    )
    const executor = toExecutor(db.pool)
    const [claimed] = await testEngine.claim(executor, {
      queue: "default",
      limit: 1,
      defaultTimeoutMs: 60_000,
    })
    expect(claimed?.id).toBe(retrying)
    await testEngine.retry(executor, [
      { ref: claimed!, attempt: 1, delayMs: 3_600_000, error: { kind: "error", message: "later" } },
    ])
    expect((await admin.getJob(db.pool, retrying!)).state).toBe("retryable")

    const before = Date.now()
    const made = await admin.makeDue(db.pool, { queue: "default", within: "1 day" })
    expect(made).toEqual([scheduled, retrying])
    const [s, r, f, o] = await Promise.all(
      [scheduled, retrying, far, other].map((id) => admin.getJob(db.pool, id!)),
    )
    expect(s?.state).toBe("available")
    expect(r).toMatchObject({ state: "available", attempt: 1 })
    expect(r!.runAt.getTime()).toBeLessThanOrEqual(Date.now() + 1000)
    expect(r!.runAt.getTime()).toBeGreaterThan(before - 60_000)
    expect(f?.state).toBe("scheduled")
    expect(o?.state).toBe("scheduled")

    expect(await admin.makeDue(db.pool, { ids: [far!, other!] })).toEqual([far, other])
    expect(await admin.makeDue(db.pool, { all: true })).toEqual([])
  })

  it("filters by kind, and refuses to act on everything without a filter or all: true", async () => {
    const [a, b] = insertedIds(
      await producer.insertMany(db.pool, [
        job(A, { n: 1 }, { delay: "1 hour" }),
        job(B, { n: 2 }, { delay: "1 hour" }),
      ]),
    )
    await expect(admin.makeDue(db.pool, {})).rejects.toBeInstanceOf(FilterRequired)
    await expect(admin.makeDue(db.pool, { within: "1 hour" })).rejects.toBeInstanceOf(FilterRequired)
    await expect(admin.makeDue(db.pool, { ids: ["not-an-id"] })).rejects.toBeInstanceOf(JobNotFound)
    expect(await admin.makeDue(db.pool, { kind: "b" })).toEqual([b])
    expect(await admin.makeDue(db.pool, { all: true })).toEqual([a])
  })

  it("runs inside the caller's transaction and rolls back with it", async () => {
    const [id] = insertedIds(await producer.insertMany(db.pool, [job(A, { n: 1 }, { delay: "1 hour" })]))
    await expect(
      withTransaction(db.pool, async (client) => {
        expect(await admin.makeDue(client, { ids: [id!] })).toEqual([id])
        expect((await admin.getJob(client, id!)).state).toBe("available")
        throw new Error("roll back")
      }),
    ).rejects.toThrow("roll back")
    expect((await admin.getJob(db.pool, id!)).state).toBe("scheduled")
  })
})

describe("Admin.purgeQueue", () => {
  it("deletes a queue's jobs in every state and its DLQ entries, releasing unique keys", async () => {
    await admin.setQueueDlq(db.pool, "default", true)
    const unique = await producer.insert(db.pool, A, { n: 1 }, { unique: true })
    const [dead] = insertedIds(await producer.insertMany(db.pool, [job(A, { n: 2 }, { maxAttempts: 1 })]))
    const [kept] = insertedIds(await producer.insertMany(db.pool, [job(B, { n: 3 })]))
    const executor = toExecutor(db.pool)
    const claimed = await testEngine.claim(executor, {
      queue: "default",
      limit: 10,
      defaultTimeoutMs: 60_000,
    })
    const toFail = claimed.find((c) => c.id === dead)!
    await testEngine.fail(executor, [{ ref: toFail, attempt: 1, error: { kind: "failed", message: "x" } }])
    expect((await admin.listDlq(db.pool, { queue: "default" })).items.map((d) => d.id)).toEqual([dead])
    expect((await producer.insert(db.pool, A, { n: 1 }, { unique: true }))._tag).toBe("UniqueConflict")

    expect(await admin.purgeQueue(db.pool, "default")).toEqual({ jobs: 1, deadLettered: 1 })
    expect(unique._tag).toBe("Inserted")
    expect((await admin.listJobs(db.pool, { queue: "default" })).items).toEqual([])
    expect((await admin.listDlq(db.pool, { queue: "default" })).items).toEqual([])
    expect((await admin.getJob(db.pool, kept!)).state).toBe("available")
    expect((await producer.insert(db.pool, A, { n: 1 }, { unique: true }))._tag).toBe("Inserted")
    // Settings stay.
    expect((await admin.queueStats(db.pool)).find((s) => s.queue === "default")?.dlqEnabled).toBe(true)
    expect(await admin.purgeQueue(db.pool, "nothing-here")).toEqual({ jobs: 0, deadLettered: 0 })
  })
})
