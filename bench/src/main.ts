// `pnpm bench`: measures awa on a real Postgres and prints every figure next to a baseline measured in the
// same run on the same server (one single-row INSERT per commit). Not a test: it asserts nothing.
import { cpus } from "node:os"
import { parseArgs } from "node:util"
import { migrate } from "@awa/migrator"
import type { EngineName } from "@awa/runtime/Engine"
import {
  awaTableStats,
  type BaselineResult,
  type BenchServer,
  baselineInserts,
  openBenchServer,
  roundTrips,
  type TableStats,
} from "./BenchDatabase.js"
import {
  burnDown,
  enqueueCopy,
  enqueueInsertMany,
  enqueueOneByOne,
  insertCommitLatency,
  measured,
  type PhaseCost,
  type PinnedSnapshotResult,
  percentile,
  pickupLatency,
  pinnedSnapshotRun,
  type WorkerTuning,
} from "./Phases.js"

const usage = `Usage: pnpm bench [flags]

Starts an embedded Postgres with durable settings (fsync, synchronous_commit and full_page_writes on), or
uses the server DATABASE_URL names (creating and dropping scratch databases on it), and for each engine
asked for, in scratch databases of its own on that one server with the same settings, migrates and measures:
burn-down jobs/s, enqueue jobs/s (insertMany, COPY, one insert per commit), pickup latency percentiles at a
steady offered rate, commits and WAL bytes per job, and dead tuples left in the job tables, each next to
the single-row INSERT commit rate measured in the same run; then a pinned-snapshot phase: with a session
idle in a REPEATABLE READ transaction for the whole phase, it enqueues and works --pinned-jobs jobs and
reports WAL bytes and commits per job (enqueue and processing together) and the dead tuples per table and
per job, then pickup latency in that phase's queue, on the tables as they were left. The engines are printed
side by side. With both engines, a head-to-head phase follows: --rounds rounds, each working a burn-down, a
pickup-latency run at the light rate above and one under sustained load per engine back to back (the order
alternating), so that the machine's drift, which moves figures measured minutes apart, falls on both engines
alike.

Flags (or environment variables):
  --engine E             canonical, queue_storage or both (AWA_BENCH_ENGINE, default canonical)
  --pinned-jobs N        jobs of the pinned-snapshot phase (AWA_BENCH_PINNED_JOBS, default 100000; 0 skips it)
  --jobs N               jobs for burn-down and enqueue (AWA_BENCH_JOBS, default 20000)
  --workers N            workers for the burn-down, each with its own pool (AWA_BENCH_WORKERS, default 1)
  --concurrency N        per-queue concurrency of the tuned burn-down (AWA_BENCH_CONCURRENCY, default 1000);
                         a second burn-down always runs with the worker's defaults
  --claim-batch N        claim batch size of the tuned burn-down (AWA_BENCH_CLAIM_BATCH, default: the worker's)
  --rate N               offered jobs/s for pickup latency (AWA_BENCH_RATE; default 1000, capped at a tenth
                         of the baseline commit rate so the offered load stays well within the server's)
  --latency-seconds S    how long to offer them (AWA_BENCH_LATENCY_SECONDS, default 5)
  --baseline-seconds S   length of each baseline loop (AWA_BENCH_BASELINE_SECONDS, default 2)
  --rounds N             head-to-head rounds when both engines run (AWA_BENCH_ROUNDS, default 3; 0 skips them)
  --sustained-rate N     offered jobs/s of the head-to-head's sustained pickup run (AWA_BENCH_SUSTAINED_RATE;
                         default a quarter of the baseline commit rate)
  --sustained-seconds S  how long to offer them (AWA_BENCH_SUSTAINED_SECONDS, default 15; 0 skips that run)
  --fsync on|off         fsync of the embedded server (AWA_BENCH_FSYNC, default on); off models a disk whose
                         flushes cost nothing, to compare with figures measured on such a machine
  --database-url URL     use this server instead of an embedded one (DATABASE_URL)
  --help`

