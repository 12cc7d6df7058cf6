import { setTimeout as sleep } from "node:timers/promises"
import { defineJob } from "@awa/model/JobDefinition"
import { handle } from "@awa/runtime/JobHandler"
import { retryAfter } from "@awa/runtime/JobOutcome"
import { withTransaction } from "@awa/runtime/PgExecutor"
import { Schema } from "effect"
import { describe, expect, it } from "vitest"
import { expectInserted } from "../src/JobAssertions.js"
import { useAwaDatabase } from "../src/vitest/AwaTestDatabase.js"
import { type WorkResult, workOne, workOneInQueue } from "../src/WorkOne.js"

const Email = defineJob({ kind: "email", args: Schema.Struct({ to: Schema.String }), queue: "mail" })
const Report = defineJob({ kind: "report", args: Schema.Struct({ id: Schema.Number }) })

const sent: Array<string> = []
const sendEmail = handle(Email, ({ to }) => {
  sent.push(to)
})
const awa = useAwaDatabase({ scope: "test", handlers: [sendEmail] })

/** Works until a job was worked: its run time comes on the database clock; the timeout is a safety net. */
const untilWorked = async (work: () => Promise<WorkResult>): Promise<WorkResult> => {
  const deadline = Date.now() + 20_000
  for (;;) {
    const result = await work()
    if (result.outcome !== "none") return result
    if (Date.now() > deadline) throw new Error("no job became due within 20 s")
    await sleep(10)
  }
}

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

  it("never claims a job of another kind, which stays available in its place", async () => {
    const report = await awa.producer.insert(awa.pool, Report, { id: 1 }, { queue: "mail", priority: 1 })
    await awa.producer.insert(awa.pool, Email, { to: "after the report" })
    const result = await awa.workOne(Email)
    expect(result).toMatchObject({ outcome: "completed", claimed: { kind: "email" } })
    expect(await awa.workOne(Email)).toEqual({ outcome: "none" })
    await expectInserted(awa.pool, Report, { state: "available" })
    expect(report).toMatchObject({ _tag: "Inserted" })
  })

  it("works a scheduled or retrying job once its run time has come, with no maintenance running", async () => {
    const runAt = new Date(Date.now() + 150)
    await awa.producer.insert(awa.pool, Email, { to: "later" }, { runAt })
    expect(await awa.workOne(Email)).toEqual({ outcome: "none" })
    const retried = await untilWorked(() =>
      awa.workOne(handle(Email, () => retryAfter("100 millis", "once more"))),
    )
    expect(retried).toMatchObject({ outcome: "retried", job: { state: "retryable" } })
    expect(await untilWorked(() => awa.workOne(Email))).toMatchObject({
      outcome: "completed",
      job: { attempt: 2 },
    })
  })
})

describe("workOneInQueue, whatever the kind", () => {
  it("treats a job whose kind has no handler as the worker does: an unknown-kind error, retried", async () => {
    await awa.producer.insert(awa.pool, Report, { id: 1 }, { queue: "mail" })
    const result = await awa.workOneInQueue("mail")
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
