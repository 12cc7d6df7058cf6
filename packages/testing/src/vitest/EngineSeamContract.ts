/**
 * The part of the engine contract that calls the `Engine` seam directly: the attempt writes a worker makes
 * (heartbeat, release, and every write's run-lease guard), what maintenance calls (promote, findRescuable,
 * deleteRetained), and the reads workers and operators rely on (availableDepth, listQueues, queueStats).
 * A worker without maintenance that stops only when idle never reaches most of these, so without this part
 * an engine could get them all wrong and pass. Registered by `registerEngineContract`; everything here goes
 * through `Engine` methods and public admin reads, never through one engine's tables, and never sleeps
 * to move time: "later" is always a later transaction on the database clock.
 */
import { setTimeout as sleep } from "node:timers/promises"
import { defineJob } from "@awa/model/JobDefinition"
import type { JobState } from "@awa/model/JobState"
import type { AttemptRef, ClaimedJob, Engine, InsertResult, Job } from "@awa/runtime/Engine"
import { handle, JobAbortedError } from "@awa/runtime/JobHandler"
import { type Executor, toExecutor } from "@awa/runtime/PgExecutor"
import { job } from "@awa/runtime/Producer"
import { Worker } from "@awa/runtime/Worker"
import { Schema } from "effect"
import { describe, expect, it } from "vitest"
import type { AwaTestDatabase } from "./AwaTestDatabase.js"

const Task = defineJob({ kind: "seam.task", args: Schema.Struct({ n: Schema.Number }) })
const Note = defineJob({ kind: "seam.note", args: Schema.Struct({ to: Schema.String }) })

const minute = 60_000
const hour = 60 * minute

const insertedId = (result: InsertResult | undefined): string => {
  if (result?._tag !== "Inserted") throw new Error(`expected an inserted job, got ${JSON.stringify(result)}`)
  return result.id
}

