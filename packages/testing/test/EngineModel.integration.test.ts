// The model-based test of the engine contract: random interleavings of insert (unique, scheduled), claim,
// complete, retry, snooze, cancel (from the handler and by an operator), fail, heartbeat, release, rescue,
// promote, make-due, purge and the engine's own storage maintenance (rotate, prune) run against the engine
// AWA_TEST_ENGINE names and against a small in-memory model (support/JobModel.ts). After every step the
// states, attempts, run leases, error counts, per-queue counts and available depth must agree, no job may be
// lost or appear, and unique conflicts must name the holder the model expects. A failing sequence shrinks to
// a minimal one; the seed is printed, and AWA_MODEL_SEED / AWA_MODEL_RUNS replay or widen a run.
// Time never passes by sleeping: scheduled and retrying jobs are an hour away until made due, and "stale"
// means "heartbeat older than this transaction" (findRescuable with staleAfterMs 0).
import { defineJob } from "@awa/model/JobDefinition"
import type { AttemptRef, Job } from "@awa/runtime/Engine"
import { toExecutor } from "@awa/runtime/PgExecutor"
import { job } from "@awa/runtime/Producer"
import { Schema } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { testEngineFromEnv, testEngineMaintenance } from "../src/TestEngine.js"
import { useAwaDatabase } from "../src/vitest/AwaTestDatabase.js"
import { JobModel, modelMaxAttempts, modelQueues } from "./support/JobModel.js"

const Item = defineJob({ kind: "model.item", args: Schema.Struct({ n: Schema.Number }) })
const hour = 3_600_000
const error = { kind: "error" as const, message: "model step" }

const awa = useAwaDatabase({ engine: testEngineFromEnv(), scope: "file" })

type Real = { readonly awa: typeof awa }
type Cmd = fc.AsyncCommand<JobModel, Real>

const db = () => toExecutor(awa.pool)
const engine = () => awa.engine

// Picks an attempt for a write: half the time one that still owns its job (the applied path), a quarter of
// the time a stale attempt of a job that runs again under a newer lease (the write most likely to land on
// the wrong attempt), else any attempt ever started. Each falls back to any attempt when there is none.
const attemptOf = (m: JobModel, pick: number): AttemptRef => {
  const owned = m.attempts.filter((r) => m.owned(r) !== undefined)
  const superseded = m.attempts.filter(
    (r) => m.owned(r) === undefined && m.jobs.get(r.id)?.state === "running",
  )
  const from =
    pick % 2 === 1 && owned.length > 0
      ? owned
      : pick % 4 === 0 && superseded.length > 0
        ? superseded
        : m.attempts
  return from[Math.floor(pick / 4) % from.length]!
}
const refText = (r: AttemptRef) => `${r.id}@${r.runLease}`

/** Asserts that an attempt write did what the model predicts, and moves the model on when it applied. */
const expectWrite = (
  m: JobModel,
  ref: AttemptRef,
  result: { applied: ReadonlyArray<AttemptRef>; stale: ReadonlyArray<AttemptRef> },
  apply: (job: NonNullable<ReturnType<JobModel["owned"]>>) => void,
): void => {
  const job = m.owned(ref)
  expect({ applied: result.applied.map(refText), stale: result.stale.map(refText) }).toEqual(
    job === undefined ? { applied: [], stale: [refText(ref)] } : { applied: [refText(ref)], stale: [] },
  )
  if (job !== undefined) apply(job)
}

/** The engine's jobs of the model's kind, all of them. */
const allJobs = async (): Promise<Array<Job>> => {
  const jobs: Array<Job> = []
  let cursor: string | null = null
  do {
    const page = await awa.admin.listJobs(
      awa.pool,
      { kind: Item.kind },
      { limit: 1000, ...(cursor ? { cursor } : {}) },
    )
    jobs.push(...page.items)
    cursor = page.nextCursor
  } while (cursor !== null)
  return jobs
}

/** After every step: the engine and the model agree on every job, every count and the available depth. */
const agree = async (m: JobModel): Promise<void> => {
  const jobs = await allJobs()
  const actual = jobs.map((j) => ({
    id: j.id,
    queue: j.queue,
    state: j.state,
    attempt: j.attempt,
    runLease: j.runLease,
    errors: j.errors.length,
    unique: j.uniqueKey !== null,
  }))
  const expected = [...m.jobs.values()]
    .map((j) => ({
      id: j.id,
      queue: j.queue,
      state: j.state,
      attempt: j.attempt,
      runLease: j.runLease,
      errors: j.errors,
      unique: j.uniqueN !== null,
    }))
    .sort((a, b) => (BigInt(a.id) < BigInt(b.id) ? -1 : 1))
  expect(actual).toEqual(expected)
  const stats = await awa.admin.queueStats(awa.pool)
  const depth = await engine().availableDepth(db())
  for (const queue of modelQueues) {
    const counts = m.counts(queue)
    const reported = stats.find((s) => s.queue === queue)
    const nonZero = Object.fromEntries(Object.entries(reported?.counts ?? {}).filter(([, n]) => n > 0))
    expect({ queue, counts: nonZero }).toEqual({ queue, counts })
    expect({ queue, depth: depth.get(queue) ?? 0 }).toEqual({ queue, depth: counts.available ?? 0 })
  }
}

