import { hostname } from "node:os"
import { Duration, Option } from "effect"
import { type Backoff, checkedBackoff, exponentialBackoff } from "./Backoff.js"
import type { Engine, FinalizeInput, RetryInput } from "./Engine.js"
import { type EngineSelection, selectEngine } from "./EngineSelection.js"
import * as leadersSql from "./internal/sql/leaders.js"
import { type Executor, openSession, type PgPool, type Session, transaction } from "./PgExecutor.js"
import { EventHub, type WorkerEventListener } from "./WorkerEvent.js"

/** Tuning of maintenance; every field has a default. */
export interface MaintenanceSettings {
  /** How often a non-leader tries to become leader (default 2 seconds). */
  readonly electionInterval?: Duration.Input
  /** How often due scheduled/retryable jobs are promoted (default 1 second). */
  readonly promoteInterval?: Duration.Input
  /** How often stale or overdue attempts are rescued (default 5 seconds). */
  readonly rescueInterval?: Duration.Input
  /** How often terminal jobs past retention are deleted (default 1 minute). */
  readonly retentionInterval?: Duration.Input
  /** An attempt without a heartbeat for this long is rescued (default 1 minute; keep it well above the workers' heartbeat interval). */
  readonly heartbeatStaleAfter?: Duration.Input
  /** An attempt this long past its deadline is rescued (default 10 seconds; the worker usually acts first). */
  readonly deadlineGrace?: Duration.Input
  /** Completed jobs are kept this long (default 24 hours). */
  readonly completedRetention?: Duration.Input
  /** Failed and cancelled jobs are kept this long (default 7 days). */
  readonly failedRetention?: Duration.Input
  /** Backoff for rescued attempts that get another try (default `exponentialBackoff()`). */
  readonly backoff?: Backoff
  /** Rows per maintenance statement (default 1000). */
  readonly batchSize?: number
}

/** Options of `Maintenance.start`. */
export interface MaintenanceOptions extends MaintenanceSettings, EngineSelection {
  /** The pool whose connection settings the leader session uses. */
  readonly pool: PgPool
  /** Name of this candidate in `awa.leaders` and events (default host:pid). */
  readonly holder?: string
}

/** What one maintenance pass did. */
export interface MaintenanceReport {
  /** Scheduled/retryable jobs made available. */
  readonly promoted: number
  /** Stale or overdue attempts retried or failed. */
  readonly rescued: number
  /** Terminal jobs deleted past retention. */
  readonly deleted: number
}

const ms = (input: Duration.Input | undefined, fallback: number): number => {
  if (input === undefined) return fallback
  const decoded = Duration.fromInput(input)
  const value = Option.isSome(decoded) ? Duration.toMillis(decoded.value) : Number.NaN
  if (!Number.isFinite(value) || value < 0) {
    throw new RangeError(
      `Invalid maintenance duration ${String(input)}: use a finite, non-negative duration.`,
    )
  }
  return value
}

/** The advisory-lock object id of the maintenance leader role (class id is awa's). */
const maintenanceRole = 1
const roleName = "maintenance"

/**
 * Maintenance under an elected leader: every candidate keeps a dedicated session and tries a session
 * advisory lock; the holder promotes due jobs, rescues stale or overdue attempts and deletes terminal jobs
 * past retention. When the leader's session dies (process killed, connection lost) Postgres releases the
 * lock and another candidate takes over at its next election tick.
 */
export class Maintenance {
  /** This candidate's name. */
  readonly holder: string
  readonly #pool: PgPool
  readonly #engine: Engine
  readonly #events: EventHub
  readonly #backoff: Backoff
  readonly #intervals: { election: number; promote: number; rescue: number; retention: number }
  readonly #staleAfterMs: number
  readonly #deadlineGraceMs: number
  readonly #completedMs: number
  readonly #failedMs: number
  readonly #batchSize: number
  #session: Session | undefined
  #leader = false
  #stopped = false
  #lastRun = { promote: 0, rescue: 0, retention: 0 }
  #wake: (() => void) | undefined
  #loop: Promise<void> | undefined
  #busy: Promise<unknown> = Promise.resolve()

