import { toExecutor } from "@awa/runtime/PgExecutor"
import { makeQueueStorageEngine } from "@awa/runtime/QueueStorageEngine"
import pg from "pg"
import { describe, expect, it, onTestFinished } from "vitest"
import { ExitCode } from "../src/ExitCode.js"
import { awa } from "./support/cli.js"
import { freshDatabases } from "./support/databases.js"

const migrated = async () => {
  const db = await freshDatabases("single")
  const m = await awa(["migrate", "--database-url", db.primaryUrl])
  expect(m.code, m.stderr).toBe(ExitCode.ok)
  const pool = new pg.Pool({ connectionString: db.primaryUrl })
  onTestFinished(() => pool.end())
  const storage = (...args: Array<string>) => awa(["storage", ...args, "--database-url", db.primaryUrl])
  const state = async () =>
    (await pool.query("SELECT storage_state FROM awa.runtime_state")).rows[0]?.storage_state
  return { db, pool, storage, state }
}

const registerQsRuntime = (pool: pg.Pool, id = "rt-1", engines = ["canonical", "queue_storage"]) =>
  pool.query("SELECT awa.register_runtime($1, 'host-a', 4242, '9.9.9', $2::text[])", [id, engines])

describe("awa storage status | prepare | enter-mixed | finalize | abort", () => {
  it("moves canonical -> prepared -> mixed -> active, and awa migrate never changes the state", async () => {
    const { db, pool, storage, state } = await migrated()
    const status = await storage("status", "--json")
    expect(status.code, status.stderr).toBe(ExitCode.ok)
    expect(JSON.parse(status.stdout)).toMatchObject({
      state: "canonical",
      queueStorageSchema: null,
      changedAt: null,
      canonicalBacklog: 0,
      substratePresent: true,
      queueStorageHoldsWork: false,
      liveRuntimes: [],
    })
    const text = await storage("status")
    expect(text.stdout).toContain("next: `awa storage prepare`")

    const prepared = await storage("prepare")
    expect(prepared.code, prepared.stderr).toBe(ExitCode.ok)
    expect(prepared.stdout).toContain("Storage state is now prepared.")
    // awa migrate (again) leaves the state alone.
    expect((await awa(["migrate", "--database-url", db.primaryUrl])).code).toBe(ExitCode.ok)
    expect(await state()).toBe("prepared")

    await registerQsRuntime(pool)
    expect((await storage("enter-mixed")).code).toBe(ExitCode.ok)
    const check = await storage("finalize", "--check")
    expect(check.code, check.stderr).toBe(ExitCode.ok)
    expect(check.stdout).toContain("finalize would pass now")
    expect(await state()).toBe("mixed")
    const finalized = await storage("finalize")
    expect(finalized.code, finalized.stderr).toBe(ExitCode.ok)
    expect(finalized.stdout).toContain("Storage state is now active.")
    const end = JSON.parse((await storage("status", "--json")).stdout)
    expect(end).toMatchObject({ state: "active", queueStorageSchema: "awa" })
    expect(end.changedBy).toContain("(awa CLI)")
    expect(end.liveRuntimes).toMatchObject([{ id: "rt-1", host: "host-a", pid: 4242, version: "9.9.9" }])
    expect((await awa(["migrate", "--database-url", db.primaryUrl])).code).toBe(ExitCode.ok)
    expect(await state()).toBe("active")
  })

  it("refuses prepare without the substrate (exit 6, nothing changed)", async () => {
    const { storage, state } = await migrated()
    const r = await storage("prepare", "--schema", "tenant_missing")
    expect(r.code).toBe(ExitCode.unsafe)
    expect(r.stderr).toContain("refused by the substrate gate (nothing changed)")
    expect(r.stderr).toContain("schema tenant_missing holds no queue-storage substrate")
    expect(r.stderr).toContain("prepare-queue-storage-schema --schema NAME")
    expect(await state()).toBe("canonical")
  })

  it("refuses enter-mixed without a live runtime able to serve queue storage", async () => {
    const { pool, storage, state } = await migrated()
    expect((await storage("prepare")).code).toBe(ExitCode.ok)
    await registerQsRuntime(pool, "old-one", ["canonical"])
    const r = await storage("enter-mixed")
    expect(r.code).toBe(ExitCode.unsafe)
    expect(r.stderr).toContain("refused by the capable-runtime gate")
    expect(r.stderr).toContain("no live runtime")
    expect(r.stderr).toContain("worker release that serves queue storage")
    // A capable runtime seen long ago is not live.
    await registerQsRuntime(pool, "stale")
    await pool.query(
      "UPDATE awa.runtime_instances SET last_seen_at = now() - interval '1 minute' WHERE id = 'stale'",
    )
    expect((await storage("enter-mixed")).code).toBe(ExitCode.unsafe)
    expect(await state()).toBe("prepared")
  })

  it("refuses finalize while the canonical backlog is not drained; --wait waits for it", async () => {
    const { pool, storage, state } = await migrated()
    const {
      rows: [job],
    } = await pool.query(
      "INSERT INTO awa.jobs (kind, queue, args) VALUES ('k', 'default', '{}') RETURNING id",
    )
    expect((await storage("prepare")).code).toBe(ExitCode.ok)
    await registerQsRuntime(pool)
    expect((await storage("enter-mixed")).code).toBe(ExitCode.ok)

    const check = await storage("finalize", "--check")
    expect(check.code).toBe(ExitCode.unsafe)
    expect(check.stderr).toContain("refused by the canonical-backlog gate")
    const r = await storage("finalize")
    expect(r.code).toBe(ExitCode.unsafe)
    expect(r.stderr).toContain("1 canonical job(s) are not finished yet")
    expect(r.stderr).toContain("--wait")
    const short = await storage("finalize", "--wait", "300ms")
    expect(short.code).toBe(ExitCode.unsafe)
    expect(await state()).toBe("mixed")

    // The backlog drains while finalize --wait is waiting.
    const waiting = storage("finalize", "--wait", "1m")
    await new Promise((r) => setTimeout(r, 500))
    await pool.query("UPDATE awa.jobs SET state = 'completed', finalized_at = now() WHERE id = $1", [job.id])
    const done = await waiting
    expect(done.code, done.stderr).toBe(ExitCode.ok)
    expect(await state()).toBe("active")
  })

  it("refuses finalize while a live runtime can serve only the canonical engine", async () => {
    const { pool, storage, state } = await migrated()
    expect((await storage("prepare")).code).toBe(ExitCode.ok)
    await registerQsRuntime(pool)
    expect((await storage("enter-mixed")).code).toBe(ExitCode.ok)
    await registerQsRuntime(pool, "old-one", ["canonical"])
    const r = await storage("finalize")
    expect(r.code).toBe(ExitCode.unsafe)
    expect(r.stderr).toContain("refused by the canonical-only-runtime gate")
    expect(r.stderr).toContain("old-one (host host-a, pid 4242, version 9.9.9)")
    expect(r.stderr).toContain("Stop those runtimes or upgrade them")
    expect(await state()).toBe("mixed")
    // Once it stops (its row goes away at a clean stop), finalize passes.
    await pool.query("DELETE FROM awa.runtime_instances WHERE id = 'old-one'")
    expect((await storage("finalize")).code).toBe(ExitCode.ok)
    expect(await state()).toBe("active")
  })

  it("refuses abort after queue-storage writes; allows it before", async () => {
    const { pool, storage, state } = await migrated()
    expect((await storage("prepare")).code).toBe(ExitCode.ok)
    const ok = await storage("abort")
    expect(ok.code, ok.stderr).toBe(ExitCode.ok)
    expect(await state()).toBe("canonical")
    expect((await storage("prepare")).code).toBe(ExitCode.ok)
    await registerQsRuntime(pool)
    expect((await storage("enter-mixed")).code).toBe(ExitCode.ok)
    // A producer following the mixed state writes to queue storage.
    await makeQueueStorageEngine({ schema: "awa" }).insertMany(toExecutor(pool), [
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
    const r = await storage("abort")
    expect(r.code).toBe(ExitCode.unsafe)
    expect(r.stderr).toContain("refused by the queue-storage-work gate")
    expect(r.stderr).toContain("Go forward instead")
    expect(await state()).toBe("mixed")
  })

  it("refuses a transition from the wrong state and bad flags", async () => {
    const { storage } = await migrated()
    const r = await storage("finalize")
    expect(r.code).toBe(ExitCode.unsafe)
    expect(r.stderr).toContain("finalize needs the storage state to be mixed, but it is canonical")
    expect((await storage("finalize", "--check", "--wait", "1s")).code).toBe(ExitCode.usage)
    expect((await storage("finalize", "--wait", "soon")).code).toBe(ExitCode.usage)
    expect((await storage("status", "extra")).code).toBe(ExitCode.usage)
  })
})
