import { defineJob } from "@awa/model/JobDefinition"
import { job } from "@awa/runtime/Producer"
import { Schema } from "effect"
import { describe, expect, it } from "vitest"
import { JobAssertionError } from "../src/JobAssertionError.js"
import { expectInserted, expectManyInserted, expectNotInserted } from "../src/JobAssertions.js"
import { useAwaDatabase } from "../src/vitest/AwaTestDatabase.js"

const awa = useAwaDatabase({ scope: "test" })

const Email = defineJob({
  kind: "email",
  args: Schema.Struct({ to: Schema.String, meta: Schema.optional(Schema.Struct({ lang: Schema.String })) }),
})
const Report = defineJob({ kind: "report", args: Schema.Struct({ id: Schema.Number }) })

const later = new Date("2099-01-01T00:00:00.000Z")

/** The failure of `run`, with job ids and the database's current times made stable for comparison. */
const failureOf = async (run: () => Promise<unknown>): Promise<JobAssertionError> => {
  try {
    await run()
  } catch (error) {
    if (error instanceof JobAssertionError) return error
    throw error
  }
  throw new Error("expected the assertion to fail, but it passed")
}

const stable = (message: string): string =>
  message
    .replace(/#\d+/g, "#<id>")
    .replace(/runAt (?!2099)\d{4}-\d\d-\d\dT[\d:.]+Z/g, "runAt <now>")
    .replace(/got (?!2099)\d{4}-\d\d-\d\dT[\d:.]+Z/g, "got <now>")

describe("expectInserted", () => {
  it("returns the one job of the kind that matches the options given", async () => {
    await awa.producer.insertMany(awa.pool, [
      job(Email, { to: "ada@example.com", meta: { lang: "en" } }, { queue: "mail", priority: 1 }),
      job(Email, { to: "bob@example.com" }, { queue: "mail", runAt: later }),
    ])
    const found = await expectInserted(awa.pool, Email, {
      queue: "mail",
      priority: 1,
      state: ["available", "running"],
      args: { meta: { lang: "en" } },
    })
    expect(found.args).toEqual({ to: "ada@example.com", meta: { lang: "en" } })
    const scheduled = await expectInserted(awa.pool, "email", {
      state: "scheduled",
      runAt: { from: new Date("2098-12-31T00:00:00Z"), to: later },
    })
    expect(scheduled.args).toEqual({ to: "bob@example.com" })
  })

  it("fails when there is no job at all", async () => {
    const error = await failureOf(() => expectInserted(awa.pool, Email, { args: { to: "ada@example.com" } }))
    expect(error.message).toBe(
      'expectInserted: expected one job of kind "email" with args containing {"to":"ada@example.com"}, ' +
        'but there is no job of kind "email". There are no jobs at all.',
    )
    expect(error).toMatchObject({ assertion: "expectInserted", found: [] })
  })

  it("fails when only other kinds exist, naming them", async () => {
    await awa.producer.insertMany(awa.pool, [job(Report, { id: 1 }), job(Report, { id: 2 })])
    const error = await failureOf(() => expectInserted(awa.pool, "emial"))
    expect(error.message).toBe(
      'expectInserted: expected one job of kind "emial", but there is no job of kind "emial". ' +
        'Jobs of other kinds: "report" (2).',
    )
  })

  it("fails when no job of the kind matches, showing each job and what differs", async () => {
    await awa.producer.insertMany(awa.pool, [
      job(Email, { to: "bob@example.com", meta: { lang: "de" } }, { queue: "default", priority: 3 }),
      job(Email, { to: "ada@example.com" }, { queue: "mail", runAt: later }),
    ])
    const error = await failureOf(() =>
      expectInserted(awa.pool, Email, {
        queue: "mail",
        priority: 1,
        state: "available",
        runAt: { to: new Date("2030-01-01T00:00:00.000Z") },
        args: { to: "ada@example.com", meta: { lang: "en" } },
      }),
    )
    expect(stable(error.message)).toBe(
      [
        'expectInserted: expected one job of kind "email" with queue "mail", priority 1, state available, ' +
          'runAt within [-∞, 2030-01-01T00:00:00.000Z], args containing {"to":"ada@example.com","meta":{"lang":"en"}}, ' +
          "but none of the 2 jobs of that kind match:",
        '  #<id> kind "email", queue "default", priority 3, state available, runAt <now>, ' +
          'args {"to":"bob@example.com","meta":{"lang":"de"}}',
        '      queue: expected "mail", got "default"',
        "      priority: expected 1, got 3",
        '      args.to: expected "ada@example.com", got "bob@example.com"',
        '      args.meta.lang: expected "en", got "de"',
        '  #<id> kind "email", queue "mail", priority 2, state scheduled, runAt 2099-01-01T00:00:00.000Z, ' +
          'args {"to":"ada@example.com"}',
        "      priority: expected 1, got 2",
        "      state: expected available, got scheduled",
        "      runAt: expected at or before 2030-01-01T00:00:00.000Z, got 2099-01-01T00:00:00.000Z",
        '      args.meta: missing, expected {"lang":"en"}',
      ].join("\n"),
    )
    expect(error.found).toHaveLength(2)
  })

  it("says so when the only job of the kind does not match", async () => {
    await awa.producer.insert(awa.pool, Report, { id: 1 }, { runAt: later })
    const error = await failureOf(() =>
      expectInserted(awa.pool, Report, { runAt: { from: new Date("2100-01-01T00:00:00.000Z") } }),
    )
    expect(stable(error.message)).toBe(
      [
        'expectInserted: expected one job of kind "report" with runAt within [2100-01-01T00:00:00.000Z, +∞], ' +
          "but the only job of that kind does not match:",
        '  #<id> kind "report", queue "default", priority 2, state scheduled, runAt 2099-01-01T00:00:00.000Z, args {"id":1}',
        "      runAt: expected at or after 2100-01-01T00:00:00.000Z, got 2099-01-01T00:00:00.000Z",
      ].join("\n"),
    )
  })

  it("fails when several jobs match, listing them", async () => {
    await awa.producer.insertMany(awa.pool, [job(Report, { id: 1 }), job(Report, { id: 2 })])
    const error = await failureOf(() => expectInserted(awa.pool, Report))
    expect(stable(error.message)).toBe(
      [
        'expectInserted: expected one job of kind "report", but 2 match (use expectManyInserted, or narrow the match):',
        '  #<id> kind "report", queue "default", priority 2, state available, runAt <now>, args {"id":1}',
        '  #<id> kind "report", queue "default", priority 2, state available, runAt <now>, args {"id":2}',
      ].join("\n"),
    )
    expect(await expectInserted(awa.pool, Report, { args: { id: 2 } })).toMatchObject({ args: { id: 2 } })
  })

  it("compares args as stored JSON, whole arrays and nested objects by content", async () => {
    const Tagged = defineJob({
      kind: "tagged",
      args: Schema.Struct({ list: Schema.Array(Schema.Number), when: Schema.String }),
    })
    const when = new Date("2030-05-06T07:08:09.000Z")
    await awa.producer.insert(awa.pool, Tagged, { list: [1, 2], when: when.toISOString() })
    await expectInserted(awa.pool, Tagged, { args: { list: [1, 2] } })
    await expectInserted(awa.pool, "tagged", { args: { when } })
    const error = await failureOf(() => expectInserted(awa.pool, Tagged, { args: { list: [1] } }))
    expect(error.message).toContain("      args.list: expected [1], got [1,2]")
  })
})

describe("expectNotInserted", () => {
  it("passes when no job of the kind matches", async () => {
    await awa.producer.insert(awa.pool, Report, { id: 1 }, { queue: "other" })
    await expectNotInserted(awa.pool, Email)
    await expectNotInserted(awa.pool, Report, { queue: "default" })
  })

  it("fails listing the jobs that match", async () => {
    await awa.producer.insertMany(awa.pool, [
      job(Report, { id: 1 }, { queue: "other" }),
      job(Report, { id: 2 }, { queue: "default" }),
    ])
    const error = await failureOf(() => expectNotInserted(awa.pool, Report, { queue: "other" }))
    expect(stable(error.message)).toBe(
      [
        'expectNotInserted: expected no job of kind "report" with queue "other", but found 1:',
        '  #<id> kind "report", queue "other", priority 2, state available, runAt <now>, args {"id":1}',
      ].join("\n"),
    )
    expect(error.found.map((j) => j.args)).toEqual([{ id: 1 }])
  })
})

describe("expectManyInserted", () => {
  it("returns the jobs of the kinds named, in insertion order, when each matches its expectation", async () => {
    await awa.producer.insertMany(awa.pool, [
      job(Report, { id: 1 }),
      job(Email, { to: "a" }),
      job(Report, { id: 2 }, { priority: 4 }),
    ])
    await awa.producer.insert(awa.pool, defineJob({ kind: "ignored", args: Schema.Struct({}) }), {})
    const jobs = await expectManyInserted(awa.pool, [
      { kind: Report, args: { id: 1 } },
      { kind: "email" },
      { kind: Report, priority: 4 },
    ])
    expect(jobs.map((j) => j.kind)).toEqual(["report", "email", "report"])
  })

  it("fails when a job is missing", async () => {
    await awa.producer.insert(awa.pool, Report, { id: 1 })
    const error = await failureOf(() =>
      expectManyInserted(awa.pool, [
        { kind: Report, args: { id: 1 } },
        { kind: Email, queue: "mail" },
      ]),
    )
    expect(stable(error.message)).toBe(
      [
        'expectManyInserted: expected 2 jobs of kinds "report", "email" in this order, but found 1.',
        "Expected:",
        '  1. kind "report" with args containing {"id":1}',
        '  2. kind "email" with queue "mail"',
        "Found:",
        '  1. ✓ #<id> kind "report", queue "default", priority 2, state available, runAt <now>, args {"id":1}',
        '  2. ✗ missing: kind "email" with queue "mail"',
      ].join("\n"),
    )
  })

  it("fails on an extra job and on jobs in another order, position by position", async () => {
    await awa.producer.insertMany(awa.pool, [
      job(Email, { to: "a" }),
      job(Report, { id: 1 }),
      job(Report, { id: 2 }),
    ])
    const error = await failureOf(() => expectManyInserted(awa.pool, [{ kind: Report }, { kind: Email }]))
    expect(stable(error.message)).toBe(
      [
        'expectManyInserted: expected 2 jobs of kinds "report", "email" in this order, but found 3.',
        "Expected:",
        '  1. kind "report"',
        '  2. kind "email"',
        "Found:",
        '  1. ✗ #<id> kind "email", queue "default", priority 2, state available, runAt <now>, args {"to":"a"}',
        '        kind: expected "report", got "email"',
        '  2. ✗ #<id> kind "report", queue "default", priority 2, state available, runAt <now>, args {"id":1}',
        '        kind: expected "email", got "report"',
        '  3. ✗ #<id> kind "report", queue "default", priority 2, state available, runAt <now>, args {"id":2}',
        "        unexpected: only 2 expected",
      ].join("\n"),
    )
    expect(error.found).toHaveLength(3)
  })

  it("fails when a job in its place does not match its options", async () => {
    await awa.producer.insertMany(awa.pool, [job(Report, { id: 1 }), job(Report, { id: 2 })])
    const error = await failureOf(() =>
      expectManyInserted(awa.pool, [
        { kind: Report, args: { id: 1 } },
        { kind: Report, args: { id: 3 }, state: "scheduled" },
      ]),
    )
    expect(stable(error.message)).toContain(
      [
        '  2. ✗ #<id> kind "report", queue "default", priority 2, state available, runAt <now>, args {"id":2}',
        "        state: expected scheduled, got available",
        "        args.id: expected 3, got 2",
      ].join("\n"),
    )
  })
})

describe("inside an open transaction", () => {
  it("sees the transaction's own uncommitted jobs, which the pool does not", async () => {
    const client = await awa.pool.connect()
    try {
      await client.query("BEGIN")
      await awa.producer.insert(client, Email, { to: "pending" })
      await expectInserted(client, Email, { args: { to: "pending" } })
      await expectManyInserted(client, [{ kind: Email }])
      await expectNotInserted(awa.pool, Email)
      const error = await failureOf(() => expectInserted(awa.pool, Email))
      expect(error.message).toContain('there is no job of kind "email"')
      await client.query("ROLLBACK")
    } finally {
      client.release()
    }
    await expectNotInserted(awa.pool, Email)
  })
})

describe("args as the handler sees them", () => {
  const Counted = defineJob({
    kind: "counted",
    args: Schema.Struct({
      count: Schema.NumberFromString,
      note: Schema.optional(Schema.String),
    }),
  })

  it("compares decoded values when given the definition, and stored JSON when given the kind name", async () => {
    await awa.producer.insert(awa.pool, Counted, { count: 5 })
    const found = await expectInserted(awa.pool, Counted, { args: { count: 5 } })
    expect(found.args).toEqual({ count: "5" })
    await expectInserted(awa.pool, "counted", { args: { count: "5" } })
    const error = await failureOf(() => expectInserted(awa.pool, Counted, { args: { count: 6 } }))
    expect(error.message).toContain("args.count: expected 6, got 5")
    await expectNotInserted(awa.pool, Counted, { args: { count: 6 } })
    await expectManyInserted(awa.pool, [{ kind: Counted, args: { count: 5 } }])
  })

  it("treats undefined in expected args as absent, never as matching anything", async () => {
    await awa.producer.insert(awa.pool, Counted, { count: 1, note: "kept" })
    await awa.producer.insert(awa.pool, Counted, { count: 2 })
    const found = await expectInserted(awa.pool, Counted, { args: { note: undefined } })
    expect(found.args).toEqual({ count: "2" })
    await expectInserted(awa.pool, "counted", { args: { count: "1", note: "kept" } })
    const error = await failureOf(() =>
      expectInserted(awa.pool, "counted", { args: { count: "1", note: undefined } }),
    )
    expect(error.message).toContain('args.note: expected absent, got "kept"')
    expect(error.message).toContain('args containing {"count":"1","note":"<absent>"}')
  })
})
