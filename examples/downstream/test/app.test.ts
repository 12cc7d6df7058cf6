// The application's tests: a migrated database per file, assertions on what was enqueued, and jobs
// worked one at a time through awa's real worker path.
import { expectInserted, expectManyInserted, expectNotInserted, JobAssertionError } from "@awa/testing"
import { useAwaDatabase } from "@awa/testing/vitest/AwaTestDatabase"
import { afterEach, describe, expect, it } from "vitest"
import { scheduleInvoice, signUp } from "../src/app.js"
import { makeHandlers } from "../src/handlers.js"
import { ChargeInvoice, SendWelcomeEmail } from "../src/jobs.js"

// Test doubles for the services the handlers call.
const outbox: Array<{ to: string; subject: string }> = []
const answers: Array<"paid" | "declined" | "busy" | Error> = []
const handlers = makeHandlers({
  mailer: { send: async (to, subject) => void outbox.push({ to, subject }) },
  payments: {
    charge: async () => {
      const answer = answers.shift() ?? "paid"
      if (answer instanceof Error) throw answer
      return answer
    },
  },
})

// One migrated database for this file; the handlers are registered for awa.workOne / awa.drain.
const awa = useAwaDatabase({ handlers })

afterEach(async () => {
  // Keep tests independent: remove their jobs (and unique keys) from the queues they used.
  await awa.cleanQueue("email")
  await awa.cleanQueue("billing")
  outbox.length = 0
  answers.length = 0
})

describe("sign-up", () => {
  it("enqueues one welcome email, even when the user signs up twice", async () => {
    await signUp(awa.pool, { email: "ada@example.com", name: "Ada" })
    const again = await signUp(awa.pool, { email: "ada@example.com", name: "Ada" })
    expect(again._tag).toBe("UniqueConflict")
    await expectInserted(awa.pool, SendWelcomeEmail, {
      queue: "email",
      state: "available",
      args: { email: "ada@example.com" },
    })
    await expectManyInserted(awa.pool, [{ kind: SendWelcomeEmail, args: { name: "Ada" } }])
  })

  it("enqueues nothing when the sign-up fails and rolls back", async () => {
    await expect(signUp(awa.pool, { email: "not-an-email", name: "Bob" })).rejects.toThrow("not an email")
    await expectNotInserted(awa.pool, SendWelcomeEmail)
  })

  it("sends the welcome email when the job is worked", async () => {
    await signUp(awa.pool, { email: "ada@example.com", name: "Ada" })
    const result = await awa.workOne(SendWelcomeEmail)
    expect(result.outcome).toBe("completed")
    expect(outbox).toEqual([{ to: "ada@example.com", subject: "Welcome, Ada!" }])
  })

  it("shows what was enqueued instead when an expectation is wrong", async () => {
    await signUp(awa.pool, { email: "ada@example.com", name: "Ada" })
    const failure = await expectInserted(awa.pool, SendWelcomeEmail, { args: { name: "Grace" } }).catch(
      (error: unknown) => error,
    )
    expect(failure).toBeInstanceOf(JobAssertionError)
    expect(String((failure as Error).message)).toContain('args.name: expected "Grace", got "Ada"')
  })
})

describe("invoices", () => {
  it("schedules the charge for its due date and runs it once it is due, without waiting", async () => {
    const dueAt = new Date(Date.now() + 7 * 24 * 3_600_000)
    await scheduleInvoice(awa.pool, "inv-1", 4_200, dueAt)
    await expectInserted(awa.pool, ChargeInvoice, {
      queue: "billing",
      priority: 1,
      state: "scheduled",
      runAt: { from: dueAt, to: dueAt },
      args: { invoiceId: "inv-1" },
    })
    expect((await awa.workOne(ChargeInvoice)).outcome).toBe("none")

    await awa.makeJobsDue({ queue: "billing" })
    const result = await awa.workOne(ChargeInvoice)
    expect(result).toMatchObject({ outcome: "completed", job: { state: "completed", attempt: 1 } })
  })

  it("retries when the payment provider is unreachable, and succeeds on the next attempt", async () => {
    await scheduleInvoice(awa.pool, "inv-2", 100, new Date())
    answers.push(new Error("provider unreachable"))
    const first = await awa.workOne(ChargeInvoice)
    expect(first).toMatchObject({ outcome: "retried", error: { message: "provider unreachable" } })

    await awa.makeJobsDue({ kind: ChargeInvoice.kind })
    const second = await awa.workOne(ChargeInvoice)
    expect(second).toMatchObject({ outcome: "completed", job: { attempt: 2 } })
  })

  it("cancels a declined charge and snoozes a busy provider without using up attempts", async () => {
    await scheduleInvoice(awa.pool, "inv-3", 100, new Date())
    await scheduleInvoice(awa.pool, "inv-4", 100, new Date())
    answers.push("declined", "busy")
    expect(await awa.workOne(ChargeInvoice)).toMatchObject({ outcome: "cancelled" })
    expect(await awa.workOne(ChargeInvoice)).toMatchObject({ outcome: "snoozed", job: { attempt: 0 } })
  })

  it("works everything that is due with drain", async () => {
    await signUp(awa.pool, { email: "grace@example.com", name: "Grace" })
    await scheduleInvoice(awa.pool, "inv-5", 100, new Date())
    const { counts } = await awa.drain()
    expect(counts).toMatchObject({ completed: 2 })
    expect(outbox.map((mail) => mail.to)).toEqual(["grace@example.com"])
  })
})