const command = (
  name: string,
  check: (m: Readonly<JobModel>) => boolean,
  run: (m: JobModel) => Promise<void>,
): Cmd => ({
  check,
  run: async (m) => {
    await run(m)
    await agree(m)
  },
  toString: () => name,
})

const anyAttempt = (m: Readonly<JobModel>) => m.attempts.length > 0

const insertCommand = fc
  .record({
    queue: fc.constantFrom(...modelQueues),
    unique: fc.boolean(),
    n: fc.nat(1),
    scheduled: fc.boolean(),
  })
  .map(({ queue, unique, n, scheduled }) =>
    command(
      `insert(${queue}${unique ? `, unique ${n}` : ""}${scheduled ? ", in 1 hour" : ""})`,
      () => true,
      async (m) => {
        const result = await awa.producer.insert(
          awa.pool,
          Item,
          { n: unique ? n : 100 + m.jobs.size },
          {
            queue,
            maxAttempts: modelMaxAttempts,
            ...(unique ? { unique: true } : {}),
            ...(scheduled ? { delay: "1 hour" } : {}),
          },
        )
        const holder = unique ? m.holder(n) : undefined
        if (holder !== undefined) {
          expect(result).toMatchObject({
            _tag: "UniqueConflict",
            existingId: holder.id,
            existingState: holder.state,
          })
          return
        }
        expect(result).toMatchObject({ _tag: "Inserted", state: scheduled ? "scheduled" : "available" })
        if (result._tag === "Inserted") m.inserted(result.id, queue, unique ? n : null, scheduled)
      },
    ),
  )

const insertManyCommand = fc
  .array(fc.record({ unique: fc.boolean(), n: fc.nat(1) }), { minLength: 2, maxLength: 4 })
  .map((items) =>
    command(
      `insertMany(${items.map((i) => (i.unique ? `unique ${i.n}` : "plain")).join(", ")})`,
      () => true,
      async (m) => {
        const queue = modelQueues[0]
        const base = m.jobs.size
        const argsOf = (item: { unique: boolean; n: number }, i: number) => ({
          n: item.unique ? item.n : 200 + base + i,
        })
        const results = await awa.producer.insertMany(
          awa.pool,
          items.map((item, i) =>
            job(Item, argsOf(item, i), {
              queue,
              maxAttempts: modelMaxAttempts,
              ...(item.unique ? { unique: true } : {}),
            }),
          ),
        )
        expect(results.length).toBe(items.length)
        // Results are in input order: a duplicate (of a held key, or of an earlier row) conflicts with its
        // holder, every other row is a new job whose stored args are its own.
        for (const [i, item] of items.entries()) {
          const result = results[i]!
          const holder = item.unique ? m.holder(item.n) : undefined
          if (holder !== undefined) {
            expect(result).toMatchObject({ _tag: "UniqueConflict", existingId: holder.id })
            continue
          }
          expect(result).toMatchObject({ _tag: "Inserted", state: "available" })
          if (result._tag !== "Inserted") continue
          const stored = await engine().getJob(db(), result.id)
          expect(stored?.args).toEqual(argsOf(item, i))
          m.inserted(result.id, queue, item.unique ? item.n : null, false)
        }
      },
    ),
  )

const claimCommand = fc.constantFrom(...modelQueues).map((queue) =>
  command(
    `claim(${queue})`,
    () => true,
    async (m) => {
      const claimable = m.claimable(queue)
      const claimed = await engine().claim(db(), { queue, limit: 1, defaultTimeoutMs: hour })
      expect(claimed.length).toBe(Math.min(1, claimable.length))
      const got = claimed[0]
      if (got === undefined) return
      expect(claimable.map((j) => j.id)).toContain(got.id)
      const ref = m.claimed(got.id)
      expect({ attempt: got.attempt, runLease: got.runLease }).toEqual({
        attempt: m.jobs.get(got.id)!.attempt,
        runLease: ref.runLease,
      })
    },
  ),
)

