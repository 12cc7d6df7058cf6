// The benchmark's measured phases. Each opens its own connections and closes them before its closing
// snapshot, so the server has published every commit of the phase when the counters are read.
import { performance } from "node:perf_hooks"
import { setTimeout as sleep } from "node:timers/promises"
import { defineJob } from "@awa/model/JobDefinition"
import type { EngineName } from "@awa/runtime/Engine"
import { handle } from "@awa/runtime/JobHandler"
import { job, makeProducer } from "@awa/runtime/Producer"
import { Worker, type WorkerOptions } from "@awa/runtime/Worker"
import { Schema } from "effect"
import {
  benchPool,
  type DeadTupleReport,
  deadTuples,
  holdSnapshot,
  openBaselineInserter,
  type Snapshot,
  snapshot,
  vacuumSchemas,
} from "./BenchDatabase.js"

/** A no-op job: the benchmark measures the queue, not the work. */
export const NoOp = defineJob({ kind: "bench.noop", args: Schema.Struct({ n: Schema.Number }) })

/** A job that carries the time it was sent, for pickup latency. */
export const Timed = defineJob({ kind: "bench.timed", args: Schema.Struct({ sentAt: Schema.Number }) })

/** What a phase cost the server. */
export interface PhaseCost {
  /** Commits in the scratch database during the phase. */
  readonly commits: number
  /** WAL bytes written by the server during the phase. */
  readonly walBytes: number
}

// Each snapshot is one short session: a couple of commits of its own, published when it exits.
const snapshotOverheadCommits = 2

/** Runs `body` between two snapshots; `body` must close its connections before returning. */
export const measured = async <A>(
  url: string,
  body: () => Promise<A>,
): Promise<{ result: A; cost: PhaseCost }> => {
  await settle()
  const before: Snapshot = await snapshot(url)
  const result = await body()
  await settle()
  const after: Snapshot = await snapshot(url)
  return {
    result,
    cost: {
      commits: Math.max(0, after.commits - before.commits - snapshotOverheadCommits),
      walBytes: after.walBytes - before.walBytes,
    },
  }
}

// Exiting backends publish their statistics as they exit; give them a moment.
const settle = () => sleep(300)

const chunks = <T>(items: ReadonlyArray<T>, size: number): Array<ReadonlyArray<T>> => {
  const out: Array<ReadonlyArray<T>> = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}

/** Enqueues `count` no-op jobs on `queue` with `insertMany`, `batch` per statement (one commit each). */
export const enqueueInsertMany = async (
  url: string,
  engine: EngineName,
  queue: string,
  count: number,
  batch: number,
): Promise<number> => {
  const pool = benchPool(url, 2)
  const producer = makeProducer({ engine })
  const jobs = Array.from({ length: count }, (_, n) => job(NoOp, { n }, { queue }))
  const start = performance.now()
  for (const part of chunks(jobs, batch)) await producer.insertMany(pool, part)
  const ms = performance.now() - start
  await pool.end()
  return ms
}

/** Enqueues `count` no-op jobs on `queue` with one COPY (one commit). */
export const enqueueCopy = async (
  url: string,
  engine: EngineName,
  queue: string,
  count: number,
): Promise<number> => {
  const pool = benchPool(url, 2)
  const producer = makeProducer({ engine })
  const jobs = Array.from({ length: count }, (_, n) => job(NoOp, { n }, { queue }))
  const start = performance.now()
  await producer.insertCopy(pool, jobs)
  const ms = performance.now() - start
  await pool.end()
  return ms
}

/** Enqueues jobs one `insert` (one commit) at a time for `durationMs`; returns how many and how long. */
export const enqueueOneByOne = async (
  url: string,
  engine: EngineName,
  queue: string,
  durationMs: number,
): Promise<{ count: number; ms: number }> => {
  const pool = benchPool(url, 2)
  const producer = makeProducer({ engine })
  let count = 0
  const start = performance.now()
  while (performance.now() - start < durationMs) {
    await producer.insert(pool, NoOp, { n: count }, { queue })
    count++
  }
  const ms = performance.now() - start
  await pool.end()
  return { count, ms }
}

