// What a worker does when the data it must write, the caller's backoff, a late handler or a hung write would
// otherwise leave jobs stuck in `running`.
import { defineJob } from "@awa/model/JobDefinition"
import { Schema } from "effect"
import pg from "pg"
import { describe, expect, it, onTestFinished } from "vitest"
import { makeAdmin } from "../src/Admin.js"
import type { Job } from "../src/Engine.js"
import { handle } from "../src/JobHandler.js"
import { snooze } from "../src/JobOutcome.js"
import { job, makeProducer } from "../src/Producer.js"
import { Worker, type WorkerOptions } from "../src/Worker.js"
import { useAwaDatabase } from "./support/awaDatabase.js"
import { engineMechanics } from "./support/engineMechanics.js"
import { recordEvents } from "./support/events.js"
import { latch, waitFor } from "./support/wait.js"

const db = useAwaDatabase()
const producer = makeProducer()
const admin = makeAdmin()
const Task = defineJob({ kind: "task", args: Schema.Struct({ n: Schema.Number }), maxAttempts: 1 })

const startWorker = async (options: Partial<WorkerOptions> & Pick<WorkerOptions, "handlers">) => {
  const worker = await Worker.start({ pool: db.pool, pollInterval: 20, maintenance: false, ...options })
  onTestFinished(() => worker.stop({ timeout: 100 }))
  return worker
}

const insertedId = (result: Awaited<ReturnType<typeof producer.insert>>): string => {
  if (result._tag !== "Inserted") throw new Error(`expected an insert, got ${result._tag}`)
  return result.id
}
const insertTasks = async (count: number): Promise<Array<string>> =>
  (
    await producer.insertMany(
      db.pool,
      Array.from({ length: count }, (_, n) => job(Task, { n })),
    )
  ).map(insertedId)
const jobOf = (id: string): Promise<Job> => admin.getJob(db.pool, id)
const settled = (ids: ReadonlyArray<string>) => async () => {
  const jobs = await Promise.all(ids.map(jobOf))
  return jobs.every((j) => j.state !== "running" && j.state !== "available") ? jobs : undefined
}

