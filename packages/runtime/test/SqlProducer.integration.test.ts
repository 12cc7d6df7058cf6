// The SQL producer API (awa.insert_job, awa.insert_jobs, view awa.jobs_all; migration canonical/0004 and
// queue-storage/0005) driven through the real `psql` binary, with a real worker completing what it enqueues
// under every storage state, unique keys shared with the TypeScript producer in both directions, a trigger
// on a user table, and a clear error for every bad option with nothing inserted.
import { execFile } from "node:child_process"
import { prepareQueueStorageSchema } from "@awa/migrator/MigrateApi"
import { defineJob } from "@awa/model/JobDefinition"
import { Schema } from "effect"
import pg from "pg"
import { describe, expect, it, onTestFinished } from "vitest"
import { exponentialBackoff } from "../src/Backoff.js"
import { handle } from "../src/JobHandler.js"
import { toExecutor } from "../src/PgExecutor.js"
import { makeProducer } from "../src/Producer.js"
import { enterMixedStorage, finalizeStorage, prepareStorage } from "../src/StorageState.js"
import { Worker } from "../src/Worker.js"
import { useAwaDatabase } from "./support/awaDatabase.js"
import { followStorageState } from "./support/followState.js"
import { waitFor } from "./support/wait.js"

const db = useAwaDatabase()

// These tests follow the database's storage state, so no engine may be named in the environment.
followStorageState()

interface Psql {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** Runs `psql -c sql` against the test database (no psqlrc, stop on the first error, CSV output). */
const psql = (sql: string): Promise<Psql> =>
  new Promise((resolve) => {
    execFile(
      "psql",
      ["-X", "-q", "--csv", "-v", "ON_ERROR_STOP=1", "-d", db.url, "-c", sql],
      (error, stdout, stderr) =>
        resolve({
          code: error === null ? 0 : Number((error as { code?: number }).code ?? 1),
          stdout,
          stderr,
        }),
    )
  })

// Parses psql's CSV output (a header line, then rows; quoted fields may hold commas and doubled quotes).
const parseCsv = (text: string): Array<Record<string, string | null>> => {
  const lines: Array<Array<string | null>> = []
  let row: Array<string | null> = []
  let field = ""
  let quoted = false
  let wasQuoted = false
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"'
        i++
      } else if (ch === '"') quoted = false
      else field += ch
    } else if (ch === '"') {
      quoted = true
      wasQuoted = true
    } else if (ch === ",") {
      row.push(field === "" && !wasQuoted ? null : field)
      field = ""
      wasQuoted = false
    } else if (ch === "\n") {
      row.push(field === "" && !wasQuoted ? null : field)
      lines.push(row)
      row = []
      field = ""
      wasQuoted = false
    } else field += ch
  }
  const [header, ...rows] = lines
  return rows.map((r) => Object.fromEntries((header ?? []).map((h, i) => [h as string, r[i] ?? null])))
}

/** Runs a query through psql, failing with its stderr unless it succeeded, and returns the rows. */
const psqlRows = async (sql: string): Promise<Array<Record<string, string | null>>> => {
  const r = await psql(sql)
  if (r.code !== 0) throw new Error(`psql failed (${r.code}): ${r.stderr}`)
  return parseCsv(r.stdout)
}

const q = (value: unknown): string => `'${JSON.stringify(value).replaceAll("'", "''")}'`

const Echo = defineJob({ kind: "sql.echo", args: Schema.Struct({ n: Schema.Number }) })
const Order = defineJob({ kind: "sql.order", args: Schema.Struct({ order_id: Schema.Number }) })
const Unique = defineJob({
  kind: "sql.unique",
  args: Schema.Struct({ name: Schema.String, nested: Schema.Unknown }),
})

