// awa through a real PgBouncer in transaction-pooling mode: migrate, a producer, workers as real processes,
// CLI reads, and leader election asserted from the database (one lease, non-overlapping terms) while the
// leader stops and is SIGKILLed.
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process"
import { join } from "node:path"
import { defineJob } from "@awa/model/JobDefinition"
import { PoolerConflict } from "@awa/model/Pooler"
import { makeAdmin } from "@awa/runtime/Admin"
import { leaseTerms, readLease } from "@awa/runtime/LeaderLease"
import { createPool } from "@awa/runtime/PgExecutor"
import { makeProducer } from "@awa/runtime/Producer"
import { Worker } from "@awa/runtime/Worker"
import { createEmptyDatabases } from "@awa/testing/vitest/TestPostgres"
import { Schema } from "effect"
import pg from "pg"
import { describe, expect, it, onTestFinished } from "vitest"
import { ExitCode } from "../src/ExitCode.js"
import { awa } from "./support/cli.js"
import { until } from "./support/jobs.js"
import { startPgBouncer } from "./support/pgbouncer.js"

// The same definition as fixtures/tasks.mjs (whose handlers run in the worker processes).
const Echo = defineJob({ kind: "cli_test.echo", args: Schema.Struct({ n: Schema.Number }) })

const bin = join(import.meta.dirname, "..", "dist", "bin.js")
const tasks = join(import.meta.dirname, "fixtures", "tasks.mjs")

/** A worker process: its output, a wait for a line, and its exit. */
const workerProcess = (
  id: string,
  url: string,
  extra: ReadonlyArray<string>,
  env: NodeJS.ProcessEnv = {},
) => {
  const child: ChildProcessWithoutNullStreams = spawn(
    process.execPath,
    [
      bin,
      "worker",
      "--tasks",
      tasks,
      "--id",
      id,
      "--database-url",
      url,
      "--leader-lease",
      "1s",
      "--stats-interval",
      "0",
      ...extra,
    ],
    { env: { ...process.env, DATABASE_URL: "", AWA_POOLER: "", ...env } },
  )
  let stdout = ""
  let stderr = ""
  child.stdout.on("data", (d: Buffer) => {
    stdout += d.toString()
  })
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString()
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  )
  onTestFinished(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
    await exited
  })
  return {
    id,
    child,
    exited,
    get stdout() {
      return stdout
    },
    get stderr() {
      return stderr
    },
    started: () => until(`${id} started`, async () => /started/.test(stdout) || child.exitCode !== null),
  }
}

