/**
 * The active engine as database state: the storage state row (`canonical -> prepared -> mixed -> active`,
 * `abort` back to canonical), the transitions that move it (each gate checked by SQL in the transaction
 * that moves it, see migration canonical/0003_storage_state.sql), and the registry of live runtimes the
 * gates read.
 */
import { createRequire } from "node:module"
import { Data } from "effect"
import { DatabaseError } from "./DatabaseError.js"
import * as sql from "./internal/sql/storageState.js"
import type { Executor } from "./PgExecutor.js"

/**
 * This release of `@awa/runtime` (from its package.json next to `dist/`), as runtimes register it;
 * `unknown` when the code runs from a copy without its package.json beside it.
 */
export const runtimeVersion: string = (() => {
  try {
    return (createRequire(import.meta.url)("../package.json") as { readonly version: string }).version
  } catch {
    return "unknown"
  }
})()

/** The storage states, in the order a migration to queue storage moves through them. */
export const storageStates = ["canonical", "prepared", "mixed", "active"] as const

/** Where jobs live: `canonical`, `prepared`, `mixed` (both engines, new jobs to queue storage) or `active`. */
export type StorageStateName = (typeof storageStates)[number]

/** The transitions, by their CLI names. */
export type StorageTransition = "prepare" | "enter-mixed" | "finalize" | "abort" | "keep-canonical"

/** The gates a transition checks; `state` is the "wrong state for this transition" gate. */
export type StorageGate =
  | "state"
  | "schema"
  | "substrate"
  | "capable-runtime"
  | "canonical-backlog"
  | "canonical-only-runtime"
  | "queue-storage-work"

/** The SQLSTATE the storage functions raise for a refused transition. */
export const storageGateSqlState = "AWS01"

/** How long after its last heartbeat a runtime still counts as live for the gates (seconds). */
export const defaultLiveWithinSeconds = 30

const nextSteps: Record<StorageGate, string> = {
  state: "Run `awa storage status` to see the state and the transition that comes next.",
  schema: "Name a lower-case identifier (letters, digits, _), for example awa.",
  substrate:
    "Install the queue-storage substrate first: `awa migrate` for schema awa, or `awa storage prepare-queue-storage-schema --schema NAME`; then run the transition again.",
  "capable-runtime":
    "Start (or upgrade to) a worker release that serves queue storage, wait for its first heartbeat, then run `awa storage enter-mixed` again.",
  "canonical-backlog":
    "Keep workers running until the canonical backlog drains, then finalize again (`awa storage finalize --wait 10m` waits; `--check` shows the backlog).",
  "canonical-only-runtime":
    "Stop those runtimes or upgrade them to a release that serves queue storage, then finalize again.",
  "queue-storage-work":
    "Go forward instead: keep workers running and run `awa storage finalize` once the canonical backlog is drained.",
}

/**
 * A storage transition refused by its gate; nothing changed. `gate` names what blocks it, `reason` is the
 * database's account, and the message says what to do next.
 */
export class StorageGateRefused extends Data.TaggedError("StorageGateRefused")<{
  /** The transition asked for. */
  readonly transition: StorageTransition
  /** The gate that refused it. */
  readonly gate: StorageGate
  /** What the gate found. */
  readonly reason: string
}> {
  /** What to do next. */
  get nextStep(): string {
    return nextSteps[this.gate]
  }

  override get message(): string {
    return `awa storage ${this.transition} refused by the ${this.gate} gate (nothing changed): ${this.reason}. ${this.nextStep}`
  }
}

/** The storage state and what its gates would see now. */
export interface StorageStatus {
  /** The state. */
  readonly state: StorageStateName
  /** The queue-storage schema the state refers to (`null` while canonical). */
  readonly queueStorageSchema: string | null
  /** Who made the last change (`null`: never moved). */
  readonly changedBy: string | null
  /** When the last change committed (`null`: never moved). */
  readonly changedAt: Date | null
  /** Canonical jobs not yet terminal. */
  readonly canonicalBacklog: number
  /** Whether the (referred or default) queue-storage schema holds its substrate. */
  readonly substratePresent: boolean
  /** Whether queue storage holds or has held work (abort is refused then). */
  readonly queueStorageHoldsWork: boolean
  /** Runtimes seen within the live window. */
  readonly liveRuntimes: ReadonlyArray<RuntimeInstance>
}

