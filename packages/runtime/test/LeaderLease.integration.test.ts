import { describe, expect, it } from "vitest"
import {
  acquireLease,
  checkFence,
  LeaseLost,
  leaseTerms,
  newLeaseToken,
  readLease,
  releaseLease,
  runFenced,
} from "../src/LeaderLease.js"
import { statement, toExecutor } from "../src/PgExecutor.js"
import { useAwaDatabase } from "./support/awaDatabase.js"
import { latch, waitFor } from "./support/wait.js"

const db = useAwaDatabase()
const role = "test-role"
const candidate = (holder: string, ttlMs = 60_000) => ({ role, holder, token: newLeaseToken(), ttlMs })
const mark = statement("test_mark", "INSERT INTO marks (by) VALUES ($1)", { prepared: false })
const marks = async () =>
  (await db.pool.query("SELECT by FROM marks ORDER BY n")).rows.map((r: { by: string }) => r.by)

describe("LeaderLease", () => {
  it("grants one live lease: others get null until it is released; renewals keep the epoch", async () => {
    const a = candidate("a")
    const b = candidate("b")
    const leaseA = await acquireLease(db.pool, a)
    expect(leaseA).toMatchObject({ role, holder: "a", epoch: 1 })
    expect(await acquireLease(db.pool, b)).toBeNull()
    // The same holder name from another candidate instance does not share the term.
    expect(await acquireLease(db.pool, { ...candidate("a") })).toBeNull()
    const renewed = await acquireLease(db.pool, { ...a, epoch: 1 })
    expect(renewed).toMatchObject({ epoch: 1 })
    expect(renewed!.expiresAt.getTime()).toBeGreaterThanOrEqual(leaseA!.expiresAt.getTime())
    // A candidate that does not know its epoch (e.g. restarted) cannot renew a live term either.
    expect(await acquireLease(db.pool, a)).toBeNull()

    expect(await releaseLease(db.pool, leaseA!)).toBe(true)
    expect(await releaseLease(db.pool, leaseA!)).toBe(false)
    expect(await readLease(db.pool, role)).toMatchObject({ holder: "a", epoch: 1, live: false })
    expect(await acquireLease(db.pool, b)).toMatchObject({ holder: "b", epoch: 2 })
    const terms = await leaseTerms(db.pool, role)
    expect(terms.map((t) => [t.epoch, t.holder])).toEqual([
      [1, "a"],
      [2, "b"],
    ])
    expect(terms[1]!.electedAt.getTime()).toBeGreaterThanOrEqual(terms[0]!.expiresAt.getTime())
  })

  it("gives a holder whose own term expired a new epoch, so its old fence is refused", async () => {
    const a = candidate("a", 50)
    const first = await acquireLease(db.pool, a)
    await waitFor("expired", async () => (await readLease(db.pool, role))?.live === false)
    const second = await acquireLease(db.pool, { ...a, epoch: first!.epoch })
    expect(second).toMatchObject({ epoch: 2 })
    await expect(runFenced(db.pool, first!, async () => 1)).rejects.toBeInstanceOf(LeaseLost)
    await expect(runFenced(db.pool, first!, async () => 1)).rejects.toThrow(
      /leadership of a at epoch 1 has ended: the lease is now epoch 2, held by a\./,
    )
  })

  it("makes a takeover wait for a fenced write in flight; the deposed leader's next write changes nothing", async () => {
    await db.pool.query("CREATE TABLE marks (n serial, by text)")
    const a = candidate("a", 200)
    const leaseA = (await acquireLease(db.pool, a))!
    const gate = latch()
    const entered = latch()
    // a's write starts while its lease is live and is still running when the lease expires.
    const inFlight = runFenced(db.pool, leaseA, async (x) => {
      entered.resolve()
      await gate.promise
      await x.query("mark", mark, ["a, epoch 1"])
      return "committed"
    })
    await entered.promise
    await waitFor("a's lease expired", async () => (await readLease(db.pool, role))?.live === false)
    // b's takeover blocks on the lease row a's transaction holds FOR SHARE.
    let tookOver = false
    const takeover = acquireLease(db.pool, candidate("b")).then((lease) => {
      tookOver = true
      return lease
    })
    await waitFor("b waits for the lease row", async () => {
      const r = await db.pool.query(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%awa.leaders%'",
      )
      return r.rows[0].n === 1
    })
    expect(tookOver).toBe(false)
    gate.resolve()
    expect(await inFlight).toBe("committed")
    expect(await takeover).toMatchObject({ holder: "b", epoch: 2 })
    // a's next write is refused before it runs.
    await expect(
      runFenced(db.pool, leaseA, (x) => x.query("mark", mark, ["a, late"])),
    ).rejects.toBeInstanceOf(LeaseLost)
    expect(await marks()).toEqual(["a, epoch 1"])
  })

  it("refuses bad input: a TTL that is not positive, a fence check outside a transaction", async () => {
    await expect(acquireLease(db.pool, { ...candidate("a"), ttlMs: 0 })).rejects.toThrow(
      /Lease TTL must be a positive number of milliseconds, got 0/,
    )
    await expect(acquireLease(db.pool, { ...candidate("a"), ttlMs: Number.NaN })).rejects.toBeInstanceOf(
      RangeError,
    )
    const lease = (await acquireLease(db.pool, candidate("a")))!
    await expect(checkFence(toExecutor(db.pool), lease)).rejects.toThrow(/needs an executor bound/)
    await expect(runFenced(db.pool, { ...lease, role: "nobody" }, async () => 1)).rejects.toThrow(
      /the role has no lease/,
    )
  })
})
