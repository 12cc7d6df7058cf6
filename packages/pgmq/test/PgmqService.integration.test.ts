import { PgExecutor } from "@awa/runtime/PgExecutor"
import { Effect, Schema } from "effect"
import { describe, expect, it } from "vitest"
import { makePgmqClient } from "../src/PgmqClient.js"
import { PgmqQueueNotFound } from "../src/PgmqErrors.js"
import { definePgmqQueue } from "../src/PgmqQueue.js"
import { PgmqService } from "../src/PgmqService.js"
import { queueName, usePgmqDatabases } from "./support/pgmqDatabases.js"

const db = usePgmqDatabases("split")
const Ping = Schema.Struct({ n: Schema.Number })

describe("PgmqService", () => {
  it("sends inside a transaction on the pgmq database: both commit, or neither", async () => {
    const queue = definePgmqQueue({ name: queueName("svc"), message: Ping })
    await makePgmqClient().createQueue(db.pgmq, queue)
    const sendTwo = Effect.gen(function* () {
      const pgmq = yield* PgmqService
      yield* pgmq.send(queue, { n: 1 })
      yield* pgmq.sendBatch(queue, [{ n: 2 }])
    })
    await Effect.runPromise(
      PgExecutor.transaction(db.pgmq, sendTwo).pipe(Effect.provide(PgmqService.layer())),
    )
    const failing = Effect.gen(function* () {
      yield* sendTwo
      return yield* Effect.fail("abort" as const)
    })
    const aborted = await Effect.runPromise(
      Effect.result(PgExecutor.transaction(db.pgmq, failing).pipe(Effect.provide(PgmqService.layer()))),
    )
    expect(aborted._tag).toBe("Failure")
    const read = Effect.gen(function* () {
      return yield* (yield* PgmqService).read(queue, { limit: 10 })
    })
    const messages = await Effect.runPromise(
      read.pipe(Effect.provide(PgmqService.layer()), Effect.provide(PgExecutor.layer(db.pgmq))),
    )
    expect(messages.map((m) => m.message.n)).toEqual([1, 2])
  })

  it("fails with the typed error of the client", async () => {
    const missing = definePgmqQueue({ name: queueName("svc_missing"), message: Ping })
    const result = await Effect.runPromise(
      Effect.flip(
        Effect.flatMap(Effect.service(PgmqService), (pgmq) => pgmq.metrics(missing)).pipe(
          Effect.provide(PgmqService.layer()),
          Effect.provide(PgExecutor.layer(db.pgmq)),
        ),
      ),
    )
    expect(result).toBeInstanceOf(PgmqQueueNotFound)
  })
})
