// Whatever a handler rejects with is recorded on the job and never escapes as an unhandled rejection (vitest
// fails the run on one); a job's final error says what became of it; a worker stopping with handlers that
// ignore their signal names them.
import { defineJob } from "@awa/model/JobDefinition"
import { NoJobHandlers } from "@awa/model/JobErrors"
import { Schema } from "effect"
import { describe, expect, it, onTestFinished } from "vitest"
import { makeAdmin } from "../src/Admin.js"
import { exponentialBackoff } from "../src/Backoff.js"
import type { Job } from "../src/Engine.js"
import { handle } from "../src/JobHandler.js"
import { job, makeProducer } from "../src/Producer.js"
import { describeThrown, Worker, type WorkerOptions } from "../src/Worker.js"
import { useAwaDatabase } from "./support/awaDatabase.js"
import { recordEvents } from "./support/events.js"
import { latch, waitFor } from "./support/wait.js"

const db = useAwaDatabase()
const producer = makeProducer()
const admin = makeAdmin()

const Poison = defineJob({ kind: "poison", args: Schema.Struct({ n: Schema.Number }), maxAttempts: 2 })
const Noop = defineJob({ kind: "noop", args: Schema.Struct({}) })

const fast: Partial<WorkerOptions> = {
  pollInterval: 20,
  backoff: exponentialBackoff({ baseMs: 1, maxMs: 5, jitter: 0 }),
  maintenance: { promoteInterval: 10, electionInterval: 10 },
}

const messageThrows = (): Error => {
  const error = new Error("hidden")
  Object.defineProperty(error, "message", {
    get() {
      throw new Error("the message getter throws")
    },
  })
  return error
}

const hostileProxy = (): unknown =>
  new Proxy(new Error("proxied"), {
    get() {
      throw new Error("get trap throws")
    },
    has() {
      throw new Error("has trap throws")
    },
    getPrototypeOf() {
      throw new Error("getPrototypeOf trap throws")
    },
  })

const unprintable = (): unknown => ({
  toJSON() {
    throw new Error("toJSON throws")
  },
  toString() {
    throw new Error("toString throws")
  },
})

// The rejection values, by the job's n.
const poisons: ReadonlyArray<() => unknown> = [
  messageThrows,
  hostileProxy,
  () => Symbol("a symbol"),
  unprintable,
  () => Object.create(null),
  () => undefined,
]

describe("handler rejections", () => {
  it("describeThrown never throws, whatever it is given", () => {
    for (const poison of poisons) {
      const described = describeThrown(poison())
      expect(typeof described.message).toBe("string")
      expect(described.message.length).toBeGreaterThan(0)
    }
    expect(describeThrown(messageThrows()).message).toContain("its message could not be read")
  })

  it("records every rejection shape on the job, retries and then fails it, and keeps working", async () => {
    const results = await producer.insertMany(
      db.pool,
      poisons.map((_, n) => job(Poison, { n })),
    )
    const ids = results.map((r) => (r._tag === "Inserted" ? r.id : ""))
    const worker = await Worker.start({
      pool: db.pool,
      ...fast,
      handlers: [
        handle(Poison, async ({ n }) => {
          await Promise.resolve()
          throw poisons[n]!()
        }),
        handle(Noop, () => {}),
      ],
    })
    onTestFinished(() => worker.stop({ timeout: 100 }))
    const failed = await Promise.all(
      ids.map((id) =>
        waitFor(`job ${id} to fail`, async () => {
          const j = await admin.getJob(db.pool, id)
          return j.state === "failed" ? j : undefined
        }),
      ),
    )
    for (const j of failed) {
      expect(j.errors).toHaveLength(2)
      for (const e of j.errors) expect(typeof e.message).toBe("string")
    }
    expect(failed[0]!.errors[0]!.message).toContain("its message could not be read")
    expect(failed[2]!.errors[0]!.message).toContain("Symbol(a symbol)")
    // Still working.
    const [noop] = await producer.insertMany(db.pool, [job(Noop, {})])
    const id = noop!._tag === "Inserted" ? noop!.id : ""
    await waitFor(
      "a later job to complete",
      async () => (await admin.getJob(db.pool, id)).state === "completed",
    )
  })

  it("says a job failed, not that it will be retried, when an unknown kind or a deadline ends its last attempt", async () => {
    const Unknown = defineJob({ kind: "nobody_handles_this", args: Schema.Struct({}), maxAttempts: 1 })
    const Stuck = defineJob({ kind: "stuck", args: Schema.Struct({}), maxAttempts: 1 })
    const [unknown, stuck] = await producer.insertMany(db.pool, [
      job(Unknown, {}),
      job(Stuck, {}, { timeout: 50 }),
    ])
    const worker = await Worker.start({
      pool: db.pool,
      ...fast,
      queues: ["default"],
      handlers: [handle(Stuck, () => new Promise<void>(() => {}))],
    })
    onTestFinished(() => worker.stop({ timeout: 100 }))
    for (const result of [unknown, stuck]) {
      const id = result!._tag === "Inserted" ? result!.id : ""
      const failed = await waitFor(`job ${id} to fail`, async () => {
        const j: Job = await admin.getJob(db.pool, id)
        return j.state === "failed" ? j : undefined
      })
      const last = failed.errors.at(-1)!.message
      expect(last).not.toContain("will be retried")
      expect(last).toMatch(/last attempt, so (?:it|the job) failed/)
    }
  })
})