// Steps are picked evenly from this list, so repeats weigh them: inserts and claims most (they give the other
// steps jobs and attempts to act on), then the attempt writes, then the steps that act on everything at once.
const attemptWrites = [
  fc.nat().map((pick) =>
    command(`complete(#${pick})`, anyAttempt, async (m) => {
      const ref = attemptOf(m, pick)
      const result = await engine().complete(db(), [ref])
      const done = m.jobs.get(ref.id)
      if (done?.state === "completed" && done.runLease === ref.runLease) {
        // Completing an attempt again (a worker retrying a write whose reply it lost) counts as applied.
        expect({ applied: result.applied.map(refText), stale: result.stale.length }).toEqual({
          applied: [refText(ref)],
          stale: 0,
        })
        return
      }
      expectWrite(m, ref, result, (job) => {
        job.state = "completed"
      })
    }),
  ),
  fc.record({ pick: fc.nat(), later: fc.boolean() }).map(({ pick, later }) =>
    command(`retry(#${pick}${later ? ", in 1 hour" : ""})`, anyAttempt, async (m) => {
      const ref = attemptOf(m, pick)
      const attempt = m.jobs.get(ref.id)?.attempt ?? 1
      const result = await engine().retry(db(), [{ ref, attempt, delayMs: later ? hour : 0, error }])
      expectWrite(m, ref, result, (job) => {
        job.state = later ? "retryable" : "available"
        job.errors++
      })
    }),
  ),
  fc.record({ pick: fc.nat(), later: fc.boolean() }).map(({ pick, later }) =>
    command(`snooze(#${pick}${later ? ", 1 hour" : ""})`, anyAttempt, async (m) => {
      const ref = attemptOf(m, pick)
      expectWrite(m, ref, await engine().snooze(db(), [{ ref, delayMs: later ? hour : 0 }]), (job) => {
        job.state = later ? "scheduled" : "available"
        job.attempt = Math.max(0, job.attempt - 1)
      })
    }),
  ),
  fc.nat().map((pick) =>
    command(`cancelAttempt(#${pick})`, anyAttempt, async (m) => {
      const ref = attemptOf(m, pick)
      const attempt = m.jobs.get(ref.id)?.attempt ?? 1
      expectWrite(m, ref, await engine().cancelAttempts(db(), [{ ref, attempt, error }]), (job) => {
        job.state = "cancelled"
        job.errors++
      })
    }),
  ),
  fc.nat().map((pick) =>
    command(`fail(#${pick})`, anyAttempt, async (m) => {
      const ref = attemptOf(m, pick)
      const attempt = m.jobs.get(ref.id)?.attempt ?? 1
      const result = await engine().fail(db(), [{ ref, attempt, error }])
      expect(result.deadLettered).toEqual([])
      expectWrite(m, ref, result, (job) => {
        job.state = "failed"
        job.errors++
      })
    }),
  ),
  fc.nat().map((pick) =>
    command(`heartbeat(#${pick})`, anyAttempt, async (m) => {
      const ref = attemptOf(m, pick)
      expectWrite(m, ref, await engine().heartbeat(db(), [ref]), () => {})
    }),
  ),
  fc.nat().map((pick) =>
    command(`release(#${pick})`, anyAttempt, async (m) => {
      const ref = attemptOf(m, pick)
      expectWrite(m, ref, await engine().release(db(), [ref]), (job) => {
        job.state = "available"
        job.attempt = Math.max(0, job.attempt - 1)
      })
    }),
  ),
]

