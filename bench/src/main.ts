// `pnpm bench`: measures awa on a real Postgres and prints every figure next to a baseline measured in the
// same run on the same server (one single-row INSERT per commit). Not a test: it asserts nothing.
import { cpus } from "node:os"
import { parseArgs } from "node:util"
import { migrate } from "@awa/migrator"
import {
  awaTableStats,
  type BaselineResult,
  baselineInserts,
  openBenchDatabase,
  roundTrips,
} from "./BenchDatabase.js"
import {
  burnDown,
  enqueueCopy,
  enqueueInsertMany,
  enqueueOneByOne,
  insertCommitLatency,
  measured,
  type PhaseCost,
  percentile,
  pickupLatency,
  type WorkerTuning,
} from "./Phases.js"

const usage = `Usage: pnpm bench [flags]

Starts an embedded Postgres with durable settings (fsync, synchronous_commit and full_page_writes on), or
uses the server DATABASE_URL names (creating and dropping a scratch database on it), migrates, and prints:
burn-down jobs/s, enqueue jobs/s (insertMany, COPY, one insert per commit), pickup latency percentiles at a
steady offered rate, commits and WAL bytes per job, and dead tuples left in the job tables, each next to
the single-row INSERT commit rate measured in the same run.

Flags (or environment variables):
  --jobs N               jobs for burn-down and enqueue (AWA_BENCH_JOBS, default 20000)
  --workers N            workers for the burn-down, each with its own pool (AWA_BENCH_WORKERS, default 1)
  --concurrency N        per-queue concurrency of the tuned burn-down (AWA_BENCH_CONCURRENCY, default 1000);
                         a second burn-down always runs with the worker's defaults
  --claim-batch N        claim batch size of the tuned burn-down (AWA_BENCH_CLAIM_BATCH, default: the worker's)
  --rate N               offered jobs/s for pickup latency (AWA_BENCH_RATE; default 1000, capped at a tenth
                         of the baseline commit rate so the offered load stays well within the server's)
  --latency-seconds S    how long to offer them (AWA_BENCH_LATENCY_SECONDS, default 5)
  --baseline-seconds S   length of each baseline loop (AWA_BENCH_BASELINE_SECONDS, default 2)
  --fsync on|off         fsync of the embedded server (AWA_BENCH_FSYNC, default on); off models a disk whose
                         flushes cost nothing, to compare with figures measured on such a machine
  --database-url URL     use this server instead of an embedded one (DATABASE_URL)
  --help`

// `pnpm bench -- --jobs 5000` passes the "--" through; drop it.
const argv = process.argv.slice(2)
const { values } = parseArgs({
  args: argv[0] === "--" ? argv.slice(1) : argv,
  options: {
    jobs: { type: "string" },
    workers: { type: "string" },
    concurrency: { type: "string" },
    "claim-batch": { type: "string" },
    rate: { type: "string" },
    "latency-seconds": { type: "string" },
    "baseline-seconds": { type: "string" },
    "database-url": { type: "string" },
    fsync: { type: "string" },
    help: { type: "boolean", short: "h" },
  },
  allowPositionals: false,
})
if (values.help) {
  console.log(usage)
  process.exit(0)
}

const numberOption = (
  flag: string | undefined,
  env: string,
  fallback: number | undefined,
): number | undefined => {
  const raw = flag ?? process.env[env]
  if (raw === undefined || raw === "") return fallback
  const n = Number(raw)
  if (!Number.isFinite(n) || n <= 0) {
    console.error(
      `bench: ${env} / --${env
        .replace(/^AWA_BENCH_/, "")
        .toLowerCase()
        .replaceAll("_", "-")} must be a positive number, got "${raw}"`,
    )
    process.exit(2)
  }
  return n
}

