import { randomBytes } from "node:crypto"
import { hostname } from "node:os"
import { performance } from "node:perf_hooks"
import { validateQueueName } from "@awa/model/InsertOptions"
import {
  InvalidJobDefinition,
  JobDeadlineExceeded,
  NoJobHandlers,
  UnknownJobKind,
} from "@awa/model/JobErrors"
import { defaultQueue } from "@awa/model/Limits"
import { checkPoolerOption, isTransactionPooler, PoolerConflict, type PoolerMode } from "@awa/model/Pooler"
import { AwaPrivilegesMissing, AwaSchemaNotReady } from "@awa/model/SchemaErrors"
import { Duration, Effect, Option, Result, type Scope } from "effect"
import { type Backoff, checkedBackoff, exponentialBackoff } from "./Backoff.js"
import { ConnectionLost, type DatabaseError, toDatabaseError } from "./DatabaseError.js"
import type { AttemptRef, ClaimedJob, Engine, ErrorInput } from "./Engine.js"
import {
  checkEngineSelection,
  type EngineResolver,
  type EngineSelection,
  resolveEngine,
  routedEngine,
} from "./EngineSelection.js"
import { NotificationListener } from "./internal/NotificationListener.js"
import { type FinishedAttempt, OutcomeBatcher, type PendingOutcome } from "./internal/OutcomeBatcher.js"
import { type AbortReason, JobAbortedError, type JobContext, type JobHandler } from "./JobHandler.js"
import { isJobOutcome, type JobOutcome } from "./JobOutcome.js"
import { Maintenance, type MaintenanceSettings } from "./Maintenance.js"
import { type Db, type Executor, type PgPool, poolerOf, toExecutor } from "./PgExecutor.js"
import { checkSchema } from "./SchemaCheck.js"
import {
  activateOnFreshStart,
  checkNamedEngine,
  type FreshActivation,
  registerRuntime,
  runtimeVersion,
  unregisterRuntime,
} from "./StorageState.js"
import { EventHub, type WorkerEvent, type WorkerEventListener } from "./WorkerEvent.js"

/** What `Worker.scoped` fails with: the typed refusals of `Worker.start`, or a `DatabaseError` for anything else. */
export type WorkerStartError =
  | AwaSchemaNotReady
  | AwaPrivilegesMissing
  | NoJobHandlers
  | InvalidJobDefinition
  | ConnectionLost
  | DatabaseError

/** Per-queue settings of a worker. */
export interface QueueConfig {
  /** Most jobs of this queue running at once in this worker (default: the worker's `concurrency`). */
  readonly concurrency?: number
}

/** Options of `Worker.start`. */
export interface WorkerOptions extends EngineSelection {
  /** The pool the worker runs its statements on (maintenance too); LISTEN uses a connection of its own. */
  readonly pool: PgPool
  /** Handlers, one per job kind (see `handle`). */
  readonly handlers: ReadonlyArray<JobHandler>
  /**
   * Queues to work: names, or names with settings. Default: the default queues of the handlers'
   * definitions (`"default"` when a definition names none).
   */
  readonly queues?: ReadonlyArray<string> | Readonly<Record<string, QueueConfig>>
  /** Default per-queue concurrency (default 100). */
  readonly concurrency?: number
  /** Most jobs one claim statement takes (default 1000). */
  readonly claimBatchSize?: number
  /**
   * How often an idle queue polls when no NOTIFY arrives (default 1 second, 250 ms with
   * `pooler: "transaction"`; at least 10 ms).
   */
  readonly pollInterval?: Duration.Input
  /** How long finished outcomes wait to share a commit (default 2 ms; a full batch flushes at once). */
  readonly flushInterval?: Duration.Input
  /** Outcomes per flush that trigger an immediate flush (default 1000). */
  readonly flushBatchSize?: number
  /** How often running attempts send heartbeats (default 5 seconds). */
  readonly heartbeatInterval?: Duration.Input
  /** Attempt deadline for jobs without their own `timeout` (default 30 minutes). */
  readonly defaultTimeout?: Duration.Input
  /** Retry delay after a failed attempt (default `exponentialBackoff()`: 1 s doubling, capped at 1 h, 20% jitter). */
  readonly backoff?: Backoff
  /** How long `stop()` lets running jobs finish before releasing them (default 10 seconds). */
  readonly shutdownTimeout?: Duration.Input
  /**
   * LISTEN for new work and cancellations (default true, false with `pooler: "transaction"`); without it
   * the worker polls only (for example behind a transaction-pooling PgBouncer, where LISTEN does not work).
   */
  readonly listen?: boolean
  /**
   * Use server-side prepared statements for the hot statements (default true, false with
   * `pooler: "transaction"`); turn off behind a pooler that does not support them.
   */
  readonly preparedStatements?: boolean
  /**
   * The pooler in front of Postgres (default: none, or the mode of a pool made by `createPool`). With
   * "transaction" (PgBouncer in transaction mode) the worker keeps no session state: no named prepared
   * statements, no LISTEN (it polls, every 250 ms unless `pollInterval` says otherwise). Leader election
   * needs no session state in any mode. `listen: true` or `preparedStatements: true` together with
   * "transaction" throw `PoolerConflict`; an invalid value throws `InvalidPoolerMode`.
   */
  readonly pooler?: PoolerMode
  /** Take part in maintenance leader election (default true), optionally with settings. */
  readonly maintenance?: boolean | MaintenanceSettings
  /** This worker's id in events and `awa.leaders` (default host:pid:random). */
  readonly id?: string
  /**
   * Start without handlers (default false: no handlers is refused with `NoJobHandlers`, since every job
   * claimed would fail as an unknown kind). A worker allowed to have none claims no jobs and only takes part
   * in maintenance.
   */
  readonly allowNoHandlers?: boolean
  /**
   * Check the awa schema before starting (default true), as `awa worker` does: an unmigrated or outdated
   * database rejects `start` with `AwaSchemaNotReady`, a role without the runtime's grants with
   * `AwaPrivilegesMissing`.
   */
  readonly checkSchema?: boolean
}

