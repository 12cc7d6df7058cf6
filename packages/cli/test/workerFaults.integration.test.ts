// `awa worker` and friends under faults, as real processes: an honest shutdown when handlers ignore their
// signal, a poison error from a handler, rescue timing from the command line, and database setups that
// are wrong in ways an operator must be told about (missing grants, missing password).
import { spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { join } from "node:path"
import { defineJob } from "@awa/model/JobDefinition"
import { makeAdmin } from "@awa/runtime/Admin"
import { job } from "@awa/runtime/Producer"
import { Schema } from "effect"
import pg from "pg"
import { describe, expect, it, onTestFinished } from "vitest"
import { ExitCode } from "../src/ExitCode.js"
import { migratedDatabase } from "./support/awaDatabase.js"
import { awa } from "./support/cli.js"
import { insertJobs, until } from "./support/jobs.js"
import { watch } from "./support/process.js"

// The same definitions as fixtures/faulty-tasks.mjs (whose handlers run in the worker process).
const Stubborn = defineJob({ kind: "cli_test.stubborn", args: Schema.Struct({}) })
const Poison = defineJob({ kind: "cli_test.poison", args: Schema.Struct({}), maxAttempts: 5 })
const Echo = defineJob({ kind: "cli_test.echo", args: Schema.Struct({ n: Schema.Number }) })

const tasks = join(import.meta.dirname, "fixtures", "faulty-tasks.mjs")
const bin = join(import.meta.dirname, "..", "dist", "bin.js")
const admin = makeAdmin()

/** Starts `awa worker --tasks faulty-tasks.mjs` with extra flags; killed when the test ends. */
const startWorker = (url: string, flags: ReadonlyArray<string>, env: NodeJS.ProcessEnv = {}) => {
  const child = spawn(
    process.execPath,
    [bin, "worker", "--tasks", tasks, "--stats-interval", "0", ...flags],
    {
      env: { ...process.env, DATABASE_URL: url, ...env },
    },
  )
  const w = watch(child)
  onTestFinished(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL")
      await w.exited
    }
  })
  // Keeps the getters of `w` live (a spread would copy their values once).
  return Object.assign(w, { child })
}

describe("awa worker shutdown (a real process)", () => {
  it("releases a job whose handler ignores its signal, names it on stderr, and exits without waiting for it", async () => {
    const db = await migratedDatabase()
    const w = startWorker(db.url, ["--shutdown-timeout", "200ms", "--id", "stubborn-worker"])
    await w.line(/awa worker stubborn-worker started/, "its start line")
    const [id] = await insertJobs(db.pool, [job(Stubborn, {})])
    await w.line(new RegExp(`stubborn job ${id} started`), "the stubborn job's start")
    w.child.kill("SIGTERM")
    // The handler would print its side effect a minute after it started; the process is gone long before
    // (the test's own timeout is the bound, not a measured time).
    expect(await w.exited).toBe(ExitCode.ok)
    expect(w.stdout).not.toContain("side effect")
    const released = w.stdout.indexOf("released 1 unfinished job(s)")
    const stopped = w.stdout.indexOf("awa worker stubborn-worker stopped")
    expect(released, `${w.stdout}\n---\n${w.stderr}`).toBeGreaterThan(-1)
    expect(stopped).toBeGreaterThan(released)
    expect(w.stderr).toContain("1 handler(s) ignored the shutdown signal")
    expect(w.stderr).toContain(`job ${id} cli_test.stubborn (queue default)`)
    const after = await admin.getJob(db.pool, id!)
    expect(after.state).toBe("available")
    expect(after.attempt).toBe(0)
  })

  it("reports the abandoned handler in --json too", async () => {
    const db = await migratedDatabase()
    const w = startWorker(db.url, ["--shutdown-timeout", "0s", "--json"])
    await w.line(/"type":"started"/, "its start line")
    const [id] = await insertJobs(db.pool, [job(Stubborn, {})])
    await w.line(new RegExp(`stubborn job ${id} started`), "the stubborn job's start")
    w.child.kill("SIGINT")
    expect(await w.exited).toBe(ExitCode.ok)
    const abandoned = w.stdout
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as { type: string; jobs?: Array<{ jobId: string; kind: string }> })
      .find((e) => e.type === "abandoned")
    expect(abandoned?.jobs).toEqual([expect.objectContaining({ jobId: id, kind: "cli_test.stubborn" })])
  })
})

describe("awa worker and a poison error (a real process)", () => {
  it("survives a handler rejecting with an Error whose message getter throws, and retries the job with a recorded error", async () => {
    const db = await migratedDatabase()
    const w = startWorker(db.url, ["--id", "poison-worker"])
    await w.line(/awa worker poison-worker started/, "its start line")
    const [poison] = await insertJobs(db.pool, [job(Poison, {})])
    await until("the poison job to be retried with a recorded error", async () => {
      const j = await admin.getJob(db.pool, poison!)
      return j.errors.length > 0
    })
    const retried = await admin.getJob(db.pool, poison!)
    expect(retried.state).not.toBe("failed")
    expect(retried.errors[0]!.message).toContain("its message could not be read")
    // Still alive and working.
    const [echo] = await insertJobs(db.pool, [job(Echo, { n: 1 })])
    await until(
      "a later job to complete",
      async () => (await admin.getJob(db.pool, echo!)).state === "completed",
    )
    expect(w.child.exitCode).toBeNull()
    expect(w.stderr).not.toMatch(/Unhandled|uncaught/i)
    w.child.kill("SIGTERM")
    expect(await w.exited).toBe(ExitCode.ok)
  })
})

