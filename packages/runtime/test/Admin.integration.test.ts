import { defineJob } from "@awa/model/JobDefinition"
import {
  FilterRequired,
  InvalidAdminArgument,
  JobNotFound,
  JobStateConflict,
  UniqueKeyHeld,
} from "@awa/model/JobErrors"
import { nonTerminalJobStates } from "@awa/model/JobState"
import { Effect, Exit, Schema } from "effect"
import { describe, expect, it } from "vitest"
import { AdminService, makeAdmin } from "../src/Admin.js"
import { DatabaseError } from "../src/DatabaseError.js"
import { PgExecutor, toExecutor } from "../src/PgExecutor.js"
import { job, makeProducer } from "../src/Producer.js"
import { testEngine, useAwaDatabase } from "./support/awaDatabase.js"

const db = useAwaDatabase()
const producer = makeProducer()
const admin = makeAdmin()
const A = defineJob({ kind: "a", args: Schema.Struct({ n: Schema.Number }) })
const B = defineJob({ kind: "b", args: Schema.Struct({ n: Schema.Number }), queue: "other" })

// The typed failure of an Exit (undefined for a success or a defect).
const failureOf = <A, E>(exit: Exit.Exit<A, E>): E | undefined => {
  if (!Exit.isFailure(exit)) return undefined
  const error = Exit.findErrorOption(exit)
  return error._tag === "Some" ? error.value : undefined
}

const ids = (results: ReadonlyArray<{ _tag: string; id?: string }>): Array<string> =>
  results.map((r) => {
    if (r._tag !== "Inserted" || r.id === undefined) throw new Error("expected inserts")
    return r.id
  })

// Drives jobs through the real engine path into terminal states.
const claimAll = (queue: string, limit = 100) =>
  testEngine.claim(toExecutor(db.pool), { queue, limit, defaultTimeoutMs: 60_000 })