/** A registered runtime. */
export interface RuntimeInstance {
  /** Its id (unique per process). */
  readonly id: string
  /** Host name. */
  readonly host: string
  /** Process id. */
  readonly pid: number
  /** Its release version. */
  readonly version: string
  /** The engines it can serve. */
  readonly engines: ReadonlyArray<string>
  /** When it registered. */
  readonly startedAt: Date
  /** Its last heartbeat. */
  readonly lastSeenAt: Date
}

/** Options of a transition. */
export interface StorageTransitionOptions {
  /** Who moves the state (recorded with it). Default: the database role. */
  readonly actor?: string
  /** How recent a heartbeat counts as live, in seconds (default {@link defaultLiveWithinSeconds}). */
  readonly liveWithinSeconds?: number
}

/** Reads the storage state; `schema` is the queue-storage schema to inspect while canonical (default awa). */
export const readStorageStatus = async (
  db: Executor,
  options: { readonly schema?: string; readonly liveWithinSeconds?: number } = {},
): Promise<StorageStatus> => {
  const [row] = await db.query<{
    storage_state: StorageStateName
    queue_storage_schema: string | null
    changed_by: string | null
    changed_at: Date | null
    canonical_backlog: string
    queue_storage_holds_work: boolean
    substrate_present: boolean
  }>("storage status", sql.readStorageState, [options.schema ?? "awa"])
  if (row === undefined) throw new Error("awa.runtime_state has no row: run `awa migrate`")
  const runtimes = await db.query<{
    id: string
    host: string
    pid: number
    version: string
    engines: Array<string>
    started_at: Date
    last_seen_at: Date
  }>("storage status", sql.listLiveRuntimes, [options.liveWithinSeconds ?? defaultLiveWithinSeconds])
  return {
    state: row.storage_state,
    queueStorageSchema: row.queue_storage_schema,
    changedBy: row.changed_by,
    changedAt: row.changed_at,
    canonicalBacklog: Number(row.canonical_backlog),
    substratePresent: row.substrate_present,
    queueStorageHoldsWork: row.queue_storage_holds_work,
    liveRuntimes: runtimes.map((r) => ({
      id: r.id,
      host: r.host,
      pid: r.pid,
      version: r.version,
      engines: r.engines,
      startedAt: r.started_at,
      lastSeenAt: r.last_seen_at,
    })),
  }
}

const gatePrefix = /^awa storage gate ([a-z-]+): (.*)$/s

// Turns the storage functions' refusal (SQLSTATE AWS01) into StorageGateRefused; anything else is rethrown.
const mapRefusal = (transition: StorageTransition, error: unknown): never => {
  if (error instanceof DatabaseError && error.sqlState === storageGateSqlState) {
    const m = gatePrefix.exec(error.detail)
    if (m !== null)
      throw new StorageGateRefused({ transition, gate: m[1] as StorageGate, reason: m[2] as string })
  }
  throw error
}

const run = async (
  transition: StorageTransition,
  db: Executor,
  statement: (typeof sql)[keyof typeof sql],
  values: ReadonlyArray<unknown>,
): Promise<StorageStateName> => {
  try {
    const [row] = await db.query<{ storage_state: StorageStateName }>(
      `storage ${transition}`,
      statement,
      values,
    )
    return (row as { storage_state: StorageStateName }).storage_state
  } catch (error) {
    return mapRefusal(transition, error)
  }
}

const actorOf = (options: StorageTransitionOptions): string | null => options.actor ?? null

/** canonical -> prepared, for the queue-storage schema `schema` (default awa). Throws `StorageGateRefused`. */
export const prepareStorage = (
  db: Executor,
  options: StorageTransitionOptions & { readonly schema?: string } = {},
): Promise<StorageStateName> => run("prepare", db, sql.prepare, [options.schema ?? "awa", actorOf(options)])

