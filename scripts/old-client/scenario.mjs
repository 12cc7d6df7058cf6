// The old client's side of scripts/old-client-check.mjs. It is copied into a temp project where the
// PREVIOUS release's @awa/runtime and @awa/model are installed from their tarballs, and runs there against
// a database the CURRENT `awa migrate` migrated. It uses only API that release has (the public exports of
// @awa/runtime 0.1.0: makeProducer, Worker.workOne, makeAdmin, handle, cancel) and plain JavaScript, so it
// needs no build. If a later release changes that API, branch on `runtimeVersion` below rather than
// rewriting the steps for the new API: the point is to drive the old code as its users did.
//
// Steps: enqueue (and a unique duplicate refused), claim and complete, a throwing handler leaves the job
// retryable, admin retry makes it available and it completes on its second attempt, admin cancel of a
// waiting job, a handler returning cancel(). Prints one JSON line: { ok, runtimeVersion, steps, error? }
// and exits 0 when every step held, 1 when one did not (the error names the step).
// Usage (in the temp project): DATABASE_URL=... node scenario.mjs
import { createRequire } from "node:module"
import { defineJob } from "@awa/model"
import { cancel, handle, makeAdmin, makeProducer, Worker } from "@awa/runtime"
import { Schema } from "effect"
import pg from "pg"

const require = createRequire(import.meta.url)
const runtimeVersion = require("@awa/runtime/package.json").version
const queue = "old_client"
const steps = []
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 4 })

const Echo = defineJob({ kind: "old_client_echo", args: Schema.Struct({ n: Schema.Number }), queue })
const Flaky = defineJob({ kind: "old_client_flaky", args: Schema.Struct({ n: Schema.Number }), queue })
const Refused = defineJob({ kind: "old_client_refused", args: Schema.Struct({ n: Schema.Number }), queue })
const Once = defineJob({
  kind: "old_client_once",
  args: Schema.Struct({ key: Schema.String }),
  queue,
  unique: true,
})

let flakyCalls = 0
const handlers = [
  handle(Echo, async () => undefined),
  handle(Once, async () => undefined),
  handle(Flaky, async () => {
    flakyCalls += 1
    if (flakyCalls === 1) throw new Error("first attempt fails on purpose")
    return undefined
  }),
  handle(Refused, async () => cancel("the old client's handler cancels this job")),
]

const producer = makeProducer()
const admin = makeAdmin()

const step = async (name, body) => {
  try {
    const detail = await body()
    steps.push({ step: name, ok: true, ...(detail === undefined ? {} : { detail }) })
  } catch (error) {
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error)
    throw Object.assign(new Error(`step "${name}": ${message}`), { step: name, tag: error?._tag })
  }
}

const expectEqual = (actual, expected, what) => {
  if (actual !== expected) throw new Error(`${what}: expected ${expected}, got ${actual}`)
}

const inserted = async (definition, args, options) => {
  const result = await producer.insert(pool, definition, args, options)
  expectEqual(result._tag, "Inserted", `insert ${definition.kind}`)
  return result.id
}

const workOne = async () => {
  const outcome = await Worker.workOne({ db: pool, handlers, queue })
  if (outcome === null) throw new Error("workOne found no job to claim")
  return outcome
}

let exitCode = 0
try {
  let echoId
  await step("enqueue", async () => {
    echoId = await inserted(Echo, { n: 1 })
    const job = await admin.getJob(pool, echoId)
    expectEqual(job.state, "available", "state after insert")
    const onceId = await inserted(Once, { key: "k1" })
    const duplicate = await producer.insert(pool, Once, { key: "k1" })
    expectEqual(duplicate._tag, "UniqueConflict", "a duplicate unique insert")
    expectEqual(duplicate.existingId, onceId, "the job holding the unique key")
    return { echoId, onceId }
  })
  await step("claim and complete", async () => {
    const first = await workOne()
    const second = await workOne()
    expectEqual(first.type, "completed", "first outcome")
    expectEqual(second.type, "completed", "second outcome")
    const job = await admin.getJob(pool, echoId)
    expectEqual(job.state, "completed", "state after work")
    expectEqual(job.attempt, 1, "attempts")
  })
  await step("retry", async () => {
    const id = await inserted(Flaky, { n: 2 })
    const failed = await workOne()
    expectEqual(failed.type, "retried", "outcome of the throwing attempt")
    expectEqual((await admin.getJob(pool, id)).state, "retryable", "state after the throw")
    const retried = await admin.retryJob(pool, id)
    expectEqual(retried.state, "available", "state after admin retry")
    const done = await workOne()
    expectEqual(done.type, "completed", "outcome of the second attempt")
    const job = await admin.getJob(pool, id)
    expectEqual(job.state, "completed", "state after the second attempt")
    // Admin retry may reset the attempt count; the handler itself must have run twice.
    expectEqual(flakyCalls, 2, "handler runs")
    return { id, attempt: job.attempt }
  })
  await step("cancel", async () => {
    const waiting = await inserted(Echo, { n: 3 }, { runAt: new Date(Date.now() + 3_600_000) })
    const cancelled = await admin.cancelJob(pool, waiting, "cancelled by the old client's admin")
    expectEqual(cancelled.state, "cancelled", "state after admin cancel")
    const refused = await inserted(Refused, { n: 4 })
    const outcome = await workOne()
    expectEqual(outcome.type, "cancelled", "outcome of a handler returning cancel()")
    expectEqual((await admin.getJob(pool, refused)).state, "cancelled", "state after the handler's cancel")
    const leftover = await Worker.workOne({ db: pool, handlers, queue })
    expectEqual(leftover, null, "jobs left to claim")
    return { waiting, refused }
  })
  console.log(JSON.stringify({ ok: true, runtimeVersion, steps }))
} catch (error) {
  exitCode = 1
  console.log(
    JSON.stringify({
      ok: false,
      runtimeVersion,
      steps,
      failedStep: error.step,
      tag: error.tag,
      error: error.message,
    }),
  )
} finally {
  await pool.end()
}
process.exit(exitCode)