const jobs = Math.round(numberOption(values.jobs, "AWA_BENCH_JOBS", 20_000)!)
const workers = Math.round(numberOption(values.workers, "AWA_BENCH_WORKERS", 1)!)
const concurrency = Math.round(numberOption(values.concurrency, "AWA_BENCH_CONCURRENCY", 1000)!)
const claimBatch = numberOption(values["claim-batch"], "AWA_BENCH_CLAIM_BATCH", undefined)
const rateGiven = numberOption(values.rate, "AWA_BENCH_RATE", undefined)
const latencyMs = numberOption(values["latency-seconds"], "AWA_BENCH_LATENCY_SECONDS", 5)! * 1000
const baselineMs = numberOption(values["baseline-seconds"], "AWA_BENCH_BASELINE_SECONDS", 2)! * 1000
const databaseUrl = values["database-url"] ?? (process.env.DATABASE_URL || undefined)
const fsyncText = values.fsync ?? (process.env.AWA_BENCH_FSYNC || "on")
if (fsyncText !== "on" && fsyncText !== "off") {
  console.error(`bench: AWA_BENCH_FSYNC / --fsync must be on or off, got "${fsyncText}"`)
  process.exit(2)
}
if (fsyncText === "off" && databaseUrl !== undefined) {
  console.error(
    "bench: --fsync applies to the embedded server only; set fsync on DATABASE_URL's server itself",
  )
  process.exit(2)
}

const fmt = (n: number, digits = 0): string =>
  n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits })
const perSecond = (count: number, ms: number): number => count / (ms / 1000)
const log = (text: string) => process.stderr.write(`bench: ${text}\n`)

const tuning: WorkerTuning = {
  concurrency,
  ...(claimBatch === undefined ? {} : { claimBatchSize: Math.round(claimBatch) }),
}
const tuningText = `concurrency ${concurrency}${claimBatch === undefined ? "" : `, claim batch ${claimBatch}`}`

const main = async (): Promise<void> => {
  log(
    databaseUrl === undefined
      ? `starting an embedded Postgres with durable settings${fsyncText === "off" ? " but fsync off" : ""}...`
      : "using DATABASE_URL's server...",
  )
  const db = await openBenchDatabase(databaseUrl, { fsync: fsyncText === "on" })
  try {
    await migrate({ databaseUrl: db.url })
    const url = db.url

    log(`baseline: single-row INSERT per commit, 1 client, ${baselineMs / 1000} s...`)
    const base1 = await measured(url, () => baselineInserts(url, 1, baselineMs))
    log("baseline: 4 clients...")
    const base4 = await measured(url, () => baselineInserts(url, 4, baselineMs))

    log(`enqueue: ${fmt(jobs)} jobs with insertMany (1,000 per statement)...`)
    const many = await measured(url, () => enqueueInsertMany(url, "bench_insert_many", jobs, 1000))
    log(`enqueue: ${fmt(jobs)} jobs with COPY (for the first burn-down)...`)
    const copy = await measured(url, () => enqueueCopy(url, "bench_burn_defaults", jobs))
    log(`enqueue: one insert per commit for ${baselineMs / 1000} s...`)
    const single = await measured(url, () => enqueueOneByOne(url, "bench_insert_one", baselineMs))

    log(`burn-down: ${fmt(jobs)} no-op jobs, ${workers} worker(s) with default options...`)
    const burnDefaults = await measured(url, () => burnDown(url, "bench_burn_defaults", jobs, workers, {}))
    await enqueueCopy(url, "bench_burn_tuned", jobs)
    log(`burn-down: ${fmt(jobs)} no-op jobs, ${workers} worker(s), ${tuningText}...`)
    const burnTuned = await measured(url, () => burnDown(url, "bench_burn_tuned", jobs, workers, tuning))

    const baseRate = perSecond(base1.result.rows, base1.result.ms)
    const rate = rateGiven ?? Math.max(10, Math.min(1000, Math.floor(baseRate / 10 / 10) * 10))
    log(
      `pickup latency: ${fmt(rate)} jobs/s offered for ${latencyMs / 1000} s, one worker with default options...`,
    )
    const latency = await measured(url, () => pickupLatency(url, "bench_latency", rate, latencyMs, {}))
    log(`latency baseline: single-row INSERTs offered at ${fmt(rate)}/s for ${latencyMs / 1000} s...`)
    const commitLatency = await insertCommitLatency(url, rate, latencyMs)
    log("round trips: 2,000 x SELECT 1 on one connection...")
    const rtt = await roundTrips(url, 2000)
    log(`baseline again (the machine's speed drifts): 1 client, ${baselineMs / 1000} s...`)
    const baseEnd = await measured(url, () => baselineInserts(url, 1, baselineMs))

    await new Promise((r) => setTimeout(r, 500))
    const tables = await awaTableStats(url)
    printReport({
      db,
      base1,
      baseEnd,
      base4,
      many,
      copy,
      single,
      burnDefaults,
      burnTuned,
      rate,
      latency,
      commitLatency,
      rtt,
      tables,
    })
  } finally {
    await db.close()
  }
}

