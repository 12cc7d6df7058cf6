// Leader election by a lease row with a fencing epoch: the mechanism maintenance (and any future engine
// maintenance, such as ring rotation) uses to be the only writer of its role at any time.
import { randomBytes } from "node:crypto"
import { Data } from "effect"
import type { PoolClient } from "pg"
import { toDatabaseError } from "./DatabaseError.js"
import * as leadersSql from "./internal/sql/leaders.js"
import { type Db, type Executor, type PgPool, toExecutor, transaction } from "./PgExecutor.js"

/*
 * Why a lease row and not a session advisory lock on a direct connection (AWA_DIRECT_DATABASE_URL):
 *
 * - A session lock belongs to a server backend, not to the client that asked for it. Behind a
 *   transaction-pooling PgBouncer the lock lands on whichever backend served that transaction: two workers
 *   can both "hold" it, an unlock runs on another backend, and a lock left on an idle pooled backend blocks
 *   every candidate forever. A second URL that bypasses the pooler fixes that only when every operator
 *   configures it everywhere; one worker without it silently brings the split brain back.
 * - A lease is ordinary rows and single statements, so it behaves the same directly, through a session
 *   pooler and through a transaction pooler, with one mechanism and nothing extra to configure.
 * - Expiry alone is not enough (a paused leader may wake up after its lease ran out and keep writing), so
 *   every term has a fencing epoch and every maintenance write runs in a transaction that first locks the
 *   lease row FOR SHARE and checks (candidate, epoch, expires_at > now()). A takeover updates that row, so
 *   it waits for a write already in flight; once it has happened, the old leader's next check fails and
 *   its write changes nothing (`LeaseLost`).
 * - Time is always the database's clock (`now()` in the statement), never a worker's.
 */

/** The role name of maintenance leadership in `awa.leaders`. */
export const maintenanceRole = "maintenance"

/**
 * What a fenced write presents: the role, this candidate's token and the epoch of the term it believes it
 * holds. A write carrying it is accepted only while that term is the lease's current, live term.
 */
export interface LeaseFence {
  /** The role (e.g. "maintenance"). */
  readonly role: string
  /** The holder's name, as recorded (e.g. a worker id). */
  readonly holder: string
  /** Random per candidate instance, so two candidates given the same name never share a term. */
  readonly token: string
  /** The fencing epoch of the term: it grows with every new term of the role. */
  readonly epoch: number
}

/** A term granted (or renewed) by `acquireLease`. */
export interface Lease extends LeaseFence {
  /** When this term began (database clock). */
  readonly electedAt: Date
  /** When the lease ends unless renewed (database clock). */
  readonly expiresAt: Date
}

/** The lease of a role as stored, for operators and tests. */
export interface LeaseRecord {
  /** The role. */
  readonly role: string
  /** The last holder (the current one while `live`). */
  readonly holder: string
  /** The epoch of the last term. */
  readonly epoch: number
  /** When the last term began. */
  readonly electedAt: Date
  /** When the holder last renewed it. */
  readonly renewedAt: Date
  /** When it ends (or ended). */
  readonly expiresAt: Date
  /** True while the lease has not expired (database clock). */
  readonly live: boolean
}

/** One term of a role, from `awa.leader_terms`. */
export interface LeaseTerm {
  /** The term's epoch. */
  readonly epoch: number
  /** Who held it. */
  readonly holder: string
  /** When it began. */
  readonly electedAt: Date
  /** When its lease ended (or will end, for the current term unless renewed). */
  readonly expiresAt: Date
}

/**
 * A fenced write was refused because the term it carried is no longer the role's current, live term (it
 * expired, was released, or another candidate took over). Nothing of the write was applied.
 */
export class LeaseLost extends Data.TaggedError("LeaseLost")<{
  readonly role: string
  readonly holder: string
  readonly epoch: number
  /** The lease as found: its holder and epoch, and whether it is live; null when the role has no lease. */
  readonly current: { readonly holder: string; readonly epoch: number; readonly live: boolean } | null
}> {
  override get message(): string {
    const now =
      this.current === null
        ? "the role has no lease"
        : this.current.epoch === this.epoch && this.current.live === false
          ? "the lease expired before it was renewed"
          : `the lease is now epoch ${this.current.epoch}, held by ${this.current.holder}${this.current.live ? "" : " (expired)"}`
    return `The ${this.role} leadership of ${this.holder} at epoch ${this.epoch} has ended: ${now}. The write was refused and changed nothing; the candidate steps down and competes again at its next election.`
  }
}

/** Options of `acquireLease`. */
export interface AcquireLeaseOptions {
  /** The role (e.g. "maintenance"). */
  readonly role: string
  /** The holder's name, as recorded. */
  readonly holder: string
  /** This candidate's token (see `newLeaseToken`). */
  readonly token: string
  /** How long the lease lasts from now unless renewed, in milliseconds (positive). */
  readonly ttlMs: number
  /** The epoch of the term this candidate holds, to renew it; omit when it holds none. */
  readonly epoch?: number
}

/** A fresh random candidate token. */
export const newLeaseToken = (): string => randomBytes(12).toString("hex")

// Lease statements are rare (a few per election interval), so they never use named prepared statements:
// they work unchanged through a transaction pooler.
const unprepared = (db: Db): Executor => toExecutor(db, { preparedStatements: false })

/**
 * Takes the role's lease when it is free (expired or released) or renews this candidate's live term, in one
 * statement against the database clock. Resolves to the term (a new epoch when it is a new term, the same
 * epoch when renewed) or null when another candidate holds a live lease. A candidate whose own term expired
 * gets a new epoch, so writes fenced with the old one are refused. Rejects with `DatabaseError`, or
 * `RangeError` for a TTL that is not a positive finite number.
 */
