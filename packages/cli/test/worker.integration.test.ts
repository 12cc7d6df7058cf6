import { spawn } from "node:child_process"
import { join } from "node:path"
import { defineJob } from "@awa/model/JobDefinition"
import { makeAdmin } from "@awa/runtime/Admin"
import { job } from "@awa/runtime/Producer"
import { Schema } from "effect"
import { describe, expect, it } from "vitest"
import { ExitCode } from "../src/ExitCode.js"
import { migratedDatabase } from "./support/awaDatabase.js"
import { awa } from "./support/cli.js"
import { insertJobs, until } from "./support/jobs.js"
import { watch } from "./support/process.js"

// The same definitions as fixtures/tasks.mjs (whose handlers run in the worker process).
const Echo = defineJob({ kind: "cli_test.echo", args: Schema.Struct({ n: Schema.Number }) })
const Slow = defineJob({ kind: "cli_test.slow", args: Schema.Struct({ ms: Schema.Number }) })
const Boom = defineJob({ kind: "cli_test.boom", args: Schema.Struct({}) })

const fixture = (name: string) => join(import.meta.dirname, "fixtures", name)
const bin = join(import.meta.dirname, "..", "dist", "bin.js")

describe("awa worker: bad tasks modules and flags give clear usage errors (exit 2) before connecting", () => {
  it.each([
    [["worker"], "awa worker needs --tasks MODULE"],
    [["worker", "--tasks", fixture("missing.mjs")], "no such file (looked for"],
    [["worker", "--tasks", fixture("")], "is a directory"],
    [["worker", "--tasks", "@awa/no-such-package"], "is neither a file nor a package"],
    [
      ["worker", "--tasks", fixture("definitions-only.mjs")],
      "exports job definitions (cli_test.echo) but no handlers",
    ],
    [
      ["worker", "--tasks", fixture("throws-on-load.mjs")],
      "failed while loading: cannot reach the mail server",
    ],
    [["worker", "--tasks", fixture("tasks.mjs"), "--queue", "mail=many"], "must be a whole number"],
    [
      ["worker", "--tasks", fixture("tasks.mjs"), "--concurrency", "0"],
      "--concurrency must be a whole number",
    ],
    [
      ["worker", "--tasks", fixture("tasks.mjs"), "--shutdown-timeout", "soon"],
      "--shutdown-timeout must be a duration",
    ],
    [["worker", "--task", "x.mjs"], 'Did you mean "--tasks"?'],
    [
      ["worker", "--tasks", fixture("tasks.mjs"), "--poll-interval", "0"],
      '--poll-interval must be at least 10ms, got "0"',
    ],
    [
      ["worker", "--tasks", fixture("tasks.mjs"), "--concurrency", "-1"],
      '--concurrency must be a whole number from 1 to 100000, got "-1"',
    ],
    [
      ["worker", "--tasks", fixture("duplicate-kinds.mjs")],
      'exports two different handlers for job kind "cli_test.echo" (echo and default[0])',
    ],
  ] as const)("awa %j exits 2", async (argv, message) => {
    const r = await awa(argv, { DATABASE_URL: "postgres://nobody@127.0.0.1:1/nothing" })
    expect(r.code, r.stderr).toBe(ExitCode.usage)
    expect(r.stderr).toContain(message)
  })

  it("says how to run a TypeScript tasks module that Node cannot load by itself", async () => {
    // A real process: inside vitest, imports of .ts files would be transformed and succeed.
    const child = spawn(process.execPath, [bin, "worker", "--tasks", fixture("typescript-tasks.ts")], {
      env: { ...process.env, DATABASE_URL: "postgres://nobody@127.0.0.1:1/nothing", NODE_OPTIONS: "" },
    })
    let stderr = ""
    child.stderr.on("data", (chunk) => {
      stderr += String(chunk)
    })
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve))
    expect(code, stderr).toBe(ExitCode.usage)
    expect(stderr).toContain("failed while loading:")
    expect(stderr).toContain(
      'compile it with tsc and pass the .js file (e.g. --tasks ./dist/tasks.js), or load tsx first: NODE_OPTIONS="--import tsx" awa worker --tasks',
    )
  })

  it("says the tasks module clashes, not the job definition, when two handlers share a kind", async () => {
    const r = await awa(["worker", "--tasks", fixture("duplicate-kinds.mjs")], {
      DATABASE_URL: "postgres://nobody@127.0.0.1:1/nothing",
    })
    expect(r.code).toBe(ExitCode.usage)
    expect(r.stderr).toContain("Export only one of them.")
    expect(r.stderr).not.toContain("defineJob")
  })

  it("exits 3 when the database refuses the connection (sslmode=require on a server without TLS)", async () => {
    const db = await migratedDatabase()
    const url = new URL(db.url)
    url.searchParams.set("sslmode", "require")
    const r = await awa(["worker", "--tasks", fixture("tasks.mjs"), "--database-url", url.href])
    expect(r.code, r.stderr).toBe(ExitCode.database)
    expect(r.stderr).toContain("Cannot connect to the primary database")
  })

  it("needs a database URL after the tasks module loaded (exit 3)", async () => {
    const r = await awa(["worker", "--tasks", fixture("tasks.mjs")])
    expect(r.code).toBe(ExitCode.database)
    expect(r.stderr).toContain("DATABASE_URL")
  })
})

