// The consumer on a split deployment: the pgmq database is not the primary, so every wake-up must come from
// a LISTEN on the pgmq database. Poll fallbacks are set to a minute where the test is about notifications.
import { Schema } from "effect"
import { describe, expect, it, onTestFinished } from "vitest"
import { latch, waitFor } from "../../runtime/test/support/wait.js"
import { awaChannelFor, pgmqInsertChannelFor } from "../src/PgmqChannels.js"
import { makePgmqClient, type PgmqMessage } from "../src/PgmqClient.js"
import { type ConsumerEvent, PgmqConsumer, type PgmqConsumerOptions } from "../src/PgmqConsumer.js"
import { InvalidPgmqOptions } from "../src/PgmqErrors.js"
import { type AnyPgmqQueue, definePgmqQueue } from "../src/PgmqQueue.js"
import { queueName, usePgmqDatabases } from "./support/pgmqDatabases.js"

const db = usePgmqDatabases("split")
const client = makePgmqClient()
const Note = Schema.Struct({ text: Schema.String })

const newQueue = async (name = queueName("notes")) => {
  const queue = definePgmqQueue({ name, message: Note })
  await client.createQueue(db.pgmq, queue)
  return queue
}

const start = <Q extends AnyPgmqQueue>(options: Omit<PgmqConsumerOptions<Q>, "pool">) => {
  const events: Array<ConsumerEvent> = []
  const consumer = PgmqConsumer.start({
    pool: db.pgmq,
    ...options,
    onEvent: (event) => events.push(event),
  })
  onTestFinished(() => consumer.stop({ timeout: 0 }))
  return { consumer, events }
}