const startWorker = async (seen: Array<string>) => {
  // A runtime already seen: the database counts as an existing deployment (never auto-activated), and the
  // registration serves both engines, so enter-mixed and finalize may pass.
  await db.pool.query(
    "SELECT awa.register_runtime('sql-api-test', 'test-host', 1, '0.0.0', ARRAY['canonical', 'queue_storage'])",
  )
  const worker = await Worker.start({
    pool: db.pool,
    pollInterval: 20,
    queues: ["default", "uq", "orders"],
    backoff: exponentialBackoff({ baseMs: 1, maxMs: 5, jitter: 0 }),
    maintenance: { promoteInterval: 10, electionInterval: 10, rescueInterval: 10 },
    handlers: [
      handle(Echo, ({ n }) => void seen.push(`echo:${n}`)),
      handle(Order, ({ order_id }) => void seen.push(`order:${order_id}`)),
      handle(Unique, () => undefined),
    ],
  })
  onTestFinished(() => worker.stop({ timeout: 100 }))
  return worker
}

const stateOf = async (id: string): Promise<{ state: string; engine: string } | undefined> => {
  const rows = await db.pool.query("SELECT state, engine FROM awa.jobs_all WHERE id = $1", [id])
  return rows.rows[0]
}

const completed = (id: string) => async () => (await stateOf(id))?.state === "completed"

const moveTo = async (target: "mixed" | "active") => {
  const x = toExecutor(db.pool)
  await prepareStorage(x)
  await enterMixedStorage(x) // a started worker registered itself, so the capable-runtime gate passes
  if (target === "active") await finalizeStorage(x)
}

/** A client of its own (for the error fields a driver sees), ended when the test finishes. */
const openClient = async (): Promise<pg.Client> => {
  const client = new pg.Client({ connectionString: db.url })
  // The test database is dropped after the test, which ends this connection: not an error of the test.
  client.on("error", () => undefined)
  await client.connect()
  onTestFinished(() => client.end().catch(() => undefined))
  return client
}

const jobCount = async () => Number((await db.pool.query("SELECT count(*) AS n FROM awa.jobs_all")).rows[0].n)

