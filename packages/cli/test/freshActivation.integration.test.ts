// Fresh installs start on queue storage, seen from the command line: a real `awa worker` process started on
// a database `awa migrate` just installed activates queue storage; one with canonical history stays
// canonical; `awa migrate` never moves the state; `--engine` never activates anything.
import { spawn } from "node:child_process"
import { join } from "node:path"
import { defineJob } from "@awa/model/JobDefinition"
import { makeAdmin } from "@awa/runtime/Admin"
import { job, makeProducer } from "@awa/runtime/Producer"
import { Schema } from "effect"
import { describe, expect, it } from "vitest"
import { ExitCode } from "../src/ExitCode.js"
import { migratedDatabase } from "./support/awaDatabase.js"
import { awa } from "./support/cli.js"
import { insertJobs, until } from "./support/jobs.js"
import { watch } from "./support/process.js"

// As in fixtures/tasks.mjs (whose handlers run in the worker process).
const Echo = defineJob({ kind: "cli_test.echo", args: Schema.Struct({ n: Schema.Number }) })

const bin = join(import.meta.dirname, "..", "dist", "bin.js")
const tasks = join(import.meta.dirname, "fixtures", "tasks.mjs")

// The worker process names no engine unless the test passes --engine: AWA_ENGINE of an engine pass is dropped.
const startWorker = (url: string, extra: ReadonlyArray<string> = []) => {
  const { AWA_ENGINE: _engine, ...env } = process.env
  const child = spawn(
    process.execPath,
    [bin, "worker", "--tasks", tasks, "--stats-interval", "0", ...extra],
    {
      env: { ...env, DATABASE_URL: url },
    },
  )
  return { child, w: watch(child) }
}

const status = async (url: string) => {
  const r = await awa(["storage", "status", "--json", "--database-url", url])
  expect(r.code, r.stderr).toBe(ExitCode.ok)
  return JSON.parse(r.stdout) as {
    state: string
    queueStorageSchema: string | null
    changedBy: string | null
  }
}

const stopped = async ({ child, w }: ReturnType<typeof startWorker>) => {
  if (child.exitCode === null) {
    child.kill("SIGTERM")
    expect(await w.exited).toBe(ExitCode.ok)
  }
}

describe("fresh activation through awa worker (a real process)", () => {
  it("a fresh database plus `awa worker` ends in active queue storage; awa migrate never moves the state", async () => {
    const db = await migratedDatabase({ fresh: true })
    // awa migrate again on the fresh database: still canonical, never moved.
    expect((await awa(["migrate", "--database-url", db.url])).code).toBe(ExitCode.ok)
    expect(await status(db.url)).toMatchObject({ state: "canonical", changedBy: null })

    const worker = startWorker(db.url, ["--id", "first-worker"])
    try {
      await worker.w.line(
        /awa worker first-worker started: .*engine queue_storage \(a fresh database: activated at this start; follows the storage state\)/,
        "its start line",
      )
      expect(await status(db.url)).toMatchObject({
        state: "active",
        queueStorageSchema: "awa",
        changedBy: "awa worker first-worker (fresh install)",
      })
      const [id] = await insertJobs(db.pool, [job(Echo, { n: 1 })])
      await until(
        "the job to complete",
        async () => (await makeAdmin().getJob(db.pool, id!)).state === "completed",
      )
      expect((await db.pool.query("SELECT count(*)::int AS n FROM awa.jobs")).rows[0].n).toBe(0)
    } finally {
      await stopped(worker)
    }
    // awa migrate again after the activation: still active.
    expect((await awa(["migrate", "--database-url", db.url])).code).toBe(ExitCode.ok)
    expect((await status(db.url)).state).toBe("active")
  })

  it("a database with canonical history stays canonical after `awa worker` starts", async () => {
    const db = await migratedDatabase({ fresh: true })
    const [id] = (await makeProducer({ engine: "canonical" }).insertMany(db.pool, [job(Echo, { n: 2 })])).map(
      (r) => (r._tag === "Inserted" ? r.id : ""),
    )
    const worker = startWorker(db.url, ["--json"])
    try {
      await worker.w.line(
        /"type":"started".*"engine":"canonical".*"freshActivation":"not-fresh"/,
        "its start line",
      )
      await until(
        "the canonical job to complete",
        async () => (await makeAdmin().getJob(db.pool, id!)).state === "completed",
      )
      expect(await status(db.url)).toMatchObject({ state: "canonical", changedBy: null })
    } finally {
      await stopped(worker)
    }
  })

  it("`awa worker --engine canonical` on a fresh database never activates queue storage", async () => {
    const db = await migratedDatabase({ fresh: true })
    const worker = startWorker(db.url, ["--engine", "canonical", "--id", "pinned"])
    try {
      await worker.w.line(/awa worker pinned started: .*engine canonical\. /, "its start line")
      expect((await status(db.url)).state).toBe("canonical")
    } finally {
      await stopped(worker)
    }
    // The pinned runtime was seen: the database is no longer fresh, so the next worker keeps it canonical.
    const next = startWorker(db.url, ["--id", "next"])
    try {
      await next.w.line(
        /awa worker next started: .*engine canonical \(follows the storage state\)/,
        "its start line",
      )
      expect((await status(db.url)).state).toBe("canonical")
    } finally {
      await stopped(next)
    }
  })
})
