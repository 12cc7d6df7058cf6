/**
 * The engine-invariant contract (architecture, section 5) as a vitest suite: enqueue, claim, complete,
 * retry, snooze, cancel, cancel by unique key, DLQ operations and admin reads behave the same under every
 * storage engine. Each engine must pass it, in `single` and `split` database mode:
 *
 * ```ts
 * // test/contract.integration.test.ts
 * import { registerEngineContract } from "@awa/testing/vitest/EngineContract"
 * registerEngineContract({ engine: "canonical", mode: "split" })
 * ```
 *
 * Everything goes through public APIs (producer, admin, worker, `@awa/testing`'s helpers built on them,
 * and the `Engine` methods themselves, every one of which is called: see `EngineSeamContract`), never
 * through SQL on one engine's tables.
 */
import { setTimeout as sleep } from "node:timers/promises"
import { defineJob } from "@awa/model/JobDefinition"
import type { JobState } from "@awa/model/JobState"
import { exponentialBackoff } from "@awa/runtime/Backoff"
import type { Engine, EngineName, InsertResult, Job } from "@awa/runtime/Engine"
import { handle } from "@awa/runtime/JobHandler"
import { cancel, fail, retryAfter, snooze } from "@awa/runtime/JobOutcome"
import { withTransaction } from "@awa/runtime/PgExecutor"
import { job } from "@awa/runtime/Producer"
import { Worker } from "@awa/runtime/Worker"
import { Schema } from "effect"
import { describe, expect, it } from "vitest"
import { expectInserted, expectManyInserted, expectNotInserted } from "../JobAssertions.js"
import { parseTestDbMode, type TestDbMode, testDbModeFromEnv } from "../TestDatabases.js"
import { resolveTestEngine } from "../TestEngine.js"
import type { WorkResult } from "../WorkOne.js"
import { useAwaDatabase } from "./AwaTestDatabase.js"
import { registerEngineSeamContract } from "./EngineSeamContract.js"

/** Options of {@link registerEngineContract}. */
export interface EngineContractOptions {
  /** The engine under test: a name (checked) or an engine (default `AWA_TEST_ENGINE`, else `canonical`). */
  readonly engine?: EngineName | Engine
  /** The database layout (default `AWA_TEST_DB_MODE`, else `single`). */
  readonly mode?: TestDbMode
}

const Email = defineJob({
  kind: "contract.email",
  args: Schema.Struct({ to: Schema.String, n: Schema.optional(Schema.Number) }),
  queue: "mail",
})
const Report = defineJob({ kind: "contract.report", args: Schema.Struct({ id: Schema.Number }) })
const Chain = defineJob({ kind: "contract.chain", args: Schema.Struct({ to: Schema.String }) })

const minute = 60_000
const hour = 60 * minute

const insertedId = (result: InsertResult | undefined): string => {
  if (result?._tag !== "Inserted") throw new Error(`expected an inserted job, got ${JSON.stringify(result)}`)
  return result.id
}

const worked = <O extends WorkResult["outcome"]>(
  result: WorkResult,
  outcome: O,
): Extract<WorkResult, { outcome: O }> => {
  if (result.outcome !== outcome) {
    throw new Error(`expected outcome ${outcome}, got ${result.outcome}: ${JSON.stringify(result)}`)
  }
  return result as Extract<WorkResult, { outcome: O }>
}

