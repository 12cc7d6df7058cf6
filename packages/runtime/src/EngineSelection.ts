/**
 * Which storage engine a producer, worker, maintenance or admin uses: the one place that turns the `engine`
 * and `queueStorageSchema` options, or `AWA_ENGINE` and `AWA_QUEUE_STORAGE_SCHEMA`, into an `Engine`.
 *
 * The answer is an {@link EngineResolver}, asked before every storage operation, not an engine captured
 * once: an explicit choice answers with the same engine every time (and {@link routedEngine} then hands
 * out that engine itself, at no cost per call), while a resolver that reads the active engine from the
 * database (cached, refreshed on NOTIFY) can answer differently after a transition without a restart.
 * Producers, workers and admin only ever see an `Engine`, so they stay engine-agnostic.
 */
import { validateIdentifier } from "@awa/model/Identifier"
import { closestMatch } from "@awa/model/Suggestion"
import { Data } from "effect"
import { canonicalEngine } from "./CanonicalEngine.js"
import type { Engine, EngineName } from "./Engine.js"
import { readStorageStateOnly } from "./internal/sql/storageState.js"
import { insertHonouringCanonicalKeys, makeMixedEngine } from "./MixedEngine.js"
import { type Executor, executorTarget } from "./PgExecutor.js"
import { makeQueueStorageEngine } from "./QueueStorageEngine.js"

/** Every storage engine name, in the order messages list them. */
export const engineNames: ReadonlyArray<EngineName> = ["canonical", "queue_storage"]

/**
 * The engine name a selection reports when neither the `engine` option nor `AWA_ENGINE` names one:
 * `canonical`. Such a selection resolves to a resolver that follows the database's storage state, not to
 * this engine (see {@link resolveEngine}).
 */
export const defaultEngineName: EngineName = "canonical"

/** The queue-storage schema used when neither the option nor `AWA_QUEUE_STORAGE_SCHEMA` names one: `awa`. */
export const defaultQueueStorageSchema = "awa"

/** How code names an engine: by name, or an `Engine` object used as is (for example a test double). */
export type EngineChoice = EngineName | Engine

/** The engine options shared by `makeProducer`, `Worker.start`, `Worker.workOne`, `Maintenance` and `makeAdmin`. */
export interface EngineSelection {
  /**
   * The storage engine: `"canonical"`, `"queue_storage"`, or an `Engine` used as is. Default: the engine
   * `AWA_ENGINE` names, else the one the database's storage state names (a fresh database is activated for
   * queue storage by the first worker or producer that starts; see `activateFreshStorage`). Naming an engine
   * is for tests and benchmarks: it never activates anything, and a worker naming one the state contradicts
   * is refused. An unknown name throws `InvalidEngineSelection`.
   */
  readonly engine?: EngineChoice
  /**
   * The schema the queue-storage engine reads and writes: `awa` (installed by `awa migrate`), or a schema
   * prepared with `awa storage prepare-queue-storage-schema --schema NAME`, to keep tenants apart. Default:
   * `AWA_QUEUE_STORAGE_SCHEMA`, else `awa`. It must be a plain lower-case identifier; it is checked even
   * while the engine is canonical, so a typo surfaces before queue storage is chosen.
   */
  readonly queueStorageSchema?: string
}

/** The environment variables the selection reads (`process.env` by default). */
export type EngineEnvironment = Readonly<Record<string, string | undefined>>

/**
 * An engine choice that cannot be used: a name that is no engine, a queue-storage schema name that is not a
 * plain identifier, or a schema given together with an `Engine` object (which brings its own). `source`
 * says where the value came from (the option, the environment variable or the CLI flag).
 */
