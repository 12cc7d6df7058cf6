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

/** A scratch database on the benchmark's server. */
export interface BenchDatabase {
  /** The scratch database's URL. */
  readonly url: string
  /** Drops the scratch database. */
  readonly drop: () => Promise<void>
}

/** The server the benchmark runs on: every engine is measured on it, each in scratch databases of its own. */
export interface BenchServer {
  /** One line naming the server, its version and where it came from. */
  readonly describe: string
  /** The settings that matter for the figures, as the server reports them. */
  readonly settings: Readonly<Record<string, string>>
  /** Creates a scratch database (dropped by its `drop`, or by `close` at the latest). */
  readonly createDatabase: (label: string) => Promise<BenchDatabase>
  /** Drops every scratch database left and stops the server if the benchmark started it. */
  readonly close: () => Promise<void>
}

/**
 * Starts the server (an embedded one with durable settings unless `databaseUrl` names a server) and reads
 * its settings from a first scratch database.
 */
export const openBenchServer = async (
  databaseUrl: string | undefined,
  options: { readonly fsync: boolean } = { fsync: true },
): Promise<BenchServer> => {
  const server: PostgresServer = await startPostgres(
    databaseUrl === undefined
      ? {
          provider: "embedded",
          // fsync off models a disk whose flushes are free (a battery-backed cache); commits still write WAL.
          settings: options.fsync ? durableSettings : { ...durableSettings, fsync: "off" },
        }
      : { provider: "database-url", databaseUrl },
  )
  const open = new Set<string>()
  const createScratch = async (label: string): Promise<BenchDatabase> => {
    const url = await createDatabase(
      server.adminUrl,
      `awa_bench_${label}_${process.pid}_${Date.now().toString(36)}`,
    )
    open.add(url)
    return {
      url,
      drop: async () => {
        if (!open.delete(url)) return
        await dropDatabase(server.adminUrl, url)
      },
    }
  }
  let settings: Record<string, string>
  try {
    const first = await createScratch("settings")
    settings = await withClient(first.url, async (client) => {
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
    await first.drop()
  } catch (error) {
    await server.stop()
    throw error
  }
  return {
    describe: server.describe,
    settings,
    createDatabase: createScratch,
    close: async () => {
      try {
        for (const url of [...open]) {
          open.delete(url)
          await dropDatabase(server.adminUrl, url).catch(() => undefined)
        }
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

/** Statistics of the tables in schema awa (only those the run touched). */
export const awaTableStats = (url: string): Promise<ReadonlyArray<TableStats>> =>
  withClient(url, async (client) => {
    await client.query("SELECT pg_stat_clear_snapshot()")
    const { rows } = await client.query<Record<string, string>>(
      `SELECT relname, n_live_tup::text, n_dead_tup::text, n_tup_upd::text, n_tup_hot_upd::text,
         autovacuum_count::text
       FROM pg_stat_user_tables
       WHERE schemaname = 'awa' AND n_tup_ins + n_tup_upd + n_tup_del + n_dead_tup + n_live_tup > 0
       ORDER BY relname`,
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

/** Dead tuples of one table (partitions are counted under their root table). */
export interface DeadTuples {
  /** The table, schema-qualified; a partitioned table stands for all its partitions. */
  readonly table: string
  /** Dead tuples in its heap. */
  readonly deadTuples: number
  /** Live tuples in its heap. */
  readonly liveTuples: number
}

/** Dead-tuple figures of every table of the given schemas, and how they were counted. */
export interface DeadTupleReport {
  /** `pgstattuple` (exact: every heap page read) or `pg_stat_user_tables` (the statistics' counters). */
  readonly source: "pgstattuple" | "pg_stat_user_tables"
  /** Tables with any live or dead tuple, most dead first. */
  readonly tables: ReadonlyArray<DeadTuples>
}

/**
 * Counts dead tuples in every table of `schemas`: exactly with the pgstattuple extension when the server
 * has it (installed into the scratch database), else from pg_stat_user_tables after an ANALYZE (whose
 * estimate also counts dead tuples that a pinned snapshot keeps vacuum from removing).
 */
export const deadTuples = (url: string, schemas: ReadonlyArray<string>): Promise<DeadTupleReport> =>
  withClient(url, async (client) => {
    const exact = await client
      .query("CREATE EXTENSION IF NOT EXISTS pgstattuple")
      .then(() => true)
      .catch(() => false)
    const leaves = `SELECT c.oid, n.nspname || '.' || coalesce(root.relname, c.relname) AS table_name
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      LEFT JOIN pg_class root ON root.oid = pg_partition_root(c.oid) AND root.oid <> c.oid
      WHERE c.relkind = 'r' AND n.nspname = ANY($1::text[])`
    if (exact) {
      const { rows } = await client.query<{ table_name: string; dead: string; live: string }>(
        `SELECT l.table_name, sum(s.dead_tuple_count)::text AS dead, sum(s.tuple_count)::text AS live
         FROM (${leaves}) l CROSS JOIN LATERAL pgstattuple(l.oid) s
         GROUP BY l.table_name ORDER BY sum(s.dead_tuple_count) DESC, l.table_name`,
        [schemas],
      )
      return { source: "pgstattuple", tables: toDeadTuples(rows) }
    }
    for (const schema of schemas) {
      const { rows } = await client.query<{ name: string }>(
        "SELECT quote_ident(schemaname) || '.' || quote_ident(relname) AS name FROM pg_stat_user_tables WHERE schemaname = $1",
        [schema],
      )
      for (const row of rows) await client.query(`ANALYZE ${row.name}`)
    }
    await client.query("SELECT pg_stat_force_next_flush()").catch(() => undefined)
    await client.query("SELECT pg_stat_clear_snapshot()")
    const { rows } = await client.query<{ table_name: string; dead: string; live: string }>(
      `SELECT l.table_name, sum(s.n_dead_tup)::text AS dead, sum(s.n_live_tup)::text AS live
       FROM (${leaves}) l JOIN pg_stat_user_tables s ON s.relid = l.oid
       GROUP BY l.table_name ORDER BY sum(s.n_dead_tup) DESC, l.table_name`,
      [schemas],
    )
    return { source: "pg_stat_user_tables", tables: toDeadTuples(rows) }
  })

const toDeadTuples = (
  rows: ReadonlyArray<{ table_name: string; dead: string; live: string }>,
): Array<DeadTuples> =>
  rows
    .map((r) => ({ table: r.table_name, deadTuples: Number(r.dead), liveTuples: Number(r.live) }))
    .filter((t) => t.deadTuples > 0 || t.liveTuples > 0)

/** VACUUMs every table of `schemas`, so that a phase starts from no dead tuples. */
export const vacuumSchemas = (url: string, schemas: ReadonlyArray<string>): Promise<void> =>
  withClient(url, async (client) => {
    const { rows } = await client.query<{ name: string }>(
      `SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS name
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY($1::text[])`,
      [schemas],
    )
    for (const row of rows) await client.query(`VACUUM ${row.name}`)
  })

/** A session holding a snapshot open (idle in transaction), pinning the xmin horizon until released. */
export interface SnapshotHolder {
  /** The horizon it pins (its backend_xmin), as Postgres reports it. */
  readonly xmin: string
  /** Ends the transaction and closes the session. */
  readonly release: () => Promise<void>
}

/**
 * Opens a session that runs `BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1` and then stays idle in that
 * transaction: like a forgotten `BEGIN` or a long report, it keeps vacuum from removing any tuple that dies
 * after it started.
 */
export const holdSnapshot = async (url: string): Promise<SnapshotHolder> => {
  const client = new pg.Client({ connectionString: url, application_name: "awa-bench-snapshot-holder" })
  await client.connect()
  await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ")
  await client.query("SELECT 1")
  const { rows } = await client.query<{ xmin: string | null }>(
    "SELECT backend_xmin::text AS xmin FROM pg_stat_activity WHERE pid = pg_backend_pid()",
  )
  return {
    xmin: rows[0]?.xmin ?? "none",
    release: async () => {
      await client.query("ROLLBACK").catch(() => undefined)
      await client.end()
    },
  }
}