describe("Worker resilience", () => {
  it("records whatever a handler throws, even text Postgres cannot store", async () => {
    const thrown: Array<unknown> = [
      new Error("bad\u0000byte"),
      // Cut at the message limit in the middle of a surrogate pair.
      new Error(`${"x".repeat(3999)}😀tail`),
      Object.assign(new Error("replaced"), { message: null, name: 42 }),
      "lone \uD800 surrogate",
    ]
    const ids = await insertTasks(thrown.length)
    await startWorker({
      handlers: [
        handle(Task, ({ n }) => {
          throw thrown[n]
        }),
      ],
    })
    const jobs = await waitFor("every job failed", settled(ids))
    expect(jobs.map((j) => j.state)).toEqual(["failed", "failed", "failed", "failed"])
    expect(jobs.map((j) => j.errors[0]?.message)).toEqual([
      "bad\uFFFDbyte",
      `${"x".repeat(3999)}…`,
      "null",
      "lone \uFFFD surrogate",
    ])
    expect(jobs[2]?.errors[0]?.name).toBe("42")
  })

  it("replaces a backoff that gives no usable delay by the default one, and says so", async () => {
    const Retried = defineJob({ kind: "retried", args: Schema.Struct({}), maxAttempts: 3 })
    const id = insertedId(await producer.insert(db.pool, Retried, {}))
    const table = [0] // one entry: attempt 2 reads past its end
    const worker = await startWorker({
      backoff: (attempt) => table[attempt - 1] as number,
      handlers: [
        handle(Retried, () => {
          throw new Error("try again")
        }),
      ],
    })
    const log = recordEvents(worker)
    await waitFor("attempt 2 failed", async () => {
      const j = await jobOf(id)
      return j.state === "retryable" && j.attempt === 2
    })
    const j = await jobOf(id)
    // The default backoff waits 0.8 to 1 s after attempt 2 (1 s, less up to 20% jitter).
    expect(j.runAt.getTime() - (j.attemptedAt?.getTime() ?? 0)).toBeGreaterThanOrEqual(800)
    const [warning] = log.ofType("error")
    expect(warning?.context).toBe("backoff")
    expect(String(warning?.error)).toMatch(
      /backoff gave undefined for attempt 2; the default backoff was used/,
    )
  })

  it("fails only the job whose outcome the database refuses; its batch is written", async () => {
    const ids = await insertTasks(5)
    const worker = await startWorker({
      flushInterval: 50,
      // Job 3 asks for a run time past Postgres's last timestamp (317,000 years out); the others snooze an hour.
      handlers: [handle(Task, ({ n }) => snooze(n === 3 ? 10 ** 16 : "1 hour"))],
    })
    const log = recordEvents(worker)
    const jobs = await waitFor("every job written", settled(ids))
    expect(jobs.map((j) => j.state)).toEqual(["scheduled", "scheduled", "scheduled", "failed", "scheduled"])
    expect(jobs[3]?.errors.at(-1)).toMatchObject({ kind: "failed", name: "OutcomeRefused" })
    expect(jobs[3]?.errors.at(-1)?.message).toMatch(
      /refused to record this attempt's snooze outcome, so the job failed instead: .*out of range.*SQLSTATE 22008/,
    )
    expect(log.ofType("error").map((e) => e.context)).toContain(`write the snooze outcome of job ${ids[3]}`)
    expect(log.ofType("snoozed")).toHaveLength(4)
  })

  it("keeps tracking a job claimed again while its cancelled attempt still runs", async () => {
    const Slow = defineJob({ kind: "slow", args: Schema.Struct({}) })
    const id = insertedId(await producer.insert(db.pool, Slow, {}))
    const first = latch()
    const second = latch()
    let calls = 0
    const worker = await startWorker({
      heartbeatInterval: 20,
      // Like many real handlers, this one does not watch its signal.
      handlers: [
        handle(Slow, async () => {
          calls++
          await (calls === 1 ? first.promise : second.promise)
        }),
      ],
    })
    const log = recordEvents(worker)
    await waitFor("attempt 1 running", () => calls === 1)
    await admin.cancelJob(db.pool, id)
    await admin.retryJob(db.pool, id)
    await waitFor("attempt 2 running on the same worker", () => calls === 2)
    first.resolve()
    // Attempt 1's end must not untrack attempt 2: its heartbeats go on...
    const beat = (await jobOf(id)).heartbeatAt?.getTime() ?? 0
    await waitFor(
      "a heartbeat of attempt 2",
      async () => ((await jobOf(id)).heartbeatAt?.getTime() ?? 0) > beat,
    )
    // ...and stopping releases it instead of leaving it running.
    await worker.stop({ timeout: 50 })
    second.resolve()
    expect((await jobOf(id)).state).toBe("available")
    expect(log.ofType("released").flatMap((e) => e.jobs.map((j) => j.id))).toEqual([id])
  })

  it("writes nothing more once stop() gave up on a hung outcome write", async () => {
    // The worker's own pool, and a session that holds a lock: both closed before the database is dropped.
    const pool = new pg.Pool({ connectionString: db.url, max: 4 })
    pool.on("error", () => undefined)
    const locker = new pg.Client({ connectionString: db.url })
    await locker.connect()
    try {
      const [id] = await insertTasks(1)
      const worker = await Worker.start({
        pool,
        pollInterval: 20,
        maintenance: false,
        listen: false,
        // The handler takes a lock from another session that the completion write of its job waits on.
        handlers: [
          handle(Task, async () => {
            const { sql, params } = engineMechanics().blockAttemptWrite(id!)
            await locker.query("BEGIN")
            await locker.query(sql, [...params])
          }),
        ],
      })
      const waitingWrite = async () => {
        const { rows } = await db.pool.query(
          `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
        )
        return rows[0]?.pid as number | undefined
      }
      await waitFor("the completion write waiting on the lock", waitingWrite)
      // The drain waits 1 s at least, then stop() gives up on the write and resolves.
      await worker.stop({ timeout: 50 })
      // The write fails (its connection is killed) and the lock goes away: nothing may retry it now.
      await db.pool.query("SELECT pg_terminate_backend($1)", [await waitingWrite()])
      await locker.query("ROLLBACK")
      await new Promise((resolve) => setTimeout(resolve, 500))
      expect((await jobOf(id!)).state).toBe("running")
      expect(await waitingWrite()).toBeUndefined()
    } finally {
      await locker.end()
      await pool.end()
    }
  })
})