describe("awa.insert_job from psql", () => {
  it("enqueues a job a worker completes under the canonical state", async () => {
    // Inserted before any worker starts: a canonical deployment with history.
    const [row] = await psqlRows(`SELECT * FROM awa.insert_job('sql.echo', '{"n": 1}')`)
    expect(row).toMatchObject({
      outcome: "inserted",
      state: "available",
      engine: "canonical",
      unique_key: null,
    })
    expect(row?.existing_id).toBeNull()
    const seen: Array<string> = []
    await startWorker(seen)
    await waitFor("the canonical job completed", completed(row!.id!))
    expect(seen).toEqual(["echo:1"])
    expect(await stateOf(row!.id!)).toEqual({ state: "completed", engine: "canonical" })
  })

  it("enqueues into queue storage while mixed, and awa.jobs_all lists the jobs of both engines", async () => {
    const seen: Array<string> = []
    const [before] = await psqlRows(`SELECT * FROM awa.insert_job('sql.echo', '{"n": 1}')`)
    await startWorker(seen)
    await waitFor("the canonical job completed", completed(before!.id!))
    await moveTo("mixed")
    const [row] = await psqlRows(`SELECT * FROM awa.insert_job('sql.echo', '{"n": 2}')`)
    expect(row).toMatchObject({ outcome: "inserted", state: "available", engine: "queue_storage" })
    await waitFor("the queue-storage job completed", completed(row!.id!))
    expect(seen).toEqual(["echo:1", "echo:2"])
    const all = await psqlRows("SELECT id, kind, state, engine FROM awa.jobs_all ORDER BY id")
    expect(all).toEqual([
      { id: before!.id, kind: "sql.echo", state: "completed", engine: "canonical" },
      { id: row!.id, kind: "sql.echo", state: "completed", engine: "queue_storage" },
    ])
  })

  it("enqueues into queue storage when it is active", async () => {
    const seen: Array<string> = []
    await startWorker(seen)
    await moveTo("active")
    const [row] = await psqlRows(
      `SELECT * FROM awa.insert_job('sql.echo', '{"n": 3}', '{"priority": 1, "tags": ["from-sql"], "metadata": {"src": "psql"}, "max_attempts": 3, "timeout": "1.5 seconds"}')`,
    )
    expect(row).toMatchObject({ outcome: "inserted", engine: "queue_storage" })
    await waitFor("the queue-storage job completed", completed(row!.id!))
    const [stored] = await psqlRows(
      `SELECT priority, max_attempts, attempt_timeout_ms, tags, metadata, engine FROM awa.jobs_all WHERE id = ${row!.id}`,
    )
    expect(stored).toEqual({
      priority: "1",
      max_attempts: "3",
      attempt_timeout_ms: "1500",
      tags: "{from-sql}",
      metadata: '{"src": "psql"}',
      engine: "queue_storage",
    })
    expect(seen).toEqual(["echo:3"])
  })

  it("routes to the queue-storage schema the state names, whose own jobs_all lists the job", async () => {
    await prepareQueueStorageSchema({ databaseUrl: db.url, schema: "tenant_sql" })
    const seen: Array<string> = []
    await startWorker(seen)
    const x = toExecutor(db.pool)
    await prepareStorage(x, { schema: "tenant_sql" })
    await enterMixedStorage(x)
    await finalizeStorage(x)
    const [row] = await psqlRows(`SELECT * FROM awa.insert_job('sql.echo', '{"n": 7}')`)
    expect(row).toMatchObject({ outcome: "inserted", engine: "queue_storage" })
    await waitFor("the job in tenant_sql completed", async () => {
      const r = await db.pool.query("SELECT state, engine FROM tenant_sql.jobs_all WHERE id = $1", [row!.id])
      return r.rows[0]?.state === "completed" && r.rows[0]?.engine === "queue_storage"
    })
    expect(seen).toEqual(["echo:7"])
    // awa.jobs_all covers awa's own queue storage, which never saw this job.
    expect((await db.pool.query("SELECT 1 FROM awa.jobs_all WHERE id = $1", [row!.id])).rowCount).toBe(0)
  })

  for (const target of ["canonical", "active"] as const) {
    it(`the batch form returns one row per input in order (${target})`, async () => {
      if (target === "active") {
        await startWorker([])
        await moveTo("active")
      }
      const jobs = [
        { kind: "sql.echo", args: { n: 10 } },
        { kind: "sql.unique", args: { name: "b", nested: 1 }, options: { unique: true, queue: "uq" } },
        { kind: "sql.echo", options: { run_at: "2099-01-01T00:00:00Z" } },
        { kind: "sql.unique", args: { name: "b", nested: 1 }, options: { unique: true, queue: "uq" } },
      ]
      const rows = await psqlRows(`SELECT * FROM awa.insert_jobs(${q(jobs)})`)
      const engine = target === "canonical" ? "canonical" : "queue_storage"
      expect(rows.map((r) => [r.ord, r.outcome, r.state, r.engine])).toEqual([
        ["1", "inserted", "available", engine],
        ["2", "inserted", "available", engine],
        ["3", "inserted", "scheduled", engine],
        ["4", "unique_conflict", null, engine],
      ])
      expect(rows[3]!.existing_id).toBe(rows[1]!.id)
      expect(rows[3]!.existing_state).toBe("available")
      expect(rows[3]!.unique_key).toBe(rows[1]!.unique_key)
      expect(await psqlRows(`SELECT * FROM awa.insert_jobs('[]')`)).toEqual([])
      // The default args of a batch job are {}.
      expect((await stateOf(rows[2]!.id!))?.state).toBe("scheduled")
      if (target === "canonical") {
        const args = await db.pool.query("SELECT args, run_at FROM awa.jobs WHERE id = $1", [rows[2]!.id])
        expect(args.rows[0].args).toEqual({})
        expect((args.rows[0].run_at as Date).toISOString()).toBe("2099-01-01T00:00:00.000Z")
      }
    })
  }

  it("a run_at in the future gives a scheduled job, which the worker runs once it is due", async () => {
    const seen: Array<string> = []
    const [later] = await psqlRows(
      `SELECT * FROM awa.insert_job('sql.echo', '{"n": 5}', jsonb_build_object('run_at', now() + interval '1 hour'))`,
    )
    expect(later).toMatchObject({ outcome: "inserted", state: "scheduled", engine: "canonical" })
    await startWorker(seen)
    const [soon] = await psqlRows(
      `SELECT * FROM awa.insert_job('sql.echo', '{"n": 6}', '{"delay": "300 ms"}')`,
    )
    expect(soon).toMatchObject({ outcome: "inserted", state: "scheduled" })
    await waitFor("the delayed job completed", completed(soon!.id!))
    expect((await stateOf(later!.id!))?.state).toBe("scheduled")
    expect(seen).toEqual(["echo:6"])
  })

  it("a trigger on a user table enqueues with awa.insert_job, in the user's transaction", async () => {
    const seen: Array<string> = []
    await startWorker(seen)
    await psqlRows(`
      CREATE TABLE public.orders (id bigint PRIMARY KEY, note text);
      CREATE FUNCTION public.orders_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM awa.insert_job('sql.order', jsonb_build_object('order_id', NEW.id),
          jsonb_build_object('queue', 'orders', 'tags', jsonb_build_array('orders'), 'metadata',
            jsonb_build_object('note', NEW.note)));
        RETURN NEW;
      END $$;
      CREATE TRIGGER orders_enqueue AFTER INSERT ON public.orders FOR EACH ROW EXECUTE FUNCTION public.orders_enqueue();`)
    await psqlRows("INSERT INTO public.orders VALUES (41, 'first'), (42, NULL)")
    // A rolled-back order enqueues nothing.
    const rolledBack = await psql("BEGIN; INSERT INTO public.orders VALUES (43, 'x'); ROLLBACK;")
    expect(rolledBack.code).toBe(0)
    await waitFor("both order jobs completed", async () => {
      const r = await db.pool.query(
        "SELECT count(*) AS n FROM awa.jobs_all WHERE kind = 'sql.order' AND state = 'completed'",
      )
      return Number(r.rows[0].n) === 2
    })
    expect(seen.sort()).toEqual(["order:41", "order:42"])
    const jobs = await db.pool.query(
      "SELECT queue, tags, metadata FROM awa.jobs_all WHERE kind = 'sql.order' ORDER BY id",
    )
    expect(jobs.rows).toEqual([
      { queue: "orders", tags: ["orders"], metadata: { note: "first" } },
      // JSON null inside metadata is data (only a null option value means "not given").
      { queue: "orders", tags: ["orders"], metadata: { note: null } },
    ])
  })
})

