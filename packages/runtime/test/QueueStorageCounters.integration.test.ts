// Live terminal counters of the queue-storage engine: after every path that adds or removes a terminal job,
// the counters (plus the rollups, once a slot was pruned) equal the ground truth per queue; concurrent batches
// with overlapping keys do not deadlock; rebuild restores a corrupted table; stats read counters.
import { describe, expect, it } from "vitest"
import { type Executor, toExecutor } from "../src/PgExecutor.js"
import { makeQueueStorageEngine } from "../src/QueueStorageEngine.js"
import { useAwaDatabase } from "./support/awaDatabase.js"
import { claimRefs, insertIds, liveCounters, qsRow, rollups, storedTerminal } from "./support/queueStorage.js"

const db = useAwaDatabase()
const engine = makeQueueStorageEngine({ pruneLockTimeoutMs: 2_000 })
const error = { kind: "error" as const, message: "boom" }

const expectInvariant = async (expected?: Record<string, number>) => {
  const truth = await storedTerminal(db.pool)
  expect(await liveCounters(db.pool)).toEqual(truth)
  if (expected !== undefined) expect(truth).toEqual(expected)
}

const workAll = async (x: Executor, queue: string) => claimRefs(engine, x, queue)

describe("queue-storage live terminal counters", () => {
  it("counts completions (the compact path) in the same statement", async () => {
    const x = toExecutor(db.pool)
    await insertIds(engine, x, [qsRow(1, "a"), qsRow(2, "a", { priority: 1 }), qsRow(3, "b")])
    await engine.complete(x, await workAll(x, "a"))
    await engine.complete(x, await workAll(x, "b"))
    await expectInvariant({ "a/completed": 2, "b/completed": 1 })
  })

  it("counts failures, but not jobs moved to the DLQ", async () => {
    const x = toExecutor(db.pool)
    await engine.setQueueDlq(x, "dead", true)
    await insertIds(engine, x, [qsRow(1, "fails"), qsRow(2, "dead")])
    for (const queue of ["fails", "dead"]) {
      const refs = await workAll(x, queue)
      await engine.fail(
        x,
        refs.map((ref) => ({ ref, attempt: ref.attempt, error })),
      )
    }
    await expectInvariant({ "fails/failed": 1 })
  })

  it("counts cancels of running, pending and deferred jobs", async () => {
    const x = toExecutor(db.pool)
    const [, pending, deferred] = await insertIds(engine, x, [
      qsRow(1, "c"),
      qsRow(2, "c2"),
      qsRow(3, "c", { delayMs: 3_600_000 }),
    ])
    const [running] = await workAll(x, "c")
    await engine.cancelAttempts(x, [
      { ref: running!, attempt: 1, error: { kind: "cancelled", message: "stop" } },
    ])
    await engine.cancelJob(x, pending!, "not needed")
    await engine.cancelJob(x, deferred!, "not needed")
    await expectInvariant({ "c/cancelled": 2, "c2/cancelled": 1 })
  })

  it("takes a job back out at a retry from a terminal state", async () => {
    const x = toExecutor(db.pool)
    const [done, failed, cancelled] = await insertIds(engine, x, [
      qsRow(1, "r"),
      qsRow(2, "r"),
      qsRow(3, "r"),
    ])
    const [a, b] = await workAll(x, "r")
    await engine.complete(x, [a!])
    await engine.fail(x, [{ ref: b!, attempt: 1, error }])
    await engine.cancelJob(x, cancelled!, "stop")
    await expectInvariant({ "r/completed": 1, "r/failed": 1, "r/cancelled": 1 })
    for (const id of [done!, failed!, cancelled!]) await engine.retryJob(x, id)
    await expectInvariant({})
    const again = await workAll(x, "r")
    expect(again).toHaveLength(3)
    await engine.complete(x, again)
    await expectInvariant({ "r/completed": 3 })
  })

  it("takes jobs out at purge, and DLQ moves back and purges keep the counters exact", async () => {
    const x = toExecutor(db.pool)
    await engine.setQueueDlq(x, "p", true)
    await insertIds(engine, x, [qsRow(1, "p"), qsRow(2, "p"), qsRow(3, "p"), qsRow(4, "p")])
    const [one, two, three] = await workAll(x, "p")
    await engine.complete(x, [one!])
    await engine.fail(x, [
      { ref: two!, attempt: 1, error },
      { ref: three!, attempt: 1, error },
    ])
    await expectInvariant({ "p/completed": 1 })
    // Bulk DLQ retry, then fail again and purge one entry: counters untouched, invariant holds.
    expect(await engine.retryDlq(x, { queue: "p" })).toHaveLength(2)
    const back = await workAll(x, "p")
    await engine.complete(x, back.slice(0, 1))
    await engine.fail(
      x,
      back.slice(1).map((ref) => ({ ref, attempt: ref.attempt, error })),
    )
    await expectInvariant()
    const purged = await engine.purgeQueue(x, "p")
    expect(purged.jobs).toBeGreaterThan(0)
    await expectInvariant({})
  })

  it("folds a pruned slot into the rollups in the same transaction as the truncate", async () => {
    const x = toExecutor(db.pool)
    await insertIds(
      engine,
      x,
      Array.from({ length: 6 }, (_, n) => qsRow(n, n % 2 === 0 ? "even" : "odd")),
    )
    for (const queue of ["even", "odd"]) await engine.complete(x, await workAll(x, queue))
    const before = await storedTerminal(db.pool)
    await engine.maintainRings(x, { failedMs: 0, force: true })
    await engine.maintainRings(x, { failedMs: 0, force: true })
    await expectInvariant({})
    expect(await rollups(db.pool)).toEqual(before)
    // Stats report the stored terminal jobs (history left with the ring).
    const stats = await engine.queueStats(x)
    expect(stats.find((s) => s.queue === "even")?.counts.completed ?? 0).toBe(0)
  })

  it("runs concurrent batches with overlapping keys without deadlock", async () => {
    const x = toExecutor(db.pool)
    db.pool.options.max = 12
    const queues = ["q1", "q2", "q3"]
    // Jobs in two queue-ring slots, so one batch's counter keys span slots, queues and priorities.
    for (let slot = 0; slot < 2; slot++) {
      await insertIds(
        engine,
        x,
        Array.from({ length: 48 }, (_, n) => qsRow(n, queues[n % 3]!, { priority: 1 + (n % 2) })),
      )
      if (slot === 0) await engine.maintainRings(x, { failedMs: 0, force: true })
    }
    const refs = [...(await workAll(x, "q1")), ...(await workAll(x, "q2")), ...(await workAll(x, "q3"))]
    expect(refs).toHaveLength(96)
    // Eight batches, each mixing every key, in different orders.
    const batches = Array.from({ length: 8 }, (_, b) => {
      const mine = refs.filter((_, i) => i % 8 === b)
      return b % 2 === 0 ? mine : mine.reverse()
    })
    const results = await Promise.all(
      batches.map(async (batch, b) =>
        b % 3 === 0
          ? engine.complete(x, batch)
          : b % 3 === 1
            ? engine.fail(
                x,
                batch.map((ref) => ({ ref, attempt: ref.attempt, error })),
              )
            : engine.cancelAttempts(
                x,
                batch.map((ref) => ({
                  ref,
                  attempt: ref.attempt,
                  error: { kind: "cancelled" as const, message: "x" },
                })),
              ),
      ),
    )
    expect(results.reduce((n, r) => n + r.applied.length, 0)).toBe(96)
    await expectInvariant()
  })

  it("rebuild-terminal-counters restores a deliberately corrupted counter table", async () => {
    const x = toExecutor(db.pool)
    await insertIds(engine, x, [qsRow(1, "fix"), qsRow(2, "fix"), qsRow(3, "fix2")])
    const refs = await workAll(x, "fix")
    await engine.complete(x, refs.slice(0, 1))
    await engine.fail(x, [{ ref: refs[1]!, attempt: 1, error }])
    await engine.cancelJob(x, (await engine.listJobs(x, { queue: "fix2" }, {})).items[0]!.id, "stop")
    const truth = await storedTerminal(db.pool)
    await db.pool.query("UPDATE awa.queue_terminal_live_counts SET count = count + 41")
    await db.pool.query("DELETE FROM awa.queue_terminal_live_counts WHERE state = 'failed'")
    await db.pool.query("INSERT INTO awa.queue_terminal_live_counts VALUES (3, 'ghost', 2, 'completed', 7)")
    expect(await liveCounters(db.pool)).not.toEqual(truth)
    expect(await engine.rebuildTerminalCounters(x)).toBe(3)
    expect(await liveCounters(db.pool)).toEqual(truth)
  })

  it("reads queue stats from the counters, not from terminal history", async () => {
    const x = toExecutor(db.pool)
    await insertIds(engine, x, [qsRow(1, "s"), qsRow(2, "s")])
    await engine.complete(x, await workAll(x, "s"))
    // Counters are the only source: change them and stats follow (history is not scanned).
    await db.pool.query("UPDATE awa.queue_terminal_live_counts SET count = 1000 WHERE queue = 's'")
    expect((await engine.queueStats(x)).find((s) => s.queue === "s")?.counts.completed).toBe(1000)
  })
})
