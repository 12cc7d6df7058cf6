// Crash safety with real processes and a real Postgres restart. These tests run the built runtime in child
// processes (compiled first) and, for the restart, a Postgres server of their own.
import { type ChildProcess, spawn } from "node:child_process"
import fs from "node:fs"
import os from "node:os"
import path from "node:path"
import { fileURLToPath } from "node:url"
import { defineJob } from "@awa/model/JobDefinition"
import { importWithoutExitOverride } from "@awa/testing-src/internal/EmbeddedServer.js"
import { freeLoopbackPort } from "@awa/testing-src/internal/FreePort.js"
import { Schema } from "effect"
import pg from "pg"
import { describe, expect, it, onTestFinished } from "vitest"
import { makeAdmin } from "../src/Admin.js"
import { handle } from "../src/JobHandler.js"
import { job, makeProducer } from "../src/Producer.js"
import { Worker } from "../src/Worker.js"
import { applyMigrations, useAwaDatabase } from "./support/awaDatabase.js"
import { useChildDist } from "./support/childDist.js"
import { waitFor } from "./support/wait.js"

const packageDir = fileURLToPath(new URL("..", import.meta.url))
const fixture = fileURLToPath(new URL("./fixtures/crashWorker.mjs", import.meta.url))

// The children run this package compiled from the current sources into a folder of their own.
const childDist = useChildDist(packageDir, "awa-crash-test-dist")

const db = useAwaDatabase()
const producer = makeProducer()
const admin = makeAdmin()
const Quick = defineJob({ kind: "quick", args: Schema.Struct({ n: Schema.Number }) })
const Block = defineJob({ kind: "block", args: Schema.Struct({}) })

/** A worker in a child process, with the lines it printed. */
const spawnWorker = (url: string, name: string) => {
  const child: ChildProcess = spawn(process.execPath, [fixture, url, name, childDist], {
    cwd: packageDir,
    stdio: ["ignore", "pipe", "pipe"],
  })
  const lines: Array<string> = []
  let stderr = ""
  child.stdout
    ?.setEncoding("utf8")
    .on("data", (chunk: string) => lines.push(...chunk.split("\n").filter(Boolean)))
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk
  })
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  onTestFinished(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
    await exited
  })
  return {
    child,
    exited,
    lines,
    waitForLine: (prefix: string) =>
      waitFor(`child ${name} to print "${prefix}" (stderr: ${stderr.slice(-500)})`, () =>
        lines.find((line) => line.startsWith(prefix)),
      ),
  }
}

const runsOf = async (): Promise<Map<string, Array<{ attempt: number; worker: string }>>> => {
  const rows = (await db.pool.query("SELECT job_id, attempt, worker FROM crash_runs ORDER BY attempt")).rows
  const runs = new Map<string, Array<{ attempt: number; worker: string }>>()
  for (const row of rows) {
    const list = runs.get(String(row.job_id)) ?? []
    list.push({ attempt: row.attempt, worker: row.worker })
    runs.set(String(row.job_id), list)
  }
  return runs
}

