import { canonicalEngine } from "@awa/runtime/CanonicalEngine"
import { describe, expect, it } from "vitest"
import {
  defaultTestEngine,
  parseTestEngine,
  resolveTestEngine,
  testEngineFromEnv,
  testEngineNames,
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
    expect(testEngineFromEnv({ AWA_TEST_ENGINE: "queue_storage" })).toBe("queue_storage")
    expect(resolveTestEngine(undefined, { AWA_TEST_ENGINE: "queue_storage" }).name).toBe("queue_storage")
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

  it("names the flag in errors for a misspelt engine", () => {
    expect(errorOf(() => parseTestEngine("Canonical", "engine")).message).toContain('engine="Canonical"')
    expect(errorOf(() => parseTestEngine("queue-storage", "engine")).message).toContain(
      "names no storage engine",
    )
  })
})
