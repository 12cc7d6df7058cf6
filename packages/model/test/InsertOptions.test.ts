import { describe, expect, it } from "vitest"
import { type ResolvedInsertOptions, resolveInsertOptions, validateQueueName } from "../src/InsertOptions.js"
import { InvalidInsertOptions, JobPayloadTooLarge } from "../src/JobErrors.js"
import { defaultUniqueStates, jobStates, nonTerminalJobStates } from "../src/JobState.js"

const ok = (r: ReturnType<typeof resolveInsertOptions>): ResolvedInsertOptions => {
  if (r instanceof Error) throw r
  return r
}
const optionOf = (r: ReturnType<typeof resolveInsertOptions>): string => {
  expect(r).toBeInstanceOf(InvalidInsertOptions)
  return (r as InvalidInsertOptions).option
}

describe("resolveInsertOptions", () => {
  it("applies defaults", () => {
    const r = ok(resolveInsertOptions("k", undefined, undefined))
    expect(r).toMatchObject({ queue: "default", priority: 2, maxAttempts: 25, runAt: null, delayMs: null })
    expect(r.timeoutMs).toBeNull()
    expect(r.unique).toBeNull()
    expect(r.metadataJson).toBe("{}")
  })

  it("merges definition defaults under insert options", () => {
    const r = ok(
      resolveInsertOptions(
        "k",
        { queue: "a", priority: 3, metadata: { a: 1, b: 1 }, delay: "1 minute" },
        { priority: 1, metadata: { b: 2 }, runAt: new Date(0) },
      ),
    )
    expect(r.queue).toBe("a")
    expect(r.priority).toBe(1)
    expect(JSON.parse(r.metadataJson)).toEqual({ a: 1, b: 2 })
    expect(r.runAt).toEqual(new Date(0))
    expect(r.delayMs).toBeNull()
  })

  it("rejects out-of-range or malformed options, naming the option", () => {
    expect(optionOf(resolveInsertOptions("k", undefined, { priority: 0 }))).toBe("priority")
    expect(optionOf(resolveInsertOptions("k", undefined, { priority: 5 }))).toBe("priority")
    expect(optionOf(resolveInsertOptions("k", undefined, { priority: 1.5 }))).toBe("priority")
    expect(optionOf(resolveInsertOptions("k", undefined, { maxAttempts: 0 }))).toBe("maxAttempts")
    expect(optionOf(resolveInsertOptions("k", undefined, { queue: "q".repeat(129) }))).toBe("queue")
    expect(optionOf(resolveInsertOptions("k", undefined, { queue: "has space" }))).toBe("queue")
    expect(optionOf(resolveInsertOptions("k", undefined, { delay: -5 }))).toBe("delay")
    expect(optionOf(resolveInsertOptions("k", undefined, { delay: "-1 seconds" }))).toBe("delay")
    expect(optionOf(resolveInsertOptions("k", undefined, { runAt: new Date(Number.NaN) }))).toBe("runAt")
    expect(optionOf(resolveInsertOptions("k", undefined, { runAt: new Date(), delay: 1 }))).toBe("delay")
    expect(optionOf(resolveInsertOptions("k", undefined, { timeout: 0 }))).toBe("timeout")
    expect(optionOf(resolveInsertOptions("k", undefined, { tags: Array(21).fill("t") }))).toBe("tags")
    expect(optionOf(resolveInsertOptions("k", undefined, { tags: [""] }))).toBe("tags")
    expect(optionOf(resolveInsertOptions("k", undefined, { unique: { states: [] } }))).toBe("unique.states")
    expect(optionOf(resolveInsertOptions("k", undefined, { unique: { states: ["nope" as never] } }))).toBe(
      "unique.states",
    )
    expect(optionOf(resolveInsertOptions("k", undefined, { metadata: [] as never }))).toBe("metadata")
  })

  it("says what to do next", () => {
    const err = resolveInsertOptions("k", undefined, { priority: 7 }) as InvalidInsertOptions
    expect(err.message).toMatch(/priority.*got 7.*1 \(highest\) to 4.*Nothing was inserted/)
  })

  it("limits metadata size", () => {
    expect(resolveInsertOptions("k", undefined, { metadata: { x: "y".repeat(70_000) } })).toBeInstanceOf(
      JobPayloadTooLarge,
    )
  })

  it("requires unique keys to be held in every state a job moves through on its own", () => {
    // Released while running, a key could be taken by a duplicate; the job's own retry would then collide.
    const err = resolveInsertOptions("k", undefined, {
      unique: { states: ["available", "scheduled", "completed"] },
    }) as InvalidInsertOptions
    expect(err).toBeInstanceOf(InvalidInsertOptions)
    expect(err.message).toMatch(/unique\.states.*missing running, retryable, waiting_external/)
    const live = ok(resolveInsertOptions("k", undefined, { unique: { states: [...nonTerminalJobStates] } }))
    expect(live.unique?.states).toEqual(nonTerminalJobStates)
    const all = ok(resolveInsertOptions("k", undefined, { unique: { states: [...jobStates] } }))
    expect(all.unique?.states).toEqual(jobStates)
  })

  it("resolves unique options", () => {
    const r = ok(resolveInsertOptions("k", undefined, { unique: { byPeriod: "1 hour", byQueue: true } }))
    expect(r.unique).toEqual({
      byQueue: true,
      byArgs: true,
      periodMs: 3_600_000,
      states: defaultUniqueStates,
    })
    expect(ok(resolveInsertOptions("k", undefined, { unique: true })).unique?.states).toEqual(
      defaultUniqueStates,
    )
  })

  it("validates queue names on their own", () => {
    expect(validateQueueName("-", "ok.queue-1")).toBe("ok.queue-1")
    expect(validateQueueName("-", "")).toBeInstanceOf(InvalidInsertOptions)
  })
})
