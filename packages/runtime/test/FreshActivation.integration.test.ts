// Fresh installs start on queue storage: the first runtime that follows the storage state activates it on a
// database nothing ran on yet; a database with a history stays canonical; explicit engines never activate.
import { migrate } from "@awa/migrator/MigrateApi"
import { defineJob } from "@awa/model/JobDefinition"
import { Schema } from "effect"
import pg from "pg"
import { describe, expect, it, onTestFinished } from "vitest"
import { makeAdmin } from "../src/Admin.js"
import { handle } from "../src/JobHandler.js"
import { toExecutor } from "../src/PgExecutor.js"
import { makeProducer } from "../src/Producer.js"
import {
  activateFreshStorage,
  EngineContradictsStorageState,
  keepCanonicalStorage,
  readStorageStatus,
  registerRuntime,
  StorageGateRefused,
  unregisterRuntime,
} from "../src/StorageState.js"
import { Worker, type WorkerOptions } from "../src/Worker.js"
import { useAwaDatabase } from "./support/awaDatabase.js"
import { followStorageState } from "./support/followState.js"
import { waitFor } from "./support/wait.js"

const db = useAwaDatabase({ fresh: true })

// These tests are about processes that name no engine: the engine passes' AWA_ENGINE must not apply.
followStorageState()

const Task = defineJob({ kind: "fresh.task", args: Schema.Struct({ n: Schema.Number }) })

const state = async (pool: pg.Pool = db.pool) =>
  (
    await pool.query<{
      storage_state: string
      queue_storage_schema: string | null
      changed_by: string | null
    }>("SELECT storage_state, queue_storage_schema, changed_by FROM awa.runtime_state")
  ).rows[0]

const canonicalRows = async (): Promise<number> =>
  Number((await db.pool.query("SELECT count(*) AS n FROM awa.jobs")).rows[0].n)

const startWorker = async (
  options: Partial<WorkerOptions> = {},
  pool: pg.Pool = db.pool,
): Promise<Worker> => {
  const worker = await Worker.start({
    pool,
    pollInterval: 20,
    maintenance: false,
    handlers: [handle(Task, () => undefined)],
    ...options,
  })
  onTestFinished(() => worker.stop({ timeout: 100 }))
  return worker
}

const completed = (id: string) => async () =>
  (
    await makeAdmin()
      .getJob(db.pool, id)
      .catch(() => undefined)
  )?.state === "completed"

const insertedId = (r: { readonly _tag: string; readonly id?: string }): string => {
  if (r._tag !== "Inserted" || r.id === undefined) throw new Error(`expected an insert, got ${r._tag}`)
  return r.id
}

