import { defineJob } from "@awa/model/JobDefinition"
import { InvalidInsertOptions, InvalidJobDefinition } from "@awa/model/JobErrors"
import { Effect, Schema } from "effect"
import { describe, expect, it, onTestFinished } from "vitest"
import { makeAdmin } from "../src/Admin.js"
import { exponentialBackoff } from "../src/Backoff.js"
import type { Job } from "../src/Engine.js"
import { handle, JobAbortedError } from "../src/JobHandler.js"
import { cancel, fail, retryAfter, snooze } from "../src/JobOutcome.js"
import { job, makeProducer } from "../src/Producer.js"
import { Worker, type WorkerOptions } from "../src/Worker.js"
import { useAwaDatabase } from "./support/awaDatabase.js"
import { recordEvents } from "./support/events.js"
import { latch, waitFor } from "./support/wait.js"

const db = useAwaDatabase()
const producer = makeProducer()
const admin = makeAdmin()

const Noop = defineJob({ kind: "noop", args: Schema.Struct({ n: Schema.Number }) })
const Flaky = defineJob({ kind: "flaky", args: Schema.Struct({ n: Schema.Number }), maxAttempts: 3 })

// Fast maintenance and no jitter so lifecycle tests finish quickly and deterministically.
const fast: Partial<WorkerOptions> = {
  pollInterval: 20,
  backoff: exponentialBackoff({ baseMs: 1, maxMs: 5, jitter: 0 }),
  maintenance: { promoteInterval: 10, electionInterval: 10, rescueInterval: 10 },
}

const startWorker = async (options: Partial<WorkerOptions> & Pick<WorkerOptions, "handlers">) => {
  const worker = await Worker.start({ pool: db.pool, ...fast, ...options })
  onTestFinished(() => worker.stop({ timeout: 100 }))
  return worker
}

const jobOf = (id: string): Promise<Job> => admin.getJob(db.pool, id)
const insertedId = (result: Awaited<ReturnType<typeof producer.insert>>): string => {
  if (result._tag !== "Inserted") throw new Error(`expected an insert, got ${result._tag}`)
  return result.id
}
const stateIs = (id: string, state: Job["state"]) => async () => {
  const job = await jobOf(id)
  return job.state === state ? job : undefined
}

