import { describe, expect, it } from "vitest"
import { exponentialBackoff } from "../src/Backoff.js"

describe("exponentialBackoff", () => {
  it("grows by the factor per attempt and stops at the cap", () => {
    const backoff = exponentialBackoff({ baseMs: 100, factor: 2, maxMs: 1000, jitter: 0 })
    expect([1, 2, 3, 4, 5, 6, 50, 5000].map(backoff)).toEqual([100, 200, 400, 800, 1000, 1000, 1000, 1000])
  })

  it("removes at most the jitter fraction, never exceeding the cap", () => {
    const low = exponentialBackoff({ baseMs: 1000, maxMs: 4000, jitter: 0.25, random: () => 0.999999 })
    const high = exponentialBackoff({ baseMs: 1000, maxMs: 4000, jitter: 0.25, random: () => 0 })
    expect(low(1)).toBe(750)
    expect(high(1)).toBe(1000)
    expect(low(10)).toBe(3000)
    expect(high(10)).toBe(4000)
  })

  it("has sensible defaults: 1 s doubling, capped at one hour", () => {
    const backoff = exponentialBackoff({ random: () => 0 })
    expect(backoff(1)).toBe(1000)
    expect(backoff(2)).toBe(2000)
    expect(backoff(100)).toBe(3_600_000)
  })
})