/** prepared -> mixed: needs a live runtime able to serve queue storage. Throws `StorageGateRefused`. */
export const enterMixedStorage = (
  db: Executor,
  options: StorageTransitionOptions = {},
): Promise<StorageStateName> =>
  run("enter-mixed", db, sql.enterMixed, [
    actorOf(options),
    options.liveWithinSeconds ?? defaultLiveWithinSeconds,
  ])

/** mixed -> active: needs the canonical backlog drained and no live canonical-only runtime. */
export const finalizeStorage = (
  db: Executor,
  options: StorageTransitionOptions = {},
): Promise<StorageStateName> =>
  run("finalize", db, sql.finalize, [actorOf(options), options.liveWithinSeconds ?? defaultLiveWithinSeconds])

/** prepared or mixed -> canonical: refused once queue storage holds work. Throws `StorageGateRefused`. */
export const abortStorage = (
  db: Executor,
  options: StorageTransitionOptions = {},
): Promise<StorageStateName> => run("abort", db, sql.abort, [actorOf(options)])

/**
 * Records that the database stays on the canonical engine (`canonical -> canonical`, announced like every
 * transition): an operator's choice for a database nothing ran on yet, which fresh activation would otherwise
 * move to queue storage at the first runtime start. `prepare` still moves it later. Refused (the `state`
 * gate) unless the state is canonical. Throws `StorageGateRefused`.
 */
export const keepCanonicalStorage = (
  db: Executor,
  options: StorageTransitionOptions = {},
): Promise<StorageStateName> => run("keep-canonical", db, sql.keepCanonical, [actorOf(options)])

/**
 * What {@link activateFreshStorage} did: `activated` (this call moved a fresh database to active queue
 * storage), `not-fresh` (nothing changed: the database has a history, or another runtime activated it
 * first) or `substrate-missing` (nothing changed: fresh, but the schema holds no queue-storage substrate).
 */
export interface FreshActivation {
  /** What happened. */
  readonly outcome: "activated" | "not-fresh" | "substrate-missing"
  /** The storage state afterwards. */
  readonly state: StorageStateName
  /** The queue-storage schema the state names afterwards (`null` while canonical). */
  readonly queueStorageSchema: string | null
  /** The database's account: what was activated, what makes the database not fresh, or what to install. */
  readonly reason: string
}

/**
 * Fresh installs start on queue storage: activates queue storage in `schema` (default awa) when the
 * database is fresh — state canonical and never set, no job ever enqueued (the job id sequence never used,
 * no canonical or DLQ rows), no runtime ever registered — and the schema holds the substrate. The gate is
 * checked by SQL (`awa.storage_activate_fresh`) under the state row lock in the same transaction as the move,
 * so of concurrent first starts exactly one activates; the move is recorded and announced like every
 * transition. Never refuses: it says what it did. `awa migrate` never calls it; runtimes that follow the
 * database's state call it when they start (see `Worker.start` and `makeProducer`).
 */
export const activateFreshStorage = async (
  db: Executor,
  options: { readonly schema?: string; readonly actor?: string } = {},
): Promise<FreshActivation> => {
  const [row] = await db.query<{
    outcome: FreshActivation["outcome"]
    storage_state: StorageStateName
    queue_storage_schema: string | null
    reason: string
  }>("fresh activation", sql.activateFresh, [options.schema ?? "awa", options.actor ?? null])
  if (row === undefined) throw new Error("awa.runtime_state has no row: run `awa migrate`")
  return {
    outcome: row.outcome,
    state: row.storage_state,
    queueStorageSchema: row.queue_storage_schema,
    reason: row.reason,
  }
}

/**
 * Fresh activation was skipped although the database is fresh, because the queue-storage substrate is
 * missing: the database stays canonical for now (and, once a runtime registered, for good unless moved by
 * hand). Reported as a warning, never thrown.
 */
export class FreshActivationSkipped extends Data.TaggedError("FreshActivationSkipped")<{
  /** The schema that lacks the substrate. */
  readonly schema: string
  /** The database's account. */
  readonly reason: string
}> {
  override get message(): string {
    return (
      `awa: this database is fresh, but queue storage was not activated: ${this.reason}. It stays on the ` +
      "canonical engine; to move it later run `awa storage prepare`, `enter-mixed` and `finalize`."
    )
  }
}

