// Queue-storage rings under maintenance: settled slots are truncated; a slot holding an unclaimed job, an open
// attempt or a failed job inside retention is never truncated; the ring degrades to one growing slot instead of
// losing anything; and Maintenance does this through the Engine seam (deleteRetained) under its leader.
import { describe, expect, it, onTestFinished } from "vitest"
import { Maintenance } from "../src/Maintenance.js"
import { toExecutor } from "../src/PgExecutor.js"
import { makeQueueStorageEngine } from "../src/QueueStorageEngine.js"
import { useAwaDatabase } from "./support/awaDatabase.js"
import {
  claimRefs,
  currentQueueSlot,
  insertIds,
  liveCounters,
  qsRow,
  rollups,
  slotRows,
  storedTerminal,
} from "./support/queueStorage.js"
import { waitFor } from "./support/wait.js"

const db = useAwaDatabase()
const engine = makeQueueStorageEngine({ pruneLockTimeoutMs: 2_000 })
const week = 7 * 24 * 3_600_000

const force = (failedMs = week) => engine.maintainRings(toExecutor(db.pool), { failedMs, force: true })

describe("queue-storage rings", () => {
  it("truncates settled slots after a run, folding their counters into the rollups", async () => {
    const x = toExecutor(db.pool)
    const ids = await insertIds(
      engine,
      x,
      Array.from({ length: 20 }, (_, n) => qsRow(n, "settled")),
    )
    const refs = await claimRefs(engine, x, "settled")
    expect((await engine.complete(x, refs)).applied).toHaveLength(20)
    expect(await slotRows(db.pool, "ready_entries", 0)).toBe(20)

    const first = await force()
    expect(first).toMatchObject({ queueRotated: true, claimRotated: true, queueSlotsPruned: [] })
    const second = await force()
    expect(second.claimSlotsPruned).toEqual([0])
    expect(second.queueSlotsPruned).toEqual([0])
    expect(second.terminalPruned).toBe(20)
    for (const table of [
      "ready_entries",
      "completion_batches",
      "closures",
      "ready_tombstones",
      "done_entries",
    ]) {
      expect(await slotRows(db.pool, table, 0)).toBe(0)
    }
    expect(await slotRows(db.pool, "claim_batches", 0)).toBe(0)
    // Completed history left with the ring; its count lives on in the rollups.
    expect(await engine.getJob(x, ids[0]!)).toBeNull()
    expect(await liveCounters(db.pool)).toEqual({})
    expect(await rollups(db.pool)).toEqual({ "settled/completed": 20 })
    expect(await storedTerminal(db.pool)).toEqual({})
  })

  it("never truncates a slot holding an unclaimed job: the ring stops and the current slot grows", async () => {
    const x = toExecutor(db.pool)
    const [waiting] = await insertIds(engine, x, [qsRow(0, "paused-work")])
    await engine.setQueuePaused(x, "paused-work", true)
    const done: Array<string> = []
    for (let round = 0; round < 20; round++) {
      done.push(...(await insertIds(engine, x, [qsRow(round, "busy")])))
      const refs = await claimRefs(engine, x, "busy")
      await engine.complete(x, refs)
      const report = await force()
      expect(report.queueSlotsPruned).not.toContain(0)
    }
    // Slot 0 still holds the waiting job; the ring went round once and stopped in front of it.
    expect(await slotRows(db.pool, "ready_entries", 0)).toBeGreaterThanOrEqual(1)
    expect(await currentQueueSlot(db.pool)).toBe(15)
    const report = await force()
    expect(report.skipped).toContainEqual({ ring: "queue", slot: 0, reason: "a pending job" })
    expect(report.queueRotated).toBe(false)
    expect(await engine.getJob(x, waiting!)).toMatchObject({ state: "available" })

    // Once it is worked, the slot settles and the ring moves on.
    await engine.setQueuePaused(x, "paused-work", false)
    const refs = await claimRefs(engine, x, "paused-work")
    expect(refs.map((r) => r.id)).toEqual([waiting])
    await engine.complete(x, refs)
    await force()
    const after = await force()
    expect(after.queueSlotsPruned).toContain(0)
    expect(await slotRows(db.pool, "ready_entries", 0)).toBe(0)
  })

  it("never truncates a slot holding an open attempt", async () => {
    const x = toExecutor(db.pool)
    const [id] = await insertIds(engine, x, [qsRow(0, "long")])
    const [ref] = await claimRefs(engine, x, "long")
    for (let i = 0; i < 4; i++) {
      const report = await force()
      expect(report.queueSlotsPruned).not.toContain(0)
      expect(report.claimSlotsPruned).not.toContain(0)
    }
    expect(await slotRows(db.pool, "ready_entries", 0)).toBe(1)
    expect(await engine.getJob(x, id!)).toMatchObject({ state: "running", attempt: 1 })
    expect((await engine.heartbeat(x, [ref!])).applied).toEqual([ref])
    expect((await engine.complete(x, [ref!])).applied).toEqual([ref])
    const pruned = [...(await force()).queueSlotsPruned, ...(await force()).queueSlotsPruned]
    expect(pruned).toContain(0)
    expect(await slotRows(db.pool, "ready_entries", 0)).toBe(0)
  })

  it("carries failed jobs inside retention forward, counts with them, and prunes them after it", async () => {
    const x = toExecutor(db.pool)
    const [failed] = await insertIds(engine, x, [qsRow(0, "failing", { maxAttempts: 1 })])
    const [cancelled] = await insertIds(engine, x, [qsRow(1, "failing")])
    const [ref] = await claimRefs(engine, x, "failing", 1)
    await engine.fail(x, [{ ref: ref!, attempt: 1, error: { kind: "error", message: "boom" } }])
    await engine.cancelJob(x, cancelled!, "no longer needed")
    await force()
    const carried = await force()
    expect(carried.queueSlotsPruned).toEqual([0])
    expect(carried.carried).toBe(2)
    expect(carried.terminalPruned).toBe(0)
    expect(await engine.getJob(x, failed!)).toMatchObject({ state: "failed", errors: [{ message: "boom" }] })
    expect(await engine.getJob(x, cancelled!)).toMatchObject({ state: "cancelled" })
    expect(await liveCounters(db.pool)).toEqual(await storedTerminal(db.pool))
    expect(await liveCounters(db.pool)).toEqual({ "failing/failed": 1, "failing/cancelled": 1 })
    // A failed job can still be retried after being carried.
    expect(await engine.retryJob(x, failed!)).toMatchObject({ state: "available", attempt: 0 })
    expect(await liveCounters(db.pool)).toEqual({ "failing/cancelled": 1 })

    // Past retention, they leave with their slot.
    await force(0)
    const pruned = await force(0)
    expect(pruned.carried).toBe(0)
    expect(await engine.getJob(x, cancelled!)).toBeNull()
    expect(await engine.getJob(x, failed!)).toMatchObject({ state: "available" })
    expect(await rollups(db.pool)).toEqual({ "failing/cancelled": 1 })
  })

  it("loses no job across many rotations with every kind of job in flight", async () => {
    const x = toExecutor(db.pool)
    const expected = new Map<string, string>()
    for (let round = 0; round < 18; round++) {
      const [pending, running, scheduled, toComplete] = await insertIds(engine, x, [
        qsRow(round, `mix-${round}`),
        qsRow(round, `mix-${round}`),
        qsRow(round, `mix-${round}`, { delayMs: 3_600_000 }),
        qsRow(round, `mix-${round}`),
      ])
      const refs = await claimRefs(engine, x, `mix-${round}`, 3)
      // Claims come in lane order: pending, running, toComplete. Put `pending` back (release) and complete one.
      await engine.release(x, [refs[0]!])
      await engine.complete(x, [refs[2]!])
      expected.set(pending!, "available")
      expected.set(running!, "running")
      expected.set(scheduled!, "scheduled")
      expected.set(toComplete!, "completed-or-pruned")
      await force()
      if (round % 6 !== 5) continue
      for (const [id, state] of expected) {
        const job = await engine.getJob(x, id)
        if (state === "completed-or-pruned") expect(job === null || job.state === "completed").toBe(true)
        else expect(job?.state).toBe(state)
      }
    }
  })

  it("rotates and prunes under the maintenance leader through deleteRetained", async () => {
    const x = toExecutor(db.pool)
    const fast = makeQueueStorageEngine({ queueRotateMs: 0, claimRotateMs: 0 })
    await insertIds(
      fast,
      x,
      Array.from({ length: 5 }, (_, n) => qsRow(n, "led")),
    )
    await fast.complete(x, await claimRefs(fast, x, "led"))
    const m = Maintenance.start({ pool: db.pool, holder: "rings", engine: fast, electionInterval: 10 })
    onTestFinished(() => m.stop())
    await waitFor("leadership", () => m.isLeader)
    for (let i = 0; i < 3; i++) await m.runNow()
    expect(await slotRows(db.pool, "ready_entries", 0)).toBe(0)
    expect(await rollups(db.pool)).toEqual({ "led/completed": 5 })
  })
})
