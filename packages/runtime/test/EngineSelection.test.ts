import { afterEach, describe, expect, it, vi } from "vitest"
import { makeAdmin } from "../src/Admin.js"
import { canonicalEngine } from "../src/CanonicalEngine.js"
import type { Engine } from "../src/Engine.js"
import {
  checkEngineSelection,
  type EngineResolver,
  fixedEngine,
  InvalidEngineSelection,
  parseEngineName,
  parseQueueStorageSchema,
  resolveEngine,
  routedEngine,
  selectEngine,
} from "../src/EngineSelection.js"
import { makeProducer } from "../src/Producer.js"
import { Worker } from "../src/Worker.js"

const errorOf = (run: () => unknown): InvalidEngineSelection => {
  try {
    run()
  } catch (error) {
    if (error instanceof InvalidEngineSelection) return error
    throw error
  }
  throw new Error("expected an InvalidEngineSelection")
}

describe("choosing the engine", () => {
  it("defaults to canonical in schema awa when neither option nor environment names one", () => {
    expect(checkEngineSelection({}, {})).toEqual({ engine: "canonical", queueStorageSchema: "awa" })
    expect(checkEngineSelection(undefined, { AWA_ENGINE: "", AWA_QUEUE_STORAGE_SCHEMA: " " })).toEqual({
      engine: "canonical",
      queueStorageSchema: "awa",
    })
    // Unnamed, the engine follows the database's storage state; before any read it answers canonical.
    const following = resolveEngine({}, {})
    expect(following.fixed).toBeUndefined()
    expect(following.current()).toBe(canonicalEngine)
    expect(selectEngine({}, {}).name).toBe("canonical")
  })

  it("takes the engine and schema from the options, else from AWA_ENGINE and AWA_QUEUE_STORAGE_SCHEMA", () => {
    expect(checkEngineSelection({ engine: "queue_storage" }, {})).toEqual({
      engine: "queue_storage",
      queueStorageSchema: "awa",
    })
    expect(
      checkEngineSelection({}, { AWA_ENGINE: " queue_storage ", AWA_QUEUE_STORAGE_SCHEMA: "tenant_a" }),
    ).toEqual({ engine: "queue_storage", queueStorageSchema: "tenant_a" })
    // The option wins, and a bad variable is not even read when an option decides.
    expect(
      checkEngineSelection(
        { engine: "canonical", queueStorageSchema: "tenant_b" },
        { AWA_ENGINE: "bogus", AWA_QUEUE_STORAGE_SCHEMA: "Bad-Name" },
      ),
    ).toEqual({ engine: "canonical", queueStorageSchema: "tenant_b" })
    expect(selectEngine({ engine: "canonical" }, { AWA_ENGINE: "queue_storage" })).toBe(canonicalEngine)
    expect(selectEngine({}, { AWA_ENGINE: "canonical" })).toBe(canonicalEngine)
  })

  it("uses an Engine object as is, and refuses a schema option next to one", () => {
    const custom: Engine = { ...canonicalEngine }
    expect(selectEngine({ engine: custom }, { AWA_ENGINE: "bogus" })).toBe(custom)
    const error = errorOf(() => selectEngine({ engine: custom, queueStorageSchema: "tenant_a" }, {}))
    expect(error.reason).toBe("schema-with-engine-object")
    expect(error.message).toContain(
      'queueStorageSchema option "tenant_a" cannot be combined with an Engine object',
    )
    expect(error.message).toContain("makeQueueStorageEngine({ schema })")
  })

  it("refuses an unknown engine name, saying where it came from and what to use", () => {
    const fromEnv = errorOf(() => checkEngineSelection({}, { AWA_ENGINE: "queue-storage" }))
    expect(fromEnv).toMatchObject({
      reason: "unknown-engine",
      source: "AWA_ENGINE",
      value: '"queue-storage"',
    })
    expect(fromEnv.message).toBe(
      'AWA_ENGINE "queue-storage" names no storage engine. Did you mean "queue_storage"? Use one of: ' +
        "canonical, queue_storage (or leave it unset for canonical).",
    )
    const fromOption = errorOf(() => checkEngineSelection({ engine: "postgres" as never }, {}))
    expect(fromOption.message).toBe(
      'the engine option "postgres" names no storage engine. Use one of: canonical, queue_storage ' +
        "(or leave it unset for canonical).",
    )
    expect(errorOf(() => parseEngineName(7, "--engine")).message).toContain("--engine 7 (number) names no")
    expect(errorOf(() => parseEngineName("Canonical", "--engine")).message).toContain(
      'Did you mean "canonical"?',
    )
  })

  it("refuses a queue-storage schema name that is not a plain identifier, pointing at the prepare command", () => {
    for (const [value, why] of [
      ["Tenant", "upper-case letters"],
      ["tenant-a", "characters other than a-z, 0-9 and _"],
      ["1tenant", "starts with a digit"],
      ["pg_tenant", "reserved by Postgres"],
      ["t".repeat(64), "at most 63"],
    ] as const) {
      const error = errorOf(() => checkEngineSelection({}, { AWA_QUEUE_STORAGE_SCHEMA: value }))
      expect(error).toMatchObject({ reason: "invalid-schema", source: "AWA_QUEUE_STORAGE_SCHEMA" })
      expect(error.message).toContain(why)
      expect(error.message).toContain("awa storage prepare-queue-storage-schema --schema NAME")
    }
    expect(errorOf(() => parseQueueStorageSchema(42, "--queue-storage-schema")).message).toContain(
      "--queue-storage-schema 42 (number) is not a usable queue-storage schema name: it is not a string",
    )
    // Checked while canonical too, so the typo surfaces before queue storage is chosen.
    expect(
      errorOf(() => checkEngineSelection({ engine: "canonical", queueStorageSchema: "a b" }, {})).source,
    ).toBe("the queueStorageSchema option")
  })

  it("rejects a bad choice when the producer, admin or worker is made, before anything runs", async () => {
    expect(() => makeProducer({ engine: "bogus" as never })).toThrow(InvalidEngineSelection)
    expect(() => makeAdmin({ queueStorageSchema: "Nope" })).toThrow(InvalidEngineSelection)
    await expect(
      Worker.workOne({ db: {} as never, handlers: [], engine: "nope" as never }),
    ).rejects.toBeInstanceOf(InvalidEngineSelection)
    expect(makeProducer({ engine: "canonical" }).engine).toBe(canonicalEngine)
  })
})