  private constructor(options: MaintenanceOptions, events: EventHub) {
    this.holder = options.holder ?? `${hostname()}:${process.pid}`
    this.#pool = options.pool
    this.#engine = selectEngine(options)
    this.#events = events
    this.#backoff =
      options.backoff === undefined
        ? exponentialBackoff()
        : checkedBackoff(options.backoff, (error) =>
            this.#events.emit({ type: "error", context: "backoff", error }),
          )
    this.#intervals = {
      election: ms(options.electionInterval, 2000),
      promote: ms(options.promoteInterval, 1000),
      rescue: ms(options.rescueInterval, 5000),
      retention: ms(options.retentionInterval, 60_000),
    }
    this.#staleAfterMs = ms(options.heartbeatStaleAfter, 60_000)
    this.#deadlineGraceMs = ms(options.deadlineGrace, 10_000)
    this.#completedMs = ms(options.completedRetention, 24 * 3_600_000)
    this.#failedMs = ms(options.failedRetention, 7 * 24 * 3_600_000)
    this.#batchSize = Math.max(1, Math.trunc(options.batchSize ?? 1000))
  }

  /**
   * Starts a maintenance candidate in the background (it connects, then tries to become leader at once).
   * `events` lets a worker share its event hub; standalone callers subscribe with `subscribe`.
   */
  static start(options: MaintenanceOptions, events?: EventHub): Maintenance {
    const maintenance = new Maintenance(options, events ?? new EventHub())
    maintenance.#loop = maintenance.#run()
    return maintenance
  }

  /** True while this candidate holds the leader lock. */
  get isLeader(): boolean {
    return this.#leader
  }

  /** Subscribes to leadership, maintenance and error events. */
  subscribe(listener: WorkerEventListener): () => void {
    return this.#events.subscribe(listener)
  }

  /**
   * Runs every task now (promote, rescue, retention) if this candidate is leader, and returns what it did;
   * returns null when it is not leader. Useful in tests and after changing time-related settings.
   */
  async runNow(): Promise<MaintenanceReport | null> {
    const run = this.#busy.then(async () => {
      if (!this.#leader || this.#session === undefined) return null
      return this.#runTasks(this.#session, Date.now(), true)
    })
    this.#busy = run.catch(() => undefined)
    return run
  }

  /** Stops: releases leadership (if held) and closes the session. */
  async stop(): Promise<void> {
    if (this.#stopped) {
      await this.#loop
      return
    }
    this.#stopped = true
    this.#wake?.()
    await this.#loop
    await this.#busy
    const session = this.#session
    this.#session = undefined
    if (session !== undefined) {
      if (this.#leader) {
        await session.executor
          .query("release leadership", leadersSql.releaseLeaderLock, [maintenanceRole])
          .catch(() => {})
      }
      await session.close()
    }
    this.#setLeader(false)
  }

  #setLeader(leader: boolean): void {
    if (this.#leader === leader) return
    this.#leader = leader
    this.#events.emit({ type: "leadership", leader, holder: this.holder })
  }

  #sleep(delayMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, delayMs)
      function done() {
        clearTimeout(timer)
        resolve()
      }
      this.#wake = done
    })
  }

  async #run(): Promise<void> {
    let failures = 0
    while (!this.#stopped) {
      try {
        const session = await this.#ensureSession()
        if (!this.#leader) {
          const rows = await session.executor.query("elect leader", leadersSql.tryLeaderLock, [
            maintenanceRole,
          ])
          if (rows[0]?.acquired === true) {
            await session.executor.query("record leader", leadersSql.recordLeader, [roleName, this.holder])
            this.#setLeader(true)
          }
        }
        if (this.#leader) {
          const run = this.#busy.then(() => this.#runTasks(session, Date.now(), false))
          this.#busy = run.catch(() => undefined)
          await run
        }
        failures = 0
      } catch (error) {
        failures++
        if (!this.#stopped) this.#events.emit({ type: "error", context: "maintenance", error })
      }
      if (this.#stopped) break
      const tick = this.#leader
        ? Math.min(this.#intervals.promote, this.#intervals.rescue, this.#intervals.retention)
        : this.#intervals.election
      await this.#sleep(failures > 0 ? Math.min(5000, tick * 2 ** Math.min(failures, 4)) : tick)
    }
  }

  async #ensureSession(): Promise<Session> {
    if (this.#session !== undefined) return this.#session
    const session = await openSession(this.#pool, `awa-maintenance:${this.holder}`)
    session.onLost((error) => {
      if (this.#session !== session) return
      this.#session = undefined
      this.#setLeader(false)
      if (!this.#stopped) this.#events.emit({ type: "error", context: "maintenance session", error })
    })
    this.#session = session
    return session
  }

  async #runTasks(session: Session, now: number, force: boolean): Promise<MaintenanceReport> {
    const db = session.executor
    let promoted = 0
    let rescued = 0
    let deleted = 0
    if (force || now - this.#lastRun.promote >= this.#intervals.promote) {
      this.#lastRun.promote = now
      for (let round = 0; round < 10; round++) {
        const n = await this.#engine.promote(db, this.#batchSize)
        promoted += n
        if (n < this.#batchSize) break
      }
    }
    if (force || now - this.#lastRun.rescue >= this.#intervals.rescue) {
      this.#lastRun.rescue = now
      rescued = await this.#rescue(session)
    }
    if (force || now - this.#lastRun.retention >= this.#intervals.retention) {
      this.#lastRun.retention = now
      for (let round = 0; round < 10; round++) {
        const n = await this.#engine.deleteRetained(db, {
          completedMs: this.#completedMs,
          failedMs: this.#failedMs,
          limit: this.#batchSize,
        })
        deleted += n
        if (n < this.#batchSize) break
      }
    }
    if (promoted + rescued + deleted > 0)
      this.#events.emit({ type: "maintenance", promoted, rescued, deleted })
    return { promoted, rescued, deleted }
  }

  // Rescues in one transaction on the leader's session: the candidates stay locked from the decision to the
  // write, so an attempt whose heartbeat arrives meanwhile is not rescued.
  async #rescue(session: Session): Promise<number> {
    const db = session.executor
    await db.query("begin rescue", transaction.begin, [])
    try {
      const rescued = await this.#rescueLocked(db)
      await db.query("commit rescue", transaction.commit, [])
      return rescued
    } catch (error) {
      await db.query("roll back rescue", transaction.rollback, []).catch(() => undefined)
      throw error
    }
  }

  async #rescueLocked(db: Executor): Promise<number> {
    const candidates = await this.#engine.findRescuable(db, {
      staleAfterMs: this.#staleAfterMs,
      deadlineGraceMs: this.#deadlineGraceMs,
      limit: this.#batchSize,
    })
    if (candidates.length === 0) return 0
    const retries: Array<RetryInput> = []
    const failures: Array<FinalizeInput> = []
    for (const c of candidates) {
      const message =
        c.reason === "heartbeat"
          ? `Attempt ${c.attempt} sent no heartbeat for ${this.#staleAfterMs} ms (its worker likely crashed or lost its connection); rescued by maintenance.`
          : `Attempt ${c.attempt} ran more than ${this.#deadlineGraceMs} ms past its deadline; rescued by maintenance.`
      const error = { kind: "rescued" as const, message, name: "AttemptRescued" }
      if (c.attempt >= c.maxAttempts) failures.push({ ref: c.ref, attempt: c.attempt, error })
      else retries.push({ ref: c.ref, attempt: c.attempt, delayMs: this.#backoff(c.attempt), error })
    }
    // One connection: the two writes run one after the other.
    const retried = await this.#engine.retry(db, retries)
    const failed = await this.#engine.fail(db, failures)
    return retried.applied.length + failed.applied.length
  }
}