/** Polls until `check` holds; the timeout is a safety net against hangs, not a timing assertion. */
const eventually = async (what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

/**
 * Registers the whole engine-invariant contract suite (one `describe` named after the engine and mode)
 * against a freshly migrated database per test, for `options.engine` in `options.mode`. Unknown engine
 * names or modes throw at once, listing the valid values.
 */
export const registerEngineContract = (options: EngineContractOptions = {}): void => {
  const engine = resolveTestEngine(options.engine)
  const mode = parseTestDbMode(options.mode, "mode") ?? testDbModeFromEnv()

  describe(`engine contract: ${engine.name} engine, ${mode} databases`, () => {
    // A minute-long backoff without jitter: retried jobs are not due until time control makes them due.
    const backoff = exponentialBackoff({ baseMs: minute, factor: 2, jitter: 0 })
    // Registered handlers that complete every job; tests pass their own handler for other outcomes.
    const ok = [handle(Email, () => {}), handle(Report, () => {}), handle(Chain, () => {})]
    const awa = useAwaDatabase({ engine, mode, scope: "test", backoff, handlers: ok })

    it("provides a migrated database in the requested layout", () => {
      expect(awa.mode).toBe(mode)
      expect(awa.engineName).toBe(engine.name)
      if (mode === "split") expect(awa.pgmqUrl).not.toBe(awa.primaryUrl)
      else expect(awa.pgmqUrl).toBe(awa.primaryUrl)
    })

    describe("enqueue", () => {
      it("inserts a job with its options, as admin reads and assertions see it", async () => {
        const result = await awa.producer.insert(
          awa.pool,
          Email,
          { to: "ada@example.com" },
          { priority: 1, maxAttempts: 3, tags: ["welcome"], metadata: { source: "signup" } },
        )
        expect(result).toMatchObject({ _tag: "Inserted", state: "available" })
        const stored = await awa.admin.getJob(awa.pool, insertedId(result))
        expect(stored).toMatchObject({
          kind: "contract.email",
          queue: "mail",
          args: { to: "ada@example.com" },
          state: "available",
          priority: 1,
          attempt: 0,
          maxAttempts: 3,
          tags: ["welcome"],
          metadata: { source: "signup" },
          errors: [],
        })
        const found = await expectInserted(awa.pool, Email, {
          queue: "mail",
          priority: 1,
          state: "available",
          args: { to: "ada@example.com" },
        })
        expect(found.id).toBe(stored.id)
      })

      it("schedules a job with a delay or run time, and does not claim it before it is due", async () => {
        const before = Date.now()
        const delayed = insertedId(
          await awa.producer.insert(awa.pool, Report, { id: 1 }, { delay: "1 hour" }),
        )
        const runAt = new Date(before + 2 * hour)
        const timed = insertedId(await awa.producer.insert(awa.pool, Report, { id: 2 }, { runAt }))
        await expectInserted(awa.pool, Report, {
          args: { id: 1 },
          state: "scheduled",
          runAt: { from: new Date(before + hour - minute), to: new Date(Date.now() + hour + minute) },
        })
        expect((await awa.admin.getJob(awa.pool, timed)).runAt.getTime()).toBe(runAt.getTime())
        expect((await awa.workOneInQueue("default")).outcome).toBe("none")
        expect(await awa.makeJobsDue({ ids: [delayed] })).toEqual([delayed])
        const done = worked(await awa.workOne(Report), "completed")
        expect(done.job.id).toBe(delayed)
        expect((await awa.admin.getJob(awa.pool, timed)).state).toBe("scheduled")
      })

      it("inserts many jobs in one call (results in input order) and through COPY", async () => {
        const results = await awa.producer.insertMany(awa.pool, [
          job(Report, { id: 1 }),
          job(Email, { to: "b" }),
          job(Report, { id: 3 }, { delay: "1 hour" }),
        ])
        const ids = results.map(insertedId)
        expect(results.map((r) => r._tag === "Inserted" && r.state)).toEqual([
          "available",
          "available",
          "scheduled",
        ])
        expect(ids.map((id) => BigInt(id))).toEqual(
          [...ids.map((id) => BigInt(id))].sort((a, b) => (a < b ? -1 : 1)),
        )
        expect(
          await awa.producer.insertCopy(
            awa.pool,
            Array.from({ length: 5 }, (_, n) => job(Report, { id: 10 + n })),
          ),
        ).toBe(5)
        await expectManyInserted(awa.pool, [
          { kind: Report, args: { id: 1 } },
          { kind: Email, args: { to: "b" } },
          { kind: Report, args: { id: 3 }, state: "scheduled" },
          ...Array.from({ length: 5 }, (_, n) => ({
            kind: Report,
            args: { id: 10 + n },
            state: "available" as const,
          })),
        ])
      })

      it("enqueues inside the caller's transaction: visible to it, committed or rolled back with it", async () => {
        const client = await awa.pool.connect()
        try {
          await client.query("BEGIN")
          await awa.producer.insert(client, Email, { to: "rolled-back" })
          await expectInserted(client, Email, { args: { to: "rolled-back" } })
          await expectNotInserted(awa.pool, Email)
          await client.query("ROLLBACK")
          await expectNotInserted(awa.pool, Email)
          await client.query("BEGIN")
          await awa.producer.insert(client, Email, { to: "committed" })
          await client.query("COMMIT")
        } finally {
          client.release()
        }
        await expectInserted(awa.pool, Email, { args: { to: "committed" } })
        await expectNotInserted(awa.pool, Email, { args: { to: "rolled-back" } })
      })

      it("refuses a duplicate unique job with a conflict that names the job holding the key", async () => {
        const first = insertedId(await awa.producer.insert(awa.pool, Email, { to: "once" }, { unique: true }))
        const again = await awa.producer.insert(awa.pool, Email, { to: "once" }, { unique: true })
        expect(again).toMatchObject({ _tag: "UniqueConflict", existingId: first, existingState: "available" })
        worked(await awa.workOne(Email), "completed")
        // Completed jobs hold their key by default, too.
        expect(await awa.producer.insert(awa.pool, Email, { to: "once" }, { unique: true })).toMatchObject({
          _tag: "UniqueConflict",
          existingId: first,
          existingState: "completed",
        })
        expect(await awa.producer.insert(awa.pool, Email, { to: "other" }, { unique: true })).toMatchObject({
          _tag: "Inserted",
        })
      })

      it("refuses invalid args and options before anything is stored", async () => {
        await expect(
          awa.producer.insert(awa.pool, Email, { to: 42 } as unknown as { to: string }),
        ).rejects.toMatchObject({ _tag: "InvalidJobArgs" })
        await expect(
          awa.producer.insert(awa.pool, Email, { to: "x" }, { priority: 9 }),
        ).rejects.toMatchObject({
          _tag: "InvalidInsertOptions",
        })
        await expect(awa.producer.insert(awa.pool, Email, { to: "x" }, { delay: -5 })).rejects.toMatchObject({
          _tag: "InvalidInsertOptions",
        })
        await expectNotInserted(awa.pool, Email)
      })
    })

    describe("claim", () => {
      it("claims by priority, then run time, then insertion order, starting attempt 1 under lease 1", async () => {
        await awa.producer.insertMany(awa.pool, [
          job(Report, { id: 1 }, { priority: 3 }),
          job(Report, { id: 2 }, { priority: 1 }),
          job(Report, { id: 3 }, { priority: 2 }),
          job(Report, { id: 4 }, { priority: 1 }),
        ])
        const order: Array<unknown> = []
        for (let i = 0; i < 4; i++) {
          const result = worked(await awa.workOne(Report), "completed")
          expect(result.claimed).toMatchObject({ attempt: 1, runLease: 1, kind: "contract.report" })
          order.push(result.claimed.args)
        }
        expect(order).toEqual([{ id: 2 }, { id: 4 }, { id: 3 }, { id: 1 }])
        expect((await awa.workOne(Report)).outcome).toBe("none")
      })

      it("claims only from the queue asked, and nothing from a paused queue until it resumes", async () => {
        await awa.producer.insert(awa.pool, Report, { id: 1 }, { queue: "first" })
        await awa.producer.insert(awa.pool, Report, { id: 2 }, { queue: "second" })
        await awa.admin.pauseQueue(awa.pool, "second")
        expect((await awa.workOneInQueue("default")).outcome).toBe("none")
        expect((await awa.workOneInQueue("second")).outcome).toBe("none")
        expect(worked(await awa.workOneInQueue("first"), "completed").claimed.args).toEqual({ id: 1 })
        await awa.producer.insert(awa.pool, Report, { id: 3 }, { queue: "second" })
        expect((await awa.workOneInQueue("second")).outcome).toBe("none")
        await awa.admin.resumeQueue(awa.pool, "second")
        expect(worked(await awa.workOneInQueue("second"), "completed").claimed.args).toEqual({ id: 2 })
      })

      it("never hands the same job to two concurrent claims", async () => {
        await awa.producer.insertMany(
          awa.pool,
          Array.from({ length: 20 }, (_, id) => job(Report, { id })),
        )
        const results = await Promise.all(Array.from({ length: 24 }, () => awa.workOne(Report)))
        const claimedIds = results.flatMap((r) => (r.outcome === "none" ? [] : [r.claimed.id]))
        expect(new Set(claimedIds).size).toBe(claimedIds.length)
        await awa.drain()
        const page = await awa.admin.listJobs(awa.pool, { kind: "contract.report" })
        expect(page.items).toHaveLength(20)
        expect(page.items.every((j) => j.state === "completed" && j.attempt === 1 && j.runLease === 1)).toBe(
          true,
        )
      })

      it("starts a new attempt under a new run lease on every claim", async () => {
        await awa.producer.insert(awa.pool, Report, { id: 1 })
        const first = worked(
          await awa.workOne(
            handle(Report, () => {
              throw new Error("first attempt fails")
            }),
          ),
          "retried",
        )
        expect(first.claimed).toMatchObject({ attempt: 1, runLease: 1 })
        await awa.makeJobsDue()
        const second = worked(await awa.workOne(Report), "completed")
        expect(second.claimed).toMatchObject({ attempt: 2, runLease: 2 })
        expect(second.job).toMatchObject({ attempt: 2, runLease: 2, state: "completed" })
      })
    })

    describe("complete", () => {
      it("completes a job whose handler returns", async () => {
        const id = insertedId(await awa.producer.insert(awa.pool, Email, { to: "done" }))
        let seen: unknown
        const result = worked(
          await awa.workOne(
            handle(Email, (args) => {
              seen = args
            }),
          ),
          "completed",
        )
        expect(seen).toEqual({ to: "done" })
        expect(result.job).toMatchObject({ id, state: "completed", attempt: 1, errors: [] })
        expect(result.job.finalizedAt).not.toBeNull()
      })

      it("changes nothing with the outcome of an attempt that lost its job", async () => {
        const id = insertedId(await awa.producer.insert(awa.pool, Email, { to: "lost" }))
        const result = worked(
          await awa.workOne(
            handle(Email, async (_args, { job: running }) => {
              await awa.admin.cancelJob(awa.pool, running.id, "cancelled while running")
            }),
          ),
          "stale",
        )
        expect(result.operation).toBe("complete")
        expect(result.job).toMatchObject({ id, state: "cancelled" })
      })
    })

    describe("retry", () => {
      it("retries a thrown error after the backoff, recording the error", async () => {
        const before = Date.now()
        await awa.producer.insert(awa.pool, Report, { id: 1 })
        const result = worked(
          await awa.workOne(
            handle(Report, () => {
              throw new TypeError("boom")
            }),
          ),
          "retried",
        )
        expect(result.delayMs).toBe(minute)
        expect(result.job).toMatchObject({ state: "retryable", attempt: 1 })
        expect(result.job.runAt.getTime()).toBeGreaterThanOrEqual(before + minute - 5_000)
        expect(result.job.errors).toMatchObject([
          { attempt: 1, kind: "error", message: "boom", name: "TypeError" },
        ])
        expect((await awa.workOne(Report)).outcome).toBe("none")
        expect(await awa.makeJobsDue({ kind: "contract.report" })).toEqual([result.job.id])
        expect(worked(await awa.workOne(Report), "completed").job.attempt).toBe(2)
      })

      it("grows the backoff per attempt", async () => {
        await awa.producer.insert(awa.pool, Report, { id: 1 }, { maxAttempts: 4 })
        const failing = handle(Report, () => {
          throw new Error("again")
        })
        const delays: Array<number> = []
        for (let i = 0; i < 3; i++) {
          delays.push(worked(await awa.workOne(failing), "retried").delayMs)
          await awa.makeJobsDue()
        }
        expect(delays).toEqual([minute, 2 * minute, 4 * minute])
      })

      it("retries after exactly the delay a handler asks for with retryAfter", async () => {
        await awa.producer.insert(awa.pool, Report, { id: 1 })
        const result = worked(
          await awa.workOne(handle(Report, () => retryAfter("5 minutes", "rate limited"))),
          "retried",
        )
        expect(result.delayMs).toBe(5 * minute)
        expect(result.job.errors.at(-1)).toMatchObject({ attempt: 1, message: "rate limited" })
      })

      it("fails the job when its attempts are used up, keeping every error", async () => {
        await awa.producer.insert(awa.pool, Report, { id: 1 }, { maxAttempts: 2 })
        const failing = handle(Report, ({ id }) => {
          throw new Error(`failure ${id}`)
        })
        worked(await awa.workOne(failing), "retried")
        await awa.makeJobsDue()
        const result = worked(await awa.workOne(failing), "failed")
        expect(result.deadLetter).toBeNull()
        expect(result.job).toMatchObject({ state: "failed", attempt: 2 })
        expect(result.job?.errors.map((e) => [e.attempt, e.message])).toEqual([
          [1, "failure 1"],
          [2, "failure 1"],
        ])
      })

      it("records values thrown that are not errors, and carries on", async () => {
        await awa.producer.insertMany(awa.pool, [job(Report, { id: 1 }), job(Report, { id: 2 })])
        const weird = handle(Report, ({ id }) => {
          throw id === 1 ? "plain text" : { code: 42 }
        })
        const first = worked(await awa.workOne(weird), "retried")
        const second = worked(await awa.workOne(weird), "retried")
        expect(first.error.message).toContain("plain text")
        expect(second.error.message).toContain('{"code":42}')
      })
    })

    describe("snooze", () => {
      it("reschedules without consuming an attempt", async () => {
        await awa.producer.insert(awa.pool, Report, { id: 1 }, { maxAttempts: 1 })
        const snoozing = handle(Report, () => snooze("1 hour"))
        for (let i = 0; i < 3; i++) {
          const result = worked(await awa.workOne(snoozing), "snoozed")
          expect(result.delayMs).toBe(hour)
          expect(result.job).toMatchObject({ state: "scheduled", attempt: 0 })
          expect((await awa.workOne(Report)).outcome).toBe("none")
          await awa.makeJobsDue()
        }
        expect(worked(await awa.workOne(Report), "completed").job).toMatchObject({
          attempt: 1,
          maxAttempts: 1,
        })
      })
    })

    describe("cancel", () => {
      it("cancels for good when a handler asks, recording the reason", async () => {
        await awa.producer.insert(awa.pool, Report, { id: 1 })
        const result = worked(
          await awa.workOne(handle(Report, () => cancel("no longer needed"))),
          "cancelled",
        )
        expect(result.reason).toBe("no longer needed")
        expect(result.job.state).toBe("cancelled")
        expect(result.job.errors.at(-1)).toMatchObject({ message: "no longer needed" })
        expect(await awa.makeJobsDue()).toEqual([])
        expect((await awa.workOne(Report)).outcome).toBe("none")
      })

      it("fails at once when a handler calls fail, whatever attempts are left", async () => {
        await awa.producer.insert(awa.pool, Report, { id: 1 }, { maxAttempts: 5 })
        const result = worked(await awa.workOne(handle(Report, () => fail("unrecoverable"))), "failed")
        expect(result.job).toMatchObject({ state: "failed", attempt: 1 })
        expect(result.job?.errors.at(-1)).toMatchObject({ message: "unrecoverable" })
      })

      it("cancels scheduled, available and retryable jobs from admin, and refuses terminal or missing ones", async () => {
        const [available, scheduled, retrying, done] = (
          await awa.producer.insertMany(awa.pool, [
            job(Report, { id: 1 }, { queue: "a" }),
            job(Report, { id: 2 }, { delay: "1 hour" }),
            job(Report, { id: 3 }, { queue: "r" }),
            job(Report, { id: 4 }, { queue: "d" }),
          ])
        ).map(insertedId)
        worked(
          await awa.workOneInQueue("r", {
            handler: handle(Report, () => {
              throw new Error("retry me")
            }),
          }),
          "retried",
        )
        worked(await awa.workOneInQueue("d"), "completed")
        for (const id of [available!, scheduled!, retrying!]) {
          expect(await awa.admin.cancelJob(awa.pool, id, "operator says no")).toMatchObject({
            id,
            state: "cancelled",
          })
        }
        await expect(awa.admin.cancelJob(awa.pool, done!)).rejects.toMatchObject({
          _tag: "JobStateConflict",
          state: "completed",
        })
        await expect(awa.admin.cancelJob(awa.pool, "999999999")).rejects.toMatchObject({
          _tag: "JobNotFound",
        })
        expect((await awa.workOneInQueue("a")).outcome).toBe("none")
      })
    })

    describe("cancel by unique key", () => {
      it("cancels the job holding the key and frees the key; null when nothing holds it", async () => {
        const id = insertedId(await awa.producer.insert(awa.pool, Email, { to: "unique" }, { unique: true }))
        const cancelled = await awa.producer.cancelByUniqueKey(
          awa.pool,
          Email,
          { to: "unique" },
          { unique: true },
        )
        expect(cancelled).toMatchObject({ id, state: "cancelled" })
        expect(await awa.producer.insert(awa.pool, Email, { to: "unique" }, { unique: true })).toMatchObject({
          _tag: "Inserted",
        })
        expect(
          await awa.producer.cancelByUniqueKey(awa.pool, Email, { to: "nobody" }, { unique: true }),
        ).toBeNull()
      })

      it("computes the key from the same unique options as the insert", async () => {
        const byQueue = { unique: { byQueue: true }, queue: "q1" } as const
        const id = insertedId(await awa.producer.insert(awa.pool, Email, { to: "scoped" }, byQueue))
        expect(
          await awa.producer.cancelByUniqueKey(
            awa.pool,
            Email,
            { to: "scoped" },
            { unique: { byQueue: true }, queue: "q2" },
          ),
        ).toBeNull()
        expect(
          await awa.producer.cancelByUniqueKey(awa.pool, Email, { to: "scoped" }, byQueue),
        ).toMatchObject({ id })
      })
    })

    describe("dead-letter queue", () => {
      const exhaust = handle(Report, () => {
        throw new Error("gives up")
      })

      it("moves an exhausted job to the DLQ when its queue has one, keeping its errors", async () => {
        await awa.admin.setQueueDlq(awa.pool, "default", true)
        const id = insertedId(await awa.producer.insert(awa.pool, Report, { id: 1 }, { maxAttempts: 1 }))
        const result = worked(await awa.workOne(exhaust), "failed")
        expect(result.job).toBeNull()
        expect(result.deadLetter).toMatchObject({ id, kind: "contract.report", queue: "default", attempt: 1 })
        expect(result.deadLetter?.reason).toContain("gives up")
        expect(result.deadLetter?.errors.map((e) => e.message)).toEqual(["gives up"])
        await expect(awa.admin.getJob(awa.pool, id)).rejects.toMatchObject({ _tag: "JobNotFound" })
        expect(await awa.admin.getDlq(awa.pool, id)).toMatchObject({ id, args: { id: 1 } })
        expect((await awa.admin.listDlq(awa.pool, { queue: "default" })).items.map((d) => d.id)).toEqual([id])
        const stats = await awa.admin.queueStats(awa.pool)
        expect(stats.find((s) => s.queue === "default")).toMatchObject({ deadLettered: 1, dlqEnabled: true })
      })

      it("dead-letters a job a handler fails on purpose", async () => {
        await awa.admin.setQueueDlq(awa.pool, "default", true)
        const id = insertedId(await awa.producer.insert(awa.pool, Report, { id: 1 }))
        const result = worked(await awa.workOne(handle(Report, () => fail("poison"))), "failed")
        expect(result.deadLetter).toMatchObject({ id, reason: "poison" })
      })

      it("brings a job back from the DLQ with a fresh attempt count", async () => {
        await awa.admin.setQueueDlq(awa.pool, "default", true)
        const id = insertedId(await awa.producer.insert(awa.pool, Report, { id: 1 }, { maxAttempts: 1 }))
        worked(await awa.workOne(exhaust), "failed")
        expect(await awa.admin.retryDlq(awa.pool, { id })).toEqual([id])
        expect(await awa.admin.getJob(awa.pool, id)).toMatchObject({ state: "available", attempt: 0 })
        expect((await awa.admin.listDlq(awa.pool)).items).toEqual([])
        expect(worked(await awa.workOne(Report), "completed").job).toMatchObject({ id, attempt: 1 })
      })

      it("needs a filter for bulk DLQ operations, and purges by kind or queue", async () => {
        await awa.admin.setQueueDlq(awa.pool, "default", true)
        await awa.admin.setQueueDlq(awa.pool, "mail", true)
        await awa.producer.insertMany(awa.pool, [
          job(Report, { id: 1 }, { maxAttempts: 1 }),
          job(Report, { id: 2 }, { maxAttempts: 1 }),
          job(Email, { to: "x" }, { maxAttempts: 1 }),
        ])
        await awa.drain({
          handlers: [
            exhaust,
            handle(Email, () => {
              throw new Error("mail down")
            }),
          ],
          queues: ["default", "mail"],
        })
        await expect(awa.admin.retryDlq(awa.pool, {})).rejects.toMatchObject({ _tag: "FilterRequired" })
        await expect(awa.admin.purgeDlq(awa.pool, {})).rejects.toMatchObject({ _tag: "FilterRequired" })
        expect(await awa.admin.purgeDlq(awa.pool, { kind: "contract.report" })).toBe(2)
        expect((await awa.admin.retryDlq(awa.pool, { queue: "mail" })).length).toBe(1)
        expect((await awa.admin.listDlq(awa.pool)).items).toEqual([])
        await expectInserted(awa.pool, Email, { state: "available", args: { to: "x" } })
      })

      it("pages through the DLQ by id, each entry once", async () => {
        await awa.admin.setQueueDlq(awa.pool, "default", true)
        await awa.producer.insertMany(
          awa.pool,
          [1, 2, 3].map((n) => job(Report, { id: n }, { maxAttempts: 1 })),
        )
        await awa.drain({ handlers: [exhaust] })
        const all = (await awa.admin.listDlq(awa.pool)).items.map((d) => d.id)
        expect(all).toHaveLength(3)
        const seen: Array<string> = []
        let cursor: string | undefined
        for (let page = 0; page < 5; page++) {
          const next = await awa.admin.listDlq(
            awa.pool,
            {},
            { limit: 1, ...(cursor === undefined ? {} : { cursor }) },
          )
          seen.push(...next.items.map((d) => d.id))
          if (next.nextCursor === null) break
          cursor = next.nextCursor
        }
        expect(seen).toEqual(all)
      })

      it("leaves exhausted jobs failed in their queue when it has no DLQ", async () => {
        const id = insertedId(await awa.producer.insert(awa.pool, Report, { id: 1 }, { maxAttempts: 1 }))
        const result = worked(await awa.workOne(exhaust), "failed")
        expect(result.deadLetter).toBeNull()
        expect(result.job).toMatchObject({ id, state: "failed" })
        expect((await awa.admin.listDlq(awa.pool)).items).toEqual([])
      })
    })

    describe("admin reads and repairs", () => {
      it("counts jobs exactly per queue and state, with DLQ sizes and settings", async () => {
        await awa.producer.insertMany(awa.pool, [
          job(Report, { id: 1 }),
          job(Report, { id: 2 }),
          job(Report, { id: 3 }, { delay: "1 hour" }),
          job(Report, { id: 4 }, { queue: "work" }),
          job(Report, { id: 5 }, { queue: "work" }),
          job(Report, { id: 6 }, { queue: "work" }),
          job(Report, { id: 7 }, { queue: "work" }),
          job(Report, { id: 8 }, { queue: "held" }),
        ])
        worked(await awa.workOneInQueue("work"), "completed")
        worked(
          await awa.workOneInQueue("work", {
            handler: handle(Report, () => {
              throw new Error("later")
            }),
          }),
          "retried",
        )
        worked(await awa.workOneInQueue("work", { handler: handle(Report, () => fail("no")) }), "failed")
        worked(await awa.workOneInQueue("work", { handler: handle(Report, () => cancel("no")) }), "cancelled")
        await awa.admin.pauseQueue(awa.pool, "held")
        const zero = {
          scheduled: 0,
          available: 0,
          running: 0,
          completed: 0,
          retryable: 0,
          failed: 0,
          cancelled: 0,
        }
        const stats = await awa.admin.queueStats(awa.pool)
        expect(stats.map((s) => s.queue)).toEqual(["default", "held", "work"])
        expect(stats[0]).toMatchObject({
          counts: { ...zero, available: 2, scheduled: 1 },
          deadLettered: 0,
          paused: false,
        })
        expect(stats[1]).toMatchObject({ counts: { ...zero, available: 1 }, paused: true })
        expect(stats[2]).toMatchObject({
          counts: { ...zero, completed: 1, retryable: 1, failed: 1, cancelled: 1 },
          dlqEnabled: false,
        })
      })

      it("reads one job, and says JobNotFound for a missing one", async () => {
        const id = insertedId(await awa.producer.insert(awa.pool, Email, { to: "read" }))
        expect(await awa.admin.getJob(awa.pool, id)).toMatchObject({ id, kind: "contract.email" })
        await expect(awa.admin.getJob(awa.pool, "987654321")).rejects.toMatchObject({ _tag: "JobNotFound" })
      })

      it("lists jobs by queue, kind, states and tag, with keyset pagination in both orders", async () => {
        const ids = (
          await awa.producer.insertMany(awa.pool, [
            ...Array.from({ length: 5 }, (_, id) =>
              job(Report, { id }, { tags: id % 2 === 0 ? ["even"] : [] }),
            ),
            job(Email, { to: "e" }),
            job(Report, { id: 9 }, { delay: "1 hour", queue: "later" }),
          ])
        ).map(insertedId)
        const reports = ids.slice(0, 5)
        const first = await awa.admin.listJobs(
          awa.pool,
          { kind: "contract.report", queue: "default" },
          { limit: 2 },
        )
        expect(first.items.map((j) => j.id)).toEqual(reports.slice(0, 2))
        const second = await awa.admin.listJobs(
          awa.pool,
          { kind: "contract.report", queue: "default" },
          { limit: 2, cursor: first.nextCursor! },
        )
        const third = await awa.admin.listJobs(
          awa.pool,
          { kind: "contract.report", queue: "default" },
          { limit: 2, cursor: second.nextCursor! },
        )
        expect([...second.items, ...third.items].map((j) => j.id)).toEqual(reports.slice(2))
        expect(third.nextCursor).toBeNull()
        const desc = await awa.admin.listJobs(
          awa.pool,
          { kind: "contract.report" },
          { order: "desc", limit: 3 },
        )
        expect(desc.items.map((j) => j.id)).toEqual([ids[6], ids[4], ids[3]])
        expect((await awa.admin.listJobs(awa.pool, { tag: "even" })).items.map((j) => j.id)).toEqual([
          ids[0],
          ids[2],
          ids[4],
        ])
        expect(
          (await awa.admin.listJobs(awa.pool, { states: ["scheduled"] })).items.map((j) => j.id),
        ).toEqual([ids[6]])
        expect((await awa.admin.listJobs(awa.pool, { queue: "mail" })).items.map((j) => j.id)).toEqual([
          ids[5],
        ])
      })

      it("runs a failed job again with a fresh attempt count, and refuses an available one", async () => {
        const id = insertedId(await awa.producer.insert(awa.pool, Report, { id: 1 }, { maxAttempts: 1 }))
        await expect(awa.admin.retryJob(awa.pool, id)).rejects.toMatchObject({ _tag: "JobStateConflict" })
        worked(await awa.workOne(handle(Report, () => fail("first time"))), "failed")
        expect(await awa.admin.retryJob(awa.pool, id)).toMatchObject({ id, state: "available", attempt: 0 })
        expect(worked(await awa.workOne(Report), "completed").job).toMatchObject({ id, attempt: 1 })
      })
    })

    describe("time control and clean-up", () => {
      it("makes due only the jobs within the window asked, keeping their attempts", async () => {
        const [soon, late] = (
          await awa.producer.insertMany(awa.pool, [
            job(Report, { id: 1 }, { delay: "5 minutes" }),
            job(Report, { id: 2 }, { delay: "2 hours" }),
          ])
        ).map(insertedId)
        expect(await awa.makeJobsDue({ within: "10 minutes" })).toEqual([soon])
        const states = await Promise.all(
          [soon!, late!].map(async (id) => (await awa.admin.getJob(awa.pool, id)).state),
        )
        expect(states).toEqual<Array<JobState>>(["available", "scheduled"])
      })

      it("cleans a queue: its jobs and DLQ entries go, unique keys are released, other queues stay", async () => {
        await awa.admin.setQueueDlq(awa.pool, "mail", true)
        await awa.producer.insert(awa.pool, Email, { to: "held" }, { unique: true })
        await awa.producer.insert(awa.pool, Email, { to: "dead" }, { maxAttempts: 1 })
        await awa.producer.insert(awa.pool, Report, { id: 1 })
        worked(await awa.workOne(Email), "completed")
        worked(await awa.workOne(handle(Email, () => fail("dead"))), "failed")
        expect(await awa.cleanQueue("mail")).toEqual({ jobs: 1, deadLettered: 1 })
        await expectNotInserted(awa.pool, Email)
        expect(await awa.producer.insert(awa.pool, Email, { to: "held" }, { unique: true })).toMatchObject({
          _tag: "Inserted",
        })
        await expectInserted(awa.pool, Report, { state: "available" })
      })

      it("drains queues until idle, following jobs that handlers enqueue", async () => {
        await awa.producer.insertMany(awa.pool, [job(Chain, { to: "a" }), job(Chain, { to: "b" })])
        const seen: Array<string> = []
        const result = await awa.drain({
          handlers: [
            handle(Chain, async ({ to }) => {
              await awa.producer.insert(awa.pool, Email, { to })
            }),
            handle(Email, ({ to }) => {
              seen.push(to)
            }),
          ],
        })
        expect(result.counts).toMatchObject({ completed: 4, retried: 0 })
        expect(seen.sort()).toEqual(["a", "b"])
        expect((await awa.drain({ handlers: ok })).results).toEqual([])
      })
    })

    describe("worker", () => {
      it("completes enqueued jobs with a started worker on this engine", async () => {
        await awa.producer.insertMany(
          awa.pool,
          Array.from({ length: 30 }, (_, id) => job(Report, { id })),
        )
        const seen = new Set<number>()
        const worker = await Worker.start({
          pool: awa.pool,
          engine,
          handlers: [handle(Report, ({ id }) => void seen.add(id))],
          pollInterval: 20,
          maintenance: false,
        })
        try {
          await eventually("30 completed jobs", async () => {
            const stats = await awa.admin.queueStats(awa.pool)
            return stats.find((s) => s.queue === "default")?.counts.completed === 30
          })
        } finally {
          await worker.stop({ timeout: 1000 })
        }
        expect(seen.size).toBe(30)
        const jobs: ReadonlyArray<Job> = (await awa.admin.listJobs(awa.pool, { kind: "contract.report" }))
          .items
        expect(jobs.every((j) => j.attempt === 1)).toBe(true)
      })

      it("enqueues and works inside one transaction that rolls back, leaving nothing", async () => {
        await expect(
          withTransaction(awa.pool, async (client) => {
            await awa.producer.insert(client, Report, { id: 1 })
            const result = await awa.workOne(Report)
            // The pool cannot see the uncommitted job; a client in the transaction can.
            expect(result.outcome).toBe("none")
            throw new Error("roll back")
          }),
        ).rejects.toThrow("roll back")
        await expectNotInserted(awa.pool, Report)
      })
    })

    describe("engine seam", () => registerEngineSeamContract(awa))
  })
}
