import { defineJob } from "@awa/model/JobDefinition"
import { InvalidInsertOptions, InvalidJobArgs, JobPayloadNotSerializable } from "@awa/model/JobErrors"
import { InvalidPoolerMode } from "@awa/model/Pooler"
import { Effect, Schema } from "effect"
import { describe, expect, it } from "vitest"
import { createPool, PgExecutor, toExecutor, withTransaction } from "../src/PgExecutor.js"
import { job, makeProducer, ProducerService } from "../src/Producer.js"
import { testEngine, useAwaDatabase } from "./support/awaDatabase.js"

const db = useAwaDatabase()
const producer = makeProducer()
const Email = defineJob({ kind: "send_email", args: Schema.Struct({ to: Schema.String }), queue: "mail" })
const Any = defineJob({ kind: "any", args: Schema.Unknown })

// Reads go through the engine under test, never one engine's tables.
const storedJobs = async (limit = 10_000) =>
  (await testEngine.listJobs(toExecutor(db.pool), {}, { limit, order: "asc" })).items
const countJobs = async (): Promise<number> => (await storedJobs()).length

describe("Producer", () => {
  it("inserts one job with the definition's defaults", async () => {
    const result = await producer.insert(db.pool, Email, { to: "a@example.com" })
    expect(result._tag).toBe("Inserted")
    if (result._tag !== "Inserted") return
    expect(result.state).toBe("available")
    const stored = await testEngine.getJob(toExecutor(db.pool), result.id)
    expect(stored).toMatchObject({
      kind: "send_email",
      queue: "mail",
      args: { to: "a@example.com" },
      priority: 2,
      attempt: 0,
      maxAttempts: 25,
      runLease: 0,
      tags: [],
      metadata: {},
    })
  })

  it("inserts many jobs in one statement, in input order, with their options", async () => {
    const results = await producer.insertMany(db.pool, [
      job(Email, { to: "1" }),
      job(Email, { to: "2" }, { priority: 1, tags: ["a", "b"], metadata: { m: 1 } }),
      job(Email, { to: "3" }, { delay: "1 hour" }),
      job(Email, { to: "4" }, { runAt: new Date(Date.now() + 3_600_000), queue: "other" }),
    ])
    expect(results.map((r) => r._tag)).toEqual(["Inserted", "Inserted", "Inserted", "Inserted"])
    const ids = results.map((r) => (r._tag === "Inserted" ? r.id : ""))
    const jobs = await Promise.all(ids.map((id) => testEngine.getJob(toExecutor(db.pool), id)))
    expect(jobs.map((j) => (j?.args as { to: string } | undefined)?.to)).toEqual(["1", "2", "3", "4"])
    expect(jobs[1]).toMatchObject({ priority: 1, tags: ["a", "b"], metadata: { m: 1 } })
    expect(jobs.map((j) => j?.state)).toEqual(["available", "available", "scheduled", "scheduled"])
    expect(jobs[3]?.queue).toBe("other")
  })

  it("commits and rolls back with the caller's transaction", async () => {
    await withTransaction(db.pool, async (client) => {
      await producer.insert(client, Email, { to: "kept" })
    })
    await expect(
      withTransaction(db.pool, async (client) => {
        await producer.insert(client, Email, { to: "gone" })
        throw new Error("caller fails after enqueueing")
      }),
    ).rejects.toThrow("caller fails")
    expect((await storedJobs()).map((j) => (j.args as { to: string }).to)).toEqual(["kept"])
  })

  it("rolls back with an Effect transaction too", async () => {
    const insert = Effect.flatMap(Effect.service(ProducerService), (p) => p.insert(Email, { to: "fx" }))
    const program = PgExecutor.transaction(
      db.pool,
      insert.pipe(Effect.flatMap(() => Effect.fail("boom" as const))),
    ).pipe(Effect.provide(ProducerService.layer()))
    await expect(Effect.runPromise(program)).rejects.toBeDefined()
    expect(await countJobs()).toBe(0)
    const ok = PgExecutor.transaction(db.pool, insert).pipe(Effect.provide(ProducerService.layer()))
    const result = await Effect.runPromise(ok)
    expect(result._tag).toBe("Inserted")
    expect(await countJobs()).toBe(1)
  })

  it("bulk-inserts through COPY", async () => {
    const jobs = Array.from({ length: 2500 }, (_, i) =>
      job(Any, { i, text: 'tab\tnew\nline\\back"quote' }, { tags: ['t"1', "t\\2"], priority: (i % 4) + 1 }),
    )
    expect(await producer.insertCopy(db.pool, jobs)).toBe(2500)
    const sample = (await storedJobs(2)).map(({ args, tags, priority }) => ({ args, tags, priority }))
    expect(sample[0]).toEqual({
      args: { i: 0, text: 'tab\tnew\nline\\back"quote' },
      tags: ['t"1', "t\\2"],
      priority: 1,
    })
    expect(sample[1]?.priority).toBe(2)
  })

  it("returns a unique conflict naming the existing job, and cancelByUniqueKey frees the key", async () => {
    const first = await producer.insert(db.pool, Email, { to: "u" }, { unique: true })
    const second = await producer.insert(db.pool, Email, { to: "u" }, { unique: true })
    expect(first._tag).toBe("Inserted")
    expect(second).toMatchObject({ _tag: "UniqueConflict", existingState: "available" })
    if (first._tag !== "Inserted" || second._tag !== "UniqueConflict") return
    expect(second.existingId).toBe(first.id)
    // Different args: a different key.
    expect((await producer.insert(db.pool, Email, { to: "v" }, { unique: true }))._tag).toBe("Inserted")
    // Duplicates within one batch: the second names the first.
    const batch = await producer.insertMany(db.pool, [
      job(Email, { to: "w" }, { unique: true }),
      job(Email, { to: "x" }),
      job(Email, { to: "w" }, { unique: true }),
    ])
    expect(batch.map((r) => r._tag)).toEqual(["Inserted", "Inserted", "UniqueConflict"])
    expect(batch[2]?._tag === "UniqueConflict" && batch[0]?._tag === "Inserted" && batch[2].existingId).toBe(
      batch[0]?._tag === "Inserted" ? batch[0].id : "none",
    )
    const cancelled = await producer.cancelByUniqueKey(db.pool, Email, { to: "u" }, { unique: true })
    expect(cancelled?.id).toBe(first.id)
    expect(cancelled?.state).toBe("cancelled")
    expect((await producer.insert(db.pool, Email, { to: "u" }, { unique: true }))._tag).toBe("Inserted")
    expect(await producer.cancelByUniqueKey(db.pool, Email, { to: "nobody" }, { unique: true })).toBeNull()
  })

  it("refuses bad input with typed errors before touching the database", async () => {
    await expect(producer.insert(db.pool, Email, { to: 42 } as never)).rejects.toBeInstanceOf(InvalidJobArgs)
    await expect(producer.insert(db.pool, Email, { to: "x" }, { priority: 5 })).rejects.toBeInstanceOf(
      InvalidInsertOptions,
    )
    await expect(producer.insert(db.pool, Email, { to: "x" }, { queue: "q".repeat(200) })).rejects.toThrow(
      /queue.*1\.\.128/,
    )
    await expect(producer.insert(db.pool, Email, { to: "x" }, { delay: -1 })).rejects.toThrow(/delay/)
    await expect(producer.insert(db.pool, Any, { n: 10n })).rejects.toBeInstanceOf(JobPayloadNotSerializable)
    await expect(
      producer.insertMany(db.pool, [job(Email, { to: "ok" }), job(Email, { to: "bad" }, { priority: 0 })]),
    ).rejects.toBeInstanceOf(InvalidInsertOptions)
    await expect(producer.insertCopy(db.pool, [job(Email, { to: "u" }, { unique: true })])).rejects.toThrow(
      /insertMany/,
    )
    expect(await countJobs()).toBe(0)
  })

  it("runs without named prepared statements in pooler mode (option or pool), and refuses an unknown mode", async () => {
    // Named statements show in the session's pg_prepared_statements; in pooler mode none are made.
    const preparedOn = async (client: { query: (sql: string) => Promise<{ rows: Array<{ n: number }> }> }) =>
      (await client.query("SELECT count(*)::int AS n FROM pg_prepared_statements")).rows[0]!.n
    const client = await db.pool.connect()
    try {
      await makeProducer({ pooler: "transaction" }).insert(client, Email, { to: "a@example.com" })
      expect(await preparedOn(client)).toBe(0)
      await producer.insert(client, Email, { to: "b@example.com" })
      expect(await preparedOn(client)).toBeGreaterThan(0)
    } finally {
      client.release(true)
    }
    // A pool made for the mode carries it to its clients.
    const pooled = createPool(db.url, { pooler: "transaction", max: 2 })
    pooled.on("error", () => undefined)
    try {
      const pooledClient = await pooled.connect()
      try {
        await producer.insert(pooledClient, Email, { to: "c@example.com" })
        await producer.insert(pooled, Email, { to: "d@example.com" })
        expect(await preparedOn(pooledClient)).toBe(0)
      } finally {
        pooledClient.release()
      }
    } finally {
      await pooled.end()
    }
    expect(await countJobs()).toBe(4)
    expect(() => makeProducer({ pooler: "pgbouncer" as never })).toThrow(InvalidPoolerMode)
    expect(() => makeProducer({ pooler: "pgbouncer" as never })).toThrow(
      /Unknown pooler mode "pgbouncer" \(from makeProducer option pooler\)/,
    )
  })
})
