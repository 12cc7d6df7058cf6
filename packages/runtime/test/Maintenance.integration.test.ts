import { setTimeout as sleep } from "node:timers/promises"
import { defineJob } from "@awa/model/JobDefinition"
import { onlyOnEngine } from "@awa/testing-src/vitest/EngineGuard.js"
import { Schema } from "effect"
import { describe, expect, it, onTestFinished } from "vitest"
import { makeAdmin } from "../src/Admin.js"
import { LeaseLost, leaseTerms } from "../src/LeaderLease.js"
import { Maintenance, type MaintenanceOptions } from "../src/Maintenance.js"
import { statement, toExecutor } from "../src/PgExecutor.js"
import { makeProducer } from "../src/Producer.js"
import { testEngine, useAwaDatabase } from "./support/awaDatabase.js"
import { engineMechanics } from "./support/engineMechanics.js"
import { recordEvents } from "./support/events.js"
import { waitFor } from "./support/wait.js"

const db = useAwaDatabase()
const producer = makeProducer()
const admin = makeAdmin()
const Task = defineJob({ kind: "task", args: Schema.Struct({}), maxAttempts: 2 })
const lateWrite = statement("test_late_write", "INSERT INTO late_writes VALUES (1)")

const candidate = (holder: string, options?: Partial<MaintenanceOptions>) => {
  const m = Maintenance.start({
    pool: db.pool,
    holder,
    electionInterval: 10,
    promoteInterval: 10,
    ...options,
  })
  onTestFinished(() => m.stop())
  return m
}

const insertedId = (result: Awaited<ReturnType<typeof producer.insert>>): string => {
  if (result._tag !== "Inserted") throw new Error(`expected an insert, got ${result._tag}`)
  return result.id
}