// `pnpm bench -- --jobs 5000` passes the "--" through; drop it.
const argv = process.argv.slice(2)
// A flag parseArgs refuses (unknown, or a value it takes for another flag) ends the run with its message, not a
// stack trace.
const parsed = (() => {
  try {
    return parseArgs({
      args: argv[0] === "--" ? argv.slice(1) : argv,
      options: {
        engine: { type: "string" },
        "pinned-jobs": { type: "string" },
        jobs: { type: "string" },
        workers: { type: "string" },
        concurrency: { type: "string" },
        "claim-batch": { type: "string" },
        rate: { type: "string" },
        "latency-seconds": { type: "string" },
        "baseline-seconds": { type: "string" },
        "database-url": { type: "string" },
        rounds: { type: "string" },
        "sustained-rate": { type: "string" },
        "sustained-seconds": { type: "string" },
        fsync: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      allowPositionals: false,
    })
  } catch (error) {
    console.error(
      `bench: ${error instanceof Error ? error.message : String(error)}\n(pnpm bench --help lists the flags)`,
    )
    process.exit(2)
  }
})()
const { values } = parsed
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

const engineText = values.engine ?? (process.env.AWA_BENCH_ENGINE || "canonical")
const engineChoices: Readonly<Record<string, ReadonlyArray<EngineName>>> = {
  canonical: ["canonical"],
  queue_storage: ["queue_storage"],
  both: ["canonical", "queue_storage"],
}
const engines = engineChoices[engineText]
if (engines === undefined) {
  console.error(
    `bench: AWA_BENCH_ENGINE / --engine must be canonical, queue_storage or both, got "${engineText}"`,
  )
  process.exit(2)
}
const pinnedText = values["pinned-jobs"] ?? process.env.AWA_BENCH_PINNED_JOBS
const pinnedJobs =
  pinnedText === "0" ? 0 : Math.round(numberOption(values["pinned-jobs"], "AWA_BENCH_PINNED_JOBS", 100_000)!)
const jobs = Math.round(numberOption(values.jobs, "AWA_BENCH_JOBS", 20_000)!)
const workers = Math.round(numberOption(values.workers, "AWA_BENCH_WORKERS", 1)!)
const concurrency = Math.round(numberOption(values.concurrency, "AWA_BENCH_CONCURRENCY", 1000)!)
const claimBatch = numberOption(values["claim-batch"], "AWA_BENCH_CLAIM_BATCH", undefined)
const rateGiven = numberOption(values.rate, "AWA_BENCH_RATE", undefined)
const latencyMs = numberOption(values["latency-seconds"], "AWA_BENCH_LATENCY_SECONDS", 5)! * 1000
const baselineMs = numberOption(values["baseline-seconds"], "AWA_BENCH_BASELINE_SECONDS", 2)! * 1000
const roundsText = values.rounds ?? process.env.AWA_BENCH_ROUNDS
const rounds = roundsText === "0" ? 0 : Math.round(numberOption(values.rounds, "AWA_BENCH_ROUNDS", 3)!)
const sustainedRateGiven = numberOption(values["sustained-rate"], "AWA_BENCH_SUSTAINED_RATE", undefined)
const sustainedText = values["sustained-seconds"] ?? process.env.AWA_BENCH_SUSTAINED_SECONDS
const sustainedMs =
  sustainedText === "0"
    ? 0
    : numberOption(values["sustained-seconds"], "AWA_BENCH_SUSTAINED_SECONDS", 15)! * 1000
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

interface Measured<A> {
  readonly result: A
  readonly cost: PhaseCost
}

/** Everything measured for one engine. */
interface EngineRun {
  readonly engine: EngineName
  readonly base1: Measured<BaselineResult>
  readonly baseEnd: Measured<BaselineResult>
  readonly base4: Measured<BaselineResult>
  readonly many: Measured<number>
  readonly copy: Measured<number>
  readonly single: Measured<{ count: number; ms: number }>
  readonly burnDefaults: Measured<number>
  readonly burnTuned: Measured<number>
  readonly rate: number
  readonly latency: Measured<Awaited<ReturnType<typeof pickupLatency>>>
  readonly commitLatency: ReadonlyArray<number>
  readonly rtt: ReadonlyArray<number>
  readonly tables: ReadonlyArray<TableStats>
  readonly pinned: PinnedSnapshotResult | undefined
}

// The pickup-latency rates are chosen once, from the first engine's baseline, so every engine is offered the same
// load: a light one (a tenth of the baseline commit rate, at most 1,000/s) and a sustained one (a quarter).
let chosenRate: number | undefined
let sustainedRate: number | undefined

const runEngine = async (server: BenchServer, engine: EngineName): Promise<EngineRun> => {
  const say = (text: string) => log(`[${engine}] ${text}`)
  const db = await server.createDatabase(engine)
  let result: Omit<EngineRun, "pinned">
  try {
    await migrate({ databaseUrl: db.url })
    const url = db.url

    say(`baseline: single-row INSERT per commit, 1 client, ${baselineMs / 1000} s...`)
    const base1 = await measured(url, () => baselineInserts(url, 1, baselineMs))
    say("baseline: 4 clients...")
    const base4 = await measured(url, () => baselineInserts(url, 4, baselineMs))

    say(`enqueue: ${fmt(jobs)} jobs with insertMany (1,000 per statement)...`)
    const many = await measured(url, () => enqueueInsertMany(url, engine, "bench_insert_many", jobs, 1000))
    say(`enqueue: ${fmt(jobs)} jobs with COPY (for the first burn-down)...`)
    const copy = await measured(url, () => enqueueCopy(url, engine, "bench_burn_defaults", jobs))
    say(`enqueue: one insert per commit for ${baselineMs / 1000} s...`)
    const single = await measured(url, () => enqueueOneByOne(url, engine, "bench_insert_one", baselineMs))

    say(`burn-down: ${fmt(jobs)} no-op jobs, ${workers} worker(s) with default options...`)
    const burnDefaults = await measured(url, () =>
      burnDown(url, engine, "bench_burn_defaults", jobs, workers, {}),
    )
    await enqueueCopy(url, engine, "bench_burn_tuned", jobs)
    say(`burn-down: ${fmt(jobs)} no-op jobs, ${workers} worker(s), ${tuningText}...`)
    const burnTuned = await measured(url, () =>
      burnDown(url, engine, "bench_burn_tuned", jobs, workers, tuning),
    )

    const baseRate = perSecond(base1.result.rows, base1.result.ms)
    chosenRate ??= rateGiven ?? Math.max(10, Math.min(1000, Math.floor(baseRate / 10 / 10) * 10))
    sustainedRate ??= sustainedRateGiven ?? Math.max(10, Math.floor(baseRate / 4 / 10) * 10)
    const rate = chosenRate
    say(
      `pickup latency: ${fmt(rate)} jobs/s offered for ${latencyMs / 1000} s, one worker with default options...`,
    )
    const latency = await measured(url, () =>
      pickupLatency(url, engine, "bench_latency", rate, latencyMs, {}),
    )
    say(`latency baseline: single-row INSERTs offered at ${fmt(rate)}/s for ${latencyMs / 1000} s...`)
    const commitLatency = await insertCommitLatency(url, rate, latencyMs)
    say("round trips: 2,000 x SELECT 1 on one connection...")
    const rtt = await roundTrips(url, 2000)
    say(`baseline again (the machine's speed drifts): 1 client, ${baselineMs / 1000} s...`)
    const baseEnd = await measured(url, () => baselineInserts(url, 1, baselineMs))

    await new Promise((r) => setTimeout(r, 500))
    const tables = await awaTableStats(url)
    result = {
      engine,
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
    }
  } finally {
    await db.drop()
  }

  let pinned: PinnedSnapshotResult | undefined
  if (pinnedJobs > 0) {
    // A fresh database, so that every dead tuple counted is this phase's.
    const pinnedDb = await server.createDatabase(`${engine}_pinned`)
    try {
      await migrate({ databaseUrl: pinnedDb.url })
      say(
        `pinned snapshot: ${fmt(pinnedJobs)} jobs enqueued (insertMany) and worked (${tuningText}) while a session idles in a REPEATABLE READ transaction...`,
      )
      pinned = await pinnedSnapshotRun(
        pinnedDb.url,
        engine,
        "bench_pinned",
        pinnedJobs,
        1000,
        tuning,
        ["awa"],
        { rate: chosenRate ?? 100, durationMs: latencyMs },
      )
    } finally {
      await pinnedDb.drop()
    }
  }
  return { ...result, pinned }
}

/** One engine's figures in one head-to-head round. */
interface DuelRun {
  readonly round: number
  readonly engine: EngineName
  readonly burnPerSecond: number
  readonly pickup: ReadonlyArray<number>
  /** Pickup latencies under sustained load (empty when that run is skipped). */
  readonly sustained: ReadonlyArray<number>
}

// Each round works, per engine in a fresh database, the tuned burn-down, a pickup-latency run at the rate of the
// main phase and one at the sustained rate; the engine order alternates between rounds.
const headToHead = async (
  server: BenchServer,
  rate: number,
  sustained: number,
): Promise<ReadonlyArray<DuelRun>> => {
  const duel: Array<DuelRun> = []
  const seconds = Math.max(1, Math.min(3, latencyMs / 1000))
  for (let round = 1; round <= rounds; round++) {
    const order = round % 2 === 1 ? engines : [...engines].reverse()
    for (const engine of order) {
      log(
        `[head to head ${round}/${rounds}] ${engine}: burn-down (${tuningText}), then pickup latency for ${seconds} s` +
          (sustainedMs > 0
            ? ` at ${fmt(rate)}/s and for ${sustainedMs / 1000} s at ${fmt(sustained)}/s...`
            : "..."),
      )
      const db = await server.createDatabase(`${engine}_duel`)
      try {
        await migrate({ databaseUrl: db.url })
        await enqueueCopy(db.url, engine, "bench_duel_burn", jobs)
        const ms = await burnDown(db.url, engine, "bench_duel_burn", jobs, workers, tuning)
        const latency = await pickupLatency(db.url, engine, "bench_duel_latency", rate, seconds * 1000, {})
        const underLoad =
          sustainedMs > 0
            ? await pickupLatency(db.url, engine, "bench_duel_sustained", sustained, sustainedMs, {})
            : undefined
        duel.push({
          round,
          engine,
          burnPerSecond: perSecond(jobs, ms),
          pickup: latency.samples,
          sustained: underLoad?.samples ?? [],
        })
      } finally {
        await db.drop()
      }
    }
  }
  return duel
}

const median = (values: ReadonlyArray<number>): number => percentile(values, 50)

const printHeadToHead = (duel: ReadonlyArray<DuelRun>): void => {
  const [first, second] = engines
  if (first === undefined || second === undefined) return
  const of = (engine: EngineName, round: number) => duel.find((d) => d.engine === engine && d.round === round)
  const roundsRun = [...new Set(duel.map((d) => d.round))]
  const metrics: ReadonlyArray<{
    name: string
    value: (d: DuelRun) => number
    unit: string
    digits: number
  }> = [
    { name: `burn-down, ${tuningText}`, value: (d) => d.burnPerSecond, unit: " jobs/s", digits: 0 },
    { name: "pickup latency p50", value: (d) => percentile(d.pickup, 50), unit: " ms", digits: 2 },
    { name: "pickup latency p95", value: (d) => percentile(d.pickup, 95), unit: " ms", digits: 2 },
    { name: "pickup latency p99", value: (d) => percentile(d.pickup, 99), unit: " ms", digits: 2 },
    ...(sustainedMs > 0
      ? [50, 95, 99].map((p) => ({
          name: `pickup latency p${p}, sustained`,
          value: (d: DuelRun) => percentile(d.sustained, p),
          unit: " ms",
          digits: 2,
        }))
      : []),
  ]
  console.log(
    `\nhead to head: ${roundsRun.length} rounds, ${first} and ${second} back to back in each (order alternating), ` +
      `${fmt(jobs)} jobs per burn-down, pickup at ${fmt(chosenRate ?? 0)}/s` +
      (sustainedMs > 0
        ? ` and, sustained, at ${fmt(sustainedRate ?? 0)}/s for ${sustainedMs / 1000} s`
        : "") +
      "; medians over the rounds, and " +
      `${second} / ${first} per round:`,
  )
  const rows = metrics.map((m) => {
    const a = roundsRun.map((r) => of(first, r)).filter((d) => d !== undefined)
    const b = roundsRun.map((r) => of(second, r)).filter((d) => d !== undefined)
    const ratios = roundsRun.flatMap((r) => {
      const x = of(first, r)
      const y = of(second, r)
      return x === undefined || y === undefined ? [] : [m.value(y) / m.value(x)]
    })
    return [
      m.name,
      `${fmt(median(a.map(m.value)), m.digits)}${m.unit}`,
      `${fmt(median(b.map(m.value)), m.digits)}${m.unit}`,
      `${ratios.map((x) => fmt(x, 2)).join(", ")} (median ${fmt(median(ratios), 2)})`,
    ]
  })
  console.log(table(["metric", first, second, `${second} / ${first}, per round`], rows))
}

const main = async (): Promise<void> => {
  log(
    databaseUrl === undefined
      ? `starting an embedded Postgres with durable settings${fsyncText === "off" ? " but fsync off" : ""}...`
      : "using DATABASE_URL's server...",
  )
  const server = await openBenchServer(databaseUrl, { fsync: fsyncText === "on" })
  try {
    const runs: Array<EngineRun> = []
    for (const engine of engines) runs.push(await runEngine(server, engine))
    const duel =
      engines.length > 1 && rounds > 0
        ? await headToHead(server, chosenRate ?? 100, sustainedRate ?? 100)
        : []
    printReport(server, runs)
    if (duel.length > 0) printHeadToHead(duel)
  } finally {
    await server.close()
  }
}

const ms2 = (n: number) => fmt(n, 2)

/** Rows under a header and a rule, each column as wide as its widest cell. */
const table = (headers: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)))
  const line = (cells: ReadonlyArray<string>) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join("  ")
      .trimEnd()
  return [line(headers), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n")
}