export class InvalidEngineSelection extends Data.TaggedError("InvalidEngineSelection")<{
  /** What is wrong. */
  readonly reason: "unknown-engine" | "invalid-schema" | "schema-with-engine-object"
  /** Where the value came from, e.g. `AWA_ENGINE`, `--engine` or `the engine option`. */
  readonly source: string
  /** The value given, as text. */
  readonly value: string
  /** Why it cannot be used. */
  readonly detail: string
  /** The closest valid value, for a likely typo. */
  readonly suggestion?: string
}> {
  override get message(): string {
    switch (this.reason) {
      case "unknown-engine": {
        const close = this.suggestion
        return (
          `${this.source} ${this.value} names no storage engine.${close === undefined ? "" : ` Did you mean "${close}"?`} ` +
          `Use one of: ${engineNames.join(", ")} (or leave it unset for ${defaultEngineName}).`
        )
      }
      case "invalid-schema":
        return (
          `${this.source} ${this.value} is not a usable queue-storage schema name: ${this.detail}. Use a ` +
          `lower-case identifier (letters, digits, _) of a schema prepared with \`awa storage ` +
          `prepare-queue-storage-schema --schema NAME\`, or leave it unset for ${defaultQueueStorageSchema}.`
        )
      default:
        return (
          `${this.source} ${this.value} cannot be combined with an Engine object, which already names its ` +
          `schema: pass engine: "queue_storage" with queueStorageSchema, or build the engine with ` +
          `makeQueueStorageEngine({ schema }) and drop queueStorageSchema.`
        )
    }
  }
}

const shown = (value: unknown): string =>
  typeof value === "string" ? JSON.stringify(value) : `${String(value)} (${typeof value})`

const fromEnv = (env: EngineEnvironment, name: string): string | undefined => {
  const value = env[name]?.trim()
  return value === undefined || value === "" ? undefined : value
}

/**
 * Checks an engine name from code, configuration or the command line: `undefined` when absent or empty,
 * else the name. Throws `InvalidEngineSelection` naming `source` for anything else, with the valid names
 * and the closest one.
 */
export const parseEngineName = (value: unknown, source: string): EngineName | undefined => {
  if (value === undefined || value === "") return undefined
  if (typeof value === "string" && (engineNames as ReadonlyArray<string>).includes(value)) {
    return value as EngineName
  }
  const suggestion = typeof value === "string" ? closestMatch(value, engineNames) : undefined
  throw new InvalidEngineSelection({
    reason: "unknown-engine",
    source,
    value: shown(value),
    detail: "no such engine",
    ...(suggestion === undefined ? {} : { suggestion }),
  })
}

/**
 * Checks a queue-storage schema name: `undefined` when absent or empty, else the name. Throws
 * `InvalidEngineSelection` naming `source` when it is not a plain lower-case identifier (the substrate's
 * objects are created and found under that exact name).
 */
export const parseQueueStorageSchema = (value: unknown, source: string): string | undefined => {
  if (value === undefined || value === "") return undefined
  const valid =
    typeof value === "string"
      ? validateIdentifier("queue-storage schema name", value)
      : { reason: "it is not a string" }
  if (typeof valid === "string") return valid
  throw new InvalidEngineSelection({
    reason: "invalid-schema",
    source,
    value: shown(value),
    detail: valid.reason,
  })
}

/** A checked selection: the engine by name (or the object given) and the queue-storage schema. */
export interface CheckedEngineSelection {
  /** The engine's name, or the `Engine` object the caller gave. */
  readonly engine: EngineChoice
  /** The queue-storage schema (default `awa`); used only when `engine` is a name. */
  readonly queueStorageSchema: string
}

/**
 * Checks a selection against the environment without building anything: the option wins over the
 * environment variable, which wins over the default (`canonical`, schema `awa`). Throws
 * `InvalidEngineSelection` for an unknown name, a bad schema name, or a schema option next to an `Engine`
 * object.
 */
export const checkEngineSelection = (
  selection: EngineSelection = {},
  env: EngineEnvironment = process.env,
): CheckedEngineSelection => {
  const schemaOption = parseQueueStorageSchema(selection.queueStorageSchema, "the queueStorageSchema option")
  // The environment is read only where no option decides (an explicit option wins even over a bad variable).
  const schema = (): string =>
    schemaOption ??
    parseQueueStorageSchema(fromEnv(env, "AWA_QUEUE_STORAGE_SCHEMA"), "AWA_QUEUE_STORAGE_SCHEMA") ??
    defaultQueueStorageSchema
  if (typeof selection.engine === "object" && selection.engine !== null) {
    if (schemaOption !== undefined) {
      throw new InvalidEngineSelection({
        reason: "schema-with-engine-object",
        source: "the queueStorageSchema option",
        value: shown(schemaOption),
        detail: "the Engine object names its own schema",
      })
    }
    return { engine: selection.engine, queueStorageSchema: defaultQueueStorageSchema }
  }
  const name =
    parseEngineName(selection.engine, "the engine option") ??
    parseEngineName(fromEnv(env, "AWA_ENGINE"), "AWA_ENGINE") ??
    defaultEngineName
  return { engine: name, queueStorageSchema: schema() }
}