describe("crash safety", () => {
  it("rescues the job of a worker killed with SIGKILL, runs no completed job again, and fails maintenance over", async () => {
    await db.pool.query(
      "CREATE TABLE crash_runs (job_id bigint NOT NULL, attempt integer NOT NULL, worker text NOT NULL)",
    )
    const a = spawnWorker(db.url, "worker-a")
    await a.waitForLine("ready")
    await a.waitForLine("leader")
    const inserted = await producer.insertMany(db.pool, [
      ...Array.from({ length: 30 }, (_, n) => job(Quick, { n })),
      job(Block, {}),
    ])
    const ids = inserted.map((r) => (r._tag === "Inserted" ? r.id : ""))
    const blockId = ids[30]!
    expect(await a.waitForLine("blocking")).toBe(`blocking ${blockId}`)
    await waitFor(
      "quick jobs completed by a",
      async () => (await admin.queueStats(db.pool))[0]?.counts.completed === 30,
    )

    // A second worker, in this process; it cannot lead while a lives.
    const recordRun = (j: { id: string; attempt: number }) =>
      db.pool.query("INSERT INTO crash_runs (job_id, attempt, worker) VALUES ($1, $2, 'worker-b')", [
        j.id,
        j.attempt,
      ])
    const b = await Worker.start({
      pool: db.pool,
      id: "worker-b",
      pollInterval: 20,
      heartbeatInterval: 50,
      backoff: () => 0,
      maintenance: {
        electionInterval: 20,
        promoteInterval: 20,
        rescueInterval: 20,
        heartbeatStaleAfter: 400,
      },
      handlers: [
        handle(Quick, async (_, { job: j }) => void (await recordRun(j))),
        handle(Block, async (_, { job: j }) => void (await recordRun(j))),
      ],
    })
    onTestFinished(() => b.stop({ timeout: 100 }))
    expect(b.maintenance?.isLeader).toBe(false)
    expect((await admin.maintenanceLeader(db.pool))?.holder).toBe("worker-a")

    a.child.kill("SIGKILL")
    await a.exited
    await waitFor("b becomes leader", () => b.maintenance?.isLeader === true)
    const done = await waitFor("block job rescued and completed by b", async () => {
      const j = await admin.getJob(db.pool, blockId)
      return j.state === "completed" ? j : undefined
    })
    expect(done.attempt).toBe(2)
    expect(done.errors.map((e) => e.kind)).toEqual(["rescued"])
    expect((await admin.maintenanceLeader(db.pool))?.holder).toBe("worker-b")

    const runs = await runsOf()
    for (const id of ids.slice(0, 30)) expect(runs.get(id)).toEqual([{ attempt: 1, worker: "worker-a" }])
    expect(runs.get(blockId)).toEqual([
      { attempt: 1, worker: "worker-a" },
      { attempt: 2, worker: "worker-b" },
    ])
    expect((await admin.queueStats(db.pool))[0]?.counts.completed).toBe(31)
  })

  it("completes every job exactly once across a Postgres restart in the middle of a run", async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "awa-restart-"))
    const port = await freeLoopbackPort()
    // Imported without the exit listeners that would turn a failing run's exit code into 0.
    const EmbeddedPostgres = await importWithoutExitOverride()
    const server = new EmbeddedPostgres({
      databaseDir: dataDir,
      port,
      user: "postgres",
      password: "postgres",
      authMethod: "password",
      persistent: true,
      createPostgresUser: process.getuid?.() === 0,
      initdbFlags: ["--no-sync", "--encoding=UTF8", "--locale=C"],
      postgresFlags: [
        "-c",
        "fsync=off",
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        "unix_socket_directories=",
      ],
      onLog: () => {},
      onError: () => {},
    })
    await server.initialise()
    await server.start()
    onTestFinished(async () => {
      await server.stop().catch(() => {})
      fs.rmSync(dataDir, { recursive: true, force: true })
    })
    const url = `postgres://postgres:postgres@127.0.0.1:${port}/postgres`
    await applyMigrations(url)
    const pool = new pg.Pool({ connectionString: url, max: 6 })
    pool.on("error", () => {})
    onTestFinished(() => pool.end())

    const Work = defineJob({ kind: "work", args: Schema.Struct({ n: Schema.Number }) })
    const total = 4000
    await producer.insertCopy(
      pool,
      Array.from({ length: total }, (_, n) => job(Work, { n })),
    )
    const completions = new Map<string, number>()
    let runs = 0
    const worker = await Worker.start({
      pool,
      pollInterval: 50,
      heartbeatInterval: 100,
      concurrency: 50,
      claimBatchSize: 50,
      backoff: () => 0,
      maintenance: {
        electionInterval: 50,
        promoteInterval: 50,
        rescueInterval: 50,
        heartbeatStaleAfter: 1500,
      },
      handlers: [
        handle(Work, async () => {
          runs++
          await new Promise((resolve) => setImmediate(resolve))
        }),
      ],
    })
    onTestFinished(() => worker.stop({ timeout: 100 }))
    let errors = 0
    worker.subscribe((event) => {
      if (event.type === "error") errors++
      if (event.type === "completed") completions.set(event.job.id, (completions.get(event.job.id) ?? 0) + 1)
    })
    await waitFor("a part of the run completed", () => completions.size >= 500)
    expect(completions.size).toBeLessThan(total)

    await server.stop()
    await server.start()

    // Counted through the admin API, so the check holds under every engine.
    const counts = async () => {
      const stats = await makeAdmin().queueStats(pool)
      const byState: Record<string, number> = {}
      for (const queue of stats) {
        for (const [state, n] of Object.entries(queue.counts)) byState[state] = (byState[state] ?? 0) + n
      }
      return byState
    }
    await waitFor(
      "every job completed after the restart",
      async () => (await counts()).completed === total,
      60_000,
    )
    await waitFor("every completion reported", () => completions.size === total, 10_000)
    expect([...completions.values()].every((n) => n === 1)).toBe(true)
    const others = Object.entries(await counts()).filter(([state, n]) => state !== "completed" && n > 0)
    expect(others).toEqual([])
    expect(runs).toBeGreaterThanOrEqual(total)
    // The restart really cut the worker off (it reported the lost connections and carried on).
    expect(errors).toBeGreaterThan(0)
  })
})
