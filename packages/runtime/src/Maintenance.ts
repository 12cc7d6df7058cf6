import { hostname } from "node:os"
import { performance } from "node:perf_hooks"
import { Duration, Option } from "effect"
import { type Backoff, checkedBackoff, exponentialBackoff } from "./Backoff.js"
import type { Engine, FinalizeInput, RetryInput } from "./Engine.js"
import { type EngineSelection, selectEngine } from "./EngineSelection.js"
import {
  acquireLease,
  type Lease,
  type LeaseFence,
  LeaseLost,
  maintenanceRole,
  newLeaseToken,
  pruneLeaseTerms,
  readLease,
  releaseLease,
  runFenced,
} from "./LeaderLease.js"
import type { Executor, PgPool } from "./PgExecutor.js"
import { EventHub, type WorkerEventListener } from "./WorkerEvent.js"

/** Tuning of maintenance; every field has a default. */
export interface MaintenanceSettings {
  /** How often a non-leader tries to become leader (default 2 seconds). */
  readonly electionInterval?: Duration.Input
  /**
   * How long a leader's lease lasts unless renewed (default 15 seconds, at least 30 ms); the leader renews it
   * every third of that. A killed leader is replaced within about this long (a stopped one at once).
   */
  readonly leaseTtl?: Duration.Input
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
  /** The pool maintenance runs on (each write in its own short, fenced transaction). */
  readonly pool: PgPool
  /** Name of this candidate in `awa.leaders` and events (default host:pid; candidates sharing a name still never share a term). */
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

// Terms kept in awa.leader_terms per role; older ones are pruned by the retention task.
const termsKept = 1000

/**
 * Maintenance under an elected leader. Every candidate competes for a lease row (`LeaderLease`): the holder
 * renews it every third of its TTL, and promotes due jobs, rescues stale or overdue attempts and deletes
 * terminal jobs past retention, each in a transaction fenced by its term's epoch, so a deposed leader's late
 * writes change nothing. A leader that stops releases the lease and another candidate takes over at its next
 * election; a killed leader's lease expires after its TTL. Needs no session state, so it is correct behind
 * a transaction-pooling PgBouncer as well as on direct connections (see `LeaderLease` for the choice).
 */
export class Maintenance {
  /** This candidate's name. */
  readonly holder: string
  readonly #token = newLeaseToken()
  readonly #pool: PgPool
  readonly #engine: Engine
  readonly #events: EventHub
  readonly #backoff: Backoff
  readonly #intervals: { election: number; promote: number; rescue: number; retention: number }
  readonly #leaseTtlMs: number
  readonly #staleAfterMs: number
  readonly #deadlineGraceMs: number
  readonly #completedMs: number
  readonly #failedMs: number
  readonly #batchSize: number
  #lease: Lease | undefined
  #lastEpoch = 0
  // Local monotonic times: when to renew, and past when the lease surely ended if no renewal got through.
  #renewAt = 0
  #localExpiry = 0
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
    this.#leaseTtlMs = ms(options.leaseTtl, 15_000)
    if (this.#leaseTtlMs < 30) {
      throw new RangeError(
        `Invalid maintenance leaseTtl ${String(options.leaseTtl)}: use at least 30 ms (the leader renews every third of it).`,
      )
    }
    this.#staleAfterMs = ms(options.heartbeatStaleAfter, 60_000)
    this.#deadlineGraceMs = ms(options.deadlineGrace, 10_000)
    this.#completedMs = ms(options.completedRetention, 24 * 3_600_000)
    this.#failedMs = ms(options.failedRetention, 7 * 24 * 3_600_000)
    this.#batchSize = Math.max(1, Math.trunc(options.batchSize ?? 1000))
  }

  /**
   * Starts a maintenance candidate in the background (it tries to become leader at once). `events` lets a
   * worker share its event hub; standalone callers subscribe with `subscribe`. Throws `RangeError` for
   * invalid durations.
   */
  static start(options: MaintenanceOptions, events?: EventHub): Maintenance {
    const maintenance = new Maintenance(options, events ?? new EventHub())
    maintenance.#loop = maintenance.#run()
    return maintenance
  }

  /** True while this candidate holds a live lease (as far as it knows; writes are fenced regardless). */
  get isLeader(): boolean {
    return this.#leader
  }

  /**
   * The fence of the term this candidate holds, or undefined when it is not leader. Engine maintenance that
   * runs outside `runFenced` passes it to `checkFence` inside its own transaction.
   */
  get fence(): LeaseFence | undefined {
    return this.#held()
  }