/**
 * Decides, before each storage operation, which engine serves it. An explicit choice is a fixed resolver
 * ({@link fixedEngine}); a resolver that follows the database's storage state answers from a short cache
 * refreshed on NOTIFY, so a process follows a transition without a restart.
 */
export interface EngineResolver {
  /** The engine for an operation about to run on `db` (may read and cache database state through it). */
  readonly engineFor: (db: Executor) => Engine | Promise<Engine>
  /** The engine it would answer now without asking the database (its latest answer). */
  readonly current: () => Engine
  /** Set when the answer never changes: that engine. */
  readonly fixed?: Engine
  /** Forgets cached answers, so the next operation reads the state again (called on NOTIFY awa_storage_state). */
  readonly invalidate?: () => void
}

/** How long a state-following resolver trusts its last read of the storage state (milliseconds). */
export const defaultStateCacheMs = 1000

/** The storage state as the resolver reads it. */
type StateRow = { readonly storage_state: string; readonly queue_storage_schema: string | null }

/**
 * A resolver that follows the database's storage state (`awa.runtime_state`): `canonical` and `prepared`
 * answer the canonical engine, `mixed` the mixed engine (new jobs to queue storage, canonical backlog
 * drained in place), `active` queue storage in the schema the state names. Each database (pool or client)
 * is read at most once per `cacheMs`; `invalidate` (on NOTIFY awa_storage_state) forces a fresh read.
 */
export const stateResolver = (options: { readonly cacheMs?: number } = {}): EngineResolver => {
  const cacheMs = options.cacheMs ?? defaultStateCacheMs
  const cache = new WeakMap<object, { readonly engine: Engine; readonly at: number }>()
  let generation = 0
  const generations = new WeakMap<object, number>()
  const queueStorageEngines = new Map<string, Engine>()
  const mixedEngines = new Map<string, Engine>()
  const activeEngines = new Map<string, Engine>()
  // Queue storage as the active state serves it. Canonical jobs kept as history after a move still hold their
  // unique keys, and stay visible to admin: reads, DLQ operations, operator retries (which continue the job in
  // queue storage, as while mixed), purges and retention cover them, so finalize hides nothing. The hot path
  // (claims, attempt writes, queue stats and depth) is queue storage's alone: the canonical backlog is empty.
  const active = (schema: string): Engine => {
    let engine = activeEngines.get(schema)
    if (engine === undefined) {
      const inner = qs(schema)
      const both = mixed(schema)
      engine = {
        ...inner,
        insertMany: insertHonouringCanonicalKeys(inner, schema),
        getJob: both.getJob,
        listJobs: both.listJobs,
        retryJob: both.retryJob,
        cancelJob: both.cancelJob,
        listDlq: both.listDlq,
        getDlq: both.getDlq,
        retryDlq: both.retryDlq,
        purgeDlq: both.purgeDlq,
        purgeQueue: both.purgeQueue,
        deleteRetained: both.deleteRetained,
      }
      activeEngines.set(schema, engine)
    }
    return engine
  }
  const qs = (schema: string): Engine => {
    let engine = queueStorageEngines.get(schema)
    if (engine === undefined) {
      engine = makeQueueStorageEngine({ schema })
      queueStorageEngines.set(schema, engine)
    }
    return engine
  }
  const mixed = (schema: string): Engine => {
    let engine = mixedEngines.get(schema)
    if (engine === undefined) {
      engine = makeMixedEngine(canonicalEngine, qs(schema), schema)
      mixedEngines.set(schema, engine)
    }
    return engine
  }
  let latest: Engine = canonicalEngine
  const engineOf = (row: StateRow | undefined): Engine => {
    const schema = row?.queue_storage_schema ?? defaultQueueStorageSchema
    switch (row?.storage_state) {
      case "mixed":
        return mixed(schema)
      case "active":
        return active(schema)
      default:
        return canonicalEngine
    }
  }
  return {
    engineFor: async (db) => {
      const key = executorTarget(db)
      const hit = cache.get(key)
      if (hit !== undefined && generations.get(key) === generation && performance.now() - hit.at < cacheMs) {
        return hit.engine
      }
      const [row] = await db.query<StateRow>("read the storage state", readStorageStateOnly, [])
      const engine = engineOf(row)
      cache.set(key, { engine, at: performance.now() })
      generations.set(key, generation)
      latest = engine
      return engine
    },
    current: () => latest,
    invalidate: () => {
      generation++
    },
  }
}