describe("fresh activation", () => {
  it("a fresh database plus a worker start ends in active queue storage, and the worker serves it", async () => {
    expect(await state()).toMatchObject({ storage_state: "canonical", changed_by: null })
    const worker = await startWorker()
    expect(worker.freshActivation).toMatchObject({
      outcome: "activated",
      state: "active",
      queueStorageSchema: "awa",
    })
    expect(await state()).toMatchObject({
      storage_state: "active",
      queue_storage_schema: "awa",
      changed_by: `awa worker ${worker.id} (fresh install)`,
    })
    const id = insertedId(await makeProducer().insert(db.pool, Task, { n: 1 }))
    await waitFor("the job completed in queue storage", completed(id))
    expect(await canonicalRows()).toBe(0)
  })

  it("a producer's first insert on a fresh database lands in queue storage (migrate; enqueue; start worker)", async () => {
    const id = insertedId(await makeProducer().insert(db.pool, Task, { n: 2 }))
    expect(await state()).toMatchObject({
      storage_state: "active",
      changed_by: "awa producer (fresh install)",
    })
    expect(await canonicalRows()).toBe(0)
    const worker = await startWorker()
    expect(worker.freshActivation).toMatchObject({ outcome: "not-fresh", state: "active" })
    await waitFor("the first job completed", completed(id))
  })

  it("a SQL producer's first awa.insert_job on a fresh database lands in queue storage too", async () => {
    const { rows } = await db.pool.query<{ id: string }>(
      "SELECT (awa.insert_job('fresh.task', '{\"n\": 8}'::jsonb)).id::text AS id",
    )
    expect(await state()).toMatchObject({
      storage_state: "active",
      changed_by: "awa.insert_job (fresh install)",
    })
    expect(await canonicalRows()).toBe(0)
    await startWorker()
    await waitFor("the SQL-inserted job completed", completed(rows[0]!.id))
  })

  it("a producer's first insert inside the caller's transaction activates with that transaction", async () => {
    const client = await db.pool.connect()
    try {
      await client.query("BEGIN")
      insertedId(await makeProducer().insert(client, Task, { n: 3 }))
      // Not committed yet: another session still sees the fresh canonical state.
      expect((await state())?.storage_state).toBe("canonical")
      await client.query("COMMIT")
    } finally {
      client.release()
    }
    expect((await state())?.storage_state).toBe("active")
    expect(await canonicalRows()).toBe(0)
  })

  it("a database with canonical jobs stays canonical after a worker start", async () => {
    const id = insertedId(await makeProducer({ engine: "canonical" }).insert(db.pool, Task, { n: 4 }))
    const worker = await startWorker()
    expect(worker.freshActivation).toMatchObject({ outcome: "not-fresh", state: "canonical" })
    expect(worker.freshActivation?.reason).toContain("jobs were already enqueued")
    await waitFor("the canonical job completed", completed(id))
    expect(await state()).toMatchObject({ storage_state: "canonical", changed_by: null })
  })

  it("a database where a runtime was seen stays canonical, even after its registration is gone", async () => {
    const x = toExecutor(db.pool)
    await registerRuntime(x, { id: "old", host: "h", pid: 1, version: "0", engines: ["canonical"] })
    await unregisterRuntime(x, "old")
    expect((await db.pool.query("SELECT count(*)::int AS n FROM awa.runtime_instances")).rows[0].n).toBe(0)
    const worker = await startWorker()
    expect(worker.freshActivation?.outcome).toBe("not-fresh")
    expect(worker.freshActivation?.reason).toContain("a runtime was already seen")
    expect((await state())?.storage_state).toBe("canonical")
  })

  it("awa migrate never changes the state: not on a fresh database, not after activation", async () => {
    await migrate({ databaseUrl: db.url })
    expect(await state()).toMatchObject({ storage_state: "canonical", changed_by: null })
    const status = await readStorageStatus(toExecutor(db.pool))
    expect(status.changedAt).toBeNull()
    await startWorker()
    await migrate({ databaseUrl: db.url })
    expect((await state())?.storage_state).toBe("active")
  })

  it("of concurrent first starts exactly one activates, and all end on queue storage", async () => {
    const pools = Array.from({ length: 4 }, () => {
      const pool = new pg.Pool({ connectionString: db.url, max: 3 })
      pool.on("error", () => undefined)
      onTestFinished(() => pool.end())
      return pool
    })
    const workers = await Promise.all(pools.map((pool) => startWorker({}, pool)))
    const outcomes = workers.map((w) => w.freshActivation?.outcome).sort()
    expect(outcomes).toEqual(["activated", "not-fresh", "not-fresh", "not-fresh"])
    for (const w of workers) expect(w.freshActivation?.state).toBe("active")
    // And the bare SQL call from many sessions at once, on another fresh database: one activation.
    const fresh = await freshDatabase()
    const calls = await Promise.all(
      fresh.pools.map((pool) => activateFreshStorage(toExecutor(pool), { actor: "race" })),
    )
    expect(calls.filter((c) => c.outcome === "activated")).toHaveLength(1)
    expect(calls.every((c) => c.state === "active")).toBe(true)
  })

  it("skips activation with a warning, not a crash, when the state's schema holds no substrate", async () => {
    const warnings: Array<Error & { code?: string }> = []
    const onWarning = (w: Error & { code?: string }) => void warnings.push(w)
    process.on("warning", onWarning)
    onTestFinished(() => void process.off("warning", onWarning))
    const worker = await startWorker({ queueStorageSchema: "tenant_missing" })
    expect(worker.freshActivation).toMatchObject({ outcome: "substrate-missing", state: "canonical" })
    expect(worker.freshActivation?.reason).toContain(
      "schema tenant_missing holds no queue-storage substrate: run `awa storage prepare-queue-storage-schema --schema tenant_missing`",
    )
    await waitFor("the warning", () => warnings.some((w) => w.code === "AWA_FRESH_ACTIVATION_SKIPPED"))
    const warning = warnings.find((w) => w.code === "AWA_FRESH_ACTIVATION_SKIPPED")
    expect(warning?.message).toContain("this database is fresh, but queue storage was not activated")
    expect(warning?.message).toContain("awa storage prepare")
    // The worker runs on canonical, and the database is no longer fresh (a runtime was seen).
    const id = insertedId(await makeProducer({ engine: "canonical" }).insert(db.pool, Task, { n: 5 }))
    await waitFor("the canonical job completed", completed(id))
    expect((await state())?.storage_state).toBe("canonical")
    expect((await activateFreshStorage(toExecutor(db.pool))).outcome).toBe("not-fresh")
  })

  it("an explicitly named engine never activates anything", async () => {
    const worker = await startWorker({ engine: "queue_storage" })
    expect(worker.freshActivation).toBeUndefined()
    insertedId(await makeProducer({ engine: "queue_storage" }).insert(db.pool, Task, { n: 6 }))
    expect((await state())?.storage_state).toBe("canonical")
  })

  it("refuses a worker naming queue storage against a canonical deployment with jobs, allows it without", async () => {
    const x = toExecutor(db.pool)
    await keepCanonicalStorage(x, { actor: "ops" })
    // No canonical jobs: queue storage named for a test or a benchmark is allowed.
    await startWorker({ engine: "queue_storage" })
    const id = insertedId(await makeProducer({ engine: "canonical" }).insert(db.pool, Task, { n: 7 }))
    const refused = await startWorker({ engine: "queue_storage" }).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(refused).toBeInstanceOf(EngineContradictsStorageState)
    expect((refused as Error).message).toContain(
      "The engine queue_storage was named explicitly (engine option or AWA_ENGINE), but the database's storage state is canonical, and the canonical engine holds jobs",
    )
    // Naming canonical there is fine.
    await startWorker({ engine: "canonical" })
    await waitFor("the canonical job completed", completed(id))
  })

  it("keep-canonical records the choice so fresh activation never happens, and is refused once active", async () => {
    const x = toExecutor(db.pool)
    expect(await keepCanonicalStorage(x, { actor: "ops" })).toBe("canonical")
    expect(await state()).toMatchObject({ storage_state: "canonical", changed_by: "ops" })
    const worker = await startWorker()
    expect(worker.freshActivation?.outcome).toBe("not-fresh")
    expect(worker.freshActivation?.reason).toContain("the storage state was set by ops")

    const other = await freshDatabase()
    const y = toExecutor(other.pools[0] as pg.Pool)
    expect((await activateFreshStorage(y)).outcome).toBe("activated")
    const error = await keepCanonicalStorage(y).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(StorageGateRefused)
    expect((error as StorageGateRefused).gate).toBe("state")
    expect((error as Error).message).toContain(
      "keep-canonical needs the storage state to be canonical, but it is active",
    )
  })
})

// A second fresh database in the same test (on the same server), with a few pools on it.
const freshDatabase = async (): Promise<{ readonly pools: ReadonlyArray<pg.Pool> }> => {
  const testUrl = new URL(db.url)
  const serverUrl = new URL("/postgres", testUrl).href
  const admin = new pg.Client({ connectionString: serverUrl })
  await admin.connect()
  const name = `awa_fresh_${process.pid}_${Math.random().toString(36).slice(2, 10)}`
  try {
    await admin.query(`CREATE DATABASE ${name}`)
  } finally {
    await admin.end()
  }
  const url = new URL(testUrl)
  url.pathname = `/${name}`
  await migrate({ databaseUrl: url.href })
  const pools = Array.from({ length: 6 }, () => {
    const pool = new pg.Pool({ connectionString: url.href, max: 1 })
    pool.on("error", () => undefined)
    return pool
  })
  onTestFinished(async () => {
    await Promise.all(pools.map((p) => p.end()))
    const dropper = new pg.Client({ connectionString: serverUrl })
    await dropper.connect()
    try {
      await dropper.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    } finally {
      await dropper.end()
    }
  })
  return { pools }
}