describe("awa worker rescue timing", () => {
  it("rescues the jobs of a killed worker after --heartbeat-stale-after, checking every --rescue-interval", async () => {
    const db = await migratedDatabase()
    const first = startWorker(db.url, ["--no-maintenance", "--id", "doomed"])
    await first.line(/awa worker doomed started/, "its start line")
    const [id] = await insertJobs(db.pool, [job(Stubborn, {})])
    await first.line(new RegExp(`stubborn job ${id} started`), "the job's first attempt")
    first.child.kill("SIGKILL")
    await first.exited
    // With the defaults (a minute of staleness) the job would wait past this test's timeout.
    const second = startWorker(db.url, [
      "--id",
      "rescuer",
      "--heartbeat-interval",
      "100ms",
      "--heartbeat-stale-after",
      "1s",
      "--rescue-interval",
      "100ms",
    ])
    await second.line(new RegExp(`stubborn job ${id} started`), "the job's second attempt, after its rescue")
    const rescued = await admin.getJob(db.pool, id!)
    expect(rescued.attempt).toBe(2)
    expect(rescued.errors[0]!.message).toContain("sent no heartbeat for 1000 ms")
  })

  it.each([
    [["--no-maintenance", "--rescue-interval", "1s"], "--no-maintenance turns maintenance off"],
    [
      ["--heartbeat-stale-after", "2s", "--heartbeat-interval", "5s"],
      "must be longer than --heartbeat-interval",
    ],
    [["--heartbeat-stale-after", "soon"], "--heartbeat-stale-after must be a duration"],
  ] as const)("refuses %j as a usage error", async (flags, message) => {
    const r = await awa(["worker", "--tasks", tasks, ...flags], {
      DATABASE_URL: "postgres://nobody@127.0.0.1:1/nothing",
    })
    expect(r.code, r.stderr).toBe(ExitCode.usage)
    expect(r.stderr).toContain(message)
  })
})

describe("database setups an operator must be told about", () => {
  /** A login role without any grant on awa, dropped when the test ends; returns a URL for it. */
  const ungrantedRole = async (url: string): Promise<string> => {
    const role = `awa_cli_${randomBytes(4).toString("hex")}`
    const password = randomBytes(8).toString("hex")
    const server = new URL(url)
    server.pathname = "/postgres"
    const admin = new pg.Client({ connectionString: server.href })
    await admin.connect()
    await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD '${password}'`).finally(() => admin.end())
    onTestFinished(async () => {
      const client = new pg.Client({ connectionString: server.href })
      await client.connect()
      await client.query(`DROP ROLE IF EXISTS ${role}`).finally(() => client.end())
    })
    const roleUrl = new URL(url)
    roleUrl.username = role
    roleUrl.password = password
    return roleUrl.href
  }

  it("explains missing grants (exit 3, no stack trace) in awa worker and other commands", async () => {
    const db = await migratedDatabase()
    const url = await ungrantedRole(db.url)
    const worker = await awa(["worker", "--tasks", tasks, "--database-url", url])
    expect(worker.code, worker.stderr).toBe(ExitCode.database)
    expect(worker.stderr).toContain("lacks privileges awa needs: USAGE on schema awa")
    expect(worker.stderr).toContain("GRANT USAGE ON SCHEMA awa, awa_migrator TO")
    expect(worker.stderr).not.toContain("internal error")
    expect(worker.stderr).not.toMatch(/\n\s+at /)
    const queues = await awa(["queue", "stats", "--database-url", url])
    expect(queues.code, queues.stderr).toBe(ExitCode.database)
    expect(queues.stderr).toContain("permission denied for schema awa")
    expect(queues.stderr).toContain("docs/permissions.md")
    expect(queues.stderr).not.toMatch(/\n\s+at /)
  })

  it("explains a URL without a password instead of the driver's SASL message", async () => {
    const db = await migratedDatabase()
    const url = new URL(db.url)
    url.password = ""
    const { PGPASSWORD: _ignored, ...env } = process.env
    const child = spawn(process.execPath, [bin, "queue", "stats", "--database-url", url.href], {
      env: { ...env, PGPASSFILE: "/nonexistent" },
    })
    const w = watch(child)
    expect(await w.exited).toBe(ExitCode.database)
    expect(w.stderr).toContain("the server asks for a password and the URL gives none")
  })

  it("says to run awa migrate when the worker's database has no awa schema", async () => {
    const db = await migratedDatabase()
    await db.pool.query("DELETE FROM awa_migrator.ledger WHERE migration_set = 'canonical'")
    const r = await awa(["worker", "--tasks", tasks, "--database-url", db.url])
    expect(r.code, r.stderr).toBe(ExitCode.database)
    expect(r.stderr).toContain("Run `awa migrate`")
  })
})
