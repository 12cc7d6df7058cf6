// Queue-storage engine under concurrency: producers on one lane (some rolling back, some still open) never make
// a claimer skip or double-claim a job, and a completion racing a rescue of the same attempt ends exactly one way.
import { describe, expect, it } from "vitest"
import { DatabaseError } from "../src/DatabaseError.js"
import type { AttemptRef, ClaimedJob, InsertRow } from "../src/Engine.js"
import { storageSlots } from "../src/internal/engineRows.js"
import { type Executor, toExecutor, withTransaction } from "../src/PgExecutor.js"
import { makeQueueStorageEngine } from "../src/QueueStorageEngine.js"
import { useAwaDatabase } from "./support/awaDatabase.js"
import { insertIds, qsRow } from "./support/queueStorage.js"

const db = useAwaDatabase()
const engine = makeQueueStorageEngine()
// Short lock waits: a slot a producer holds is skipped (and retried next run), not waited for.
const rotatingEngine = makeQueueStorageEngine({ pruneLockTimeoutMs: 20 })

const row = (n: number, queue = "lane"): InsertRow => qsRow(n, queue)

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * 8 producers (some rolling back, each holding its transaction open a moment) race 4 claimers on one lane, which
 * complete what they claim; then every committed job was claimed exactly once and no rolled-back one ever.
 * `rotating`: a maintainer forces ring rotation, prune and slot retirement all along, and every other producer
 * takes its REPEATABLE READ snapshot before a pause, so it writes into the slot its snapshot saw as current,
 * which the maintainer may have sealed, pruned or retired meanwhile.
 */
const raceProducersAndClaimers = async (rotating: boolean) => {
  const pool = db.pool
  pool.options.max = 18
  const committed = new Set<string>()
  const rolledBack = new Set<string>()
  const claimed: Array<string> = []
  let producing = true
  let counter = 0
  // The lane exists before the race: a REPEATABLE READ producer that cannot see a lane another one created
  // after its snapshot would fail with a serialization error (see the note on lock_lanes).
  const [first] = await engine.insertMany(toExecutor(pool), [row(counter++)])
  if (first?._tag === "Inserted") committed.add(first.id)

  // With `rotating`, a producer starts its round r only once the maintainer has finished r / 3 runs, so about ten
  // maintenance runs interleave with the race however fast the machine runs either side.
  let maintained = 0
  const producer = async (p: number) => {
    for (let round = 0; round < 30; round++) {
      while (rotating && maintained < Math.floor(round / 3)) await pause(1)
      const size = 1 + ((p + round) % 3)
      const abort = (p * 31 + round) % 4 === 0
      let ids: Array<string> = []
      try {
        await withTransaction(pool, async (client) => {
          const x = toExecutor(client)
          if (rotating && p % 2 === 1) {
            await client.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            await client.query("SELECT 1")
            await pause(2 + ((p + round) % 4))
          }
          ids = await insertIds(
            engine,
            x,
            Array.from({ length: size }, () => row(counter++)),
          )
          // Hold the lane for a moment so other producers queue behind us and claimers look meanwhile.
          await pause((p + round) % 3)
          if (abort) throw new Error("roll back on purpose")
        })
        for (const id of ids) committed.add(id)
      } catch (error) {
        if (!(error instanceof Error) || error.message !== "roll back on purpose") throw error
        for (const id of ids) rolledBack.add(id)
      }
    }
  }

  const claimer = async () => {
    const x: Executor = toExecutor(pool)
    let idleAfterProducers = 0
    while (idleAfterProducers < 3) {
      const jobs = await engine.claim(x, { queue: "lane", limit: 4, defaultTimeoutMs: 60_000 })
      for (const job of jobs) claimed.push(job.id)
      if (jobs.length > 0) {
        // Claimed jobs carry their ready slot; plain refs (as from an older client) do not: both must work.
        const refs = jobs.map((j, i): AttemptRef => (i % 2 === 0 ? j : { id: j.id, runLease: j.runLease }))
        const result = await engine.complete(x, refs)
        expect(result.stale).toEqual([])
      } else {
        if (!producing) idleAfterProducers++
        await pause(1)
      }
    }
  }

  let claiming = true
  const maintainer = async () => {
    const x = toExecutor(pool)
    while (claiming) {
      await rotatingEngine.maintainRings(x, { failedMs: 3_600_000, force: true })
      maintained++
      await pause(2)
    }
  }

  const claimers = Array.from({ length: 4 }, () => claimer())
  const maintaining = rotating ? maintainer() : Promise.resolve()
  await Promise.all(Array.from({ length: 8 }, (_, p) => producer(p)))
  producing = false
  await Promise.all(claimers)
  claiming = false
  await maintaining
  // Claimers give up after a few empty claims, and a claim may come back empty while maintenance holds the
  // lane: drain what is left, with nothing else running. Every job must still be there to claim.
  const drained: Array<string> = []
  for (let empty = 0; empty < 2; ) {
    const jobs = await engine.claim(toExecutor(pool), { queue: "lane", limit: 100, defaultTimeoutMs: 60_000 })
    if (jobs.length === 0) empty++
    for (const job of jobs) drained.push(job.id)
    if (jobs.length > 0) await engine.complete(toExecutor(pool), jobs)
  }
  claimed.push(...drained)

  expect(rolledBack.size).toBeGreaterThan(0)
  expect(committed.size).toBeGreaterThan(100)
  // Every committed job claimed exactly once; no rolled-back job ever claimed.
  expect(new Set(claimed).size).toBe(claimed.length)
  expect(new Set(claimed)).toEqual(committed)
  for (const id of rolledBack) expect(committed.has(id)).toBe(false)
  const stats = await engine.queueStats(toExecutor(pool))
  // With the ring rotating, the completed history may have left with its slots, and the queue with it.
  const counts = stats.find((s) => s.queue === "lane")?.counts
  if (!rotating) expect(counts?.completed).toBe(committed.size)
  expect(counts ?? { available: 0, running: 0 }).toMatchObject({ available: 0, running: 0 })
}

