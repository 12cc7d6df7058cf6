import { Schema } from "effect"
import { describe, expect, it } from "vitest"
import { awaChannelFor } from "../src/PgmqChannels.js"
import { awaJobIdHeader, makePgmqClient } from "../src/PgmqClient.js"
import {
  InvalidPgmqMessage,
  InvalidPgmqOptions,
  PgmqNotInstalled,
  PgmqQueueNotFound,
} from "../src/PgmqErrors.js"
import { definePgmqQueue } from "../src/PgmqQueue.js"
import { queueName, usePgmqDatabases } from "./support/pgmqDatabases.js"

const db = usePgmqDatabases("split")
const client = makePgmqClient()
const Order = Schema.Struct({ id: Schema.String, amount: Schema.Number })

const newQueue = async (prefix = "orders") => {
  const queue = definePgmqQueue({ name: queueName(prefix), message: Order })
  await client.createQueue(db.pgmq, queue)
  return queue
}

describe("PgmqClient", () => {
  it("sends to the pgmq database only, and reads, archives and deletes there", async () => {
    const queue = await newQueue()
    const id = await client.send(db.pgmq, queue, { id: "a", amount: 1 }, { headers: { trace: "t1" } })
    expect(id).toMatch(/^[0-9]+$/)
    // Split mode: the primary database has no pgmq at all.
    await expect(client.queueExists(db.primary, queue)).rejects.toBeInstanceOf(PgmqNotInstalled)
    const [read] = await client.read(db.pgmq, queue, { visibilityTimeout: "30 seconds", limit: 5 })
    expect(read).toMatchObject({
      queue: queue.name,
      msgId: id,
      readCount: 1,
      message: { id: "a", amount: 1 },
      headers: { trace: "t1" },
      awaJobId: null,
    })
    // Invisible for its visibility timeout.
    expect(await client.read(db.pgmq, queue)).toEqual([])
    expect(await client.archive(db.pgmq, queue, id)).toEqual([id])
    const archived = await db.pgmq.query(`SELECT msg_id::text FROM pgmq."a_${queue.name}"`)
    expect(archived.rows).toEqual([{ msg_id: id }])
    const second = await client.send(db.pgmq, queue, { id: "b", amount: 2 })
    expect(await client.delete(db.pgmq, queue, [second, "999999"])).toEqual([second])
    expect((await client.metrics(db.pgmq, queue)).length).toBe(0)
  })

  it("sends batches with delay and per-message headers, in input order", async () => {
    const queue = await newQueue()
    const ids = await client.sendBatch(
      db.pgmq,
      queue,
      [
        { id: "1", amount: 1 },
        { id: "2", amount: 2 },
      ],
      { headersEach: [{ n: 1 }, null], notify: false },
    )
    expect(ids).toHaveLength(2)
    const read = await client.read(db.pgmq, queue, { limit: 10 })
    expect(read.map((m) => [m.msgId, m.message.id, m.headers])).toEqual([
      [ids[0], "1", { n: 1 }],
      [ids[1], "2", null],
    ])
    const delayed = await client.sendBatch(db.pgmq, queue, [{ id: "3", amount: 3 }], { delay: "1 hour" })
    expect(await client.read(db.pgmq, queue, { limit: 10 })).toEqual([])
    const metrics = await client.metrics(db.pgmq, queue)
    expect(metrics).toMatchObject({ queue: queue.name, length: 3, totalMessages: 3 })
    expect(metrics.visibleLength).toBe(0)
    // setVisibility(0) makes the delayed message readable at once.
    expect(await client.setVisibility(db.pgmq, queue, delayed[0]!, 0)).toBeInstanceOf(Date)
    const [now] = await client.read(db.pgmq, queue)
    expect(now?.msgId).toBe(delayed[0])
    expect(await client.setVisibility(db.pgmq, queue, "987654321", 0)).toBeNull()
    expect(await client.sendBatch(db.pgmq, queue, [])).toEqual([])
  })

  it("pops: reads and deletes the oldest message", async () => {
    const queue = await newQueue()
    expect(await client.pop(db.pgmq, queue)).toBeNull()
    await client.send(db.pgmq, queue, { id: "x", amount: 9 })
    expect((await client.pop(db.pgmq, queue))?.message).toEqual({ id: "x", amount: 9 })
    expect((await client.metrics(db.pgmq, queue)).length).toBe(0)
  })

  it("sends inside the caller's transaction on the pgmq database: a rollback sends nothing", async () => {
    const queue = await newQueue()
    const tx = await db.pgmq.connect()
    try {
      await tx.query("BEGIN")
      await client.send(tx, queue, { id: "gone", amount: 1 })
      await tx.query("ROLLBACK")
      await tx.query("BEGIN")
      await client.send(tx, queue, { id: "kept", amount: 1 })
      await tx.query("COMMIT")
    } finally {
      tx.release()
    }
    expect((await client.read(db.pgmq, queue, { limit: 10 })).map((m) => m.message.id)).toEqual(["kept"])
  })

  it("reads the awa-job-id header", async () => {
    const queue = await newQueue()
    await client.send(db.pgmq, queue, { id: "j", amount: 1 }, { headers: { [awaJobIdHeader]: "42" } })
    expect((await client.read(db.pgmq, queue))[0]?.awaJobId).toBe("42")
  })

  it("refuses an invalid message on send, and sends nothing", async () => {
    const queue = await newQueue()
    const error = await client
      .sendBatch(db.pgmq, queue, [{ id: "ok", amount: 1 }, { id: 7, amount: "x" } as never])
      .catch((e: unknown) => e)
    expect(error).toBeInstanceOf(InvalidPgmqMessage)
    expect((error as InvalidPgmqMessage).phase).toBe("send")
    expect((error as InvalidPgmqMessage).message).toMatch(/Nothing was sent/)
    expect((await client.metrics(db.pgmq, queue)).totalMessages).toBe(0)
  })

  it("reports a stored message that does not decode, with the valid ones of the same read", async () => {
    const queue = await newQueue()
    await client.send(db.pgmq, queue, { id: "good", amount: 1 })
    const bad = await db.pgmq.query("SELECT pgmq.send($1, '{\"wrong\":true}'::jsonb)::text AS id", [
      queue.name,
    ])
    const error = await client.read(db.pgmq, queue, { limit: 10 }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(InvalidPgmqMessage)
    const invalid = error as InvalidPgmqMessage
    expect(invalid.phase).toBe("read")
    expect(invalid.invalid).toEqual([
      { msgId: bad.rows[0].id, issue: expect.any(String), raw: { wrong: true } },
    ])
    expect(invalid.valid).toHaveLength(1)
    expect(invalid.message).toContain(bad.rows[0].id)
  })

  it("names a missing queue, and refuses bad options before reaching the database", async () => {
    const missing = definePgmqQueue({ name: queueName("missing"), message: Order })
    await expect(client.send(db.pgmq, missing, { id: "a", amount: 1 })).rejects.toBeInstanceOf(
      PgmqQueueNotFound,
    )
    await expect(client.read(db.pgmq, missing)).rejects.toBeInstanceOf(PgmqQueueNotFound)
    const queue = await newQueue()
    await expect(client.read(db.pgmq, queue, { limit: 0 })).rejects.toBeInstanceOf(InvalidPgmqOptions)
    await expect(client.send(db.pgmq, queue, { id: "a", amount: 1 }, { delay: -1 })).rejects.toBeInstanceOf(
      InvalidPgmqOptions,
    )
    await expect(client.archive(db.pgmq, queue, "not-a-number")).rejects.toBeInstanceOf(InvalidPgmqOptions)
    expect(() => definePgmqQueue({ name: "", message: Order })).toThrow(InvalidPgmqOptions)
    expect(() => definePgmqQueue({ name: "x".repeat(48), message: Order })).toThrow(/at most 47/)
  })

  it("computes awa's channels as the SQL helpers do", async () => {
    for (const name of ["orders__email", "orders", "__x", "a__b__c"]) {
      const { rows } = await db.pgmq.query("SELECT awa_pgmq.channel_for($1) AS channel", [name])
      expect(rows[0].channel).toBe(awaChannelFor(name))
    }
  })

  it("lists queues with their metrics", async () => {
    const queue = await newQueue("listed")
    await client.send(db.pgmq, queue, { id: "m", amount: 1 })
    expect((await client.listQueues(db.pgmq)).map((q) => q.queue)).toContain(queue.name)
    const all = await client.metricsAll(db.pgmq)
    expect(all.find((m) => m.queue === queue.name)).toMatchObject({ length: 1, visibleLength: 1 })
    expect(await client.purgeQueue(db.pgmq, queue)).toBe(1)
    expect(await client.dropQueue(db.pgmq, queue)).toBe(true)
    expect(await client.queueExists(db.pgmq, queue)).toBe(false)
  })
})
