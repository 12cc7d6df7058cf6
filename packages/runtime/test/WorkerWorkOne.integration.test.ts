// Worker.workOne: one job claimed and worked through the worker's real outcome path, nothing in the background.
import { defineJob } from "@awa/model/JobDefinition"
import { Schema } from "effect"
import { describe, expect, it } from "vitest"
import { makeAdmin } from "../src/Admin.js"
import { exponentialBackoff } from "../src/Backoff.js"
import { handle } from "../src/JobHandler.js"
import { cancel, fail, snooze } from "../src/JobOutcome.js"
import { withTransaction } from "../src/PgExecutor.js"
import { job, makeProducer } from "../src/Producer.js"
import { Worker } from "../src/Worker.js"
import { useAwaDatabase } from "./support/awaDatabase.js"

const db = useAwaDatabase()
const producer = makeProducer()
const admin = makeAdmin()
const Task = defineJob({ kind: "task", args: Schema.Struct({ n: Schema.Number }), maxAttempts: 2 })
const Other = defineJob({ kind: "other", args: Schema.Struct({}) })

describe("Worker.workOne", () => {
  it("returns null when the queue has nothing available", async () => {
    await producer.insert(db.pool, Task, { n: 1 }, { delay: "1 hour" })
    expect(await Worker.workOne({ db: db.pool, handlers: [handle(Task, () => {})] })).toBeNull()
  })

  it("works exactly one job, highest priority first, and reports each outcome", async () => {
    await producer.insertMany(db.pool, [
      job(Task, { n: 1 }, { priority: 3 }),
      job(Task, { n: 2 }, { priority: 1 }),
      job(Task, { n: 3 }, { priority: 4 }),
      job(Task, { n: 4 }, { priority: 4 }),
      job(Task, { n: 5 }, { priority: 4 }),
    ])
    const seen: Array<number> = []
    const outcomes = [
      () => undefined,
      () => snooze("1 hour"),
      () => cancel("not needed"),
      () => fail("broken"),
      () => {
        throw new Error("flaky")
      },
    ]
    const types: Array<string> = []
    for (const next of outcomes) {
      const event = await Worker.workOne({
        db: db.pool,
        handlers: [
          handle(Task, ({ n }) => {
            seen.push(n)
            return next()
          }),
        ],
        backoff: exponentialBackoff({ baseMs: 60_000, jitter: 0 }),
      })
      types.push(event?.type ?? "none")
    }
    expect(seen).toEqual([2, 1, 3, 4, 5])
    expect(types).toEqual(["completed", "snoozed", "cancelled", "failed", "retried"])
    const page = await admin.listJobs(db.pool, { kind: "task" })
    expect(page.items.map((j) => [j.args, j.state, j.attempt])).toEqual([
      [{ n: 1 }, "scheduled", 0],
      [{ n: 2 }, "completed", 1],
      [{ n: 3 }, "cancelled", 1],
      [{ n: 4 }, "failed", 1],
      [{ n: 5 }, "retryable", 1],
    ])
  })

  it("reports an outcome the database refused as the failure that replaced it; a bad backoff is only a notice", async () => {
    await producer.insertMany(db.pool, [job(Task, { n: 1 }), job(Task, { n: 2 })])
    const refused = await Worker.workOne({ db: db.pool, handlers: [handle(Task, () => snooze(10 ** 16))] })
    expect(refused?.type).toBe("failed")
    expect(refused?.type === "failed" && refused.error).toMatchObject({ name: "OutcomeRefused" })
    const retried = await Worker.workOne({
      db: db.pool,
      backoff: () => Number.NaN,
      handlers: [
        handle(Task, () => {
          throw new Error("again")
        }),
      ],
    })
    expect(retried?.type).toBe("retried")
  })

  it("records an unknown kind as the worker does, and runs inside the caller's transaction", async () => {
    await producer.insert(db.pool, Other, {})
    const event = await Worker.workOne({ db: db.pool, handlers: [handle(Task, () => {})] })
    expect(event).toMatchObject({ type: "retried", error: { kind: "unknown_kind" } })

    const rolledBack = await producer.insert(db.pool, Task, { n: 9 }, { queue: "tx" })
    await expect(
      withTransaction(db.pool, async (client) => {
        const done = await Worker.workOne({ db: client, queue: "tx", handlers: [handle(Task, () => {})] })
        expect(done?.type).toBe("completed")
        throw new Error("roll back")
      }),
    ).rejects.toThrow("roll back")
    if (rolledBack._tag !== "Inserted") throw new Error("expected an insert")
    expect((await admin.getJob(db.pool, rolledBack.id)).state).toBe("available")
  })
})
