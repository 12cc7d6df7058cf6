import { canonicalEngine } from "@awa/runtime/CanonicalEngine"
import { InvalidEngineSelection } from "@awa/runtime/EngineSelection"
import { describe, expect, it } from "vitest"
import {
  defaultTestEngine,
  parseTestEngine,
  resolveTestEngine,
  testEngineFromEnv,
  testEngineNames,
  testQueueStorageSchemaFromEnv,
} from "../src/TestEngine.js"
import { TestEngineError } from "../src/TestEngineError.js"

const errorOf = (run: () => unknown): TestEngineError => {
  try {
    run()
  } catch (error) {
    if (error instanceof TestEngineError) return error
    throw error
  }
  throw new Error("expected a TestEngineError")
}

describe("AWA_TEST_ENGINE", () => {
  it("defaults to canonical when unset or empty, and accepts every implemented engine", () => {
    expect(defaultTestEngine).toBe("canonical")
    expect(testEngineNames).toEqual(["canonical", "queue_storage"])
    expect(testEngineFromEnv({})).toBe("canonical")
    expect(testEngineFromEnv({ AWA_TEST_ENGINE: "" })).toBe("canonical")
    expect(testEngineFromEnv({ AWA_TEST_ENGINE: "canonical" })).toBe("canonical")
    expect(resolveTestEngine(undefined, { AWA_TEST_ENGINE: "canonical" })).toBe(canonicalEngine)
    expect(resolveTestEngine(canonicalEngine, { AWA_TEST_ENGINE: "bogus" })).toBe(canonicalEngine)
  })

  it("refuses an unknown engine, listing the valid ones, instead of defaulting", () => {
    const error = errorOf(() => testEngineFromEnv({ AWA_TEST_ENGINE: "postgres" }))
    expect(error.message).toBe(
      'AWA_TEST_ENGINE="postgres" names no storage engine. Use one of: canonical, queue_storage (or leave it unset for canonical).',
    )
    expect(error).toMatchObject({
      engine: "postgres",
      source: "AWA_TEST_ENGINE",
      available: ["canonical", "queue_storage"],
    })
  })

  it("builds queue storage in the schema AWA_TEST_QUEUE_STORAGE_SCHEMA names, and checks engine names exactly", () => {
    expect(resolveTestEngine(undefined, { AWA_TEST_ENGINE: "queue_storage" }).name).toBe("queue_storage")
    expect(errorOf(() => parseTestEngine("Canonical", "engine")).message).toContain('engine="Canonical"')
  })
})

describe("AWA_TEST_ENGINE and AWA_ENGINE together", () => {
  it("follows AWA_ENGINE when AWA_TEST_ENGINE is unset, so the code under test and the helpers agree", () => {
    expect(testEngineFromEnv({ AWA_ENGINE: "canonical" })).toBe("canonical")
    expect(testEngineFromEnv({ AWA_TEST_ENGINE: "canonical", AWA_ENGINE: " canonical " })).toBe("canonical")
    expect(() => testEngineFromEnv({ AWA_ENGINE: "postgres" })).toThrow(
      'AWA_ENGINE "postgres" names no storage engine. Use one of: canonical, queue_storage',
    )
  })

  it("refuses two different engines, saying why and what to do", () => {
    const error = errorOf(() =>
      testEngineFromEnv({ AWA_TEST_ENGINE: "canonical", AWA_ENGINE: "queue_storage" }),
    )
    expect(error.message).toContain(
      'AWA_TEST_ENGINE="canonical" but AWA_ENGINE="queue_storage": code under test that makes producers or workers',
    )
    expect(error.message).toContain("Set both to the same engine, or unset AWA_ENGINE.")
  })
})

describe("AWA_TEST_QUEUE_STORAGE_SCHEMA", () => {
  it("names the queue-storage schema under test, awa when unset or empty", () => {
    expect(testQueueStorageSchemaFromEnv({})).toBe("awa")
    expect(testQueueStorageSchemaFromEnv({ AWA_TEST_QUEUE_STORAGE_SCHEMA: " " })).toBe("awa")
    expect(testQueueStorageSchemaFromEnv({ AWA_TEST_QUEUE_STORAGE_SCHEMA: "tenant_ci" })).toBe("tenant_ci")
    // The canonical engine has no queue-storage schema: choosing one changes nothing for it.
    expect(resolveTestEngine("canonical", { AWA_TEST_QUEUE_STORAGE_SCHEMA: "tenant_ci" })).toBe(
      canonicalEngine,
    )
  })

  it("refuses a name that is not a plain identifier, naming the variable", () => {
    expect(() => testQueueStorageSchemaFromEnv({ AWA_TEST_QUEUE_STORAGE_SCHEMA: "Tenant" })).toThrow(
      InvalidEngineSelection,
    )
    expect(() => resolveTestEngine(undefined, { AWA_TEST_QUEUE_STORAGE_SCHEMA: "tenant-ci" })).toThrow(
      'AWA_TEST_QUEUE_STORAGE_SCHEMA "tenant-ci" is not a usable queue-storage schema name',
    )
  })
})