describe("unique keys shared by the SQL and TypeScript producers", () => {
  const args = {
    name: 'Zoë 😀 "quoted"\n',
    nested: { b: [1.5, 1e21, -0, "\u2028"], a: { "\uE000": 1, "😀": 2 } },
  }
  const runAt = new Date("2099-03-04T05:06:07.891Z")
  const tsOptions = { queue: "uq", runAt, unique: { byQueue: true, byPeriod: "1 hour" } } as const
  const sqlOptions = {
    queue: "uq",
    run_at: runAt.toISOString(),
    unique: { by_queue: true, by_period: "1 hour" },
  }
  // The same args written with other spellings and key order: the key is over canonical JSON.
  const sqlArgs = `'{"nested": {"a": {"😀": 2, "\\ue000": 1.0}, "b": [15e-1, 1000000000000000000000, -0.0, "\\u2028"]}, "name": "Zo\\u00eb 😀 \\"quoted\\"\\n"}'`

  for (const state of ["canonical", "mixed", "active"] as const) {
    it(`conflicts in both directions under the ${state} state`, async () => {
      if (state !== "canonical") {
        await startWorker([])
        await moveTo(state)
      }
      const producer = makeProducer()
      const engine = state === "canonical" ? "canonical" : "queue_storage"
      // TypeScript first, SQL second.
      const first = await producer.insert(db.pool, Unique, args, tsOptions)
      if (first._tag !== "Inserted") throw new Error("expected an insert")
      const [second] = await psqlRows(
        `SELECT * FROM awa.insert_job('sql.unique', ${sqlArgs}, ${q(sqlOptions)})`,
      )
      expect(second).toMatchObject({
        outcome: "unique_conflict",
        existing_id: first.id,
        existing_state: "scheduled",
        engine,
      })
      expect(second?.id).toBeNull()
      // SQL first, TypeScript second (another queue, so another key).
      const [third] = await psqlRows(
        `SELECT * FROM awa.insert_job('sql.unique', ${sqlArgs}, ${q({ ...sqlOptions, queue: "uq2" })})`,
      )
      expect(third).toMatchObject({ outcome: "inserted", state: "scheduled", engine })
      const fourth = await producer.insert(db.pool, Unique, args, { ...tsOptions, queue: "uq2" })
      expect(fourth).toEqual({
        _tag: "UniqueConflict",
        existingId: third!.id,
        existingState: "scheduled",
        uniqueKey: third!.unique_key,
      })
      expect(second!.unique_key).not.toBe(third!.unique_key)
    })
  }

  for (const target of ["mixed", "active"] as const) {
    it(`a key still held by a canonical job (completed, kept as history) is a conflict naming it (${target})`, async () => {
      // Due now, so the worker completes it in the canonical engine; completed is one of the default unique
      // states, so the key stays held (a waiting canonical job would instead move into queue storage).
      const producer = makeProducer()
      const now = { queue: "uq", unique: { byQueue: true } }
      const held = await producer.insert(db.pool, Unique, args, now)
      if (held._tag !== "Inserted") throw new Error("expected an insert")
      await startWorker([])
      await waitFor("the canonical unique job completed", completed(held.id))
      await moveTo(target)
      const sqlNow = { queue: "uq", unique: { by_queue: true } }
      const [row] = await psqlRows(`SELECT * FROM awa.insert_job('sql.unique', ${sqlArgs}, ${q(sqlNow)})`)
      expect(row).toMatchObject({
        outcome: "unique_conflict",
        existing_id: held.id,
        existing_state: "completed",
        engine: "canonical",
      })
      const batch = await psqlRows(
        `SELECT * FROM awa.insert_jobs(${q([
          { kind: "sql.echo", args: { n: 1 } },
          { kind: "sql.unique", args, options: sqlNow },
        ])})`,
      )
      expect(batch.map((r) => [r.ord, r.outcome, r.engine, r.existing_id])).toEqual([
        ["1", "inserted", "queue_storage", null],
        ["2", "unique_conflict", "canonical", held.id],
      ])
    })
  }
})