/** A worker's counters and gauges at one moment. */
export interface WorkerMetrics {
  /** The worker's id. */
  readonly workerId: string
  /** Handlers running now, per queue. */
  readonly inFlight: Readonly<Record<string, number>>
  /** Outcomes waiting to be written. */
  readonly pendingOutcomes: number
  /** Available (claimable) jobs per queue this worker serves, read from the database. */
  readonly depth: Readonly<Record<string, number>>
  /** Totals since start. */
  readonly totals: {
    readonly claimed: number
    readonly completed: number
    readonly retried: number
    readonly snoozed: number
    readonly cancelled: number
    readonly failed: number
    readonly stale: number
  }
  /** Completions per second over the last 10 seconds. */
  readonly completedPerSecond: number
  /** True while this worker is the maintenance leader. */
  readonly leader: boolean
}

/** Options of `Worker.stop`. */
export interface StopOptions {
  /** Overrides the worker's `shutdownTimeout`. */
  readonly timeout?: Duration.Input
}

/** Options of `Worker.workOne`: the database, the handlers, the queue, and the worker settings that apply. */
export interface WorkOneOptions
  extends Pick<
    WorkerOptions,
    "handlers" | "backoff" | "defaultTimeout" | "engine" | "queueStorageSchema" | "id"
  > {
  /** Where to claim and write: a pool, or a client (statements then run inside its open transaction). */
  readonly db: Db
  /** The queue to claim from (default `"default"`). */
  readonly queue?: string
  /** Claim only a job of these kinds (default any kind): jobs of other kinds are left alone. */
  readonly kinds?: ReadonlyArray<string>
}

/** The outcome `Worker.workOne` wrote for the job it worked: the worker event reporting it. */
export type WorkOneOutcome = Extract<
  WorkerEvent,
  { readonly type: "completed" | "retried" | "snoozed" | "cancelled" | "failed" | "stale" }
>

const workOneOutcomeTypes: ReadonlySet<string> = new Set([
  "completed",
  "retried",
  "snoozed",
  "cancelled",
  "failed",
  "stale",
])

const millis = (input: Duration.Input | undefined, fallback: number, what: string, min = 0): number => {
  if (input === undefined) return fallback
  const decoded = Duration.fromInput(input)
  const value = Option.isSome(decoded) ? Duration.toMillis(decoded.value) : Number.NaN
  if (!Number.isFinite(value) || value < min) {
    const expected = min === 0 ? "a finite, non-negative duration" : `a finite duration of at least ${min} ms`
    throw new RangeError(`Worker option ${what}: expected ${expected}, got ${String(input)}.`)
  }
  return value
}

// How long released handlers get to return after their shutdown signal fired before they are reported as
// ignoring it (an `abandoned` event).
const abortGraceMs = 500

// How often a worker renews its row in awa.runtime_instances (the gates count a runtime live for 30 s).
const registrationIntervalMs = 10_000

// The worker's pooler mode (option, else the pool's from `createPool`), refusing settings that need session
// state behind a transaction pooler.
const workerPooler = (options: WorkerOptions): PoolerMode | undefined => {
  const pooler =
    checkPoolerOption(options.pooler, "Worker option pooler") ??
    (options.pool === undefined ? undefined : poolerOf(options.pool))
  if (pooler !== "transaction") return pooler
  if (options.listen === true) {
    throw new PoolerConflict({
      setting: "Worker option listen: true",
      reason:
        "LISTEN belongs to one server connection, which a transaction pooler hands to other clients after each transaction, so notifications would not arrive",
      fix: "Leave listen unset (the worker polls), or connect this worker directly or through a session pooler.",
    })
  }
  if (options.preparedStatements === true) {
    throw new PoolerConflict({
      setting: "Worker option preparedStatements: true",
      reason:
        "a named prepared statement lives on one server connection, so the next transaction may not find it (or find it twice)",
      fix: "Leave preparedStatements unset, or connect this worker directly or through a session pooler.",
    })
  }
  return pooler
}

// Below this, an idle queue (or one whose NOTIFYs cannot arrive) would poll the database without pause.
const minPollMs = 10

const positiveInt = (value: number | undefined, fallback: number, what: string): number => {
  const n = value ?? fallback
  if (!Number.isInteger(n) || n < 1)
    throw new RangeError(`Worker option ${what}: expected a positive integer, got ${n}.`)
  return n
}

// Reads a value a handler produced without trusting it: getters and Proxy traps may throw, and
// `String` of some values throws too. Falls back instead of throwing.
const safely = <A>(read: () => A, fallback: A): A => {
  try {
    return read()
  } catch {
    return fallback
  }
}

// A property of a thrown value as text, or undefined when reading or printing it throws.
const readText = (read: () => unknown): string | undefined =>
  safely(() => {
    const value = read()
    return typeof value === "string" ? value : String(value)
  }, undefined)

/**
 * Describes anything a handler threw, including non-Error values, as an error record. Never throws: an
 * Error whose `message` getter throws, a Proxy whose traps throw, a symbol, or an object that cannot be
 * printed all become a record that says what could be read.
 */
