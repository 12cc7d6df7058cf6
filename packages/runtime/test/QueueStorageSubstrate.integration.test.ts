// The queue-storage substrate as `awa migrate` leaves it: every table names its reclaim kind, a custom schema
// gets the same objects, and a worker on it runs no DDL (it works as a role that may not create anything).
import { prepareQueueStorageSchema } from "@awa/migrator/MigrateApi"
import { tablesCreatedBy, viewsCreatedBy } from "@awa/migrator/MigrationSet"
import { defineJob } from "@awa/model/JobDefinition"
import { runtimeGrants } from "@awa/model/SchemaErrors"
import { Schema } from "effect"
import pg from "pg"
import { describe, expect, it } from "vitest"
import { handle } from "../src/JobHandler.js"
import { toExecutor } from "../src/PgExecutor.js"
import { job, makeProducer } from "../src/Producer.js"
import { makeQueueStorageEngine } from "../src/QueueStorageEngine.js"
import { Worker } from "../src/Worker.js"
import { useAwaDatabase } from "./support/awaDatabase.js"
import { waitFor } from "./support/wait.js"

const db = useAwaDatabase()
const reclaimKind = /Reclaim kind: (ring \(|ring$|ring;|warm \(bounded by [^)]+\)|backlog \()/

const tablesWithComments = async (pool: pg.Pool, schema: string) =>
  (
    await pool.query<{ name: string; comment: string | null }>(
      `SELECT c.relname AS name, obj_description(c.oid, 'pg_class') AS comment
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND c.relname = ANY ($2::text[])
       ORDER BY 1`,
      [schema, tablesCreatedBy("queue-storage")],
    )
  ).rows

describe("queue-storage substrate", () => {
  it("names a reclaim kind on every table it creates, in awa and in a prepared custom schema", async () => {
    await prepareQueueStorageSchema({ databaseUrl: db.url, schema: "tenant_q" })
    const expected = [...tablesCreatedBy("queue-storage")].sort()
    expect(expected.length).toBeGreaterThan(100)
    for (const schema of ["awa", "tenant_q"]) {
      const tables = await tablesWithComments(db.pool, schema)
      expect(tables.map((t) => t.name)).toEqual(expected)
      const missing = tables.filter((t) => t.comment === null || !reclaimKind.test(t.comment))
      expect(missing).toEqual([])
    }
    // The custom schema holds nothing but the set's tables and views, and its ids come from the canonical
    // sequence.
    expect(viewsCreatedBy("queue-storage")).toEqual(["jobs_all"])
    const extra = await db.pool.query(
      `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = 'tenant_q' AND c.relkind IN ('r', 'p', 'v', 'm') AND NOT (c.relname = ANY ($1::text[]))`,
      [[...expected, ...viewsCreatedBy("queue-storage")]],
    )
    expect(extra.rows).toEqual([])
  })

  it("shares job ids with the canonical engine, so ids never collide across engines or schemas", async () => {
    const canonical = await db.pool.query("INSERT INTO awa.jobs (kind) VALUES ('x') RETURNING id")
    const qs = await db.pool.query("SELECT awa.next_job_id() AS id")
    expect(BigInt(qs.rows[0].id)).toBeGreaterThan(BigInt(canonical.rows[0].id))
  })

  it("runs a worker, producer and maintenance as a role without CREATE anywhere: no DDL at run time", async () => {
    const role = `awa_run_${Date.now().toString(36)}`
    const database = (await db.pool.query("SELECT current_database() AS d")).rows[0].d as string
    await db.pool.query(`CREATE ROLE ${role} LOGIN PASSWORD 'pw'`)
    // Exactly the documented runtime grants (docs/permissions.md), nothing more.
    for (const grant of runtimeGrants) await db.pool.query(grant.replace("<role>", role))
    await db.pool.query(`REVOKE CREATE ON SCHEMA awa FROM ${role}`)
    await db.pool.query(`REVOKE CREATE ON SCHEMA public FROM PUBLIC`)
    await db.pool.query(`REVOKE TEMPORARY, CREATE ON DATABASE "${database}" FROM PUBLIC`)
    const url = new URL(db.url)
    url.username = role
    url.password = "pw"
    const pool = new pg.Pool({ connectionString: url.toString(), max: 6 })
    pool.on("error", () => undefined)
    try {
      // The role really may not create anything.
      await expect(pool.query("CREATE TABLE awa.sneaky (x int)")).rejects.toThrow(/permission denied/)
      await expect(pool.query("CREATE TEMP TABLE sneaky (x int)")).rejects.toThrow(/permission denied/)

      const engine = makeQueueStorageEngine({ queueRotateMs: 0, claimRotateMs: 0 })
      const Task = defineJob({ kind: "noddl.task", args: Schema.Struct({ n: Schema.Number }) })
      const producer = makeProducer({ engine })
      await producer.insertMany(
        pool,
        Array.from({ length: 20 }, (_, n) => job(Task, { n })),
      )
      expect(
        await producer.insertCopy(
          pool,
          Array.from({ length: 20 }, (_, n) => job(Task, { n: 100 + n })),
        ),
      ).toBe(20)
      const worked = new Set<number>()
      const worker = await Worker.start({
        pool,
        engine,
        handlers: [handle(Task, ({ n }) => void worked.add(n))],
        pollInterval: 20,
        maintenance: { electionInterval: 20, promoteInterval: 20, retentionInterval: 20 },
      })
      try {
        await waitFor("every job worked", () => worked.size === 40)
        await waitFor("the leader pruned the settled slot", async () => {
          const rows = await pool.query("SELECT count(*)::int AS n FROM awa.ready_entries_0")
          return rows.rows[0].n === 0
        })
      } finally {
        await worker.stop()
      }
      const stats = await engine.queueStats(toExecutor(pool))
      expect(stats.find((s) => s.queue === "default")?.counts.available ?? 0).toBe(0)
    } finally {
      await pool.end()
    }
  })
})