/** Worker settings for a phase (the pool is added by the phase). */
export type WorkerTuning = Omit<WorkerOptions, "pool" | "handlers" | "queues">

/**
 * Works `count` pre-inserted no-op jobs on `queue` with `workers` workers and returns the time from
 * starting the workers to the last completion being committed.
 */
export const burnDown = async (
  url: string,
  engine: EngineName,
  queue: string,
  count: number,
  workers: number,
  tuning: WorkerTuning,
): Promise<number> => {
  const pools = Array.from({ length: workers }, () => benchPool(url, 10))
  let completed = 0
  let resolveDone: () => void = () => {}
  const done = new Promise<void>((resolve) => {
    resolveDone = resolve
  })
  const start = performance.now()
  const started = await Promise.all(
    pools.map(async (pool, i) => {
      const worker = await Worker.start({
        ...tuning,
        engine,
        pool,
        id: `bench-burn-${i}`,
        queues: [queue],
        handlers: [handle(NoOp, () => {})],
      })
      worker.subscribe((event) => {
        if (event.type === "completed" && ++completed === count) resolveDone()
      })
      return worker
    }),
  )
  await done
  const ms = performance.now() - start
  await Promise.all(started.map((w) => w.stop()))
  await Promise.all(pools.map((p) => p.end()))
  return ms
}

/**
 * Calls `send` `rate` times a second for `durationMs` without waiting for earlier calls (an open-loop
 * load), and resolves when every call has settled.
 */
const offerAtRate = async (
  rate: number,
  durationMs: number,
  send: () => Promise<unknown>,
): Promise<number> => {
  const total = Math.round((rate * durationMs) / 1000)
  const pending: Array<Promise<unknown>> = []
  const start = performance.now()
  for (let i = 0; i < total; i++) {
    const wait = start + (i * 1000) / rate - performance.now()
    if (wait > 1) await sleep(wait)
    pending.push(send())
  }
  await Promise.all(pending)
  return total
}

/**
 * The latency baseline: single-row INSERTs offered at `rate` per second for `durationMs` on a pool of 4
 * (like the producer's in `pickupLatency`); returns each one's time from sending to its commit's ack, in ms.
 */
export const insertCommitLatency = async (
  url: string,
  rate: number,
  durationMs: number,
): Promise<Array<number>> => {
  const inserter = await openBaselineInserter(url, 4)
  for (let i = 0; i < 20; i++) await inserter.insert()
  const samples: Array<number> = []
  await offerAtRate(rate, durationMs, async () => {
    const sent = performance.now()
    await inserter.insert()
    samples.push(performance.now() - sent)
  })
  await inserter.close()
  return samples
}

/** Latencies from sending an insert to the handler starting, in ms. */
export interface LatencyResult {
  readonly samples: ReadonlyArray<number>
  readonly offered: number
  readonly ms: number
}

/**
 * Offers jobs at `rate` per second for `durationMs` (one insert and commit per job, on its own pool) to one
 * worker with `tuning`, and records for each job the time from just before its INSERT was sent to its
 * handler starting.
 */