const sweeping = [
  fc.nat().map((pick) =>
    command(
      `adminCancel(job #${pick})`,
      (m) => m.jobs.size > 0,
      async (m) => {
        const job = [...m.jobs.values()][pick % m.jobs.size]!
        if (JobModel.isTerminal(job)) {
          await expect(awa.admin.cancelJob(awa.pool, job.id, "model")).rejects.toMatchObject({
            _tag: "JobStateConflict",
          })
          return
        }
        expect(await awa.admin.cancelJob(awa.pool, job.id, "model")).toMatchObject({ state: "cancelled" })
        job.state = "cancelled"
        job.errors++
      },
    ),
  ),
  fc.constant(
    command(
      "rescue",
      () => true,
      async (m) => {
        // As maintenance does: decide and write in one transaction; every running attempt is stale here.
        const client = await awa.pool.connect()
        try {
          // Nothing's heartbeat is an hour old: a rescue with that threshold finds nothing.
          expect(
            await engine().findRescuable(db(), { staleAfterMs: hour, deadlineGraceMs: hour, limit: 1000 }),
          ).toEqual([])
          await client.query("BEGIN")
          const found = await engine().findRescuable(toExecutor(client), {
            staleAfterMs: 0,
            deadlineGraceMs: hour,
            limit: 1000,
          })
          expect(found.map((c) => refText(c.ref)).sort()).toEqual(
            m
              .running()
              .map((j) => refText({ id: j.id, runLease: j.runLease }))
              .sort(),
          )
          const retries = found.filter((c) => c.attempt < c.maxAttempts)
          const failures = found.filter((c) => c.attempt >= c.maxAttempts)
          const rescued = { kind: "rescued" as const, message: "rescued by the model" }
          await engine().retry(
            toExecutor(client),
            retries.map((c) => ({ ref: c.ref, attempt: c.attempt, delayMs: hour, error: rescued })),
          )
          await engine().fail(
            toExecutor(client),
            failures.map((c) => ({ ref: c.ref, attempt: c.attempt, error: rescued })),
          )
          await client.query("COMMIT")
        } finally {
          client.release()
        }
        for (const job of m.running()) {
          job.state = job.attempt < modelMaxAttempts ? "retryable" : "failed"
          job.errors++
        }
      },
    ),
  ),
  fc.constant(
    command(
      "promote",
      () => true,
      async () => {
        // Everything scheduled or retrying is an hour away: nothing is due.
        expect(await engine().promote(db(), 1000)).toBe(0)
      },
    ),
  ),
  fc.constantFrom(...modelQueues).map((queue) =>
    command(
      `makeDue(${queue})`,
      () => true,
      async (m) => {
        const due = [...m.jobs.values()].filter(
          (j) => j.queue === queue && (j.state === "scheduled" || j.state === "retryable"),
        )
        const made = await awa.admin.makeDue(awa.pool, { queue })
        expect([...made].sort()).toEqual(due.map((j) => j.id).sort())
        for (const job of due) job.state = "available"
      },
    ),
  ),
  fc.constantFrom(...modelQueues).map((queue) =>
    command(
      `purgeQueue(${queue})`,
      () => true,
      async (m) => {
        const gone = [...m.jobs.values()].filter((j) => j.queue === queue)
        expect(await awa.admin.purgeQueue(awa.pool, queue)).toEqual({ jobs: gone.length, deadLettered: 0 })
        for (const job of gone) m.jobs.delete(job.id)
      },
    ),
  ),
  fc.constant(
    command(
      "rotate",
      () => true,
      async (m) => {
        await testEngineMaintenance(engine()).rotate(db())
        await forgetPrunedCompletions(m)
      },
    ),
  ),
  fc.constant(
    command(
      "prune",
      () => true,
      async (m) => {
        await testEngineMaintenance(engine()).prune(db())
        await forgetPrunedCompletions(m)
      },
    ),
  ),
]

// Rotation and pruning may remove completed history (and with it the unique keys it held), nothing else: the
// model forgets the completed jobs the engine no longer has, and every other job must still be there.
async function forgetPrunedCompletions(m: JobModel): Promise<void> {
  for (const job of [...m.jobs.values()]) {
    if (job.state === "completed" && (await engine().getJob(db(), job.id)) === null) m.jobs.delete(job.id)
  }
}

const commands = [
  ...Array.from({ length: 4 }, () => [insertCommand, claimCommand]).flat(),
  insertManyCommand,
  ...attemptWrites,
  ...attemptWrites,
  ...sweeping,
]

const seed = Number(process.env.AWA_MODEL_SEED || 20261130)
const numRuns = Number(process.env.AWA_MODEL_RUNS || 150)

describe(`engine model: ${awa.engineName} engine`, () => {
  it("agrees with the in-memory model after every step of random interleavings", async () => {
    try {
      await fc.assert(
        fc.asyncProperty(fc.commands(commands, { maxCommands: 80, size: "max" }), async (cmds) => {
          // Each case starts from empty queues; purging also releases every unique key.
          for (const queue of modelQueues) await awa.admin.purgeQueue(awa.pool, queue)
          await fc.asyncModelRun(() => ({ model: new JobModel(), real: { awa } }), cmds)
        }),
        { seed, numRuns, endOnFailure: false },
      )
    } catch (failure) {
      // fast-check's message has the seed, the shrunk counterexample and its replay path; the cause is the
      // first disagreement (an assertion error with the diff).
      const cause = (failure as { cause?: unknown }).cause
      throw new Error(
        `The engine disagrees with the model (seed ${seed}; rerun with AWA_MODEL_SEED=${seed}, widen with ` +
          `AWA_MODEL_RUNS):\n${failure instanceof Error ? failure.message : String(failure)}` +
          (cause instanceof Error ? `\nFirst disagreement: ${cause.message}` : ""),
        { cause },
      )
    }
    // Up to 80 steps per case against real storage (queue storage's ring maintenance included): minutes, not
    // the default minute, on a loaded 2-core machine.
  }, 300_000)
})
