// Queue-storage hot-path plans do not depend on table statistics: ring partitions are truncated and refilled, so
// their statistics are often of an empty partition, and a plan made from those would read a lane's whole range
// (or hash every tombstone) at each claim. Seen through auto_explain, which reports each nested statement's plan.
import type pg from "pg"
import { describe, expect, it } from "vitest"
import { toExecutor } from "../src/PgExecutor.js"
import { makeQueueStorageEngine } from "../src/QueueStorageEngine.js"
import { useAwaDatabase } from "./support/awaDatabase.js"
import { insertIds, qsRow } from "./support/queueStorage.js"

const db = useAwaDatabase()
const engine = makeQueueStorageEngine()

/** Runs `work` on one session with auto_explain reporting every nested statement's plan as a notice. */
const plansOf = async (work: (client: pg.PoolClient) => Promise<void>): Promise<Array<string>> => {
  const client = await db.pool.connect()
  const plans: Array<string> = []
  const onNotice = (notice: { readonly message: string | undefined }) => {
    if (notice.message?.includes("Query Text:")) plans.push(notice.message)
  }
  client.on("notice", onNotice)
  try {
    await client.query("LOAD 'auto_explain'")
    await client.query(
      "SET auto_explain.log_min_duration = 0; SET auto_explain.log_nested_statements = on; SET auto_explain.log_level = notice",
    )
    await work(client)
  } finally {
    client.off("notice", onNotice)
    client.release(true)
  }
  return plans
}

describe("queue-storage plans", () => {
  it("claims and completes through the lane and id indexes even when statistics say the ring is empty", async () => {
    const x = toExecutor(db.pool)
    // Statistics of an empty ring, as a VACUUM right after migrating (or after a prune) leaves them.
    const { rows } = await db.pool.query<{ name: string }>(
      `SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS name
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = 'awa' AND c.relkind = 'r'
         AND (c.relname LIKE 'ready\\_%' OR c.relname LIKE 'claim\\_batches\\_%' OR c.relname LIKE 'closures\\_%')`,
    )
    expect(rows.length).toBeGreaterThan(10)
    for (const row of rows) await db.pool.query(`VACUUM ANALYZE ${row.name}`)
    await insertIds(
      engine,
      x,
      Array.from({ length: 3_000 }, (_, n) => qsRow(n, "plans")),
    )

    const plans = await plansOf(async (client) => {
      const session = toExecutor(client)
      const claimed = await engine.claim(session, { queue: "plans", limit: 10, defaultTimeoutMs: 60_000 })
      expect(claimed).toHaveLength(10)
      expect((await engine.complete(session, claimed)).stale).toEqual([])
    })
    const ringReads = plans.filter((p) =>
      /Scan( Backward)?( using \S+)? on (ready_entries|claim_batches)/.test(p),
    )
    // The window, the look-ahead, the cursor and the attempt lookup were all reported.
    // The window walks the lane index, the cursor reads the receipts' index, the attempt lookup probes the id
    // index.
    expect(
      ringReads.some((p) => /Scan( Backward)? using claim_batches_\d+_lane_id_max_seq_idx/.test(p)),
    ).toBe(true)
    expect(ringReads.some((p) => /Index Scan using ready_entries_\d+_lane_id_lane_seq_idx/.test(p))).toBe(
      true,
    )
    expect(ringReads.some((p) => /Index Scan (using|on) ready_entries_\d+_id_idx/.test(p))).toBe(true)
    for (const plan of ringReads) {
      expect(plan).not.toMatch(/Seq Scan on (ready_entries|claim_batches)/)
      // No hash join, and lane order from a Merge Append of index scans rather than a Sort of the lane's rows.
      expect(plan).not.toMatch(
        /Hash (Anti |Right |Left |Semi )?Join|(^|->\s+)Sort\s+\([^\n]*\n\s*Sort Key: r\.lane_seq/m,
      )
    }
  })
})