export const describeThrown = (thrown: unknown): ErrorInput => {
  if (safely(() => thrown instanceof Error, false)) {
    const error = thrown as Error
    const name = readText(() => error.name) ?? "Error"
    const message =
      readText(() => error.message) ?? `${name} (its message could not be read: reading it threw)`
    const stack = safely(() => error.stack, undefined) === undefined ? undefined : readText(() => error.stack)
    return {
      kind: "error",
      message: message === "" ? name : message,
      name,
      ...(stack === undefined ? {} : { stack }),
    }
  }
  if (typeof thrown === "string") return { kind: "error", message: thrown, name: "NonError" }
  const text =
    safely(() => JSON.stringify(thrown) as string | undefined, undefined) ??
    safely(() => String(thrown), undefined) ??
    safely(() => Object.prototype.toString.call(thrown), "an unreadable value")
  return { kind: "error", message: `The handler threw a non-Error value: ${text}`, name: "NonError" }
}

interface Attempt {
  readonly job: ClaimedJob
  readonly runner: QueueRunner
  readonly startedAt: number
  controller: AbortController | undefined
  abortReason: AbortReason | undefined
  timer: NodeJS.Timeout | undefined
  released: boolean
  settled: boolean
}

const isThenable = (value: unknown): value is PromiseLike<unknown> =>
  (typeof value === "object" || typeof value === "function") &&
  value !== null &&
  typeof (value as { then?: unknown }).then === "function"

// The context handed to a handler; its AbortController is created only when the handler reads `signal`.
class AttemptContext implements JobContext {
  readonly #attempt: Attempt

  constructor(attempt: Attempt) {
    this.#attempt = attempt
  }

  get job(): ClaimedJob {
    return this.#attempt.job
  }

  get signal(): AbortSignal {
    const attempt = this.#attempt
    if (attempt.controller === undefined) {
      attempt.controller = new AbortController()
      if (attempt.abortReason !== undefined) {
        attempt.controller.abort(new JobAbortedError(attempt.abortReason, attempt.job.id))
      }
    }
    return attempt.controller.signal
  }
}

class QueueRunner {
  inFlight = 0
  #wakeRequested = false
  #waiter: (() => void) | undefined
  #waitingForSlot = false
  loop: Promise<void> = Promise.resolve()

  constructor(
    readonly queue: string,
    readonly concurrency: number,
  ) {}

  /** New work may exist: claim again as soon as possible. */
  wake(): void {
    this.#wakeRequested = true
    const waiter = this.#waiter
    this.#waiter = undefined
    waiter?.()
  }