export const acquireLease = async (db: Db, options: AcquireLeaseOptions): Promise<Lease | null> => {
  if (!Number.isFinite(options.ttlMs) || options.ttlMs <= 0) {
    throw new RangeError(`Lease TTL must be a positive number of milliseconds, got ${String(options.ttlMs)}.`)
  }
  const rows = await unprepared(db).query<{ epoch: string; elected_at: Date; expires_at: Date }>(
    "acquire leadership lease",
    leadersSql.acquireLease,
    [options.role, options.holder, options.token, options.ttlMs, options.epoch ?? null],
  )
  const row = rows[0]
  if (row === undefined) return null
  return {
    role: options.role,
    holder: options.holder,
    token: options.token,
    epoch: Number(row.epoch),
    electedAt: row.elected_at,
    expiresAt: row.expires_at,
  }
}

/**
 * Ends this candidate's term now (the lease expires at once, in `awa.leaders` and its term row), so another
 * candidate can take over at its next election. Resolves to false when the term had already ended.
 */
export const releaseLease = async (db: Db, fence: LeaseFence): Promise<boolean> => {
  const rows = await unprepared(db).query<{ released: number }>(
    "release leadership lease",
    leadersSql.releaseLease,
    [fence.role, fence.token, fence.epoch],
  )
  return (rows[0]?.released ?? 0) > 0
}

/**
 * Checks the fence inside the caller's open transaction: locks the role's lease row FOR SHARE (so a
 * takeover waits until this transaction ends) and rejects with `LeaseLost` unless the fence's term is the
 * current, live one. `db` must be bound to one connection inside a transaction (`runFenced` does that);
 * an unbound executor is refused with an `Error`, since the lock would end with the statement.
 */
export const checkFence = async (db: Executor, fence: LeaseFence): Promise<void> => {
  if (!db.bound) {
    throw new Error(
      "checkFence needs an executor bound to one connection inside a transaction; use runFenced(pool, fence, fn).",
    )
  }
  const rows = await db.query<{ holder: string; token: string; epoch: string; live: boolean }>(
    "check leadership fence",
    leadersSql.lockLeaseShared,
    [fence.role],
  )
  const row = rows[0]
  if (row !== undefined && row.token === fence.token && Number(row.epoch) === fence.epoch && row.live) return
  throw new LeaseLost({
    role: fence.role,
    holder: fence.holder,
    epoch: fence.epoch,
    current: row === undefined ? null : { holder: row.holder, epoch: Number(row.epoch), live: row.live },
  })
}

/**
 * Runs `fn` in a transaction on a client of `pool` that first checks the fence (`checkFence`): commits what
 * `fn` wrote only while the fence's term is the current, live term, so a deposed leader's late writes change
 * nothing. Rejects with `LeaseLost` (before `fn` runs) when the term has ended, with whatever `fn` rejects
 * with (rolled back), or with `DatabaseError`. The executor handed to `fn` uses no named prepared
 * statements (it works through a transaction pooler).
 */
export const runFenced = async <T>(
  pool: PgPool,
  fence: LeaseFence,
  fn: (db: Executor) => Promise<T>,
): Promise<T> => {
  let client: PoolClient
  try {
    client = await pool.connect()
  } catch (cause) {
    throw toDatabaseError("fenced transaction", cause)
  }
  // A connection that dies mid-transaction makes the statement reject; without a listener the client's
  // 'error' event would end the process instead.
  let lost: Error | undefined
  const onError = (error: Error) => {
    lost = error
  }
  client.on("error", onError)
  const db = toExecutor(client, { preparedStatements: false })
  try {
    await db.query("begin fenced transaction", transaction.begin, [])
    try {
      await checkFence(db, fence)
      const value = await fn(db)
      await db.query("commit fenced transaction", transaction.commit, [])
      return value
    } catch (error) {
      await db.query("roll back fenced transaction", transaction.rollback, []).catch((rollbackError) => {
        lost ??= rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError))
      })
      throw error
    }
  } finally {
    client.off("error", onError)
    client.release(lost)
  }
}

/** Reads the stored lease of `role`, or null when no candidate ever held it. */
export const readLease = async (db: Db, role: string = maintenanceRole): Promise<LeaseRecord | null> => {
  const rows = await unprepared(db).query<{
    holder: string
    epoch: string
    elected_at: Date
    renewed_at: Date
    expires_at: Date
    live: boolean
  }>("read leadership lease", leadersSql.getLeader, [role])
  const row = rows[0]
  if (row === undefined) return null
  return {
    role,
    holder: row.holder,
    epoch: Number(row.epoch),
    electedAt: row.elected_at,
    renewedAt: row.renewed_at,
    expiresAt: row.expires_at,
    live: row.live,
  }
}

/** Reads the recorded terms of `role`, oldest first (maintenance keeps the most recent ones). */
export const leaseTerms = async (
  db: Db,
  role: string = maintenanceRole,
): Promise<ReadonlyArray<LeaseTerm>> => {
  const rows = await unprepared(db).query<{
    epoch: string
    holder: string
    elected_at: Date
    expires_at: Date
  }>("read leadership terms", leadersSql.listTerms, [role])
  return rows.map((r) => ({
    epoch: Number(r.epoch),
    holder: r.holder,
    electedAt: r.elected_at,
    expiresAt: r.expires_at,
  }))
}

/** Deletes all but the newest `keep` terms of `role` (run as a fenced maintenance write). */
export const pruneLeaseTerms = async (db: Executor, role: string, keep: number): Promise<void> => {
  await db.query("prune leadership terms", leadersSql.pruneTerms, [role, keep])
}