describe("concurrency and state moves", () => {
  for (const state of ["canonical", "active"] as const) {
    it(`concurrent SQL and TypeScript inserts of one unique job insert it once (${state})`, async () => {
      if (state === "active") {
        await startWorker([])
        await moveTo("active")
      }
      const producer = makeProducer()
      const sqlOptions = { queue: "uq", unique: { by_queue: true } }
      const [sqlResults, tsResults] = await Promise.all([
        Promise.all(
          Array.from({ length: 8 }, () =>
            psqlRows(
              `SELECT * FROM awa.insert_job('sql.unique', '{"name": "once", "nested": null}', ${q(sqlOptions)})`,
            ),
          ),
        ),
        Promise.all(
          Array.from({ length: 8 }, () =>
            producer.insert(
              db.pool,
              Unique,
              { name: "once", nested: null },
              { queue: "uq", unique: { byQueue: true } },
            ),
          ),
        ),
      ])
      const ids = [
        ...sqlResults.map(([r]) => (r?.outcome === "inserted" ? r.id : r?.existing_id)),
        ...tsResults.map((r) => (r._tag === "Inserted" ? r.id : r.existingId)),
      ]
      const inserted =
        sqlResults.filter(([r]) => r?.outcome === "inserted").length +
        tsResults.filter((r) => r._tag === "Inserted").length
      expect(inserted).toBe(1)
      expect(new Set(ids).size).toBe(1)
      expect(await jobCount()).toBe(1)
    })
  }

  it("a state move waits for a transaction that inserted under the old state, so no job is stranded", async () => {
    await startWorker([])
    await moveTo("mixed")
    const inserter = await openClient()
    await inserter.query("BEGIN")
    const r = await inserter.query("SELECT * FROM awa.insert_job('sql.echo', '{\"n\": 1}')")
    expect(r.rows[0]).toMatchObject({ outcome: "inserted", engine: "queue_storage" })
    // abort reads queue storage as empty while the insert is uncommitted, but must wait for it first.
    const mover = await openClient()
    await mover.query("SET lock_timeout = '300ms'")
    const blocked = await mover.query("SELECT awa.storage_abort('test')").then(
      () => undefined,
      (e: { code?: string }) => e,
    )
    expect(blocked?.code).toBe("55P03") // lock_not_available: it waited on the inserter
    await inserter.query("COMMIT")
    const refused = await mover.query("SELECT awa.storage_abort('test')").then(
      () => undefined,
      (e: { code?: string; message?: string }) => e,
    )
    expect(refused?.code).toBe("AWS01")
    expect(refused?.message).toContain("awa storage gate queue-storage-work")
  })
})