describe("Maintenance", () => {
  it("elects one leader; a leader whose lease ran out is deposed and its late writes are refused", async () => {
    // After its first pass, a does nothing until asked (so it cannot notice the takeover by itself).
    const idle = { promoteInterval: "1 hour", rescueInterval: "1 hour", retentionInterval: "1 hour" } as const
    const a = candidate("leader-a", { leaseTtl: "1 minute", ...idle })
    const aEvents = recordEvents(a)
    await waitFor("a leads", () => a.isLeader)
    const b = candidate("leader-b", { leaseTtl: "1 minute" })
    const bEvents = recordEvents(b)
    // b keeps trying (every 10 ms); it must not become leader while a's lease is live.
    await sleep(200)
    expect(b.isLeader).toBe(false)
    expect(await admin.maintenanceLeader(db.pool)).toMatchObject({ holder: "leader-a", epoch: 1, live: true })

    // a stalls past its lease (as a paused process would): the lease expires on the database clock and b
    // takes over with the next epoch, while a still believes it leads.
    // (Moving the expiry to now in the lease and its term row stands in for the clock passing it.)
    await db.pool.query(
      `WITH l AS (UPDATE awa.leaders SET expires_at = now() WHERE name = 'maintenance' RETURNING epoch)
       UPDATE awa.leader_terms t SET expires_at = now() FROM l WHERE t.name = 'maintenance' AND t.epoch = l.epoch`,
    )
    await waitFor("b takes over", () => b.isLeader)
    expect(a.isLeader).toBe(true)
    expect(await admin.maintenanceLeader(db.pool)).toMatchObject({ holder: "leader-b", epoch: 2, live: true })

    // a's late write carries epoch 1: refused before it runs, nothing written, and a steps down.
    await db.pool.query("CREATE TABLE late_writes (n int)")
    const late = a.runFenced((x) => x.query("late write", lateWrite, []))
    await expect(late).rejects.toBeInstanceOf(LeaseLost)
    await expect(late).rejects.toThrow(/epoch 1 has ended: the lease is now epoch 2, held by leader-b/)
    expect((await db.pool.query("SELECT count(*)::int AS n FROM late_writes")).rows[0].n).toBe(0)
    expect(a.isLeader).toBe(false)
    expect(await a.runNow()).toBeNull()
    expect(aEvents.ofType("leadership").map((e) => e.leader)).toEqual([true, false])
    expect(bEvents.ofType("leadership")).toEqual([{ type: "leadership", leader: true, holder: "leader-b" }])

    // Maintenance continues under b: a scheduled job gets promoted.
    const id = insertedId(await producer.insert(db.pool, Task, {}, { delay: 1 }))
    await waitFor("promoted under b", async () => (await admin.getJob(db.pool, id)).state === "available")
    // The history: two terms that do not overlap.
    const terms = await leaseTerms(db.pool)
    expect(terms.map((t) => [t.epoch, t.holder])).toEqual([
      [1, "leader-a"],
      [2, "leader-b"],
    ])
    expect(terms[1]!.electedAt.getTime()).toBeGreaterThanOrEqual(terms[0]!.expiresAt.getTime())
  })

  it("hands leadership over on a clean stop", async () => {
    // Long leases: only the release on stop lets b in.
    const a = candidate("stop-a", { leaseTtl: "1 hour" })
    await waitFor("a leads", () => a.isLeader)
    const b = candidate("stop-b", { leaseTtl: "1 hour" })
    await a.stop()
    // The release shows at once: the lease is a's and no longer live, unless b, already waiting, took it in between.
    const released = await admin.maintenanceLeader(db.pool)
    if (released?.holder === "stop-a") expect(released).toMatchObject({ epoch: 1, live: false })
    else expect(released).toMatchObject({ holder: "stop-b", epoch: 2, live: true })
    await waitFor("b leads", () => b.isLeader)
    expect(await admin.maintenanceLeader(db.pool)).toMatchObject({ holder: "stop-b", epoch: 2, live: true })
  })

  it("deletes terminal jobs past retention, keeping the rest", async (ctx) => {
    onlyOnEngine(
      ctx,
      "canonical",
      "deletes completed jobs by age; queue storage bounds that history by its ring",
    )
    const db0 = toExecutor(db.pool)
    const done = insertedId(await producer.insert(db.pool, Task, {}))
    const failed = insertedId(await producer.insert(db.pool, Task, {}))
    const waiting = insertedId(await producer.insert(db.pool, Task, {}))
    const claimed = await testEngine.claim(db0, { queue: "default", limit: 2, defaultTimeoutMs: 60_000 })
    const byId = new Map(claimed.map((j) => [j.id, j]))
    await testEngine.complete(db0, [byId.get(done)!])
    await testEngine.fail(db0, [
      { ref: byId.get(failed)!, attempt: 1, error: { kind: "failed", message: "x" } },
    ])
    const m = candidate("retention", {
      completedRetention: 0,
      failedRetention: "1 hour",
      retentionInterval: "1 hour",
    })
    await waitFor("leader", () => m.isLeader)
    await m.runNow()
    await expect(admin.getJob(db.pool, done)).rejects.toThrow(/does not exist/)
    expect((await admin.getJob(db.pool, failed)).state).toBe("failed")
    expect((await admin.getJob(db.pool, waiting)).state).toBe("available")
  })

  it("fails a rescued attempt that had no attempts left (to the DLQ when enabled)", async () => {
    await admin.setQueueDlq(db.pool, "default", true)
    const db0 = toExecutor(db.pool)
    const id = insertedId(await producer.insert(db.pool, Task, {}, { maxAttempts: 1 }))
    await testEngine.claim(db0, { queue: "default", limit: 1, defaultTimeoutMs: 60_000 })
    const m = candidate("rescue", { heartbeatStaleAfter: 0 })
    const events = recordEvents(m)
    await waitFor("leader", () => m.isLeader)
    await m.runNow()
    await waitFor("dead-lettered", async () => (await admin.listDlq(db.pool)).items.length === 1)
    const entry = await admin.getDlq(db.pool, id)
    expect(entry.errors[0]).toMatchObject({ kind: "rescued", attempt: 1 })
    expect(entry.errors[0]?.at).toBe(new Date(entry.errors[0]?.at ?? "").toISOString())
    await waitFor("maintenance event", () => events.ofType("maintenance").some((e) => e.rescued === 1))
  })

  it("does not rescue an attempt whose heartbeat lands while the rescue decides", async () => {
    const mechanics = engineMechanics()
    const db0 = toExecutor(db.pool)
    const id = insertedId(await producer.insert(db.pool, Task, {}))
    const [attempt] = await testEngine.claim(db0, { queue: "default", limit: 1, defaultTimeoutMs: 60_000 })
    const m = candidate("rescue-race", { heartbeatStaleAfter: "1 minute", rescueInterval: "1 hour" })
    await waitFor("leader", () => m.isLeader)
    await m.runNow() // after the leader's first pass, rescue runs only when asked
    await mechanics.ageHeartbeat(db.pool, id, attempt!.runLease, 3_600_000)
    // A heartbeat in flight: it holds the attempt while the rescue runs, then commits a fresh time.
    const heartbeat = await db.pool.connect()
    try {
      await heartbeat.query("BEGIN")
      await mechanics.heartbeatInFlight(heartbeat, id, attempt!.runLease)
      const report = m.runNow()
      await new Promise((resolve) => setTimeout(resolve, 50))
      await heartbeat.query("COMMIT")
      expect((await report)?.rescued).toBe(0)
    } finally {
      heartbeat.release()
    }
    expect((await admin.getJob(db.pool, id)).state).toBe("running")
    // Once stale again, with nobody holding it, it is rescued.
    await mechanics.ageHeartbeat(db.pool, id, attempt!.runLease, 3_600_000)
    expect((await m.runNow())?.rescued).toBe(1)
    expect((await admin.getJob(db.pool, id)).state).toBe("retryable")
  })

  it("rescues attempts whose deadline passed", async () => {
    const db0 = toExecutor(db.pool)
    const id = insertedId(await producer.insert(db.pool, Task, {}, { timeout: 1 }))
    await testEngine.claim(db0, { queue: "default", limit: 1, defaultTimeoutMs: 60_000 })
    const m = candidate("deadline", { deadlineGrace: 0 })
    await waitFor("leader", () => m.isLeader)
    await waitFor("rescued", async () => {
      await m.runNow()
      return (await admin.getJob(db.pool, id)).state !== "running"
    })
    const job = await admin.getJob(db.pool, id)
    expect(job.errors[0]?.message).toMatch(/past its deadline/)
  })
})