/** A resolver that always answers `engine`. */
export const fixedEngine = (engine: Engine): EngineResolver => ({
  engineFor: () => engine,
  current: () => engine,
  fixed: engine,
})

const buildEngine = (checked: CheckedEngineSelection): Engine => {
  if (typeof checked.engine === "object") return checked.engine
  switch (checked.engine) {
    case "canonical":
      return canonicalEngine
    case "queue_storage":
      return makeQueueStorageEngine({ schema: checked.queueStorageSchema })
  }
}

/**
 * The resolver for a selection (see {@link checkEngineSelection} for precedence and errors). An engine
 * named by the option or `AWA_ENGINE` is fixed (for tests and benchmarks); when nothing names one, the
 * resolver follows the database's storage state ({@link stateResolver}).
 */
export const resolveEngine = (
  selection: EngineSelection = {},
  env: EngineEnvironment = process.env,
): EngineResolver => {
  const checked = checkEngineSelection(selection, env)
  const named = selection.engine !== undefined || fromEnv(env, "AWA_ENGINE") !== undefined
  return named ? fixedEngine(buildEngine(checked)) : stateResolver()
}

// Every Engine method, so that a routed engine forwards all of them; the type below fails to compile when
// Engine gains a method this list lacks.
const engineMethods = [
  "insertMany",
  "copyInsert",
  "claim",
  "complete",
  "retry",
  "snooze",
  "cancelAttempts",
  "fail",
  "heartbeat",
  "release",
  "promote",
  "findRescuable",
  "deleteRetained",
  "getJob",
  "listJobs",
  "queueStats",
  "availableDepth",
  "retryJob",
  "cancelJob",
  "cancelByUniqueKey",
  "setQueuePaused",
  "setQueueDlq",
  "listQueues",
  "listDlq",
  "getDlq",
  "retryDlq",
  "purgeDlq",
  "makeDue",
  "purgeQueue",
] as const satisfies ReadonlyArray<Exclude<keyof Engine, "name">>
type MissingMethods = Exclude<keyof Engine, "name" | (typeof engineMethods)[number]>
const allMethodsRouted: [MissingMethods] extends [never] ? true : MissingMethods = true

/**
 * An `Engine` whose every operation first asks `resolver` which engine serves it, on the operation's own
 * executor. For a fixed resolver it is that engine itself. Its `name` is the resolver's latest answer.
 * Callers keep no per-job engine: an attempt claimed under one answer is completed under whatever the
 * resolver answers then, so a resolver for a state in which two engines hold work (a migration between
 * them) answers with an engine that routes each attempt write to where that attempt lives.
 */
export const routedEngine = (resolver: EngineResolver): Engine => {
  if (resolver.fixed !== undefined) return resolver.fixed
  void allMethodsRouted
  const routed: Record<string, unknown> = {}
  for (const method of engineMethods) {
    routed[method] = async (db: Executor, ...args: ReadonlyArray<unknown>) => {
      const engine = await resolver.engineFor(db)
      return (engine[method] as (db: Executor, ...rest: ReadonlyArray<unknown>) => Promise<unknown>)(
        db,
        ...args,
      )
    }
  }
  Object.defineProperty(routed, "name", { enumerable: true, get: () => resolver.current().name })
  return routed as unknown as Engine
}

/**
 * The `Engine` a producer, worker or admin built with `selection` uses: {@link routedEngine} over
 * {@link resolveEngine}. Throws `InvalidEngineSelection` for a bad name or schema.
 */
export const selectEngine = (selection: EngineSelection = {}, env: EngineEnvironment = process.env): Engine =>
  routedEngine(resolveEngine(selection, env))