describe("Admin", () => {
  it("counts jobs exactly per queue and state, with DLQ sizes and settings", async () => {
    await producer.insertMany(db.pool, [
      job(A, { n: 1 }),
      job(A, { n: 2 }),
      job(A, { n: 3 }, { delay: "1 hour" }),
      job(B, { n: 4 }),
    ])
    const [claimed] = await claimAll("default", 1)
    await testEngine.complete(toExecutor(db.pool), [claimed!])
    await admin.pauseQueue(db.pool, "other")
    const stats = await admin.queueStats(db.pool)
    expect(stats.map((s) => s.queue)).toEqual(["default", "other"])
    expect(stats[0]?.counts).toMatchObject({
      available: 1,
      scheduled: 1,
      completed: 1,
      running: 0,
      failed: 0,
    })
    expect(stats[1]).toMatchObject({ paused: true, dlqEnabled: false, deadLettered: 0 })
    expect(stats[1]?.counts.available).toBe(1)
  })

  it("counts every job exactly once while claims and completions move them (one snapshot per call)", async () => {
    const total = 400
    await producer.insertMany(
      db.pool,
      Array.from({ length: total }, (_, n) => job(A, { n }, { queue: "steady" })),
    )
    let working = 2
    const work = async () => {
      const x = toExecutor(db.pool)
      for (;;) {
        const jobs = await testEngine.claim(x, { queue: "steady", limit: 7, defaultTimeoutMs: 60_000 })
        if (jobs.length === 0) break
        await testEngine.complete(x, jobs)
      }
      working--
    }
    const workers = [work(), work()]
    const seen: Array<number> = []
    while (working > 0) {
      const steady = (await admin.queueStats(db.pool)).find((q) => q.queue === "steady")
      const counted = Object.values(steady?.counts ?? {}).reduce((sum, n) => sum + n, 0)
      seen.push(counted + (steady?.deadLettered ?? 0))
    }
    await Promise.all(workers)
    expect(seen.length).toBeGreaterThan(2)
    // Every sample saw each job in exactly one state: never counted twice (claimed and still available, say)
    // nor missed (between two reads).
    expect(seen.filter((n) => n !== total)).toEqual([])
    const settled = (await admin.queueStats(db.pool)).find((q) => q.queue === "steady")
    expect(settled?.counts).toMatchObject({ completed: total, available: 0, running: 0 })
  })

  it("lists jobs with filters and keyset pagination in both orders", async () => {
    const all = ids(
      await producer.insertMany(db.pool, [
        ...Array.from({ length: 5 }, (_, n) => job(A, { n }, { tags: n % 2 === 0 ? ["even"] : [] })),
        job(B, { n: 9 }),
      ]),
    )
    const first = await admin.listJobs(db.pool, { kind: "a" }, { limit: 2 })
    expect(first.items.map((j) => j.id)).toEqual(all.slice(0, 2))
    const second = await admin.listJobs(db.pool, { kind: "a" }, { limit: 2, cursor: first.nextCursor! })
    expect(second.items.map((j) => j.id)).toEqual(all.slice(2, 4))
    const third = await admin.listJobs(db.pool, { kind: "a" }, { limit: 2, cursor: second.nextCursor! })
    expect(third.items.map((j) => j.id)).toEqual(all.slice(4, 5))
    expect(third.nextCursor).toBeNull()
    const desc = await admin.listJobs(db.pool, {}, { order: "desc", limit: 3 })
    expect(desc.items.map((j) => j.id)).toEqual(all.slice(3).reverse())
    expect((await admin.listJobs(db.pool, { tag: "even" })).items).toHaveLength(3)
    expect((await admin.listJobs(db.pool, { queue: "other" })).items.map((j) => j.kind)).toEqual(["b"])
    expect((await admin.listJobs(db.pool, { states: ["running", "failed"] })).items).toHaveLength(0)
  })

  it("retries and cancels jobs, refusing transitions the state does not allow", async () => {
    const [scheduled, running] = ids(
      await producer.insertMany(db.pool, [job(A, { n: 1 }, { delay: "1 hour" }), job(A, { n: 2 })]),
    )
    await claimAll("default")
    await expect(admin.retryJob(db.pool, running!)).rejects.toBeInstanceOf(JobStateConflict)
    await expect(admin.retryJob(db.pool, "999999")).rejects.toBeInstanceOf(JobNotFound)
    await expect(admin.getJob(db.pool, "not-a-number")).rejects.toBeInstanceOf(JobNotFound)
    const now = await admin.retryJob(db.pool, scheduled!)
    expect(now).toMatchObject({ state: "available", attempt: 0 })
    const cancelled = await admin.cancelJob(db.pool, running!, "stop it")
    expect(cancelled.state).toBe("cancelled")
    const err = await admin.cancelJob(db.pool, running!).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(JobStateConflict)
    expect((err as JobStateConflict).message).toMatch(/Cannot cancel job .* it is cancelled/)
    const again = await admin.retryJob(db.pool, running!)
    // A fresh attempt count: nothing of the previous attempts' timing is left but the error history.
    expect(again).toMatchObject({
      state: "available",
      attempt: 0,
      finalizedAt: null,
      attemptedAt: null,
      heartbeatAt: null,
      deadlineAt: null,
    })
    expect(again.errors.at(-1)?.message).toBe("stop it")
    expect(again.runLease).toBe(1)
  })

  it("requires an explicit filter for bulk DLQ operations, and retries or purges by filter", async () => {
    await admin.setQueueDlq(db.pool, "default", true)
    await admin.setQueueDlq(db.pool, "other", true)
    await producer.insertMany(db.pool, [job(A, { n: 1 }), job(A, { n: 2 }), job(B, { n: 3 })])
    const exec = toExecutor(db.pool)
    const claimed = [...(await claimAll("default")), ...(await claimAll("other"))]
    const failed = await testEngine.fail(
      exec,
      claimed.map((j) => ({
        ref: j,
        attempt: j.attempt,
        error: { kind: "failed" as const, message: "nope" },
      })),
    )
    expect(failed.deadLettered).toHaveLength(3)
    await expect(admin.purgeDlq(db.pool, {})).rejects.toBeInstanceOf(FilterRequired)
    await expect(admin.retryDlq(db.pool, {})).rejects.toThrow(/without a filter/)
    expect(await admin.retryDlq(db.pool, { queue: "other" })).toHaveLength(1)
    expect((await admin.listDlq(db.pool)).items.map((d) => d.queue)).toEqual(["default", "default"])
    expect(await admin.purgeDlq(db.pool, { kind: "a" })).toBe(2)
    await expect(admin.getDlq(db.pool, claimed[0]!.id)).rejects.toBeInstanceOf(JobNotFound)
    await expect(admin.purgeDlq(db.pool, { id: "12345" })).rejects.toBeInstanceOf(JobNotFound)
  })

  it("refuses a retry that would take a unique key another job holds", async () => {
    const [first] = ids([await producer.insert(db.pool, A, { n: 1 }, { unique: true })])
    await admin.cancelJob(db.pool, first!)
    // The cancelled job released its key; a new job takes it.
    const second = await producer.insert(db.pool, A, { n: 1 }, { unique: true })
    expect(second._tag).toBe("Inserted")
    await expect(admin.retryJob(db.pool, first!)).rejects.toBeInstanceOf(UniqueKeyHeld)
  })

  it("holds unique keys only in the configured states", async () => {
    // Held while the job is pending or running, released once it finishes: a debounce, not a dedupe.
    const live = { unique: { states: [...nonTerminalJobStates] } }
    const [first] = ids([await producer.insert(db.pool, A, { n: 1 }, live)])
    const [claimed] = await claimAll("default")
    expect(claimed?.id).toBe(first)
    const dup = await producer.insert(db.pool, A, { n: 1 }, live)
    expect(dup).toMatchObject({ _tag: "UniqueConflict", existingId: first, existingState: "running" })
    await testEngine.complete(toExecutor(db.pool), [claimed!])
    const after = await producer.insert(db.pool, A, { n: 1 }, live)
    expect(after._tag).toBe("Inserted")
    // byQueue puts the queue into the key.
    const byQueue = { unique: { byQueue: true, states: [...nonTerminalJobStates] } }
    expect((await producer.insert(db.pool, A, { n: 2 }, byQueue))._tag).toBe("Inserted")
    expect((await producer.insert(db.pool, A, { n: 2 }, byQueue))._tag).toBe("UniqueConflict")
    expect((await producer.insert(db.pool, A, { n: 2 }, { ...byQueue, queue: "q2" }))._tag).toBe("Inserted")
  })

  it("refuses unique states that would let a job's own retry collide with a duplicate", async () => {
    const Refused = defineJob({ kind: "unique_refused", args: Schema.Struct({}) })
    const released = { unique: { states: ["available" as const, "scheduled" as const] } }
    await expect(producer.insert(db.pool, Refused, {}, released)).rejects.toThrow(
      /unique\.states.*missing running, retryable, waiting_external/,
    )
    expect((await admin.listJobs(db.pool, { kind: "unique_refused" })).items).toEqual([])
  })

  it("validates queue names and reads the active engine", async () => {
    await expect(admin.pauseQueue(db.pool, "no spaces")).rejects.toBeInstanceOf(InvalidAdminArgument)
    await expect(admin.pauseQueue(db.pool, "no spaces")).rejects.toThrow(
      /Cannot pause a queue: queue is "no spaces", expected 1\.\.\d+ characters/,
    )
    expect(await admin.activeEngine(db.pool)).toBe("canonical")
    expect(await admin.maintenanceLeader(db.pool)).toBeNull()
  })

  it("rejects bad page, filter and duration arguments before they reach the database, changing nothing", async () => {
    const [id] = ids(await producer.insertMany(db.pool, [job(A, { n: 1 })]))
    const bad: ReadonlyArray<[Promise<unknown>, string]> = [
      [admin.listJobs(db.pool, {}, { limit: 0 }), "limit"],
      [admin.listJobs(db.pool, {}, { limit: 2.5 }), "limit"],
      [admin.listJobs(db.pool, {}, { limit: Number.NaN }), "limit"],
      [admin.listJobs(db.pool, {}, { limit: 10_001 }), "limit"],
      [admin.listJobs(db.pool, {}, { cursor: "abc" }), "cursor"],
      [admin.listJobs(db.pool, {}, { order: "sideways" as "asc" }), "order"],
      [admin.listJobs(db.pool, { states: ["done" as "completed"] }), "states"],
      [admin.listJobs(db.pool, { queue: "Bad Queue" }), "queue"],
      [admin.listDlq(db.pool, { queue: "" }), "queue"],
      [admin.listDlq(db.pool, {}, { cursor: "-1" }), "cursor"],
      [admin.retryDlq(db.pool, { queue: "a'b" }), "queue"],
      [admin.makeDue(db.pool, { all: true, within: "-5 seconds" as "5 seconds" }), "within"],
    ]
    for (const [attempt, argument] of bad) {
      const error = await attempt.then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(error).toBeInstanceOf(InvalidAdminArgument)
      expect((error as InvalidAdminArgument).argument).toBe(argument)
      expect((error as InvalidAdminArgument).message).toMatch(/Nothing was changed\.$/)
    }
    expect((await admin.getJob(db.pool, id!)).state).toBe("available")
    // Limits at the edges are fine.
    expect((await admin.listJobs(db.pool, {}, { limit: 1 })).items).toHaveLength(1)
    expect((await admin.listJobs(db.pool, {}, { limit: 10_000 })).items).toHaveLength(1)
  })

  it("is an Effect service too: same operations on the PgExecutor in context, typed failures", async () => {
    const [id] = ids(await producer.insertMany(db.pool, [job(A, { n: 1 })]))
    const run = <A, E>(effect: Effect.Effect<A, E, AdminService | PgExecutor>) =>
      Effect.runPromiseExit(
        effect.pipe(Effect.provide(AdminService.layer()), Effect.provide(PgExecutor.layer(db.pool))),
      )
    const got = await run(Effect.flatMap(Effect.service(AdminService), (a) => a.getJob(id!)))
    expect(Exit.isSuccess(got) && got.value.id).toBe(id)

    const cancelled = await run(
      Effect.flatMap(Effect.service(AdminService), (a) => a.cancelJob(id!, "from Effect")),
    )
    expect(Exit.isSuccess(cancelled) && cancelled.value.state).toBe("cancelled")

    const conflict = await run(Effect.flatMap(Effect.service(AdminService), (a) => a.cancelJob(id!)))
    expect(failureOf(conflict)).toMatchObject({ _tag: "JobStateConflict", id })
    const missing = await run(Effect.flatMap(Effect.service(AdminService), (a) => a.getJob("999999")))
    expect(failureOf(missing)).toMatchObject({ _tag: "JobNotFound", id: "999999" })
    const unfiltered = await run(Effect.flatMap(Effect.service(AdminService), (a) => a.purgeDlq({})))
    expect(failureOf(unfiltered)).toBeInstanceOf(FilterRequired)

    // A database that is not there fails with a DatabaseError, not a defect.
    const gone = new (await import("pg")).default.Pool({
      connectionString: "postgres://postgres:postgres@127.0.0.1:1/none",
      connectionTimeoutMillis: 2000,
    })
    try {
      const exit = await Effect.runPromiseExit(
        Effect.flatMap(Effect.service(AdminService), (a) => a.queueStats()).pipe(
          Effect.provide(AdminService.layer()),
          Effect.provide(PgExecutor.layer(gone)),
        ),
      )
      expect(failureOf(exit)).toBeInstanceOf(DatabaseError)
    } finally {
      await gone.end()
    }
  })
})
