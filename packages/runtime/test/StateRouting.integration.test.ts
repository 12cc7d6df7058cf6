import { setTimeout as sleep } from "node:timers/promises"
import { defineJob } from "@awa/model/JobDefinition"
import { Schema } from "effect"
import { describe, expect, it, onTestFinished } from "vitest"
import { makeAdmin } from "../src/Admin.js"
import { exponentialBackoff } from "../src/Backoff.js"
import { defaultStateCacheMs } from "../src/EngineSelection.js"
import { handle } from "../src/JobHandler.js"
import { toExecutor } from "../src/PgExecutor.js"
import { makeProducer } from "../src/Producer.js"
import {
  EngineContradictsStorageState,
  enterMixedStorage,
  finalizeStorage,
  prepareStorage,
  registerRuntime,
} from "../src/StorageState.js"
import { Worker } from "../src/Worker.js"
import { useAwaDatabase } from "./support/awaDatabase.js"
import { followStorageState } from "./support/followState.js"
import { latch, waitFor } from "./support/wait.js"

const db = useAwaDatabase()

// These tests exercise the default path (no engine named anywhere), which follows the database's state.
followStorageState()

const Task = defineJob({ kind: "routed.task", args: Schema.Struct({ n: Schema.Number }) })
const Hold = defineJob({ kind: "routed.hold", args: Schema.Struct({}) })

const where = async (id: string): Promise<"canonical" | "queue_storage" | "nowhere"> => {
  const c = await db.pool.query("SELECT 1 FROM awa.jobs WHERE id = $1", [id])
  if (c.rowCount === 1) return "canonical"
  const admin = makeAdmin({ engine: "queue_storage" })
  return (await admin.getJob(db.pool, id).then(
    () => true,
    () => false,
  ))
    ? "queue_storage"
    : "nowhere"
}

const insertedId = (r: { readonly _tag: string; readonly id?: string }): string => {
  if (r._tag !== "Inserted" || r.id === undefined) throw new Error(`expected an insert, got ${r._tag}`)
  return r.id
}

describe("routing follows the storage state", () => {
  it("a running producer, worker and admin follow canonical -> mixed -> active without a restart", async () => {
    const producer = makeProducer()
    const admin = makeAdmin()
    const done: Array<number> = []
    const held = latch()
    const worker = await Worker.start({
      pool: db.pool,
      pollInterval: 20,
      backoff: exponentialBackoff({ baseMs: 1, maxMs: 5, jitter: 0 }),
      maintenance: { promoteInterval: 10, electionInterval: 10, rescueInterval: 10 },
      handlers: [handle(Task, ({ n }) => void done.push(n)), handle(Hold, () => held.promise)],
    })
    onTestFinished(() => worker.stop({ timeout: 100 }))
    const completed = (id: string) => async () => (await admin.getJob(db.pool, id)).state === "completed"

    // Canonical: jobs live in awa.jobs.
    const a = insertedId(await producer.insert(db.pool, Task, { n: 1 }))
    expect(await where(a)).toBe("canonical")
    await waitFor("canonical job completed", completed(a))
    // A canonical job still running when the state moves.
    const h = insertedId(await producer.insert(db.pool, Hold, {}))
    await waitFor("hold job running", async () => (await admin.getJob(db.pool, h)).state === "running")

    const x = toExecutor(db.pool)
    await prepareStorage(x)
    await enterMixedStorage(x) // the worker registered itself, so the capable-runtime gate passes
    await sleep(defaultStateCacheMs + 50) // the producer has no LISTEN: its cache expires
    const b = insertedId(await producer.insert(db.pool, Task, { n: 2 }))
    expect(await where(b)).toBe("queue_storage")
    await waitFor("queue-storage job completed in mixed", completed(b))
    // The canonical attempt finishes in mixed: its completion is written where it lives.
    held.resolve()
    await waitFor("canonical hold job completed in mixed", completed(h))
    expect(await where(h)).toBe("canonical")

    await finalizeStorage(x)
    await sleep(defaultStateCacheMs + 50)
    const c = insertedId(await producer.insert(db.pool, Task, { n: 3 }))
    expect(await where(c)).toBe("queue_storage")
    await waitFor("queue-storage job completed in active", completed(c))
    expect(done.sort()).toEqual([1, 2, 3])
    // Admin reads in active see queue storage; the state-following admin answers for every job id it holds.
    expect((await admin.getJob(db.pool, c)).state).toBe("completed")
  })

  it("an explicitly named engine stays fixed whatever the state (tests and benchmarks)", async () => {
    const x = toExecutor(db.pool)
    await prepareStorage(x)
    const producer = makeProducer({ engine: "canonical" })
    const id = insertedId(await producer.insert(db.pool, Task, { n: 9 }))
    expect(await where(id)).toBe("canonical")
  })

  it("refuses a worker naming the canonical engine once the state is active", async () => {
    const x = toExecutor(db.pool)
    await prepareStorage(x)
    await registerRuntime(x, {
      id: "rt",
      host: "h",
      pid: 1,
      version: "1",
      engines: ["canonical", "queue_storage"],
    })
    await enterMixedStorage(x)
    await finalizeStorage(x)
    const refused = await Worker.start({
      pool: db.pool,
      engine: "canonical",
      handlers: [handle(Task, () => undefined)],
      maintenance: false,
    }).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(refused).toBeInstanceOf(EngineContradictsStorageState)
    expect((refused as Error).message).toContain("storage state is active")
    expect((refused as Error).message).toContain("Unset the engine option and AWA_ENGINE")
  })

  it("keeps a unique key held by a canonical job while mixed: the insert names the canonical holder", async () => {
    const producer = makeProducer()
    const held = insertedId(await producer.insert(db.pool, Task, { n: 7 }, { unique: true }))
    expect(await where(held)).toBe("canonical")
    const x = toExecutor(db.pool)
    await prepareStorage(x)
    await registerRuntime(x, {
      id: "rt",
      host: "h",
      pid: 1,
      version: "1",
      engines: ["canonical", "queue_storage"],
    })
    await enterMixedStorage(x)
    await sleep(defaultStateCacheMs + 50)
    const again = await producer.insert(db.pool, Task, { n: 7 }, { unique: true })
    expect(again).toMatchObject({ _tag: "UniqueConflict", existingId: held, existingState: "available" })
    const other = insertedId(await producer.insert(db.pool, Task, { n: 8 }, { unique: true }))
    expect(await where(other)).toBe("queue_storage")
  })
})