/** Polls until `check` holds; the timeout is a safety net against hangs, not a timing assertion. */
const eventually = async (what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

const ref = (claimed: ClaimedJob): AttemptRef => ({ id: claimed.id, runLease: claimed.runLease })

const ids = (refs: ReadonlyArray<AttemptRef>): Array<string> => refs.map((r) => r.id)

/**
 * Registers the seam part of the contract inside the caller's `describe`, against `awa` (a fixture with a
 * fresh database per test) and its engine.
 */
export const registerEngineSeamContract = (awa: AwaTestDatabase): void => {
  const db = (): Executor => toExecutor(awa.pool)
  const engine = (): Engine => awa.engine
  const claimOne = async (queue = "default", defaultTimeoutMs = hour): Promise<ClaimedJob> => {
    const [claimed] = await engine().claim(db(), { queue, limit: 1, defaultTimeoutMs })
    if (claimed === undefined) throw new Error(`expected to claim a job from queue ${queue}, got none`)
    return claimed
  }
  const get = async (id: string): Promise<Job> => awa.admin.getJob(awa.pool, id)
  const getOrNull = async (id: string): Promise<Job | null> => engine().getJob(db(), id)
  const insert = async (n: number, options: Parameters<typeof awa.producer.insert>[3] = {}) =>
    insertedId(await awa.producer.insert(awa.pool, Task, { n }, options))

  describe("claim order and filters", () => {
    it("claims a higher priority before an older lower one, and the earlier run time within a priority", async () => {
      const now = Date.now()
      const old = await insert(1, { priority: 3, runAt: new Date(now - hour) })
      const urgent = await insert(2, { priority: 1 })
      const later = await insert(3, { priority: 2, runAt: new Date(now - minute) })
      const earlier = await insert(4, { priority: 2, runAt: new Date(now - 2 * minute) })
      const order: Array<string> = []
      for (let i = 0; i < 4; i++) order.push((await claimOne()).id)
      expect(order).toEqual([urgent, earlier, later, old])
    })

    it("claims only the kinds asked for, leaving the others available in their place", async () => {
      const task = await insert(1)
      const note = insertedId(await awa.producer.insert(awa.pool, Note, { to: "x" }))
      const none = await engine().claim(db(), {
        queue: "default",
        limit: 5,
        defaultTimeoutMs: hour,
        kinds: [],
      })
      expect(none).toEqual([])
      const notes = await engine().claim(db(), {
        queue: "default",
        limit: 5,
        defaultTimeoutMs: hour,
        kinds: ["seam.note"],
      })
      expect(notes.map((c) => c.id)).toEqual([note])
      expect((await get(task)).state).toBe("available")
      expect((await claimOne()).id).toBe(task)
    })
  })

  describe("attempt writes are guarded by the run lease", () => {
    it("releases an attempt without consuming it, and refuses a release under a stale lease", async () => {
      const id = await insert(1)
      const first = await claimOne()
      expect(first).toMatchObject({ id, attempt: 1, runLease: 1 })
      expect(ids((await engine().release(db(), [ref(first)])).applied)).toEqual([id])
      expect(await get(id)).toMatchObject({ state: "available", attempt: 0, runLease: 1 })
      const second = await claimOne()
      expect(second).toMatchObject({ id, attempt: 1, runLease: 2 })
      const stale = await engine().release(db(), [ref(first)])
      expect({ applied: ids(stale.applied), stale: ids(stale.stale) }).toEqual({ applied: [], stale: [id] })
      expect(await get(id)).toMatchObject({ state: "running", attempt: 1, runLease: 2 })
    })

    it("refuses a completion and a heartbeat under a stale lease, and a heartbeat after the attempt ended", async () => {
      const id = await insert(1)
      const first = await claimOne()
      await engine().release(db(), [ref(first)])
      const second = await claimOne()
      const fresh = await engine().heartbeat(db(), [ref(second)])
      expect({ applied: ids(fresh.applied), stale: ids(fresh.stale) }).toEqual({ applied: [id], stale: [] })
      const stale = await engine().heartbeat(db(), [ref(first)])
      expect({ applied: ids(stale.applied), stale: ids(stale.stale) }).toEqual({ applied: [], stale: [id] })
      const staleDone = await engine().complete(db(), [ref(first)])
      expect({ applied: staleDone.applied.length, stale: ids(staleDone.stale) }).toEqual({
        applied: 0,
        stale: [id],
      })
      expect(await get(id)).toMatchObject({ state: "running", runLease: 2 })
      expect(ids((await engine().complete(db(), [ref(second)])).applied)).toEqual([id])
      expect((await get(id)).state).toBe("completed")
      expect(ids((await engine().heartbeat(db(), [ref(second)])).stale)).toEqual([id])
    })

    it("refuses a retry, a cancel, a failure or a sleep under a stale lease, changing nothing", async () => {
      const id = await insert(1, { maxAttempts: 5 })
      const first = await claimOne()
      await engine().release(db(), [ref(first)])
      const second = await claimOne()
      const error = { kind: "error" as const, message: "stale writer" }
      const results = [
        await engine().retry(db(), [{ ref: ref(first), attempt: 1, delayMs: 0, error }]),
        await engine().snooze(db(), [{ ref: ref(first), delayMs: 0 }]),
        await engine().cancelAttempts(db(), [{ ref: ref(first), attempt: 1, error }]),
        await engine().fail(db(), [{ ref: ref(first), attempt: 1, error }]),
      ]
      for (const result of results) expect(ids(result.stale)).toEqual([id])
      expect(await get(id)).toMatchObject({ state: "running", runLease: 2, attempt: 1, errors: [] })
      expect(ids((await engine().complete(db(), [ref(second)])).applied)).toEqual([id])
    })

    it("makes a retry without delay available at once, recording its error", async () => {
      const id = await insert(1, { maxAttempts: 3 })
      const claimed = await claimOne()
      const error = { kind: "error" as const, message: "try again now", name: "Again" }
      expect(
        ids((await engine().retry(db(), [{ ref: ref(claimed), attempt: 1, delayMs: 0, error }])).applied),
      ).toEqual([id])
      expect(await get(id)).toMatchObject({
        state: "available",
        attempt: 1,
        errors: [{ attempt: 1, kind: "error", message: "try again now", name: "Again" }],
      })
      expect(await claimOne()).toMatchObject({ id, attempt: 2, runLease: 2 })
    })
  })

  describe("unique keys", () => {
    it("holds the key while its job is running, retryable or scheduled again, and frees it when the job fails", async () => {
      const unique = { unique: true, maxAttempts: 2 } as const
      const id = await insert(1, unique)
      const conflict = async (state: JobState) =>
        expect(await awa.producer.insert(awa.pool, Task, { n: 1 }, unique)).toMatchObject({
          _tag: "UniqueConflict",
          existingId: id,
          existingState: state,
        })
      const claimed = await claimOne()
      await conflict("running")
      const error = { kind: "error" as const, message: "later" }
      await engine().retry(db(), [{ ref: ref(claimed), attempt: 1, delayMs: hour, error }])
      await conflict("retryable")
      await awa.makeJobsDue({ ids: [id] })
      const again = await claimOne()
      await engine().snooze(db(), [{ ref: ref(again), delayMs: hour }])
      await conflict("scheduled")
      await awa.makeJobsDue({ ids: [id] })
      const last = await claimOne()
      await engine().fail(db(), [{ ref: ref(last), attempt: last.attempt, error }])
      expect((await get(id)).state).toBe("failed")
      expect(await awa.producer.insert(awa.pool, Task, { n: 1 }, unique)).toMatchObject({ _tag: "Inserted" })
    })

    it("does not cancel a finished job through its unique key", async () => {
      const id = await insert(1, { unique: true })
      const claimed = await claimOne()
      await engine().complete(db(), [ref(claimed)])
      expect(await awa.producer.cancelByUniqueKey(awa.pool, Task, { n: 1 }, { unique: true })).toBeNull()
      expect(await get(id)).toMatchObject({ state: "completed", errors: [] })
    })

    it("reports insertMany results in input order around skipped unique duplicates", async () => {
      const held = insertedId(await awa.producer.insert(awa.pool, Note, { to: "held" }, { unique: true }))
      const results = await awa.producer.insertMany(awa.pool, [
        job(Note, { to: "held" }, { unique: true }),
        job(Task, { n: 1 }),
        job(Note, { to: "fresh" }, { unique: true }),
        job(Task, { n: 2 }),
        job(Note, { to: "fresh" }, { unique: true }),
      ])
      expect(results[0]).toMatchObject({
        _tag: "UniqueConflict",
        existingId: held,
        existingState: "available",
      })
      const args = await Promise.all([1, 2, 3].map(async (i) => (await get(insertedId(results[i]))).args))
      expect(args).toEqual([{ n: 1 }, { to: "fresh" }, { n: 2 }])
      expect(results[4]).toMatchObject({ _tag: "UniqueConflict", existingId: insertedId(results[2]) })
    })
  })

  describe("reads", () => {
    it("counts a running job as running, never as available, in queue stats and available depth", async () => {
      await insert(1)
      await insert(2)
      await insert(3, { delay: "1 hour" })
      await insert(4, { queue: "other" })
      await claimOne()
      const stats = await awa.admin.queueStats(awa.pool)
      expect(stats.find((s) => s.queue === "default")?.counts).toMatchObject({
        available: 1,
        running: 1,
        scheduled: 1,
      })
      const depth = await engine().availableDepth(db())
      expect(depth.get("default")).toBe(1)
      expect(depth.get("other")).toBe(1)
      await claimOne()
      expect((await engine().availableDepth(db())).get("default") ?? 0).toBe(0)
    })

    it("lists queue settings: paused (with when) and DLQ, by queue name", async () => {
      await awa.admin.pauseQueue(awa.pool, "b-paused")
      await awa.admin.setQueueDlq(awa.pool, "a-dlq", true)
      const listed = await engine().listQueues(db())
      expect(listed.map((q) => q.queue)).toEqual(["a-dlq", "b-paused"])
      expect(listed[0]).toMatchObject({ paused: false, pausedAt: null, dlqEnabled: true })
      expect(listed[1]).toMatchObject({ paused: true, dlqEnabled: false })
      expect(listed[1]?.pausedAt).toBeInstanceOf(Date)
      await awa.admin.resumeQueue(awa.pool, "b-paused")
      expect((await engine().listQueues(db()))[1]).toMatchObject({ paused: false, pausedAt: null })
    })

    it("pages through jobs in descending order without repeating or skipping a row", async () => {
      const inserted = (
        await awa.producer.insertMany(
          awa.pool,
          Array.from({ length: 7 }, (_, n) => job(Task, { n })),
        )
      ).map(insertedId)
      const seen: Array<string> = []
      let cursor: string | null = null
      do {
        const page = await awa.admin.listJobs(
          awa.pool,
          { kind: "seam.task" },
          { order: "desc", limit: 3, ...(cursor === null ? {} : { cursor }) },
        )
        seen.push(...page.items.map((j) => j.id))
        cursor = page.nextCursor
      } while (cursor !== null)
      expect(seen).toEqual([...inserted].reverse())
    })
  })

  describe("time", () => {
    it("makes due only the queue asked for", async () => {
      const a = await insert(1, { queue: "a", delay: "1 hour" })
      const b = await insert(2, { queue: "b", delay: "1 hour" })
      expect(await awa.makeJobsDue({ queue: "a" })).toEqual([a])
      expect((await get(a)).state).toBe("available")
      expect((await get(b)).state).toBe("scheduled")
    })

    it("promotes scheduled and retryable jobs once they are due, and not before", async () => {
      const notYet = await insert(1, { delay: "1 hour" })
      const soon = await insert(2, { runAt: new Date(Date.now() + 200) })
      const retried = await insert(3, { queue: "r" })
      const claimed = await claimOne("r")
      const error = { kind: "error" as const, message: "briefly" }
      await engine().retry(db(), [{ ref: ref(claimed), attempt: 1, delayMs: 200, error }])
      expect((await get(retried)).state).toBe("retryable")
      let promoted = 0
      await eventually("both due jobs promoted", async () => {
        promoted += await engine().promote(db(), 100)
        return promoted >= 2
      })
      expect(promoted).toBe(2)
      expect((await get(soon)).state).toBe("available")
      expect(await get(retried)).toMatchObject({ state: "available", attempt: 1 })
      expect((await get(notYet)).state).toBe("scheduled")
      expect(await engine().promote(db(), 100)).toBe(0)
    })

    it("inserts a job due now as available inside a transaction that started earlier", async () => {
      const client = await awa.pool.connect()
      try {
        await client.query("BEGIN")
        await awa.producer.insert(client, Task, { n: 0 })
        // The transaction's start time is now in the past; the job below is due at the moment it is inserted.
        await sleep(25)
        const result = await awa.producer.insert(client, Task, { n: 1 }, { runAt: new Date() })
        expect(result).toMatchObject({ _tag: "Inserted", state: "available" })
        await client.query("COMMIT")
      } finally {
        client.release()
      }
    })
  })

  describe("rescue", () => {
    it("finds attempts whose heartbeat went stale, and not fresh ones", async () => {
      const id = await insert(1, { maxAttempts: 4 })
      const claimed = await claimOne()
      const request = { staleAfterMs: hour, deadlineGraceMs: hour, limit: 10 }
      expect(await engine().findRescuable(db(), request)).toEqual([])
      const found = await engine().findRescuable(db(), { ...request, staleAfterMs: 0 })
      expect(found).toEqual([
        {
          ref: ref(claimed),
          attempt: 1,
          maxAttempts: 4,
          kind: "seam.task",
          queue: "default",
          reason: "heartbeat",
        },
      ])
      // The rescue's write wins; the attempt's own completion afterwards is stale.
      const error = { kind: "rescued" as const, message: "rescued" }
      expect(
        ids((await engine().retry(db(), [{ ref: ref(claimed), attempt: 1, delayMs: hour, error }])).applied),
      ).toEqual([id])
      expect(ids((await engine().complete(db(), [ref(claimed)])).stale)).toEqual([id])
      expect(await get(id)).toMatchObject({ state: "retryable", attempt: 1 })
      expect(await engine().findRescuable(db(), { ...request, staleAfterMs: 0 })).toEqual([])
    })

    it("finds attempts past their deadline", async () => {
      const id = await insert(1)
      const claimed = await claimOne("default", 0)
      const found = await engine().findRescuable(db(), { staleAfterMs: hour, deadlineGraceMs: 0, limit: 10 })
      expect(found).toMatchObject([{ ref: { id, runLease: claimed.runLease }, reason: "deadline" }])
    })
  })

  describe("retention", () => {
    it("deletes terminal jobs past retention only, never a job that is still to run or running", async () => {
      await awa.admin.setQueueDlq(awa.pool, "dead", true)
      const error = { kind: "error" as const, message: "no" }
      const made: Record<string, string> = {}
      made.available = await insert(1)
      made.scheduled = await insert(2, { delay: "1 hour" })
      for (const [name, queue] of [
        ["running", "run"],
        ["retryable", "retry"],
        ["completed", "done"],
        ["failed", "fail"],
        ["cancelled", "cancel"],
        ["dead", "dead"],
      ] as const) {
        made[name] = await insert(3, { queue, maxAttempts: 3 })
        const claimed = await claimOne(queue)
        if (name === "retryable")
          await engine().retry(db(), [{ ref: ref(claimed), attempt: 1, delayMs: hour, error }])
        if (name === "completed") await engine().complete(db(), [ref(claimed)])
        if (name === "failed" || name === "dead")
          await engine().fail(db(), [{ ref: ref(claimed), attempt: 1, error }])
        if (name === "cancelled")
          await engine().cancelAttempts(db(), [{ ref: ref(claimed), attempt: 1, error }])
      }
      const states = async () =>
        Object.fromEntries(
          await Promise.all(
            Object.entries(made).map(async ([name, id]) => [name, (await getOrNull(id))?.state ?? null]),
          ),
        )
      const everything = {
        available: "available",
        scheduled: "scheduled",
        running: "running",
        retryable: "retryable",
        completed: "completed",
        failed: "failed",
        cancelled: "cancelled",
        dead: null,
      }
      expect(await states()).toEqual(everything)
      expect(await engine().deleteRetained(db(), { completedMs: hour, failedMs: hour, limit: 100 })).toBe(0)
      expect(await states()).toEqual(everything)
      expect(await engine().deleteRetained(db(), { completedMs: hour, failedMs: 0, limit: 100 })).toBe(2)
      expect(await states()).toEqual({ ...everything, failed: null, cancelled: null })
      // Completed history past retention may go now, or later with the engine's own storage cycle; jobs
      // still to run, running or retrying never go.
      const deleted = await engine().deleteRetained(db(), { completedMs: 0, failedMs: 0, limit: 100 })
      const after = await states()
      expect(after).toEqual({
        ...everything,
        failed: null,
        cancelled: null,
        completed: after.completed === null ? null : "completed",
      })
      expect(deleted).toBe(after.completed === null ? 1 : 0)
      expect(await awa.admin.getDlq(awa.pool, made.dead!)).toMatchObject({ id: made.dead })
    })
  })

  describe("cancel reaches a running handler", () => {
    it("fires the handler's signal with reason cancelled when an operator cancels its running job", async () => {
      const id = await insert(1)
      let started = false
      let reason: unknown
      const worker = await Worker.start({
        pool: awa.pool,
        engine: engine(),
        handlers: [
          handle(Task, async (_args, { signal }) => {
            started = true
            await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve()))
            reason = signal.reason
          }),
        ],
        pollInterval: 20,
        // Only the cancel notification can reach the handler within this test: no heartbeat finds it out.
        heartbeatInterval: "1 hour",
        maintenance: false,
      })
      try {
        await eventually("the handler to start", async () => started)
        expect(await awa.admin.cancelJob(awa.pool, id, "stop it")).toMatchObject({ id, state: "cancelled" })
        await eventually("the handler's signal", async () => reason !== undefined)
        expect(reason).toBeInstanceOf(JobAbortedError)
        expect((reason as JobAbortedError).reason).toBe("cancelled")
      } finally {
        await worker.stop({ timeout: 1000 })
      }
      expect((await get(id)).state).toBe("cancelled")
    })
  })
}
