import { defineJob } from "@awa/model/JobDefinition"
import { onlyOnEngine } from "@awa/testing-src/vitest/EngineGuard.js"
import { Schema } from "effect"
import { describe, expect, it, onTestFinished } from "vitest"
import { makeAdmin } from "../src/Admin.js"
import { Maintenance, type MaintenanceOptions } from "../src/Maintenance.js"
import { toExecutor } from "../src/PgExecutor.js"
import { makeProducer } from "../src/Producer.js"
import { testEngine, useAwaDatabase } from "./support/awaDatabase.js"
import { recordEvents } from "./support/events.js"
import { waitFor } from "./support/wait.js"

const db = useAwaDatabase()
const producer = makeProducer()
const admin = makeAdmin()
const Task = defineJob({ kind: "task", args: Schema.Struct({}), maxAttempts: 2 })

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
  it("elects one leader, and another takes over when the leader's session dies", async () => {
    const a = candidate("leader-a")
    const aEvents = recordEvents(a)
    await waitFor("a leads", () => a.isLeader)
    const b = candidate("leader-b")
    const bEvents = recordEvents(b)
    // b keeps trying; it must not become leader while a lives.
    await waitFor("b has tried a few times", async () => {
      const rows = await db.pool.query(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'awa-maintenance:leader-b'",
      )
      return rows.rows[0].n === 1
    })
    expect(b.isLeader).toBe(false)
    expect((await admin.maintenanceLeader(db.pool))?.holder).toBe("leader-a")

    // Kill the leader's backend, as if its process died (a dead process does not come back, so a stops
    // trying; the real-process version of this is in Crash.integration.test.ts).
    await db.pool.query(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'awa-maintenance:leader-a'",
    )
    await waitFor("a noticed it lost its session", () => aEvents.ofType("leadership").some((e) => !e.leader))
    await a.stop()
    await waitFor("b takes over", () => b.isLeader)
    expect(bEvents.ofType("leadership")).toEqual([{ type: "leadership", leader: true, holder: "leader-b" }])
    expect((await admin.maintenanceLeader(db.pool))?.holder).toBe("leader-b")
    // Maintenance continues under b: a scheduled job gets promoted.
    const id = insertedId(await producer.insert(db.pool, Task, {}, { delay: 1 }))
    await waitFor("promoted under b", async () => (await admin.getJob(db.pool, id)).state === "available")
  })

  it("hands leadership over on a clean stop", async () => {
    const a = candidate("stop-a")
    await waitFor("a leads", () => a.isLeader)
    const b = candidate("stop-b")
    await a.stop()
    await waitFor("b leads", () => b.isLeader)
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

  it("does not rescue an attempt whose heartbeat lands while the rescue decides", async (ctx) => {
    onlyOnEngine(ctx, "canonical", "stages the race by updating and locking the job's row in awa.jobs")
    const db0 = toExecutor(db.pool)
    const id = insertedId(await producer.insert(db.pool, Task, {}))
    await testEngine.claim(db0, { queue: "default", limit: 1, defaultTimeoutMs: 60_000 })
    const m = candidate("rescue-race", { heartbeatStaleAfter: "1 minute", rescueInterval: "1 hour" })
    await waitFor("leader", () => m.isLeader)
    await m.runNow() // after the leader's first pass, rescue runs only when asked
    await db.pool.query("UPDATE awa.jobs SET heartbeat_at = now() - interval '1 hour' WHERE id = $1", [id])
    // A heartbeat in flight: it holds the row while the rescue runs, then commits a fresh time.
    const heartbeat = await db.pool.connect()
    try {
      await heartbeat.query("BEGIN")
      await heartbeat.query("UPDATE awa.jobs SET heartbeat_at = now() WHERE id = $1", [id])
      const report = m.runNow()
      await new Promise((resolve) => setTimeout(resolve, 50))
      await heartbeat.query("COMMIT")
      expect((await report)?.rescued).toBe(0)
    } finally {
      heartbeat.release()
    }
    expect((await admin.getJob(db.pool, id)).state).toBe("running")
    // Once stale again, with nobody holding it, it is rescued.
    await db.pool.query("UPDATE awa.jobs SET heartbeat_at = now() - interval '1 hour' WHERE id = $1", [id])
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
