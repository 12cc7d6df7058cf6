/**
 * Compatibility of awa's pgmq SQL API (migration set pgmq, provider=sql) with pgmq 1.13.1.
 *
 * A table of cases per public pgmq function, each case a fact about pgmq's documented behaviour (taken from
 * pgmq's docs and source as facts: signatures, results, errors, edge cases), driven against the `sql`
 * provider on real Postgres in split mode (the pgmq set lives in its own database). A last test checks that
 * every public function of the installed API has cases here, so a new function cannot go untested.
 *
 * Cases run concurrently: each uses its own queues (and its own routing-key prefix for topics). Functions that
 * lock every queue run alone afterwards (see locksEveryQueue).
 */
import type { TestDatabases } from "@awa/testing-src/TestDatabases.js"
import { createEmptyDatabases } from "@awa/testing-src/vitest/TestPostgres.js"
import pg from "pg"
import { Pgmq } from "pgmq-js"
import { afterAll, beforeAll, describe, type ExpectStatic, it } from "vitest"
import { migrate, renderMigrationSql } from "../src/MigrateApi.js"

let databases: TestDatabases
let admin: pg.Pool
const clients: pg.Client[] = []
const pgmqClients: Pgmq[] = []

beforeAll(async () => {
  databases = await createEmptyDatabases("split")
  const report = await migrate({
    databaseUrl: databases.primaryUrl,
    pgmqDatabaseUrl: databases.pgmqUrl,
    withPgmq: true,
    pgmqProvider: "sql",
  })
  if (!report.status.some((s) => s.set === "pgmq" && s.params.provider === "sql"))
    throw new Error("expected the pgmq set with the sql provider")
  admin = new pg.Pool({ connectionString: databases.pgmqUrl, max: 8 })
}, 120_000)

afterAll(async () => {
  await Promise.allSettled(pgmqClients.map((c) => c.close()))
  await Promise.allSettled(clients.map((c) => c.end()))
  await admin?.end()
  await databases?.drop()
}, 60_000)

type Row = Record<string, unknown>

/** Runs one statement on the pgmq database and returns its rows. */
const sql = async <R extends Row = Row>(text: string, params: ReadonlyArray<unknown> = []): Promise<R[]> =>
  (await admin.query<R>(text, params as unknown[])).rows

/** Runs statements on one connection inside a transaction, committed unless `rollback`. */
const inTransaction = async (body: (c: pg.PoolClient) => Promise<void>, rollback = false): Promise<void> => {
  const c = await admin.connect()
  try {
    await c.query("BEGIN")
    await body(c)
    await c.query(rollback ? "ROLLBACK" : "COMMIT")
  } finally {
    c.release()
  }
}

let counter = 0
/** A queue name no other case uses, keeping the given spelling (mixed case, hyphens). */
const uniqueName = (base: string): string => `${base}_${++counter}`

/** Creates a queue with a unique name and returns the name. */
const newQueue = async (base = "compat"): Promise<string> => {
  const name = uniqueName(base)
  await sql("SELECT pgmq.create($1)", [name])
  return name
}

/** Sends messages (visible now) and returns their ids. */
const sendAll = async (queue: string, messages: ReadonlyArray<unknown>, headers?: ReadonlyArray<unknown>) => {
  const ids: number[] = []
  for (const [i, m] of messages.entries()) {
    const [row] = await sql<{ id: string }>("SELECT pgmq.send($1, $2::jsonb, $3::jsonb) AS id", [
      queue,
      JSON.stringify(m),
      headers?.[i] === undefined ? null : JSON.stringify(headers[i]),
    ])
    ids.push(Number(row?.id))
  }
  return ids
}

const dbNow = async (): Promise<number> =>
  (await sql<{ now: Date }>("SELECT clock_timestamp() AS now"))[0]!.now.getTime()

/** Expects a statement to fail with the SQLSTATE and a message matching `message`. */
const expectError = async (
  expect: ExpectStatic,
  text: string,
  params: ReadonlyArray<unknown>,
  code: string,
  message: RegExp,
): Promise<void> => {
  const error = await sql(text, params).then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(error, `expected ${text} to fail`).toBeInstanceOf(Error)
  expect((error as { code?: string }).code).toBe(code)
  expect((error as Error).message).toMatch(message)
}

const ids = (rows: ReadonlyArray<Row>) => rows.map((r) => Number(r.msg_id))

/** A LISTEN connection that records notifications in order. */
class Listener {
  readonly received: Array<{ channel: string; payload: string | undefined }> = []
  private constructor(readonly client: pg.Client) {
    client.on("notification", (n) => this.received.push({ channel: n.channel, payload: n.payload }))
  }
  static async on(channels: ReadonlyArray<string>): Promise<Listener> {
    const client = new pg.Client({ connectionString: databases.pgmqUrl })
    await client.connect()
    clients.push(client)
    for (const ch of channels) await client.query(`LISTEN ${client.escapeIdentifier(ch)}`)
    return new Listener(client)
  }
  /** Waits until a notification on `channel` arrives; the deadline only guards against a hang. */
  async until(channel: string): Promise<void> {
    const deadline = Date.now() + 15_000
    while (!this.received.some((n) => n.channel === channel)) {
      if (Date.now() > deadline)
        throw new Error(`no notification on ${channel}: ${JSON.stringify(this.received)}`)
      await new Promise((r) => setTimeout(r, 20))
    }
  }
  count(channel: string): number {
    return this.received.filter((n) => n.channel === channel).length
  }
}

/**
 * Proves that `channel` got exactly `expected` notifications so far: NOTIFY delivers in commit order, so
 * once a marker committed afterwards has arrived, anything earlier has arrived too. No sleeping.
 */
const settle = async (listener: Listener, marker: string): Promise<void> => {
  await sql("SELECT pg_notify($1, 'marker')", [marker])
  await listener.until(marker)
}

type Case = readonly [fact: string, run: (expect: ExpectStatic) => Promise<void>]

