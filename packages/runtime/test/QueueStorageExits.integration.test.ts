// The ways a queue-storage job leaves without completing, checked where the contract cannot look: a cancelled
// scheduled job never comes back to a claimer; unique keys are let go at every cancel and failure; a DLQ
// retry empties the entry; a write for an attempt that has already ended changes nothing; retention's purge
// of failed and cancelled jobs takes their counters with them. Judges of `pnpm mutation --engine
// queue_storage` for the SQL mistakes on those paths.
import { describe, expect, it } from "vitest"
import type { InsertRow } from "../src/Engine.js"
import { toExecutor } from "../src/PgExecutor.js"
import { makeQueueStorageEngine } from "../src/QueueStorageEngine.js"
import { useAwaDatabase } from "./support/awaDatabase.js"
import { claimRefs, insertIds, liveCounters, qsRow, storedTerminal } from "./support/queueStorage.js"

const db = useAwaDatabase()
const engine = makeQueueStorageEngine({ pruneLockTimeoutMs: 2_000 })
const error = { kind: "error" as const, message: "boom" }

/** A unique row: key `key` (hex) held while scheduled, available, running or retryable. */
const uniqueRow = (n: number, queue: string, key: string, delayMs?: number): InsertRow => ({
  ...qsRow(n, queue, delayMs === undefined ? {} : { delayMs }),
  uniqueKey: key,
  uniqueStates: ["scheduled", "available", "running", "retryable"],
})

const expectCountersExact = async () =>
  expect(await liveCounters(db.pool)).toEqual(await storedTerminal(db.pool))

describe("queue-storage exits", () => {
  it("a cancelled scheduled job is never claimed, made due or promoted again", async () => {
    const x = toExecutor(db.pool)
    const [scheduled] = await insertIds(engine, x, [qsRow(1, "later", { delayMs: 3_600_000 })])
    expect(await engine.cancelJob(x, scheduled!, "not needed")).toMatchObject({ state: "cancelled" })
    expect(await claimRefs(engine, x, "later")).toEqual([])
    expect(await engine.makeDue(x, { ids: [scheduled!] })).toEqual([])
    expect(await engine.makeDue(x, { queue: "later" })).toEqual([])
    expect(await engine.promote(x, 100)).toBe(0)
    expect(await claimRefs(engine, x, "later")).toEqual([])
    expect(await engine.getJob(x, scheduled!)).toMatchObject({ state: "cancelled" })
    await expectCountersExact()
  })

  it("lets go of unique keys at every cancel and failure", async () => {
    const x = toExecutor(db.pool)
    const keys = ["aa01", "aa02", "aa03", "aa04"]
    const [pending, scheduled, cancelledRunning, failedRunning] = await insertIds(engine, x, [
      uniqueRow(1, "u-pending", keys[0]!),
      uniqueRow(2, "u-scheduled", keys[1]!, 3_600_000),
      uniqueRow(3, "u-cancel", keys[2]!),
      uniqueRow(4, "u-fail", keys[3]!),
    ])
    await engine.cancelJob(x, pending!, "stop")
    await engine.cancelJob(x, scheduled!, "stop")
    const [toCancel] = await claimRefs(engine, x, "u-cancel")
    expect(
      (
        await engine.cancelAttempts(x, [
          { ref: toCancel!, attempt: 1, error: { kind: "cancelled", message: "x" } },
        ])
      ).applied,
    ).toHaveLength(1)
    const [toFail] = await claimRefs(engine, x, "u-fail")
    expect((await engine.fail(x, [{ ref: toFail!, attempt: 1, error }])).applied).toHaveLength(1)
    for (const id of [pending, scheduled, cancelledRunning, failedRunning])
      expect((await engine.getJob(x, id!))?.state).toMatch(/cancelled|failed/)
    // Every key is free again: the same keys insert new jobs.
    const again = await engine.insertMany(
      x,
      keys.map((key, n) => uniqueRow(10 + n, "u-again", key)),
    )
    expect(again.map((r) => r._tag)).toEqual(["Inserted", "Inserted", "Inserted", "Inserted"])
  })

  it("a DLQ retry leaves nothing in the DLQ", async () => {
    const x = toExecutor(db.pool)
    await engine.setQueueDlq(x, "dlq-exit", true)
    const [id] = await insertIds(engine, x, [qsRow(1, "dlq-exit")])
    const [ref] = await claimRefs(engine, x, "dlq-exit")
    expect((await engine.fail(x, [{ ref: ref!, attempt: 1, error }])).deadLettered).toEqual([id])
    expect(await engine.getDlq(x, id!)).not.toBeNull()
    expect(await engine.retryDlq(x, { id: id! })).toEqual([id])
    expect(await engine.getDlq(x, id!)).toBeNull()
    expect((await engine.listDlq(x, { queue: "dlq-exit" }, { limit: 10 })).items).toEqual([])
    expect(await engine.getJob(x, id!)).toMatchObject({ state: "available", attempt: 0 })
  })

  it("a heartbeat, failure or cancel of an attempt that has already ended changes nothing", async () => {
    const x = toExecutor(db.pool)
    const [done, cancelled] = await insertIds(engine, x, [qsRow(1, "ended"), qsRow(2, "ended")])
    const [a, b] = await claimRefs(engine, x, "ended")
    expect((await engine.complete(x, [a!])).applied).toEqual([a])
    await engine.cancelJob(x, cancelled!, "operator")
    expect((await engine.heartbeat(x, [a!, b!])).stale).toHaveLength(2)
    expect((await engine.fail(x, [{ ref: a!, attempt: 1, error }])).stale).toEqual([a])
    expect(
      (await engine.cancelAttempts(x, [{ ref: b!, attempt: 1, error: { kind: "cancelled", message: "x" } }]))
        .stale,
    ).toEqual([b])
    expect(await engine.getJob(x, done!)).toMatchObject({ state: "completed" })
    expect(await engine.getJob(x, cancelled!)).toMatchObject({ state: "cancelled" })
    const beats = await db.pool.query("SELECT count(*)::int AS n FROM awa.attempt_state")
    expect(beats.rows[0].n).toBe(0)
    await expectCountersExact()
    expect(await liveCounters(db.pool)).toEqual({ "ended/completed": 1, "ended/cancelled": 1 })
  })

  it("retention's purge of failed and cancelled jobs takes their counters with them", async () => {
    const x = toExecutor(db.pool)
    const [failed, cancelled, completed] = await insertIds(engine, x, [
      qsRow(1, "old"),
      qsRow(2, "old"),
      qsRow(3, "old"),
    ])
    const [f, , c] = await claimRefs(engine, x, "old", 3)
    await engine.fail(x, [{ ref: f!, attempt: 1, error }])
    await engine.complete(x, [c!])
    await engine.cancelJob(x, cancelled!, "stop")
    await expectCountersExact()
    // Nothing rotates yet (the slot is young): only retention's purge removes the failed and cancelled jobs.
    const young = makeQueueStorageEngine({ queueRotateMs: 3_600_000, claimRotateMs: 3_600_000 })
    expect(await young.deleteRetained(x, { completedMs: 0, failedMs: 0, limit: 100 })).toBe(2)
    expect(await engine.getJob(x, failed!)).toBeNull()
    expect(await engine.getJob(x, cancelled!)).toBeNull()
    expect(await engine.getJob(x, completed!)).toMatchObject({ state: "completed" })
    await expectCountersExact()
    expect(await liveCounters(db.pool)).toEqual({ "old/completed": 1 })
  })
})
