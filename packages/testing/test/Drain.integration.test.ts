import { setTimeout as sleep } from "node:timers/promises"
import { defineJob } from "@awa/model/JobDefinition"
import { handle } from "@awa/runtime/JobHandler"
import { snooze } from "@awa/runtime/JobOutcome"
import { job } from "@awa/runtime/Producer"
import { Schema } from "effect"
import { describe, expect, it } from "vitest"
import { cleanQueue } from "../src/CleanQueue.js"
import { drain } from "../src/Drain.js"
import { expectInserted, expectNotInserted } from "../src/JobAssertions.js"
import { makeJobsDue } from "../src/TimeControl.js"
import { useAwaDatabase } from "../src/vitest/AwaTestDatabase.js"

const awa = useAwaDatabase({ scope: "test" })

const Step = defineJob({ kind: "step", args: Schema.Struct({ n: Schema.Number }), queue: "steps" })

describe("drain", () => {
  it("works scheduled jobs whose run time has come, with no maintenance running", async () => {
    const runAt = new Date(Date.now() + 100)
    await awa.producer.insert(awa.pool, Step, { n: 1 }, { runAt })
    await awa.producer.insert(awa.pool, Step, { n: 2 }, { delay: "1 hour" })
    // Wait (on the same host's clock) until the first job is due; drain itself never waits.
    while (Date.now() <= runAt.getTime() + 20) await sleep(10)
    const result = await drain(awa.pool, { handlers: [handle(Step, () => {})] })
    expect(result.results.map((r) => r.claimed.args)).toEqual([{ n: 1 }])
    await expectInserted(awa.pool, Step, { state: "scheduled", args: { n: 2 } })
  })

  it("works the handlers' queues until idle and counts the outcomes", async () => {
    await awa.producer.insertMany(awa.pool, [job(Step, { n: 1 }), job(Step, { n: 2 }), job(Step, { n: 3 })])
    const result = await drain(awa.pool, {
      handlers: [
        handle(Step, ({ n }) => {
          if (n === 2) throw new Error("two")
        }),
      ],
    })
    expect(result.counts).toEqual({ completed: 2, retried: 1, snoozed: 0, cancelled: 0, failed: 0, stale: 0 })
    expect(result.results.map((r) => r.claimed.args)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }])
    expect(await drain(awa.pool, { handlers: [handle(Step, () => {})] })).toEqual({
      results: [],
      counts: { completed: 0, retried: 0, snoozed: 0, cancelled: 0, failed: 0, stale: 0 },
    })
  })

  it("gives up with a clear error when the queues never go idle", async () => {
    await awa.producer.insert(awa.pool, Step, { n: 1 })
    await expect(drain(awa.pool, { handlers: [handle(Step, () => snooze(0))], maxJobs: 5 })).rejects.toThrow(
      'drain: worked 5 jobs and the queues (steps) are still not idle ({"completed":0,"retried":0,"snoozed":5,' +
        '"cancelled":0,"failed":0,"stale":0}). A handler may keep snoozing with no delay or keep enqueuing; ' +
        "raise maxJobs if this is expected.",
    )
  })
})

describe("makeJobsDue and cleanQueue", () => {
  it("make scheduled jobs due and remove a queue's jobs, on a pool or in a transaction", async () => {
    const inserted = await awa.producer.insert(awa.pool, Step, { n: 1 }, { delay: "1 day" })
    if (inserted._tag !== "Inserted") throw new Error("expected an insert")
    expect(await makeJobsDue(awa.pool, { within: "1 hour" })).toEqual([])
    const client = await awa.pool.connect()
    try {
      await client.query("BEGIN")
      expect(await makeJobsDue(client, { queue: "steps" })).toEqual([inserted.id])
      await expectInserted(client, Step, { state: "available" })
      expect(await cleanQueue(client, "steps")).toEqual({ jobs: 1, deadLettered: 0 })
      await expectNotInserted(client, Step)
      await client.query("ROLLBACK")
    } finally {
      client.release()
    }
    await expectInserted(awa.pool, Step, { state: "scheduled" })
    expect(await makeJobsDue(awa.pool)).toEqual([inserted.id])
  })
})
