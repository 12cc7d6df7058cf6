// Queue-storage rings under maintenance: settled slots are truncated; a slot holding an unclaimed job, an open
// attempt or a failed job inside retention is never truncated; the ring degrades to one growing slot instead of
// losing anything; and Maintenance does this through the Engine seam (deleteRetained) under its leader.
import { prepareQueueStorageSchema } from "@awa/migrator/MigrateApi"
import type pg from "pg"
import { describe, expect, it, onTestFinished } from "vitest"
import type { AttemptRef } from "../src/Engine.js"
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

describe("queue-storage live slots", () => {
  // Claims read only live slots: ledger slots not retired, plus listed strays.
  const ledger = async () =>
    (
      await db.pool.query<{ slot: number; retired: boolean }>(
        "SELECT slot, retired FROM awa.queue_ring_rotations ORDER BY generation",
      )
    ).rows
  const retired = async (slot: number) =>
    (await ledger()).filter((r) => r.slot === slot).every((r) => r.retired)
  const current = async () => (await ledger()).at(-1)?.slot
  /** Runs `body` with a client for a writer's own transaction, rolled back and returned even when it fails. */
  const withWriter = async (body: (writer: pg.PoolClient) => Promise<void>) => {
    const writer = await db.pool.connect()
    try {
      await body(writer)
    } finally {
      await writer.query("ROLLBACK").catch(() => undefined)
      writer.release()
    }
  }
  const strays = async () =>
    (await db.pool.query<{ slot: number }>("SELECT slot FROM awa.queue_ring_strays ORDER BY slot")).rows.map(
      (r) => r.slot,
    )

  it("retires a slot once pruned, never the current one, and claims keep finding every job", async () => {
    const x = toExecutor(db.pool)
    await insertIds(engine, x, [qsRow(1, "retire")])
    await engine.complete(x, await claimRefs(engine, x, "retire"))
    await force()
    await force()
    expect(await retired(0)).toBe(true)
    expect((await ledger()).at(-1)?.retired).toBe(false)
    const [later] = await insertIds(engine, x, [qsRow(2, "retire")])
    expect((await claimRefs(engine, x, "retire")).map((r) => r.id)).toEqual([later])
  })

  it("claims a lane's jobs in lane order across its live slots, also after the ring wraps past its last slot", async () => {
    const x = toExecutor(db.pool)
    // Move the ring once round and on to slot 8 through empty slots, then write one job per slot: slots 8..15,
    // then 0 and 1. A VACUUM of the ledger first frees the line pointers of the generations the lap deleted, so
    // the ledger rows written next take them and are listed (in heap order) before slot 8's: the live slots are
    // then listed out of write order too, and a claim that took them in the order listed would be caught.
    for (let i = 0; i < 24; i++) await force()
    expect(await current()).toBe(8)
    await db.pool.query("VACUUM awa.queue_ring_rotations")
    const ids: Array<string> = []
    const slots: Array<number> = []
    for (let n = 0; n < 10; n++) {
      slots.push((await current())!)
      ids.push(...(await insertIds(engine, x, [qsRow(n, "wrapped")])))
      await force()
    }
    expect(slots).toEqual([8, 9, 10, 11, 12, 13, 14, 15, 0, 1])
    // Slot numbers no longer follow the order the jobs were written in; the claims still do.
    const claimed: Array<string> = []
    for (let n = 0; n < 10; n++) claimed.push(...(await claimRefs(engine, x, "wrapped", 1)).map((r) => r.id))
    expect(claimed).toEqual(ids)
    expect(await claimRefs(engine, x, "wrapped")).toEqual([])
  })

  it("a writer whose snapshot predates its slot's retirement lists the slot, and its job is claimed", async () => {
    const x = toExecutor(db.pool)
    // The lane exists before the writer's snapshot (creating it there would conflict with the claims below).
    await insertIds(engine, x, [qsRow(0, "stale")])
    await engine.complete(x, await claimRefs(engine, x, "stale"))
    let late: string | undefined
    await withWriter(async (writer) => {
      await writer.query("BEGIN ISOLATION LEVEL REPEATABLE READ")
      await writer.query("SELECT 1")
      // Meanwhile slot 0 is sealed, pruned and retired.
      await force()
      await force()
      expect(await retired(0)).toBe(true)
      expect(await current()).not.toBe(0)
      // The writer still sees slot 0 as current: it writes there, and lists it.
      ;[late] = await insertIds(engine, toExecutor(writer), [qsRow(1, "stale")])
      await writer.query("COMMIT")
    })
    expect(await slotRows(db.pool, "ready_entries", 0)).toBe(1)
    expect(await strays()).toEqual([0])
    const refs = await claimRefs(engine, x, "stale")
    expect(refs.map((r) => r.id)).toEqual([late])
    // Once that job is done and its slot pruned again, the slot is retired and no longer listed.
    expect((await engine.complete(x, refs)).applied).toHaveLength(1)
    await force()
    await force()
    expect(await slotRows(db.pool, "ready_entries", 0)).toBe(0)
    expect(await strays()).toEqual([])
    expect(await retired(0)).toBe(true)
  })

  it("a writer in flight keeps its slot live: retirement waits for it, and skips the slot when it waits too long", async () => {
    const x = toExecutor(db.pool)
    const quick = makeQueueStorageEngine({ pruneLockTimeoutMs: 100 })
    const maintain = () => quick.maintainRings(x, { failedMs: week, force: true })
    // The lane exists, and the current slot holds nothing committed (slot 0 is pruned and retired).
    await insertIds(quick, x, [qsRow(0, "inflight")])
    await quick.complete(x, await claimRefs(quick, x, "inflight"))
    await maintain()
    await maintain()
    const slot = await current()
    expect(await slotRows(db.pool, "ready_entries", slot!)).toBe(0)
    let held: string | undefined
    await withWriter(async (writer) => {
      await writer.query("BEGIN")
      ;[held] = await insertIds(quick, toExecutor(writer), [qsRow(1, "inflight")])
      // The writer's slot is sealed while its row is still uncommitted, so the slot looks empty: retirement must
      // wait for the writer (and give up after the lock timeout) rather than retire it.
      await maintain()
      expect(await current()).not.toBe(slot)
      expect(await retired(slot!)).toBe(false)
      await writer.query("COMMIT")
    })
    expect((await claimRefs(quick, x, "inflight")).map((r) => r.id)).toEqual([held])
  })

  it("a prune whose slot gains a row while it waits for the slot's lock checks the gates again, and keeps the row", async () => {
    const x = toExecutor(db.pool)
    // A settled job in the current slot, and its lane, before the writer's snapshot.
    await insertIds(engine, x, [qsRow(0, "gains")])
    await engine.complete(x, await claimRefs(engine, x, "gains"))
    const slot = await current()
    let late: string | undefined
    await withWriter(async (writer) => {
      await writer.query("BEGIN ISOLATION LEVEL REPEATABLE READ")
      await writer.query("SELECT 1")
      // The slot is sealed; the writer still sees it as current and writes a job there, not committed yet.
      await force()
      expect(await current()).not.toBe(slot)
      ;[late] = await insertIds(engine, toExecutor(writer), [qsRow(1, "gains")])
      // The next run finds the slot settled (the job is invisible to it) and waits for the slot's lock, which
      // the writer holds until it commits: the gates must be checked again, and the job found pending.
      const run = force()
      await waitFor("the prune to wait for the slot's lock", async () => {
        const { rows } = await db.pool.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity
           WHERE wait_event_type = 'Lock' AND query LIKE '%maintain_rings%'`,
        )
        return rows[0]!.n > 0
      })
      await writer.query("COMMIT")
      const report = await run
      expect(report.queueSlotsPruned).not.toContain(slot)
      expect(report.skipped).toContainEqual({ ring: "queue", slot, reason: "a pending job" })
    })
    expect(await slotRows(db.pool, "ready_entries", slot!)).toBe(2)
    expect((await claimRefs(engine, x, "gains")).map((r) => r.id)).toEqual([late])
  })
})

describe("queue-storage rings of a chosen size", () => {
  const partitionsPerTable = async (schema: string) =>
    Object.fromEntries(
      (
        await db.pool.query<{ parent: string; n: number }>(
          `SELECT p.relname AS parent, count(*)::int AS n FROM pg_inherits i
           JOIN pg_class ch ON ch.oid = i.inhrelid AND ch.relkind IN ('r', 'p')
           JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace s ON s.oid = p.relnamespace
           WHERE s.nspname = $1 GROUP BY 1 ORDER BY 1`,
          [schema],
        )
      ).rows.map((r) => [r.parent, r.n]),
    )
  const generations = async (schema: string, ring: "queue" | "claim") =>
    Number(
      (await db.pool.query(`SELECT max(generation) AS g FROM "${schema}".${ring}_ring_rotations`)).rows[0].g,
    )
  const idsInSlot = async (schema: string, slot: number) =>
    new Set(
      (await db.pool.query(`SELECT DISTINCT id::text AS id FROM "${schema}".ready_entries_${slot}`)).rows.map(
        (r) => r.id as string,
      ),
    )

  it("two queue slots and two claim slots: exactly those partitions, several full wraps under load, no job lost, nothing live truncated, counters exact", async () => {
    const schema = "tiny_rings"
    const queueSlots = 2
    const claimSlots = 2
    await prepareQueueStorageSchema({
      databaseUrl: db.url,
      schema,
      queueRingSlots: queueSlots,
      claimRingSlots: claimSlots,
    })
    expect(await partitionsPerTable(schema)).toEqual({
      claim_batches: claimSlots,
      closures: queueSlots,
      completion_batches: queueSlots,
      done_entries: queueSlots,
      ready_entries: queueSlots,
      ready_tombstones: queueSlots,
    })
    const tiny = makeQueueStorageEngine({ schema, pruneLockTimeoutMs: 2_000 })
    const x = toExecutor(db.pool)
    const queue = "tiny"
    // The model: every job's expected state; completed jobs may leave with their slot, nothing else may.
    const expected = new Map<string, string>()
    const terminalTotals = { completed: 0, failed: 0, cancelled: 0 }
    let held: Array<AttemptRef> = []
    const scheduled: Array<string> = []
    const failedIds: Array<string> = []

    // Jobs in states that may leave with their slot: completed ones always, failed and cancelled past retention.
    const check = async (when: string, mayLeave: ReadonlyArray<string> = ["completed"]) => {
      for (const [id, state] of expected) {
        const job = await tiny.getJob(x, id)
        if (mayLeave.includes(state))
          expect(job === null || job.state === state, `${when}: job ${id}`).toBe(true)
        else expect(job?.state, `${when}: job ${id} (${state}) is lost or wrong`).toBe(state)
      }
      // Live counters always equal the terminal jobs stored; with the rollups they account for every one.
      expect(await liveCounters(db.pool, schema), when).toEqual(await storedTerminal(db.pool, schema))
      const live = await liveCounters(db.pool, schema)
      const rolled = await rollups(db.pool, schema)
      for (const state of ["completed", "failed", "cancelled"] as const) {
        const key = `${queue}/${state}`
        expect((live[key] ?? 0) + (rolled[key] ?? 0), `${when}: ${state} total`).toBe(terminalTotals[state])
      }
    }

    for (let round = 0; round < 16; round++) {
      // Attempts left open by the previous round end now.
      expect((await tiny.complete(x, held)).applied).toHaveLength(held.length)
      for (const ref of held) expected.set(ref.id, "completed")
      terminalTotals.completed += held.length
      held = []

      const fresh = await insertIds(
        tiny,
        x,
        Array.from({ length: 6 }, (_, n) =>
          qsRow(round * 10 + n, queue, { maxAttempts: n % 2 === 0 ? 1 : 5 }),
        ),
      )
      for (const id of fresh) expected.set(id, "available")
      // A pending job cancelled before it is claimed, and a scheduled job cancelled two rounds later.
      const [doomed, later] = await insertIds(tiny, x, [
        qsRow(round * 10 + 7, queue),
        qsRow(round * 10 + 8, queue, { delayMs: 3_600_000 }),
      ])
      await tiny.cancelJob(x, doomed!, "not needed")
      expected.set(doomed!, "cancelled")
      expected.set(later!, "scheduled")
      terminalTotals.cancelled++
      scheduled.push(later!)
      if (scheduled.length > 2) {
        const id = scheduled.shift()!
        await tiny.cancelJob(x, id, "not needed either")
        expected.set(id, "cancelled")
        terminalTotals.cancelled++
      }

      const refs = await claimRefs(tiny, x, queue)
      const byRole = (role: number) => refs.filter((_, i) => i % 6 === role)
      const completed = [...byRole(0), ...byRole(1)]
      expect((await tiny.complete(x, completed)).applied).toHaveLength(completed.length)
      for (const r of completed) expected.set(r.id, "completed")
      terminalTotals.completed += completed.length
      const failing = byRole(2)
      await tiny.fail(
        x,
        failing.map((ref) => ({ ref, attempt: ref.attempt, error: { kind: "error", message: "boom" } })),
      )
      for (const r of failing) expected.set(r.id, "failed")
      terminalTotals.failed += failing.length
      failedIds.push(...failing.map((r) => r.id))
      const retrying = byRole(3)
      await tiny.retry(
        x,
        retrying.map((ref) => ({
          ref,
          attempt: ref.attempt,
          delayMs: 3_600_000,
          error: { kind: "error", message: "later" },
        })),
      )
      for (const r of retrying) expected.set(r.id, "retryable")
      const releasing = byRole(4)
      await tiny.release(x, releasing)
      for (const r of releasing) expected.set(r.id, "available")
      held = byRole(5)
      for (const r of held) expected.set(r.id, "running")
      // Now and then a failed job is retried from its terminal state (its count leaves with it).
      if (round % 3 === 2 && failedIds.length > 0) {
        const id = failedIds.shift()!
        expect(await tiny.retryJob(x, id)).toMatchObject({ state: "available" })
        expected.set(id, "available")
        terminalTotals.failed--
      }
      await check(`round ${round} before maintenance`)

      const before = await Promise.all(Array.from({ length: queueSlots }, (_, s) => idsInSlot(schema, s)))
      const report = await tiny.maintainRings(x, { failedMs: week, force: true })
      // A truncated slot held nothing live: every job it held that is not completed lives on elsewhere.
      for (const slot of report.queueSlotsPruned) {
        for (const id of before[slot]!) {
          const state = expected.get(id)
          if (state === undefined || state === "completed") continue
          expect((await tiny.getJob(x, id))?.state, `round ${round}: slot ${slot} took live job ${id}`).toBe(
            state,
          )
        }
      }
      await check(`round ${round} after maintenance`)
    }

    // Several full wraps of both rings happened under this load.
    expect(await generations(schema, "queue")).toBeGreaterThanOrEqual(3 * queueSlots)
    expect(await generations(schema, "claim")).toBeGreaterThanOrEqual(3 * claimSlots)
    expect(await currentQueueSlot(db.pool, schema)).toBeLessThan(queueSlots)

    // Drain what is left, then let retention go: everything settles and the ring ends empty but for the
    // current slot, with every terminal job accounted for in the rollups.
    expect((await tiny.complete(x, held)).applied).toHaveLength(held.length)
    for (const ref of held) expected.set(ref.id, "completed")
    terminalTotals.completed += held.length
    const rest = await claimRefs(tiny, x, queue)
    expect((await tiny.complete(x, rest)).applied).toHaveLength(rest.length)
    for (const r of rest) expected.set(r.id, "completed")
    terminalTotals.completed += rest.length
    for (let i = 0; i < 2 * queueSlots + 2; i++) await tiny.maintainRings(x, { failedMs: 0, force: true })
    await check("after retention", ["completed", "failed", "cancelled"])
    expect(await liveCounters(db.pool, schema)).toEqual({})
    const slotsHolding = []
    for (let s = 0; s < queueSlots; s++)
      if ((await slotRows(db.pool, "ready_entries", s, schema)) > 0) slotsHolding.push(s)
    expect(slotsHolding.length).toBeLessThanOrEqual(1)
  })
})
