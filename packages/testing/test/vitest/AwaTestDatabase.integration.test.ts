import { defineJob } from "@awa/model/JobDefinition"
import { handle } from "@awa/runtime/JobHandler"
import { Schema } from "effect"
import { describe, expect, it } from "vitest"
import { expectInserted } from "../../src/JobAssertions.js"
import { TestEngineError } from "../../src/TestEngineError.js"
import { useAwaDatabase } from "../../src/vitest/AwaTestDatabase.js"

const Greet = defineJob({ kind: "greet", args: Schema.Struct({ name: Schema.String }) })
const greeted: Array<string> = []

describe("useAwaDatabase (file scope)", () => {
  const awa = useAwaDatabase({ handlers: [handle(Greet, ({ name }) => void greeted.push(name))] })
  let readEarly: unknown
  try {
    void awa.pool
  } catch (error) {
    readEarly = error
  }

  it("says clearly when the fixture is read while tests are being collected", () => {
    expect(String(readEarly)).toContain("Read the fixture inside a test or hook")
  })

  it("hands the file a migrated database with a pool, producer, admin and bound helpers", async () => {
    expect(awa.engineName).toBe("canonical")
    await awa.producer.insert(awa.pool, Greet, { name: "ada" })
    await expectInserted(awa.pool, Greet, { args: { name: "ada" } })
    expect(await awa.drain()).toMatchObject({ counts: { completed: 1 } })
    expect(greeted).toEqual(["ada"])
  })

  it("keeps the same database for every test of the file", async () => {
    await expectInserted(awa.pool, Greet, { state: "completed" })
    expect(await awa.cleanQueue("default")).toEqual({ jobs: 1, deadLettered: 0 })
  })
})

describe("useAwaDatabase (test scope)", () => {
  const awa = useAwaDatabase({ scope: "test" })
  const databases: Array<string> = []

  it("gives each test a fresh database: first", async () => {
    databases.push(awa.primaryUrl)
    await awa.producer.insert(awa.pool, Greet, { name: "only here" })
  })

  it("gives each test a fresh database: second", async () => {
    expect(awa.primaryUrl).not.toBe(databases[0])
    expect((await awa.admin.listJobs(awa.pool)).items).toEqual([])
  })
})

describe("useAwaDatabase engine choice", () => {
  it("refuses an unknown engine at once, listing the valid ones", () => {
    expect(() => useAwaDatabase({ engine: "nope" as "canonical" })).toThrow(TestEngineError)
    expect(() => useAwaDatabase({ engine: "nope" as "canonical" })).toThrow(
      'engine="nope" names no storage engine. Use one of: canonical',
    )
  })
})