describe("awa behind PgBouncer in transaction mode", () => {
  it("migrates, enqueues concurrently, works every job with two worker processes and one leader at a time", async () => {
    const databases = await createEmptyDatabases("single")
    onTestFinished(() => databases.drop())
    const bouncer = await startPgBouncer(databases.primaryUrl)
    onTestFinished(() => bouncer.stop())
    const direct = new pg.Pool({ connectionString: databases.primaryUrl, max: 2 })
    direct.on("error", () => undefined)
    onTestFinished(() => direct.end())
    const url = bouncer.urlThrough(databases.primaryUrl)

    // awa migrate through the pooler (its advisory locks are transaction-scoped).
    const migrated = await awa(["migrate", "--pooler", "transaction", "--database-url", url])
    expect(migrated.code, migrated.stderr).toBe(ExitCode.ok)
    expect(migrated.stdout).toMatch(/canonical\/awa +0002_leader_lease.sql/)
    // This test inspects the canonical tables: the database stays canonical (an operator's recorded choice),
    // so the first producer and worker through the pooler do not activate queue storage on it.
    await direct.query("SELECT awa.storage_keep_canonical('pooler test')")

    // Without the setting, named prepared statements collide on the shared server connections; the error
    // says what to set.
    const unaware = new pg.Pool({ connectionString: url, max: 20 })
    unaware.on("error", () => undefined)
    const attempts = await Promise.allSettled(
      Array.from({ length: 100 }, (_, n) => makeProducer().insert(unaware, Echo, { n: -1 - n })),
    )
    await unaware.end()
    const refused = attempts.flatMap((a) => (a.status === "rejected" ? [a.reason as Error] : []))
    expect(refused.length).toBeGreaterThan(0)
    for (const error of refused) expect(error.message).toMatch(/set pooler: "transaction"/)
    await direct.query("DELETE FROM awa.jobs")

    // A producer on the application's own pool: 200 concurrent inserts, all succeed.
    const appPool = new pg.Pool({ connectionString: url, max: 20 })
    appPool.on("error", () => undefined)
    onTestFinished(() => appPool.end())
    const producer = makeProducer({ pooler: "transaction" })
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, n) => producer.insert(appPool, Echo, { n })),
    )
    expect(results.filter((r) => r._tag === "Inserted")).toHaveLength(200)
    // Really pooled: the 20 client connections shared at most 4 server connections (plus the direct pool's).
    const backends = await direct.query(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database()",
    )
    expect(backends.rows[0].n).toBeLessThanOrEqual(4 + 2)
    // Scheduled jobs, promoted by the leader.
    const scheduled = await producer.insertMany(
      appPool,
      Array.from({ length: 5 }, (_, n) => ({
        definition: Echo,
        args: { n: 1000 + n },
        options: { delay: 1 },
      })),
    )
    expect(scheduled.every((r) => r._tag === "Inserted")).toBe(true)

    // Two workers as real processes: one told by flag, one by AWA_POOLER.
    const w1 = workerProcess("pooled-1", url, ["--pooler", "transaction"])
    const w2 = workerProcess("pooled-2", url, [], { AWA_POOLER: "transaction" })
    await w1.started()
    await w2.started()
    expect(w1.child.exitCode, w1.stderr).toBeNull()
    expect(w2.child.exitCode, w2.stderr).toBeNull()

    const admin = makeAdmin()
    const counts = async () => {
      const stats = await admin.queueStats(direct)
      return stats.find((s) => s.queue === "default")?.counts
    }
    await until("every job completed", async () => (await counts())?.completed === 205, 60_000)

    // CLI reads through the pooler.
    const stats = await awa(["queue", "stats", "--json", "--pooler", "transaction", "--database-url", url])
    expect(stats.code, stats.stderr).toBe(ExitCode.ok)
    expect(JSON.parse(stats.stdout)).toEqual([
      expect.objectContaining({ queue: "default", counts: expect.objectContaining({ completed: 205 }) }),
    ])
    const listed = await awa(
      ["job", "list", "--state", "completed", "--limit", "5", "--json", "--database-url", url],
      {
        AWA_POOLER: "transaction",
      },
    )
    expect(listed.code, listed.stderr).toBe(ExitCode.ok)
    expect(JSON.parse(listed.stdout).items).toHaveLength(5)

    // Exactly one leader, read from the database.
    const first = await readLease(direct)
    expect(first).toMatchObject({ live: true })
    expect(["pooled-1", "pooled-2"]).toContain(first?.holder)
    const [leader, follower] = first?.holder === "pooled-1" ? [w1, w2] : [w2, w1]

    // The leader stops: it releases the lease and the other worker takes over.
    leader.child.kill("SIGTERM")
    expect((await leader.exited).code, leader.stderr).toBe(0)
    await until("the follower leads", async () => {
      const lease = await readLease(direct)
      return lease?.holder === follower.id && lease.live
    })

    // A third worker joins; then the leader is SIGKILLed: its lease expires and the third takes over.
    const w3 = workerProcess("pooled-3", url, ["--pooler", "transaction"])
    await w3.started()
    follower.child.kill("SIGKILL")
    expect((await follower.exited).signal).toBe("SIGKILL")
    await until("the third worker leads", async () => {
      const lease = await readLease(direct)
      return lease?.holder === "pooled-3" && lease.live
    })
    // Maintenance runs under the new leader: a scheduled job is promoted and worked.
    const late = await producer.insert(appPool, Echo, { n: 2000 }, { delay: 1 })
    if (late._tag !== "Inserted") throw new Error(`expected an insert, got ${late._tag}`)
    await until(
      "the late scheduled job completed",
      async () => (await admin.getJob(direct, late.id)).state === "completed",
    )

    // The history: consecutive epochs, none starting before the previous one's lease ended.
    const terms = await leaseTerms(direct)
    expect(terms.map((t) => t.holder)).toEqual([leader.id, follower.id, "pooled-3"])
    expect(terms.map((t) => t.epoch)).toEqual([1, 2, 3])
    for (let i = 1; i < terms.length; i++) {
      expect(terms[i]!.electedAt.getTime()).toBeGreaterThanOrEqual(terms[i - 1]!.expiresAt.getTime())
    }
    // Nothing failed for session reasons (prepared statements, locks owned by other backends).
    for (const w of [w1, w2, w3]) expect(w.stderr).not.toMatch(/prepared statement|advisory|you don't own/i)
    w3.child.kill("SIGTERM")
    expect((await w3.exited).code, w3.stderr).toBe(0)
    expect(await readLease(direct)).toMatchObject({ holder: "pooled-3", live: false })
  }, 120_000)

  it("refuses settings that need session state behind a transaction pooler", async () => {
    const pool = createPool("postgres://nobody@127.0.0.1:1/nothing", { pooler: "transaction" })
    onTestFinished(() => pool.end())
    const handlers: ReadonlyArray<never> = []
    await expect(Worker.start({ pool, handlers, listen: true })).rejects.toBeInstanceOf(PoolerConflict)
    await expect(Worker.start({ pool, handlers, preparedStatements: true })).rejects.toThrow(
      /preparedStatements: true cannot be used with pooler "transaction"/,
    )
    const r = await awa(["queue", "stats", "--database-url", "postgres://nobody@127.0.0.1:1/x"], {
      AWA_POOLER: "pgbouncer",
    })
    expect(r.code).toBe(ExitCode.usage)
    expect(r.stderr).toContain('Unknown pooler mode "pgbouncer" (from AWA_POOLER)')
    const flag = await awa(["worker", "--tasks", tasks, "--pooler", "yes"], {
      DATABASE_URL: "postgres://nobody@127.0.0.1:1/x",
    })
    expect(flag.code).toBe(ExitCode.usage)
    expect(flag.stderr).toContain('Unknown pooler mode "yes" (from --pooler)')
    // Every command that connects lists the flag.
    for (const argv of [
      ["migrate", "--help"],
      ["worker", "--help"],
      ["job", "list", "--help"],
      ["dlq", "get", "--help"],
    ]) {
      expect((await awa(argv)).stdout).toMatch(
        /--pooler <value> +transaction behind a transaction-pooling PgBouncer/,
      )
    }
  })
})