describe("queue storage under concurrency", () => {
  it("never skips or double-claims a job while 8 producers (some rolling back) race 4 claimers on one lane", async () => {
    await raceProducersAndClaimers(false)
  })

  it("never skips or double-claims a job while maintenance rotates, prunes and retires ring slots under them", async () => {
    await raceProducersAndClaimers(true)
  })

  it("claims no job of a lane past a producer still in flight on it, and every job once it ends", async () => {
    const x = toExecutor(db.pool)
    for (const outcome of ["COMMIT", "ROLLBACK"] as const) {
      const queue = `flight-${outcome.toLowerCase()}`
      // The lane exists already (a producer creating a lane holds its new row until it commits).
      await engine.insertMany(x, [row(0, queue)])
      const [first] = await engine.claim(x, { queue, limit: 1, defaultTimeoutMs: 60_000 })
      await engine.complete(x, [{ id: first!.id, runLease: first!.runLease }])
      const open = await db.pool.connect()
      try {
        await open.query("BEGIN")
        const [early] = await insertIds(engine, toExecutor(open), [row(1, queue)])
        // A later producer on the same lane commits without waiting for the open one.
        const late = await insertIds(engine, x, [row(2, queue), row(3, queue)])
        // Claiming the later jobs now would move the lane's cursor past the open producer's job.
        expect(await engine.claim(x, { queue, limit: 10, defaultTimeoutMs: 60_000 })).toEqual([])
        await open.query(outcome)
        const jobs = await engine.claim(x, { queue, limit: 10, defaultTimeoutMs: 60_000 })
        expect(jobs.map((j) => j.id)).toEqual(outcome === "COMMIT" ? [early!, ...late] : late)
        expect(
          (
            await engine.complete(
              x,
              jobs.map((j) => ({ id: j.id, runLease: j.runLease })),
            )
          ).stale,
        ).toEqual([])
      } finally {
        open.release()
      }
    }
  })

  it("refuses to claim inside a REPEATABLE READ or SERIALIZABLE transaction, and hands nothing out", async () => {
    const x = toExecutor(db.pool)
    const [id] = await insertIds(engine, x, [row(1, "isolation")])
    for (const level of ["REPEATABLE READ", "SERIALIZABLE"]) {
      const client = await db.pool.connect()
      try {
        await client.query(`BEGIN ISOLATION LEVEL ${level}`)
        const refused = await engine
          .claim(toExecutor(client), { queue: "isolation", limit: 1, defaultTimeoutMs: 60_000 })
          .then(
            () => undefined,
            (error: unknown) => error as DatabaseError,
          )
        expect(refused).toBeInstanceOf(DatabaseError)
        expect(refused?.sqlState).toBe("25000")
        expect(refused?.message).toContain(`cannot run in a ${level} transaction`)
      } finally {
        await client.query("ROLLBACK")
        client.release()
      }
    }
    // In READ COMMITTED (its own transaction) the job is there to claim, once.
    const jobs = await engine.claim(x, { queue: "isolation", limit: 5, defaultTimeoutMs: 60_000 })
    expect(jobs.map((j) => j.id)).toEqual([id])
  })

  it("ends a completion racing a rescue of the same attempt exactly one way", async () => {
    const x = toExecutor(db.pool)
    for (let round = 0; round < 12; round++) {
      const [id] = await insertIds(engine, x, [row(round, "race")])
      const [job] = await engine.claim(x, { queue: "race", limit: 1, defaultTimeoutMs: 1 })
      expect(job?.id).toBe(id)
      // Half the rounds complete by the claimed job (with its ready slot), half by a plain ref (without).
      const ref: AttemptRef = round % 4 < 2 ? job! : { id: job!.id, runLease: job!.runLease }
      await pause(5)
      const rescue = withTransaction(db.pool, async (client) => {
        const tx = toExecutor(client)
        const found = await engine.findRescuable(tx, { staleAfterMs: 60_000, deadlineGraceMs: 0, limit: 10 })
        const mine = found.filter((c) => c.ref.id === ref.id)
        if (round % 2 === 0) await pause(2)
        return engine.retry(
          tx,
          mine.map((c) => ({
            ref: c.ref,
            attempt: c.attempt,
            delayMs: 60_000,
            error: { kind: "rescued" as const, message: "rescued" },
          })),
        )
      })
      const completion = (async () => {
        if (round % 2 === 1) await pause(2)
        return engine.complete(x, [ref])
      })()
      const [rescued, completed] = await Promise.all([rescue, completion])
      const wins = rescued.applied.length + completed.applied.length
      expect(wins).toBe(1)
      const stored = await engine.getJob(x, ref.id)
      if (completed.applied.length === 1) {
        expect(stored).toMatchObject({ state: "completed", attempt: 1, runLease: 1 })
      } else {
        expect(completed.stale).toEqual([ref])
        expect(stored).toMatchObject({ state: "retryable", attempt: 1, runLease: 1 })
        expect(stored?.errors.map((e) => e.kind)).toEqual(["rescued"])
      }
    }
  })

  it("serializes a rescue and a completion held open in separate transactions on the closure", async () => {
    const x = toExecutor(db.pool)
    for (const completeFirst of [true, false]) {
      const [id] = await insertIds(engine, x, [row(1, completeFirst ? "hold-a" : "hold-b")])
      const [job] = await engine.claim(x, {
        queue: completeFirst ? "hold-a" : "hold-b",
        limit: 1,
        defaultTimeoutMs: 60_000,
      })
      // The claimed job itself, with its ready slot: the completion's closure insert meets the rescue's.
      const ref: AttemptRef = job!
      expect(ref.id).toBe(id)
      const retryItem = {
        ref,
        attempt: 1,
        delayMs: 60_000,
        error: { kind: "rescued" as const, message: "rescued" },
      }
      const first = await db.pool.connect()
      try {
        await first.query("BEGIN")
        const firstResult = completeFirst
          ? await engine.complete(toExecutor(first), [ref])
          : await engine.retry(toExecutor(first), [retryItem])
        expect(firstResult.applied).toEqual([ref])
        // The second writer blocks on the first one's closure, then finds it taken.
        const second = completeFirst ? engine.retry(x, [retryItem]) : engine.complete(x, [ref])
        await pause(20)
        await first.query("COMMIT")
        expect((await second).stale).toEqual([ref])
      } finally {
        first.release()
      }
      expect((await engine.getJob(x, ref.id))?.state).toBe(completeFirst ? "completed" : "retryable")
    }
  })
  it("completes by the ready slot a claim returns, by id alone without it, and through the two-argument SQL form", async () => {
    const x = toExecutor(db.pool)
    const ids = await insertIds(engine, x, [row(1, "slots"), row(2, "slots"), row(3, "slots")])
    const jobs = await engine.claim(x, { queue: "slots", limit: 3, defaultTimeoutMs: 60_000 })
    expect(jobs.map((j) => j.id)).toEqual(ids)
    const [viaSlot, viaId, viaSql] = jobs as [ClaimedJob, ClaimedJob, ClaimedJob]
    const { rows } = await db.pool.query<{ slot: number }>(
      "SELECT ready_slot AS slot FROM awa.ready_entries WHERE id = ANY ($1::bigint[]) ORDER BY id",
      [ids],
    )
    expect(storageSlots(jobs)).toEqual(rows.map((r) => r.slot))
    expect((await engine.complete(x, [viaSlot])).applied).toEqual([viaSlot])
    const plain: AttemptRef = { id: viaId.id, runLease: viaId.runLease }
    expect(storageSlots([plain])).toEqual([null])
    expect((await engine.complete(x, [plain])).applied).toEqual([plain])
    const old = await db.pool.query<{ id: string }>(
      "SELECT c.id FROM awa.complete_attempts($1::bigint[], $2::bigint[]) c",
      [[viaSql.id], [viaSql.runLease]],
    )
    expect(old.rows.map((r) => String(r.id))).toEqual([viaSql.id])
    for (const id of ids) expect((await engine.getJob(x, id))?.state).toBe("completed")
    // Completing again changes nothing and counts as applied (the closure says completed).
    expect((await engine.complete(x, [viaSlot])).applied).toEqual([viaSlot])
    const stats = await engine.queueStats(x)
    expect(stats.find((q) => q.queue === "slots")?.counts).toMatchObject({ running: 0, completed: 3 })
  })

  it("leaves no lane's busy lock held after claims, so producers never wait for a finished claimer", async () => {
    const x = toExecutor(db.pool)
    await engine.insertMany(x, [row(1, "busy"), row(2, "busy")])
    for (let i = 0; i < 3; i++) await engine.claim(x, { queue: "busy", limit: 1, defaultTimeoutMs: 60_000 })
    const { rows } = await db.pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM pg_locks k
       WHERE k.locktype = 'advisory' AND k.classid = (awa.lock_space(6)::bigint & 4294967295)::oid
         AND k.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())`,
    )
    expect(Number(rows[0]!.n)).toBe(0)
    // A producer in an open transaction holds its lane busy (shared) until it ends; a claim meanwhile still
    // answers at once (it reads the reservations instead) and leaves the lock as it found it.
    const open = await db.pool.connect()
    try {
      await open.query("BEGIN")
      await engine.insertMany(toExecutor(open), [row(3, "busy")])
      const held = await db.pool.query<{ mode: string }>(
        `SELECT k.mode FROM pg_locks k
         WHERE k.locktype = 'advisory' AND k.classid = (awa.lock_space(6)::bigint & 4294967295)::oid
         AND k.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())`,
      )
      expect(held.rows.map((r) => r.mode)).toEqual(["ShareLock"])
      expect(await engine.claim(x, { queue: "busy", limit: 5, defaultTimeoutMs: 60_000 })).toEqual([])
      await open.query("COMMIT")
    } finally {
      open.release()
    }
    expect((await engine.claim(x, { queue: "busy", limit: 5, defaultTimeoutMs: 60_000 })).length).toBe(1)
  })
})