describe("awa worker (a real process)", () => {
  it("works the module's jobs and, on SIGTERM, lets the running job finish, then exits 0", async () => {
    const db = await migratedDatabase()
    const child = spawn(
      process.execPath,
      [bin, "worker", "--tasks", fixture("tasks.mjs"), "--stats-interval", "0", "--id", "cli-test-worker"],
      { env: { ...process.env, DATABASE_URL: db.url } },
    )
    const w = watch(child)
    try {
      await w.line(
        /awa worker cli-test-worker started: queues default; kinds .*cli_test\.echo/,
        "its start line",
      )
      const echoes = await insertJobs(
        db.pool,
        Array.from({ length: 40 }, (_, n) => job(Echo, { n })),
      )
      const [boom] = await insertJobs(db.pool, [job(Boom, {})])
      const admin = makeAdmin()
      await until("the echo jobs to complete", async () => {
        const [stats] = await admin.queueStats(db.pool)
        return stats?.counts.completed === echoes.length && stats.counts.failed === 1
      })
      const [slow] = await insertJobs(db.pool, [job(Slow, { ms: 400 })])
      await w.line(new RegExp(`slow job ${slow} started`), "the slow job's start")
      child.kill("SIGTERM")
      expect(await w.exited).toBe(ExitCode.ok)
      expect(w.stdout).toContain("SIGTERM: stopping.")
      expect(w.stdout).toMatch(
        /awa worker cli-test-worker stopped: claimed 42, completed 41, retried 0, failed 1/,
      )
      expect(w.stdout).toContain(`failed  job ${boom} cli_test.boom (queue default) after attempt 1: boom`)
      expect((await admin.getJob(db.pool, slow!)).state).toBe("completed")
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL")
    }
  })

  it("prints a retried job's error as one clause of its line (no stray punctuation)", async () => {
    const db = await migratedDatabase()
    const Unknown = defineJob({ kind: "cli_test.unknown", args: Schema.Struct({}) })
    const child = spawn(
      process.execPath,
      [bin, "worker", "--tasks", fixture("tasks.mjs"), "--stats-interval", "0"],
      {
        env: { ...process.env, DATABASE_URL: db.url },
      },
    )
    const w = watch(child)
    try {
      await w.line(/awa worker .* started/, "its start line")
      const [id] = await insertJobs(db.pool, [job(Unknown, {})])
      await w.line(new RegExp(`retry   job ${id} cli_test\\.unknown`), "the retry line")
      const line = w.stdout.split("\n").find((l) => l.startsWith(`retry   job ${id}`)) ?? ""
      expect(line).toContain("register a handler for it or cancel the job; next try in")
      expect(line).not.toMatch(/[.;:]; /)
      child.kill("SIGTERM")
      expect(await w.exited).toBe(ExitCode.ok)
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL")
    }
  })

  it("stops gracefully on a signal sent the moment it says it started", async () => {
    const db = await migratedDatabase()
    const child = spawn(
      process.execPath,
      [bin, "worker", "--tasks", fixture("tasks.mjs"), "--stats-interval", "0"],
      { env: { ...process.env, DATABASE_URL: db.url } },
    )
    const w = watch(child)
    try {
      // Its signal handlers are in place before the start line is printed, so this is a graceful stop.
      await w.line(/awa worker .* started/, "its start line")
      child.kill("SIGTERM")
      expect(await w.exited).toBe(ExitCode.ok)
      expect(w.stdout).toContain("SIGTERM: stopping.")
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL")
    }
  })

  it("exits at once on a second signal, saying what becomes of the running job", async () => {
    const db = await migratedDatabase()
    const child = spawn(
      process.execPath,
      [bin, "worker", "--tasks", fixture("tasks.mjs"), "--shutdown-timeout", "30s"],
      { env: { ...process.env, DATABASE_URL: db.url } },
    )
    const w = watch(child)
    try {
      await w.line(/awa worker .* started/, "its start line")
      const [slow] = await insertJobs(db.pool, [job(Slow, { ms: 60_000 })])
      await w.line(new RegExp(`slow job ${slow} started`), "the slow job's start")
      child.kill("SIGINT")
      await w.line(/SIGINT: stopping/, "the graceful stop")
      child.kill("SIGINT")
      expect(await w.exited).toBe(ExitCode.interrupted)
      expect(w.stderr).toMatch(
        /second signal, exiting without waiting for running jobs; they stay running until maintenance/,
      )
      expect((await makeAdmin().getJob(db.pool, slow!)).state).toBe("running")
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL")
    }
  })

  it("prints lifecycle events as JSON lines with --json", async () => {
    const db = await migratedDatabase()
    const [id] = await insertJobs(db.pool, [job(Echo, { n: 7 })])
    const child = spawn(
      process.execPath,
      [bin, "worker", "--tasks", fixture("tasks.mjs"), "--json", "--database-url", db.url],
      {
        env: { ...process.env, DATABASE_URL: "" },
      },
    )
    const w = watch(child)
    try {
      await w.line(new RegExp(`"type":"completed","jobId":"${id}"`), "the completed event")
      child.kill("SIGINT")
      expect(await w.exited).toBe(ExitCode.ok)
      const events = w.stdout
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line) as { type: string; jobId?: string })
      expect(events[0]?.type).toBe("started")
      expect(events.some((e) => e.type === "claimed" && e.jobId === id)).toBe(true)
      expect(events.at(-1)?.type).toBe("stopped")
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL")
    }
  })
})