/** Facts about pgmq 1.13.1, per public function. Keys are function names in schema pgmq. */
const cases: Record<string, ReadonlyArray<Case>> = {
  create: [
    [
      "keeps the name as given in pgmq.meta (mixed case, hyphens) and names the tables q_/a_ plus the lower-cased name",
      async (expect) => {
        const name = uniqueName("Orders-EU")
        await sql("SELECT pgmq.create($1)", [name])
        const meta = await sql(
          "SELECT queue_name, is_partitioned, is_unlogged FROM pgmq.meta WHERE queue_name = $1",
          [name],
        )
        expect(meta).toEqual([{ queue_name: name, is_partitioned: false, is_unlogged: false }])
        const tables = await sql<{ t: string }>(
          "SELECT relname AS t FROM pg_class WHERE relnamespace = 'pgmq'::regnamespace AND relkind = 'r' AND relname IN ($1, $2) ORDER BY 1",
          [`a_${name.toLowerCase()}`, `q_${name.toLowerCase()}`],
        )
        expect(tables.map((r) => r.t)).toEqual([`a_${name.toLowerCase()}`, `q_${name.toLowerCase()}`])
      },
    ],
    [
      "is idempotent: creating an existing queue changes nothing",
      async (expect) => {
        const name = await newQueue()
        await sendAll(name, [{ keep: 1 }])
        await sql("SELECT pgmq.create($1)", [name])
        expect(await sql("SELECT count(*)::int AS n FROM pgmq.meta WHERE queue_name = $1", [name])).toEqual([
          { n: 1 },
        ])
        expect((await sql("SELECT * FROM pgmq.metrics($1)", [name]))[0]?.queue_length).toBe("1")
      },
    ],
    [
      "accepts names of up to 47 characters and refuses 48 ('maximum length is 47 characters')",
      async (expect) => {
        const prefix = uniqueName("L")
        const ok = prefix + "x".repeat(47 - prefix.length)
        await sql("SELECT pgmq.create($1)", [ok])
        await sendAll(ok, [{ ok: true }])
        await expectError(
          expect,
          "SELECT pgmq.create($1)",
          [`${ok}y`],
          "22023",
          /maximum length is 47 characters/,
        )
      },
    ],
    [
      "refuses names containing $, ;, -- or a single quote",
      async (expect) => {
        for (const bad of ["a$b", "a;b", "a--b", "a'b"]) {
          await expectError(expect, "SELECT pgmq.create($1)", [bad], "22023", /invalid characters/)
        }
        expect(
          await sql("SELECT queue_name FROM pgmq.meta WHERE queue_name IN ('a$b','a;b','a--b','a''b')"),
        ).toEqual([])
      },
    ],
    [
      "accepts spaces, dots, digits first and double quotes, which pgmq quotes as identifiers",
      async (expect) => {
        for (const base of ["has space", "dotted.name", "9lives", 'dq"name']) {
          const name = uniqueName(base)
          await sql("SELECT pgmq.create($1)", [name])
          const [id] = await sendAll(name, [{ base }])
          expect(ids(await sql("SELECT * FROM pgmq.pop($1)", [name]))).toEqual([id])
        }
      },
    ],
    [
      "(awa) refuses an empty name and one longer than 47 bytes, so no derived identifier is truncated",
      async (expect) => {
        await expectError(expect, "SELECT pgmq.create('')", [], "22023", /must not be empty/)
        await expectError(expect, "SELECT pgmq.create($1)", ["é".repeat(24)], "22023", /at most 47 bytes/)
      },
    ],
  ],
  create_non_partitioned: [
    [
      "creates a logged, non-partitioned queue like create",
      async (expect) => {
        const name = uniqueName("NonPart")
        await sql("SELECT pgmq.create_non_partitioned($1)", [name])
        expect(
          await sql("SELECT is_partitioned, is_unlogged FROM pgmq.meta WHERE queue_name = $1", [name]),
        ).toEqual([{ is_partitioned: false, is_unlogged: false }])
      },
    ],
  ],
  create_unlogged: [
    [
      "makes the queue table UNLOGGED (the archive stays logged) and records is_unlogged",
      async (expect) => {
        const name = uniqueName("Unlogged-Q")
        await sql("SELECT pgmq.create_unlogged($1)", [name])
        const rows = await sql<{ relname: string; relpersistence: string }>(
          "SELECT relname, relpersistence FROM pg_class WHERE relnamespace = 'pgmq'::regnamespace AND relname IN ($1, $2) ORDER BY relname",
          [`a_${name.toLowerCase()}`, `q_${name.toLowerCase()}`],
        )
        expect(rows.map((r) => r.relpersistence)).toEqual(["p", "u"])
        expect(
          (await sql("SELECT is_unlogged FROM pgmq.meta WHERE queue_name = $1", [name]))[0]?.is_unlogged,
        ).toBe(true)
      },
    ],
  ],
  create_partitioned: [
    [
      "(awa) takes pgmq 1.12.1's four arguments (premake) and refuses with feature_not_supported: no pg_partman",
      async (expect) => {
        await expectError(
          expect,
          "SELECT pgmq.create_partitioned('parts', '10000', '100000', 4)",
          [],
          "0A000",
          /not supported/,
        )
        await expectError(expect, "SELECT pgmq.create_partitioned('parts')", [], "0A000", /not supported/)
        expect(await sql("SELECT 1 FROM pgmq.meta WHERE queue_name = 'parts'")).toEqual([])
      },
    ],
  ],
  convert_archive_partitioned: [
    [
      "(awa) refuses with feature_not_supported",
      async (expect) => {
        const name = await newQueue()
        await expectError(
          expect,
          "SELECT pgmq.convert_archive_partitioned($1)",
          [name],
          "0A000",
          /not supported/,
        )
      },
    ],
  ],
  validate_queue_name: [
    [
      "passes a 47-character name and refuses a 48-character one",
      async (expect) => {
        await sql("SELECT pgmq.validate_queue_name($1)", ["v".repeat(47)])
        await expectError(
          expect,
          "SELECT pgmq.validate_queue_name($1)",
          ["v".repeat(48)],
          "22023",
          /maximum length is 47/,
        )
      },
    ],
  ],
  format_table_name: [
    [
      "returns prefix, underscore and the lower-cased name",
      async (expect) => {
        expect(await sql("SELECT pgmq.format_table_name('My-Queue', 'q') AS t")).toEqual([
          { t: "q_my-queue" },
        ])
        expect(await sql("SELECT pgmq.format_table_name('My-Queue', 'a') AS t")).toEqual([
          { t: "a_my-queue" },
        ])
      },
    ],
    [
      "refuses $, ;, -- and single quotes",
      async (expect) => {
        await expectError(
          expect,
          "SELECT pgmq.format_table_name('x;drop', 'q')",
          [],
          "22023",
          /invalid characters/,
        )
      },
    ],
  ],
  acquire_queue_lock: [
    [
      "takes a transaction-scoped lock on the queue name",
      async (expect) => {
        const name = uniqueName("lock")
        await inTransaction(async (c) => {
          await c.query("SELECT pgmq.acquire_queue_lock($1)", [name])
          const held = await c.query(
            "SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()",
          )
          expect(held.rows[0]?.n).toBeGreaterThan(0)
        })
      },
    ],
  ],
  list_queues: [
    [
      "lists every queue as (queue_name, is_partitioned, is_unlogged, created_at)",
      async (expect) => {
        const name = await newQueue("Listed-Q")
        const rows = await sql("SELECT * FROM pgmq.list_queues() WHERE queue_name = $1", [name])
        expect(rows).toEqual([
          { queue_name: name, is_partitioned: false, is_unlogged: false, created_at: expect.any(Date) },
        ])
      },
    ],
  ],
  drop_queue: [
    [
      "drop_queue(name) drops the queue, its archive and its meta row and returns true",
      async (expect) => {
        const name = await newQueue("Drop-Me")
        expect(await sql("SELECT pgmq.drop_queue($1) AS r", [name])).toEqual([{ r: true }])
        expect(
          await sql("SELECT to_regclass($1) AS q, to_regclass($2) AS a", [
            `pgmq."q_${name.toLowerCase()}"`,
            `pgmq."a_${name.toLowerCase()}"`,
          ]),
        ).toEqual([{ q: null, a: null }])
        expect(await sql("SELECT 1 FROM pgmq.meta WHERE queue_name = $1", [name])).toEqual([])
      },
    ],
    [
      "drop_queue(name) returns false for a queue that does not exist",
      async (expect) => {
        expect(await sql("SELECT pgmq.drop_queue($1) AS r", [uniqueName("never")])).toEqual([{ r: false }])
      },
    ],
    [
      "drop_queue(name, partitioned) (deprecated; tembo-pgmq-python calls it) drops the queue and returns true",
      async (expect) => {
        const name = await newQueue("Py-Drop")
        expect(await sql("SELECT pgmq.drop_queue($1, false) AS r", [name])).toEqual([{ r: true }])
        expect(await sql("SELECT 1 FROM pgmq.meta WHERE queue_name = $1", [name])).toEqual([])
      },
    ],
    [
      "dropping a queue also removes its notify settings and topic bindings",
      async (expect) => {
        const name = await newQueue("DropCascade")
        await sql("SELECT pgmq.enable_notify_insert($1, 0)", [name])
        await sql("SELECT pgmq.bind_topic($1, $2)", [`${name}.x.*`.replace(/[^A-Za-z0-9._*#-]/g, ""), name])
        await sql("SELECT pgmq.drop_queue($1)", [name])
        expect(await sql("SELECT 1 FROM pgmq.notify_insert_throttle WHERE queue_name = $1", [name])).toEqual(
          [],
        )
        expect(await sql("SELECT 1 FROM pgmq.topic_bindings WHERE queue_name = $1", [name])).toEqual([])
      },
    ],
  ],
  purge_queue: [
    [
      "deletes every message (not the archive) and returns how many",
      async (expect) => {
        const name = await newQueue()
        const [first] = await sendAll(name, [{ a: 1 }, { a: 2 }, { a: 3 }])
        await sql("SELECT pgmq.archive($1, $2::bigint)", [name, first])
        expect(await sql("SELECT pgmq.purge_queue($1) AS n", [name])).toEqual([{ n: "2" }])
        expect((await sql("SELECT * FROM pgmq.metrics($1)", [name]))[0]?.queue_length).toBe("0")
        expect(await sql(`SELECT count(*)::int AS n FROM pgmq."a_${name}"`)).toEqual([{ n: 1 }])
      },
    ],
  ],
  detach_archive: [
    [
      "is a deprecated no-op: the archive stays",
      async (expect) => {
        const name = await newQueue()
        await sql("SELECT pgmq.detach_archive($1)", [name])
        expect(await sql("SELECT to_regclass($1) IS NOT NULL AS p", [`pgmq.a_${name}`])).toEqual([
          { p: true },
        ])
      },
    ],
  ],
  send: [
    [
      "send(queue, msg) returns the new id, visible at once; ids increase",
      async (expect) => {
        const name = await newQueue()
        const [a, b] = await sendAll(name, [{ n: 1 }, { n: 2 }])
        expect(b).toBeGreaterThan(a!)
        expect(ids(await sql("SELECT * FROM pgmq.read($1, 30, 10)", [name]))).toEqual([a, b])
      },
    ],
    [
      "send(queue, msg, headers) stores the headers",
      async (expect) => {
        const name = await newQueue()
        await sql('SELECT pgmq.send($1, \'{"n":1}\'::jsonb, \'{"h":"v"}\'::jsonb)', [name])
        expect((await sql("SELECT headers FROM pgmq.read($1, 30, 1)", [name]))[0]?.headers).toEqual({
          h: "v",
        })
      },
    ],
    [
      "send(queue, msg, delay integer) hides the message for delay seconds",
      async (expect) => {
        const name = await newQueue()
        const before = await dbNow()
        await sql("SELECT pgmq.send($1, '{}'::jsonb, 60)", [name])
        expect(await sql("SELECT * FROM pgmq.read($1, 30, 1)", [name])).toEqual([])
        const [row] = await sql<{ vt: Date }>(`SELECT vt FROM pgmq."q_${name}"`)
        expect(row!.vt.getTime() - before).toBeGreaterThanOrEqual(59_000)
      },
    ],
    [
      "send(queue, msg, delay timestamptz) makes the message visible at that time",
      async (expect) => {
        const name = await newQueue()
        await sql("SELECT pgmq.send($1, '{}'::jsonb, '2999-01-01T00:00:00Z'::timestamptz)", [name])
        expect((await sql<{ vt: Date }>(`SELECT vt FROM pgmq."q_${name}"`))[0]?.vt.toISOString()).toBe(
          "2999-01-01T00:00:00.000Z",
        )
      },
    ],
    [
      "send(queue, msg, headers, delay) takes headers with an integer or timestamptz delay",
      async (expect) => {
        const name = await newQueue()
        await sql("SELECT pgmq.send($1, '{}'::jsonb, '{\"k\":1}'::jsonb, 0)", [name])
        await sql("SELECT pgmq.send($1, '{}'::jsonb, '{\"k\":2}'::jsonb, clock_timestamp())", [name])
        const rows = await sql("SELECT headers FROM pgmq.read($1, 30, 10)", [name])
        expect(rows.map((r) => r.headers)).toEqual([{ k: 1 }, { k: 2 }])
      },
    ],
    [
      "fails for a queue that does not exist",
      async (expect) => {
        await expectError(
          expect,
          "SELECT pgmq.send($1, '{}'::jsonb)",
          [uniqueName("missing")],
          "42P01",
          /does not exist/,
        )
      },
    ],
  ],
  send_batch: [
    [
      "returns the ids in message order, headers[i] with msgs[i]",
      async (expect) => {
        const name = await newQueue()
        const rows = await sql<{ id: string }>(
          "SELECT * FROM pgmq.send_batch($1, ARRAY['{\"n\":1}','{\"n\":2}']::jsonb[], ARRAY['{\"h\":1}','{\"h\":2}']::jsonb[]) AS id",
          [name],
        )
        expect(rows).toHaveLength(2)
        const read = await sql("SELECT msg_id, message, headers FROM pgmq.read($1, 30, 10)", [name])
        expect(read.map((r) => [Number(r.msg_id), r.message, r.headers])).toEqual([
          [Number(rows[0]!.id), { n: 1 }, { h: 1 }],
          [Number(rows[1]!.id), { n: 2 }, { h: 2 }],
        ])
      },
    ],
    [
      "takes an integer or timestamptz delay, with or without headers",
      async (expect) => {
        const name = await newQueue()
        await sql("SELECT pgmq.send_batch($1, ARRAY['{}']::jsonb[], 60)", [name])
        await sql("SELECT pgmq.send_batch($1, ARRAY['{}']::jsonb[], '2999-01-01'::timestamptz)", [name])
        await sql("SELECT pgmq.send_batch($1, ARRAY['{}']::jsonb[], ARRAY['{}']::jsonb[], 60)", [name])
        await sql(
          "SELECT pgmq.send_batch($1, ARRAY['{}']::jsonb[], ARRAY['{}']::jsonb[], '2999-01-01'::timestamptz)",
          [name],
        )
        expect(await sql("SELECT * FROM pgmq.read($1, 30, 10)", [name])).toEqual([])
        expect((await sql("SELECT * FROM pgmq.metrics($1)", [name]))[0]?.queue_length).toBe("4")
      },
    ],
    [
      "refuses a NULL or empty batch and headers whose count differs",
      async (expect) => {
        const name = await newQueue()
        await expectError(
          expect,
          "SELECT pgmq.send_batch($1, ARRAY[]::jsonb[])",
          [name],
          "22023",
          /at least one message/,
        )
        await expectError(
          expect,
          "SELECT pgmq.send_batch($1, NULL::jsonb[])",
          [name],
          "22023",
          /at least one message/,
        )
        await expectError(
          expect,
          "SELECT pgmq.send_batch($1, ARRAY['{}','{}']::jsonb[], ARRAY['{}']::jsonb[])",
          [name],
          "22023",
          /2 messages but 1 headers/,
        )
      },
    ],
  ],
  read: [
    [
      "read(queue, vt integer, qty) returns up to qty visible messages oldest first, hides them for vt seconds, increments read_ct and sets last_read_at",
      async (expect) => {
        const name = await newQueue()
        const sent = await sendAll(name, [{ n: 1 }, { n: 2 }, { n: 3 }])
        const before = await dbNow()
        const rows = await sql<{ msg_id: string; read_ct: number; vt: Date; last_read_at: Date }>(
          "SELECT * FROM pgmq.read($1, 30, 2)",
          [name],
        )
        expect(ids(rows)).toEqual(sent.slice(0, 2))
        for (const r of rows) {
          expect(r.read_ct).toBe(1)
          expect(r.last_read_at.getTime()).toBeGreaterThanOrEqual(before - 1000)
          expect(r.vt.getTime() - r.last_read_at.getTime()).toBeGreaterThanOrEqual(29_000)
        }
        expect(ids(await sql("SELECT * FROM pgmq.read($1, 30, 5)", [name]))).toEqual([sent[2]])
        expect(await sql("SELECT * FROM pgmq.read($1, 30, 5)", [name])).toEqual([])
      },
    ],
    [
      "returns message_record columns in pgmq's order: msg_id, read_ct, enqueued_at, last_read_at, vt, message, headers",
      async (expect) => {
        const name = await newQueue()
        await sendAll(name, [{}])
        const result = await admin.query("SELECT * FROM pgmq.read($1, 30, 1)", [name])
        expect(result.fields.map((f) => f.name)).toEqual([
          "msg_id",
          "read_ct",
          "enqueued_at",
          "last_read_at",
          "vt",
          "message",
          "headers",
        ])
      },
    ],
    [
      "read(queue, vt timestamptz, qty) hides the messages until that time (pgmq >= 1.12)",
      async (expect) => {
        const name = await newQueue()
        await sendAll(name, [{}])
        const rows = await sql<{ vt: Date }>(
          "SELECT * FROM pgmq.read($1, '2999-01-01T00:00:00Z'::timestamptz, 1)",
          [name],
        )
        expect(rows[0]?.vt.toISOString()).toBe("2999-01-01T00:00:00.000Z")
      },
    ],
    [
      "with conditional, returns only messages whose body contains it",
      async (expect) => {
        const name = await newQueue()
        const [, b] = await sendAll(name, [{ kind: "a" }, { kind: "b", x: 1 }, { kind: "a" }])
        expect(
          ids(await sql('SELECT * FROM pgmq.read($1, 30, 10, \'{"kind":"b"}\'::jsonb)', [name])),
        ).toEqual([b])
      },
    ],
    [
      "(awa) accepts untyped parameters, as sent by pgmq-js: a whole number is seconds, anything else a timestamp",
      async (expect) => {
        const name = await newQueue()
        await sendAll(name, [{}, {}])
        const [first] = await sql<{ vt: Date; last_read_at: Date }>("SELECT * FROM pgmq.read($1, $2, $3)", [
          name,
          "45",
          "1",
        ])
        expect(first!.vt.getTime() - first!.last_read_at.getTime()).toBeGreaterThanOrEqual(44_000)
        const [second] = await sql<{ vt: Date }>("SELECT * FROM pgmq.read($1, $2, $3)", [
          name,
          "2999-01-01T00:00:00Z",
          1,
        ])
        expect(second!.vt.toISOString()).toBe("2999-01-01T00:00:00.000Z")
      },
    ],
  ],
  read_with_poll: [
    [
      "returns at once when a message is visible",
      async (expect) => {
        const name = await newQueue()
        const [id] = await sendAll(name, [{}])
        expect(ids(await sql("SELECT * FROM pgmq.read_with_poll($1, 30, 1, 5, 100)", [name]))).toEqual([id])
      },
    ],
    [
      "with max_poll_seconds = 0 returns no rows without reading, even when a message is visible (pgmq checks the deadline first)",
      async (expect) => {
        const name = await newQueue()
        await sendAll(name, [{}])
        expect(await sql("SELECT * FROM pgmq.read_with_poll($1, 30, 1, 0, 100)", [name])).toEqual([])
        expect((await sql(`SELECT read_ct FROM pgmq."q_${name}"`))[0]?.read_ct).toBe(0)
      },
    ],
    [
      "waits for a message committed while it polls",
      async (expect) => {
        const name = await newQueue()
        const polling = sql("SELECT * FROM pgmq.read_with_poll($1, 30, 1, 10, 50)", [name])
        await new Promise((r) => setTimeout(r, 300))
        const [id] = await sendAll(name, [{ late: true }])
        expect(ids(await polling)).toEqual([id])
      },
    ],
    [
      "takes vt as a timestamptz too (pgmq >= 1.12), and conditional",
      async (expect) => {
        const name = await newQueue()
        const [, b] = await sendAll(name, [{ k: 1 }, { k: 2 }])
        const rows = await sql<{ vt: Date }>(
          "SELECT * FROM pgmq.read_with_poll($1, '2999-01-01Z'::timestamptz, 5, 1, 100, '{\"k\":2}'::jsonb)",
          [name],
        )
        expect(ids(rows)).toEqual([b])
        expect(rows[0]?.vt.toISOString()).toBe("2999-01-01T00:00:00.000Z")
      },
    ],
  ],
  pop: [
    [
      "reads and deletes qty visible messages (default 1), oldest first",
      async (expect) => {
        const name = await newQueue()
        const sent = await sendAll(name, [{}, {}, {}])
        expect(ids(await sql("SELECT * FROM pgmq.pop($1)", [name]))).toEqual([sent[0]])
        expect(ids(await sql("SELECT * FROM pgmq.pop($1, 5)", [name]))).toEqual(sent.slice(1))
        expect((await sql("SELECT * FROM pgmq.metrics($1)", [name]))[0]?.queue_length).toBe("0")
      },
    ],
  ],
  set_vt: [
    [
      "set_vt(queue, msg_id, vt integer) sets vt to now + vt seconds and returns the message",
      async (expect) => {
        const name = await newQueue()
        const [id] = await sendAll(name, [{}])
        const before = await dbNow()
        const rows = await sql<{ vt: Date }>("SELECT * FROM pgmq.set_vt($1, $2::bigint, 100)", [name, id])
        expect(ids(rows)).toEqual([id])
        expect(rows[0]!.vt.getTime() - before).toBeGreaterThanOrEqual(99_000)
      },
    ],
    [
      "set_vt(queue, msg_id, vt timestamptz) sets vt to that time, even making a hidden message visible",
      async (expect) => {
        const name = await newQueue()
        const [id] = await sendAll(name, [{}])
        await sql("SELECT * FROM pgmq.read($1, 300, 1)", [name])
        await sql("SELECT * FROM pgmq.set_vt($1, $2::bigint, '2000-01-01Z'::timestamptz)", [name, id])
        expect(ids(await sql("SELECT * FROM pgmq.read($1, 30, 1)", [name]))).toEqual([id])
      },
    ],
    [
      "set_vt(queue, msg_ids[], vt) updates several messages (integer or timestamptz) and returns those that exist",
      async (expect) => {
        const name = await newQueue()
        const sent = await sendAll(name, [{}, {}, {}])
        const rows = await sql("SELECT * FROM pgmq.set_vt($1, $2::bigint[], 60)", [
          name,
          [sent[0], sent[2], 999_999],
        ])
        expect(ids(rows).sort()).toEqual([sent[0], sent[2]].sort())
        const later = await sql<{ vt: Date }>(
          "SELECT * FROM pgmq.set_vt($1, $2::bigint[], '2999-01-01Z'::timestamptz)",
          [name, sent],
        )
        expect(later.map((r) => r.vt.toISOString())).toEqual(sent.map(() => "2999-01-01T00:00:00.000Z"))
      },
    ],
    [
      "returns no rows for a message that does not exist",
      async (expect) => {
        const name = await newQueue()
        expect(await sql("SELECT * FROM pgmq.set_vt($1, 424242::bigint, 10)", [name])).toEqual([])
      },
    ],
    [
      "(awa) accepts untyped parameters, as sent by pgmq-js",
      async (expect) => {
        const name = await newQueue()
        const sent = await sendAll(name, [{}, {}])
        expect(
          ids(await sql("SELECT * FROM pgmq.set_vt($1, $2, $3)", [name, String(sent[0]), "30"])),
        ).toEqual([sent[0]])
        expect(
          ids(await sql("SELECT * FROM pgmq.set_vt($1, $2, $3)", [name, `{${sent.join(",")}}`, "30"])),
        ).toEqual(sent)
      },
    ],
  ],
  delete: [
    [
      "delete(queue, msg_id) returns whether the message existed",
      async (expect) => {
        const name = await newQueue()
        const [id] = await sendAll(name, [{}])
        expect(await sql("SELECT pgmq.delete($1, $2::bigint) AS r", [name, id])).toEqual([{ r: true }])
        expect(await sql("SELECT pgmq.delete($1, $2::bigint) AS r", [name, id])).toEqual([{ r: false }])
      },
    ],
    [
      "delete(queue, msg_ids[]) returns the ids that existed",
      async (expect) => {
        const name = await newQueue()
        const sent = await sendAll(name, [{}, {}])
        const rows = await sql<{ r: string }>("SELECT pgmq.delete($1, $2::bigint[]) AS r", [
          name,
          [...sent, 777_777],
        ])
        expect(rows.map((r) => Number(r.r)).sort()).toEqual([...sent].sort())
      },
    ],
  ],
  archive: [
    [
      "archive(queue, msg_id) moves the message with its read_ct and last_read_at to a_<queue>, setting archived_at",
      async (expect) => {
        const name = await newQueue()
        const [id] = await sendAll(name, [{ keep: true }])
        await sql("SELECT * FROM pgmq.read($1, 0, 1)", [name])
        expect(await sql("SELECT pgmq.archive($1, $2::bigint) AS r", [name, id])).toEqual([{ r: true }])
        expect(await sql("SELECT pgmq.archive($1, $2::bigint) AS r", [name, id])).toEqual([{ r: false }])
        const [row] = await sql(
          `SELECT msg_id, read_ct, last_read_at, archived_at, message FROM pgmq."a_${name}"`,
        )
        expect(row).toEqual({
          msg_id: String(id),
          read_ct: 1,
          last_read_at: expect.any(Date),
          archived_at: expect.any(Date),
          message: { keep: true },
        })
      },
    ],
    [
      "archive(queue, msg_ids[]) returns the ids that existed",
      async (expect) => {
        const name = await newQueue()
        const sent = await sendAll(name, [{}, {}])
        const rows = await sql<{ r: string }>("SELECT pgmq.archive($1, $2::bigint[]) AS r", [
          name,
          [...sent, 888_888],
        ])
        expect(rows.map((r) => Number(r.r)).sort()).toEqual([...sent].sort())
      },
    ],
  ],
  metrics: [
    [
      "reports length, visible length, ages, messages ever sent and default_partition_length (NULL without partitions)",
      async (expect) => {
        const name = await newQueue("Metrics-Q")
        const [a] = await sendAll(name, [{}, {}, {}])
        await sql("SELECT pgmq.delete($1, $2::bigint)", [name, a])
        await sql("SELECT * FROM pgmq.read($1, 60, 1)", [name])
        const [m] = await sql("SELECT * FROM pgmq.metrics($1)", [name])
        expect(m).toEqual({
          queue_name: name,
          queue_length: "2",
          newest_msg_age_sec: expect.any(Number),
          oldest_msg_age_sec: expect.any(Number),
          total_messages: "3",
          scrape_time: expect.any(Date),
          queue_visible_length: "1",
          default_partition_length: null,
        })
      },
    ],
  ],
  metrics_all: [
    [
      "returns one row per queue",
      async (expect) => {
        const name = await newQueue()
        const rows = await sql("SELECT * FROM pgmq.metrics_all() WHERE queue_name = $1", [name])
        expect(rows).toHaveLength(1)
      },
    ],
  ],
  read_grouped: [
    [
      "fills the batch from the oldest group first; messages without x-pgmq-group form one default group",
      async (expect) => {
        const name = await newQueue("Fifo")
        const sent = await sendAll(
          name,
          [{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }, { n: 5 }],
          [
            { "x-pgmq-group": "A" },
            { "x-pgmq-group": "B" },
            { "x-pgmq-group": "A" },
            undefined,
            { "x-pgmq-group": "A" },
          ],
        )
        expect(ids(await sql("SELECT * FROM pgmq.read_grouped($1, 30, 4)", [name]))).toEqual([
          sent[0],
          sent[2],
          sent[4],
          sent[1],
        ])
      },
    ],
    [
      "skips a group whose oldest message is in flight, so a group never runs out of order",
      async (expect) => {
        const name = await newQueue("Fifo")
        const sent = await sendAll(
          name,
          [{}, {}, {}],
          [{ "x-pgmq-group": "A" }, { "x-pgmq-group": "A" }, { "x-pgmq-group": "B" }],
        )
        expect(ids(await sql("SELECT * FROM pgmq.read_grouped($1, 60, 1)", [name]))).toEqual([sent[0]])
        expect(ids(await sql("SELECT * FROM pgmq.read_grouped($1, 60, 10)", [name]))).toEqual([sent[2]])
        await sql("SELECT pgmq.delete($1, $2::bigint)", [name, sent[0]])
        expect(
          ids(await sql("SELECT * FROM pgmq.read_grouped($1, '2999-01-01Z'::timestamptz, 10)", [name])),
        ).toEqual([sent[1]])
      },
    ],
  ],
  read_grouped_with_poll: [
    [
      "polls read_grouped; max_poll_seconds = 0 returns no rows",
      async (expect) => {
        const name = await newQueue("Fifo")
        const [id] = await sendAll(name, [{}], [{ "x-pgmq-group": "A" }])
        expect(await sql("SELECT * FROM pgmq.read_grouped_with_poll($1, 30, 1, 0)", [name])).toEqual([])
        expect(ids(await sql("SELECT * FROM pgmq.read_grouped_with_poll($1, 30, 1, 2, 50)", [name]))).toEqual(
          [id],
        )
        expect(await sql("SELECT * FROM pgmq.read_grouped_with_poll($1, now(), 1, 0, 50)", [name])).toEqual(
          [],
        )
      },
    ],
  ],
  read_grouped_rr: [
    [
      "takes the first message of every group, then the second of every group (groups ordered by their oldest message)",
      async (expect) => {
        const name = await newQueue("FifoRR")
        const g = (x: string) => ({ "x-pgmq-group": x })
        const sent = await sendAll(name, [{}, {}, {}, {}, {}], [g("A"), g("A"), g("B"), g("A"), g("B")])
        expect(ids(await sql("SELECT * FROM pgmq.read_grouped_rr($1, 30, 4)", [name]))).toEqual([
          sent[0],
          sent[2],
          sent[1],
          sent[4],
        ])
      },
    ],
  ],
  read_grouped_rr_with_poll: [
    [
      "polls read_grouped_rr; max_poll_seconds = 0 returns no rows",
      async (expect) => {
        const name = await newQueue("FifoRR")
        const [id] = await sendAll(name, [{}])
        expect(await sql("SELECT * FROM pgmq.read_grouped_rr_with_poll($1, 30, 1, 0)", [name])).toEqual([])
        expect(
          ids(
            await sql(
              "SELECT * FROM pgmq.read_grouped_rr_with_poll($1, clock_timestamp() + interval '30 seconds', 1, 2, 50)",
              [name],
            ),
          ),
        ).toEqual([id])
      },
    ],
  ],
  read_grouped_head: [
    [
      "reads only the oldest message of each readable group, oldest group first (pgmq >= 1.12)",
      async (expect) => {
        const name = await newQueue("FifoHead")
        const g = (x: string) => ({ "x-pgmq-group": x })
        const sent = await sendAll(name, [{}, {}, {}, {}], [g("A"), g("B"), g("A"), g("C")])
        expect(ids(await sql("SELECT * FROM pgmq.read_grouped_head($1, 30, 10)", [name]))).toEqual([
          sent[0],
          sent[1],
          sent[3],
        ])
        expect(await sql("SELECT * FROM pgmq.read_grouped_head($1, 30, 10)", [name])).toEqual([])
      },
    ],
  ],
  create_fifo_index: [
    [
      "creates index q_<queue>_fifo_idx; calling it again is a no-op",
      async (expect) => {
        const name = await newQueue()
        await sql("SELECT pgmq.create_fifo_index($1)", [name])
        await sql("SELECT pgmq.create_fifo_index($1)", [name])
        expect(await sql("SELECT to_regclass($1) IS NOT NULL AS p", [`pgmq.q_${name}_fifo_idx`])).toEqual([
          { p: true },
        ])
      },
    ],
  ],
  create_fifo_indexes_all: [
    [
      "creates the FIFO index of every queue",
      async (expect) => {
        const name = await newQueue()
        await sql("SELECT pgmq.create_fifo_indexes_all()")
        expect(await sql("SELECT to_regclass($1) IS NOT NULL AS p", [`pgmq.q_${name}_fifo_idx`])).toEqual([
          { p: true },
        ])
      },
    ],
  ],
  enable_notify_insert: [
    [
      "makes a plain pgmq.send notify channel pgmq.q_<queue name as created>.INSERT with an empty payload, on commit only",
      async (expect) => {
        const name = await newQueue("Notify-Me")
        const channel = `pgmq.q_${name}.INSERT`
        const marker = `marker_${name.toLowerCase().replace(/[^a-z0-9_]/g, "_")}`
        const listener = await Listener.on([channel, marker])
        await sql("SELECT pgmq.enable_notify_insert($1, 0)", [name])
        await inTransaction(async (c) => {
          await c.query("SELECT pgmq.send($1, '{}'::jsonb)", [name])
        }, true)
        await settle(listener, marker)
        expect(listener.count(channel)).toBe(0)
        await sql("SELECT pgmq.send($1, '{}'::jsonb)", [name])
        await listener.until(channel)
        expect(listener.received.find((n) => n.channel === channel)?.payload).toBe("")
        expect(
          await sql("SELECT tgname FROM pg_trigger WHERE tgrelid = to_regclass($1)", [
            `pgmq."q_${name.toLowerCase()}"`,
          ]),
        ).toEqual([{ tgname: "trigger_notify_queue_insert_listeners" }])
      },
    ],
    [
      "throttles: with throttle_interval_ms 0 every insert notifies; with a long interval only the first",
      async (expect) => {
        const every = await newQueue("every")
        const rare = await newQueue("rare")
        const marker = `marker_${every}`
        const listener = await Listener.on([`pgmq.q_${every}.INSERT`, `pgmq.q_${rare}.INSERT`, marker])
        await sql("SELECT pgmq.enable_notify_insert($1, 0)", [every])
        await sql("SELECT pgmq.enable_notify_insert($1, 3600000)", [rare])
        for (let i = 0; i < 3; i++) {
          await sql("SELECT pgmq.send($1, '{}'::jsonb)", [every])
          await sql("SELECT pgmq.send($1, '{}'::jsonb)", [rare])
        }
        await settle(listener, marker)
        expect(listener.count(`pgmq.q_${every}.INSERT`)).toBe(3)
        expect(listener.count(`pgmq.q_${rare}.INSERT`)).toBe(1)
      },
    ],
    [
      "uses a default throttle of 250 ms, and refuses a negative interval or a missing queue",
      async (expect) => {
        const name = await newQueue()
        await sql("SELECT pgmq.enable_notify_insert($1)", [name])
        expect(
          await sql("SELECT throttle_interval_ms FROM pgmq.notify_insert_throttle WHERE queue_name = $1", [
            name,
          ]),
        ).toEqual([{ throttle_interval_ms: 250 }])
        await expectError(expect, "SELECT pgmq.enable_notify_insert($1, -1)", [name], "22023", /non-negative/)
        await expectError(
          expect,
          "SELECT pgmq.enable_notify_insert($1)",
          [uniqueName("ghost")],
          "42P01",
          /does not exist/,
        )
      },
    ],
  ],
  disable_notify_insert: [
    [
      "stops the notifications and forgets the throttle setting",
      async (expect) => {
        const name = await newQueue()
        const channel = `pgmq.q_${name}.INSERT`
        const marker = `marker_${name}`
        const listener = await Listener.on([channel, marker])
        await sql("SELECT pgmq.enable_notify_insert($1, 0)", [name])
        await sql("SELECT pgmq.disable_notify_insert($1)", [name])
        await sql("SELECT pgmq.send($1, '{}'::jsonb)", [name])
        await settle(listener, marker)
        expect(listener.count(channel)).toBe(0)
        expect(await sql("SELECT 1 FROM pgmq.notify_insert_throttle WHERE queue_name = $1", [name])).toEqual(
          [],
        )
        await sql("SELECT pgmq.disable_notify_insert($1)", [name])
      },
    ],
  ],
  notify_queue_listeners: [
    [
      "is the trigger function enable_notify_insert installs (returns trigger)",
      async (expect) => {
        expect(
          await sql(
            "SELECT prorettype::regtype::text AS t FROM pg_proc WHERE oid = 'pgmq.notify_queue_listeners()'::regprocedure",
          ),
        ).toEqual([{ t: "trigger" }])
      },
    ],
  ],
  validate_routing_key: [
    [
      "returns true for letters, digits, dots, hyphens and underscores; refuses empty, >255, other characters and bad dots",
      async (expect) => {
        expect(await sql("SELECT pgmq.validate_routing_key('app.user-service.auth_1') AS ok")).toEqual([
          { ok: true },
        ])
        for (const [key, why] of [
          ["", /NULL or empty/],
          ["a".repeat(256), /255/],
          ["logs.error!", /invalid characters/],
          ["logs error", /invalid characters/],
          ["logs.*", /invalid characters/],
          [".logs", /start with a dot/],
          ["logs.", /end with a dot/],
          ["logs..error", /consecutive dots/],
        ] as const) {
          await expectError(expect, "SELECT pgmq.validate_routing_key($1)", [key], "22023", why)
        }
      },
    ],
  ],
  validate_topic_pattern: [
    [
      "returns true for patterns with * and #; refuses bad dots, **, ##, *# and #*",
      async (expect) => {
        for (const ok of ["logs.*", "logs.#", "*.error", "#.error", "app.*.#", "#"]) {
          expect(await sql("SELECT pgmq.validate_topic_pattern($1) AS ok", [ok])).toEqual([{ ok: true }])
        }
        for (const [pattern, why] of [
          ["", /NULL or empty/],
          [".logs.*", /start with a dot/],
          ["logs.*.", /end with a dot/],
          ["logs..error", /consecutive dots/],
          ["logs.**", /consecutive stars/],
          ["logs.##", /consecutive hashes/],
          ["logs.*#", /adjacent wildcards/],
          ["logs.error!", /invalid characters/],
        ] as const) {
          await expectError(expect, "SELECT pgmq.validate_topic_pattern($1)", [pattern], "22023", why)
        }
      },
    ],
  ],
  bind_topic: [
    [
      "binds a queue to a pattern once (binding again changes nothing) and refuses an unknown queue or bad pattern",
      async (expect) => {
        const name = await newQueue("Bound-Q")
        const p = `t${++counter}.logs.*`
        await sql("SELECT pgmq.bind_topic($1, $2)", [p, name])
        await sql("SELECT pgmq.bind_topic($1, $2)", [p, name])
        expect(await sql("SELECT pattern FROM pgmq.topic_bindings WHERE queue_name = $1", [name])).toEqual([
          { pattern: p },
        ])
        await expectError(
          expect,
          "SELECT pgmq.bind_topic($1, $2)",
          [p, uniqueName("ghost")],
          "42P01",
          /does not exist/,
        )
        await expectError(expect, "SELECT pgmq.bind_topic('a..b', $1)", [name], "22023", /consecutive dots/)
      },
    ],
  ],
  unbind_topic: [
    [
      "returns whether the binding existed",
      async (expect) => {
        const name = await newQueue()
        const p = `t${++counter}.#`
        await sql("SELECT pgmq.bind_topic($1, $2)", [p, name])
        expect(await sql("SELECT pgmq.unbind_topic($1, $2) AS r", [p, name])).toEqual([{ r: true }])
        expect(await sql("SELECT pgmq.unbind_topic($1, $2) AS r", [p, name])).toEqual([{ r: false }])
      },
    ],
  ],
  test_routing: [
    [
      "lists the bindings a key matches: * is one segment, # any number of segments",
      async (expect) => {
        const t = `t${++counter}`
        const one = await newQueue("one")
        const many = await newQueue("many")
        const err = await newQueue("err")
        await sql("SELECT pgmq.bind_topic($1, $2)", [`${t}.logs.*`, one])
        await sql("SELECT pgmq.bind_topic($1, $2)", [`${t}.logs.#`, many])
        await sql("SELECT pgmq.bind_topic($1, $2)", [`${t}.#.error`, err])
        const match = async (key: string) =>
          (await sql<{ queue_name: string }>("SELECT * FROM pgmq.test_routing($1)", [key]))
            .map((r) => r.queue_name)
            .sort()
        expect(await match(`${t}.logs.error`)).toEqual([err, many, one].sort())
        expect(await match(`${t}.logs.api.info`)).toEqual([many])
        expect(await match(`${t}.db.error`)).toEqual([err])
        expect(await match(`${t}.other`)).toEqual([])
      },
    ],
  ],
  send_topic: [
    [
      "sends to every matching queue once and returns how many; 0 when nothing matches",
      async (expect) => {
        const t = `t${++counter}`
        const a = await newQueue("topicA")
        const b = await newQueue("topicB")
        await sql("SELECT pgmq.bind_topic($1, $2)", [`${t}.*`, a])
        await sql("SELECT pgmq.bind_topic($1, $2)", [`${t}.#`, a])
        await sql("SELECT pgmq.bind_topic($1, $2)", [`${t}.#`, b])
        expect(await sql("SELECT pgmq.send_topic($1, '{\"hi\":1}'::jsonb) AS n", [`${t}.x`])).toEqual([
          { n: 2 },
        ])
        expect(await sql("SELECT pgmq.send_topic($1, '{}'::jsonb, 5) AS n", [`${t}.x`])).toEqual([{ n: 2 }])
        expect(
          await sql("SELECT pgmq.send_topic($1, '{}'::jsonb, '{\"h\":1}'::jsonb, 0) AS n", [`${t}.x`]),
        ).toEqual([{ n: 2 }])
        expect(await sql("SELECT pgmq.send_topic($1, '{}'::jsonb) AS n", [`${t}zzz.none`])).toEqual([
          { n: 0 },
        ])
        expect((await sql("SELECT * FROM pgmq.metrics($1)", [a]))[0]?.queue_length).toBe("3")
        expect((await sql("SELECT * FROM pgmq.read($1, 30, 1)", [b]))[0]?.message).toEqual({ hi: 1 })
      },
    ],
    [
      "refuses a bad routing key, a NULL message and a negative delay",
      async (expect) => {
        await expectError(
          expect,
          "SELECT pgmq.send_topic('a..b', '{}'::jsonb)",
          [],
          "22023",
          /consecutive dots/,
        )
        await expectError(
          expect,
          "SELECT pgmq.send_topic('a.b', NULL::jsonb)",
          [],
          "22023",
          /msg cannot be NULL/,
        )
        await expectError(
          expect,
          "SELECT pgmq.send_topic('a.b', '{}'::jsonb, -1)",
          [],
          "22023",
          /delay cannot be negative/,
        )
      },
    ],
  ],
  send_batch_topic: [
    [
      "sends the batch to every matching queue and returns (queue_name, msg_id) per message",
      async (expect) => {
        const t = `t${++counter}`
        const a = await newQueue("batchA")
        const b = await newQueue("batchB")
        await sql("SELECT pgmq.bind_topic($1, $2)", [`${t}.*`, a])
        await sql("SELECT pgmq.bind_topic($1, $2)", [`${t}.*`, b])
        const rows = await sql<{ queue_name: string; msg_id: string }>(
          "SELECT * FROM pgmq.send_batch_topic($1, ARRAY['{\"n\":1}','{\"n\":2}']::jsonb[])",
          [`${t}.k`],
        )
        expect(rows.map((r) => r.queue_name)).toEqual([a, a, b, b].sort())
        for (const variant of [
          "SELECT * FROM pgmq.send_batch_topic($1, ARRAY['{}']::jsonb[], ARRAY['{}']::jsonb[])",
          "SELECT * FROM pgmq.send_batch_topic($1, ARRAY['{}']::jsonb[], 5)",
          "SELECT * FROM pgmq.send_batch_topic($1, ARRAY['{}']::jsonb[], clock_timestamp())",
          "SELECT * FROM pgmq.send_batch_topic($1, ARRAY['{}']::jsonb[], ARRAY['{}']::jsonb[], 5)",
          "SELECT * FROM pgmq.send_batch_topic($1, ARRAY['{}']::jsonb[], ARRAY['{}']::jsonb[], clock_timestamp())",
        ]) {
          expect(await sql(variant, [`${t}.k`])).toHaveLength(2)
        }
        await expectError(
          expect,
          "SELECT * FROM pgmq.send_batch_topic($1, ARRAY[]::jsonb[])",
          [`${t}.k`],
          "22023",
          /at least one message/,
        )
      },
    ],
  ],
}

/**
 * Functions that lock every queue table (CREATE INDEX takes SHARE on each). Run beside the other cases, such a
 * call waits for any case's open transaction on its queue (a read_with_poll holds its queue for the whole
 * poll), and every write to that queue then queues behind the waiting lock: the polling case never saw the
 * message it sent and failed after its full poll. They run alone, after the concurrent cases.
 */
const locksEveryQueue = new Set(["create_fifo_indexes_all"])

describe.concurrent("pgmq 1.13.1 compatibility of the sql provider (split mode)", { timeout: 60_000 }, () => {
  for (const [fn, list] of Object.entries(cases)) {
    if (locksEveryQueue.has(fn)) continue
    for (const [fact, run] of list) {
      it(`${fn}: ${fact}`, ({ expect }) => run(expect))
    }
  }

  it("grants pg_monitor read access to the schema, its tables and sequences, and to queues created later", async ({
    expect,
  }) => {
    const name = await newQueue("Monitored")
    const [row] = await sql(
      `SELECT has_schema_privilege('pg_monitor', 'pgmq', 'USAGE') AS schema,
              has_table_privilege('pg_monitor', 'pgmq.meta', 'SELECT') AS meta,
              has_table_privilege('pg_monitor', format('pgmq.%I', 'q_' || lower($1)), 'SELECT') AS queue,
              has_sequence_privilege('pg_monitor', format('pgmq.%I', 'q_' || lower($1) || '_msg_id_seq'), 'SELECT') AS seq`,
      [name],
    )
    expect(row).toEqual({ schema: true, meta: true, queue: true, seq: true })
  })
})

describe("pgmq 1.13.1 functions that lock every queue (split mode, run alone)", { timeout: 60_000 }, () => {
  for (const [fn, list] of Object.entries(cases)) {
    if (!locksEveryQueue.has(fn)) continue
    for (const [fact, run] of list) {
      it(`${fn}: ${fact}`, ({ expect }) => run(expect))
    }
  }
})

describe("coverage", () => {
  it("every public function of the installed pgmq API has cases in the table", async ({ expect }) => {
    const rows = await sql<{ proname: string }>(
      "SELECT DISTINCT proname FROM pg_proc WHERE pronamespace = 'pgmq'::regnamespace AND proname NOT LIKE '\\_%' ORDER BY 1",
    )
    const untested = rows.map((r) => r.proname).filter((p) => !(p in cases))
    expect(untested).toEqual([])
  })
})

/** A pgmq-js client on the pgmq database (the split one), as an application would configure it. */
const pgmqJs = async (): Promise<Pgmq> => {
  const url = new URL(databases.pgmqUrl)
  const client = await Pgmq.new(
    {
      host: url.hostname,
      port: Number(url.port),
      user: decodeURIComponent(url.username),
      password: decodeURIComponent(url.password),
      database: url.pathname.slice(1),
      ssl: false,
      max: 2,
      // pgmq-js replaces `max` with 1000 when idleTimeoutMillis is left unset.
      idleTimeoutMillis: 10_000,
      connectionTimeoutMillis: 10_000,
    },
    // awa installs the SQL API with its migrator; there is no extension to create.
    { skipExtensionCreation: true },
  )
  pgmqClients.push(client)
  return client
}

describe.concurrent("pgmq-js runs its full API against the sql provider (split mode)", {
  timeout: 60_000,
}, () => {
  for (const base of ["Orders-EU", "snake_case", "MixedCase", "with-hyphens-2"]) {
    it(`queue ${base}: create, list, send, sendBatch, read, readBatch, setVt, pop, archive, delete, metrics, purge, detachArchive, drop`, async ({
      expect,
    }) => {
      const mq = await pgmqJs()
      const name = uniqueName(base)
      await mq.queue.create(name)
      expect((await mq.queue.list()).map((q) => q.name)).toContain(name)

      const first = await mq.msg.send(name, { n: 1 })
      const batch = await mq.msg.sendBatch(name, [{ n: 2 }, { n: 3 }, { n: 4 }])
      const delayed = await mq.msg.send(name, { later: true }, 3600)
      expect(batch).toHaveLength(3)
      expect(batch[0]).toBeGreaterThan(first)

      const one = await mq.msg.read<{ n: number }>(name, 30)
      expect(one).toMatchObject({ msgId: first, readCount: 1, message: { n: 1 } })
      const two = await mq.msg.readBatch<{ n: number }>(name, 30, 2)
      expect(two.map((m) => m.msgId)).toEqual(batch.slice(0, 2))
      expect((await mq.msg.readBatch(name, 30, 10)).map((m) => m.msgId)).toEqual([batch[2]])

      // setVt makes a read message visible again; pop then takes it.
      const reset = await mq.msg.setVt<{ n: number }>(name, first, 0)
      expect(reset?.msgId).toBe(first)
      expect((await mq.msg.pop(name))?.msgId).toBe(first)
      expect(await mq.msg.pop(name)).toBeUndefined()

      expect(await mq.msg.archive(name, batch[0]!)).toBe(true)
      expect(await mq.msg.archive(name, batch[0]!)).toBe(false)
      expect(await mq.msg.archiveBatch(name, [batch[1]!, 999_999])).toEqual([batch[1]])
      expect(await mq.msg.delete(name, batch[2]!)).toBe(true)
      expect(await mq.msg.deleteBatch(name, [batch[2]!, delayed])).toEqual([delayed])

      await mq.msg.send(name, { n: 5 })
      const metrics = await mq.queue.getMetrics(name)
      expect(metrics).toMatchObject({ queueName: name, queueLength: 1, totalMessages: 6 })
      expect((await mq.queue.getAllMetrics()).map((m) => m.queueName)).toContain(name)
      await mq.queue.purge(name)
      expect((await mq.queue.getMetrics(name)).queueLength).toBe(0)
      await mq.queue.detachArchive(name)

      await mq.queue.drop(name)
      expect((await mq.queue.list()).map((q) => q.name)).not.toContain(name)
      expect(await sql("SELECT to_regclass($1) AS t", [`pgmq."q_${name.toLowerCase()}"`])).toEqual([
        { t: null },
      ])
    })
  }

  it("createUnlogged creates an unlogged queue that works like any other", async ({ expect }) => {
    const mq = await pgmqJs()
    const name = uniqueName("Unlogged-JS")
    await mq.queue.createUnlogged(name)
    expect((await mq.queue.list()).find((q) => q.name === name)?.isUnlogged).toBe(true)
    const id = await mq.msg.send(name, { u: 1 })
    expect((await mq.msg.pop<{ u: number }>(name))?.msgId).toBe(id)
    await mq.queue.drop(name)
  })
})

describe("upgrading an installed sql provider to pgmq 1.13.1", { timeout: 120_000 }, () => {
  it("keeps queues and messages created before 0004, which then read with last_read_at and take the new API", async ({
    expect,
  }) => {
    const db = await createEmptyDatabases("single")
    try {
      // Install pgmq versions 1 to 3 only, exactly as an export would (ledger rows included).
      const [target] = renderMigrationSql({ sets: ["pgmq"], layout: "single", pgmqProvider: "sql" })
      const upToV3 = target!.files.filter((f) => !/_v0004_/.test(f.fileName))
      expect(upToV3.map((f) => f.fileName).at(-1)).toMatch(/_v0003_awa_pgmq_helpers\.sql$/)
      const client = new pg.Client({ connectionString: db.primaryUrl })
      await client.connect()
      try {
        for (const file of upToV3) await client.query(`BEGIN;\n${file.sql}\nCOMMIT;`)
        await client.query("SELECT pgmq.create('before_upgrade')")
        await client.query("SELECT pgmq.send('before_upgrade', '{\"old\":1}'::jsonb)")
        await client.query("SELECT pgmq.send('before_upgrade', '{\"old\":2}'::jsonb)")
        await client.query("SELECT * FROM pgmq.read('before_upgrade', 0, 1)")

        const report = await migrate({ databaseUrl: db.primaryUrl, sets: ["pgmq"] })
        expect(report.applied.map((a) => a.version)).toEqual([4])

        const read = await client.query("SELECT * FROM pgmq.read('before_upgrade', 30, 5)")
        expect(read.rows.map((r) => [r.message, r.read_ct, r.last_read_at instanceof Date])).toEqual([
          [{ old: 1 }, 2, true],
          [{ old: 2 }, 1, true],
        ])
        expect(
          await client.query("SELECT pgmq.archive('before_upgrade', 1::bigint) AS r").then((r) => r.rows),
        ).toEqual([{ r: true }])
        const metrics = await client.query("SELECT * FROM pgmq.metrics('before_upgrade')")
        expect(metrics.rows[0]).toMatchObject({
          queue_length: "1",
          total_messages: "2",
          default_partition_length: null,
        })
        await client.query("SELECT pgmq.create('After-Upgrade')")
        await client.query("SELECT pgmq.enable_notify_insert('before_upgrade', 0)")
        expect(
          (await client.query("SELECT pgmq.send_batch('before_upgrade', ARRAY['{}']::jsonb[])")).rowCount,
        ).toBe(1)
      } finally {
        await client.end()
      }
    } finally {
      await db.drop()
    }
  })
})