describe("Worker", () => {
  it("claims, runs and completes jobs, reporting lifecycle events", async () => {
    const seen: Array<number> = []
    await producer.insertMany(
      db.pool,
      Array.from({ length: 50 }, (_, n) => job(Noop, { n })),
    )
    const worker = await startWorker({ handlers: [handle(Noop, ({ n }) => void seen.push(n))] })
    const log = recordEvents(worker)
    await waitFor("all completed", async () => {
      const stats = await admin.queueStats(db.pool)
      return stats[0]?.counts.completed === 50
    })
    expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, n) => n))
    const page = await admin.listJobs(db.pool, { states: ["completed"] }, { limit: 100 })
    expect(page.items.every((j) => j.attempt === 1 && j.runLease === 1 && j.finalizedAt !== null)).toBe(true)
    await waitFor("completed events", () => log.ofType("completed").length === 50)
    const metrics = await worker.metrics()
    expect(metrics.totals.completed).toBe(50)
    expect(metrics.totals.claimed).toBe(50)
  })

  it("keeps no session in pooler mode: no LISTEN connection, polling finds new and scheduled work", async () => {
    // The pooler mode's own poll interval (250 ms), not the fast one of the other tests.
    const worker = await Worker.start({
      pool: db.pool,
      id: "pooled-worker",
      pooler: "transaction",
      maintenance: { promoteInterval: 10, electionInterval: 10 },
      handlers: [handle(Noop, async () => {})],
    })
    onTestFinished(() => worker.stop({ timeout: 100 }))
    await waitFor("leader", () => worker.maintenance?.isLeader === true)
    const now = insertedId(await producer.insert(db.pool, Noop, { n: 1 }))
    const later = insertedId(await producer.insert(db.pool, Noop, { n: 2 }, { delay: 1 }))
    await waitFor("both completed", async () =>
      (await Promise.all([jobOf(now), jobOf(later)])).every((j) => j.state === "completed"),
    )
    const sessions = await db.pool.query(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name LIKE 'awa-%pooled-worker'",
    )
    expect(sessions.rows[0].n).toBe(0)
  })

  it("wakes on NOTIFY for jobs inserted after it started, and runs scheduled jobs when due", async () => {
    const worker = await startWorker({ handlers: [handle(Noop, () => {})], pollInterval: 60_000 })
    const id = insertedId(await producer.insert(db.pool, Noop, { n: 1 }))
    await waitFor("completed via NOTIFY", stateIs(id, "completed"))
    const later = insertedId(await producer.insert(db.pool, Noop, { n: 2 }, { delay: 50 }))
    expect((await jobOf(later)).state).toBe("scheduled")
    await waitFor("scheduled job promoted and completed", stateIs(later, "completed"))
    expect(worker.running).toBe(true)
  })

  it("retries thrown errors with backoff, records every error, and fails when attempts run out", async () => {
    const worker = await startWorker({
      handlers: [
        handle(Flaky, ({ n }) => {
          throw new Error(`boom ${n}`)
        }),
      ],
    })
    const log = recordEvents(worker)
    const id = insertedId(await producer.insert(db.pool, Flaky, { n: 7 }))
    const failed = await waitFor("failed", stateIs(id, "failed"))
    expect(failed.attempt).toBe(3)
    expect(failed.errors.map((e) => [e.attempt, e.kind, e.message])).toEqual([
      [1, "error", "boom 7"],
      [2, "error", "boom 7"],
      [3, "error", "boom 7"],
    ])
    expect(failed.errors.every((e) => e.name === "Error")).toBe(true)
    // Recorded times read like every other time in the API: ISO 8601 in UTC.
    expect(failed.errors.map((e) => new Date(e.at).toISOString())).toEqual(failed.errors.map((e) => e.at))
    await waitFor("events", () => log.ofType("failed").length === 1)
    expect(log.ofType("retried").map((e) => e.delayMs)).toEqual([1, 2])
    expect(log.ofType("failed")[0]?.deadLettered).toBe(false)
  })

  it("grows the backoff per attempt up to the cap", async () => {
    const Often = defineJob({ kind: "often", args: Schema.Struct({}), maxAttempts: 6 })
    const worker = await startWorker({
      handlers: [
        handle(Often, () => {
          throw new Error("again")
        }),
      ],
      backoff: exponentialBackoff({ baseMs: 2, factor: 3, maxMs: 20, jitter: 0 }),
    })
    const log = recordEvents(worker)
    const id = insertedId(await producer.insert(db.pool, Often, {}))
    await waitFor("failed", stateIs(id, "failed"))
    await waitFor("retry events", () => log.ofType("retried").length === 5)
    expect(log.ofType("retried").map((e) => e.delayMs)).toEqual([2, 6, 18, 20, 20])
  })

  it("moves exhausted jobs to the DLQ when the queue has it, and a DLQ retry starts them afresh", async () => {
    await admin.setQueueDlq(db.pool, "default", true)
    let succeed = false
    const worker = await startWorker({
      handlers: [
        handle(Flaky, () => {
          if (!succeed) throw new Error("not yet")
        }),
      ],
    })
    const log = recordEvents(worker)
    const id = insertedId(await producer.insert(db.pool, Flaky, { n: 1 }))
    await waitFor("dead-lettered", async () => (await admin.listDlq(db.pool)).items.length === 1)
    await expect(jobOf(id)).rejects.toThrow(/does not exist/)
    const entry = await admin.getDlq(db.pool, id)
    expect(entry).toMatchObject({ id, kind: "flaky", attempt: 3, reason: "not yet" })
    expect(entry.errors).toHaveLength(3)
    await waitFor("failed event", () => log.ofType("failed")[0]?.deadLettered === true)
    succeed = true
    expect(await admin.retryDlq(db.pool, { id })).toEqual([id])
    const done = await waitFor("completed after DLQ retry", stateIs(id, "completed"))
    expect(done.attempt).toBe(1)
    expect(done.errors).toHaveLength(3)
    expect((await admin.listDlq(db.pool)).items).toHaveLength(0)
  })

  it("snoozes without consuming an attempt", async () => {
    let runs = 0
    await startWorker({
      handlers: [
        handle(Flaky, () => {
          runs++
          if (runs <= 4) return snooze(5)
        }),
      ],
    })
    const id = insertedId(await producer.insert(db.pool, Flaky, { n: 1 }))
    const done = await waitFor("completed", stateIs(id, "completed"))
    expect(runs).toBe(5)
    // Four snoozes on a job allowing 3 attempts: only the final run counted.
    expect(done.attempt).toBe(1)
    expect(done.runLease).toBe(5)
    expect(done.errors).toEqual([])
  })

  it("applies retryAfter, cancel and fail outcomes, returned or thrown", async () => {
    const Outcome = defineJob({
      kind: "outcome",
      args: Schema.Struct({ mode: Schema.String }),
      maxAttempts: 5,
    })
    let retried = false
    const worker = await startWorker({
      handlers: [
        handle(Outcome, ({ mode }) => {
          if (mode === "retry" && !retried) {
            retried = true
            return retryAfter(5, "come back later")
          }
          if (mode === "cancel") return cancel("not needed any more")
          if (mode === "fail") throw fail("broken for good")
          if (mode === "fail-error") return fail(new TypeError("bad type"))
        }),
      ],
    })
    const log = recordEvents(worker)
    const [r, c, f, fe] = await producer.insertMany(db.pool, [
      job(Outcome, { mode: "retry" }),
      job(Outcome, { mode: "cancel" }),
      job(Outcome, { mode: "fail" }),
      job(Outcome, { mode: "fail-error" }),
    ])
    const retry = await waitFor("retried then completed", stateIs(insertedId(r!), "completed"))
    expect(retry.attempt).toBe(2)
    expect(retry.errors.map((e) => e.message)).toEqual(["come back later"])
    const cancelled = await waitFor("cancelled", stateIs(insertedId(c!), "cancelled"))
    expect(cancelled.errors.map((e) => [e.kind, e.message])).toEqual([["cancelled", "not needed any more"]])
    const failed = await waitFor("failed", stateIs(insertedId(f!), "failed"))
    expect(failed.attempt).toBe(1)
    expect(failed.errors.map((e) => [e.kind, e.message])).toEqual([["failed", "broken for good"]])
    const failedError = await waitFor("failed with error", stateIs(insertedId(fe!), "failed"))
    expect(failedError.errors[0]).toMatchObject({ kind: "failed", message: "bad type", name: "TypeError" })
    await waitFor("cancel event", () => log.ofType("cancelled").length === 1)
  })

  it("records non-Error throws and keeps working", async () => {
    const Weird = defineJob({ kind: "weird", args: Schema.Struct({ i: Schema.Number }), maxAttempts: 1 })
    const values: Array<unknown> = ["a string", { code: 42 }, undefined, null, 12, Object.create(null), 10n]
    await startWorker({
      handlers: [
        handle(Weird, ({ i }) => {
          throw values[i]
        }),
        handle(Noop, () => {}),
      ],
    })
    const results = await producer.insertMany(db.pool, [
      ...values.map((_, i) => job(Weird, { i })),
      job(Noop, { n: 1 }),
    ])
    const ids = results.map(insertedId)
    const failed = await Promise.all(
      ids.slice(0, values.length).map((id) => waitFor("failed", stateIs(id, "failed"))),
    )
    expect(failed.map((j) => j.errors[0]?.message)).toEqual([
      "a string",
      'The handler threw a non-Error value: {"code":42}',
      "The handler threw a non-Error value: undefined",
      "The handler threw a non-Error value: null",
      "The handler threw a non-Error value: 12",
      "The handler threw a non-Error value: {}",
      "The handler threw a non-Error value: 10",
    ])
    expect(failed.every((j) => j.errors[0]?.name === "NonError")).toBe(true)
    await waitFor("other job still completes", stateIs(ids[values.length]!, "completed"))
  })

  it("retries jobs of unknown kinds and fails jobs whose stored args no longer decode, without stopping", async () => {
    const Ghost = defineJob({ kind: "ghost", args: Schema.Struct({}), maxAttempts: 2 })
    const OldShape = defineJob({ kind: "noop", args: Schema.Struct({ legacy: Schema.String }) })
    await startWorker({ handlers: [handle(Noop, () => {})] })
    const ghost = insertedId(await producer.insert(db.pool, Ghost, {}))
    const legacy = insertedId(await producer.insert(db.pool, OldShape, { legacy: "x" }))
    const fine = insertedId(await producer.insert(db.pool, Noop, { n: 1 }))
    const ghostJob = await waitFor("unknown kind failed after retries", stateIs(ghost, "failed"))
    expect(ghostJob.errors.map((e) => e.kind)).toEqual(["unknown_kind", "unknown_kind"])
    expect(ghostJob.errors[0]?.message).toMatch(/No handler for job kind "ghost".*known kinds: "noop"/)
    const legacyJob = await waitFor("invalid args failed at once", stateIs(legacy, "failed"))
    expect(legacyJob.attempt).toBe(1)
    expect(legacyJob.errors[0]).toMatchObject({ kind: "invalid_args", name: "InvalidJobArgs" })
    await waitFor("valid job completed", stateIs(fine, "completed"))
  })

  it("fires the handler's signal when the job is cancelled from another connection", async () => {
    const Long = defineJob({ kind: "long", args: Schema.Struct({}) })
    const started = latch()
    const aborted = latch<unknown>()
    const worker = await startWorker({
      handlers: [
        handle(Long, (_, { signal }) => {
          started.resolve()
          return new Promise<void>((_resolve, reject) => {
            signal.addEventListener("abort", () => {
              aborted.resolve(signal.reason)
              reject(signal.reason)
            })
          })
        }),
      ],
    })
    const log = recordEvents(worker)
    const id = insertedId(await producer.insert(db.pool, Long, {}))
    await started.promise
    const cancelled = await admin.cancelJob(db.pool, id, "operator says stop")
    expect(cancelled.state).toBe("cancelled")
    const reason = await aborted.promise
    expect(reason).toBeInstanceOf(JobAbortedError)
    expect((reason as JobAbortedError).reason).toBe("cancelled")
    await waitFor("cancelled event", () => log.ofType("cancelled").length === 1)
    const final = await jobOf(id)
    expect(final.state).toBe("cancelled")
    expect(final.errors.map((e) => e.message)).toEqual(["operator says stop"])
    expect(log.ofType("stale")).toHaveLength(0)
  })

  it("abandons an attempt at its deadline, fires its signal and retries it", async () => {
    const Slow = defineJob({ kind: "slow", args: Schema.Struct({}), timeout: 30, maxAttempts: 2 })
    const reasons: Array<string> = []
    await startWorker({
      handlers: [
        handle(Slow, (_, { signal }) => {
          return new Promise<void>((resolve) => {
            signal.addEventListener("abort", () => {
              reasons.push((signal.reason as JobAbortedError).reason)
              resolve()
            })
          })
        }),
      ],
    })
    const id = insertedId(await producer.insert(db.pool, Slow, {}))
    const failed = await waitFor("failed after two deadlines", stateIs(id, "failed"))
    expect(failed.errors.map((e) => e.kind)).toEqual(["deadline", "deadline"])
    expect(failed.errors[0]?.message).toMatch(/30 ms attempt deadline/)
    expect(reasons).toEqual(["deadline", "deadline"])
  })

  it("rejects a stale completion after rescue and reports it", async () => {
    const Held = defineJob({ kind: "held", args: Schema.Struct({}) })
    const started = latch()
    const release = latch()
    const worker = await startWorker({
      handlers: [
        handle(Held, async () => {
          started.resolve()
          await release.promise
        }),
      ],
      heartbeatInterval: "1 hour",
      maintenance: false,
    })
    const log = recordEvents(worker)
    const id = insertedId(await producer.insert(db.pool, Held, {}))
    await started.promise
    const claimed = await jobOf(id)
    expect(claimed).toMatchObject({ state: "running", runLease: 1 })
    // Another process's maintenance decides the attempt is dead (no heartbeat for 0 ms) and rescues it.
    const { Maintenance } = await import("../src/Maintenance.js")
    const rescuer = Maintenance.start({
      pool: db.pool,
      holder: "rescuer",
      heartbeatStaleAfter: 0,
      electionInterval: 10,
      backoff: () => 60_000,
    })
    onTestFinished(() => rescuer.stop())
    await waitFor("rescuer leads", () => rescuer.isLeader)
    // Its first pass (or this explicit one) rescues the attempt.
    await rescuer.runNow()
    const rescued = await waitFor("rescued", stateIs(id, "retryable"))
    expect(rescued.errors[0]).toMatchObject({ kind: "rescued", attempt: 1 })
    release.resolve()
    await waitFor("stale completion reported", () => log.ofType("stale").length === 1)
    expect(log.ofType("stale")[0]).toMatchObject({ operation: "complete", job: { id, runLease: 1 } })
    expect((await jobOf(id)).state).toBe("retryable")
    expect(log.ofType("completed")).toHaveLength(0)
  })

  it("stops gracefully: waits for running jobs, then releases the rest with their signals fired", async () => {
    const Quick = defineJob({ kind: "quick", args: Schema.Struct({}) })
    const Stuck = defineJob({ kind: "stuck", args: Schema.Struct({}) })
    const quickDone = latch()
    const stuckStarted = latch()
    let stuckReason: unknown
    const worker = await Worker.start({
      pool: db.pool,
      ...fast,
      handlers: [
        handle(Quick, async () => {
          await quickDone.promise
        }),
        handle(Stuck, (_, { signal }) => {
          stuckStarted.resolve()
          return new Promise<void>((resolve) => {
            signal.addEventListener("abort", () => {
              stuckReason = signal.reason
              resolve()
            })
          })
        }),
      ],
    })
    const log = recordEvents(worker)
    const quick = insertedId(await producer.insert(db.pool, Quick, {}))
    const stuck = insertedId(await producer.insert(db.pool, Stuck, {}))
    await stuckStarted.promise
    await waitFor("quick running", stateIs(quick, "running"))
    const stopping = worker.stop({ timeout: 1000 })
    setTimeout(() => quickDone.resolve(), 20)
    await stopping
    expect(worker.running).toBe(false)
    expect((await jobOf(quick)).state).toBe("completed")
    const released = await jobOf(stuck)
    expect(released).toMatchObject({ state: "available", attempt: 0, runLease: 1 })
    expect((stuckReason as JobAbortedError).reason).toBe("shutdown")
    expect(log.ofType("released")[0]?.jobs.map((j) => j.id)).toEqual([stuck])
    // A new worker picks the released job up.
    await startWorker({ handlers: [handle(Stuck, () => {})] })
    const done = await waitFor("released job completed by another worker", stateIs(stuck, "completed"))
    expect(done).toMatchObject({ attempt: 1, runLease: 2 })
  })

  it("does not claim from a paused queue until it is resumed", async () => {
    await admin.pauseQueue(db.pool, "default")
    await startWorker({ handlers: [handle(Noop, () => {})] })
    const id = insertedId(await producer.insert(db.pool, Noop, { n: 1 }))
    const stats = await admin.queueStats(db.pool)
    expect(stats.find((s) => s.queue === "default")).toMatchObject({ paused: true })
    expect((await jobOf(id)).state).toBe("available")
    await admin.resumeQueue(db.pool, "default")
    await waitFor("completed after resume", stateIs(id, "completed"))
  })

  it("keeps per-queue concurrency", async () => {
    const Tracked = defineJob({ kind: "tracked", args: Schema.Struct({}), queue: "narrow" })
    let running = 0
    let peak = 0
    await startWorker({
      handlers: [
        handle(Tracked, async () => {
          running++
          peak = Math.max(peak, running)
          await new Promise((r) => setTimeout(r, 5))
          running--
        }),
      ],
      queues: { narrow: { concurrency: 3 } },
    })
    await producer.insertMany(
      db.pool,
      Array.from({ length: 30 }, () => job(Tracked, {})),
    )
    await waitFor("all done", async () => (await admin.queueStats(db.pool))[0]?.counts.completed === 30)
    expect(peak).toBeLessThanOrEqual(3)
    expect(peak).toBeGreaterThan(0)
  })

  it("works by polling alone, without LISTEN or prepared statements (as behind a transaction pooler)", async () => {
    const worker = await startWorker({
      handlers: [handle(Noop, () => {})],
      listen: false,
      preparedStatements: false,
      pollInterval: 20,
    })
    const id = insertedId(await producer.insert(db.pool, Noop, { n: 1 }))
    await waitFor("completed by polling", stateIs(id, "completed"))
    const sessions = await db.pool.query(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name LIKE 'awa-worker:%' AND datname = current_database()",
    )
    expect(sessions.rows[0].n).toBe(0)
    expect(worker.running).toBe(true)
  })

  it("runs as a scoped Effect resource, stopped when the scope closes", async () => {
    const id = insertedId(await producer.insert(db.pool, Noop, { n: 1 }))
    let stopped: Worker | undefined
    await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const worker = yield* Worker.scoped({ pool: db.pool, ...fast, handlers: [handle(Noop, () => {})] })
          stopped = worker
          yield* Effect.promise(() => waitFor("completed", stateIs(id, "completed")))
          expect(worker.running).toBe(true)
        }),
      ),
    )
    expect(stopped?.running).toBe(false)
  })

  it("refuses invalid worker options with typed errors", async () => {
    await expect(
      Worker.start({ pool: db.pool, handlers: [handle(Noop, () => {}), handle(Noop, () => {})] }),
    ).rejects.toSatisfy(
      (e) =>
        e instanceof InvalidJobDefinition &&
        /"noop".*two handlers.*in one worker\. Give the worker one handler per kind\.$/.test(e.message),
    )
    await expect(
      Worker.start({ pool: db.pool, handlers: [handle(Noop, () => {})], queues: ["bad queue"] }),
    ).rejects.toBeInstanceOf(InvalidInsertOptions)
    await expect(Worker.start({ pool: db.pool, handlers: [], concurrency: 0 })).rejects.toThrow(/concurrency/)
    // A zero poll interval would query the database without pause whenever a queue is idle.
    for (const pollInterval of [0, "0 seconds", 5, -1] as const) {
      await expect(Worker.start({ pool: db.pool, handlers: [], pollInterval })).rejects.toThrow(
        /pollInterval: expected a finite duration of at least 10 ms/,
      )
    }
    await expect(Worker.start({ pool: db.pool, handlers: [], heartbeatInterval: 0 })).rejects.toThrow(
      /heartbeatInterval/,
    )
  })
})
