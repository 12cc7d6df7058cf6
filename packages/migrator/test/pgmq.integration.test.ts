/**
 * Integration tests for the pgmq migration set (migrations/pgmq) with provider=sql: awa's
 * pgmq-compatible SQL API, driven through the real npm client `pgmq-js`, and awa's helpers in
 * schema `awa_pgmq` (send-and-notify, queue lifecycle notifications, single-message operations).
 *
 * Tests run concurrently: each one uses its own queues and filters notifications by queue, so they
 * do not observe each other.
 */
import type { TestDatabases } from "@awa/testing-src/TestDatabases.js"
import { createEmptyDatabases } from "@awa/testing-src/vitest/TestPostgres.js"
import pg from "pg"
import { Pgmq } from "pgmq-js"
import { afterAll, beforeAll, describe, type ExpectStatic, it } from "vitest"
import { migrate } from "../src/MigrateApi.js"

let databases: TestDatabases
/** Shared pool for one-off statements; tests that need a session of their own use connect(). */
let admin: pg.Pool
const clients: pg.Client[] = []
const pgmqClients: Pgmq[] = []

// A connection of an idle client that the server ends (the database dropped at teardown) reports it as an
// 'error' event; queries in flight still reject, so nothing a test asserts is hidden.
const ignoreTeardownError = (): void => {}

/** Opens a pg client on the test database; closed in afterAll. */
async function connect(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: databases.pgmqUrl })
  client.on("error", ignoreTeardownError)
  await client.connect()
  clients.push(client)
  return client
}

/** Opens a pgmq-js client on the test database; closed in afterAll. */
async function pgmqClient(max = 4): Promise<Pgmq> {
  const url = new URL(databases.pgmqUrl)
  const client = await Pgmq.new(
    {
      host: url.hostname,
      port: Number(url.port),
      user: decodeURIComponent(url.username),
      password: decodeURIComponent(url.password),
      database: url.pathname.slice(1),
      ssl: false,
      max,
      // pgmq-js replaces `max` with 1000 when idleTimeoutMillis is left unset.
      idleTimeoutMillis: 10_000,
      connectionTimeoutMillis: 10_000,
    },
    // The SQL provider is installed by the migrator, not by CREATE EXTENSION.
    { skipExtensionCreation: true },
  )
  // pgmq-js leaves its pool without an error listener: a connection ended by the database drop at teardown
  // would otherwise be an unhandled 'error' event.
  ;(client as unknown as { pool: pg.Pool }).pool.on("error", ignoreTeardownError)
  pgmqClients.push(client)
  return client
}

beforeAll(async () => {
  databases = await createEmptyDatabases("single")
  // The migrator installs the pgmq set; this server offers no pgmq extension, so it picks provider=sql.
  const report = await migrate({ databaseUrl: databases.primaryUrl, sets: ["pgmq"] })
  if (report.status[0]?.params.provider !== "sql") throw new Error("expected the sql pgmq provider")
  admin = new pg.Pool({ connectionString: databases.pgmqUrl, max: 6 })
  admin.on("error", ignoreTeardownError)
}, 120_000)

afterAll(async () => {
  await Promise.allSettled(pgmqClients.map((client) => client.close()))
  await Promise.allSettled(clients.map((client) => client.end()))
  await admin?.end()
  await databases?.drop()
}, 60_000)

/** The database's clock, so visibility checks never compare against the test host's clock. */
async function dbNow(): Promise<Date> {
  const { rows } = await admin.query<{ now: Date }>("SELECT clock_timestamp() AS now")
  return rows[0]!.now
}

/** Expects `promise` to reject with a Postgres error of the given SQLSTATE whose message matches. */
async function expectPgError(
  expect: ExpectStatic,
  promise: Promise<unknown>,
  code: string,
  message: RegExp,
): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(error, "expected the call to fail").toBeInstanceOf(Error)
  expect((error as { code?: string }).code).toBe(code)
  expect((error as Error).message).toMatch(message)
}

interface Notice {
  readonly channel: string
  readonly payload: Record<string, unknown>
}

