// Quick WAL-per-job and dead-tuple measurement (not committed).
import { execSync } from "node:child_process"
import pg from "pg"
import { canonicalEngine } from "./dist/CanonicalEngine.js"
import { makeQueueStorageEngine } from "./dist/QueueStorageEngine.js"
import { toExecutor } from "./dist/PgExecutor.js"

const N = Number(process.env.N ?? 20000)
const BATCH = Number(process.env.BATCH ?? 100)
const base = "postgres://postgres@localhost:55432/"
const row = (n) => ({ kind: "bench", queue: "bench", argsJson: `{"n":${n}}`, priority: 2, maxAttempts: 5, runAt: null, delayMs: null, timeoutMs: null, tags: [], metadataJson: "{}", uniqueKey: null, uniqueStates: null })

for (const [name, engine] of [["canonical", canonicalEngine], ["queue_storage", makeQueueStorageEngine()]].filter(([n]) => (process.env.ENGINES ?? "canonical,queue_storage").split(",").includes(n))) {
  execSync(`/tmp/pgs/apply.sh awa wal_${name}`, { cwd: "/work/wt/qs-engine", stdio: "ignore" })
  const pool = new pg.Pool({ connectionString: `${base}wal_${name}?host=/tmp/pgs`, max: 4 })
  const pin = await pool.connect()
  await pin.query("BEGIN ISOLATION LEVEL REPEATABLE READ")
  await pin.query("SELECT count(*) FROM awa.queue_storage_meta")
  const x = toExecutor(pool)
  const lsn = async () => (await pool.query("SELECT pg_current_wal_lsn() AS l")).rows[0].l
  const start = await lsn()
  const t0 = Date.now()
  for (let i = 0; i < N; i += BATCH) await engine.insertMany(x, Array.from({ length: BATCH }, (_, k) => row(i + k)))
  const afterEnqueue = await lsn(); const tEnq = Date.now() - t0
  let done = 0
  while (done < N) {
    const jobs = await engine.claim(x, { queue: "bench", limit: BATCH, defaultTimeoutMs: 60000 })
    if (jobs.length === 0) break
    await engine.complete(x, jobs)
    done += jobs.length
  }
  const end = await lsn()
  const ms = Date.now() - t0
  const bytes = async (a, b) => Number((await pool.query("SELECT pg_wal_lsn_diff($1, $2) AS d", [b, a])).rows[0].d)
  await new Promise((r) => setTimeout(r, 1500))
  const dead = (await pool.query("SELECT sum(n_dead_tup)::int AS d FROM pg_stat_user_tables WHERE schemaname = 'awa'")).rows[0].d
  const top = (await pool.query("SELECT relname, n_dead_tup FROM pg_stat_user_tables WHERE schemaname='awa' AND n_dead_tup > 0 ORDER BY 2 DESC LIMIT 5")).rows
  console.log(JSON.stringify({ engine: name, jobs: done, walEnqueuePerJob: Math.round((await bytes(start, afterEnqueue)) / N), walProcessPerJob: Math.round((await bytes(afterEnqueue, end)) / N), walTotalPerJob: Math.round((await bytes(start, end)) / N), deadTuples: dead, deadPer100Jobs: +(dead / N * 100).toFixed(2), top, ms, tEnq }))
  await pin.query("ROLLBACK"); pin.release(); await pool.end()
}
