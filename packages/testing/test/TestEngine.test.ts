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
    expect(testEngineNames).toEqual(["canonical"])
    expect(testEngineFromEnv({})).toBe("canonical")
    expect(testEngineFromEnv({ AWA_TEST_ENGINE: "" })).toBe("canonical")
    expect(testEngineFromEnv({ AWA_TEST_ENGINE: "canonical" })).toBe("canonical")
    expect(resolveTestEngine(undefined, { AWA_TEST_ENGINE: "canonical" })).toBe(canonicalEngine)
    expect(resolveTestEngine(canonicalEngine, { AWA_TEST_ENGINE: "bogus" })).toBe(canonicalEngine)
  })

  it("refuses an unknown engine, listing the valid ones, instead of defaulting", () => {
    const error = errorOf(() => testEngineFromEnv({ AWA_TEST_ENGINE: "postgres" }))
    expect(error.message).toBe(
      'AWA_TEST_ENGINE="postgres" names no storage engine. Use one of: canonical (or leave it unset for canonical).',
    )
    expect(error).toMatchObject({ engine: "postgres", source: "AWA_TEST_ENGINE", available: ["canonical"] })
  })

  it("says an engine that is planned but not implemented yet is not available", () => {
    expect(errorOf(() => resolveTestEngine(undefined, { AWA_TEST_ENGINE: "queue_storage" })).message).toBe(
      'AWA_TEST_ENGINE="queue_storage" is not implemented in this version of awa. Use one of: canonical ' +
        "(or leave it unset for canonical).",
    )
    expect(errorOf(() => parseTestEngine("Canonical", "engine")).message).toContain('engine="Canonical"')
  })
})