export const pickupLatency = async (
  url: string,
  engine: EngineName,
  queue: string,
  rate: number,
  durationMs: number,
  tuning: WorkerTuning,
): Promise<LatencyResult> => {
  const workerPool = benchPool(url, 10)
  const producerPool = benchPool(url, 4)
  const samples: Array<number> = []
  const worker = await Worker.start({
    ...tuning,
    engine,
    pool: workerPool,
    id: "bench-latency",
    queues: [queue],
    handlers: [
      handle(Timed, ({ sentAt }) => {
        samples.push(performance.now() - sentAt)
      }),
    ],
  })
  const producer = makeProducer({ engine })
  // Warm up: prepared statements and connections on both sides.
  for (let i = 0; i < 20; i++)
    await producer.insert(producerPool, Timed, { sentAt: performance.now() }, { queue })
  while (samples.length < 20) await sleep(5)
  samples.length = 0

  const start = performance.now()
  const total = await offerAtRate(rate, durationMs, () =>
    producer.insert(producerPool, Timed, { sentAt: performance.now() }, { queue }),
  )
  const deadline = performance.now() + 10_000
  while (samples.length < total && performance.now() < deadline) await sleep(5)
  const ms = performance.now() - start
  await worker.stop()
  await Promise.all([workerPool.end(), producerPool.end()])
  return { samples: [...samples], offered: total, ms }
}

/** The `p`-th percentile (0..100) of `values`, by nearest rank. */
export const percentile = (values: ReadonlyArray<number>, p: number): number => {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[rank]!
}

/** What the pinned-snapshot phase measured. */
export interface PinnedSnapshotResult {
  /** Jobs enqueued and worked. */
  readonly jobs: number
  /** The horizon the idle-in-transaction session pinned (its backend_xmin). */
  readonly pinnedXmin: string
  /** Time to enqueue every job (insertMany) and work them all, in ms. */
  readonly ms: number
  /** Commits and WAL of enqueueing and working the jobs (not of the vacuum before or the counting after). */
  readonly cost: PhaseCost
  /** Dead tuples per table after the phase, counted while the snapshot was still held. */
  readonly dead: DeadTupleReport
  /** Pickup latency measured after that, the snapshot still held (when asked for). */
  readonly latency: LatencyResult | undefined
}

/**
 * The bloat phase: with a session idle in a REPEATABLE READ transaction that holds its snapshot for the
 * whole phase (as a forgotten `BEGIN` or a long report would), enqueues `count` no-op jobs (insertMany,
 * `batch` per statement) and works them all with one worker with `tuning`; then counts the dead tuples
 * every table of `schemas` holds, still under the pinned horizon, and with `latency`, measures pickup latency
 * as `pickupLatency` does, in `queue` itself (whose dead rows a worker of a busy queue meets), on the tables as
 * the phase left them. Run it in a fresh database: its tables are vacuumed first, so every dead tuple counted
 * is this phase's. WAL and commits are measured around enqueueing and processing together.
 */
export const pinnedSnapshotRun = async (
  url: string,
  engine: EngineName,
  queue: string,
  count: number,
  batch: number,
  tuning: WorkerTuning,
  schemas: ReadonlyArray<string>,
  latency?: { readonly rate: number; readonly durationMs: number },
): Promise<PinnedSnapshotResult> => {
  await vacuumSchemas(url, schemas)
  const holder = await holdSnapshot(url)
  try {
    await settle()
    const before = await snapshot(url)
    const pool = benchPool(url, 2)
    const producer = makeProducer({ engine })
    const start = performance.now()
    for (let n = 0; n < count; n += batch) {
      const size = Math.min(batch, count - n)
      await producer.insertMany(
        pool,
        Array.from({ length: size }, (_, i) => job(NoOp, { n: n + i }, { queue })),
      )
    }
    await pool.end()
    await burnDown(url, engine, queue, count, 1, tuning)
    const ms = performance.now() - start
    await settle()
    const after = await snapshot(url)
    const cost: PhaseCost = {
      commits: Math.max(0, after.commits - before.commits - snapshotOverheadCommits),
      walBytes: after.walBytes - before.walBytes,
    }
    const dead = await deadTuples(url, schemas)
    const pickup =
      latency === undefined
        ? undefined
        : await pickupLatency(url, engine, queue, latency.rate, latency.durationMs, {})
    return { jobs: count, pinnedXmin: holder.xmin, ms, cost, dead, latency: pickup }
  } finally {
    await holder.release()
  }
}
