// Queue-storage COPY path: one COPY enqueues every row at the end of the statement (due rows ready in COPY order,
// future rows scheduled, lanes of several queues and priorities), a failed COPY enqueues nothing, and
// maintenance empties the inbox without touching the jobs.
import { describe, expect, it } from "vitest"
import { toExecutor } from "../src/PgExecutor.js"
import { makeQueueStorageEngine } from "../src/QueueStorageEngine.js"
import { useAwaDatabase } from "./support/awaDatabase.js"
import { qsRow } from "./support/queueStorage.js"

const db = useAwaDatabase()
const engine = makeQueueStorageEngine({ pruneLockTimeoutMs: 2_000 })

const inboxRows = async (): Promise<number> =>
  Number((await db.pool.query<{ n: string }>("SELECT count(*) AS n FROM awa.copy_inbox")).rows[0]!.n)

describe("queue-storage COPY", () => {
  it("enqueues every row of one COPY: due rows in COPY order on their lanes, future rows scheduled", async () => {
    const x = toExecutor(db.pool)
    const rows = [
      ...Array.from({ length: 30 }, (_, n) => qsRow(n, "copy-a")),
      ...Array.from({ length: 5 }, (_, n) => qsRow(100 + n, "copy-b", { priority: 1 })),
      qsRow(200, "copy-a", { delayMs: 3_600_000 }),
    ]
    expect(await engine.copyInsert(x, rows)).toBe(rows.length)

    const a = await engine.claim(x, { queue: "copy-a", limit: 100, defaultTimeoutMs: 60_000 })
    expect(a.map((j) => (j.args as { n: number }).n)).toEqual(Array.from({ length: 30 }, (_, n) => n))
    // Ids follow COPY order too.
    const ids = a.map((j) => BigInt(j.id))
    expect([...ids].sort((p, q) => (p < q ? -1 : p > q ? 1 : 0))).toEqual(ids)
    const b = await engine.claim(x, { queue: "copy-b", limit: 100, defaultTimeoutMs: 60_000 })
    expect(b.map((j) => j.priority)).toEqual([1, 1, 1, 1, 1])

    const page = await engine.listJobs(x, { queue: "copy-a", states: ["scheduled"] }, { limit: 10 })
    expect(page.items.map((j) => j.args)).toEqual([{ n: 200 }])
    expect(
      (
        await engine.complete(
          x,
          [...a, ...b].map((j) => ({ id: j.id, runLease: j.runLease })),
        )
      ).stale,
    ).toEqual([])
  })

  it("enqueues nothing when the COPY fails, and maintenance empties the inbox but keeps the jobs", async () => {
    const x = toExecutor(db.pool)
    // A row whose args are not JSON fails the statement after the inbox took the rows before it.
    const bad = { ...qsRow(2, "copy-fail"), argsJson: "{not json" }
    await expect(engine.copyInsert(x, [qsRow(1, "copy-fail"), bad])).rejects.toThrow()
    expect(await engine.claim(x, { queue: "copy-fail", limit: 10, defaultTimeoutMs: 60_000 })).toEqual([])

    expect(await engine.copyInsert(x, [qsRow(3, "copy-kept"), qsRow(4, "copy-kept")])).toBe(2)
    expect(await inboxRows()).toBeGreaterThan(0)
    await engine.maintainRings(x, { failedMs: 60_000 })
    expect(await inboxRows()).toBe(0)
    const jobs = await engine.claim(x, { queue: "copy-kept", limit: 10, defaultTimeoutMs: 60_000 })
    expect(jobs.map((j) => j.args)).toEqual([{ n: 3 }, { n: 4 }])
  })
})