interface Measured<A> {
  readonly result: A
  readonly cost: PhaseCost
}

const printReport = (r: {
  db: Awaited<ReturnType<typeof openBenchDatabase>>
  base1: Measured<BaselineResult>
  baseEnd: Measured<BaselineResult>
  base4: Measured<BaselineResult>
  many: Measured<number>
  copy: Measured<number>
  single: Measured<{ count: number; ms: number }>
  burnDefaults: Measured<number>
  burnTuned: Measured<number>
  rate: number
  latency: Measured<Awaited<ReturnType<typeof pickupLatency>>>
  commitLatency: ReadonlyArray<number>
  rtt: ReadonlyArray<number>
  tables: Awaited<ReturnType<typeof awaTableStats>>
}): void => {
  // Ratios use the mean of the baselines measured before and after the awa phases.
  const baseStart = perSecond(r.base1.result.rows, r.base1.result.ms)
  const baseFinish = perSecond(r.baseEnd.result.rows, r.baseEnd.result.ms)
  const baseRate = (baseStart + baseFinish) / 2
  const baseRate4 = perSecond(r.base4.result.rows, r.base4.result.ms)
  const baseRows = r.base1.result.rows + r.baseEnd.result.rows
  const baseWal = (r.base1.cost.walBytes + r.baseEnd.cost.walBytes) / baseRows
  const baseCommits = (r.base1.cost.commits + r.baseEnd.cost.commits) / baseRows
  const ratio = (x: number) => `${fmt(x / baseRate, 2)}×`

  const defaultsRate = perSecond(jobs, r.burnDefaults.result)
  const tunedRate = perSecond(jobs, r.burnTuned.result)
  const manyRate = perSecond(jobs, r.many.result)
  const copyRate = perSecond(jobs, r.copy.result)
  const singleRate = perSecond(r.single.result.count, r.single.result.ms)
  const lat = r.latency.result
  const p50 = percentile(lat.samples, 50)
  const p95 = percentile(lat.samples, 95)
  const p99 = percentile(lat.samples, 99)
  const max = percentile(lat.samples, 100)
  const perJob = (cost: PhaseCost, n: number) => ({ commits: cost.commits / n, wal: cost.walBytes / n })
  const defaults = perJob(r.burnDefaults.cost, jobs)
  const tuned = perJob(r.burnTuned.cost, jobs)
  const latencyCost = perJob(r.latency.cost, Math.max(1, lat.offered))
  const deadTotal = r.tables.reduce((n, t) => n + t.deadTuples, 0)
  const worked = 2 * jobs + lat.offered

  const rows: Array<[string, string, string, string]> = [
    [
      "burn-down, worker defaults",
      `${fmt(defaultsRate)} jobs/s`,
      `${fmt(baseRate)} commits/s`,
      ratio(defaultsRate),
    ],
    [`burn-down, ${tuningText}`, `${fmt(tunedRate)} jobs/s`, `${fmt(baseRate)} commits/s`, ratio(tunedRate)],
    [
      "enqueue, insertMany (1,000/statement)",
      `${fmt(manyRate)} jobs/s`,
      `${fmt(baseRate)} rows/s`,
      ratio(manyRate),
    ],
    ["enqueue, COPY", `${fmt(copyRate)} jobs/s`, `${fmt(baseRate)} rows/s`, ratio(copyRate)],
    [
      "enqueue, one insert per commit",
      `${fmt(singleRate)} jobs/s`,
      `${fmt(baseRate)} rows/s`,
      ratio(singleRate),
    ],
    [
      `pickup latency p50/p95/p99 @ ${fmt(r.rate)}/s`,
      `${fmt(p50, 2)} / ${fmt(p95, 2)} / ${fmt(p99, 2)} ms`,
      `${fmt(percentile(r.commitLatency, 50), 2)} / ${fmt(percentile(r.commitLatency, 95), 2)} / ${fmt(percentile(r.commitLatency, 99), 2)} ms per INSERT commit`,
      `${fmt(p50 / percentile(r.commitLatency, 50), 1)}× / ${fmt(p95 / percentile(r.commitLatency, 95), 1)}× / ${fmt(p99 / percentile(r.commitLatency, 99), 1)}×`,
    ],
    [
      "SELECT 1 round trip p50/p95/p99",
      `${fmt(percentile(r.rtt, 50), 2)} / ${fmt(percentile(r.rtt, 95), 2)} / ${fmt(percentile(r.rtt, 99), 2)} ms`,
      "",
      "",
    ],
    [
      "commits per job: defaults / tuned",
      `${fmt(defaults.commits, 4)} / ${fmt(tuned.commits, 4)}`,
      `${fmt(baseCommits, 2)} per row`,
      `${fmt(defaults.commits / baseCommits, 4)}× / ${fmt(tuned.commits / baseCommits, 4)}×`,
    ],
    [
      "WAL bytes per job: defaults / tuned",
      `${fmt(defaults.wal)} / ${fmt(tuned.wal)} B`,
      `${fmt(baseWal)} B per row`,
      `${fmt(defaults.wal / baseWal, 2)}× / ${fmt(tuned.wal / baseWal, 2)}×`,
    ],
    [
      "commits / WAL per job, latency phase",
      `${fmt(latencyCost.commits, 2)} / ${fmt(latencyCost.wal)} B`,
      `${fmt(baseCommits, 2)} / ${fmt(baseWal)} B per row`,
      `${fmt(latencyCost.commits / baseCommits, 2)}× / ${fmt(latencyCost.wal / baseWal, 2)}×`,
    ],
    [
      "dead tuples in awa tables after the run",
      fmt(deadTotal),
      "0 (insert only)",
      `${fmt(deadTotal / Math.max(1, worked), 2)} per job worked`,
    ],
  ]
  const headers: [string, string, string, string] = [
    "metric",
    "awa",
    "baseline (same server, same run)",
    "vs baseline",
  ]
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)))
  const line = (cells: ReadonlyArray<string>) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join("  ")
      .trimEnd()

  const s = r.db.settings
  console.log(`
awa benchmark
  server    ${r.db.describe}
  settings  PostgreSQL ${s.server_version}, fsync=${s.fsync} synchronous_commit=${s.synchronous_commit} full_page_writes=${s.full_page_writes} shared_buffers=${s.shared_buffers}
  machine   ${cpus().length} CPUs, Node ${process.version}
  baseline  single-row INSERT per commit, 1 client: ${fmt(baseStart)} commits/s before the awa phases, ${fmt(baseFinish)} after
            (ratios use their mean, ${fmt(baseRate)}/s); ${fmt(baseRate4)} commits/s with 4 clients
  run       ${fmt(jobs)} no-op jobs per burn-down, ${workers} worker(s); latency: ${fmt(lat.samples.length)} of ${fmt(lat.offered)} jobs picked up (max ${fmt(max, 2)} ms), one insert per job

${line(headers)}
${line(widths.map((w) => "-".repeat(w)))}
${rows.map(line).join("\n")}

awa tables after the run:
${r.tables.map((t) => `  ${t.table.padEnd(20)} live ${fmt(t.liveTuples).padStart(8)}  dead ${fmt(t.deadTuples).padStart(8)}  updates ${fmt(t.updates).padStart(8)} (HOT ${fmt(t.hotUpdates)})  autovacuums ${t.autovacuums}`).join("\n")}

Reference (issue 3, same kind of machine, 27k/s baseline): graphile-worker 0.18 with batching ~51k jobs/s
(~1.9× baseline), p99 pickup ~3.5 ms, ~1 KiB WAL and 0.006 commits per job; with its defaults ~7k jobs/s
(~0.26×) at 2 commits per job. Compare ratios: absolute figures drift with the machine's load and disk.`)
}

main().catch((error: unknown) => {
  console.error(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
  process.exitCode = 1
})