  #held(): Lease | undefined {
    return this.#leader ? this.#lease : undefined
  }

  /** Subscribes to leadership, maintenance and error events. */
  subscribe(listener: WorkerEventListener): () => void {
    return this.#events.subscribe(listener)
  }

  /**
   * Runs `fn` in a transaction fenced by this candidate's current term (see `runFenced` in `LeaderLease`):
   * for engine maintenance (such as a storage engine's ring rotation) that must only ever be done by the
   * leader. Rejects with `LeaseLost` when this candidate is not leader or its term has ended (it then steps
   * down); nothing `fn` wrote is kept in that case.
   */
  async runFenced<T>(fn: (db: Executor) => Promise<T>): Promise<T> {
    const lease = this.#held()
    if (lease === undefined) {
      const current = await readLease(this.#pool, maintenanceRole)
      throw new LeaseLost({
        role: maintenanceRole,
        holder: this.holder,
        epoch: this.#lastEpoch,
        current:
          current === null ? null : { holder: current.holder, epoch: current.epoch, live: current.live },
      })
    }
    try {
      return await runFenced(this.#pool, lease, fn)
    } catch (error) {
      if (error instanceof LeaseLost) this.#stepDown(lease)
      throw error
    }
  }

  /**
   * Runs every task now (promote, rescue, retention) if this candidate is leader, and returns what it did;
   * returns null when it is not leader (or its term ends meanwhile). Useful in tests and after changing
   * time-related settings.
   */
  async runNow(): Promise<MaintenanceReport | null> {
    const run = this.#busy.then(async () => {
      const lease = this.#held()
      if (lease === undefined) return null
      try {
        return await this.#runTasks(lease, Date.now(), true)
      } catch (error) {
        if (!(error instanceof LeaseLost)) throw error
        this.#stepDown(lease)
        return null
      }
    })
    this.#busy = run.catch(() => undefined)
    return run
  }

  /** Stops: releases the lease (if held), so another candidate can take over at once. */
  async stop(): Promise<void> {
    if (this.#stopped) {
      await this.#loop
      return
    }
    this.#stopped = true
    this.#wake?.()
    await this.#loop
    await this.#busy
    const lease = this.#lease
    this.#lease = undefined
    if (lease !== undefined) await releaseLease(this.#pool, lease).catch(() => false)
    this.#setLeader(false)
  }

  #setLeader(leader: boolean): void {
    if (this.#leader === leader) return
    this.#leader = leader
    this.#events.emit({ type: "leadership", leader, holder: this.holder })
  }

  // The term ended (a fenced write was refused): forget it, unless a newer one was granted meanwhile.
  #stepDown(lease: Lease): void {
    if (this.#lease !== lease) return
    this.#lease = undefined
    this.#setLeader(false)
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
        await this.#elect()
        const lease = this.#held()
        if (lease !== undefined) {
          const run = this.#busy.then(() => this.#runTasks(lease, Date.now(), false))
          this.#busy = run.catch(() => undefined)
          try {
            await run
          } catch (error) {
            if (!(error instanceof LeaseLost)) throw error
            this.#stepDown(lease)
          }
        }
        failures = 0
      } catch (error) {
        failures++
        if (!this.#stopped) this.#events.emit({ type: "error", context: "maintenance", error })
      }
      if (this.#stopped) break
      const tick = this.#leader
        ? Math.min(
            this.#intervals.promote,
            this.#intervals.rescue,
            this.#intervals.retention,
            Math.max(1, this.#renewAt - performance.now()),
          )
        : this.#intervals.election
      await this.#sleep(failures > 0 ? Math.min(5000, tick * 2 ** Math.min(failures, 4)) : tick)
    }
  }

  // Takes the lease when free, or renews this candidate's term when a third of its TTL has passed.
  async #elect(): Promise<void> {
    const now = performance.now()
    if (this.#lease !== undefined && now < this.#renewAt) return
    const held = this.#lease
    let lease: Lease | null
    try {
      lease = await acquireLease(this.#pool, {
        role: maintenanceRole,
        holder: this.holder,
        token: this.#token,
        ttlMs: this.#leaseTtlMs,
        ...(held === undefined ? {} : { epoch: held.epoch }),
      })
    } catch (error) {
      // Unsure whether the renewal landed: keep the term until it surely expired (writes stay fenced).
      if (held !== undefined && performance.now() >= this.#localExpiry) this.#stepDown(held)
      throw error
    }
    if (this.#stopped) {
      if (lease !== null) await releaseLease(this.#pool, lease).catch(() => false)
      return
    }
    if (lease === null) {
      if (held !== undefined) this.#stepDown(held)
      return
    }
    // A new epoch while leader means the old term expired before this renewal: report the change.
    if (held !== undefined && lease.epoch !== held.epoch) this.#setLeader(false)
    this.#lease = lease
    this.#lastEpoch = lease.epoch
    this.#renewAt = now + this.#leaseTtlMs / 3
    this.#localExpiry = now + this.#leaseTtlMs
    this.#setLeader(true)
  }

  // Every task writes in transactions fenced by the term: if the term has ended, `LeaseLost` rejects before
  // anything is written (a pass cut short keeps what earlier transactions committed under the live term).
  async #runTasks(lease: Lease, now: number, force: boolean): Promise<MaintenanceReport> {
    let promoted = 0
    let rescued = 0
    let deleted = 0
    if (force || now - this.#lastRun.promote >= this.#intervals.promote) {
      this.#lastRun.promote = now
      for (let round = 0; round < 10; round++) {
        const n = await runFenced(this.#pool, lease, (db) => this.#engine.promote(db, this.#batchSize))
        promoted += n
        if (n < this.#batchSize) break
      }
    }
    if (force || now - this.#lastRun.rescue >= this.#intervals.rescue) {
      this.#lastRun.rescue = now
      // One transaction: the candidates stay locked from the decision to the write, so an attempt whose
      // heartbeat arrives meanwhile is not rescued.
      rescued = await runFenced(this.#pool, lease, (db) => this.#rescueLocked(db))
    }
    if (force || now - this.#lastRun.retention >= this.#intervals.retention) {
      this.#lastRun.retention = now
      for (let round = 0; round < 10; round++) {
        const n = await runFenced(this.#pool, lease, (db) =>
          this.#engine.deleteRetained(db, {
            completedMs: this.#completedMs,
            failedMs: this.#failedMs,
            limit: this.#batchSize,
          }),
        )
        deleted += n
        if (n < this.#batchSize) break
      }
      await runFenced(this.#pool, lease, (db) => pruneLeaseTerms(db, maintenanceRole, termsKept))
    }
    if (promoted + rescued + deleted > 0)
      this.#events.emit({ type: "maintenance", promoted, rescued, deleted })
    return { promoted, rescued, deleted }
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
