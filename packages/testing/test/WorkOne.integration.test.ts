import { defineJob } from "@awa/model/JobDefinition"
import { handle } from "@awa/runtime/JobHandler"
import { withTransaction } from "@awa/runtime/PgExecutor"
import { Schema } from "effect"
import { describe, expect, it } from "vitest"
import { expectInserted } from "../src/JobAssertions.js"
import { useAwaDatabase } from "../src/vitest/AwaTestDatabase.js"
import { workOne, workOneInQueue } from "../src/WorkOne.js"

const Email = defineJob({ kind: "email", args: Schema.Struct({ to: Schema.String }), queue: "mail" })
const Report = defineJob({ kind: "report", args: Schema.Struct({ id: Schema.Number }) })

const sent: Array<string> = []
const sendEmail = handle(Email, ({ to }) => {
  sent.push(to)
})
const awa = useAwaDatabase({ scope: "test", handlers: [sendEmail] })

describe("workOne", () => {
  it("works the next job of the definition's queue with the registered handler", async () => {
    await awa.producer.insert(awa.pool, Email, { to: "ada@example.com" })
    const result = await workOne(awa.pool, Email, { handlers: [sendEmail] })
    expect(result).toMatchObject({
      outcome: "completed",
      claimed: { kind: "email", queue: "mail", attempt: 1 },
      job: { state: "completed", args: { to: "ada@example.com" } },
    })
    expect(sent).toContain("ada@example.com")
    expect(await workOne(awa.pool, Email, { handlers: [sendEmail] })).toEqual({ outcome: "none" })
  })

  it("uses a given handler instead of the registered one, and another queue when asked", async () => {
    await awa.producer.insert(awa.pool, Email, { to: "x" }, { queue: "elsewhere" })
    expect((await awa.workOne(Email)).outcome).toBe("none")
    const result = await awa.workOne(
      handle(Email, () => {
        throw new Error("given handler ran")
      }),
      { queue: "elsewhere" },
    )
    expect(result).toMatchObject({ outcome: "retried", error: { message: "given handler ran" } })
  })

  it("refuses a definition without a registered handler before claiming anything", async () => {
    await awa.producer.insert(awa.pool, Report, { id: 1 })
    await expect(workOne(awa.pool, Report, { handlers: [sendEmail] })).rejects.toThrow(
      'workOne: no handler is registered for kind "report" (registered: email). Pass a handler instead of the ' +
        "definition (workOne(db, handle(Definition, fn))), or register one in options.handlers.",
    )
    await expectInserted(awa.pool, Report, { state: "available" })
  })

  it("treats a job whose kind has no handler as the worker does: an unknown-kind error, retried", async () => {
    await awa.producer.insert(awa.pool, Report, { id: 1 }, { queue: "mail" })
    const result = await awa.workOne(Email)
    expect(result).toMatchObject({
      outcome: "retried",
      claimed: { kind: "report" },
      error: { kind: "unknown_kind" },
      job: { state: "retryable" },
    })
  })

  it("fails a job whose stored args no longer decode, without retrying", async () => {
    const Renamed = defineJob({ kind: "report", args: Schema.Struct({ title: Schema.String }) })
    await awa.producer.insert(awa.pool, Report, { id: 7 })
    const result = await workOne(
      awa.pool,
      handle(Renamed, () => {}),
    )
    expect(result).toMatchObject({
      outcome: "failed",
      error: { kind: "invalid_args" },
      job: { state: "failed", attempt: 1 },
      deadLetter: null,
    })
  })
})

describe("workOneInQueue", () => {
  it("works the caller's uncommitted job inside its transaction, which then rolls back", async () => {
    await expect(
      withTransaction(awa.pool, async (client) => {
        await awa.producer.insert(client, Report, { id: 1 }, { queue: "tx" })
        const result = await workOneInQueue(client, "tx", { handler: handle(Report, () => {}) })
        expect(result).toMatchObject({ outcome: "completed", job: { state: "completed" } })
        throw new Error("roll back")
      }),
    ).rejects.toThrow("roll back")
    expect((await awa.admin.listJobs(awa.pool, { queue: "tx" })).items).toEqual([])
  })

  it("reports none for an empty or unknown queue", async () => {
    expect(await workOneInQueue(awa.pool, "nothing-here")).toEqual({ outcome: "none" })
  })
})
