/**
 * Which storage engine tests run against: `AWA_TEST_ENGINE`, checked against the engines this version of
 * awa implements, never silently defaulted when it names something else; and, for queue storage, the schema
 * it lives in (`AWA_TEST_QUEUE_STORAGE_SCHEMA`, default `awa`). Engines are built by the runtime's own
 * selection (`@awa/runtime/EngineSelection`), exactly as `makeProducer({ engine })` would build them.
 */

import { canonicalEngine } from "@awa/runtime/CanonicalEngine"
import type { Engine, EngineName } from "@awa/runtime/Engine"
import {
  defaultQueueStorageSchema,
  parseEngineName,
  parseQueueStorageSchema,
  selectEngine,
} from "@awa/runtime/EngineSelection"
import type { Executor } from "@awa/runtime/PgExecutor"
import type { QueueStorageEngine } from "@awa/runtime/QueueStorageEngine"
import type { TestEnvironment } from "./PostgresServer.js"
import { TestEngineError } from "./TestEngineError.js"

// Every engine this version implements, by name. A new engine is added here (and its contract run in CI).
const implemented: ReadonlySet<EngineName> = new Set<EngineName>(["canonical", "queue_storage"])

/** The engine tests use when `AWA_TEST_ENGINE` is unset or empty: `canonical`. */
export const defaultTestEngine: EngineName = "canonical"

/** The engines tests can run against in this version, in the order the contract matrix runs them. */
export const testEngineNames: ReadonlyArray<EngineName> = [...implemented]

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
 * Reads `AWA_TEST_ENGINE`, else `AWA_ENGINE` (the variable the code under test follows when it makes
 * producers and workers without an `engine` option), else {@link defaultTestEngine}. Throws a
 * {@link TestEngineError} for a value naming no implemented engine rather than silently defaulting, and when
 * both are set to different engines: the code under test would then write where the helpers do not look.
 */
export const testEngineFromEnv = (env: TestEnvironment = process.env): EngineName => {
  const tested = parseTestEngine(env.AWA_TEST_ENGINE, "AWA_TEST_ENGINE")
  // Any engine the runtime knows, so that a disagreement is reported as such even for an engine not
  // implemented here; an engine used only through AWA_ENGINE is checked as AWA_TEST_ENGINE would be below.
  const app = env.AWA_ENGINE?.trim() ? parseEngineName(env.AWA_ENGINE.trim(), "AWA_ENGINE") : undefined
  if (tested !== undefined && app !== undefined && tested !== app) {
    throw new TestEngineError({
      engine: tested,
      source: "AWA_TEST_ENGINE",
      available: testEngineNames,
      message:
        `AWA_TEST_ENGINE=${JSON.stringify(tested)} but AWA_ENGINE=${JSON.stringify(app)}: code under test that ` +
        `makes producers or workers without an engine option would use ${app} while the test helpers use ` +
        `${tested}. Set both to the same engine, or unset AWA_ENGINE.`,
    })
  }
  return tested ?? parseTestEngine(app, "AWA_ENGINE") ?? defaultTestEngine
}

/**
 * Reads `AWA_TEST_QUEUE_STORAGE_SCHEMA`: the schema the queue-storage engine under test uses (the test
 * database fixture prepares it with `prepareQueueStorageSchema`, as `awa storage
 * prepare-queue-storage-schema` would), `awa` when unset or empty. Throws the runtime's
 * `InvalidEngineSelection` for a name that is not a plain lower-case identifier.
 */
export const testQueueStorageSchemaFromEnv = (env: TestEnvironment = process.env): string =>
  parseQueueStorageSchema(env.AWA_TEST_QUEUE_STORAGE_SCHEMA?.trim(), "AWA_TEST_QUEUE_STORAGE_SCHEMA") ??
  defaultQueueStorageSchema

/**
 * The engine tests should use: the one given (a name, checked, or an `Engine` object, used as is), else the
 * one `AWA_TEST_ENGINE` names, else {@link defaultTestEngine}; queue storage in `queueStorageSchema`
 * (default {@link testQueueStorageSchemaFromEnv}). Throws a {@link TestEngineError} for unknown names.
 */
export const resolveTestEngine = (
  engine?: EngineName | Engine,
  env: TestEnvironment = process.env,
  queueStorageSchema?: string,
): Engine => {
  if (typeof engine === "object") return engine
  const name = parseTestEngine(engine, "engine") ?? testEngineFromEnv(env)
  return selectEngine(
    { engine: name, queueStorageSchema: queueStorageSchema ?? testQueueStorageSchemaFromEnv(env) },
    {},
  )
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

// Queue storage's storage cycle is its rings: both hooks run the leader's ring maintenance at once (rotation
// and prune without waiting for the slots to age), keeping failed and cancelled jobs for an hour.
const queueStorageMaintenance = (engine: Engine): TestEngineMaintenance => {
  const rings = engine as Engine & Pick<QueueStorageEngine, "maintainRings">
  const cycle = async (db: Executor) => {
    await rings.maintainRings(db, { failedMs: 3_600_000, force: true })
  }
  return { rotate: cycle, prune: cycle }
}

// Per engine; an engine with a storage cycle registers its rotate and prune here.
const maintenanceByEngine: ReadonlyMap<EngineName, (engine: Engine) => TestEngineMaintenance> = new Map([
  ["canonical", () => canonicalMaintenance],
  ["queue_storage", queueStorageMaintenance],
])

/** The maintenance hooks of `engine` ({@link TestEngineMaintenance}); no-ops for an engine without any. */
export const testEngineMaintenance = (engine: Engine): TestEngineMaintenance =>
  maintenanceByEngine.get(engine.name)?.(engine) ?? { rotate: async () => {}, prune: async () => {} }
