import { describe, expect, it } from "vitest"
import { toExecutor } from "../src/PgExecutor.js"
import { makeQueueStorageEngine } from "../src/QueueStorageEngine.js"
import {
  abortStorage,
  enterMixedStorage,
  finalizeStorage,
  prepareStorage,
  readStorageStatus,
  registerRuntime,
  StorageGateRefused,
} from "../src/StorageState.js"
import { Worker } from "../src/Worker.js"
import { useAwaDatabase } from "./support/awaDatabase.js"

const db = useAwaDatabase()

const refusal = async (p: Promise<unknown>): Promise<StorageGateRefused> => {
  const error = await p.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(StorageGateRefused)
  return error as StorageGateRefused
}

const qsRuntime = {
  id: "rt-qs",
  host: "h",
  pid: 1,
  version: "1.0.0",
  engines: ["canonical", "queue_storage"],
} as const

describe("storage state", () => {
  it("starts canonical and moves prepare -> enter-mixed -> finalize with its gates", async () => {
    const x = toExecutor(db.pool)
    const start = await readStorageStatus(x)
    expect(start).toMatchObject({
      state: "canonical",
      queueStorageSchema: null,
      // The harness records that its databases stay canonical (fresh activation is tested elsewhere).
      changedBy: "awa runtime test harness",
      canonicalBacklog: 0,
    })

    expect(await prepareStorage(x, { actor: "ops" })).toBe("prepared")
    const mixedRefused = await refusal(enterMixedStorage(x))
    expect(mixedRefused.gate).toBe("capable-runtime")
    expect(mixedRefused.message).toContain("Start (or upgrade to) a worker release that serves queue storage")

    await registerRuntime(x, qsRuntime)
    expect(await enterMixedStorage(x, { actor: "ops" })).toBe("mixed")

    // A canonical job is backlog: finalize is refused until it is terminal.
    const {
      rows: [job],
    } = await db.pool.query(
      "INSERT INTO awa.jobs (kind, queue, args) VALUES ('k', 'default', '{}') RETURNING id",
    )
    const backlog = await refusal(finalizeStorage(x))
    expect(backlog.gate).toBe("canonical-backlog")
    expect(backlog.reason).toContain("1 canonical job(s)")
    await db.pool.query("UPDATE awa.jobs SET state = 'cancelled', finalized_at = now() WHERE id = $1", [
      job?.id,
    ])

    // A live canonical-only runtime blocks finalize.
    await registerRuntime(x, { ...qsRuntime, id: "rt-old", engines: ["canonical"] })
    const old = await refusal(finalizeStorage(x))
    expect(old.gate).toBe("canonical-only-runtime")
    expect(old.reason).toContain("rt-old")
    await db.pool.query("DELETE FROM awa.runtime_instances WHERE id = 'rt-old'")

    expect(await finalizeStorage(x, { actor: "ops" })).toBe("active")
    const end = await readStorageStatus(x)
    expect(end).toMatchObject({ state: "active", queueStorageSchema: "awa", changedBy: "ops" })
    const { rows } = await db.pool.query("SELECT active_engine FROM awa.runtime_state")
    expect(rows).toEqual([{ active_engine: "queue_storage" }])
    const wrong = await refusal(abortStorage(x))
    expect(wrong.gate).toBe("state")
    expect(wrong.reason).toContain("it is active")
  })

  it("refuses prepare without the substrate and abort once queue storage holds work", async () => {
    const x = toExecutor(db.pool)
    const missing = await refusal(prepareStorage(x, { schema: "tenant_none" }))
    expect(missing.gate).toBe("substrate")
    expect(missing.reason).toContain("tenant_none")
    expect((await readStorageStatus(x)).state).toBe("canonical")

    expect(await prepareStorage(x)).toBe("prepared")
    expect(await abortStorage(x)).toBe("canonical")
    expect(await prepareStorage(x)).toBe("prepared")
    await makeQueueStorageEngine({ schema: "awa" }).insertMany(x, [
      {
        kind: "k",
        queue: "default",
        argsJson: "{}",
        priority: 2,
        maxAttempts: 3,
        runAt: null,
        delayMs: null,
        timeoutMs: null,
        tags: [],
        metadataJson: "{}",
        uniqueKey: null,
        uniqueStates: null,
      },
    ])
    const refused = await refusal(abortStorage(x))
    expect(refused.gate).toBe("queue-storage-work")
    expect((await readStorageStatus(x)).state).toBe("prepared")
  })

  it("announces every move on awa_storage_state", async () => {
    const client = await db.pool.connect()
    try {
      const seen: Array<string> = []
      client.on("notification", (n) => seen.push(n.payload ?? ""))
      await client.query("LISTEN awa_storage_state")
      await prepareStorage(toExecutor(db.pool))
      await abortStorage(toExecutor(db.pool))
      await client.query("SELECT 1")
      expect(seen).toEqual(["prepared", "canonical"])
    } finally {
      client.release()
    }
  })

  it("a worker registers itself at start (both engines, this release) and leaves the registry at stop", async () => {
    const worker = await Worker.start({
      pool: db.pool,
      id: "reg-worker",
      handlers: [],
      allowNoHandlers: true,
      maintenance: false,
    })
    const live = await readStorageStatus(toExecutor(db.pool))
    expect(live.liveRuntimes).toMatchObject([
      { id: "reg-worker", pid: process.pid, engines: ["canonical", "queue_storage"] },
    ])
    await worker.stop()
    expect((await readStorageStatus(toExecutor(db.pool))).liveRuntimes).toEqual([])
  })
})
