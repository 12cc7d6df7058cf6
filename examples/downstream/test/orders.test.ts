// The pgmq side: a typed send on the pgmq database, then ingest turns the message into one awa job.
import { makePgmqClient } from "@awa/pgmq/PgmqClient"
import { PgmqIngest } from "@awa/pgmq/PgmqIngest"
import { expectInserted } from "@awa/testing"
import { useAwaDatabase } from "@awa/testing/vitest/AwaTestDatabase"
import pg from "pg"
import { afterAll, beforeAll, expect, it } from "vitest"
import { OrdersQueue, ProcessOrder } from "../src/orders.js"

// The pgmq set is installed too (on its own database when AWA_TEST_DB_MODE=split).
const awa = useAwaDatabase({ withPgmq: true })
const pgmq = makePgmqClient()
let pgmqPool: pg.Pool
beforeAll(() => {
  pgmqPool = new pg.Pool({ connectionString: awa.pgmqUrl })
})
afterAll(() => pgmqPool.end())

it("turns an order message into one job", async () => {
  await pgmq.createQueue(pgmqPool, OrdersQueue)
  const msgId = await pgmq.send(pgmqPool, OrdersQueue, { orderId: "o-1", total: 12 })
  const ingest = PgmqIngest.start({
    pgmqPool,
    primaryPool: awa.pool,
    queue: OrdersQueue,
    job: ProcessOrder,
    producer: awa.producer,
  })
  try {
    await expect
      .poll(async () => (await pgmq.metrics(pgmqPool, OrdersQueue)).length, { timeout: 15_000 })
      .toBe(0)
  } finally {
    await ingest.stop()
  }
  await expectInserted(awa.pool, ProcessOrder, {
    args: {
      source: { queue: "orders", key: `msg:${msgId}` },
      message: { orderId: "o-1", total: 12 },
      headers: null,
    },
  })
})