const printReport = (server: BenchServer, runs: ReadonlyArray<EngineRun>): void => {
  type Cell = readonly [value: string, ratio: string]
  const metrics: Array<{ name: string; cells: Array<Cell>; baseline: string }> = []
  const add = (name: string, baseline: string, cell: (r: EngineRun, baseRate: number) => Cell) => {
    metrics.push({ name, baseline, cells: runs.map((r) => cell(r, baseRateOf(r))) })
  }
  const baseRateOf = (r: EngineRun) =>
    (perSecond(r.base1.result.rows, r.base1.result.ms) +
      perSecond(r.baseEnd.result.rows, r.baseEnd.result.ms)) /
    2
  const baseRowsOf = (r: EngineRun) => r.base1.result.rows + r.baseEnd.result.rows
  const baseWalOf = (r: EngineRun) => (r.base1.cost.walBytes + r.baseEnd.cost.walBytes) / baseRowsOf(r)
  const baseCommitsOf = (r: EngineRun) => (r.base1.cost.commits + r.baseEnd.cost.commits) / baseRowsOf(r)
  const ratio = (x: number, base: number) => `${fmt(x / base, 2)}×`
  const perJob = (cost: PhaseCost, n: number) => ({ commits: cost.commits / n, wal: cost.walBytes / n })
  const baselines = runs.map((r) => `${fmt(baseRateOf(r))}/s`).join(" / ")

  add("burn-down, worker defaults", `${baselines} commits`, (r, b) => {
    const rate = perSecond(jobs, r.burnDefaults.result)
    return [`${fmt(rate)} jobs/s`, ratio(rate, b)]
  })
  add(`burn-down, ${tuningText}`, `${baselines} commits`, (r, b) => {
    const rate = perSecond(jobs, r.burnTuned.result)
    return [`${fmt(rate)} jobs/s`, ratio(rate, b)]
  })
  add("enqueue, insertMany (1,000/statement)", `${baselines} rows`, (r, b) => {
    const rate = perSecond(jobs, r.many.result)
    return [`${fmt(rate)} jobs/s`, ratio(rate, b)]
  })
  add("enqueue, COPY", `${baselines} rows`, (r, b) => {
    const rate = perSecond(jobs, r.copy.result)
    return [`${fmt(rate)} jobs/s`, ratio(rate, b)]
  })
  add("enqueue, one insert per commit", `${baselines} rows`, (r, b) => {
    const rate = perSecond(r.single.result.count, r.single.result.ms)
    return [`${fmt(rate)} jobs/s`, ratio(rate, b)]
  })
  add(
    `pickup latency p50/p95/p99 @ ${fmt(runs[0]?.rate ?? 0)}/s`,
    runs
      .map(
        (r) =>
          `${ms2(percentile(r.commitLatency, 50))} / ${ms2(percentile(r.commitLatency, 95))} / ${ms2(percentile(r.commitLatency, 99))} ms`,
      )
      .join("; ") + " per INSERT commit",
    (r) => {
      const s = r.latency.result.samples
      const c = r.commitLatency
      return [
        `${ms2(percentile(s, 50))} / ${ms2(percentile(s, 95))} / ${ms2(percentile(s, 99))} ms`,
        `${fmt(percentile(s, 50) / percentile(c, 50), 1)}× / ${fmt(percentile(s, 95) / percentile(c, 95), 1)}× / ${fmt(percentile(s, 99) / percentile(c, 99), 1)}×`,
      ]
    },
  )
  add("SELECT 1 round trip p50/p95/p99", "", (r) => [
    `${ms2(percentile(r.rtt, 50))} / ${ms2(percentile(r.rtt, 95))} / ${ms2(percentile(r.rtt, 99))} ms`,
    "",
  ])
  add(
    "commits per job: defaults / tuned",
    runs.map((r) => fmt(baseCommitsOf(r), 2)).join(" / ") + " per row",
    (r) => {
      const d = perJob(r.burnDefaults.cost, jobs)
      const t = perJob(r.burnTuned.cost, jobs)
      const b = baseCommitsOf(r)
      return [
        `${fmt(d.commits, 4)} / ${fmt(t.commits, 4)}`,
        `${fmt(d.commits / b, 4)}× / ${fmt(t.commits / b, 4)}×`,
      ]
    },
  )
  add(
    "WAL bytes per job: defaults / tuned",
    runs.map((r) => `${fmt(baseWalOf(r))} B`).join(" / ") + " per row",
    (r) => {
      const d = perJob(r.burnDefaults.cost, jobs)
      const t = perJob(r.burnTuned.cost, jobs)
      const b = baseWalOf(r)
      return [`${fmt(d.wal)} / ${fmt(t.wal)} B`, `${fmt(d.wal / b, 2)}× / ${fmt(t.wal / b, 2)}×`]
    },
  )
  add("commits / WAL per job, latency phase", "", (r) => {
    const c = perJob(r.latency.cost, Math.max(1, r.latency.result.offered))
    return [
      `${fmt(c.commits, 2)} / ${fmt(c.wal)} B`,
      `${fmt(c.commits / baseCommitsOf(r), 2)}× / ${fmt(c.wal / baseWalOf(r), 2)}×`,
    ]
  })
  add("dead tuples in awa tables after the run", "0 (insert only)", (r) => {
    const dead = r.tables.reduce((n, t) => n + t.deadTuples, 0)
    const worked = 2 * jobs + r.latency.result.offered
    return [fmt(dead), `${fmt(dead / Math.max(1, worked), 2)} per job worked`]
  })

  const pinnedRuns = runs.filter((r) => r.pinned !== undefined)
  if (pinnedRuns.length === runs.length && runs.length > 0) {
    add(`pinned snapshot: ${fmt(pinnedJobs)} jobs enqueued + worked`, `${baselines} commits`, (r, b) => {
      const rate = perSecond(r.pinned!.jobs, r.pinned!.ms)
      return [`${fmt(rate)} jobs/s`, ratio(rate, b)]
    })
    add(
      "pinned: WAL bytes per job (enqueue + work)",
      runs.map((r) => `${fmt(baseWalOf(r))} B`).join(" / ") + " per row",
      (r) => {
        const wal = r.pinned!.cost.walBytes / r.pinned!.jobs
        return [`${fmt(wal)} B`, ratio(wal, baseWalOf(r))]
      },
    )
    add(
      "pinned: commits per job (enqueue + work)",
      runs.map((r) => fmt(baseCommitsOf(r), 2)).join(" / ") + " per row",
      (r) => {
        const commits = r.pinned!.cost.commits / r.pinned!.jobs
        return [fmt(commits, 4), `${fmt(commits / baseCommitsOf(r), 4)}×`]
      },
    )
    add(
      `pinned: pickup latency p50/p95/p99 @ ${fmt(runs[0]?.rate ?? 0)}/s, same queue, after the jobs`,
      "",
      (r) => {
        const s = r.pinned!.latency?.samples ?? []
        return [`${ms2(percentile(s, 50))} / ${ms2(percentile(s, 95))} / ${ms2(percentile(s, 99))} ms`, ""]
      },
    )
    add("pinned: dead tuples in schema awa", "0 (insert only)", (r) => {
      const dead = r.pinned!.dead.tables.reduce((n, t) => n + t.deadTuples, 0)
      return [fmt(dead), `${fmt(dead / r.pinned!.jobs, 3)} per job`]
    })
  }

  const headers = [
    "metric",
    ...runs.flatMap((r) => [r.engine, "vs baseline"]),
    "baseline (same server, same run)",
  ]
  const rows = metrics.map((m) => [m.name, ...m.cells.flatMap((c) => [c[0], c[1]]), m.baseline])

  const s = server.settings
  const runLines = runs.map(
    (r) =>
      `  ${r.engine.padEnd(14)} baseline ${fmt(perSecond(r.base1.result.rows, r.base1.result.ms))} commits/s before its phases, ${fmt(perSecond(r.baseEnd.result.rows, r.baseEnd.result.ms))} after (ratios use their mean); ${fmt(perSecond(r.base4.result.rows, r.base4.result.ms))}/s with 4 clients; latency: ${fmt(r.latency.result.samples.length)} of ${fmt(r.latency.result.offered)} jobs picked up (max ${ms2(percentile(r.latency.result.samples, 100))} ms)`,
  )
  const tableLines = runs.flatMap((r) => [
    `  ${r.engine}:`,
    ...r.tables.map(
      (t) =>
        `    ${t.table.padEnd(28)} live ${fmt(t.liveTuples).padStart(8)}  dead ${fmt(t.deadTuples).padStart(8)}  updates ${fmt(t.updates).padStart(8)} (HOT ${fmt(t.hotUpdates)})  autovacuums ${t.autovacuums}`,
    ),
  ])
  const pinnedLines = pinnedRuns.flatMap((r) => {
    const p = r.pinned!
    return [
      `  ${r.engine}: ${fmt(p.jobs)} jobs, xmin pinned at ${p.pinnedXmin}, dead tuples counted with ${p.dead.source}:`,
      ...p.dead.tables.map(
        (t) =>
          `    ${t.table.padEnd(36)} dead ${fmt(t.deadTuples).padStart(9)} (${fmt(t.deadTuples / p.jobs, 3)} per job)  live ${fmt(t.liveTuples).padStart(9)}`,
      ),
    ]
  })
  console.log(`
awa benchmark
  server    ${server.describe}
  settings  PostgreSQL ${s.server_version}, fsync=${s.fsync} synchronous_commit=${s.synchronous_commit} full_page_writes=${s.full_page_writes} shared_buffers=${s.shared_buffers}
  machine   ${cpus().length} CPUs, Node ${process.version}
  run       ${fmt(jobs)} no-op jobs per burn-down, ${workers} worker(s), one insert per job for latency; engines in this order, each in its own scratch databases:
${runLines.join("\n")}

${table(headers, rows)}

awa tables after the run (pg_stat_user_tables):
${tableLines.join("\n")}
${
  pinnedLines.length === 0
    ? ""
    : `
pinned snapshot: a session ran BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1 and stayed idle in that transaction
for the whole phase; dead tuples per table (partitions under their root), counted before it ended:
${pinnedLines.join("\n")}
`
}
Reference (issue 3, same kind of machine, 27k/s baseline): graphile-worker 0.18 with batching ~51k jobs/s
(~1.9× baseline), p99 pickup ~3.5 ms, ~1 KiB WAL and 0.006 commits per job; with its defaults ~7k jobs/s
(~0.26×) at 2 commits per job. Targets (issue 8) with the snapshot pinned: queue storage at most 1 dead tuple
per 100 jobs (canonical: 2 per job) and at most half the canonical engine's WAL per job. Compare ratios:
absolute figures drift with the machine's load and disk.`)
}

main().catch((error: unknown) => {
  console.error(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
  process.exitCode = 1
})
