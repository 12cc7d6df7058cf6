// The benchmark's one door to Postgres: the server (embedded, or the one DATABASE_URL names) and a scratch
// database on it, server counters (commits, WAL position, table statistics), and the baseline loop.
import { performance } from "node:perf_hooks"
import { createDatabase, dropDatabase, type PostgresServer, startPostgres } from "@awa/testing"
import pg from "pg"

/** Settings of an honest, normal server: durable commits (the test servers turn these off). */
export const durableSettings: Readonly<Record<string, string>> = {
  fsync: "on",
  synchronous_commit: "on",
  full_page_writes: "on",
}

/** The server and the scratch database the benchmark runs in. */
export interface BenchDatabase {
  /** The scratch database's URL. */
  readonly url: string
  /** One line naming the server, its version and where it came from. */
  readonly describe: string
  /** The settings that matter for the figures, as the server reports them. */
  readonly settings: Readonly<Record<string, string>>
  /** Drops the scratch database and stops the server if the benchmark started it. */
  readonly close: () => Promise<void>
}

/** Counters of the whole server and the scratch database at one moment. */
export interface Snapshot {
  /** Committed transactions in the scratch database (pg_stat_database.xact_commit). */
  readonly commits: number
  /** The WAL insert position in bytes (pg_current_wal_lsn()). */
  readonly walBytes: number
}

/** Table statistics of one table in schema awa. */
export interface TableStats {
  readonly table: string
  readonly liveTuples: number
  readonly deadTuples: number
  readonly updates: number
  readonly hotUpdates: number
  readonly autovacuums: number
}

const withClient = async <A>(url: string, use: (client: pg.Client) => Promise<A>): Promise<A> => {
  const client = new pg.Client({ connectionString: url, application_name: "awa-bench" })
  await client.connect()
  try {
    return await use(client)
  } finally {
    await client.end()
  }
}

/**
 * Starts the server (an embedded one with durable settings unless `databaseUrl` names a server) and
 * creates a scratch database on it.
 */
export const openBenchDatabase = async (
  databaseUrl: string | undefined,
  options: { readonly fsync: boolean } = { fsync: true },
): Promise<BenchDatabase> => {
  const server: PostgresServer = await startPostgres(
    databaseUrl === undefined
      ? {
          provider: "embedded",
          // fsync off models a disk whose flushes are free (a battery-backed cache); commits still write WAL.
          settings: options.fsync ? durableSettings : { ...durableSettings, fsync: "off" },
        }
      : { provider: "database-url", databaseUrl },
  )
  let url: string
  try {
    url = await createDatabase(server.adminUrl, `awa_bench_${process.pid}_${Date.now().toString(36)}`)
  } catch (error) {
    await server.stop()
    throw error
  }
  const settings = await withClient(url, async (client) => {
    const names = [
      "server_version",
      "fsync",
      "synchronous_commit",
      "full_page_writes",
      "wal_level",
      "shared_buffers",
    ]
    const { rows } = await client.query<{ name: string; setting: string }>(
      "SELECT name, current_setting(name) AS setting FROM unnest($1::text[]) AS name",
      [names],
    )
    return Object.fromEntries(rows.map((r) => [r.name, r.setting]))
  })
  return {
    url,
    describe: server.describe,
    settings,
    close: async () => {
      try {
        await dropDatabase(server.adminUrl, url)
      } finally {
        await server.stop()
      }
    },
  }
}

/**
 * Reads the counters. Backends publish their statistics when they go idle (at most once a second) and
 * when they exit, so callers close the connections of a phase before taking its closing snapshot.
 */
export const snapshot = (url: string): Promise<Snapshot> =>
  withClient(url, async (client) => {
    await client.query("SELECT pg_stat_clear_snapshot()")
    const { rows } = await client.query<{ commits: string; wal: string }>(
      `SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database())::text AS commits,
         pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::text AS wal`,
    )
    const row = rows[0]!
    return { commits: Number(row.commits), walBytes: Number(row.wal) }
  })