describe("PgmqConsumer", () => {
  it("wakes on awa_pgmq.send_notify and on plain pgmq.send after enable_notify_insert, with a one-minute poll", async () => {
    // Mixed case and a hyphen, as pgmq allows; the insert channel is named after the lower-case table.
    const queue = await newQueue(`Notes-${process.pid}`)
    await db.pgmq.query("SELECT pgmq.enable_notify_insert($1)", [queue.name])
    const received: Array<PgmqMessage<{ readonly text: string }>> = []
    const { consumer, events } = start({
      queue,
      pollInterval: "1 minute",
      handler: (message) => void received.push(message),
    })
    expect(consumer.channels).toEqual([
      awaChannelFor(queue.name),
      `pgmq.q_${queue.name.toLowerCase()}.INSERT`,
      `pgmq.q_${queue.name}.INSERT`,
    ])
    await consumer.listening()
    // The first read (at start) found nothing; from here on only a notification can wake the consumer.
    await waitFor("the consumer's first empty read", () => consumer.metrics().listening)

    await db.pgmq.query("SELECT awa_pgmq.send_notify($1, $2::jsonb)", [
      queue.name,
      JSON.stringify({ text: "awa" }),
    ])
    await waitFor("the send_notify message", () => received.some((m) => m.message.text === "awa"))
    await db.pgmq.query("SELECT pgmq.send($1, $2::jsonb)", [queue.name, JSON.stringify({ text: "plain" })])
    await waitFor(
      "the plain pgmq.send message",
      () => received.some((m) => m.message.text === "plain"),
      30_000,
    )

    const woken = events.filter((e) => e.type === "woken").map((e) => (e as { channel: string }).channel)
    expect(woken).toContain(awaChannelFor(queue.name))
    expect(
      woken.some((channel) => channel.toLowerCase() === pgmqInsertChannelFor(queue.name).toLowerCase()),
    ).toBe(true)
    await waitFor("both archived", () => consumer.metrics().completed === 2)
    expect((await client.metrics(db.pgmq, queue)).length).toBe(0)
  })

  it("wakes on awa_pgmq.send_notify alone, with a one-minute poll", async () => {
    const queue = await newQueue()
    const received: Array<string> = []
    const { consumer } = start({
      queue,
      pollInterval: "1 minute",
      handler: (message) => void received.push(message.message.text),
    })
    await consumer.listening()
    await client.send(db.pgmq, queue, { text: "notified" })
    await waitFor("the notified message", () => received.includes("notified"))
    expect(consumer.metrics().notifications).toBeGreaterThanOrEqual(1)
  })

  it("wakes when a delayed send becomes visible, with a one-minute poll", async () => {
    const queue = await newQueue()
    const received: Array<string> = []
    const { consumer } = start({
      queue,
      pollInterval: "1 minute",
      handler: (message) => void received.push(message.message.text),
    })
    await consumer.listening()
    await client.send(db.pgmq, queue, { text: "later" }, { delay: "1 second" })
    await waitFor("the delayed message", () => received.includes("later"))
  })

  it("ignores sends to other queues of the same namespace", async () => {
    const namespace = queueName("shop")
    const mine = await newQueue(`${namespace}__mail`)
    const other = await newQueue(`${namespace}__sms`)
    const { consumer, events } = start({ queue: mine, pollInterval: "1 minute", handler: () => {} })
    await consumer.listening()
    await client.send(db.pgmq, other, { text: "not mine" })
    await client.send(db.pgmq, mine, { text: "mine" })
    await waitFor("mine handled", () => consumer.metrics().completed === 1)
    expect(events.filter((e) => e.type === "woken")).toHaveLength(1)
    expect((await client.metrics(db.pgmq, other)).length).toBe(1)
  })

  it("leaves a failing message to reappear after its visibility timeout, then finishes it", async () => {
    const queue = await newQueue()
    let calls = 0
    const { consumer, events } = start({
      queue,
      visibilityTimeout: "1 second",
      pollInterval: 50,
      onSuccess: "delete",
      handler: (message) => {
        calls++
        if (message.readCount === 1) throw new Error("first attempt fails")
      },
    })
    await client.send(db.pgmq, queue, { text: "retry me" })
    await waitFor("the second read to succeed", () => consumer.metrics().completed === 1)
    expect(calls).toBe(2)
    expect(events.find((e) => e.type === "failed")).toMatchObject({ readCount: 1 })
    // Deleted, not archived.
    const archived = await db.pgmq.query(`SELECT count(*)::int AS n FROM pgmq."a_${queue.name}"`)
    expect(archived.rows[0].n).toBe(0)
  })

  it("archives a message after maxReads failed reads, and an invalid message at once", async () => {
    const queue = await newQueue()
    const { consumer, events } = start({
      queue,
      visibilityTimeout: "1 second",
      pollInterval: 50,
      maxReads: 2,
      handler: () => {
        throw new Error("always fails")
      },
    })
    await client.send(db.pgmq, queue, { text: "poison" })
    await db.pgmq.query("SELECT pgmq.send($1, '{\"no\":1}'::jsonb)", [queue.name])
    await waitFor("gave up", () => consumer.metrics().gaveUp === 1)
    expect(consumer.metrics()).toMatchObject({ invalid: 1, failed: 2 })
    expect(events.find((e) => e.type === "invalid")).toMatchObject({ issue: expect.any(String) })
    const archived = await db.pgmq.query(`SELECT count(*)::int AS n FROM pgmq."a_${queue.name}"`)
    expect(archived.rows[0].n).toBe(2)
  })

  it("runs at most `concurrency` handlers at once", async () => {
    const queue = await newQueue()
    const release = latch()
    let running = 0
    let most = 0
    const { consumer } = start({
      queue,
      concurrency: 3,
      pollInterval: 20,
      handler: async () => {
        running++
        most = Math.max(most, running)
        await release.promise
        running--
      },
    })
    await client.sendBatch(
      db.pgmq,
      queue,
      Array.from({ length: 8 }, (_, i) => ({ text: `m${i}` })),
    )
    await waitFor("three running", () => running === 3)
    expect(consumer.metrics().inFlight).toBe(3)
    release.resolve()
    await waitFor("all eight", () => consumer.metrics().completed === 8)
    expect(most).toBe(3)
  })

  it("reconnects its LISTEN connection and reads what was sent meanwhile", async () => {
    const queue = await newQueue()
    const received: Array<string> = []
    const { consumer } = start({
      queue,
      pollInterval: "1 minute",
      handler: (message) => void received.push(message.message.text),
    })
    await consumer.listening()
    const pid = await consumer.listenerBackendPid()
    await db.pgmq.query("SELECT pg_terminate_backend($1)", [pid])
    await client.send(db.pgmq, queue, { text: "while away" })
    await waitFor("a new LISTEN connection", async () => {
      const next = await consumer.listenerBackendPid()
      return next !== undefined && next !== pid
    })
    await waitFor("the message sent while away", () => received.includes("while away"))
    await client.send(db.pgmq, queue, { text: "after" })
    await waitFor("the message after the reconnect", () => received.includes("after"))
  })

  it("stops within its timeout while every slot holds a handler that never returns, firing their signal", async () => {
    const queue = await newQueue()
    const signals: Array<AbortSignal> = []
    const { consumer } = start({
      queue,
      concurrency: 2,
      pollInterval: 20,
      handler: (_message, { signal }) => {
        signals.push(signal)
        return new Promise(() => {})
      },
    })
    await client.sendBatch(db.pgmq, queue, [{ text: "a" }, { text: "b" }, { text: "c" }])
    await waitFor("both slots busy", () => consumer.metrics().inFlight === 2)
    await consumer.stop({ timeout: 50 })
    expect(signals).toHaveLength(2)
    expect(signals.every((signal) => signal.aborted)).toBe(true)
    // Nothing was finished: all three are still in the queue (two invisible until their timeout passes).
    expect((await client.metrics(db.pgmq, queue)).length).toBe(3)
  })

  it("refuses bad options", () => {
    const queue = definePgmqQueue({ name: "unused", message: Note })
    expect(() => PgmqConsumer.start({ pool: db.pgmq, queue, handler: () => {}, concurrency: 0 })).toThrow(
      InvalidPgmqOptions,
    )
    expect(() => PgmqConsumer.start({ pool: db.pgmq, queue, handler: () => {}, pollInterval: 1 })).toThrow(
      /at least 10 ms/,
    )
  })
})
