// Helpers for queue-storage tests: insert rows, work jobs through the engine, and read ground truth (the
// stored terminal jobs per queue and state) next to the live counters and rollups.

import type pg from "pg"
import type { AttemptRef, InsertRow } from "../../src/Engine.js"
import type { Executor } from "../../src/PgExecutor.js"
import type { QueueStorageEngine } from "../../src/QueueStorageEngine.js"

/** An insert row for queue `queue` (kind qs.task and priority 2 unless given), due now unless `delayMs` is given. */
export const qsRow = (
  n: number,
  queue: string,
  options: {
    readonly kind?: string
    readonly priority?: number
    readonly delayMs?: number
    readonly maxAttempts?: number
  } = {},
): InsertRow => ({
  kind: options.kind ?? "qs.task",
  queue,
  argsJson: JSON.stringify({ n }),
  priority: options.priority ?? 2,
  maxAttempts: options.maxAttempts ?? 5,
  runAt: null,
  delayMs: options.delayMs ?? null,
  timeoutMs: null,
  tags: [],
  metadataJson: "{}",
  uniqueKey: null,
  uniqueStates: null,
})

/** Inserts rows and returns their ids (throws on a unique conflict). */
export const insertIds = async (
  engine: QueueStorageEngine,
  x: Executor,
  rows: ReadonlyArray<InsertRow>,
): Promise<Array<string>> =>
  (await engine.insertMany(x, rows)).map((r) => {
    if (r._tag !== "Inserted") throw new Error(`expected an insert, got ${JSON.stringify(r)}`)
    return r.id
  })

/** Claims up to `limit` jobs of `queue` and returns their attempt refs. */
export const claimRefs = async (
  engine: QueueStorageEngine,
  x: Executor,
  queue: string,
  limit = 100,
): Promise<Array<AttemptRef & { readonly attempt: number }>> =>
  (await engine.claim(x, { queue, limit, defaultTimeoutMs: 60_000 })).map((j) => ({
    id: j.id,
    runLease: j.runLease,
    attempt: j.attempt,
  }))

/** Counts keyed `queue/state`, zero entries dropped. */
export type Counts = Record<string, number>

const keyed = (rows: ReadonlyArray<{ queue: string; state: string; n: string | number }>): Counts => {
  const out: Counts = {}
  for (const r of rows) {
    const n = Number(r.n)
    if (n !== 0) out[`${r.queue}/${r.state}`] = (out[`${r.queue}/${r.state}`] ?? 0) + n
  }
  return out
}

/** Ground truth: terminal jobs stored, per queue and state (scans the read model; tests only). */
export const storedTerminal = async (pool: pg.Pool, schema = "awa"): Promise<Counts> =>
  keyed(
    (
      await pool.query(
        `SELECT queue, state, count(*) AS n FROM "${schema}".job_rows(NULL)
         WHERE state IN ('completed', 'failed', 'cancelled') GROUP BY 1, 2`,
      )
    ).rows,
  )

/** The live terminal counters, per queue and state. */
export const liveCounters = async (pool: pg.Pool, schema = "awa"): Promise<Counts> =>
  keyed(
    (
      await pool.query(
        `SELECT queue, state, sum(count) AS n FROM "${schema}".queue_terminal_live_counts GROUP BY 1, 2`,
      )
    ).rows,
  )

/** The rollups of pruned terminal jobs, per queue and state. */
export const rollups = async (pool: pg.Pool, schema = "awa"): Promise<Counts> =>
  keyed(
    (
      await pool.query(
        `SELECT queue, state, sum(count) AS n FROM "${schema}".queue_terminal_rollups GROUP BY 1, 2`,
      )
    ).rows,
  )

/** Rows in one child table of a ring, e.g. `ready_entries`, slot 0. */
export const slotRows = async (pool: pg.Pool, table: string, slot: number, schema = "awa"): Promise<number> =>
  Number((await pool.query(`SELECT count(*) AS n FROM "${schema}"."${table}_${slot}"`)).rows[0].n)

/** The queue ring's current slot. */
export const currentQueueSlot = async (pool: pg.Pool, schema = "awa"): Promise<number> =>
  Number(
    (
      await pool.query(
        `SELECT slot AS s FROM "${schema}".queue_ring_rotations ORDER BY generation DESC LIMIT 1`,
      )
    ).rows[0].s,
  )