/** Statistics of the tables in schema awa. */
export const awaTableStats = (url: string): Promise<ReadonlyArray<TableStats>> =>
  withClient(url, async (client) => {
    await client.query("SELECT pg_stat_clear_snapshot()")
    const { rows } = await client.query<Record<string, string>>(
      `SELECT relname, n_live_tup::text, n_dead_tup::text, n_tup_upd::text, n_tup_hot_upd::text,
         autovacuum_count::text
       FROM pg_stat_user_tables WHERE schemaname = 'awa' ORDER BY relname`,
    )
    return rows.map((r) => ({
      table: r.relname!,
      liveTuples: Number(r.n_live_tup),
      deadTuples: Number(r.n_dead_tup),
      updates: Number(r.n_tup_upd),
      hotUpdates: Number(r.n_tup_hot_upd),
      autovacuums: Number(r.autovacuum_count),
    }))
  })

/** The result of the baseline loop. */
export interface BaselineResult {
  /** Clients that inserted concurrently. */
  readonly clients: number
  /** Rows inserted (one per commit). */
  readonly rows: number
  /** Wall time of the loop, in ms. */
  readonly ms: number
}

/**
 * The baseline: `clients` connections each inserting one row per commit (autocommit INSERT, prepared) into a
 * scratch table for `durationMs`.
 */
export const baselineInserts = async (
  url: string,
  clients: number,
  durationMs: number,
): Promise<BaselineResult> => {
  await withClient(url, (client) =>
    client.query(
      "CREATE TABLE IF NOT EXISTS bench_baseline (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, n integer NOT NULL, created_at timestamptz NOT NULL DEFAULT now())",
    ),
  )
  const connections = await Promise.all(
    Array.from({ length: clients }, async () => {
      const client = new pg.Client({ connectionString: url, application_name: "awa-bench-baseline" })
      await client.connect()
      return client
    }),
  )
  let rows = 0
  const start = performance.now()
  const end = start + durationMs
  await Promise.all(
    connections.map(async (client) => {
      while (performance.now() < end) {
        await client.query({
          name: "bench_baseline_insert",
          text: "INSERT INTO bench_baseline (n) VALUES ($1)",
          values: [rows],
        })
        rows++
      }
    }),
  )
  const ms = performance.now() - start
  await Promise.all(connections.map((c) => c.end()))
  return { clients, rows, ms }
}

/** One single-row INSERT per call, each its own commit, on a small pool: the baseline for latencies. */
export interface BaselineInserter {
  /** Inserts one row and resolves when its commit is acknowledged. */
  readonly insert: () => Promise<void>
  /** Closes the pool. */
  readonly close: () => Promise<void>
}

/** Opens a baseline inserter on a pool of `max` connections (like the producer's pool). */
export const openBaselineInserter = async (url: string, max: number): Promise<BaselineInserter> => {
  await withClient(url, (client) =>
    client.query(
      "CREATE TABLE IF NOT EXISTS bench_baseline (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, n integer NOT NULL, created_at timestamptz NOT NULL DEFAULT now())",
    ),
  )
  const pool = benchPool(url, max)
  let n = 0
  return {
    insert: async () => {
      await pool.query({
        name: "bench_baseline_insert",
        text: "INSERT INTO bench_baseline (n) VALUES ($1)",
        values: [n++],
      })
    },
    close: () => pool.end(),
  }
}

/**
 * Round-trip times of `SELECT 1` on one connection, in ms: the floor under any latency on this machine at
 * this moment (scheduling noise included).
 */
export const roundTrips = (url: string, count: number): Promise<ReadonlyArray<number>> =>
  withClient(url, async (client) => {
    const times: Array<number> = []
    for (let i = 0; i < count; i++) {
      const start = performance.now()
      await client.query({ name: "bench_select_1", text: "SELECT 1" })
      times.push(performance.now() - start)
    }
    return times
  })

/** A pool for the runtime (workers and producers) on the scratch database. */
export const benchPool = (url: string, max: number): pg.Pool => {
  const pool = new pg.Pool({ connectionString: url, max, application_name: "awa-bench" })
  pool.on("error", () => undefined)
  return pool
}
