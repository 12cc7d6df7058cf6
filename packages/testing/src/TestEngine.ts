/**
 * Which storage engine tests run against: `AWA_TEST_ENGINE`, checked against the engines this version of
 * awa implements, never silently defaulted when it names something else.
 */
import { canonicalEngine } from "@awa/runtime/CanonicalEngine"
import type { Engine, EngineName } from "@awa/runtime/Engine"
import type { Executor } from "@awa/runtime/PgExecutor"
import type { TestEnvironment } from "./PostgresServer.js"
import { TestEngineError } from "./TestEngineError.js"

// Every engine this version implements, by name. A new engine is added here (and its contract run in CI).
const implemented: ReadonlyMap<EngineName, Engine> = new Map<EngineName, Engine>([
  ["canonical", canonicalEngine],
])

/** The engine tests use when `AWA_TEST_ENGINE` is unset or empty: `canonical`. */
export const defaultTestEngine: EngineName = "canonical"

/** The engines tests can run against in this version, in the order the contract matrix runs them. */
export const testEngineNames: ReadonlyArray<EngineName> = [...implemented.keys()]

const plannedEngines: ReadonlyArray<EngineName> = ["canonical", "queue_storage"]

/**
 * Checks an engine name given in code or configuration: `undefined` when absent or empty, else the name.
 * Throws a {@link TestEngineError} naming `source` and listing the usable engines for any other value,
 * including an engine awa plans but does not implement yet (`queue_storage`).
 */
export const parseTestEngine = (value: string | undefined, source = "engine"): EngineName | undefined => {
  if (value === undefined || value === "") return undefined
  if (implemented.has(value as EngineName)) return value as EngineName
  const planned = (plannedEngines as ReadonlyArray<string>).includes(value)
  throw new TestEngineError({
    engine: value,
    source,
    available: testEngineNames,
    message:
      `${source}=${JSON.stringify(value)} ${planned ? "is not implemented in this version of awa" : "names no storage engine"}. ` +
      `Use one of: ${testEngineNames.join(", ")} (or leave it unset for ${defaultTestEngine}).`,
  })
}

/**
 * Reads `AWA_TEST_ENGINE`: {@link defaultTestEngine} when unset or empty, else the engine it names.
 * Throws a {@link TestEngineError} for any other value rather than silently defaulting.
 */
export const testEngineFromEnv = (env: TestEnvironment = process.env): EngineName =>
  parseTestEngine(env.AWA_TEST_ENGINE, "AWA_TEST_ENGINE") ?? defaultTestEngine

/**
 * The engine tests should use: the one given (a name, checked, or an `Engine` object, used as is), else the
 * one `AWA_TEST_ENGINE` names, else {@link defaultTestEngine}. Throws a {@link TestEngineError} for unknown
 * names.
 */
export const resolveTestEngine = (
  engine?: EngineName | Engine,
  env: TestEnvironment = process.env,
): Engine => {
  if (typeof engine === "object") return engine
  const name = parseTestEngine(engine, "engine") ?? testEngineFromEnv(env)
  return implemented.get(name)!
}

/**
 * The storage maintenance an engine runs under its leader besides promote, rescue and retention, as hooks
 * the model-based test (and anything else that wants to interleave it with work) can call at any step:
 * `rotate` advances storage (queue storage: the ring slots), `prune` reclaims settled storage (queue
 * storage: truncating settled slots). Either may remove completed jobs' history, never anything else.
 */
export interface TestEngineMaintenance {
  /** Advances the engine's storage (a no-op for engines without one). */
  readonly rotate: (db: Executor) => Promise<void>
  /** Reclaims settled storage; may remove completed jobs, nothing else. */
  readonly prune: (db: Executor) => Promise<void>
}

// The canonical engine has no storage cycle: rotation does nothing, and pruning is retention of completed
// jobs (failed and cancelled ones stay for their retention, an hour here).
const canonicalMaintenance: TestEngineMaintenance = {
  rotate: async () => {},
  prune: async (db) => {
    await canonicalEngine.deleteRetained(db, { completedMs: 0, failedMs: 3_600_000, limit: 10_000 })
  },
}

// Per engine; an engine with a storage cycle registers its rotate and prune here.
const maintenanceByEngine: ReadonlyMap<EngineName, TestEngineMaintenance> = new Map([
  ["canonical", canonicalMaintenance],
])

/** The maintenance hooks of `engine` ({@link TestEngineMaintenance}); no-ops for an engine without any. */
export const testEngineMaintenance = (engine: Engine): TestEngineMaintenance =>
  maintenanceByEngine.get(engine.name) ?? { rotate: async () => {}, prune: async () => {} }