describe("bad input gets a clear SQL error and inserts nothing", () => {
  const cases: ReadonlyArray<readonly [string, string, ReadonlyArray<string>]> = [
    ["kind NULL", "awa.insert_job(NULL, '{}')", ["invalid job kind: got NULL"]],
    ["kind with a space", "awa.insert_job('bad kind', '{}')", ['invalid job kind: got "bad kind"', "1..128"]],
    ["kind too long", `awa.insert_job('${"k".repeat(129)}', '{}')`, ["invalid job kind"]],
    ["args NULL", "awa.insert_job('k', NULL)", ['invalid args for job kind "k": got NULL', "'{}'::jsonb"]],
    [
      "args number out of double range",
      `awa.insert_job('k', '{"a": 1e400}')`,
      ["numbers a double can hold", "as a string"],
    ],
    ["args number that reads as 0", `awa.insert_job('k', '[1e-400]')`, ["numbers a double can hold"]],
    [
      "options not an object",
      `awa.insert_job('k', '{}', '[]')`,
      ["invalid options", "a JSON object of insert options"],
    ],
    [
      "unknown option",
      `awa.insert_job('k', '{}', '{"prio": 1}')`,
      ["invalid option prio", "an unknown option"],
    ],
    ["camelCase option", `awa.insert_job('k', '{}', '{"maxAttempts": 3}')`, ["Did you mean max_attempts?"]],
    [
      "queue with a space",
      `awa.insert_job('k', '{}', '{"queue": "a b"}')`,
      ["invalid option queue", 'got "a b"'],
    ],
    ["queue empty", `awa.insert_job('k', '{}', '{"queue": ""}')`, ["invalid option queue"]],
    ["queue not a string", `awa.insert_job('k', '{}', '{"queue": 5}')`, ["invalid option queue", "got 5"]],
    [
      "queue too long",
      `awa.insert_job('k', '{}', '{"queue": "${"q".repeat(129)}"}')`,
      ["invalid option queue"],
    ],
    [
      "priority 0",
      `awa.insert_job('k', '{}', '{"priority": 0}')`,
      ["invalid option priority", "from 1 (highest) to 4"],
    ],
    ["priority 5", `awa.insert_job('k', '{}', '{"priority": 5}')`, ["invalid option priority"]],
    [
      "priority 2.5",
      `awa.insert_job('k', '{}', '{"priority": 2.5}')`,
      ["invalid option priority", "got 2.5"],
    ],
    [
      "priority string",
      `awa.insert_job('k', '{}', '{"priority": "2"}')`,
      ["invalid option priority", 'got "2"'],
    ],
    [
      "max_attempts 0",
      `awa.insert_job('k', '{}', '{"max_attempts": 0}')`,
      ["invalid option max_attempts", "1 to 1000"],
    ],
    [
      "max_attempts 1001",
      `awa.insert_job('k', '{}', '{"max_attempts": 1001}')`,
      ["invalid option max_attempts"],
    ],
    [
      "max_attempts 1.5",
      `awa.insert_job('k', '{}', '{"max_attempts": 1.5}')`,
      ["invalid option max_attempts"],
    ],
    [
      "run_at garbage",
      `awa.insert_job('k', '{}', '{"run_at": "soon"}')`,
      ["invalid option run_at", 'got "soon"'],
    ],
    ["run_at a number", `awa.insert_job('k', '{}', '{"run_at": 1700000000000}')`, ["invalid option run_at"]],
    ["run_at infinity", `awa.insert_job('k', '{}', '{"run_at": "infinity"}')`, ["invalid option run_at"]],
    [
      "run_at and delay",
      `awa.insert_job('k', '{}', '{"run_at": "2030-01-01T00:00:00Z", "delay": 5}')`,
      ["either run_at or delay, not both"],
    ],
    [
      "delay negative",
      `awa.insert_job('k', '{}', '{"delay": -1}')`,
      ["invalid option delay", "non-negative"],
    ],
    [
      "delay negative interval",
      `awa.insert_job('k', '{}', '{"delay": "-5 minutes"}')`,
      ["invalid option delay"],
    ],
    [
      "delay not a duration",
      `awa.insert_job('k', '{}', '{"delay": "5 parsecs"}')`,
      ["invalid option delay", 'got "5 parsecs"'],
    ],
    ["delay beyond timestamps", `awa.insert_job('k', '{}', '{"delay": 1e300}')`, ["invalid option delay"]],
    [
      "timeout 0",
      `awa.insert_job('k', '{}', '{"timeout": 0}')`,
      ["invalid option timeout", "from 1 ms to 2147483647 ms"],
    ],
    ["timeout too long", `awa.insert_job('k', '{}', '{"timeout": "30 days"}')`, ["invalid option timeout"]],
    [
      "timeout a boolean",
      `awa.insert_job('k', '{}', '{"timeout": true}')`,
      ["invalid option timeout", "got true"],
    ],
    [
      "tags not an array",
      `awa.insert_job('k', '{}', '{"tags": "a"}')`,
      ["invalid option tags", "an array of at most 20 tags"],
    ],
    [
      "too many tags",
      `awa.insert_job('k', '{}', ${q({ tags: Array.from({ length: 21 }, (_, i) => `t${i}`) })})`,
      ["invalid option tags"],
    ],
    ["empty tag", `awa.insert_job('k', '{}', '{"tags": [""]}')`, ["each tag a string of 1..255 characters"]],
    ["tag not a string", `awa.insert_job('k', '{}', '{"tags": [1]}')`, ["invalid option tags", "got 1"]],
    [
      "tag too long (UTF-16 units)",
      `awa.insert_job('k', '{}', ${q({ tags: ["😀".repeat(128)] })})`,
      ["each tag a string of 1..255"],
    ],
    [
      "metadata an array",
      `awa.insert_job('k', '{}', '{"metadata": []}')`,
      ["invalid option metadata", "a JSON object"],
    ],
    ["metadata a string", `awa.insert_job('k', '{}', '{"metadata": "x"}')`, ["invalid option metadata"]],
    [
      "metadata number out of range",
      `awa.insert_job('k', '{}', '{"metadata": {"a": -1e400}}')`,
      ["invalid option metadata", "a double can hold"],
    ],
    [
      "unique a string",
      `awa.insert_job('k', '{}', '{"unique": "yes"}')`,
      ["invalid option unique", "true, false or an object"],
    ],
    [
      "unique unknown key",
      `awa.insert_job('k', '{}', '{"unique": {"byQueue": true}}')`,
      ["invalid option unique.byQueue", "Did you mean unique.by_queue?"],
    ],
    [
      "unique.by_queue not boolean",
      `awa.insert_job('k', '{}', '{"unique": {"by_queue": "yes"}}')`,
      ["invalid option unique.by_queue"],
    ],
    [
      "unique.by_args not boolean",
      `awa.insert_job('k', '{}', '{"unique": {"by_args": 1}}')`,
      ["invalid option unique.by_args"],
    ],
    [
      "unique.by_period 0",
      `awa.insert_job('k', '{}', '{"unique": {"by_period": 0}}')`,
      ["invalid option unique.by_period", "at least 1 ms"],
    ],
    [
      "unique.by_period garbage",
      `awa.insert_job('k', '{}', '{"unique": {"by_period": "fortnightly"}}')`,
      ["invalid option unique.by_period"],
    ],
    [
      "unique.states unknown state",
      `awa.insert_job('k', '{}', '{"unique": {"states": ["done"]}}')`,
      ["invalid option unique.states", "an array of job states"],
    ],
    [
      "unique.states missing non-terminal",
      `awa.insert_job('k', '{}', '{"unique": {"states": ["available", "running"]}}')`,
      ["missing scheduled, retryable, waiting_external", "Add completed, failed or cancelled"],
    ],
    ["batch not an array", `awa.insert_jobs('{}')`, ["awa.insert_jobs: invalid jobs", "a JSON array"]],
    ["batch element not an object", `awa.insert_jobs('[1]')`, ["awa.insert_jobs jobs[1]: invalid job"]],
    ["batch element without kind", `awa.insert_jobs('[{"args": {}}]')`, ["jobs[1]: invalid job kind"]],
    [
      "batch element with an unknown key",
      `awa.insert_jobs('[{"kind": "k", "queue": "q"}]')`,
      ['an unknown key "queue"', 'inside "options"'],
    ],
    [
      "batch second element bad",
      `awa.insert_jobs('[{"kind": "k"}, {"kind": "k", "options": {"priority": 9}}]')`,
      ["awa.insert_jobs jobs[2]: invalid option priority"],
    ],
  ]

  it("every bad option is refused with SQLSTATE 22023, a message saying what is wrong, and nothing inserted", async () => {
    for (const [name, call, expected] of cases) {
      const r = await psql(`SELECT * FROM ${call}`)
      expect(r.code, name).not.toBe(0)
      for (const text of expected) expect(r.stderr, name).toContain(text)
      expect(r.stderr, name).toContain("Nothing was inserted.")
    }
    // The SQLSTATE, DETAIL and HINT as a client library sees them.
    const client = await openClient()
    for (const [, call] of cases) {
      const error = await client.query(`SELECT * FROM ${call}`).then(
        () => undefined,
        (e: { code?: string; detail?: string; hint?: string }) => e,
      )
      expect(error?.code, call).toBe("22023")
      expect(error?.hint, call).toBeTruthy()
      expect(error?.detail, call).toBeTruthy()
    }
    expect(await jobCount()).toBe(0)
  })

  it("a bad option under active queue storage inserts nothing there either", async () => {
    await startWorker([])
    await moveTo("active")
    const r = await psql(
      `SELECT * FROM awa.insert_jobs('[{"kind": "sql.echo", "args": {"n": 1}}, {"kind": "k", "options": {"tags": [""]}}]')`,
    )
    expect(r.stderr).toContain("jobs[2]: invalid option tags")
    expect(await jobCount()).toBe(0)
  })

  it("payload sizes count compact JSON bytes exactly as the TypeScript producer does (SQLSTATE 54000 over)", async () => {
    const client = await openClient()
    // {"a":"xxx…"}: 8 bytes of JSON around the string. jsonb's own text adds a space, so it is 1 byte longer.
    const at = (bytes: number) => JSON.stringify({ a: "x".repeat(bytes - 8) })
    expect(Buffer.byteLength(at(1024 * 1024))).toBe(1024 * 1024)
    const ok = await client.query("SELECT * FROM awa.insert_job('k', $1::jsonb)", [at(1024 * 1024)])
    expect(ok.rows[0].outcome).toBe("inserted")
    const over = await client
      .query("SELECT * FROM awa.insert_job('k', $1::jsonb)", [at(1024 * 1024 + 1)])
      .then(
        () => undefined,
        (e: { code?: string; message?: string }) => e,
      )
    expect(over?.code).toBe("54000")
    expect(over?.message).toContain(
      'invalid args for job kind "k": got 1048577 bytes of JSON, expected at most 1048576 bytes',
    )
    const meta = (bytes: number) => JSON.stringify({ metadata: JSON.parse(at(bytes)) })
    expect(
      (await client.query("SELECT * FROM awa.insert_job('k', '{}', $1::jsonb)", [meta(65536)])).rows[0]
        .outcome,
    ).toBe("inserted")
    const metaOver = await client
      .query("SELECT * FROM awa.insert_job('k', '{}', $1::jsonb)", [meta(65537)])
      .then(
        () => undefined,
        (e: { code?: string }) => e,
      )
    expect(metaOver?.code).toBe("54000")
    expect(await jobCount()).toBe(2)
  })
})