/** Collects notifications on one LISTEN connection and waits for those matching a predicate. */
class Inbox {
  readonly received: Notice[] = []
  private constructor(readonly client: pg.Client) {
    client.on("notification", (n) => {
      this.received.push({
        channel: n.channel,
        payload: JSON.parse(n.payload ?? "null") as Record<string, unknown>,
      })
    })
  }

  static async listen(channels: readonly string[]): Promise<Inbox> {
    const client = await connect()
    const inbox = new Inbox(client)
    for (const channel of channels) await client.query(`LISTEN ${client.escapeIdentifier(channel)}`)
    return inbox
  }

  /** Waits for `count` notifications matching `match`; the deadline only guards against a hang. */
  async take(match: (n: Notice) => boolean, count = 1): Promise<Notice[]> {
    const deadline = Date.now() + 15_000
    for (;;) {
      const found = this.received.filter(match)
      if (found.length >= count) return found.slice(0, count)
      if (Date.now() > deadline) {
        throw new Error(
          `expected ${count} matching notification(s), got ${found.length}; all received: ${JSON.stringify(this.received)}`,
        )
      }
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }
}

const sentTo = (queue: string) => (n: Notice) => n.payload.event === "sent" && n.payload.queue === queue

// Generous per-test limit: a guard against hangs on a loaded machine, not a timing assertion.
describe.concurrent("pgmq set (provider=sql)", { timeout: 60_000 }, () => {
  it("applies only the files for provider=sql and installs schemas pgmq and awa_pgmq", async ({ expect }) => {
    const { rows } = await admin.query<{ nspname: string }>(
      "SELECT nspname FROM pg_namespace WHERE nspname IN ('pgmq', 'awa_pgmq') ORDER BY nspname",
    )
    expect(rows.map((r) => r.nspname)).toEqual(["awa_pgmq", "pgmq"])
    const ext = await admin.query("SELECT 1 FROM pg_extension WHERE extname = 'pgmq'")
    expect(ext.rowCount).toBe(0)
    const awa = await admin.query("SELECT 1 FROM pg_namespace WHERE nspname = 'awa'")
    expect(awa.rowCount, "the pgmq set must not touch schema awa").toBe(0)
  })

  it("runs a queue through create, send, send_batch, read, set_vt, archive, delete, pop and metrics", async ({
    expect,
  }) => {
    const mq = await pgmqClient()
    const q = "lifecycle"
    await mq.queue.create(q)
    await mq.queue.create(q) // creating an existing queue is a no-op, as in pgmq
    const listed = (await mq.queue.list()).find((queue) => queue.name === q)
    expect(listed).toMatchObject({ name: q, isPartitioned: false, isUnlogged: false })

    const id1 = await mq.msg.send(q, { n: 1 })
    const batch = await mq.msg.sendBatch(q, [{ n: 2 }, { n: 3 }, { n: 4 }, { n: 5 }])
    expect(batch).toHaveLength(4)
    expect([id1, ...batch]).toEqual([...[id1, ...batch]].sort((a, b) => a - b))
    const [id2, id3, id4, id5] = batch as [number, number, number, number]

    let metrics = await mq.queue.getMetrics(q)
    expect(metrics).toMatchObject({ queueName: q, queueLength: 5, totalMessages: 5 })

    const firstTwo = await mq.msg.readBatch<{ n: number }>(q, 30, 2)
    expect(firstTwo.map((m) => [m.msgId, m.readCount, m.message.n])).toEqual([
      [id1, 1, 1],
      [id2, 1, 2],
    ])
    const rest = await mq.msg.readBatch<{ n: number }>(q, 30, 10)
    expect(rest.map((m) => m.msgId)).toEqual([id3, id4, id5])
    expect(await mq.msg.readBatch(q, 30, 10)).toEqual([])

    const reset = await mq.msg.setVt<{ n: number }>(q, id1, 0)
    expect(reset?.msgId).toBe(id1)
    const again = await mq.msg.read<{ n: number }>(q, 30)
    expect(again).toMatchObject({ msgId: id1, readCount: 2, message: { n: 1 } })
    expect(await mq.msg.setVt(q, 987_654, 10)).toBeUndefined()

    expect(await mq.msg.archive(q, id1)).toBe(true)
    expect(await mq.msg.archive(q, id1)).toBe(false)
    expect((await mq.msg.archiveBatch(q, [id2, id3, 987_654])).sort((a, b) => a - b)).toEqual([id2, id3])
    const archived = await admin.query<{ msg_id: string; read_ct: number; message: { n: number } }>(
      `SELECT msg_id, read_ct, message FROM pgmq.a_lifecycle WHERE archived_at IS NOT NULL ORDER BY msg_id`,
    )
    expect(archived.rows.map((r) => [Number(r.msg_id), r.read_ct, r.message.n])).toEqual([
      [id1, 2, 1],
      [id2, 1, 2],
      [id3, 1, 3],
    ])

    expect(await mq.msg.delete(q, id4)).toBe(true)
    expect(await mq.msg.delete(q, id4)).toBe(false)
    expect(await mq.msg.deleteBatch(q, [id5, 987_654])).toEqual([id5])

    metrics = await mq.queue.getMetrics(q)
    expect(metrics).toMatchObject({ queueLength: 0, totalMessages: 5 })

    const [p1, p2] = (await mq.msg.sendBatch(q, [{ n: 6 }, { n: 7 }])) as [number, number]
    expect(await mq.msg.pop(q)).toMatchObject({ msgId: p1, readCount: 0, message: { n: 6 } })
    expect(await mq.msg.pop(q)).toMatchObject({ msgId: p2, message: { n: 7 } })
    expect(await mq.msg.pop(q)).toBeUndefined()

    const all = await mq.queue.getAllMetrics()
    expect(all.find((m) => m.queueName === q)).toMatchObject({ queueLength: 0, totalMessages: 7 })

    await mq.msg.sendBatch(q, [{ n: 8 }, { n: 9 }])
    await mq.queue.purge(q)
    expect((await mq.queue.getMetrics(q)).queueLength).toBe(0)

    await mq.queue.drop(q)
    expect((await mq.queue.list()).some((queue) => queue.name === q)).toBe(false)
    const tables = await admin.query(
      "SELECT 1 FROM pg_tables WHERE schemaname = 'pgmq' AND tablename LIKE '%_lifecycle'",
    )
    expect(tables.rowCount).toBe(0)
  })

  it("creates unlogged queues", async ({ expect }) => {
    const mq = await pgmqClient(1)
    await mq.queue.createUnlogged("fast_lane")
    expect((await mq.queue.list()).find((queue) => queue.name === "fast_lane")).toMatchObject({
      isUnlogged: true,
    })
    const { rows } = await admin.query<{ relpersistence: string }>(
      "SELECT relpersistence FROM pg_class WHERE oid = 'pgmq.q_fast_lane'::regclass",
    )
    expect(rows[0]?.relpersistence).toBe("u")
    const id = await mq.msg.send("fast_lane", { ok: true })
    expect((await mq.msg.pop<{ ok: boolean }>("fast_lane"))?.msgId).toBe(id)
  })

  it("keeps a read message invisible until its visibility timeout passes", async ({ expect }) => {
    const mq = await pgmqClient(1)
    const q = "visibility"
    await mq.queue.create(q)
    const id = await mq.msg.send(q, { job: "v" })

    const first = await mq.msg.read(q, 30)
    expect(first).toMatchObject({ msgId: id, readCount: 1 })
    // Hidden for 30 s: an immediate read sees nothing.
    expect(await mq.msg.readBatch(q, 30, 10)).toEqual([])

    // Shorten the timeout to 1 s and poll: every empty read happened before vt, and the message
    // comes back (once) only after vt, with read_ct incremented.
    const hidden = await mq.msg.setVt(q, id, 1)
    const vt = hidden?.vt
    expect(vt).toBeInstanceOf(Date)
    for (let attempt = 0; ; attempt++) {
      expect(attempt, "message never became visible again").toBeLessThan(300)
      const before = await dbNow()
      const batch = await mq.msg.readBatch(q, 30, 10)
      if (batch.length === 0) {
        expect(before.getTime()).toBeLessThanOrEqual(vt!.getTime())
        await new Promise((resolve) => setTimeout(resolve, 100))
        continue
      }
      const after = await dbNow()
      expect(after.getTime()).toBeGreaterThanOrEqual(vt!.getTime())
      expect(batch.map((m) => [m.msgId, m.readCount])).toEqual([[id, 2]])
      break
    }
    expect(await mq.msg.readBatch(q, 30, 10)).toEqual([])

    // A read with vt = 1 s makes the message reappear by itself.
    await mq.msg.setVt(q, id, 0)
    const short = await mq.msg.read(q, 1)
    expect(short).toMatchObject({ msgId: id, readCount: 3 })
    for (let attempt = 0; ; attempt++) {
      expect(attempt, "message never became visible again").toBeLessThan(300)
      const before = await dbNow()
      const batch = await mq.msg.readBatch(q, 30, 10)
      if (batch.length === 0) {
        expect(before.getTime()).toBeLessThanOrEqual(short!.vt.getTime())
        await new Promise((resolve) => setTimeout(resolve, 100))
        continue
      }
      expect(batch.map((m) => [m.msgId, m.readCount])).toEqual([[id, 4]])
      break
    }
  })

  it("never hands the same message to two concurrent readers", async ({ expect }) => {
    const producer = await pgmqClient(1)
    const q = "contended"
    await producer.queue.create(q)
    const sent = await producer.msg.sendBatch(
      q,
      Array.from({ length: 200 }, (_, i) => ({ i })),
    )
    expect(sent).toHaveLength(200)

    // Eight clients, each with its own connection, released together.
    const readers = await Promise.all(Array.from({ length: 8 }, () => pgmqClient(1)))
    let release!: () => void
    const start = new Promise<void>((resolve) => {
      release = resolve
    })
    const work = readers.map(async (reader) => {
      await start
      const got: number[] = []
      for (;;) {
        const batch = await reader.msg.readBatch(q, 60, 3)
        if (batch.length === 0) return got
        for (const m of batch) {
          expect(m.readCount).toBe(1)
          got.push(m.msgId)
        }
      }
    })
    release()
    const perReader = await Promise.all(work)
    const all = perReader.flat()
    expect(all).toHaveLength(200)
    expect(new Set(all).size).toBe(200)
    expect([...all].sort((a, b) => a - b)).toEqual([...sent].sort((a, b) => a - b))
    expect(await producer.msg.readBatch(q, 60, 10)).toEqual([])
  })

  it("follows pgmq's name rules: refuses $ ; -- ' and over-long names with a clear error, creates nothing", async ({
    expect,
  }) => {
    const mq = await pgmqClient(1)
    for (const name of ["semi;colon", "quote'name", "dollar$", "dash--dash"]) {
      await expectPgError(expect, mq.queue.create(name), "22023", /queue name contains invalid characters/)
    }
    await expectPgError(expect, mq.queue.create(""), "22023", /pgmq queue name must not be empty/)
    await expectPgError(expect, mq.queue.create("a".repeat(48)), "22023", /maximum length is 47 characters/)
    await expectPgError(expect, mq.msg.send("no;such", { x: 1 }), "22023", /invalid characters/)
    await expectPgError(
      expect,
      admin.query("SELECT pgmq.create_partitioned('parts')"),
      "0A000",
      /partitioned pgmq queues are not supported/,
    )
    const badMeta = await admin.query(
      "SELECT queue_name FROM pgmq.meta WHERE queue_name ~ '[$;'']|--' OR length(queue_name) > 47 OR queue_name = 'parts'",
    )
    expect(badMeta.rows).toEqual([])

    // What pgmq accepts works end to end: mixed case, hyphens, a leading digit, the longest name.
    for (const name of ["Upper-Case", "dash-name", "9lives", "q".repeat(47)]) {
      await mq.queue.create(name)
      const id = await mq.msg.send(name, { ok: 1 })
      expect((await mq.msg.pop(name))?.msgId).toBe(id)
    }
  })

  it("sends with headers and delays, in batches, and reads conditionally", async ({ expect }) => {
    const q = "variants"
    await admin.query("SELECT pgmq.create($1)", [q])
    const one = async (sql: string, params: unknown[] = []) =>
      Number((await admin.query<{ id: string }>(sql, [q, ...params])).rows[0]?.id)
    const many = async (sql: string, params: unknown[] = []) =>
      (await admin.query<{ id: string }>(sql, [q, ...params])).rows.map((r) => Number(r.id))

    const visible = [
      await one('SELECT * FROM pgmq.send($1, \'{"k":"plain"}\') AS id'),
      await one('SELECT * FROM pgmq.send($1, \'{"k":"hdr"}\', \'{"trace":"t1"}\'::jsonb) AS id'),
      ...(await many(
        'SELECT * FROM pgmq.send_batch($1, ARRAY[\'{"k":"b1"}\', \'{"k":"b2"}\']::jsonb[]) AS id',
      )),
      ...(await many(
        'SELECT * FROM pgmq.send_batch($1, ARRAY[\'{"k":"bh1"}\', \'{"k":"bh2"}\']::jsonb[], ARRAY[\'{"h":1}\', NULL]::jsonb[]) AS id',
      )),
    ]
    const delayed = [
      await one('SELECT * FROM pgmq.send($1, \'{"k":"d"}\', 3600) AS id'),
      await one(
        "SELECT * FROM pgmq.send($1, '{\"k\":\"dts\"}', clock_timestamp() + interval '1 hour') AS id",
      ),
      await one('SELECT * FROM pgmq.send($1, \'{"k":"dh"}\', \'{"h":2}\'::jsonb, 3600) AS id'),
      await one(
        "SELECT * FROM pgmq.send($1, '{\"k\":\"dhts\"}', '{\"h\":3}'::jsonb, clock_timestamp() + interval '1 hour') AS id",
      ),
      ...(await many('SELECT * FROM pgmq.send_batch($1, ARRAY[\'{"k":"bd"}\']::jsonb[], 3600) AS id')),
      ...(await many(
        "SELECT * FROM pgmq.send_batch($1, ARRAY['{\"k\":\"bdts\"}']::jsonb[], clock_timestamp() + interval '1 hour') AS id",
      )),
      ...(await many(
        'SELECT * FROM pgmq.send_batch($1, ARRAY[\'{"k":"bhd"}\']::jsonb[], ARRAY[\'{"h":4}\']::jsonb[], 3600) AS id',
      )),
    ]
    expect(new Set([...visible, ...delayed]).size).toBe(13)

    await expectPgError(
      expect,
      admin.query("SELECT * FROM pgmq.send_batch($1, ARRAY['{}', '{}']::jsonb[], ARRAY['{}']::jsonb[])", [q]),
      "22023",
      /got 2 messages but 1 headers/,
    )

    const metrics = await admin.query("SELECT queue_length, queue_visible_length FROM pgmq.metrics($1)", [q])
    expect(metrics.rows[0]).toEqual({ queue_length: "13", queue_visible_length: "6" })

    const conditional = await admin.query<{ msg_id: string; headers: unknown }>(
      'SELECT * FROM pgmq.read($1, 30, 10, \'{"k":"bh1"}\')',
      [q],
    )
    expect(conditional.rows.map((r) => [Number(r.msg_id), r.headers])).toEqual([[visible[4], { h: 1 }]])

    const read = await admin.query<{ msg_id: string; message: { k: string }; headers: unknown }>(
      "SELECT * FROM pgmq.read($1, 30, 100)",
      [q],
    )
    expect(read.rows.map((r) => [r.message.k, r.headers])).toEqual([
      ["plain", null],
      ["hdr", { trace: "t1" }],
      ["b1", null],
      ["b2", null],
      ["bh2", null],
    ])
    const stored = await admin.query<{ k: string; headers: unknown }>(
      "SELECT message->>'k' AS k, headers FROM pgmq.q_variants WHERE msg_id = ANY($1::bigint[]) ORDER BY msg_id",
      [delayed],
    )
    expect(stored.rows.map((r) => [r.k, r.headers])).toEqual([
      ["d", null],
      ["dts", null],
      ["dh", { h: 2 }],
      ["dhts", { h: 3 }],
      ["bd", null],
      ["bdts", null],
      ["bhd", { h: 4 }],
    ])
  })

  it("read_with_poll waits for a message sent meanwhile and gives up when none comes", async ({ expect }) => {
    const q = "polled"
    await admin.query("SELECT pgmq.create($1)", [q])
    const empty = await admin.query("SELECT * FROM pgmq.read_with_poll($1, 30, 1, 1, 50)", [q])
    expect(empty.rowCount).toBe(0)

    const poller = await connect()
    const pollerPid = (await poller.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid
    const polling = poller.query<{ msg_id: string; message: unknown }>(
      "SELECT * FROM pgmq.read_with_poll($1, 30, 5, 60, 50)",
      [q],
    )
    // Send only once the poller is inside read_with_poll, so it must find the message by polling.
    for (let attempt = 0; ; attempt++) {
      expect(attempt, "the poller never started").toBeLessThan(500)
      const { rowCount } = await admin.query(
        "SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state = 'active' AND query LIKE '%read_with_poll%'",
        [pollerPid],
      )
      if (rowCount === 1) break
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    const sent = await admin.query<{ id: string }>("SELECT * FROM pgmq.send($1, '{\"late\":true}') AS id", [
      q,
    ])
    const { rows } = await polling
    expect(rows.map((r) => [r.msg_id, r.message])).toEqual([[sent.rows[0]!.id, { late: true }]])
  })

  it("send_notify / send_batch_notify notify the global and the namespace channel", async ({ expect }) => {
    const inbox = await Inbox.listen(["awa_pgmq", "awa_pgmq:orders"])
    const q = "orders__email"
    await admin.query("SELECT pgmq.create($1)", [q])
    const [created] = await inbox.take((n) => n.payload.event === "queue_created" && n.payload.queue === q)
    expect(created).toEqual({
      channel: "awa_pgmq",
      payload: {
        v: 1,
        event: "queue_created",
        queue: q,
        namespace: "orders",
        is_partitioned: false,
        is_unlogged: false,
      },
    })

    const id = Number(
      (
        await admin.query<{ id: string }>("SELECT awa_pgmq.send_notify($1, $2, $3) AS id", [
          q,
          { to: "a@example.com" },
          { trace: "t" },
        ])
      ).rows[0]!.id,
    )
    const single = await inbox.take((n) => sentTo(q)(n) && (n.payload.msg_ids as number[])[0] === id, 2)
    expect(single.map((n) => n.channel).sort()).toEqual(["awa_pgmq", "awa_pgmq:orders"])
    for (const n of single) {
      expect(n.payload).toEqual({
        v: 1,
        event: "sent",
        queue: q,
        namespace: "orders",
        count: 1,
        delay: 0,
        msg_ids: [id],
        messages: [{ to: "a@example.com" }],
        headers: [{ trace: "t" }],
        truncated: false,
      })
    }
    const stored = await admin.query("SELECT message, headers FROM pgmq.q_orders__email WHERE msg_id = $1", [
      id,
    ])
    expect(stored.rows[0]).toEqual({ message: { to: "a@example.com" }, headers: { trace: "t" } })

    // Too big to inline: the ids only, flagged as truncated.
    const big = "x".repeat(10_000)
    const bigId = Number(
      (await admin.query<{ id: string }>("SELECT awa_pgmq.send_notify($1, $2) AS id", [q, { big }])).rows[0]!
        .id,
    )
    const truncated = await inbox.take(
      (n) => sentTo(q)(n) && (n.payload.msg_ids as number[] | undefined)?.[0] === bigId,
      2,
    )
    for (const n of truncated) {
      expect(n.payload).toEqual({
        v: 1,
        event: "sent",
        queue: q,
        namespace: "orders",
        count: 1,
        delay: 0,
        msg_ids: [bigId],
        truncated: true,
      })
    }

    // A batch: one notification per channel for the whole batch, messages inline in id order.
    const batchIds = (
      await admin.query<{ id: string }>(
        "SELECT * FROM awa_pgmq.send_batch_notify($1, $2::jsonb[], NULL, 5) AS id",
        [q, [JSON.stringify({ n: 1 }), JSON.stringify({ n: 2 }), JSON.stringify({ n: 3 })]],
      )
    ).rows.map((r) => Number(r.id))
    expect(batchIds).toEqual([...batchIds].sort((a, b) => a - b))
    const batch = await inbox.take((n) => sentTo(q)(n) && n.payload.count === 3, 2)
    for (const n of batch) {
      expect(n.payload).toEqual({
        v: 1,
        event: "sent",
        queue: q,
        namespace: "orders",
        count: 3,
        delay: 5,
        msg_ids: batchIds,
        messages: [{ n: 1 }, { n: 2 }, { n: 3 }],
        truncated: false,
      })
    }

    // A batch whose ids alone exceed the limit: bounds instead of ids.
    const hugeIds = (
      await admin.query<{ id: string }>(
        "SELECT * FROM awa_pgmq.send_batch_notify($1, array_fill('{}'::jsonb, ARRAY[3000])) AS id",
        [q],
      )
    ).rows.map((r) => Number(r.id))
    expect(hugeIds).toHaveLength(3000)
    const huge = await inbox.take((n) => sentTo(q)(n) && n.payload.count === 3000, 2)
    for (const n of huge) {
      expect(n.payload).toEqual({
        v: 1,
        event: "sent",
        queue: q,
        namespace: "orders",
        count: 3000,
        delay: 0,
        msg_id_min: Math.min(...hugeIds),
        msg_id_max: Math.max(...hugeIds),
        truncated: true,
      })
    }

    // No notification from a rolled-back send: the next "sent" on the namespace channel is the marker.
    const tx = await connect()
    await tx.query("BEGIN")
    await tx.query('SELECT awa_pgmq.send_notify($1, \'{"rolled":"back"}\')', [q])
    await tx.query("ROLLBACK")
    await admin.query("SELECT awa_pgmq.send_notify($1, '{\"marker\":true}')", [q])
    await inbox.take((n) => sentTo(q)(n) && JSON.stringify(n.payload.messages) === '[{"marker":true}]', 2)
    expect(inbox.received.some((n) => JSON.stringify(n.payload.messages ?? null).includes("rolled"))).toBe(
      false,
    )

    await expectPgError(
      expect,
      admin.query("SELECT awa_pgmq.send_notify('orders__missing', '{}')"),
      "42P01",
      /pgmq queue "orders__missing" does not exist/,
    )
    await expectPgError(
      expect,
      admin.query("SELECT awa_pgmq.send_notify($1, '{}', NULL, -1)", [q]),
      "22023",
      /delay must be a non-negative number of seconds/,
    )
    await expectPgError(
      expect,
      admin.query("SELECT awa_pgmq.send_batch_notify($1, ARRAY['{}']::jsonb[], ARRAY['{}', '{}']::jsonb[])", [
        q,
      ]),
      "22023",
      /got 1 messages but 2 headers/,
    )

    await admin.query("SELECT pgmq.drop_queue($1)", [q])
    const [dropped] = await inbox.take((n) => n.payload.event === "queue_dropped" && n.payload.queue === q)
    expect(dropped?.channel).toBe("awa_pgmq")
  })

  it("derives namespaces and channels from queue names", async ({ expect }) => {
    const { rows } = await admin.query<{ q: string; ns: string; channel: string }>(
      `SELECT q, awa_pgmq.namespace_of(q) AS ns, awa_pgmq.channel_for(q) AS channel
       FROM unnest(ARRAY['orders__email', 'a__b__c', 'plain', '__lead', 'trail__']) AS q`,
    )
    expect(rows.map((r) => [r.q, r.ns, r.channel])).toEqual([
      ["orders__email", "orders", "awa_pgmq:orders"],
      ["a__b__c", "a", "awa_pgmq:a"],
      ["plain", "plain", "awa_pgmq:plain"],
      ["__lead", "__lead", "awa_pgmq:__lead"],
      ["trail__", "trail", "awa_pgmq:trail"],
    ])

    // A queue without "__" is its own namespace.
    const inbox = await Inbox.listen(["awa_pgmq:solo"])
    await admin.query("SELECT pgmq.create('solo')")
    await admin.query("SELECT awa_pgmq.send_notify('solo', '{\"hi\":1}')")
    const [n] = await inbox.take(sentTo("solo"))
    expect(n).toMatchObject({
      channel: "awa_pgmq:solo",
      payload: { namespace: "solo", messages: [{ hi: 1 }] },
    })
  })

  it("reads, extends and deletes one specific message", async ({ expect }) => {
    const q = "single"
    await admin.query("SELECT pgmq.create($1)", [q])
    const ids = (
      await admin.query<{ id: string }>(
        "SELECT * FROM pgmq.send_batch($1, ARRAY['{\"n\":1}', '{\"n\":2}', '{\"n\":3}']::jsonb[]) AS id",
        [q],
      )
    ).rows.map((r) => r.id)
    const [id1, id2, id3] = ids as [string, string, string]

    const read = await admin.query<{ msg_id: string; read_ct: number; vt: Date; message: unknown }>(
      "SELECT * FROM awa_pgmq.read_message($1, $2, 30)",
      [q, id2],
    )
    expect(read.rows.map((r) => [r.msg_id, r.read_ct, r.message])).toEqual([[id2, 1, { n: 2 }]])
    expect((await admin.query("SELECT * FROM awa_pgmq.read_message($1, $2, 30)", [q, id2])).rowCount).toBe(0)
    expect((await admin.query("SELECT * FROM awa_pgmq.read_message($1, 999999, 30)", [q])).rowCount).toBe(0)
    const others = await admin.query<{ msg_id: string }>("SELECT msg_id FROM pgmq.read($1, 30, 10)", [q])
    expect(others.rows.map((r) => r.msg_id)).toEqual([id1, id3])

    const extended = await admin.query<{ msg_id: string; vt: Date }>(
      "SELECT * FROM awa_pgmq.extend_visibility($1, $2, 60)",
      [q, id2],
    )
    expect(extended.rows[0]?.vt.getTime()).toBe(read.rows[0]!.vt.getTime() + 60_000)
    expect(
      (await admin.query("SELECT * FROM awa_pgmq.extend_visibility($1, 999999, 60)", [q])).rowCount,
    ).toBe(0)

    // A row locked by another transaction is skipped, not waited for.
    await admin.query("SELECT pgmq.set_vt($1, $2::bigint, 0)", [q, id3])
    const locker = await connect()
    await locker.query("BEGIN")
    await locker.query("SELECT 1 FROM pgmq.q_single WHERE msg_id = $1 FOR UPDATE", [id3])
    expect((await admin.query("SELECT * FROM awa_pgmq.read_message($1, $2, 30)", [q, id3])).rowCount).toBe(0)
    await locker.query("ROLLBACK")
    expect((await admin.query("SELECT * FROM awa_pgmq.read_message($1, $2, 30)", [q, id3])).rowCount).toBe(1)

    expect((await admin.query("SELECT awa_pgmq.delete_message($1, $2) AS ok", [q, id2])).rows[0]).toEqual({
      ok: true,
    })
    expect((await admin.query("SELECT awa_pgmq.delete_message($1, $2) AS ok", [q, id2])).rows[0]).toEqual({
      ok: false,
    })

    for (const sql of [
      "SELECT * FROM awa_pgmq.read_message('nope', 1, 30)",
      "SELECT awa_pgmq.delete_message('nope', 1)",
      "SELECT * FROM awa_pgmq.extend_visibility('nope', 1, 30)",
    ]) {
      await expectPgError(expect, admin.query(sql), "42P01", /pgmq queue "nope" does not exist/)
    }
    await expectPgError(
      expect,
      admin.query("SELECT * FROM awa_pgmq.extend_visibility($1, $2, -5)", [q, id1]),
      "22023",
      /extra_seconds must be a non-negative number of seconds/,
    )
    await expectPgError(
      expect,
      admin.query("SELECT * FROM awa_pgmq.read_message($1, $2, -1)", [q, id1]),
      "22023",
      /vt must be a non-negative number of seconds/,
    )
  })
})
