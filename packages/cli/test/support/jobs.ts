// Job definitions and seeding helpers for the CLI tests: jobs go in through the real producer, and
// dead-lettered jobs get there through a real worker.
import { setTimeout as sleep } from "node:timers/promises"
import { defineJob } from "@awa/model/JobDefinition"
import { makeAdmin } from "@awa/runtime/Admin"
import type { InsertResult } from "@awa/runtime/Engine"
import { handle } from "@awa/runtime/JobHandler"
import { fail } from "@awa/runtime/JobOutcome"
import type { PgPool } from "@awa/runtime/PgExecutor"
import { job, makeProducer } from "@awa/runtime/Producer"
import { Worker } from "@awa/runtime/Worker"
import { Schema } from "effect"

/** A job kind for listing tests. */
export const Alpha = defineJob({ kind: "test.alpha", args: Schema.Struct({ n: Schema.Number }) })

/** Another job kind. */
export const Beta = defineJob({ kind: "test.beta", args: Schema.Struct({ n: Schema.Number }) })

/** Inserts jobs and returns their ids, in insert order. */
export const insertJobs = async (
  pool: PgPool,
  jobs: Parameters<ReturnType<typeof makeProducer>["insertMany"]>[1],
): Promise<Array<string>> => {
  const results = await makeProducer().insertMany(pool, jobs)
  return results.map((r: InsertResult) => {
    if (r._tag !== "Inserted") throw new Error(`expected an insert, got ${r._tag}`)
    return r.id
  })
}

/** Polls `check` until it is true (a guard against hangs, not a timing assertion). */
export const until = async (
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 20_000,
): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

/**
 * Puts jobs into the dead-letter queue the real way: enables the DLQ on `queue`, inserts the jobs, and
 * lets a worker fail each one at once. Returns their ids.
 */
export const deadLetter = async (
  pool: PgPool,
  queue: string,
  jobs: ReadonlyArray<{ readonly kind: "alpha" | "beta"; readonly n: number }>,
): Promise<Array<string>> => {
  const admin = makeAdmin()
  await admin.setQueueDlq(pool, queue, true)
  const ids = await insertJobs(
    pool,
    jobs.map((j) => job(j.kind === "alpha" ? Alpha : Beta, { n: j.n }, { queue })),
  )
  const worker = await Worker.start({
    pool,
    queues: [queue],
    maintenance: false,
    pollInterval: "50 millis",
    handlers: [
      handle(Alpha, ({ n }) => fail(`alpha ${n} failed for good`)),
      handle(Beta, ({ n }) => fail(`beta ${n} failed for good`)),
    ],
  })
  try {
    await until("jobs to reach the DLQ", async () => {
      const page = await admin.listDlq(pool, { queue }, { limit: 10_000 })
      return page.items.length === jobs.length
    })
  } finally {
    await worker.stop()
  }
  return ids
}