describe("the environment, through the producer, admin and worker", () => {
  afterEach(() => {
    vi.unstubAllEnvs()
  })

  it("reads AWA_ENGINE when no option is given, and refuses a bad value at construction", async () => {
    vi.stubEnv("AWA_ENGINE", "canonical")
    expect(makeProducer().engine).toBe(canonicalEngine)
    vi.stubEnv("AWA_ENGINE", "canonicl")
    expect(() => makeProducer()).toThrow(
      'AWA_ENGINE "canonicl" names no storage engine. Did you mean "canonical"?',
    )
    expect(() => makeAdmin()).toThrow(InvalidEngineSelection)
    await expect(Worker.workOne({ db: {} as never, handlers: [] })).rejects.toBeInstanceOf(
      InvalidEngineSelection,
    )
    vi.stubEnv("AWA_ENGINE", "")
    vi.stubEnv("AWA_QUEUE_STORAGE_SCHEMA", "tenant-a")
    expect(() => makeProducer()).toThrow("AWA_QUEUE_STORAGE_SCHEMA")
  })
})

describe("the resolver", () => {
  it("is asked nothing per call when the choice is fixed: the engine is handed out itself", () => {
    expect(routedEngine(fixedEngine(canonicalEngine))).toBe(canonicalEngine)
    expect(resolveEngine({ engine: "canonical" }, {}).fixed).toBe(canonicalEngine)
  })

  it("routes every operation through a resolver whose answer may change between calls", async () => {
    const first: Engine = { ...canonicalEngine, availableDepth: async () => new Map([["q", 1]]) }
    const second: Engine = {
      ...canonicalEngine,
      name: "queue_storage",
      availableDepth: async () => new Map([["q", 2]]),
    }
    let current = first
    const asked: Array<unknown> = []
    const resolver: EngineResolver = {
      engineFor: (db) => {
        asked.push(db)
        return current
      },
      current: () => current,
    }
    const engine = routedEngine(resolver)
    const db = { tag: "executor" } as never
    expect(engine.name).toBe("canonical")
    expect((await engine.availableDepth(db)).get("q")).toBe(1)
    current = second
    expect(engine.name).toBe("queue_storage")
    expect((await engine.availableDepth(db)).get("q")).toBe(2)
    expect(asked).toEqual([db, db])
  })
})