/**
 * What a runtime that follows the database's state does when it starts: {@link activateFreshStorage}, then
 * a process warning (`AWA_FRESH_ACTIVATION_SKIPPED`, printed to stderr by Node unless the application
 * handles warnings) when the database was fresh but its substrate is missing. Returns what happened.
 */
export const activateOnFreshStart = async (
  db: Executor,
  options: { readonly schema: string; readonly actor: string },
): Promise<FreshActivation> => {
  const result = await activateFreshStorage(db, options)
  if (result.outcome === "substrate-missing") {
    const skipped = new FreshActivationSkipped({ schema: options.schema, reason: result.reason })
    process.emitWarning(skipped.message, { code: "AWA_FRESH_ACTIVATION_SKIPPED" })
  }
  return result
}

/** What a runtime tells the registry about itself. */
export interface RuntimeRegistration {
  /** Unique per process. */
  readonly id: string
  /** Host name. */
  readonly host: string
  /** Process id. */
  readonly pid: number
  /** Release version. */
  readonly version: string
  /** The engines it can serve. */
  readonly engines: ReadonlyArray<"canonical" | "queue_storage">
}

/** Registers (or renews) a runtime in awa.runtime_instances, pruning stale rows of others. */
export const registerRuntime = async (db: Executor, runtime: RuntimeRegistration): Promise<void> => {
  await db.query("runtime registration", sql.registerRuntime, [
    runtime.id,
    runtime.host,
    runtime.pid,
    runtime.version,
    runtime.engines,
  ])
}

/** Removes a runtime from the registry (a clean stop). */
export const unregisterRuntime = async (db: Executor, id: string): Promise<void> => {
  await db.query("runtime registration", sql.unregisterRuntime, [id])
}

/**
 * An engine named explicitly (the `engine` option or `AWA_ENGINE`) that contradicts the database's storage
 * state: the canonical engine while the state is `mixed` or `active`, whose canonical writes would be
 * stranded in the engine being retired; or queue storage while the state is `canonical` or `prepared` and
 * the canonical engine holds jobs, where queue-storage work would be invisible to every process that follows
 * the state. Naming an engine is for tests and benchmarks; leave it unset so the process follows the state.
 */
export class EngineContradictsStorageState extends Data.TaggedError("EngineContradictsStorageState")<{
  /** The engine named. */
  readonly engine: string
  /** The database's storage state. */
  readonly state: StorageStateName
}> {
  override get message(): string {
    const why =
      this.engine === "canonical"
        ? `so ${this.engine} work would be stranded`
        : "and the canonical engine holds jobs, so queue-storage work would be invisible to every process that follows the state"
    return (
      `The engine ${this.engine} was named explicitly (engine option or AWA_ENGINE), but the database's storage ` +
      `state is ${this.state}, ${why}. Unset the engine option and AWA_ENGINE ` +
      "so the process follows the database's state (`awa storage status` shows it)."
    )
  }
}

/**
 * Refuses (with `EngineContradictsStorageState`) an explicitly named engine the storage state rules out:
 * `canonical` while the state is `mixed` or `active`; `queue_storage` while the state is `canonical` or
 * `prepared` and awa.jobs or awa.dlq hold rows (a canonical deployment in use). Queue storage named on a
 * database with no canonical jobs is allowed: tests and benchmarks use it on fresh databases, and nothing
 * there could be split across engines.
 */
export const checkNamedEngine = async (db: Executor, engine: string): Promise<void> => {
  const [row] = await db.query<{ storage_state: StorageStateName; canonical_holds_jobs: boolean }>(
    "check the named engine against the storage state",
    sql.readNamedEngineCheck,
    [],
  )
  const state = row?.storage_state ?? "canonical"
  const contradicts =
    engine === "canonical"
      ? state === "mixed" || state === "active"
      : engine === "queue_storage" &&
        (state === "canonical" || state === "prepared") &&
        row?.canonical_holds_jobs === true
  if (contradicts) throw new EngineContradictsStorageState({ engine, state })
}