describe("worker options", () => {
  it("refuses a worker without handlers unless allowNoHandlers, which then claims nothing", async () => {
    await expect(Worker.start({ pool: db.pool, handlers: [] })).rejects.toBeInstanceOf(NoJobHandlers)
    const [inserted] = await producer.insertMany(db.pool, [job(Noop, {})])
    const worker = await Worker.start({ pool: db.pool, handlers: [], allowNoHandlers: true, ...fast })
    const log = recordEvents(worker)
    expect(worker.queues).toEqual([])
    await worker.stop({ timeout: 0 })
    expect(log.ofType("claimed")).toEqual([])
    const id = inserted!._tag === "Inserted" ? inserted!.id : ""
    expect((await admin.getJob(db.pool, id)).state).toBe("available")
  })
})

describe("stop", () => {
  it("releases attempts at the end of the grace period and names the handlers that ignore their signal", async () => {
    const Obedient = defineJob({ kind: "obedient", args: Schema.Struct({}) })
    const Stubborn = defineJob({ kind: "stubborn", args: Schema.Struct({}) })
    const started = { obedient: latch(), stubborn: latch() }
    const stubbornDone = latch()
    onTestFinished(() => stubbornDone.resolve())
    const worker = await Worker.start({
      pool: db.pool,
      ...fast,
      handlers: [
        handle(Obedient, (_args, { signal }) => {
          started.obedient.resolve()
          return new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve()))
        }),
        handle(Stubborn, async () => {
          started.stubborn.resolve()
          await stubbornDone.promise
        }),
      ],
    })
    const log = recordEvents(worker)
    const [obedient, stubborn] = (
      await producer.insertMany(db.pool, [job(Obedient, {}), job(Stubborn, {})])
    ).map((r) => (r._tag === "Inserted" ? r.id : ""))
    await started.obedient.promise
    await started.stubborn.promise
    await worker.stop({ timeout: 50 })
    // Both were released; only the stubborn one is still running, and is named.
    expect(
      log
        .ofType("released")
        .flatMap((e) => e.jobs.map((j) => j.id))
        .sort(),
    ).toEqual([obedient, stubborn].sort())
    const abandoned = log.ofType("abandoned")
    expect(abandoned).toHaveLength(1)
    expect(abandoned[0]!.jobs.map((j) => [j.id, j.kind])).toEqual([[stubborn, "stubborn"]])
    expect((await admin.getJob(db.pool, stubborn!)).state).toBe("available")
    expect((await admin.getJob(db.pool, obedient!)).state).toBe("available")
  })
})
