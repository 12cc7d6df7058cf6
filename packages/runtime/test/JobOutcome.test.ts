import { describe, expect, it } from "vitest"
import { cancel, fail, isJobOutcome, retryAfter, snooze } from "../src/JobOutcome.js"
import { describeThrown } from "../src/Worker.js"

describe("JobOutcome", () => {
  it("builds outcomes from durations", () => {
    expect(snooze("2 seconds")).toMatchObject({ _tag: "Snooze", delayMs: 2000 })
    expect(retryAfter(50, "later")).toMatchObject({ _tag: "RetryAfter", delayMs: 50, reason: "later" })
    expect(cancel("no")).toMatchObject({ _tag: "Cancel", reason: "no" })
    expect(fail(new Error("x"))).toMatchObject({ _tag: "Fail", reason: "x" })
    expect(isJobOutcome(snooze(0))).toBe(true)
    expect(isJobOutcome({ _tag: "Snooze" })).toBe(false)
  })

  it("refuses negative or malformed delays", () => {
    expect(() => snooze(-1)).toThrow(RangeError)
    expect(() => retryAfter("soon" as never)).toThrow(/non-negative duration/)
  })
})

describe("describeThrown", () => {
  it("describes errors and non-Error values", () => {
    expect(describeThrown(new TypeError("bad"))).toMatchObject({
      kind: "error",
      message: "bad",
      name: "TypeError",
    })
    expect(describeThrown("text")).toEqual({ kind: "error", message: "text", name: "NonError" })
    expect(describeThrown({ a: 1 }).message).toBe('The handler threw a non-Error value: {"a":1}')
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    expect(describeThrown(cyclic).message).toBe("The handler threw a non-Error value: [object Object]")
    expect(describeThrown(Symbol("s")).message).toBe("The handler threw a non-Error value: Symbol(s)")
  })
})