  /** A handler finished: a claim waiting for a free slot may proceed. */
  slotFreed(): void {
    if (!this.#waitingForSlot) return
    const waiter = this.#waiter
    this.#waiter = undefined
    waiter?.()
  }

  takeWake(): boolean {
    const requested = this.#wakeRequested
    this.#wakeRequested = false
    return requested
  }

  sleep(ms: number, forSlot: boolean): Promise<void> {
    return new Promise((resolve) => {
      this.#waitingForSlot = forSlot
      const timer = setTimeout(done, ms)
      const self = this
      function done() {
        clearTimeout(timer)
        if (self.#waiter === done) self.#waiter = undefined
        self.#waitingForSlot = false
        resolve()
      }
      this.#waiter = done
    })
  }
}

/**
 * Works jobs: claims batches from its queues with `FOR UPDATE SKIP LOCKED`, runs their handlers with
 * per-queue concurrency and per-attempt deadlines, writes outcomes in batches (many jobs per commit),
 * heartbeats running attempts, wakes on LISTEN/NOTIFY with polling as the fallback, and takes part in
 * maintenance leader election. Database outages are retried; outcomes are kept until written.
 */
export class Worker {
  /** This worker's id. */
  readonly id: string
  readonly #pool: PgPool
  readonly #db: Executor
  readonly #engine: Engine
  readonly #resolver: EngineResolver
  readonly #queueStorageSchema: string
  #freshActivation: FreshActivation | undefined
  readonly #events = new EventHub()
  readonly #handlers: ReadonlyMap<string, JobHandler>
  readonly #runners: ReadonlyMap<string, QueueRunner>
  readonly #active = new Map<string, Attempt>()
  readonly #batcher: OutcomeBatcher
  readonly #backoff: Backoff
  readonly #claimBatchSize: number
  readonly #pollMs: number
  readonly #heartbeatMs: number
  readonly #defaultTimeoutMs: number
  readonly #shutdownMs: number
  readonly #maxPending: number
  readonly #listen: boolean
  #listener: NotificationListener | undefined
  #maintenance: Maintenance | undefined
  #heartbeatTimer: NodeJS.Timeout | undefined
  #registrationTimer: NodeJS.Timeout | undefined
  #heartbeating = false
  #stopping = false
  #stopped: Promise<void> | undefined
  #claimed = 0
  #idleWaiters: Array<() => void> = []
  readonly #completedBuckets = new Map<number, number>()
  readonly #onPoolError = (error: Error) => {
    this.#events.emit({
      type: "error",
      context: "idle pool connection",
      error: toDatabaseError("pool", error),
    })
  }

  private constructor(options: WorkerOptions) {
    this.id = options.id ?? `${hostname()}:${process.pid}:${randomBytes(3).toString("hex")}`
    this.#pool = options.pool
    const pooled = isTransactionPooler(workerPooler(options))
    this.#listen = options.listen ?? !pooled
    this.#db = toExecutor(
      options.pool,
      options.preparedStatements === undefined
        ? pooled
          ? { preparedStatements: false }
          : undefined
        : { preparedStatements: options.preparedStatements },
    )
    this.#resolver = resolveEngine(options)
    this.#queueStorageSchema = checkEngineSelection(options).queueStorageSchema
    this.#engine = routedEngine(this.#resolver)
    this.#backoff =
      options.backoff === undefined
        ? exponentialBackoff()
        : checkedBackoff(options.backoff, (error) =>
            this.#events.emit({ type: "error", context: "backoff", error }),
          )
    this.#claimBatchSize = positiveInt(options.claimBatchSize, 1000, "claimBatchSize")
    this.#pollMs = millis(options.pollInterval, pooled ? 250 : 1000, "pollInterval", minPollMs)
    this.#heartbeatMs = millis(options.heartbeatInterval, 5000, "heartbeatInterval", 1)
    this.#defaultTimeoutMs = Math.max(1, millis(options.defaultTimeout, 30 * 60_000, "defaultTimeout"))
    this.#shutdownMs = millis(options.shutdownTimeout, 10_000, "shutdownTimeout")
    const flushBatchSize = positiveInt(options.flushBatchSize, 1000, "flushBatchSize")
    this.#maxPending = flushBatchSize * 20

    const handlers = new Map<string, JobHandler>()
    for (const handler of options.handlers) {
      const kind = handler.definition.kind
      if (handlers.has(kind)) {
        throw new InvalidJobDefinition({
          kind,
          reason: "two handlers are registered for this kind in one worker",
          fix: "Give the worker one handler per kind.",
        })
      }
      handlers.set(kind, handler)
    }
    this.#handlers = handlers

    const concurrency = positiveInt(options.concurrency, 100, "concurrency")
    const queueConfigs: Array<[string, QueueConfig]> =
      options.queues === undefined
        ? [...new Set(options.handlers.map((h) => h.definition.defaults.queue ?? defaultQueue))].map((q) => [
            q,
            {},
          ])
        : Array.isArray(options.queues)
          ? (options.queues as ReadonlyArray<string>).map((q) => [q, {}])
          : Object.entries(options.queues as Record<string, QueueConfig>)
    if (queueConfigs.length === 0) queueConfigs.push([defaultQueue, {}])
    const runners = new Map<string, QueueRunner>()
    for (const [queue, config] of queueConfigs) {
      const valid = validateQueueName("-", queue)
      if (typeof valid !== "string") throw valid
      runners.set(
        queue,
        new QueueRunner(queue, positiveInt(config.concurrency, concurrency, `queues.${queue}.concurrency`)),
      )
    }
    // A worker without handlers claims nothing (it only takes part in maintenance), and needs to say so.
    if (handlers.size === 0 && options.allowNoHandlers !== true) throw new NoJobHandlers()
    this.#runners = handlers.size === 0 ? new Map() : runners

    this.#batcher = new OutcomeBatcher({
      engine: this.#engine,
      db: this.#db,
      events: this.#events,
      delayMs: millis(options.flushInterval, 2, "flushInterval"),
      batchSize: flushBatchSize,
      onCompleted: (n) => {
        const second = Math.floor(Date.now() / 1000)
        this.#completedBuckets.set(second, (this.#completedBuckets.get(second) ?? 0) + n)
        if (this.#completedBuckets.size > 20) {
          for (const key of this.#completedBuckets.keys())
            if (key < second - 10) this.#completedBuckets.delete(key)
        }
      },
    })
  }

  /**
   * Starts a worker: connects its LISTEN session (rejecting with `DatabaseError` when Postgres cannot be
   * reached), starts claiming, heartbeats and maintenance. First checks the awa schema (unless
   * `checkSchema: false`): rejects with `AwaSchemaNotReady` (run `awa migrate`) or `AwaPrivilegesMissing`
   * (names the grants). Throws `InvalidJobDefinition` for two handlers of one kind, `NoJobHandlers` for none
   * (unless `allowNoHandlers`), and `RangeError` for invalid options.
   */
  static async start(options: WorkerOptions): Promise<Worker> {
    const worker = new Worker(options)
    await worker.#start(options)
    return worker
  }

  /**
   * A worker as a scoped Effect resource: started when acquired, stopped (gracefully, within the shutdown
   * timeout) when the scope closes.
   */
  static scoped(options: WorkerOptions): Effect.Effect<Worker, WorkerStartError, Scope.Scope> {
    return Effect.acquireRelease(
      Effect.tryPromise({
        try: () => Worker.start(options),
        catch: (cause): WorkerStartError =>
          cause instanceof AwaSchemaNotReady ||
          cause instanceof AwaPrivilegesMissing ||
          cause instanceof NoJobHandlers ||
          cause instanceof InvalidJobDefinition ||
          cause instanceof ConnectionLost
            ? cause
            : toDatabaseError("start worker", cause),
      }),
      (worker) => Effect.promise(() => worker.stop()),
    )
  }

  /**
   * Claims at most one available job of `options.queue` (of `options.kinds` when given) and works it
   * exactly as a started worker would (handler lookup, args decoding, deadline, outcome and backoff rules,
   * guarded write), then resolves with
   * the event of the outcome once it is written, or null when no job was available. Nothing runs in the
   * background: no LISTEN, heartbeats or maintenance, so a cancel from elsewhere does not reach the
   * handler's signal. For tests and scripts (`@awa/testing` builds `workOne` and `drain` on it). Rejects
   * with `DatabaseError` when the claim or the write fails, and `InvalidJobDefinition`/`RangeError` for bad
   * options, like `start`.
   */
  static async workOne(options: WorkOneOptions): Promise<WorkOneOutcome | null> {
    const queue = options.queue ?? defaultQueue
    const worker = new Worker({
      // The constructor only turns the pool into an executor; the pool itself is used by start and stop,
      // which a one-job worker never runs. So a client (inside the caller's transaction) works too.
      pool: options.db as PgPool,
      handlers: options.handlers,
      queues: [queue],
      concurrency: 1,
      flushInterval: 0,
      listen: false,
      maintenance: false,
      allowNoHandlers: true,
      checkSchema: false,
      ...(options.backoff === undefined ? {} : { backoff: options.backoff }),
      ...(options.defaultTimeout === undefined ? {} : { defaultTimeout: options.defaultTimeout }),
      ...(options.engine === undefined ? {} : { engine: options.engine }),
      ...(options.queueStorageSchema === undefined ? {} : { queueStorageSchema: options.queueStorageSchema }),
      ...(options.id === undefined ? {} : { id: options.id }),
    })
    return worker.#workOne(queue, options.kinds)
  }

  async #workOne(queue: string, kinds: ReadonlyArray<string> | undefined): Promise<WorkOneOutcome | null> {
    const [job] = await this.#engine.claim(this.#db, {
      queue,
      limit: 1,
      defaultTimeoutMs: this.#defaultTimeoutMs,
      ...(kinds === undefined ? {} : { kinds }),
    })
    if (job === undefined) return null
    let outcome: WorkOneOutcome | undefined
    let failWrite: (error: unknown) => void = () => {}
    const writeFailed = new Promise<never>((_, reject) => {
      failWrite = reject
    })
    writeFailed.catch(() => {})
    const unsubscribe = this.#events.subscribe((event) => {
      // A started worker retries failed writes until they succeed; one job at a time reports it instead.
      // Other errors (a refused outcome replaced by a failure, a backoff replaced by the default) are notices.
      if (event.type === "error") {
        if (event.context === "write outcomes") failWrite(event.error)
      } else if (workOneOutcomeTypes.has(event.type) && "job" in event && event.job.id === job.id) {
        outcome = event as WorkOneOutcome
      }
    })
    try {
      const settled = new Promise<void>((resolve) => this.#idleWaiters.push(resolve))
      this.#startAttempt(this.#runners.get(queue) ?? new QueueRunner(queue, 1), job)
      await settled
      await Promise.race([this.#batcher.drain(), writeFailed])
    } catch (error) {
      this.#batcher.abandon()
      throw error
    } finally {
      unsubscribe()
    }
    if (outcome === undefined)
      throw new Error(`Worker.workOne: job ${job.id} was worked but no outcome was reported.`)
    return outcome
  }

  async #start(options: WorkerOptions): Promise<void> {
    if (options.checkSchema ?? true) await checkSchema(this.#pool, this.#queueStorageSchema)
    // A named engine is fixed (tests and benchmarks): refuse it when the database's storage state rules it
    // out, and never activate anything with it. A worker that follows the state is a first start on a fresh
    // database possibly: activate queue storage then (before registering, which ends the database's
    // freshness), and read the state again.
    if (this.#resolver.fixed !== undefined) await checkNamedEngine(this.#db, this.#resolver.fixed.name)
    else {
      this.#freshActivation = await activateOnFreshStart(this.#db, {
        schema: this.#queueStorageSchema,
        actor: `awa worker ${this.id} (fresh install)`,
      })
      if (this.#freshActivation.outcome === "activated") this.#resolver.invalidate?.()
    }
    // The storage gates count live runtimes: announce this one before its first event (renewed below, well
    // within their window).
    await this.#register()
    this.#pool.on("error", this.#onPoolError)
    if (this.#listen) {
      const listener = new NotificationListener({
        pool: this.#pool,
        channels: ["awa_jobs_available", "awa_job_cancelled", "awa_storage_state"],
        applicationName: `awa-worker:${this.id}`,
        onNotification: (n) => {
          if (n.channel === "awa_jobs_available") this.#runners.get(n.payload)?.wake()
          else if (n.channel === "awa_job_cancelled") this.#abort(this.#active.get(n.payload), "cancelled")
          else if (n.channel === "awa_storage_state") {
            // The storage state moved: read it again before the next operation, and look for work at once.
            this.#resolver.invalidate?.()
            for (const runner of this.#runners.values()) runner.wake()
          }
        },
        // After a reconnect, notifications sent meanwhile are lost: look for work at once.
        onConnected: () => {
          for (const runner of this.#runners.values()) runner.wake()
        },
        onError: (error) => this.#events.emit({ type: "error", context: "listen connection", error }),
      })
      try {
        await listener.start()
      } catch (error) {
        this.#pool.off("error", this.#onPoolError)
        throw error
      }
      this.#listener = listener
    }
    const maintenance = options.maintenance ?? true
    if (maintenance !== false) {
      this.#maintenance = Maintenance.start(
        {
          ...(maintenance === true ? {} : maintenance),
          pool: this.#pool,
          engine: this.#engine,
          holder: this.id,
          ...(maintenance === true || maintenance.backoff === undefined ? { backoff: this.#backoff } : {}),
        },
        this.#events,
      )
    }
    this.#heartbeatTimer = setInterval(() => void this.#heartbeat(), Math.max(1, this.#heartbeatMs))
    this.#heartbeatTimer.unref?.()
    this.#registrationTimer = setInterval(() => void this.#register(), registrationIntervalMs)
    this.#registrationTimer.unref?.()
    for (const runner of this.#runners.values()) runner.loop = this.#runLoop(runner)
  }

  /**
   * What this worker's start did about fresh activation: `undefined` for a worker with an explicitly named
   * engine (which never activates anything), else the {@link FreshActivation} — `activated` when this start
   * moved a fresh database to active queue storage, `not-fresh` when the database already has a history,
   * `substrate-missing` when it was fresh but lacks the queue-storage substrate (a process warning says so).
   */
  get freshActivation(): FreshActivation | undefined {
    return this.#freshActivation
  }

  /** Subscribes to lifecycle events (claimed, completed, retried, failed, ...); returns the unsubscribe function. */
  subscribe(listener: WorkerEventListener): () => void {
    return this.#events.subscribe(listener)
  }

  /** The queues this worker serves. */
  get queues(): ReadonlyArray<string> {
    return [...this.#runners.keys()]
  }

  /** True until `stop()` is called. */
  get running(): boolean {
    return !this.#stopping
  }

  /** The maintenance candidate, when this worker takes part in leader election. */
  get maintenance(): Maintenance | undefined {
    return this.#maintenance
  }

  /** Asks every queue to claim now instead of waiting for NOTIFY or the next poll. */
  wake(): void {
    for (const runner of this.#runners.values()) runner.wake()
  }

  async #runLoop(runner: QueueRunner): Promise<void> {
    let failures = 0
    while (!this.#stopping) {
      const free = runner.concurrency - runner.inFlight
      if (free <= 0 || this.#batcher.size > this.#maxPending) {
        await runner.sleep(this.#pollMs, true)
        continue
      }
      const limit = Math.min(free, this.#claimBatchSize)
      runner.takeWake()
      let jobs: ReadonlyArray<ClaimedJob>
      try {
        jobs = await this.#engine.claim(this.#db, {
          queue: runner.queue,
          limit,
          defaultTimeoutMs: this.#defaultTimeoutMs,
        })
        failures = 0
      } catch (error) {
        failures++
        if (this.#stopping) break
        this.#events.emit({ type: "error", context: `claim from queue ${runner.queue}`, error })
        await runner.sleep(Math.min(5000, 50 * 2 ** Math.min(failures, 7)), false)
        continue
      }
      for (const job of jobs) this.#startAttempt(runner, job)
      if (jobs.length < limit && !runner.takeWake() && !this.#stopping)
        await runner.sleep(this.#pollMs, false)
    }
  }

  #startAttempt(runner: QueueRunner, job: ClaimedJob): void {
    runner.inFlight++
    this.#claimed++
    const attempt: Attempt = {
      job,
      runner,
      startedAt: performance.now(),
      controller: undefined,
      abortReason: undefined,
      timer: undefined,
      released: false,
      settled: false,
    }
    this.#active.set(job.id, attempt)
    if (this.#events.active) {
      this.#events.emit({ type: "claimed", job, waitMs: job.waitMs })
    }
    void this.#execute(attempt)
  }

  #abort(attempt: Attempt | undefined, reason: AbortReason): void {
    if (attempt === undefined || attempt.abortReason !== undefined) return
    attempt.abortReason = reason
    attempt.controller?.abort(new JobAbortedError(reason, attempt.job.id))
  }

  // Runs the attempt and settles it. A handler that returns synchronously is settled in the same tick,
  // without promises or a deadline timer (a synchronous handler cannot be interrupted anyway).
  #execute(attempt: Attempt): void {
    let outcome: PendingOutcome | undefined | Promise<PendingOutcome | undefined>
    try {
      outcome = this.#decide(attempt)
    } catch (thrown) {
      // #decide handles handler errors; anything here is a bug in the worker itself: retry the job.
      outcome = this.#retryOrFail(attempt, describeThrown(thrown), undefined)
    }
    if (outcome instanceof Promise) {
      outcome.then(
        (settled) => this.#settle(attempt, settled),
        (thrown: unknown) =>
          this.#settle(attempt, this.#retryOrFail(attempt, describeThrown(thrown), undefined)),
      )
    } else {
      this.#settle(attempt, outcome)
    }
  }

  #settle(attempt: Attempt, outcome: PendingOutcome | undefined): void {
    if (attempt.settled) return
    attempt.settled = true
    if (attempt.timer !== undefined) clearTimeout(attempt.timer)
    // A later attempt of the same job (claimed again after a cancel, retry or rescue) may have taken the
    // entry: only this attempt's own entry is removed.
    if (this.#active.get(attempt.job.id) === attempt) this.#active.delete(attempt.job.id)
    attempt.runner.inFlight--
    attempt.runner.slotFreed()
    if (!attempt.released && outcome !== undefined) this.#batcher.add(outcome)
    if (this.#active.size === 0 && this.#idleWaiters.length > 0) {
      const waiters = this.#idleWaiters
      this.#idleWaiters = []
      for (const w of waiters) w()
    }
  }

  #finished(attempt: Attempt): FinishedAttempt {
    return {
      job: attempt.job,
      startedAt: attempt.startedAt,
      finishedAt: performance.now(),
      cancelled: attempt.abortReason === "cancelled",
    }
  }

  #retryOrFail(attempt: Attempt, error: ErrorInput, delayMs: number | undefined): PendingOutcome {
    const finished = this.#finished(attempt)
    if (attempt.job.attempt >= attempt.job.maxAttempts) return { type: "fail", attempt: finished, error }
    return { type: "retry", attempt: finished, delayMs: delayMs ?? this.#backoff(attempt.job.attempt), error }
  }

  #fromOutcome(attempt: Attempt, outcome: JobOutcome): PendingOutcome {
    switch (outcome._tag) {
      case "Snooze":
        return { type: "snooze", attempt: this.#finished(attempt), delayMs: outcome.delayMs }
      case "RetryAfter":
        return this.#retryOrFail(
          attempt,
          { kind: "error", message: outcome.reason, name: "RetryAfter" },
          outcome.delayMs,
        )
      case "Cancel":
        return { type: "cancel", attempt: this.#finished(attempt), reason: outcome.reason }
      case "Fail": {
        const described = outcome.error === undefined ? undefined : describeThrown(outcome.error)
        return {
          type: "fail",
          attempt: this.#finished(attempt),
          error: {
            ...described,
            kind: "failed",
            message: outcome.reason,
            name: described?.name ?? "FailNow",
          },
        }
      }
    }
  }

  #decide(attempt: Attempt): PendingOutcome | undefined | Promise<PendingOutcome | undefined> {
    const { job } = attempt
    const handler = this.#handlers.get(job.kind)
    if (handler === undefined) {
      const error = new UnknownJobKind({
        kind: job.kind,
        known: [...this.#handlers.keys()],
        lastAttempt: job.attempt >= job.maxAttempts,
      })
      return this.#retryOrFail(
        attempt,
        { kind: "unknown_kind", message: error.message, name: error._tag },
        undefined,
      )
    }
    const decoded = handler.definition.decodeArgs(job.args)
    if (Result.isFailure(decoded)) {
      return {
        type: "fail",
        attempt: this.#finished(attempt),
        error: { kind: "invalid_args", message: decoded.failure.message, name: decoded.failure._tag },
      }
    }
    let returned: unknown
    try {
      returned = handler.run(decoded.success, new AttemptContext(attempt))
    } catch (thrown) {
      return this.#fromThrown(attempt, thrown)
    }
    if (isThenable(returned))
      return this.#awaitHandler(attempt, returned, job.timeoutMs ?? this.#defaultTimeoutMs)
    return this.#fromResult(attempt, returned)
  }

  // Waits for an async handler, racing it against the attempt's deadline. Whatever the handler settles
  // with (even a value whose reading throws) resolves this promise: it never rejects.
  #awaitHandler(
    attempt: Attempt,
    running: PromiseLike<unknown>,
    timeoutMs: number,
  ): Promise<PendingOutcome | undefined> {
    return new Promise((resolve) => {
      const settle = (decide: () => PendingOutcome | undefined) => {
        try {
          resolve(decide())
        } catch (bug) {
          resolve(this.#retryOrFail(attempt, describeThrown(bug), undefined))
        }
      }
      attempt.timer = setTimeout(() => {
        this.#abort(attempt, "deadline")
        const error = new JobDeadlineExceeded({
          kind: attempt.job.kind,
          timeoutMs,
          lastAttempt: attempt.job.attempt >= attempt.job.maxAttempts,
        })
        resolve(
          this.#retryOrFail(
            attempt,
            { kind: "deadline", message: error.message, name: error._tag },
            undefined,
          ),
        )
      }, timeoutMs)
      try {
        running.then(
          (result) => {
            if (attempt.abortReason !== "deadline") settle(() => this.#fromResult(attempt, result))
          },
          (thrown: unknown) => {
            if (attempt.abortReason !== "deadline") settle(() => this.#fromThrown(attempt, thrown))
          },
        )
      } catch (thrown) {
        // A thenable whose `then` throws: treated as the handler throwing.
        settle(() => this.#fromThrown(attempt, thrown))
      }
    })
  }

  #fromResult(attempt: Attempt, result: unknown): PendingOutcome | undefined {
    const early = this.#afterAbort(attempt)
    if (early !== undefined) return early
    if (isJobOutcome(result)) return this.#fromOutcome(attempt, result)
    return { type: "complete", attempt: this.#finished(attempt) }
  }

  #fromThrown(attempt: Attempt, thrown: unknown): PendingOutcome | undefined {
    const early = this.#afterAbort(attempt)
    if (early !== undefined) return early
    if (isJobOutcome(thrown)) return this.#fromOutcome(attempt, thrown)
    return this.#retryOrFail(attempt, describeThrown(thrown), undefined)
  }

  // After a cancel (from another process) or a lost lease, the job is no longer this attempt's: write
  // nothing. A cancelled job is reported as cancelled; a lost one as stale.
  #afterAbort(attempt: Attempt): PendingOutcome | undefined {
    if (attempt.abortReason === "cancelled" || attempt.abortReason === "lost") {
      const finished = this.#finished(attempt)
      if (attempt.abortReason === "cancelled") {
        this.#batcher.totals.cancelled++
        this.#events.emit({
          type: "cancelled",
          job: attempt.job,
          reason: "cancelled while running",
          durationMs: finished.finishedAt - finished.startedAt,
        })
      } else {
        this.#batcher.totals.stale++
        this.#events.emit({ type: "stale", job: attempt.job, operation: "heartbeat" })
      }
      attempt.released = true
      return { type: "complete", attempt: finished }
    }
    return undefined
  }

  async #register(): Promise<void> {
    try {
      await registerRuntime(this.#db, {
        id: this.id,
        host: hostname(),
        pid: process.pid,
        version: runtimeVersion,
        engines: ["canonical", "queue_storage"],
      })
    } catch (error) {
      if (!this.#stopping) this.#events.emit({ type: "error", context: "runtime registration", error })
    }
  }

  async #heartbeat(): Promise<void> {
    if (this.#heartbeating || this.#active.size === 0) return
    this.#heartbeating = true
    try {
      const refs: Array<AttemptRef> = []
      for (const attempt of this.#active.values()) {
        if (attempt.abortReason === undefined)
          refs.push({ id: attempt.job.id, runLease: attempt.job.runLease })
      }
      const result = await this.#engine.heartbeat(this.#db, refs)
      for (const ref of result.stale) {
        const attempt = this.#active.get(ref.id)
        if (attempt !== undefined && attempt.job.runLease === ref.runLease) this.#abort(attempt, "lost")
      }
    } catch (error) {
      if (!this.#stopping) this.#events.emit({ type: "error", context: "heartbeat", error })
    } finally {
      this.#heartbeating = false
    }
  }

  /**
   * Counters, in-flight jobs and the depth of this worker's queues. Reading the depth counts available jobs
   * in the database; pass `{ depth: false }` to skip that query (depth is then empty).
   */
  async metrics(options?: { readonly depth?: boolean }): Promise<WorkerMetrics> {
    const inFlight: Record<string, number> = {}
    for (const [queue, runner] of this.#runners) inFlight[queue] = runner.inFlight
    const depth: Record<string, number> = {}
    if (options?.depth ?? true) {
      const available = await this.#engine.availableDepth(this.#db)
      for (const queue of this.#runners.keys()) depth[queue] = available.get(queue) ?? 0
    }
    const second = Math.floor(Date.now() / 1000)
    let recent = 0
    for (const [key, count] of this.#completedBuckets) if (key >= second - 10 && key < second) recent += count
    return {
      workerId: this.id,
      inFlight,
      pendingOutcomes: this.#batcher.size,
      depth,
      totals: { claimed: this.#claimed, ...this.#batcher.totals },
      completedPerSecond: recent / 10,
      leader: this.#maintenance?.isLeader ?? false,
    }
  }

  /**
   * Stops gracefully: stops claiming, lets running handlers finish within the shutdown timeout, then
   * releases the rest (available again, attempt given back) and fires their signals with reason
   * `shutdown`; writes every pending outcome, and closes its connections. Handlers still running half a
   * second after their signal fired ignore it: they are reported in an `abandoned` event (kind and id of
   * each job) and left running, since JavaScript cannot stop them; their outcomes are not written. Calling
   * it twice is safe.
   */
  stop(options?: StopOptions): Promise<void> {
    if (this.#stopped === undefined)
      this.#stopped = this.#stop(millis(options?.timeout, this.#shutdownMs, "timeout"))
    return this.#stopped
  }

  // Resolves when no attempt is running, or after `ms`.
  #untilIdle(ms: number): Promise<void> {
    if (this.#active.size === 0) return Promise.resolve()
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer)
        // Called by the timer: leave the waiter list (settling swaps the list before calling its waiters).
        this.#idleWaiters = this.#idleWaiters.filter((w) => w !== done)
        resolve()
      }
      const timer = setTimeout(done, ms)
      this.#idleWaiters.push(done)
    })
  }

  async #stop(timeoutMs: number): Promise<void> {
    this.#stopping = true
    for (const runner of this.#runners.values()) runner.wake()
    await Promise.all([...this.#runners.values()].map((r) => r.loop))
    await this.#untilIdle(timeoutMs)
    if (this.#active.size > 0) {
      const attempts = [...this.#active.values()]
      for (const attempt of attempts) attempt.released = true
      const refs = attempts.map((a) => ({ id: a.job.id, runLease: a.job.runLease }))
      for (let round = 0; round < 5; round++) {
        try {
          await this.#engine.release(this.#db, refs)
          break
        } catch (error) {
          this.#events.emit({ type: "error", context: "release jobs at shutdown", error })
          await new Promise((r) => setTimeout(r, 100 * (round + 1)))
        }
      }
      for (const attempt of attempts) {
        this.#abort(attempt, "shutdown")
        // Released: its deadline no longer matters, and a pending timer would keep the process alive.
        if (attempt.timer !== undefined) clearTimeout(attempt.timer)
        attempt.timer = undefined
      }
      this.#events.emit({ type: "released", jobs: attempts.map((a) => a.job) })
      // Handlers that honour their signal return within moments; those still running after that ignore it.
      // The worker cannot stop them, only say so: their jobs are back in their queues, so whatever they
      // still do may overlap the next attempt (`awa worker` exits instead of waiting for them).
      await this.#untilIdle(abortGraceMs)
      const ignoring = attempts.filter((a) => !a.settled)
      if (ignoring.length > 0) this.#events.emit({ type: "abandoned", jobs: ignoring.map((a) => a.job) })
    }
    if (this.#heartbeatTimer !== undefined) clearInterval(this.#heartbeatTimer)
    // Outcomes keep being retried until written, up to the shutdown timeout; after that they are left for
    // maintenance to rescue (their jobs are still running under this worker's leases).
    const drained = this.#batcher.drain()
    const timedOut = await Promise.race([
      drained.then(() => false),
      new Promise<boolean>((r) => setTimeout(() => r(true), Math.max(timeoutMs, 1000)).unref?.()),
    ])
    if (timedOut) {
      const dropped = this.#batcher.abandon()
      this.#events.emit({
        type: "error",
        context: "stop",
        error: new Error(
          `${dropped.length} outcomes could not be written before shutdown; maintenance will rescue their jobs.`,
        ),
      })
    }
    if (this.#registrationTimer !== undefined) clearInterval(this.#registrationTimer)
    // A clean stop leaves the registry at once (a crashed runtime ages out of the live window instead).
    await unregisterRuntime(this.#db, this.id).catch(() => undefined)
    await this.#listener?.close()
    await this.#maintenance?.stop()
    this.#pool.off("error", this.#onPoolError)
  }
}
